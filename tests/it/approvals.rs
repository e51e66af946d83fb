//! Human approval bound to the exact call, through the running gateway and the real rmcp
//! demo upstream: the first call is refused with an approval id (the upstream counting 0
//! calls), an approval lets exactly one identical retry through, anything else is a new
//! request; deny, expiry (the gateway's clock moved, no sleeps), `require_approval:
//! destructive` on a virtual server, the approver permission, two gateways sharing one real
//! Redis, Redis down, and the CLI.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::time::Duration;

use crate::common::redis::RedisServer;
use crate::common::tokens::*;
use crate::common::*;
use serde_json::{json, Value};

/// `tools/call` of `tool` with `args` (raw JSON text, so key order and spacing are the
/// test's).
fn call_body(id: u32, tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    )
}

async fn call(
    url: &str,
    sid: &str,
    tool: &str,
    args: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut headers = vec![("mcp-session-id", sid)];
    headers.extend_from_slice(extra);
    post(url, call_body(7, tool, args), &headers).await
}

/// The approval id of a call refused for approval (and checks the error's shape).
async fn required(r: reqwest::Response) -> Value {
    let v = assert_error(r, 200, -32030, "needs a human's approval").await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("retry the identical call"), "{msg}");
    let d = &v["error"]["data"];
    assert_eq!(d["state"], "pending", "{v}");
    assert!(
        d["approvalId"].as_str().is_some_and(|s| s.len() == 22),
        "{v}"
    );
    assert!(d["retryAfter"].as_u64().is_some(), "{v}");
    assert!(
        d["expiresAt"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{v}"
    );
    d.clone()
}

