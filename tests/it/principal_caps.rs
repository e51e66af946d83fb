//! Per-principal caps on long-lived state (`limits.max_*_per_principal`, `mcp_gateway::caps`):
//! a caller at its cap gets 429 + -32000 naming the limit while another caller is still
//! served, and its place comes back when what held it ends (the stream closes, the session
//! is ended, the parked call is answered). A real gateway with two API-key principals, alice
//! and bob, in front of the real rmcp demo upstream (streams, sessions) or the official
//! Python SDK upstream (parked calls: it asks for input).
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::tokens::RESOURCE;
use crate::common::*;
use crate::hostile::sdk_python;

const ALICE: &str = "Bearer alice-key";
const BOB: &str = "Bearer bob-key";
const MODERN: &str = "2026-07-28";

/// A virtual server `all` for every authenticated caller over upstream `up` at `url`, with
/// `limits`. Held (`stateless: false`): parked calls exist only where the gateway translates.
async fn gateway(url: &str, limits: Limits) -> (Gateway, String) {
    let yaml = Config::new()
        .listener(
            Listener::new()
                .virtual_servers(&["all"])
                .route("/mcp", "up"),
        )
        .upstream(Upstream::new("up", url).held())
        .virtual_server(VirtualServer::new("all", "/v/all/mcp"))
        .auth(
            Auth::new(RESOURCE)
                .api_key(ApiKey::new("alice-key", "alice"))
                .api_key(ApiKey::new("bob-key", "bob")),
        )
        .limits(limits)
        .yaml();
    let gw = start_gateway(&yaml).await;
    let url = format!("http://{}/v/all/mcp", gw.addr);
    (gw, url)
}

/// Poll `check` until it holds (at most 30 s: a bound for a stuck test, not a timing claim).
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

/// A `subscriptions/listen` request of `who`.
async fn listen(url: &str, who: &str, id: u64) -> reqwest::Response {
    let body = json!({"jsonrpc":"2.0","id":id,"method":"subscriptions/listen","params":{
        "notifications":{"toolsListChanged":true},
        "_meta":{"io.modelcontextprotocol/protocolVersion":MODERN,
                 "io.modelcontextprotocol/clientCapabilities":{}}}});
    post(
        url,
        body.to_string(),
        &[
            ("authorization", who),
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "subscriptions/listen"),
        ],
    )
    .await
}

/// Read a stream until its first event arrived; the response stays open.
async fn opened(mut r: reqwest::Response) -> reqwest::Response {
    assert_eq!(r.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(30), r.chunk())
        .await
        .expect("the stream sent nothing")
        .unwrap();
    assert!(first.is_some(), "the stream ended at once");
    r
}

fn held(gw: &Gateway, cap: mcp_gateway::caps::Cap, subject: &str) -> usize {
    let p = mcp_gateway::auth::Principal {
        issuer: mcp_gateway::auth::API_KEY_ISSUER.into(),
        subject: subject.into(),
        name: None,
        groups: vec![],
        roles: vec![],
        scopes: vec![],
        agent: None,
        method: mcp_gateway::auth::AuthMethod::ApiKey,
        expires_at: None,
        token: None,
    };
    gw.shared
        .caps
        .held(cap, mcp_gateway::caps::PrincipalKey::of(Some(&p)))
}

#[tokio::test]
async fn streams_get_and_listen_together_are_capped_per_principal_and_come_back_when_one_closes() {
    use mcp_gateway::caps::Cap;
    let up = start_demo().await;
    let (gw, url) = gateway(
        &up.url(),
        Limits {
            max_streams_per_principal: Some(2),
            ..Limits::default()
        },
    )
    .await;
    let a1 = opened(listen(&url, ALICE, 1).await).await;
    let _a2 = opened(listen(&url, ALICE, 2).await).await;
    let v = assert_error(
        listen(&url, ALICE, 3).await,
        429,
        -32000,
        "limits.max_streams_per_principal",
    )
    .await;
    assert_eq!(
        v["error"]["data"],
        json!({"limit": "max_streams_per_principal", "max": 2}),
        "{v}"
    );
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("you already hold 2 open server-to-client streams"),
        "{m}"
    );
    assert!(m.contains("close a stream"), "{m}");
    // A legacy session's GET stream counts against the same cap.
    let sid = session(&url, ALICE).await;
    assert_error(
        get_stream(&url, ALICE, &sid).await,
        429,
        -32000,
        "limits.max_streams_per_principal",
    )
    .await;
    // Another principal is served meanwhile.
    let _b1 = opened(listen(&url, BOB, 1).await).await;
    assert_eq!(held(&gw, Cap::Streams, "bob"), 1);

    // Alice closes a stream: its place comes back.
    drop(a1);
    assert!(eventually(|| held(&gw, Cap::Streams, "alice") == 1).await);
    let _a3 = opened(listen(&url, ALICE, 3).await).await;
    assert_eq!(held(&gw, Cap::Streams, "alice"), 2);
}

/// Open a handshake-era session as `who`; its id.
async fn session(url: &str, who: &str) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},
        "clientInfo":{"name":"t","version":"0"}}});
    let r = post(url, init.to_string(), &[("authorization", who)]).await;
    assert_eq!(r.status(), 200);
    r.headers()["mcp-session-id"].to_str().unwrap().to_string()
}

