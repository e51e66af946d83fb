//! Server-to-client traffic through a virtual server (legacy era): an upstream's
//! elicitation reaches the client on the call's stream with a gateway id, the client's answer
//! goes back to the upstream session that asked (ids of two upstreams never collide), a
//! forged or foreign id is refused, `notifications/cancelled` reaches the upstream running
//! the call, progress passes, and upstream sessions declare the client's capabilities.
//! 2026-07-28 clients (MRTR): a retry with `inputResponses` resumes the parked call as the
//! same call (no second quota count or approval; a forged `requestState` is decided as a new
//! call, then refused; a tool hidden meanwhile is refused), audited as a round of the first.
//! Upstreams are real: the official Python SDK (`tests/fixtures/python/elicit_upstream.py`),
//! and the official Python SDK client in one test.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::*;
use crate::hostile::{sdk_python, Child};

/// A Python SDK upstream called `name`, serving on a free port.
async fn python_upstream(
    python: &std::path::Path,
    name: &str,
    dir: &std::path::Path,
) -> (Child, String) {
    let (child, port) = python::start(
        python,
        "elicit_upstream.py",
        &[std::ffi::OsStr::new(name)],
        Some(dir),
    )
    .await;
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

struct Setup {
    gw: Gateway,
    /// The upstreams' URLs.
    alpha: String,
    beta: String,
    _upstreams: Vec<Child>,
    _dir: tempfile::TempDir,
}

/// The configuration of [`setup_with`], `deny` hiding tools on `all`.
fn config(alpha: &str, beta: &str, admin: Admin, extra: &str, deny: &[&str]) -> String {
    let vs = VirtualServer::new("all", "/v/all/mcp");
    let listener = Listener::new()
        .auth(ListenerAuth::None)
        .virtual_servers(&[vs.name()])
        .route("/mcp", "alpha");
    let yaml = Config::new()
        .listener(listener)
        .virtual_server(vs.anonymous().deny_tools(deny))
        // Held: their tools ask with handshake-style requests (`ctx.elicit`), which the
        // Python SDK cannot send on its stateless side; the gateway translates them (MRTR).
        .upstream(Upstream::new("alpha", alpha).held())
        .upstream(Upstream::new("beta", beta).held())
        .admin(admin)
        .yaml();
    format!("{yaml}\n{extra}")
}

impl Setup {
    fn url(&self) -> String {
        format!("http://{}/v/all/mcp", self.gw.addr)
    }
}

/// The Python with the SDK, or `None` (the test is skipped, saying so; never in CI).
fn python_or_skip() -> Option<std::path::PathBuf> {
    let python = sdk_python();
    if python.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python SDK (scripts/test.sh creates the venv)"
        );
        eprintln!("skipped: no Python with the mcp SDK (run scripts/test.sh once to create it)");
    }
    python
}

/// Two Python upstreams, `alpha` and `beta`, behind the anonymous virtual server `all`.
/// `None` (test skipped) without a Python that has the SDK.
async fn setup() -> Option<Setup> {
    setup_with(Admin::default(), "").await
}

/// [`setup`] with an `admin` section and `extra` top-level YAML (quotas, approvals, audit).
async fn setup_with(admin: Admin, extra: &str) -> Option<Setup> {
    let python = python_or_skip()?;
    let dir = tempfile::tempdir().unwrap();
    let (a, alpha) = python_upstream(&python, "alpha", dir.path()).await;
    let (b, beta) = python_upstream(&python, "beta", dir.path()).await;
    let gw = start_gateway(&config(&alpha, &beta, admin, extra, &[])).await;
    Some(Setup {
        gw,
        alpha,
        beta,
        _upstreams: vec![a, b],
        _dir: dir,
    })
}

/// Open a client session declaring `capabilities`; returns its id.
async fn open(url: &str, capabilities: Value) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":capabilities,
        "clientInfo":{"name":"t","version":"0"}}});
    let r = post(url, init.to_string(), &[]).await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(
        post(url, note, &[("mcp-session-id", &sid)]).await.status(),
        202
    );
    sid
}

