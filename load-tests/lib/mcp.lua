-- wrk script for the max-throughput runs of load-tests/run.sh: one MCP POST, sent as a client
-- sends it inside an open session, on every connection, as fast as the target answers.
--
--   LT_BODY=<json-rpc> LT_SESSION=<id> [LT_AUTH="Bearer ..."] wrk -t1 -c32 -d5s -s mcp.lua URL
--   LT_BODY=<json-rpc with _meta> LT_PROTOCOL=2026-07-28 LT_MCP_METHOD=tools/call LT_MCP_NAME=<tool> ...
--
-- The request is static (no request() hook), so wrk formats it once per thread and spends
-- no Lua on sending. response() only compares the status: it costs wrk ~1 µs of CPU per
-- response, and it is the one way to see a 1xx/2xx/3xx other than 200 (wrk's own
-- "Non-2xx or 3xx" count is really status > 399). done() prints one line,
-- "WRK_JSON {...}", for run.sh to parse: requests, duration, every error count, the non-200
-- count and the latency percentiles in µs.

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

wrk.method = "POST"
wrk.body = env("LT_BODY") or error("LT_BODY (the JSON-RPC request) is not set")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
-- After initialize a client sends its session and the negotiated protocol revision. A
-- 2026-07-28 (modern) client has no session (LT_SESSION unset) and names the method and tool
-- in Mcp-Method / Mcp-Name.
wrk.headers["Mcp-Session-Id"] = env("LT_SESSION")
wrk.headers["MCP-Protocol-Version"] = env("LT_PROTOCOL") or "2025-06-18"
wrk.headers["Mcp-Method"] = env("LT_MCP_METHOD")
wrk.headers["Mcp-Name"] = env("LT_MCP_NAME")
wrk.headers["Authorization"] = env("LT_AUTH")

-- setup() runs in the main Lua state once per thread; done() reads the threads' counters.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- Globals of the thread's own Lua state, read back with thread:get().
function init(args)
  non200 = 0
  first_bad = 0
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == 0 then first_bad = status end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    if first == 0 then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non200":%d,"first_non200":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, bad, first,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(99), latency.max))
end
