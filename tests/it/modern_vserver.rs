//! 2026-07-28 ("modern") requests on a virtual server, beside handshake-era sessions on the
//! same endpoint: a real gateway in front of the real rmcp demo upstream (dual-era; most
//! tests here configure it `stateless: false`, so the gateway holds a handshake-era session
//! for the sessionless client and translates, and [`a_modern_upstream_is_called_statelessly`]
//! lets it speak 2026-07-28), raw HTTP for the protocol's edges and the official Python SDK
//! client in its three modes.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use serde_json::{json, Value};

use crate::common::*;

const MODERN: &str = "2026-07-28";

struct Setup {
    up: demo::DemoServer,
    gw: Gateway,
    url: String,
}

/// An anonymous virtual server `all` over one demo upstream `up`, with `up.echo` marked
/// read-only (so a lost upstream session is healed for it), called through a session the
/// gateway holds (`stateless: false`).
async fn setup() -> Setup {
    setup_with(true).await
}

/// [`setup`], with the upstream held (`stateless: false`) or called statelessly.
async fn setup_with(held: bool) -> Setup {
    let up = start_demo().await;
    let upstream = Upstream::new("up", &up.url());
    let vs = VirtualServer::new("all", "/v/all/mcp").anonymous().tool(
        "up.echo",
        ToolOverride::default().annotations(json!({"readOnlyHint": true})),
    );
    let yaml = Config::new()
        .listener(
            Listener::new()
                .auth(ListenerAuth::None)
                .virtual_servers(&["all"])
                .route("/mcp", "up"),
        )
        .upstream(if held { upstream.held() } else { upstream })
        .virtual_server(vs)
        .yaml();
    let gw = start_gateway(&yaml).await;
    let url = format!("http://{}/v/all/mcp", gw.addr);
    Setup { up, gw, url }
}

/// A dual-era upstream (its `server/discover` lists 2026-07-28) is called statelessly by a
/// 2026-07-28 client: no session is opened or sent, the client's revision and envelope go
/// as sent, `Mcp-Name` is renamed with `params.name`, and the result is the upstream's own
/// (`resultType` written by it). A handshake-era client of the same virtual server still
/// gets a held session there.
#[tokio::test]
async fn a_modern_upstream_is_called_statelessly() {
    let s = setup_with(false).await;
    for id in [3, 4] {
        let r = modern(&s.url, "tools/call", Some("up__echo"), echo(id, "hi")).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("mcp-session-id").is_none());
        let v = jsonrpc_body(r).await;
        assert_eq!(v["id"], id);
        assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
        assert_eq!(v["result"]["resultType"], "complete", "{v}");
        let h = s.up.last_headers().unwrap();
        assert!(h.get("mcp-session-id").is_none(), "{h:?}");
        assert_eq!(h.get("mcp-protocol-version").unwrap(), MODERN);
        assert_eq!(h.get("mcp-name").unwrap(), "echo");
    }
    assert!(
        s.gw.shared.upstream_sessions.held() == 0,
        "no upstream session held for the modern caller"
    );
    // The same server, a handshake-era client: a session held upstream.
    let sid = raw_initialize(&s.url).await;
    let r = post(
        &s.url,
        json!({"jsonrpc":"2.0","id":5,"method":"tools/call",
               "params":{"name":"up__echo","arguments":{"text":"old"}}})
        .to_string(),
        &[
            ("mcp-session-id", sid.as_str()),
            ("mcp-protocol-version", "2025-06-18"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let h = s.up.last_headers().unwrap();
    assert!(h.get("mcp-session-id").is_some(), "{h:?}");
    assert_eq!(h.get("mcp-protocol-version").unwrap(), "2025-06-18");
}

/// A modern request body: `params` plus the `_meta` envelope at `version`.
fn body(id: u64, method: &str, mut params: Value, version: &str) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "0"},
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// POST a modern request with its metadata headers (`name`: `Mcp-Name`).
async fn modern(url: &str, method: &str, name: Option<&str>, body: String) -> reqwest::Response {
    let mut h = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    post(url, body, &h).await
}

fn echo(id: u64, text: &str) -> String {
    body(
        id,
        "tools/call",
        json!({"name": "up__echo", "arguments": {"text": text}}),
        MODERN,
    )
}

#[tokio::test]
async fn discover_list_and_call_need_no_session() {
    let s = setup().await;
    let r = modern(
        &s.url,
        "server/discover",
        None,
        body(1, "server/discover", json!({}), MODERN),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_none());
    let v = jsonrpc_body(r).await;
    let d = &v["result"];
    assert_eq!(d["supportedVersions"], json!([MODERN]), "{v}");
    assert!(d["capabilities"]["tools"].is_object(), "{v}");
    assert_eq!(d["resultType"], "complete");
    assert_eq!(d["cacheScope"], "private");
    assert_eq!(
        d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "all"
    );

    let r = modern(
        &s.url,
        "tools/list",
        None,
        body(2, "tools/list", json!({}), MODERN),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = jsonrpc_body(r).await;
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"up__echo"), "{v}");
    // The per-principal list is private; its ttl is the registry refresh (60 s default).
    assert_eq!(v["result"]["cacheScope"], "private", "{v}");
    assert_eq!(v["result"]["ttlMs"], 60_000, "{v}");
    assert_eq!(v["result"]["resultType"], "complete", "{v}");

    let r = modern(&s.url, "tools/call", Some("up__echo"), echo(3, "hi")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_none());
    let v = jsonrpc_body(r).await;
    assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
    assert_eq!(v["id"], 3);
    // The handshake-era upstream's result, stamped for the modern client.
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
    // Upstream: the gateway's own (handshake-era) session, and `Mcp-Name` renamed together
    // with `params.name`.
    let h = s.up.last_headers().unwrap();
    assert_eq!(h.get("mcp-name").unwrap(), "echo");
    assert!(h.get("mcp-session-id").is_some(), "{h:?}");
    assert_eq!(h.get("mcp-protocol-version").unwrap(), "2025-06-18");
    // A second call reuses the held upstream session (no second initialize).
    let r = modern(&s.url, "tools/call", Some("up__echo"), echo(4, "again")).await;
    assert_eq!(
        jsonrpc_body(r).await["result"]["content"][0]["text"],
        "again"
    );
    assert_eq!(s.up.calls("echo"), 2);
    assert_eq!(s.gw.shared.upstream_sessions.held(), 1);
}

