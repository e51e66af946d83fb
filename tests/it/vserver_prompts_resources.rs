//! Prompts and resources through a virtual server, both eras, against a real upstream (the
//! official Python SDK, `tests/fixtures/python/items_upstream.py`): lists filtered per
//! caller, `prompts/get` and `resources/read` reaching the upstream under its own names and
//! URIs (an MCP Apps `ui://` view and a client-expanded template included), hidden and
//! unknown ones refused alike without reaching the upstream.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::tokens::*;
use crate::common::*;
use crate::hostile::{sdk_python, Child};

const HMAC: &[u8] = b"vserver-items-test-hmac-secret-0123";
const PATH: &str = "/v/docs/mcp";
const MODERN: &str = "2026-07-28";

struct Setup {
    gw: Gateway,
    log: std::path::PathBuf,
    _upstream: Child,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn url(&self) -> String {
        format!("http://{}{PATH}", self.gw.addr)
    }
    /// What reached the upstream, one prompt name or resource URI a line.
    fn seen(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The upstream `items` behind virtual server `docs`: everyone gets prompt `greet` and
/// resources but `secret://*`; group `ops` also gets `secret://*`; nobody gets
/// `secret_plan`. `None` (skipped) without a Python that has the SDK.
async fn setup() -> Option<Setup> {
    setup_with(Registry::default()).await
}

/// [`setup`] with `registry` settings.
async fn setup_with(registry: Registry) -> Option<Setup> {
    let Some(python) = sdk_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python SDK (scripts/test.sh creates the venv)"
        );
        eprintln!("skipped: no Python with the mcp SDK (run scripts/test.sh once to create it)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.log");
    let (child, port) = python::start(
        &python,
        "items_upstream.py",
        &[log.as_os_str()],
        Some(dir.path()),
    )
    .await;
    let hmac = dir.path().join("hmac");
    std::fs::write(&hmac, HMAC).unwrap();
    let yaml =
        Config::new()
            .listener(Listener::new().route("/mcp", "items"))
            .upstream(Upstream::new(
                "items",
                &format!("http://127.0.0.1:{port}/mcp"),
            ))
            .auth(Auth::new(RESOURCE).jwt(
                Jwt::test_issuer(JwtKey::hs256(SecretRef::file(&hmac))).audiences(&[AUDIENCE]),
            ))
            .virtual_server(
                VirtualServer::new("docs", PATH)
                    .set("deny_prompts", json!(["items.secret_plan"]))
                    .set(
                        "allow_resources",
                        json!(["items.file:*", "items.ui:*", "items.notes:*"]),
                    )
                    .set(
                        "rules",
                        json!([{ "groups": ["ops"], "allow_resources": ["items.secret:*"] }]),
                    ),
            )
            .registry(registry)
            .yaml();
    let gw = start_gateway(&yaml).await;
    Some(Setup {
        gw,
        log,
        _upstream: child,
        _dir: dir,
    })
}

fn token(sub: &str, groups: &[&str]) -> String {
    let mut c = claims(sub);
    c["groups"] = json!(groups);
    format!("Bearer {}", hs256(&c, HMAC, None))
}

/// A legacy session for `auth`; returns its id and the `initialize` result.
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

async fn legacy(s: &Setup, auth: &str, sid: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc":"2.0","id":7,"method":method,"params":params});
    let h = [("authorization", auth), ("mcp-session-id", sid)];
    let r = post(&s.url(), body.to_string(), &h).await;
    assert_eq!(r.status(), 200, "{method}");
    jsonrpc_body(r).await
}

async fn modern(
    s: &Setup,
    auth: &str,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "0"},
    });
    let body = json!({"jsonrpc":"2.0","id":9,"method":method,"params":params});
    let mut h = vec![
        ("authorization", auth),
        ("mcp-protocol-version", MODERN),
        ("mcp-method", method),
    ];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    let r = post(&s.url(), body.to_string(), &h).await;
    assert_eq!(r.status(), 200, "{method}");
    jsonrpc_body(r).await
}