/// The session's GET stream.
async fn get_stream(url: &str, who: &str, sid: &str) -> reqwest::Response {
    http()
        .get(url)
        .header("accept", "text/event-stream")
        .header("authorization", who)
        .header("mcp-session-id", sid)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn event_sessions_are_capped_per_principal_and_come_back_when_a_session_ends() {
    use mcp_gateway::caps::Cap;
    let up = start_demo().await;
    let (gw, url) = gateway(
        &up.url(),
        Limits {
            max_event_sessions_per_principal: Some(2),
            ..Limits::default()
        },
    )
    .await;
    let (s1, s2, s3) = (
        session(&url, ALICE).await,
        session(&url, ALICE).await,
        session(&url, ALICE).await,
    );
    // The GET stream is what makes the sessions' events entries here (resource
    // subscriptions and log levels take the same place).
    let g1 = get_stream(&url, ALICE, &s1).await;
    assert_eq!(g1.status(), 200);
    let g2 = get_stream(&url, ALICE, &s2).await;
    assert_eq!(g2.status(), 200);
    assert_eq!(held(&gw, Cap::EventSessions, "alice"), 2);
    let v = assert_error(
        get_stream(&url, ALICE, &s3).await,
        429,
        -32000,
        "limits.max_event_sessions_per_principal",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP DELETE"),
        "{v}"
    );
    // A second stream of a session that has its place takes no other.
    let again = get_stream(&url, ALICE, &s2).await;
    assert_eq!(again.status(), 200);
    // Another principal is served meanwhile.
    let b = session(&url, BOB).await;
    assert_eq!(get_stream(&url, BOB, &b).await.status(), 200);

    // Ending a session gives its place back (closing its stream does not: the session
    // keeps its subscriptions and followers until it ends).
    drop(g1);
    let r = http()
        .delete(&url)
        .header("authorization", ALICE)
        .header("mcp-session-id", &s1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(held(&gw, Cap::EventSessions, "alice"), 1);
    assert_eq!(get_stream(&url, ALICE, &s3).await.status(), 200);
    assert_eq!(held(&gw, Cap::EventSessions, "alice"), 2);
}

/// A 2026-07-28 `tools/call` of `ask` as `who`, declaring elicitation; `params` besides the
/// name and envelope.
async fn ask(url: &str, who: &str, id: u64, mut params: Value) -> reqwest::Response {
    params["name"] = json!("up__ask");
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":MODERN,
        "io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}});
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params});
    post(
        url,
        body.to_string(),
        &[
            ("authorization", who),
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "up__ask"),
        ],
    )
    .await
}

/// The one JSON-RPC answer of an SSE response.
async fn answer(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(30), r.text())
        .await
        .expect("the answer did not end")
        .unwrap()
        .replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|e| {
            let data: Vec<&str> = e
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .find(|m| m.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in {text}"))
}

#[tokio::test]
async fn parked_calls_are_capped_per_principal_and_come_back_when_a_call_ends() {
    use mcp_gateway::caps::Cap;
    let Some(python) = sdk_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python SDK (scripts/test.sh creates the venv)"
        );
        eprintln!("skipped: no Python with the mcp SDK (run scripts/test.sh once to create it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_child, port) = python::start(
        &python,
        "elicit_upstream.py",
        &[std::ffi::OsStr::new("up")],
        Some(dir.path()),
    )
    .await;
    let (gw, url) = gateway(
        &format!("http://127.0.0.1:{port}/mcp"),
        Limits {
            max_parked_calls_per_principal: Some(1),
            ..Limits::default()
        },
    )
    .await;
    let first = answer(ask(&url, ALICE, 1, json!({"arguments":{"question":"who?"}})).await).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let state = first["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_string();
    let key = first["result"]["inputRequests"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap();
    assert_eq!(held(&gw, Cap::ParkedCalls, "alice"), 1);

    // Alice at her cap: refused before anything goes upstream.
    let v = assert_error(
        ask(&url, ALICE, 2, json!({"arguments":{"question":"and?"}})).await,
        429,
        -32000,
        "limits.max_parked_calls_per_principal",
    )
    .await;
    assert_eq!(
        v["error"]["data"],
        json!({"limit": "max_parked_calls_per_principal", "max": 1}),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("finish the pending calls"),
        "{v}"
    );
    assert_eq!(gw.shared.parked.len(), 1, "the refused call parked nothing");
    // Bob is served meanwhile.
    let bob = answer(ask(&url, BOB, 1, json!({"arguments":{"question":"why?"}})).await).await;
    assert_eq!(bob["result"]["resultType"], "input_required", "{bob}");
    assert_eq!(held(&gw, Cap::ParkedCalls, "bob"), 1);

    // Alice answers her call: it ends, and its place comes back.
    let retry = json!({"arguments":{"question":"who?"}, "requestState": state,
        "inputResponses": {key.as_str(): {"action":"accept","content":{"answer":"Ada"}}}});
    let done = answer(ask(&url, ALICE, 3, retry).await).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "up got: Ada",
        "{done}"
    );
    assert!(eventually(|| held(&gw, Cap::ParkedCalls, "alice") == 0).await);
    let again = answer(ask(&url, ALICE, 4, json!({"arguments":{"question":"next?"}})).await).await;
    assert_eq!(again["result"]["resultType"], "input_required", "{again}");
    assert_eq!(held(&gw, Cap::ParkedCalls, "alice"), 1);
}