#[tokio::test]
async fn headers_must_match_the_body() {
    let s = setup().await;
    // Mcp-Name naming another tool than the body.
    let r = modern(&s.url, "tools/call", Some("up__add"), echo(1, "x")).await;
    let v = assert_error(r, 400, -32020, "Mcp-Name").await;
    assert_eq!(v["id"], 1);
    // Missing Mcp-Name, wrong Mcp-Method, missing version header.
    let r = modern(&s.url, "tools/call", None, echo(2, "x")).await;
    assert_error(r, 400, -32020, "Mcp-Name").await;
    let r = modern(&s.url, "tools/list", Some("up__echo"), echo(3, "x")).await;
    assert_error(r, 400, -32020, "Mcp-Method").await;
    let r = post(
        &s.url,
        echo(4, "x"),
        &[("mcp-method", "tools/call"), ("mcp-name", "up__echo")],
    )
    .await;
    assert_error(r, 400, -32020, "MCP-Protocol-Version").await;
    // The base64 form of the right name is the right name.
    let r = modern(
        &s.url,
        "tools/call",
        Some("=?base64?dXBfX2VjaG8=?="),
        echo(5, "b64"),
    )
    .await;
    assert_eq!(jsonrpc_body(r).await["result"]["content"][0]["text"], "b64");
    assert_eq!(s.up.calls("echo"), 1, "only the matching call ran");
}

#[tokio::test]
async fn an_unsupported_revision_is_refused_with_the_supported_list() {
    let s = setup().await;
    let r = post(
        &s.url,
        body(1, "tools/list", json!({}), "2099-01-01"),
        &[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/list"),
        ],
    )
    .await;
    let v = assert_error(r, 400, -32022, "unsupported protocol version").await;
    assert_eq!(
        v["error"]["data"]["supported"],
        json!(["2025-03-26", "2025-06-18", "2025-11-25", MODERN])
    );
    assert_eq!(v["error"]["data"]["requested"], "2099-01-01");
}

