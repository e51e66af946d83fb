//! Server-to-client traffic through a virtual server (legacy era): an upstream's
//! elicitation reaches the client on the call's stream with a gateway id, the client's answer
//! goes back to the upstream session that asked (ids of two upstreams never collide), a
//! forged or foreign id is refused, `notifications/cancelled` reaches the upstream running
//! the call, progress passes, and upstream sessions declare the client's capabilities.
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
    _upstreams: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn url(&self) -> String {
        format!("http://{}/v/all/mcp", self.gw.addr)
    }
}

/// Two Python upstreams, `alpha` and `beta`, behind the anonymous virtual server `all`.
/// `None` (test skipped) without a Python that has the SDK.
async fn setup() -> Option<Setup> {
    let Some(python) = sdk_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python SDK (scripts/test.sh creates the venv)"
        );
        eprintln!("skipped: no Python with the mcp SDK (run scripts/test.sh once to create it)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, alpha) = python_upstream(&python, "alpha", dir.path()).await;
    let (b, beta) = python_upstream(&python, "beta", dir.path()).await;
    let vs = VirtualServer::new("all", "/v/all/mcp");
    let listener = Listener::new()
        .auth(ListenerAuth::None)
        .virtual_servers(&[vs.name()])
        .route("/mcp", "alpha");
    let yaml = Config::new()
        .listener(listener)
        .virtual_server(vs.anonymous())
        .upstream(Upstream::new("alpha", &alpha))
        .upstream(Upstream::new("beta", &beta))
        .yaml();
    let gw = start_gateway(&yaml).await;
    Some(Setup {
        gw,
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