/// An SSE answer read event by event.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    /// The next message on the stream (`None` when it ended).
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() || data.concat().is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data.join("\n")).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("the stream stalled")
                .unwrap()?;
            // SSE lines may end in CRLF (the Python SDK's do).
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
            self.buf = self.buf.replace("\r\n", "\n");
        }
    }

    /// The next message that is a request or the final answer.
    async fn next_request_or_answer(&mut self) -> Value {
        loop {
            let m = self.next().await.expect("stream ended early");
            if m.get("id").is_some() {
                return m;
            }
        }
    }
}

async fn call(url: &str, sid: &str, id: u64, tool: &str, args: Value) -> Events {
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
        "params":{"name":tool,"arguments":args}});
    let resp = post(url, body.to_string(), &[("mcp-session-id", sid)]).await;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    Events {
        resp,
        buf: String::new(),
    }
}

async fn answer(url: &str, sid: &str, id: &Value, text: &str) -> reqwest::Response {
    let body =
        json!({"jsonrpc":"2.0","id":id,"result":{"action":"accept","content":{"answer":text}}});
    post(url, body.to_string(), &[("mcp-session-id", sid)]).await
}

fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
}

/// Both upstreams number their requests from the same start, so their ids collide; through
/// the gateway each gets its own gateway id, and each answer reaches the upstream that asked.
#[tokio::test]
async fn answers_to_two_upstreams_elicitations_reach_the_one_that_asked() {
    let Some(s) = setup().await else { return };
    let url = s.url();
    let sid = open(&url, json!({"elicitation": {}})).await;
    let mut a = call(&url, &sid, 1, "alpha__ask", json!({"question":"a?"})).await;
    let mut b = call(&url, &sid, 2, "beta__ask", json!({"question":"b?"})).await;
    let ra = a.next_request_or_answer().await;
    let rb = b.next_request_or_answer().await;
    assert_eq!(ra["method"], "elicitation/create", "{ra}");
    assert_eq!(rb["method"], "elicitation/create", "{rb}");
    let (ia, ib) = (ra["id"].as_str().unwrap(), rb["id"].as_str().unwrap());
    assert!(ia.starts_with("mcpgw.alpha."), "{ia}");
    assert!(ib.starts_with("mcpgw.beta."), "{ib}");
    let original = |gid: &str| {
        // mcpgw.<upstream>.<base64url of the original>.<seal>
        let b64 = gid.split('.').nth(2).unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap();
        String::from_utf8(raw).unwrap()
    };
    assert_eq!(original(ia), original(ib), "the upstreams' own ids collide");

    // Answered in the other order: each goes where its id says.
    assert_eq!(
        answer(&url, &sid, &rb["id"], "for beta").await.status(),
        202
    );
    assert_eq!(
        answer(&url, &sid, &ra["id"], "for alpha").await.status(),
        202
    );
    let fa = a.next_request_or_answer().await;
    let fb = b.next_request_or_answer().await;
    assert_eq!(fa["id"], 1);
    assert_eq!(text(&fa), "alpha got: for alpha", "{fa}");
    assert_eq!(fb["id"], 2);
    assert_eq!(text(&fb), "beta got: for beta", "{fb}");
}

/// Ids the gateway did not give out are refused, saying why; nothing reaches an upstream.
#[tokio::test]
async fn a_forged_or_foreign_response_id_is_refused() {
    let Some(s) = setup().await else { return };
    let url = s.url();
    let sid = open(&url, json!({"elicitation": {}})).await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let respond = |id: Value| {
        let url = url.clone();
        let sid = sid.clone();
        async move {
            let body = json!({"jsonrpc":"2.0","id":id,"result":{}});
            post(&url, body.to_string(), &[("mcp-session-id", &sid)]).await
        }
    };
    assert_error(
        respond(json!(0)).await,
        400,
        -32600,
        "not issued by this gateway",
    )
    .await;
    // Ids shaped like gateway ids but not minted by it for this session (no seal, or one
    // made up): for an upstream outside the server, with an original that would add members
    // to the body, or for an upstream this session never called. Refused before anything is
    // decoded further (the later checks are unit-tested in `vserver::ids` and `reply`).
    for forged in [
        format!("mcpgw.gamma.{}", b64("0")),
        format!("mcpgw.alpha.{}", b64("0,\"result\":{}")),
        format!("mcpgw.alpha.{}.{}", b64("0"), "0".repeat(32)),
    ] {
        assert_error(
            respond(json!(forged)).await,
            400,
            -32600,
            "not issued by this gateway",
        )
        .await;
    }
}