#[tokio::test]
async fn modern_unknown_methods_are_404_and_legacy_ones_keep_their_code() {
    let s = setup().await;
    for m in ["logging/setLevel", "ping", "initialize"] {
        let r = modern(&s.url, m, None, body(7, m, json!({}), MODERN)).await;
        let v = assert_error(r, 404, -32601, m).await;
        assert_eq!(v["id"], 7);
    }
    // In a legacy session `logging/setLevel` is served (a level is needed), and a method
    // no era serves keeps the handshake era's 200 + -32601.
    let sid = raw_initialize(&s.url).await;
    let r = post(
        &s.url,
        r#"{"jsonrpc":"2.0","id":8,"method":"logging/setLevel"}"#,
        &[("mcp-session-id", &sid)],
    )
    .await;
    assert_error(r, 400, -32602, "params.level").await;
    let r = post(
        &s.url,
        r#"{"jsonrpc":"2.0","id":8,"method":"example/unknown"}"#,
        &[("mcp-session-id", &sid)],
    )
    .await;
    assert_error(r, 200, -32601, "not served").await;
}

/// Quirk `discover-without-envelope`: `server/discover` inside a legacy session (some
/// dual-era clients probe after they initialized) gets a discover answer, and the session
/// goes on working.
#[tokio::test]
async fn a_legacy_session_receiving_server_discover_gets_a_discover_answer() {
    let s = setup().await;
    let sid = raw_initialize(&s.url).await;
    let r = post(
        &s.url,
        r#"{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{}}"#,
        &[
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "2025-06-18"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = jsonrpc_body(r).await;
    assert_eq!(v["result"]["supportedVersions"], json!([MODERN]), "{v}");
    let r = post(
        &s.url,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"still"}}}"#,
        &[("mcp-session-id", &sid)],
    )
    .await;
    assert_eq!(
        jsonrpc_body(r).await["result"]["content"][0]["text"],
        "still"
    );
    // A legacy call carries no Mcp-Name; the gateway adds none.
    assert!(s.up.last_headers().unwrap().get("mcp-name").is_none());
}

/// The upstream restarts (its sessions are gone): the modern caller's held session is
/// reopened and a read-only call resent; a call that may not run twice is reported (502)
/// and the next one works: never a half-alive session.
#[tokio::test]
async fn an_expired_upstream_session_is_healed_or_reported() {
    let s = setup().await;
    let r = modern(&s.url, "tools/call", Some("up__echo"), echo(1, "before")).await;
    assert_eq!(
        jsonrpc_body(r).await["result"]["content"][0]["text"],
        "before"
    );
    let addr = s.up.addr;
    s.up.shutdown().await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let second = demo::DemoServer::start(listener, demo::DemoOptions::default())
        .await
        .unwrap();
    let r = modern(&s.url, "tools/call", Some("up__echo"), echo(2, "after")).await;
    let v = jsonrpc_body(r).await;
    assert_eq!(v["result"]["content"][0]["text"], "after", "{v}");
    assert_eq!(second.calls("echo"), 1);

    second.shutdown().await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let third = demo::DemoServer::start(listener, demo::DemoOptions::default())
        .await
        .unwrap();
    let add = body(
        3,
        "tools/call",
        json!({"name": "up__add", "arguments": {"a": 1, "b": 2}}),
        MODERN,
    );
    let r = modern(&s.url, "tools/call", Some("up__add"), add.clone()).await;
    assert_error(r, 502, -32000, "lost the session").await;
    assert_eq!(third.calls("add"), 0);
    let r = modern(&s.url, "tools/call", Some("up__add"), add).await;
    assert_eq!(jsonrpc_body(r).await["result"]["content"][0]["text"], "3");
    drop(s.gw);
}

