// k6 equivalent of one oha run of load-tests/run.sh: tools/list or tools/call over one MCP
// session, at fixed concurrency (throughput) or at a fixed arrival rate (latency).
//
//   k6 run -e URL=http://127.0.0.1:18100/mcp -e METHOD=call load-tests/k6/mcp.js
//   (or load-tests/k6/run.sh URL METHOD [TOOL] [TOKEN], which pins k6 to core 1)
//
// Environment (k6 -e NAME=value, or the process environment):
//   URL       MCP endpoint (required)
//   METHOD    list | call                       (default call)
//   TOOL      tool name for tools/call          (default tool_000; u00__tool_000 on governed)
//   TOKEN     bearer token, sent as Authorization when set
//   MODE      throughput | rate                 (default throughput)
//   VUS       throughput: concurrent VUs, each one keep-alive connection (default 32, as oha -c)
//   RATE      rate: requests per second         (default 1000, as oha -q)
//   DURATION  either mode                       (default 5s, as oha -z)
//
// setup() opens the MCP session (initialize, notifications/initialized) and checks that
// tools/list returns tools (including TOOL) and tools/call returns a result; it fails the run
// otherwise. Every request of the load then carries the session id. Like run.sh, which refuses
// any non-200 answer, the run fails (non-zero exit) unless every check passed.
import http from 'k6/http';
import { check, fail } from 'k6';

const URL = __ENV.URL;
const METHOD = __ENV.METHOD || 'call';
const TOOL = __ENV.TOOL || 'tool_000';
const TOKEN = __ENV.TOKEN || '';
const MODE = __ENV.MODE || 'throughput';
const VUS = parseInt(__ENV.VUS || '32', 10);
const RATE = parseInt(__ENV.RATE || '1000', 10);
const DURATION = __ENV.DURATION || '5s';

if (!URL) throw new Error('URL is required, e.g. -e URL=http://127.0.0.1:18100/mcp');
if (METHOD !== 'list' && METHOD !== 'call') throw new Error(`METHOD must be list or call, not ${METHOD}`);

const scenarios = {
  // oha -z DURATION -c VUS: a closed loop, each VU sending its next request when the
  // previous answer arrived.
  throughput: { executor: 'constant-vus', vus: VUS, duration: DURATION },
  // oha -z DURATION -c 16 -q RATE --latency-correction: an open model, requests start on
  // schedule whether or not earlier ones finished, so latency is free of coordinated
  // omission, as long as 16 VUs keep up (see dropped_iterations below).
  rate: {
    executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
    preAllocatedVUs: 16, maxVUs: 16,
  },
};
if (!scenarios[MODE]) throw new Error(`MODE must be throughput or rate, not ${MODE}`);

export const options = {
  scenarios: { mcp: scenarios[MODE] },
  thresholds: {
    // Every check (setup's and each request's) must pass: one non-200 answer, one error or
    // one body without "result" fails the run.
    checks: ['rate==1'],
    // The load's own requests, without setup's handshake: shown in the summary, and at
    // least one must have run.
    'http_reqs{scenario:mcp}': ['count>0'],
    'http_req_duration{scenario:mcp}': ['max>=0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(99)', 'p(99.9)', 'max'],
};
// At a fixed rate, an iteration k6 could not start on schedule (all 16 VUs busy) is dropped,
// not delayed: its latency is never measured, so the percentiles would understate. oha's
// --latency-correction counts that wait instead; k6 cannot, so such a run fails.
if (MODE === 'rate') options.thresholds.dropped_iterations = ['count==0'];

const BASE_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};
if (TOKEN) BASE_HEADERS.authorization = `Bearer ${TOKEN}`;

// Same bodies (and ids) as run.sh.
const BODIES = {
  list: '{"jsonrpc":"2.0","id":3,"method":"tools/list"}',
  call: JSON.stringify({
    jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: TOOL, arguments: { id: '1' } },
  }),
};

function headerValue(res, name) {
  const want = name.toLowerCase();
  for (const k of Object.keys(res.headers)) {
    if (k.toLowerCase() === want) return res.headers[k];
  }
  return '';
}

// A JSON-RPC answer as JSON, or as the last `data:` event of an SSE stream.
function rpc(res) {
  const body = res.body || '';
  const ct = headerValue(res, 'content-type');
  let text = body;
  if (ct.indexOf('text/event-stream') !== -1) {
    const data = body.split(/\r?\n/).filter((l) => l.startsWith('data:'));
    text = data.length ? data[data.length - 1].slice(5).trim() : '';
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    return null;
  }
}

function post(body, headers, what) {
  const res = http.post(URL, body, { headers });
  if (res.error) fail(`${what}: ${res.error}`);
  return res;
}

export function setup() {
  const init = post(JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'k6', version: '1' } },
  }), BASE_HEADERS, 'initialize');
  const initAnswer = rpc(init);
  if (init.status !== 200 || !initAnswer || !initAnswer.result) {
    fail(`initialize at ${URL}: status ${init.status}, body ${String(init.body).slice(0, 200)}`);
  }
  const sid = headerValue(init, 'mcp-session-id');
  const headers = Object.assign({}, BASE_HEADERS);
  if (sid) headers['mcp-session-id'] = sid;

  const note = post('{"jsonrpc":"2.0","method":"notifications/initialized"}', headers, 'notifications/initialized');
  if (note.status !== 200 && note.status !== 202) fail(`notifications/initialized: status ${note.status}`);

  const list = post(BODIES.list, headers, 'tools/list');
  const tools = ((rpc(list) || {}).result || {}).tools;
  if (list.status !== 200 || !Array.isArray(tools) || tools.length === 0) {
    fail(`tools/list: status ${list.status}, no tools: ${String(list.body).slice(0, 200)}`);
  }
  if (METHOD === 'call' && !tools.some((t) => t.name === TOOL)) {
    fail(`tools/list has no tool ${TOOL} (it has ${tools.slice(0, 5).map((t) => t.name).join(', ')}, ...)`);
  }

  const call = post(BODIES.call, headers, 'tools/call');
  const result = (rpc(call) || {}).result;
  if (call.status !== 200 || !result || result.isError) {
    fail(`tools/call ${TOOL}: status ${call.status}, body ${String(call.body).slice(0, 200)}`);
  }
  console.log(`session ${sid || '(none)'} at ${URL}: ${tools.length} tools, tools/call ${TOOL} ok; ` +
    `${MODE === 'rate' ? `${RATE} rps` : `${VUS} VUs`} for ${DURATION}, tools/${METHOD}`);
  return { headers };
}

export default function (data) {
  const res = http.post(URL, BODIES[METHOD], { headers: data.headers });
  check(res, {
    'status 200': (r) => r.status === 200,
    'body has "result"': (r) => typeof r.body === 'string' && r.body.indexOf('"result"') !== -1,
  });
}