/// The client's `notifications/cancelled` reaches the upstream running the call: the
/// upstream stops waiting for its elicitation (cancelling it too, under its gateway id) and
/// ends the call.
#[tokio::test]
async fn a_cancellation_reaches_the_upstream_running_the_call() {
    let Some(s) = setup().await else { return };
    let url = s.url();
    let sid = open(&url, json!({"elicitation": {}})).await;
    let mut b = call(&url, &sid, 7, "beta__ask", json!({"question":"b?"})).await;
    let asked = b.next_request_or_answer().await;
    assert_eq!(asked["method"], "elicitation/create", "{asked}");
    let cancel = json!({"jsonrpc":"2.0","method":"notifications/cancelled",
        "params":{"requestId":7,"reason":"changed my mind"}});
    let r = post(&url, cancel.to_string(), &[("mcp-session-id", &sid)]).await;
    assert_eq!(r.status(), 202);
    let mut seen = Vec::new();
    while let Some(m) = b.next().await {
        seen.push(m);
    }
    let withdrawn = seen
        .iter()
        .find(|m| m["method"] == "notifications/cancelled")
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(
        withdrawn["params"]["requestId"], asked["id"],
        "the upstream's cancellation names the gateway id the client knows"
    );
    let last = seen.last().unwrap();
    assert_eq!(last["id"], 7, "{last}");
    assert!(last["error"].is_object(), "{last}");

    // A cancellation for nothing in flight is accepted and goes nowhere.
    let r = post(&url, cancel.to_string(), &[("mcp-session-id", &sid)]).await;
    assert_eq!(r.status(), 202);
}

/// Progress notifications pass through with the client's token, and the upstream session
/// declares exactly the capabilities the client declared.
#[tokio::test]
async fn progress_passes_and_upstream_sessions_declare_the_clients_capabilities() {
    let Some(s) = setup().await else { return };
    let url = s.url();
    let caps = json!({"elicitation": {"form": {}}, "roots": {"listChanged": true}});
    let sid = open(&url, caps.clone()).await;
    let mut c = call(&url, &sid, 3, "alpha__client_caps", json!({})).await;
    let v = c.next_request_or_answer().await;
    let declared: Value = serde_json::from_str(text(&v)).unwrap();
    assert_eq!(declared, caps, "{v}");

    let body = json!({"jsonrpc":"2.0","id":4,"method":"tools/call",
        "params":{"name":"beta__count","arguments":{"steps":3},"_meta":{"progressToken":"tok-1"}}});
    let resp = post(&url, body.to_string(), &[("mcp-session-id", &sid)]).await;
    let mut e = Events {
        resp,
        buf: String::new(),
    };
    let mut progress = Vec::new();
    let last = loop {
        let m = e.next().await.expect("stream ended early");
        if m["method"] == "notifications/progress" {
            assert_eq!(m["params"]["progressToken"], "tok-1", "{m}");
            progress.push(m["params"]["progress"].as_f64().unwrap());
        } else if m.get("id").is_some() {
            break m;
        }
    };
    assert_eq!(progress, [1.0, 2.0, 3.0]);
    assert_eq!(text(&last), "beta counted 3");
}