/// The official Python SDK client through the virtual server in its three modes: `auto`
/// (discover probe: the gateway answers it, so the client stays modern), `legacy`
/// (initialize + session) and the modern revision pinned (no probe, no handshake).
#[tokio::test]
async fn the_python_sdk_lists_and_calls_in_auto_legacy_and_modern_modes() {
    let Some(python) = crate::hostile::sdk_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python SDK (scripts/test.sh creates the venv)"
        );
        eprintln!("skipped: no Python with the mcp SDK (run scripts/test.sh once to create it)");
        return;
    };
    let s = setup().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/python/sdk_client.py"
    );
    for (mode, version) in [("auto", MODERN), ("legacy", "2025-11-25"), (MODERN, MODERN)] {
        let out = tokio::process::Command::new(&python)
            .args([script, &s.url, mode, "up__echo", mode])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["version"], version, "{mode}: {v}");
        assert!(
            v["tools"].as_array().unwrap().contains(&json!("up__echo")),
            "{mode}: {v}"
        );
        assert_eq!(v["text"], mode, "{mode}: {v}");
        assert_eq!(v["is_error"], false, "{mode}: {v}");
    }
    assert_eq!(s.up.calls("echo"), 3);
}

/// Two calls in flight with one request id from one modern caller (stateless clients often
/// all start at id 1; an anonymous server's callers are one caller): each must get its own
/// answer. The gateway holds the caller's upstream sessions, and an upstream routes answers
/// by id, so the second call takes another session slot while the first runs.
#[tokio::test]
async fn concurrent_calls_with_one_id_get_their_own_answers() {
    let s = setup().await;
    let slow = body(
        7,
        "tools/call",
        json!({"name": "up__long_running", "arguments": {"steps": 2, "interval_ms": 300}}),
        MODERN,
    );
    let url = s.url.clone();
    let first = tokio::spawn(async move {
        jsonrpc_body(modern(&url, "tools/call", Some("up__long_running"), slow).await).await
    });
    // The slow call is in flight upstream before the second one starts.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let second =
        jsonrpc_body(modern(&s.url, "tools/call", Some("up__echo"), echo(7, "second")).await).await;
    let first = first.await.unwrap();
    assert_eq!(second["id"], 7, "{second}");
    assert_eq!(second["result"]["content"][0]["text"], "second", "{second}");
    assert_eq!(first["id"], 7, "{first}");
    assert_eq!(
        first["result"]["content"][0]["text"], "done after 2 steps",
        "{first}"
    );
    // The slot is given back with the answer: the same id again is served at once.
    let again =
        jsonrpc_body(modern(&s.url, "tools/call", Some("up__echo"), echo(7, "again")).await).await;
    assert_eq!(again["result"]["content"][0]["text"], "again", "{again}");
}

