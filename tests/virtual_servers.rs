//! Virtual servers end to end: two real rmcp upstreams behind one aggregating endpoint.
//! Principals see different slices, hidden tools answer like unknown ones and never reach an
//! upstream, pinned arguments are set by the gateway, sessions are sealed and bound.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

mod common;

use common::tokens::*;
use common::*;
use serde_json::{json, Value};

const HMAC: &[u8] = b"virtual-server-test-hmac-secret-0123";

struct Setup {
    github: demo::DemoServer,
    crm: demo::DemoServer,
    gw: Gateway,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let github = start_demo().await;
    let crm = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let hmac = dir.path().join("hmac");
    std::fs::write(&hmac, HMAC).unwrap();
    let yaml = format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    routes:
      - {{ path: /mcp, upstream: github }}
upstreams:
  - {{ name: github, url: "{github}" }}
  - {{ name: crm, url: "{crm}" }}
admin:
  address: "{{ADMIN}}"
auth:
  resource: {RESOURCE}
  jwt:
    issuers: [{ISSUER}]
    audiences: [{AUDIENCE}]
    keys:
      - {{ secret: "file:{hmac}", algorithms: [HS256] }}
virtual_servers:
  - name: support
    route: /v/support/mcp
    access: {{ groups: [support, eng] }}
    allow_tools: [github.echo, crm.add]
    rules:
      - groups: [eng]
        allow_tools: ["github.*"]
    tools:
      crm.add:
        name: crm_sum
        description: Add a number to ten
        pinned: {{ b: 10 }}
  - name: other
    route: /v/other/mcp
    allow_tools: ["crm.*"]
"#,
        github = github.url(),
        crm = crm.url(),
        hmac = hmac.display(),
    );
    let gw = start_gateway(&yaml).await;
    Setup {
        github,
        crm,
        gw,
        _dir: dir,
    }
}

fn token(sub: &str, groups: &[&str]) -> String {
    let mut c = claims(sub);
    c["groups"] = json!(groups);
    format!("Bearer {}", hs256(&c, HMAC, None))
}

async fn rpc(
    s: &Setup,
    path: &str,
    auth: &str,
    sid: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let url = format!("http://{}{path}", s.gw.addr);
    let mut h = vec![("authorization", auth)];
    if let Some(sid) = sid {
        h.push(("mcp-session-id", sid));
    }
    post(&url, body.to_string(), &h).await
}

