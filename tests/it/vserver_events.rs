//! Logging, subscriptions and resource URIs in results through a virtual server, against two
//! real upstreams on the official Python SDK (`tests/fixtures/python/items_upstream.py`,
//! `items` and `more`, the second refusing the level `critical` and answering with event
//! streams): `logging/setLevel` fanned
//! out to both (and a clear error naming the one that refused), `resources/subscribe`
//! reaching the upstream under its own URI and the upstream's update reaching the client's
//! GET stream under the exposed one, a hidden URI refused without reaching the upstream, and
//! the URIs in `resources/read` and `tools/call` results exposed, and a call's log messages
//! reaching a legacy client as sent and a 2026-07-28 client from the level it asked for.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::tokens::*;
use crate::common::*;
use crate::hostile::{sdk_python, Child};

const HMAC: &[u8] = b"vserver-events-test-hmac-secret-012";
const PATH: &str = "/v/docs/mcp";
const README: &str = "file://mcpgw/items////docs/readme.md";
const SECRET: &str = "secret://mcpgw/items///vault/key";

struct Upstream {
    log: std::path::PathBuf,
    port: u16,
    _child: Child,
}

impl Upstream {
    /// What reached it, one line a request.
    fn seen(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

struct Setup {
    gw: Gateway,
    items: Upstream,
    more: Upstream,
    _dir: tempfile::TempDir,
}

/// The gateway's configuration: `docs` over `items` and `more`, resources matching `deny`
/// hidden from everyone.
fn config(items: u16, more: u16, hmac: &std::path::Path, deny: &[&str]) -> String {
    let url = |p: u16| format!("http://127.0.0.1:{p}/mcp");
    Config::new()
        .listener(Listener::new().route("/mcp", "items"))
        .upstream(crate::common::Upstream::new("items", &url(items)))
        .upstream(crate::common::Upstream::new("more", &url(more)))
        .auth(
            Auth::new(RESOURCE)
                .jwt(Jwt::test_issuer(JwtKey::hs256(SecretRef::file(hmac))).audiences(&[AUDIENCE])),
        )
        .virtual_server(VirtualServer::new("docs", PATH).set("deny_resources", json!(deny)))
        .yaml()
}

impl Setup {
    fn url(&self) -> String {
        format!("http://{}{PATH}", self.gw.addr)
    }
}

async fn upstream(
    python: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    flags: &[&str],
) -> Upstream {
    let log = dir.join(format!("{name}.log"));
    let mut args: Vec<&std::ffi::OsStr> = vec![log.as_os_str()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    let (child, port) = python::start(python, "items_upstream.py", &args, Some(dir)).await;
    Upstream {
        log,
        port,
        _child: child,
    }
}

/// Virtual server `docs` over `items` and `more`; `secret:*` resources hidden from everyone.
/// `None` (skipped) without a Python that has the SDK.
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
    let items = upstream(&python, dir.path(), "items", &[]).await;
    let more = upstream(&python, dir.path(), "more", &["refuse-critical", "sse"]).await;
    let hmac = dir.path().join("hmac");
    std::fs::write(&hmac, HMAC).unwrap();
    let yaml = config(items.port, more.port, &hmac, &["*.secret:*"]);
    let gw = start_gateway(&yaml).await;
    Some(Setup {
        gw,
        items,
        more,
        _dir: dir,
    })
}

fn token(sub: &str) -> String {
    format!("Bearer {}", hs256(&claims(sub), HMAC, None))
}

async fn open(s: &Setup, auth: &str) -> (String, Value) {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let r = post(&s.url(), init.to_string(), &[("authorization", auth)]).await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let v = jsonrpc_body(r).await;
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let h = [("authorization", auth), ("mcp-session-id", sid.as_str())];
    assert_eq!(post(&s.url(), note, &h).await.status(), 202);
    (sid, v["result"].clone())
}

async fn call(s: &Setup, auth: &str, sid: &str, method: &str, params: Value) -> reqwest::Response {
    let body = json!({"jsonrpc":"2.0","id":7,"method":method,"params":params});
    let h = [("authorization", auth), ("mcp-session-id", sid)];
    post(&s.url(), body.to_string(), &h).await
}

async fn ok(s: &Setup, auth: &str, sid: &str, method: &str, params: Value) -> Value {
    let r = call(s, auth, sid, method, params).await;
    assert_eq!(r.status(), 200, "{method}");
    let v = jsonrpc_body(r).await;
    assert!(v.get("result").is_some(), "{method}: {v}");
    v
}

/// The session's GET stream, read into a channel of lines.
async fn stream(s: &Setup, auth: &str, sid: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let r = http()
        .get(s.url())
        .header("accept", "text/event-stream")
        .header("authorization", auth)
        .header("mcp-session-id", sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut body = r.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = text.find('\n') {
                let line: String = text.drain(..=i).collect();
                if let Some(d) = line.strip_prefix("data:") {
                    let _ = tx.send(d.trim().to_string());
                }
            }
        }
    });
    rx
}