async fn approval_id(r: reqwest::Response) -> String {
    required(r).await["approvalId"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn ok_text(r: reqwest::Response) -> String {
    let status = r.status();
    let v = jsonrpc_body(r).await;
    assert!(status == 200 && v["error"].is_null(), "{status}: {v}");
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn decide(gw: &Gateway, verdict: &str, id: &str, token: &str) -> reqwest::Response {
    admin_post(
        gw,
        &format!("/admin/approvals/{verdict}"),
        token,
        &json!({ "id": id }),
    )
    .await
}

fn plain_route(demo: &demo::DemoServer, extra: &str) -> String {
    format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    auth: none
    routes: [{{ path: /mcp, upstream: up }}]
upstreams:
  - {{ name: up, url: "{}" }}
admin:
  address: "{{ADMIN}}"
  auth:
    tokens:
      - {{ name: viewer, sha256: "{}", permission: read }}
      - {{ name: operator, sha256: "{}", permission: write }}
      - {{ name: approver, sha256: "{}", permission: approve }}
approvals:
  ttl: 10m
  retry_after: 5s
  rules:
    - tools: [up.echo, up.add]
{extra}"#,
        demo.url(),
        sha256_hex(ADMIN_READ_TOKEN),
        sha256_hex(ADMIN_WRITE_TOKEN),
        sha256_hex(ADMIN_APPROVE_TOKEN),
    )
}

#[tokio::test]
async fn an_approval_lets_exactly_one_identical_retry_through() {
    let demo = start_demo().await;
    let gw = start_gateway(&plain_route(&demo, "")).await;
    let url = gw.url();
    let sid = raw_initialize(&url).await;

    // First call: refused before the upstream, with everything a client needs.
    let args = r#"{"text":"hi","extra":{"b":1,"a":[1,2.50]}}"#;
    let d = required(call(&url, &sid, "echo", args, &[]).await).await;
    let id = d["approvalId"].as_str().unwrap().to_string();
    assert_eq!(d["retryAfter"], 5);
    assert_eq!(
        d["approvalUrl"],
        format!("http://{}/admin/approvals/{id}", gw.admin)
    );
    assert_eq!(demo.calls("echo"), 0, "the upstream never saw it");

    // A retry before the decision keeps its id, whatever the key order and spacing.
    assert_eq!(
        approval_id(call(&url, &sid, "echo", args, &[]).await).await,
        id
    );
    let reordered =
        "{ \"extra\" : { \"a\" : [ 1 , 2.50 ] , \"b\" : 1 } ,\n \"text\" : \"\\u0068i\" }";
    assert_eq!(
        approval_id(call(&url, &sid, "echo", reordered, &[]).await).await,
        id
    );
    // Other arguments (even a number written differently) or another tool: new requests.
    let other = approval_id(
        call(
            &url,
            &sid,
            "echo",
            r#"{"text":"hi","extra":{"b":1,"a":[1,2.5]}}"#,
            &[],
        )
        .await,
    )
    .await;
    assert_ne!(other, id);
    let add = approval_id(call(&url, &sid, "add", r#"{"a":1,"b":2}"#, &[]).await).await;
    assert_ne!(add, id);
    assert_ne!(add, other);

    // The approver sees them, pending first, with the caller's arguments.
    let list: Value = admin_get(&gw, "/admin/approvals", ADMIN_READ_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    let listed = list["approvals"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{list}");
    let one: Value = admin_get(&gw, &format!("/admin/approvals/{id}"), ADMIN_APPROVE_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["state"], "pending");
    assert_eq!(
        (one["upstream"].as_str(), one["tool"].as_str()),
        (Some("up"), Some("echo"))
    );
    assert_eq!(
        one["arguments"],
        r#"{"extra":{"a":[1,2.50],"b":1},"text":"hi"}"#
    );

    // Read and write tokens cannot approve (separation of duties), the approver can.
    for token in [ADMIN_READ_TOKEN, ADMIN_WRITE_TOKEN] {
        let r = decide(&gw, "approve", &id, token).await;
        assert_eq!(r.status(), 403);
    }
    assert_eq!(demo.calls("echo"), 0);
    let r = decide(&gw, "approve", &id, ADMIN_APPROVE_TOKEN).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "approved");
    assert_eq!(v["decidedBy"], r#"admin token "approver""#);
    let r = decide(&gw, "deny", &id, ADMIN_APPROVE_TOKEN).await;
    assert_eq!(r.status(), 409, "the decision stands");

    // Exactly one identical retry goes through (here with the other spelling)...
    assert_eq!(
        ok_text(call(&url, &sid, "echo", reordered, &[]).await).await,
        "hi"
    );
    assert_eq!(demo.calls("echo"), 1);
    // ...and the next identical call needs a new approval.
    let again = approval_id(call(&url, &sid, "echo", args, &[]).await).await;
    assert_ne!(again, id);
    assert_eq!(demo.calls("echo"), 1);
    let r = admin_get(&gw, &format!("/admin/approvals/{id}"), ADMIN_READ_TOKEN).await;
    assert_eq!(r.status(), 404, "a used approval is gone");

    // Denied: the call is refused as denied, and stays refused.
    assert_eq!(
        decide(&gw, "deny", &again, ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        200
    );
    for _ in 0..2 {
        let v = assert_error(
            call(&url, &sid, "echo", args, &[]).await,
            200,
            -32031,
            "denied",
        )
        .await;
        assert_eq!(v["error"]["data"]["approvalId"], again.as_str());
    }
    assert_eq!(demo.calls("echo"), 1);

    // Expiry: the gateway's clock moves past the TTL; the denial and the pending requests
    // are gone, and the same call asks anew.
    gw.shared
        .approvals
        .clock()
        .advance(Duration::from_secs(601));
    let r = admin_get(&gw, &format!("/admin/approvals/{add}"), ADMIN_READ_TOKEN).await;
    assert_eq!(r.status(), 404);
    let fresh = approval_id(call(&url, &sid, "echo", args, &[]).await).await;
    assert!(fresh != again && fresh != id);
    assert_eq!(
        decide(&gw, "approve", &add, ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        404
    );
    assert_eq!(demo.calls("add"), 0);

    // Bad ids and bodies are refused plainly.
    assert_eq!(
        decide(&gw, "approve", "nope", ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        404
    );
    let r = admin_post(
        &gw,
        "/admin/approvals/approve",
        ADMIN_APPROVE_TOKEN,
        &json!({"approval": fresh}),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_call_no_rule_covers_goes_straight_through() {
    let demo = start_demo().await;
    let gw = start_gateway(&plain_route(&demo, "").replace("[up.echo, up.add]", "[up.add]")).await;
    let sid = raw_initialize(&gw.url()).await;
    assert_eq!(
        ok_text(call(&gw.url(), &sid, "echo", r#"{"text":"x"}"#, &[]).await).await,
        "x"
    );
    let list: Value = admin_get(&gw, "/admin/approvals", ADMIN_READ_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["approvals"],
        json!([]),
        "no approval was even asked for"
    );
}

#[tokio::test]
async fn different_callers_are_different_requests_and_nobody_approves_their_own() {
    const HMAC: &[u8] = b"approval-test-hmac-secret-0123456789";
    let demo = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let hmac = dir.path().join("hmac");
    std::fs::write(&hmac, HMAC).unwrap();
    let config = Config::new()
        .listener(Listener::new().route("/mcp", "up"))
        .upstream(Upstream::new("up", &demo.url()))
        .admin(
            Admin::with_test_tokens()
                .jwt_grant(AdminPermission::Approve, Principals::subjects(&["alice"])),
        )
        .auth(Auth::new(RESOURCE).jwt(Jwt::test_issuer(JwtKey::hs256(SecretRef::file(&hmac)))));
    let yaml = format!(
        "{}\napprovals:\n  rules: [{{tools: [up.echo]}}]\n",
        config.yaml()
    );
    let gw = start_gateway(&yaml).await;
    let url = gw.url();
    let bearer = |sub: &str| format!("Bearer {}", hs256(&claims(sub), HMAC, None));
    let (alice, bob) = (bearer("alice"), bearer("bob"));
    let init = |auth: String| {
        let url = url.clone();
        async move {
            let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
            let r = post(&url, init.to_string(), &[("authorization", &auth)]).await;
            assert_eq!(r.status(), 200);
            r.headers()["mcp-session-id"].to_str().unwrap().to_string()
        }
    };
    let (sa, sb) = (init(alice.clone()).await, init(bob.clone()).await);
    let args = r#"{"text":"same"}"#;
    let a_id = approval_id(call(&url, &sa, "echo", args, &[("authorization", &alice)]).await).await;
    let b_id = approval_id(call(&url, &sb, "echo", args, &[("authorization", &bob)]).await).await;
    assert_ne!(
        a_id, b_id,
        "the same call by another caller is another request"
    );

    // Alice holds the approve grant, but not over her own call.
    let mut admin = claims("alice");
    admin["aud"] = json!(format!("{RESOURCE}/admin"));
    let alice_admin = hs256(&admin, HMAC, None);
    let r = decide(&gw, "approve", &a_id, &alice_admin).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "self_approval", "{v}");
    let r = decide(&gw, "approve", &b_id, &alice_admin).await;
    assert_eq!(r.status(), 200);

    // Bob's approval is bob's: alice's identical retry still waits, bob's goes through once.
    assert_eq!(
        approval_id(call(&url, &sa, "echo", args, &[("authorization", &alice)]).await).await,
        a_id
    );
    assert_eq!(
        ok_text(call(&url, &sb, "echo", args, &[("authorization", &bob)]).await).await,
        "same"
    );
    assert_eq!(demo.calls("echo"), 1);
}

#[tokio::test]
async fn a_virtual_server_requires_approval_of_its_destructive_tools() {
    let demo = start_demo().await;
    let yaml = format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    auth: none
    virtual_servers: [ops]
    routes: [{{ path: /mcp, upstream: up }}]
upstreams:
  - {{ name: up, url: "{}" }}
admin:
  address: "{{ADMIN}}"
  auth:
    tokens:
      - {{ name: approver, sha256: "{}", permission: approve }}
virtual_servers:
  - name: ops
    route: /v/ops/mcp
    access: {{ anonymous: true }}
    require_approval: destructive
    tools:
      up.echo: {{ annotations: {{ readOnlyHint: true }} }}
"#,
        demo.url(),
        sha256_hex(ADMIN_APPROVE_TOKEN),
    );
    let gw = start_gateway(&yaml).await;
    let vs = format!("http://{}/v/ops/mcp", gw.addr);
    let sid = raw_initialize(&vs).await;
    // Read-only by its (overridden) annotations: no approval.
    assert_eq!(
        ok_text(call(&vs, &sid, "up__echo", r#"{"text":"r"}"#, &[]).await).await,
        "r"
    );
    // No annotations: destructive by MCP's defaults, so it waits.
    let d = required(call(&vs, &sid, "up__add", r#"{"a":2,"b":3}"#, &[]).await).await;
    assert_eq!(demo.calls("add"), 0);
    let id = d["approvalId"].as_str().unwrap();
    let shown: Value = admin_get(&gw, &format!("/admin/approvals/{id}"), ADMIN_APPROVE_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["server"], "ops");
    assert_eq!(shown["tool"], "add");
    assert_eq!(
        decide(&gw, "approve", id, ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        200
    );
    assert_eq!(
        ok_text(call(&vs, &sid, "up__add", r#"{"b":3,"a":2}"#, &[]).await).await,
        "5"
    );
    assert_eq!(demo.calls("add"), 1);
    // The plain route to the same upstream has no such rule.
    let rsid = raw_initialize(&gw.url()).await;
    assert_eq!(
        ok_text(call(&gw.url(), &rsid, "add", r#"{"a":1,"b":1}"#, &[]).await).await,
        "2"
    );
}

#[tokio::test]
async fn two_gateways_share_approvals_through_one_redis_and_refuse_when_it_is_down() {
    let demo = start_demo().await;
    let mut redis = RedisServer::start();
    let extra = format!("redis: {{ url: '{}', timeout: 300ms }}\n", redis.url());
    let one = start_gateway(&plain_route(&demo, &extra)).await;
    let two = start_gateway(&plain_route(&demo, &extra)).await;
    let (s1, s2) = (
        raw_initialize(&one.url()).await,
        raw_initialize(&two.url()).await,
    );
    let args = r#"{"text":"shared"}"#;

    let id = approval_id(call(&one.url(), &s1, "echo", args, &[]).await).await;
    // The other replica knows the request: same id, listed, and it can approve it.
    assert_eq!(
        approval_id(call(&two.url(), &s2, "echo", args, &[]).await).await,
        id
    );
    let list: Value = admin_get(&two, "/admin/approvals", ADMIN_READ_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["approvals"][0]["id"], id.as_str(), "{list}");
    assert_eq!(
        decide(&two, "approve", &id, ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        200
    );
    // Honoured once across both.
    assert_eq!(
        ok_text(call(&one.url(), &s1, "echo", args, &[]).await).await,
        "shared"
    );
    let next = approval_id(call(&two.url(), &s2, "echo", args, &[]).await).await;
    assert_ne!(next, id);
    assert_eq!(demo.calls("echo"), 1);

    // Redis down: the call is refused (an approval cannot fail open), with a clear 503.
    redis.kill();
    let v = assert_error(
        call(&one.url(), &s1, "echo", args, &[]).await,
        503,
        -32000,
        "cannot check the approval",
    )
    .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("Redis"),
        "{v}"
    );
    let r = admin_get(&one, "/admin/approvals", ADMIN_READ_TOKEN).await;
    assert_eq!(r.status(), 503);
    assert_eq!(demo.calls("echo"), 1);
}

#[tokio::test]
async fn the_cli_lists_and_approves() {
    let demo = start_demo().await;
    let gw = start_gateway(&plain_route(&demo, "")).await;
    let sid = raw_initialize(&gw.url()).await;
    let id = approval_id(call(&gw.url(), &sid, "echo", r#"{"text":"cli"}"#, &[]).await).await;
    let admin = format!("http://{}", gw.admin);
    let run = |args: Vec<String>, token: &'static str| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
                .arg("approvals")
                .args(args)
                .env("MCP_GATEWAY_ADMIN_TOKEN", token)
                .output()
                .unwrap()
        })
    };
    let out = run(
        vec!["--admin".into(), admin.clone(), "list".into()],
        ADMIN_READ_TOKEN,
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&id) && text.contains("pending") && text.contains("up.echo"),
        "{text}"
    );
    let out = run(
        vec![
            "--admin".into(),
            admin.clone(),
            "list".into(),
            "--json".into(),
        ],
        ADMIN_READ_TOKEN,
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["approvals"][0]["id"], id.as_str());

    // A read token cannot approve: a one-line error, exit 1.
    let out = run(
        vec![
            "--admin".into(),
            admin.clone(),
            "approve".into(),
            id.clone(),
        ],
        ADMIN_READ_TOKEN,
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: admin API answered 403"), "{err}");

    let out = run(
        vec!["--admin".into(), admin, "approve".into(), id.clone()],
        ADMIN_APPROVE_TOKEN,
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with(&format!("approved {id}")), "{text}");
    assert_eq!(
        ok_text(call(&gw.url(), &sid, "echo", r#"{"text":"cli"}"#, &[]).await).await,
        "cli"
    );
}

/// An approved call the upstream never received (its connection refused) did not run: its
/// approval is given back, so the identical retry, once the upstream is back, needs no
/// second approver; a call the upstream did receive uses it up (the sibling tests).
#[tokio::test]
async fn an_approved_call_that_never_reached_the_upstream_keeps_its_approval() {
    let demo = start_demo().await;
    let gw = start_gateway(&plain_route(&demo, "")).await;
    let url = gw.url();
    let sid = raw_initialize(&url).await;
    let id = approval_id(call(&url, &sid, "echo", r#"{"text":"down"}"#, &[]).await).await;
    assert_eq!(
        decide(&gw, "approve", &id, ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        200
    );
    demo.shutdown().await;
    for _ in 0..2 {
        let r = call(&url, &sid, "echo", r#"{"text":"down"}"#, &[]).await;
        let v = assert_error(r, 502, -32000, "connection refused").await;
        assert_eq!(v["id"], 7, "{v}");
        let one: Value = admin_get(&gw, &format!("/admin/approvals/{id}"), ADMIN_READ_TOKEN)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(one["state"], "approved", "given back: {one}");
    }
    // Each went out (`used`) and came back (`restored`): none ran.
    let event = |e: &'static str| {
        let gw = &gw;
        async move { metric_sum(gw, "mcp_gateway_approvals_total", &[e]).await }
    };
    assert_eq!(event(r#"event="used""#).await, 2.0);
    assert_eq!(event(r#"event="restored""#).await, 2.0);
}

/// The Redis store on its own against a real redis-server: two stores (two replicas) racing
/// to consume one approval get it exactly once between them, and `restore` puts it back.
#[tokio::test]
async fn redis_consume_is_exactly_once_across_replicas_and_restore_puts_back() {
    use mcp_gateway::approval::{ApprovalStore, Binding, RedisApprovals, State, Verdict};
    let redis = RedisServer::start();
    let yaml = format!(
        "listeners: [{{address: '127.0.0.1:1', auth: none, routes: [{{path: /mcp, upstream: u}}]}}]\nupstreams: [{{name: u, url: 'http://127.0.0.1:2/mcp'}}]\nredis: {{url: '{}'}}\n",
        redis.url()
    );
    let c = mcp_gateway::config::from_yaml(&yaml).unwrap();
    let mk = || {
        let s =
            mcp_gateway::store::redis::RedisStore::new(c.redis.as_ref().unwrap(), None).unwrap();
        RedisApprovals::new(std::sync::Arc::new(s))
    };
    let (one, two) = (mk(), mk());
    let now = now();
    let b = Binding([7; 32]);
    let new = |id: &str| mcp_gateway::approval::Approval {
        id: id.into(),
        state: State::Pending,
        created_at: now,
        expires_at: now + 60,
        issuer: String::new(),
        subject: "alice".into(),
        agent: None,
        server: None,
        upstream: "u".into(),
        tool: "t".into(),
        arguments: "{}".into(),
        arguments_truncated: false,
        arguments_sha256: String::new(),
        binding: b.hex(),
        decided_by: None,
        decided_at: None,
    };
    let a = one
        .request(&b, new("aaaaaaaaaaaaaaaaaaaaaa"), 10, now)
        .await
        .unwrap();
    let again = two
        .request(&b, new("bbbbbbbbbbbbbbbbbbbbbb"), 10, now)
        .await
        .unwrap();
    assert_eq!(again.id, a.id);
    let d = two
        .decide(&a.id, Verdict::Approve, "ops", 60, now)
        .await
        .unwrap();
    assert_eq!(
        (d.state, d.decided_by.as_deref()),
        (State::Approved, Some("ops"))
    );
    assert_eq!(
        one.get(&a.id, now).await.unwrap().unwrap().state,
        State::Approved
    );
    let (x, y) = tokio::join!(one.consume(&b, now), two.consume(&b, now));
    let taken: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken.len(), 1, "exactly once");
    assert!(one.consume(&b, now).await.unwrap().is_none());
    two.restore(&taken[0], now).await.unwrap();
    assert_eq!(one.consume(&b, now).await.unwrap().unwrap().id, a.id);
    assert!(one.list(10, now).await.unwrap().is_empty());
    // Expired by the caller's clock even while the key still exists.
    let p = one
        .request(&b, new("cccccccccccccccccccccc"), 10, now)
        .await
        .unwrap();
    assert_eq!(p.id, "cccccccccccccccccccccc");
    assert!(one.get(&p.id, now + 61).await.unwrap().is_none());
}

/// An approved call that a later step (a quota) refuses did not run, so its approval is given
/// back: the identical retry after the quota refills goes through without a second approval,
/// once.
#[tokio::test]
async fn an_approval_survives_a_quota_refusal_of_its_call() {
    use mcp_gateway::quota::Clock;
    const S: u64 = 1_000_000_000;
    let demo = start_demo().await;
    let quota =
        "quotas:\n  - { name: one-a-minute, tools: [up.echo], rate: { requests: 1, per: 60s } }\n";
    let gw = start_gateway(&plain_route(&demo, quota)).await;
    let clock = Clock::manual(1_700_000_000 * S);
    gw.shared.quotas.set_clock(clock.clone());
    let url = gw.url();
    let sid = raw_initialize(&url).await;

    // The first approved call takes the one slot of the minute.
    let id = approval_id(call(&url, &sid, "echo", r#"{"text":"a"}"#, &[]).await).await;
    assert_eq!(
        decide(&gw, "approve", &id, ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        200
    );
    assert_eq!(
        ok_text(call(&url, &sid, "echo", r#"{"text":"a"}"#, &[]).await).await,
        "a"
    );

    // The second is approved, then refused by the quota: it did not run.
    let id = approval_id(call(&url, &sid, "echo", r#"{"text":"b"}"#, &[]).await).await;
    assert_eq!(
        decide(&gw, "approve", &id, ADMIN_APPROVE_TOKEN)
            .await
            .status(),
        200
    );
    let r = call(&url, &sid, "echo", r#"{"text":"b"}"#, &[]).await;
    assert_error(r, 429, -32000, "\"one-a-minute\" exceeded").await;
    assert_eq!(demo.calls("echo"), 1);

    // A minute later the identical retry goes through on the approval it kept, once.
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        ok_text(call(&url, &sid, "echo", r#"{"text":"b"}"#, &[]).await).await,
        "b"
    );
    assert_eq!(demo.calls("echo"), 2);
    clock.advance(Duration::from_secs(60));
    let again = approval_id(call(&url, &sid, "echo", r#"{"text":"b"}"#, &[]).await).await;
    assert_ne!(
        again, id,
        "used once: the next identical call needs a new approval"
    );
}