/// A handshake-era client's metadata headers that disagree with its body never reach the
/// upstream: a mismatching `Mcp-Method` is refused (-32020), `Mcp-Name` says what the decided
/// body says, and `Mcp-Param-*` (unchecked) are removed.
#[tokio::test]
async fn upstream_metadata_headers_follow_the_decided_body() {
    let s = setup().await;
    let sid = raw_initialize(&s.url).await;
    let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi"}}}"#;
    let r = post(
        &s.url,
        call,
        &[
            ("mcp-session-id", sid.as_str()),
            ("mcp-method", "tools/list"),
        ],
    )
    .await;
    assert_error(r, 400, -32020, "Mcp-Method").await;
    let v = jsonrpc_body(
        post(
            &s.url,
            call,
            &[
                ("mcp-session-id", sid.as_str()),
                ("mcp-method", "tools/call"),
                ("mcp-name", "up__echo"),
                ("mcp-param-text", "something-else"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
    let h = s.up.last_headers().unwrap();
    assert_eq!(h.get("mcp-method").unwrap(), "tools/call");
    assert_eq!(h.get("mcp-name").unwrap(), "echo");
    assert!(h.get("mcp-param-text").is_none(), "{h:?}");
}

/// Poll `check` every 50 ms, at most 10 s: for effects the gateway causes on a task.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    check()
}

/// A modern `tools/call` of the demo's slow tool (20 steps, 250 ms apart).
fn slow_call() -> Value {
    serde_json::from_str(&body(
        1,
        "tools/call",
        json!({"name": "up__long_running", "arguments": {"steps": 20, "interval_ms": 250}}),
        MODERN,
    ))
    .unwrap()
}

/// Send `slow`, close the connection once the upstream runs it, and expect the upstream to
/// see it cancelled (long before its 5 s end).
async fn leave_and_expect_cancel(s: &Setup, slow: Value) {
    let r = modern(
        &s.url,
        "tools/call",
        Some("up__long_running"),
        slow.to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(eventually(|| s.up.calls("long_running") == 1).await);
    drop(r);
    assert!(
        eventually(|| s.up.cancelled() == 1).await,
        "the upstream never saw the call cancelled"
    );
}

/// A 2026-07-28 client cancels by closing its response stream: the gateway tells the
/// handshake-era upstream (`notifications/cancelled` on the session it holds), which stops
/// the tool; the caller's next call with the same id is served.
#[tokio::test]
async fn a_modern_client_closing_the_stream_cancels_the_upstream_call() {
    let s = setup().await;
    leave_and_expect_cancel(&s, slow_call()).await;
    let r = modern(&s.url, "tools/call", Some("up__echo"), echo(1, "next")).await;
    assert_eq!(
        jsonrpc_body(r).await["result"]["content"][0]["text"],
        "next"
    );
}

/// The same for a body over 64 KiB, which the gateway forwards itself (`proxy::forward`,
/// past Pingora's retry buffer): it watches the client while the upstream is silent, so
/// closing the stream still cancels the call upstream instead of letting it run to its end.
#[tokio::test]
async fn a_modern_call_over_64_kib_is_cancelled_when_its_client_leaves() {
    let s = setup().await;
    let mut slow = slow_call();
    slow["params"]["_meta"]["x-pad"] = json!("p".repeat(70 * 1024));
    leave_and_expect_cancel(&s, slow).await;
}

/// `subscriptions/listen`: the stream opens with the acknowledgement of the types asked
/// for, and a change of what the caller may see (here a reload that denies a tool) arrives
/// as `notifications/tools/list_changed` tagged with the subscription id. The number of
/// streams is bounded (503 when this replica serves its most).
#[tokio::test]
async fn listen_receives_tools_list_changed() {
    let s = setup().await;
    let listen = || {
        body(
            9,
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["x://y"]}}),
            MODERN,
        )
    };
    let r = modern(&s.url, "subscriptions/listen", None, listen()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    let reader = tokio::spawn(async move {
        use futures::StreamExt;
        let mut body = r.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    let text = || seen.lock().unwrap().clone();
    assert!(eventually(|| text().contains("notifications/subscriptions/acknowledged")).await);
    // Only what is honoured is acknowledged: the tool list, not per-URI subscriptions.
    assert!(
        text().contains(r#""notifications":{"toolsListChanged":true}"#),
        "{}",
        text()
    );
    assert!(text().contains(r#""io.modelcontextprotocol/subscriptionId":9"#));

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gw.yaml");
    let denied = Config::new()
        .listener(
            Listener::new()
                .auth(ListenerAuth::None)
                .virtual_servers(&["all"])
                .route("/mcp", "up"),
        )
        .upstream(Upstream::new("up", &s.up.url()))
        .virtual_server(
            VirtualServer::new("all", "/v/all/mcp")
                .anonymous()
                .deny_tools(&["up.add"]),
        )
        .yaml();
    std::fs::write(&conf, render(&denied, s.gw.addr, s.gw.admin)).unwrap();
    s.gw.shared.reload(&conf).unwrap();
    assert!(
        eventually(|| text().contains("notifications/tools/list_changed")).await,
        "{}",
        text()
    );
    let change = text()
        .lines()
        .find(|l| l.contains("notifications/tools/list_changed"))
        .unwrap()
        .to_string();
    assert!(
        change.contains(r#""_meta":{"io.modelcontextprotocol/subscriptionId":9}"#),
        "{change}"
    );
    assert!(!text().contains("prompts/list_changed"), "not asked for");

    // Every permit taken: the next listen is refused, not queued.
    let all =
        s.gw.shared
            .server_streams
            .clone()
            .try_acquire_many_owned(s.gw.shared.server_streams.available_permits() as u32)
            .unwrap();
    let r = modern(&s.url, "subscriptions/listen", None, listen()).await;
    assert_error(r, 503, -32000, "server-to-client streams").await;
    drop(all);
    reader.abort();
}

/// Start `tests/fixtures/python/<script>` with `python` on `port`; waits until it listens.
async fn python_server(python: &std::path::Path, script: &str, port: u16) -> python::Child {
    python::start_on(python, script, port, &[], None).await
}

/// The official Python SDK client in its three modes (`auto`, `legacy`, the modern revision
/// pinned) through one virtual server over two upstream implementations, rmcp (the demo,
/// handshake-era) and FastMCP (dual-era; the gateway holds a handshake-era session with it
/// either way). Then FastMCP restarts, losing every session: a modern client's next call
/// works (the held session is re-initialised and the read-only call resent).
#[tokio::test]
async fn the_python_sdk_in_every_mode_against_rmcp_and_fastmcp_upstreams() {
    let Some(python) = crate::hostile::sdk_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python SDK (scripts/test.sh creates the venv)"
        );
        eprintln!("skipped: no Python with the mcp SDK (run scripts/test.sh once to create it)");
        return;
    };
    let has_fastmcp = std::process::Command::new(&python)
        .args(["-c", "import fastmcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fastmcp {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide FastMCP (scripts/python-sdk.sh installs it)"
        );
        eprintln!("skipped: no FastMCP in the venv (run scripts/python-sdk.sh once)");
        return;
    }
    let up = start_demo().await;
    let port = free_port();
    let fastmcp = python_server(&python, "fastmcp_upstream.py", port).await;
    let fm_url = format!("http://127.0.0.1:{port}/mcp");
    let vs = VirtualServer::new("all", "/v/all/mcp").anonymous().tool(
        "fm.echo",
        ToolOverride::default().annotations(json!({"readOnlyHint": true})),
    );
    let yaml = Config::new()
        .listener(
            Listener::new()
                .auth(ListenerAuth::None)
                .virtual_servers(&["all"])
                .route("/mcp", "up"),
        )
        .upstream(Upstream::new("up", &up.url()))
        .upstream(Upstream::new("fm", &fm_url))
        .virtual_server(vs)
        .yaml();
    let gw = start_gateway(&yaml).await;
    let url = format!("http://{}/v/all/mcp", gw.addr);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/python/sdk_client.py"
    );
    let run = |mode: &'static str, tool: &'static str| {
        let (python, url) = (python.clone(), url.clone());
        async move {
            let out = tokio::process::Command::new(&python)
                .args([script, &url, mode, tool, mode])
                .output()
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{mode} {tool}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_str::<Value>(stdout.trim()).unwrap()
        }
    };
    for (mode, version) in [("auto", MODERN), ("legacy", "2025-11-25"), (MODERN, MODERN)] {
        for (tool, text) in [
            ("up__echo", mode.to_string()),
            ("fm__echo", format!("fastmcp: {mode}")),
        ] {
            let v = run(mode, tool).await;
            assert_eq!(v["version"], version, "{mode} {tool}: {v}");
            let tools = v["tools"].as_array().unwrap();
            assert!(
                tools.contains(&json!("up__echo")) && tools.contains(&json!("fm__echo")),
                "{mode}: {v}"
            );
            assert_eq!(v["text"], text, "{mode} {tool}: {v}");
            assert_eq!(v["is_error"], false, "{mode} {tool}: {v}");
        }
    }
    assert_eq!(up.calls("echo"), 3);

    // FastMCP restarts: the sessions the gateway held with it are gone (it answers 404).
    drop(fastmcp);
    let _fastmcp = python_server(&python, "fastmcp_upstream.py", port).await;
    let v = run(MODERN, "fm__echo").await;
    assert_eq!(v["text"], format!("fastmcp: {MODERN}"), "{v}");
    assert_eq!(v["is_error"], false, "{v}");
}

/// The same for a call the gateway forwards itself because its client could be asked for
/// input (`proxy::mrtr`: the client declared elicitation): closing the stream while the
/// upstream is silent cancels the call upstream.
#[tokio::test]
async fn a_bridged_modern_call_is_cancelled_when_its_client_leaves() {
    let s = setup().await;
    let mut slow = slow_call();
    slow["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"elicitation": {}});
    leave_and_expect_cancel(&s, slow).await;
}