async fn init(s: &Setup, path: &str, auth: &str) -> String {
    let r = rpc(s, path, auth, None, json!({"jsonrpc":"2.0","id":0,"method":"initialize",
        "params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})).await;
    assert_eq!(r.status(), 200);
    let sid = r
        .headers()
        .get("mcp-session-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let v = jsonrpc_body(r).await;
    assert_eq!(
        v["result"]["serverInfo"]["name"],
        path.split('/').nth(2).unwrap()
    );
    assert!(v["result"]["capabilities"]["tools"].is_object());
    let r = rpc(
        s,
        path,
        auth,
        Some(&sid),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    sid
}

async fn list(s: &Setup, auth: &str, sid: &str) -> Vec<Value> {
    let r = rpc(
        s,
        "/v/support/mcp",
        auth,
        Some(sid),
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = jsonrpc_body(r).await;
    assert_eq!(v["id"], 1);
    v["result"]["tools"].as_array().unwrap().clone()
}

fn names(tools: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = tools
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

async fn call(s: &Setup, auth: &str, sid: &str, tool: &str, args: Value) -> Value {
    let r = rpc(s, "/v/support/mcp", auth, Some(sid),
        json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":tool,"arguments":args}})).await;
    assert!(
        r.headers().get("mcp-session-id").is_none(),
        "upstream session ids stay inside"
    );
    jsonrpc_body(r).await
}

#[tokio::test]
async fn two_principals_see_different_slices_with_overrides() {
    let s = setup().await;
    let alice = token("alice", &["support"]);
    let bob = token("bob", &["eng"]);
    let sa = init(&s, "/v/support/mcp", &alice).await;
    let sb = init(&s, "/v/support/mcp", &bob).await;
    let a = list(&s, &alice, &sa).await;
    assert_eq!(names(&a), ["crm_sum", "github__echo"]);
    let b = list(&s, &bob, &sb).await;
    assert_eq!(
        names(&b),
        [
            "crm_sum",
            "github__add",
            "github__echo",
            "github__long_running"
        ]
    );

    let sum = a.iter().find(|t| t["name"] == "crm_sum").unwrap();
    assert_eq!(sum["description"], "Add a number to ten");
    let props = sum["inputSchema"]["properties"].as_object().unwrap();
    assert!(
        props.contains_key("a") && !props.contains_key("b"),
        "pinned b is not advertised"
    );
    assert!(!sum["inputSchema"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "b"));
}

#[tokio::test]
async fn calls_route_by_exposed_name_and_pinned_arguments_are_set_by_the_gateway() {
    let s = setup().await;
    let alice = token("alice", &["support"]);
    let sid = init(&s, "/v/support/mcp", &alice).await;
    let v = call(&s, &alice, &sid, "crm_sum", json!({"a": 5})).await;
    assert_eq!(v["id"], "c1");
    assert_eq!(v["result"]["content"][0]["text"], "15", "{v}");
    assert_eq!(s.crm.calls("add"), 1);
    let v = call(&s, &alice, &sid, "github__echo", json!({"text": "hi"})).await;
    assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
    assert_eq!(s.github.calls("echo"), 1);

    // The client may not set a pinned argument.
    let v = call(&s, &alice, &sid, "crm_sum", json!({"a": 5, "b": 1})).await;
    assert_eq!(v["error"]["code"], -32602);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("set by the gateway"));
    assert_eq!(s.crm.calls("add"), 1);
}

#[tokio::test]
async fn hidden_and_unknown_tools_get_the_same_error_and_reach_no_upstream() {
    let s = setup().await;
    let alice = token("alice", &["support"]);
    let sid = init(&s, "/v/support/mcp", &alice).await;
    for name in ["github__add", "nope__tool", "crm__add"] {
        let v = call(&s, &alice, &sid, name, json!({"a": 1, "b": 2})).await;
        assert_eq!(v["error"]["code"], -32602, "{v}");
        assert_eq!(v["error"]["message"], format!("unknown tool: {name}"));
    }
    assert_eq!(s.github.calls("add"), 0);
    assert_eq!(s.crm.calls("add"), 0);
}

#[tokio::test]
async fn sessions_are_sealed_and_bound_to_caller_and_server() {
    let s = setup().await;
    let alice = token("alice", &["support"]);
    let bob = token("bob", &["eng"]);
    let sid = init(&s, "/v/support/mcp", &alice).await;
    let ping = json!({"jsonrpc":"2.0","id":9,"method":"ping"});
    let r = rpc(&s, "/v/support/mcp", &alice, Some(&sid), ping.clone()).await;
    assert_eq!(jsonrpc_body(r).await["result"], json!({}));

    // Another principal, another server, a tampered id, no id.
    let r = rpc(&s, "/v/support/mcp", &bob, Some(&sid), ping.clone()).await;
    assert_error(r, 404, -32001, "session not found").await;
    let r = rpc(&s, "/v/other/mcp", &alice, Some(&sid), ping.clone()).await;
    assert_error(r, 404, -32001, "session not found").await;
    let mut bad = sid.clone();
    bad.insert(10, 'x');
    let r = rpc(&s, "/v/support/mcp", &alice, Some(&bad), ping.clone()).await;
    assert_error(r, 404, -32001, "session not found").await;
    let r = rpc(&s, "/v/support/mcp", &alice, None, ping.clone()).await;
    assert_error(r, 400, -32000, "Mcp-Session-Id header required").await;

    // DELETE ends nothing for a stranger, and works for the owner.
    let r = http()
        .delete(format!("http://{}/v/support/mcp", s.gw.addr))
        .header("authorization", &alice)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn access_list_refuses_other_principals() {
    let s = setup().await;
    let carol = token("carol", &["sales"]);
    let r = rpc(
        &s,
        "/v/support/mcp",
        &carol,
        None,
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}),
    )
    .await;
    assert_error(r, 403, -32000, "may not use virtual server \"support\"").await;
}