/// The official Python SDK client, answering elicitation with a callback, through the
/// virtual server: the tool result carries its answer, and its progress callback fires.
#[tokio::test]
async fn python_sdk_client_answers_an_elicitation_through_a_virtual_server() {
    let Some(s) = setup().await else { return };
    let python = sdk_python().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/python/elicit_client.py"
    );
    // Legacy: the elicitation request is relayed. Auto (the discover probe keeps the client
    // modern) and 2026-07-28: it comes back as an InputRequiredResult (MRTR), and the SDK's
    // retry with `inputResponses` answers the upstream.
    for mode in ["legacy", "auto", "2026-07-28"] {
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new(&python)
                .arg(script)
                .args([&s.url(), mode, "beta__ask", "alpha__count", "Ada"])
                .current_dir(s._dir.path())
                .output(),
        )
        .await
        .expect("the Python client hung")
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["ask"], "beta got: Ada", "{mode}: {v}");
        assert_eq!(v["elicited"], "your name?", "{mode}: {v}");
        assert_eq!(v["count"], "alpha counted 3", "{mode}: {v}");
        assert_eq!(v["progress"], json!([1.0, 2.0, 3.0]), "{mode}: {v}");
    }
    assert!(s.gw.shared.parked.is_empty());
}

/// A plain route passes the upstream's own ids through untouched (no rewriting there), and
/// the client's answer with that id reaches the upstream as before.
#[tokio::test]
async fn a_plain_route_passes_server_to_client_ids_as_sent() {
    let Some(s) = setup().await else { return };
    let url = format!("http://{}/mcp", s.gw.addr);
    let sid = raw_initialize(&url).await;
    let mut a = call(&url, &sid, 1, "ask", json!({"question":"plain?"})).await;
    let asked = a.next_request_or_answer().await;
    assert_eq!(asked["method"], "elicitation/create", "{asked}");
    assert!(asked["id"].is_number(), "{asked}");
    assert_eq!(
        answer(&url, &sid, &asked["id"], "direct").await.status(),
        202
    );
    let done = a.next_request_or_answer().await;
    assert_eq!(text(&done), "alpha got: direct", "{done}");
}

/// A 2026-07-28 client gets no server-to-client requests (its revision has none). One that
/// declared no capability for it: the upstream's elicitation is taken out of the stream and
/// answered with an error saying why, so the tool ends at once and the client gets its
/// answer instead of a request it cannot answer (or a call that waits for ever).
#[tokio::test]
async fn a_modern_client_gets_the_tool_result_not_an_elicitation() {
    let Some(s) = setup().await else { return };
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"alpha__ask","arguments":{"question":"a?"},
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                 "io.modelcontextprotocol/clientCapabilities":{}}}});
    let r = post(
        &s.url(),
        body.to_string(),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "alpha__ask"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut events = Events {
        resp: r,
        buf: String::new(),
    };
    let answer = events.next_request_or_answer().await;
    assert!(
        answer.get("method").is_none(),
        "a request reached the client: {answer}"
    );
    assert_eq!(answer["id"], 1, "{answer}");
    // The Python SDK passes the refusal on as the call's error (another upstream may turn it
    // into an `isError` result): either way it says why.
    let text = answer["error"]["message"]
        .as_str()
        .or_else(|| answer["result"]["content"][0]["text"].as_str())
        .unwrap_or_default();
    assert!(text.contains("cannot reach this client"), "{answer}");
}

/// POST a 2026-07-28 `tools/call` of `tool` with `params` (the envelope added, declaring
/// elicitation).
async fn modern_call(url: &str, id: u64, tool: &str, mut params: Value) -> reqwest::Response {
    params["name"] = json!(tool);
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28",
        "io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}});
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params});
    post(
        url,
        body.to_string(),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ],
    )
    .await
}