fn names(list: &Value, key: &str) -> Vec<String> {
    let mut n: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[key].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

const README: &str = "file://mcpgw/items////docs/readme.md";
const VIEW: &str = "ui://mcpgw/items///weather/view.html";
const SECRET: &str = "secret://mcpgw/items///vault/key";

#[tokio::test]
async fn lists_are_filtered_per_caller_and_capabilities_declared() {
    let Some(s) = setup().await else { return };
    let alice = token("alice", &[]);
    let (sid, init) = open(&s, &alice).await;
    assert!(init["capabilities"]["prompts"].is_object(), "{init}");
    assert!(init["capabilities"]["resources"].is_object(), "{init}");
    assert!(init["capabilities"]["completions"].is_object(), "{init}");
    let prompts = legacy(&s, &alice, &sid, "prompts/list", json!({})).await;
    assert_eq!(
        names(&prompts["result"]["prompts"], "name"),
        ["items__greet"]
    );
    let resources = legacy(&s, &alice, &sid, "resources/list", json!({})).await;
    assert_eq!(
        names(&resources["result"]["resources"], "uri"),
        [README, VIEW]
    );
    let templates = legacy(&s, &alice, &sid, "resources/templates/list", json!({})).await;
    assert_eq!(
        names(&templates["result"]["resourceTemplates"], "uriTemplate"),
        ["notes://mcpgw/items///{id}"]
    );
    let ops = token("olga", &["ops"]);
    let (sid, _) = open(&s, &ops).await;
    let resources = legacy(&s, &ops, &sid, "resources/list", json!({})).await;
    assert_eq!(
        names(&resources["result"]["resources"], "uri"),
        [README, SECRET, VIEW]
    );
}

#[tokio::test]
async fn get_and_read_reach_the_upstream_under_its_own_names_in_both_eras() {
    let Some(s) = setup().await else { return };
    let alice = token("alice", &[]);
    let (sid, _) = open(&s, &alice).await;
    let got = legacy(
        &s,
        &alice,
        &sid,
        "prompts/get",
        json!({"name": "items__greet", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(
        got["result"]["messages"][0]["content"]["text"], "Hello, Ada!",
        "{got}"
    );
    let read = legacy(&s, &alice, &sid, "resources/read", json!({"uri": VIEW})).await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "<html>weather</html>",
        "{read}"
    );
    // A template the client expanded: never listed, decided by the patterns on its URI.
    let note = "notes://mcpgw/items///42";
    let read = legacy(&s, &alice, &sid, "resources/read", json!({"uri": note})).await;
    assert_eq!(read["result"]["contents"][0]["text"], "note 42", "{read}");

    let got = modern(
        &s,
        &alice,
        "prompts/get",
        Some("items__greet"),
        json!({"name": "items__greet", "arguments": {"name": "Bo"}}),
    )
    .await;
    assert_eq!(
        got["result"]["messages"][0]["content"]["text"], "Hello, Bo!",
        "{got}"
    );
    assert_eq!(got["result"]["resultType"], "complete", "{got}");
    let read = modern(
        &s,
        &alice,
        "resources/read",
        Some(README),
        json!({"uri": README}),
    )
    .await;
    assert_eq!(read["result"]["contents"][0]["text"], "# Readme", "{read}");
    let list = modern(&s, &alice, "prompts/list", None, json!({})).await;
    assert_eq!(names(&list["result"]["prompts"], "name"), ["items__greet"]);
    assert_eq!(list["result"]["cacheScope"], "private");

    assert_eq!(
        s.seen(),
        [
            "greet",
            "ui://weather/view.html",
            "notes://42",
            "greet",
            "file:///docs/readme.md"
        ]
    );
}

#[tokio::test]
async fn hidden_and_unknown_items_are_refused_alike_and_never_reach_the_upstream() {
    let Some(s) = setup().await else { return };
    let alice = token("alice", &[]);
    let (sid, _) = open(&s, &alice).await;
    let mut messages = Vec::new();
    for (method, params) in [
        ("prompts/get", json!({"name": "items__secret_plan"})),
        ("prompts/get", json!({"name": "items__nope"})),
        ("resources/read", json!({"uri": SECRET})),
        ("resources/read", json!({"uri": "secret://vault/key"})),
        (
            "resources/read",
            json!({"uri": "file://mcpgw/other////etc/passwd"}),
        ),
    ] {
        let v = legacy(&s, &alice, &sid, method, params.clone()).await;
        assert_eq!(v["error"]["code"], -32602, "{method} {params}: {v}");
        messages.push(v["error"]["message"].as_str().unwrap().to_string());
    }
    assert!(
        messages[0].starts_with("unknown prompt: items__secret_plan"),
        "{messages:?}"
    );
    assert!(
        messages[2].starts_with("unknown resource: secret:"),
        "{messages:?}"
    );
    let v = modern(
        &s,
        &alice,
        "resources/read",
        Some(SECRET),
        json!({"uri": SECRET}),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(s.seen().is_empty(), "{:?}", s.seen());
    // The caller the rule lets in reads it.
    let ops = token("olga", &["ops"]);
    let (sid, _) = open(&s, &ops).await;
    let v = legacy(&s, &ops, &sid, "resources/read", json!({"uri": SECRET})).await;
    assert_eq!(v["result"]["contents"][0]["text"], "s3cr3t", "{v}");
    assert_eq!(s.seen(), ["secret://vault/key"]);
}

#[tokio::test]
async fn completions_reach_the_upstream_for_its_own_prompt_or_template() {
    let Some(s) = setup().await else { return };
    let alice = token("alice", &[]);
    let (sid, _) = open(&s, &alice).await;
    let complete = |r: Value| json!({"ref": r, "argument": {"name": "name", "value": "A"}});
    let v = legacy(
        &s,
        &alice,
        &sid,
        "completion/complete",
        complete(json!({"type": "ref/prompt", "name": "items__greet"})),
    )
    .await;
    assert_eq!(
        v["result"]["completion"]["values"],
        json!(["greet:Ax"]),
        "{v}"
    );
    let template = "notes://mcpgw/items///{id}";
    let v = modern(
        &s,
        &alice,
        "completion/complete",
        None,
        complete(json!({"type": "ref/resource", "uri": template})),
    )
    .await;
    assert_eq!(
        v["result"]["completion"]["values"],
        json!(["notes://{id}:Ax"]),
        "{v}"
    );
    // A hidden prompt is as unknown here as in prompts/get.
    let v = legacy(
        &s,
        &alice,
        &sid,
        "completion/complete",
        complete(json!({"type": "ref/prompt", "name": "items__secret_plan"})),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert_eq!(s.seen(), ["complete greet", "complete notes://{id}"]);
}

/// A prompt the upstream adds is rediscovered and announced on the session's GET stream.
#[tokio::test]
async fn a_changed_prompt_list_is_announced_on_the_get_stream() {
    let Some(s) = setup_with(Registry {
        refresh_interval: Some(Duration::from_secs(1)),
        ..Registry::default()
    })
    .await
    else {
        return;
    };
    let alice = token("alice", &[]);
    let (sid, _) = open(&s, &alice).await;
    let mut stream = http()
        .get(s.url())
        .header("authorization", &alice)
        .header("mcp-session-id", &sid)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let call = json!({"name": "items__add_prompt", "arguments": {}});
    let v = legacy(&s, &alice, &sid, "tools/call", call).await;
    assert_eq!(v["result"]["content"][0]["text"], "added", "{v}");
    // Bounded wait for the next refresh (every second here) to see the new prompt.
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/prompts/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{seen}");
    assert!(
        !seen.contains("notifications/resources/list_changed"),
        "{seen}"
    );
    let prompts = legacy(&s, &alice, &sid, "prompts/list", json!({})).await;
    assert_eq!(
        names(&prompts["result"]["prompts"], "name"),
        ["items__greet", "items__late"]
    );
}

/// Over an upstream without prompts or resources (the rmcp demo server), a virtual server
/// declares neither once discovery has run, and its lists are empty rather than -32601.
#[tokio::test]
async fn a_server_without_prompts_or_resources_does_not_declare_them() {
    let demo = start_demo().await;
    let vs = VirtualServer::new("all", "/v/all/mcp");
    let yaml = Config::new()
        .listener(
            Listener::new()
                .auth(ListenerAuth::None)
                .virtual_servers(&[vs.name()])
                .route("/mcp", "up"),
        )
        .virtual_server(vs.anonymous())
        .upstream(Upstream::new("up", &demo.url()))
        .yaml();
    let gw = start_gateway(&yaml).await;
    let url = format!("http://{}/v/all/mcp", gw.addr);
    // The first session's list waits for discovery; the next initialize knows the catalog.
    let sid = raw_initialize(&url).await;
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#;
    let v = jsonrpc_body(post(&url, list, &[("mcp-session-id", &sid)]).await).await;
    assert_eq!(v["result"]["prompts"], json!([]), "{v}");
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let v = jsonrpc_body(post(&url, init.to_string(), &[]).await).await;
    let caps = &v["result"]["capabilities"];
    assert!(caps["tools"].is_object(), "{v}");
    assert!(
        caps.get("prompts").is_none() && caps.get("resources").is_none(),
        "{v}"
    );
}