/// The next message on the stream with `method` (a failure after 20 s: the event never came).
async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, method: &str) -> Value {
    let wait = async {
        while let Some(line) = rx.recv().await {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["method"] == method {
                return v;
            }
        }
        panic!("stream ended before {method}");
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no {method} on the GET stream"))
}

#[tokio::test]
async fn set_level_reaches_every_upstream_and_a_refusal_names_its_upstream() {
    let Some(s) = setup().await else { return };
    let alice = token("alice");
    let (sid, init) = open(&s, &alice).await;
    assert!(init["capabilities"]["logging"].is_object(), "{init}");
    assert_eq!(
        init["capabilities"]["resources"]["subscribe"], true,
        "{init}"
    );
    ok(
        &s,
        &alice,
        &sid,
        "logging/setLevel",
        json!({"level": "debug"}),
    )
    .await;
    assert!(
        s.items.seen().contains(&"setLevel debug".to_string()),
        "{:?}",
        s.items.seen()
    );
    assert!(
        s.more.seen().contains(&"setLevel debug".to_string()),
        "{:?}",
        s.more.seen()
    );

    // `more` refuses `critical`: one answer, naming it; `items` took it.
    let r = call(
        &s,
        &alice,
        &sid,
        "logging/setLevel",
        json!({"level": "critical"}),
    )
    .await;
    let v = assert_error(
        r,
        502,
        -32000,
        "logging/setLevel failed on upstream \"more\"",
    )
    .await;
    assert_eq!(v["error"]["data"]["failed"][0]["upstream"], "more", "{v}");
    assert_eq!(
        v["error"]["data"]["failed"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    assert!(s.items.seen().contains(&"setLevel critical".to_string()));

    // Not a level: refused by the gateway, nothing sent.
    let r = call(
        &s,
        &alice,
        &sid,
        "logging/setLevel",
        json!({"level": "loud"}),
    )
    .await;
    assert_error(r, 400, -32602, "one of debug, info").await;
    assert!(!s.items.seen().iter().any(|l| l.contains("loud")));

    // `ping` is answered by the gateway in a session.
    let pong = ok(&s, &alice, &sid, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
}

#[tokio::test]
async fn a_subscription_delivers_updates_with_the_exposed_uri_and_upstream_logs() {
    let Some(s) = setup().await else { return };
    let alice = token("alice");
    let (sid, _) = open(&s, &alice).await;
    let mut events = stream(&s, &alice, &sid).await;
    ok(
        &s,
        &alice,
        &sid,
        "resources/subscribe",
        json!({"uri": README}),
    )
    .await;
    assert!(
        s.items
            .seen()
            .contains(&"subscribe file:///docs/readme.md".to_string()),
        "the upstream got its own URI: {:?}",
        s.items.seen()
    );
    // The upstream announces a change (and logs) on its own server-to-client stream.
    ok(
        &s,
        &alice,
        &sid,
        "tools/call",
        json!({"name": "items__touch", "arguments": {"uri": "file:///docs/readme.md"}}),
    )
    .await;
    let updated = next(&mut events, "notifications/resources/updated").await;
    assert_eq!(updated["params"]["uri"], README, "{updated}");
    let log = next(&mut events, "notifications/message").await;
    assert_eq!(
        log["params"]["data"], "touched file:///docs/readme.md",
        "{log}"
    );

    // An update for a URI this session did not subscribe to is not relayed.
    ok(
        &s,
        &alice,
        &sid,
        "resources/unsubscribe",
        json!({"uri": README}),
    )
    .await;
    assert!(s
        .items
        .seen()
        .contains(&"unsubscribe file:///docs/readme.md".to_string()));
    ok(
        &s,
        &alice,
        &sid,
        "tools/call",
        json!({"name": "items__touch", "arguments": {"uri": "file:///docs/readme.md"}}),
    )
    .await;
    // The log message of that second touch comes; no update before it.
    let wait = async {
        while let Some(line) = events.recv().await {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_ne!(v["method"], "notifications/resources/updated", "{v}");
            if v["method"] == "notifications/message" {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_hidden_uri_is_refused_like_a_read_and_never_reaches_the_upstream() {
    let Some(s) = setup().await else { return };
    let alice = token("alice");
    let (sid, _) = open(&s, &alice).await;
    for method in ["resources/read", "resources/subscribe"] {
        let r = call(&s, &alice, &sid, method, json!({"uri": SECRET})).await;
        assert_error(r, 200, -32602, "unknown resource").await;
    }
    let r = call(
        &s,
        &alice,
        &sid,
        "resources/subscribe",
        json!({"uri": "file://mcpgw/nope///x"}),
    )
    .await;
    assert_error(r, 200, -32602, "unknown resource").await;
    assert!(
        !s.items.seen().iter().any(|l| l.contains("secret")),
        "{:?}",
        s.items.seen()
    );
}

/// 64 subscriptions per session (expanded template URIs, each one a new subscription); the
/// 65th is refused before it reaches the upstream, and an unsubscribe makes room again.
#[tokio::test]
async fn subscriptions_are_capped_per_session() {
    let Some(s) = setup().await else { return };
    let alice = token("alice");
    let (sid, _) = open(&s, &alice).await;
    let note = |n: usize| format!("notes://mcpgw/items///{n}");
    for n in 0..64 {
        ok(
            &s,
            &alice,
            &sid,
            "resources/subscribe",
            json!({"uri": note(n)}),
        )
        .await;
    }
    // The same one again is no new subscription.
    ok(
        &s,
        &alice,
        &sid,
        "resources/subscribe",
        json!({"uri": note(0)}),
    )
    .await;
    let r = call(
        &s,
        &alice,
        &sid,
        "resources/subscribe",
        json!({"uri": note(64)}),
    )
    .await;
    assert_error(r, 400, -32602, "64 resource subscriptions").await;
    assert!(!s.items.seen().contains(&"subscribe notes://64".to_string()));
    ok(
        &s,
        &alice,
        &sid,
        "resources/unsubscribe",
        json!({"uri": note(3)}),
    )
    .await;
    ok(
        &s,
        &alice,
        &sid,
        "resources/subscribe",
        json!({"uri": note(64)}),
    )
    .await;
    assert!(s.items.seen().contains(&"subscribe notes://64".to_string()));
    // Another session has its own count.
    let (other, _) = open(&s, &alice).await;
    ok(
        &s,
        &alice,
        &other,
        "resources/subscribe",
        json!({"uri": note(65)}),
    )
    .await;
}

#[tokio::test]
async fn resource_uris_in_results_are_the_exposed_ones() {
    let Some(s) = setup().await else { return };
    let alice = token("alice");
    let (sid, _) = open(&s, &alice).await;
    let read = ok(&s, &alice, &sid, "resources/read", json!({"uri": README})).await;
    assert_eq!(read["result"]["contents"][0]["uri"], README, "{read}");
    assert_eq!(read["result"]["contents"][0]["text"], "# Readme", "{read}");
    let links = ok(
        &s,
        &alice,
        &sid,
        "tools/call",
        json!({"name": "items__links", "arguments": {}}),
    )
    .await;
    let content = &links["result"]["content"];
    assert_eq!(content[0]["uri"], README, "{links}");
    assert_eq!(
        content[1]["resource"]["uri"], "notes://mcpgw/items///7",
        "{links}"
    );
    // What the client was given reads back through the server.
    let again = ok(
        &s,
        &alice,
        &sid,
        "resources/read",
        json!({"uri": content[1]["resource"]["uri"]}),
    )
    .await;
    assert_eq!(again["result"]["contents"][0]["text"], "note 7", "{again}");

    // A 2026-07-28 read: the URI exposed and the result stamped, both on one body.
    let body = json!({"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri": README,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let h = [
        ("authorization", alice.as_str()),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "resources/read"),
        ("mcp-name", README),
    ];
    let r = post(&s.url(), body.to_string(), &h).await;
    assert_eq!(r.status(), 200);
    let v = jsonrpc_body(r).await;
    assert_eq!(v["result"]["contents"][0]["uri"], README, "{v}");
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
}

/// The `data:` messages of an SSE answer.
/// The JSON-RPC messages of an answer: each `data:` of an event stream, or a JSON body's one
/// (a 2026-07-28 upstream with nothing to stream first answers with plain JSON).
async fn messages(r: reqwest::Response) -> Vec<Value> {
    let text = r.text().await.unwrap();
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return vec![v];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

fn logged(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .map(|m| m["params"]["data"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_calls_log_messages_reach_a_legacy_client_and_a_modern_one_from_its_level() {
    let Some(s) = setup().await else { return };
    let alice = token("alice");
    let (sid, _) = open(&s, &alice).await;
    let shout = json!({"name": "more__shout", "arguments": {}});
    let r = call(&s, &alice, &sid, "tools/call", shout.clone()).await;
    assert_eq!(r.status(), 200);
    let m = messages(r).await;
    assert_eq!(logged(&m), ["quiet", "loud"], "{m:?}");

    const MODERN: &str = "2026-07-28";
    let modern = |level: Option<&str>| {
        let mut meta = json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        if let Some(l) = level {
            meta["io.modelcontextprotocol/logLevel"] = json!(l);
        }
        let mut params = shout.clone();
        params["_meta"] = meta;
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":params}).to_string()
    };
    let h = [
        ("authorization", alice.as_str()),
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "more__shout"),
    ];
    let r = post(&s.url(), modern(Some("warning")), &h).await;
    assert_eq!(r.status(), 200);
    let m = messages(r).await;
    assert_eq!(logged(&m), ["loud"], "{m:?}");
    assert_eq!(
        m.last().unwrap()["result"]["content"][0]["text"],
        "shouted",
        "{m:?}"
    );
    let r = post(&s.url(), modern(None), &h).await;
    let m = messages(r).await;
    assert!(logged(&m).is_empty(), "none asked, none sent: {m:?}");
    assert!(m.iter().any(|v| v["result"].is_object()), "{m:?}");
}

/// A resource hidden after the subscription (a reload denies it): its updates stop reaching
/// the client (the upstream's log message of the same change still does), and the client's
/// unsubscribe of it passes and reaches the upstream, while an unsubscribe of a hidden URI
/// the session never subscribed to is refused as unknown, without reaching the upstream.
#[tokio::test]
async fn a_resource_hidden_after_subscribing_stops_updating_and_can_be_unsubscribed() {
    let Some(s) = setup().await else { return };
    let alice = token("alice");
    let (sid, _) = open(&s, &alice).await;
    let mut events = stream(&s, &alice, &sid).await;
    ok(
        &s,
        &alice,
        &sid,
        "resources/subscribe",
        json!({"uri": README}),
    )
    .await;
    let touch = json!({"name": "items__touch", "arguments": {"uri": "file:///docs/readme.md"}});
    ok(&s, &alice, &sid, "tools/call", touch.clone()).await;
    let updated = next(&mut events, "notifications/resources/updated").await;
    assert_eq!(updated["params"]["uri"], README, "{updated}");
    next(&mut events, "notifications/message").await;

    let conf = s._dir.path().join("gw.yaml");
    let hidden = config(
        s.items.port,
        s.more.port,
        &s._dir.path().join("hmac"),
        &["*.secret:*", "items.file:*"],
    );
    std::fs::write(&conf, render(&hidden, s.gw.addr, s.gw.admin)).unwrap();
    s.gw.shared.reload(&conf).unwrap();
    ok(&s, &alice, &sid, "tools/call", touch).await;
    // The log message of that touch comes; no update before it.
    let wait = async {
        while let Some(line) = events.recv().await {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_ne!(v["method"], "notifications/resources/updated", "{v}");
            if v["method"] == "notifications/message" {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap();
    let r = call(&s, &alice, &sid, "resources/read", json!({"uri": README})).await;
    assert_error(r, 200, -32602, "unknown resource").await;

    ok(
        &s,
        &alice,
        &sid,
        "resources/unsubscribe",
        json!({"uri": README}),
    )
    .await;
    assert!(s
        .items
        .seen()
        .contains(&"unsubscribe file:///docs/readme.md".to_string()));
    // Unsubscribed now: a second one needs visibility again, and a hidden URI never
    // subscribed to stays unknown.
    for uri in [README, SECRET] {
        let r = call(
            &s,
            &alice,
            &sid,
            "resources/unsubscribe",
            json!({"uri": uri}),
        )
        .await;
        assert_error(r, 200, -32602, "unknown resource").await;
    }
    assert!(!s.items.seen().iter().any(|l| l.contains("secret")));
}