/// MRTR on the wire: the upstream's elicitation becomes an `InputRequiredResult` (the
/// request under a key, an opaque `requestState`); the retry with `inputResponses` reaches
/// the upstream's pending request, and the tool's result answers the retry's id. A
/// `requestState` that opens nothing (used twice, or forged) is refused, never run again.
#[tokio::test]
async fn a_modern_client_answers_an_elicitation_by_retrying_with_input_responses() {
    let Some(s) = setup().await else { return };
    let r = modern_call(
        &s.url(),
        1,
        "alpha__ask",
        json!({"arguments":{"question":"who?"}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut events = Events {
        resp: r,
        buf: String::new(),
    };
    let first = events.next_request_or_answer().await;
    assert_eq!(first["id"], 1, "{first}");
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let (key, asked) = result["inputRequests"]
        .as_object()
        .and_then(|m| m.iter().next())
        .unwrap();
    assert_eq!(asked["method"], "elicitation/create", "{first}");
    assert_eq!(asked["params"]["message"], "who?", "{first}");
    let state = result["requestState"].as_str().unwrap().to_string();
    assert!(events.next().await.is_none(), "the first answer ends there");
    assert_eq!(s.gw.shared.parked.len(), 1);

    // A retry that changes the arguments opens nothing: the upstream runs the first ones.
    let changed = json!({"arguments":{"question":"what else?"}, "requestState": state,
        "inputResponses": {key.as_str(): {"action":"accept","content":{"answer":"Grace"}}}});
    let r = modern_call(&s.url(), 2, "alpha__ask", changed).await;
    assert_error(r, 400, -32602, "same tool and arguments").await;
    assert_eq!(
        s.gw.shared.parked.len(),
        1,
        "still waiting for the right retry"
    );
    let retry = json!({"arguments":{"question":"who?"}, "requestState": state,
        "inputResponses": {key.as_str(): {"action":"accept","content":{"answer":"Grace"}}}});
    let r = modern_call(&s.url(), 2, "alpha__ask", retry.clone()).await;
    assert_eq!(r.status(), 200);
    let mut events = Events {
        resp: r,
        buf: String::new(),
    };
    let done = events.next_request_or_answer().await;
    assert_eq!(done["id"], 2, "{done}");
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "alpha got: Grace",
        "{done}"
    );
    assert!(s.gw.shared.parked.is_empty());

    // The same state again: nothing waits under it any more.
    let r = modern_call(&s.url(), 3, "alpha__ask", retry).await;
    assert_error(r, 400, -32602, "requestState").await;
}

/// The `requestState` and `inputRequests` key of an `InputRequiredResult` answering `r`.
async fn input_required(r: reqwest::Response, id: u64) -> (String, String) {
    assert_eq!(r.status(), 200);
    let mut events = Events {
        resp: r,
        buf: String::new(),
    };
    let first = events.next_request_or_answer().await;
    assert_eq!(first["id"], id, "{first}");
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let key = result["inputRequests"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap();
    (result["requestState"].as_str().unwrap().to_string(), key)
}

/// The tool's text answering a retry, `r`.
async fn completed(r: reqwest::Response, id: u64) -> String {
    assert_eq!(r.status(), 200);
    let mut events = Events {
        resp: r,
        buf: String::new(),
    };
    let done = events.next_request_or_answer().await;
    assert_eq!(done["id"], id, "{done}");
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    done["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A retry of `alpha__ask` ("who?") answering under `key` with `answer`.
fn retry(state: &str, key: &str, answer: &str) -> Value {
    json!({"arguments":{"question":"who?"}, "requestState": state,
        "inputResponses": {key: {"action":"accept","content":{"answer":answer}}}})
}

/// A `requestState` with the gateway's prefix that it never issued.
const FORGED: &str = "mcpgw-mrtr.0123456789abcdef0123456789abcdef";

/// An elicitation round trip is one call: with a rate of 2 calls, the first round takes
/// one, its retry none (it would be refused otherwise). A retry whose `requestState` opens
/// nothing is decided as a new call (so a spent limit answers it with 429), then refused,
/// and a refused call counts nothing: the next call takes the second, the one after finds
/// the limit spent.
#[tokio::test]
async fn an_mrtr_retry_takes_no_second_quota_charge_and_a_refused_forged_one_none() {
    let quota = "quotas:\n  - { name: two-asks, key: [subject], tools: [alpha.ask], rate: { requests: 2, per: 1h } }\n";
    let Some(s) = setup_with(Admin::default(), quota).await else {
        return;
    };
    let who = json!({"arguments":{"question":"who?"}});
    let (state, key) =
        input_required(modern_call(&s.url(), 1, "alpha__ask", who.clone()).await, 1).await;
    let r = modern_call(&s.url(), 2, "alpha__ask", retry(&state, &key, "Grace")).await;
    assert_eq!(completed(r, 2).await, "alpha got: Grace");
    let r = modern_call(&s.url(), 3, "alpha__ask", retry(FORGED, &key, "Ada")).await;
    assert_error(r, 400, -32602, "requestState").await;
    input_required(modern_call(&s.url(), 4, "alpha__ask", who.clone()).await, 4).await;
    let r = modern_call(&s.url(), 5, "alpha__ask", who).await;
    assert_error(r, 429, -32000, "two-asks").await;
    // Spent: a forged retry now meets the limit before its `requestState` is looked at.
    let r = modern_call(&s.url(), 6, "alpha__ask", retry(FORGED, &key, "Ada")).await;
    assert_error(r, 429, -32000, "two-asks").await;
}

/// An approved call that asks for input is not asked about again when its client retries
/// with the answer (the retry is bound to the same arguments); a forged `requestState` is
/// a new call, which needs its own approval.
#[tokio::test]
async fn an_mrtr_retry_needs_no_second_approval_and_a_forged_one_does() {
    let rules = "approvals:\n  rules: [{ tools: [alpha.ask] }]\n";
    let Some(s) = setup_with(Admin::with_test_tokens(), rules).await else {
        return;
    };
    let who = json!({"arguments":{"question":"who?"}});
    let r = modern_call(&s.url(), 1, "alpha__ask", who.clone()).await;
    let v = assert_error(r, 200, -32030, "approval").await;
    let id = v["error"]["data"]["approvalId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = admin_post(
        &s.gw,
        "/admin/approvals/approve",
        ADMIN_APPROVE_TOKEN,
        &json!({ "id": id }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (state, key) = input_required(modern_call(&s.url(), 2, "alpha__ask", who).await, 2).await;
    let r = modern_call(&s.url(), 3, "alpha__ask", retry(&state, &key, "Grace")).await;
    assert_eq!(completed(r, 3).await, "alpha got: Grace");
    // The approval was used once, by the first round: a forged retry asks again.
    let r = modern_call(&s.url(), 4, "alpha__ask", retry(FORGED, &key, "Ada")).await;
    assert_error(r, 200, -32030, "approval").await;
}

/// The audit record of a retry names the round it resumes and digests the client's answers
/// (the canonical `inputResponses`), which are not in the trail.
#[tokio::test]
async fn the_audit_record_of_an_mrtr_retry_resumes_the_first_round() {
    let dir = tempfile::tempdir().unwrap();
    let audit = format!("audit:\n  path: \"{}/audit.jsonl\"\n", dir.path().display());
    let Some(s) = setup_with(Admin::default(), &audit).await else {
        return;
    };
    let who = json!({"arguments":{"question":"who?"}});
    let (state, key) = input_required(modern_call(&s.url(), 1, "alpha__ask", who).await, 1).await;
    let secret = "Grace-7f3a";
    let r = modern_call(&s.url(), 2, "alpha__ask", retry(&state, &key, secret)).await;
    assert_eq!(completed(r, 2).await, format!("alpha got: {secret}"));
    // Both records queued (logging runs after the response), then the gateway stops and
    // writes them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&s.gw, "mcp_gateway_audit_records_total", &[]).await < Some(2.0) {
        assert!(std::time::Instant::now() < deadline, "records not queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stopping the gateway writes every queued record (the upstreams stay up until the end).
    let Setup { gw, _upstreams, .. } = s;
    drop(gw);
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(!text.contains(secret), "the answer is not in the trail");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let resumed = records
        .iter()
        .find(|r| r.get("resumes").is_some())
        .unwrap_or_else(|| panic!("no resumed round in {records:#?}"));
    assert_eq!(resumed["round"], 2, "{resumed}");
    assert_eq!(resumed["decision"], "allowed", "{resumed}");
    let canonical =
        format!(r#"{{"{key}":{{"action":"accept","content":{{"answer":"{secret}"}}}}}}"#);
    assert_eq!(
        resumed["input_responses_sha256"],
        crate::common::tokens::sha256_hex(&canonical),
        "{resumed}"
    );
    let first = records
        .iter()
        .find(|r| r["request_id"] == resumed["resumes"])
        .unwrap_or_else(|| panic!("the first round's record in {records:#?}"));
    assert_eq!(first["method"], "tools/call", "{first}");
    assert!(first.get("resumes").is_none(), "{first}");
    assert_eq!(first["arguments_sha256"], resumed["arguments_sha256"]);
}

/// The retry is decided again up to its policy: a tool hidden (by a reload) while its call
/// waited for input is refused as unknown, and nothing reaches the upstream's waiting call.
#[tokio::test]
async fn an_mrtr_retry_of_a_tool_hidden_meanwhile_is_refused_as_unknown() {
    let Some(s) = setup().await else { return };
    let who = json!({"arguments":{"question":"who?"}});
    let (state, key) = input_required(modern_call(&s.url(), 1, "alpha__ask", who).await, 1).await;
    let conf = s._dir.path().join("gw.yaml");
    let hidden = config(&s.alpha, &s.beta, Admin::default(), "", &["alpha.ask"]);
    std::fs::write(&conf, render(&hidden, s.gw.addr, s.gw.admin)).unwrap();
    s.gw.shared.reload(&conf).unwrap();
    let r = modern_call(&s.url(), 2, "alpha__ask", retry(&state, &key, "Grace")).await;
    let v = jsonrpc_body(r).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("alpha__ask"),
        "{v}"
    );
    assert_eq!(s.gw.shared.parked.len(), 1, "it waits until it expires");
}

/// A 2026-07-28 upstream asks its 2026-07-28 client itself: its `InputRequiredResult` and
/// `requestState` pass through the virtual server as it wrote them (the gateway parks
/// nothing), and the client's retry with `inputResponses` reaches it as sent (only the tool
/// name renamed, `Mcp-Name` with it), answering the retry's id. The Python SDK's resolver
/// (`confirm`) asks this way on its stateless side.
#[tokio::test]
async fn a_modern_upstreams_own_input_required_result_passes_through() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let audit = format!("audit:\n  path: \"{}/audit.jsonl\"\n", dir.path().display());
    let (alpha, gw, url) = stateless_alpha_with(
        &python,
        dir.path(),
        VirtualServer::new("all", "/v/all/mcp"),
        &audit,
    )
    .await;
    let ask = json!({"arguments":{"question":"ok?"}});

    let r = modern_call(&url, 1, "alpha__confirm", ask.clone()).await;
    assert_eq!(r.status(), 200);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["id"], 1, "{first}");
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let state = result["requestState"].as_str().unwrap().to_string();
    assert!(
        state.starts_with("v1."),
        "the upstream's own token: {first}"
    );
    let key = result["inputRequests"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap();
    assert_eq!(
        result["inputRequests"][&key]["method"], "elicitation/create",
        "{first}"
    );
    assert!(gw.shared.parked.is_empty(), "nothing held by the gateway");

    let mut retry = ask.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({key.as_str(): {"action":"accept","content":{"answer":"yes"}}});
    let r = modern_call(&url, 2, "alpha__confirm", retry).await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["id"], 2, "{done}");
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "alpha confirmed: yes",
        "{done}"
    );

    // A forged state reaches the upstream, which refuses it (the gateway cannot tell the
    // upstream's tokens from others): the tool never runs with the forged answer.
    let mut forged = ask;
    forged["requestState"] = json!("v1.forged");
    forged["inputResponses"] = json!({key.as_str(): {"action":"accept","content":{"answer":"no"}}});
    let r = modern_call(&url, 3, "alpha__confirm", forged).await;
    let text = r.text().await.unwrap();
    assert!(!text.contains("confirmed: no"), "{text}");

    // Each round is a call of its own in the trail; a retry carries the digest of what the
    // client answered, not the answer, and names no first round (the upstream's own).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&gw, "mcp_gateway_audit_records_total", &[]).await < Some(3.0) {
        assert!(std::time::Instant::now() < deadline, "records not queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(gw);
    drop(alpha);
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let retried: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("input_responses_sha256").is_some())
        .collect();
    assert_eq!(
        retried.len(),
        2,
        "the retry and the forged one: {records:#?}"
    );
    let canonical = format!(r#"{{"{key}":{{"action":"accept","content":{{"answer":"yes"}}}}}}"#);
    assert_eq!(
        retried[0]["input_responses_sha256"],
        crate::common::tokens::sha256_hex(&canonical),
        "{}",
        retried[0]
    );
    assert!(retried.iter().all(|r| r.get("resumes").is_none()));
}

/// A Python SDK upstream `alpha` called statelessly (its default) behind `vs` (made
/// anonymous): the upstream, the gateway and the virtual server's URL.
async fn stateless_alpha(
    python: &std::path::Path,
    dir: &std::path::Path,
    vs: VirtualServer,
) -> (Child, Gateway, String) {
    stateless_alpha_with(python, dir, vs, "").await
}

/// [`stateless_alpha`] with `extra` top-level YAML (an audit section).
async fn stateless_alpha_with(
    python: &std::path::Path,
    dir: &std::path::Path,
    vs: VirtualServer,
    extra: &str,
) -> (Child, Gateway, String) {
    let (child, alpha) = python_upstream(python, "alpha", dir).await;
    let yaml = Config::new()
        .listener(
            Listener::new()
                .auth(ListenerAuth::None)
                .virtual_servers(&[vs.name()])
                .route("/mcp", "alpha"),
        )
        .virtual_server(vs.anonymous())
        .upstream(Upstream::new("alpha", &alpha))
        .yaml();
    let gw = start_gateway(&format!("{yaml}\n{extra}")).await;
    let url = format!("http://{}/v/all/mcp", gw.addr);
    (child, gw, url)
}

/// POST a 2026-07-28 `tools/call` of `alpha__where` with `arguments` and `headers` beside
/// the metadata ones.
async fn call_where(url: &str, arguments: Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"alpha__where","arguments":arguments,
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                 "io.modelcontextprotocol/clientCapabilities":{}}}});
    let mut h = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "alpha__where"),
    ];
    h.extend_from_slice(headers);
    post(url, body.to_string(), &h).await
}

/// `Mcp-Param-*` on a stateless call (the Python SDK upstream refuses a request whose
/// `Mcp-Param-Region` is missing or differs from `arguments.region`): a client header that
/// disagrees with the body is refused by the gateway (400, -32020) and never reaches the
/// upstream; the header that goes up is built from the decided arguments, so a client that
/// sent none is served, and a pinned argument gets the gateway's header, not the client's.
#[tokio::test]
async fn mcp_param_headers_follow_the_decided_arguments() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_alpha, _gw, url) =
        stateless_alpha(&python, dir.path(), VirtualServer::new("all", "/v/all/mcp")).await;
    let text = |v: &Value| {
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for sent in [&[("mcp-param-region", "eu")][..], &[]] {
        let r = call_where(&url, json!({"region":"eu"}), sent).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(text(&v), "alpha in eu", "{sent:?}: {v}");
    }
    let r = call_where(&url, json!({"region":"eu"}), &[("mcp-param-region", "us")]).await;
    assert_error(r, 400, -32020, "mcp-param-region").await;
    // The sentinel form of the body's value agrees.
    let r = call_where(
        &url,
        json!({"region":"eu"}),
        &[("mcp-param-region", "=?base64?ZXU=?=")],
    )
    .await;
    assert_eq!(r.status(), 200);

    // Pinned: the client sends no region (it may not), and its header is not the one sent.
    let dir = tempfile::tempdir().unwrap();
    let vs = VirtualServer::new("all", "/v/all/mcp").tool(
        "alpha.where",
        ToolOverride::default().pinned(json!({"region": "eu"})),
    );
    let (_alpha, _gw, url) = stateless_alpha(&python, dir.path(), vs).await;
    let r = call_where(&url, json!({}), &[("mcp-param-region", "us")]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(text(&v), "alpha in eu", "{v}");
}
