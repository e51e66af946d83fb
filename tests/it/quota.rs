//! Quotas through the running gateway and the real rmcp demo upstream: each kind allowing
//! and blocking with the upstream never called when blocked, the rate boundary on an
//! injected clock, 429 headers and JSON-RPC data, permits held by a slow call, fixed and
//! metered budgets, no quota burnt by policy refusals or reset by re-initialize, and one
//! limit shared by two gateways through a real Redis that is killed and restarted.

use std::time::{Duration, Instant};

use mcp_gateway::quota::Clock;
use serde_json::{json, Value};

use crate::common::redis::RedisServer;
use crate::common::tokens::{sha256_hex, RESOURCE};
use crate::common::*;

const S: u64 = 1_000_000_000;

/// A gateway with API keys `alice-key` (alice, group red) and `bob-key` (bob), the demo
/// upstream on `/mcp` and a virtual server `all` on `/v/all/mcp`, plus `extra` YAML.
async fn gateway(demo: &demo::DemoServer, extra: &str) -> Gateway {
    let yaml = format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    virtual_servers: [all]
    routes: [{{ path: /mcp, upstream: up }}]
upstreams:
  - {{ name: up, url: "{url}" }}
admin:
  address: "{{ADMIN}}"
  auth:
    tokens: [{{ name: viewer, sha256: "{admin}", permission: read }}]
auth:
  resource: {RESOURCE}
  api_keys:
    - {{ sha256: "{alice}", subject: alice, groups: [red] }}
    - {{ sha256: "{bob}", subject: bob }}
virtual_servers:
  - {{ name: all, route: /v/all/mcp }}
{extra}"#,
        url = demo.url(),
        admin = sha256_hex(ADMIN_READ_TOKEN),
        alice = sha256_hex("alice-key"),
        bob = sha256_hex("bob-key"),
    );
    start_gateway(&yaml).await
}

/// An MCP client session for one API key on one endpoint.
struct Caller {
    url: String,
    key: &'static str,
    sid: String,
    /// JSON-RPC ids, distinct within the session (calls may overlap).
    next_id: std::sync::atomic::AtomicU64,
}

impl Caller {
    async fn open(url: &str, key: &'static str) -> Caller {
        let init = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "quota-test", "version": "0"}}
        });
        let auth = format!("Bearer {key}");
        let r = post(url, init.to_string(), &[("authorization", &auth)]).await;
        assert_eq!(r.status(), 200, "initialize {url}");
        let sid = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("session id")
            .to_string();
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let r = post(
            url,
            note,
            &[("authorization", &auth), ("mcp-session-id", &sid)],
        )
        .await;
        assert_eq!(r.status(), 202);
        Caller {
            url: url.to_string(),
            key,
            sid,
            next_id: 10.into(),
        }
    }

    async fn call(&self, tool: &str, args: Value) -> reqwest::Response {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": tool, "arguments": args}});
        let auth = format!("Bearer {}", self.key);
        post(
            &self.url,
            body.to_string(),
            &[("authorization", &auth), ("mcp-session-id", &self.sid)],
        )
        .await
    }

    /// A call that must succeed; returns its result.
    async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        assert_eq!(r.status(), 200);
        let v = jsonrpc_body(r).await;
        assert!(v["result"].is_object(), "{tool}: {v}");
        v
    }
}

fn echo(text: &str) -> Value {
    json!({ "text": text })
}

/// Assert a 429 from `limit`; returns (headers, body).
async fn assert_limited(r: reqwest::Response, limit: &str) -> (reqwest::header::HeaderMap, Value) {
    let headers = r.headers().clone();
    let v = assert_error(r, 429, -32000, &format!("{limit:?} exceeded")).await;
    assert!(
        v["id"].as_u64().is_some_and(|id| id >= 10),
        "the request's id: {v}"
    );
    assert_eq!(v["error"]["data"]["limit"], limit, "{v}");
    assert!(
        v["error"]["data"]["retryAfter"]
            .as_u64()
            .is_some_and(|s| s >= 1),
        "{v}"
    );
    (headers, v)
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn a_rate_limit_is_exact_at_the_boundary_and_refills_on_the_injected_clock() {
    let demo = start_demo().await;
    let gw = gateway(
        &demo,
        r#"quotas:
  - name: per-user
    key: [subject]
    tools: [up.echo]
    rate: { requests: 3, per: 30s }
"#,
    )
    .await;
    let clock = Clock::manual(1_700_000_000 * S);
    gw.shared.quotas.set_clock(clock.clone());
    let alice = Caller::open(&gw.url(), "alice-key").await;
    let bob = Caller::open(&gw.url(), "bob-key").await;

    for i in 0..3 {
        alice.ok("echo", echo(&format!("hi {i}"))).await;
    }
    let before = demo.calls("echo");
    let (h, v) = assert_limited(alice.call("echo", echo("four")).await, "per-user").await;
    assert_eq!(
        demo.calls("echo"),
        before,
        "the upstream never saw the limited call"
    );
    // One emission interval is 10 s: that is when the next call passes.
    assert_eq!(header(&h, "retry-after"), "10");
    assert_eq!(header(&h, "ratelimit-policy"), r#""per-user";q=3;w=30"#);
    assert_eq!(header(&h, "ratelimit"), r#""per-user";r=0;t=10"#);
    assert_eq!(v["error"]["data"]["retryAfter"], 10);
    assert_eq!(v["error"]["data"]["kind"], "rate");

    // Other subjects and other tools have their own counters / no limit.
    bob.ok("echo", echo("bob")).await;
    alice.ok("add", json!({"a": 1, "b": 2})).await;

    // One nanosecond short of the interval: still limited; at the interval, allowed once.
    clock.advance(Duration::from_nanos(10 * S - 1));
    assert_limited(alice.call("echo", echo("early")).await, "per-user").await;
    clock.advance(Duration::from_nanos(1));
    alice.ok("echo", echo("again")).await;
    assert_limited(alice.call("echo", echo("over")).await, "per-user").await;

    let m = |result: &str| {
        let labels = [
            "limit=\"per-user\"".to_string(),
            format!("result=\"{result}\""),
        ];
        let gw = &gw;
        async move {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            metric(gw, "mcp_gateway_quota_decisions_total", &labels).await
        }
    };
    assert_eq!(m("allowed").await, Some(5.0));
    assert_eq!(m("limited").await, Some(3.0));
}

#[tokio::test]
async fn policy_refusals_burn_no_quota_and_re_initialize_resets_nothing() {
    let demo = start_demo().await;
    let gw = gateway(
        &demo,
        r#"policies:
  - { id: short, tools: [up.echo], arguments: { text: { max_length: 5 } } }
quotas:
  - { name: two, key: [subject], rate: { requests: 2, per: 1h } }
"#,
    )
    .await;
    gw.shared.quotas.set_clock(Clock::manual(1_700_000_000 * S));
    let url = format!("http://{}/v/all/mcp", gw.addr);
    let alice = Caller::open(&url, "alice-key").await;
    for _ in 0..5 {
        let r = alice.call("up__echo", echo("far too long")).await;
        assert_error(r, 200, -32602, "policy short").await;
    }
    alice.ok("up__echo", echo("a")).await;
    alice.ok("up__echo", echo("b")).await;
    assert_limited(alice.call("up__echo", echo("c")).await, "two").await;
    // A new session is the same identity: still limited, on the route as well.
    let again = Caller::open(&url, "alice-key").await;
    assert_limited(again.call("up__echo", echo("d")).await, "two").await;
    let route = Caller::open(&gw.url(), "alice-key").await;
    assert_limited(route.call("echo", echo("e")).await, "two").await;
    assert_eq!(demo.calls("echo"), 2);
}

#[tokio::test]
async fn a_concurrency_limit_holds_a_permit_until_the_slow_call_ends() {
    let demo = start_demo().await;
    let gw = gateway(
        &demo,
        r#"quotas:
  - { name: one-at-a-time, key: [subject], tools: ["up.long_*"], concurrency: 1 }
"#,
    )
    .await;
    let alice = std::sync::Arc::new(Caller::open(&gw.url(), "alice-key").await);
    let slow = {
        let alice = alice.clone();
        tokio::spawn(async move {
            alice
                .ok("long_running", json!({"steps": 4, "interval_ms": 500}))
                .await
        })
    };
    // Wait (bounded) until the upstream runs the slow call.
    let deadline = Instant::now() + Duration::from_secs(10);
    while demo.calls("long_running") < 1 {
        assert!(Instant::now() < deadline, "the slow call never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = alice
        .call("long_running", json!({"steps": 1, "interval_ms": 0}))
        .await;
    let (h, v) = assert_limited(r, "one-at-a-time").await;
    assert_eq!(v["error"]["data"]["kind"], "concurrency");
    assert_eq!(header(&h, "ratelimit-policy"), r#""one-at-a-time";q=1"#);
    assert_eq!(
        demo.calls("long_running"),
        1,
        "the refused call never went out"
    );
    // Another caller has their own permit; other tools are not limited.
    let bob = Caller::open(&gw.url(), "bob-key").await;
    bob.ok("long_running", json!({"steps": 1, "interval_ms": 0}))
        .await;
    alice.ok("echo", echo("meanwhile")).await;
    slow.await.expect("slow call");
    // The permit came back when the slow call's response ended.
    alice
        .ok("long_running", json!({"steps": 1, "interval_ms": 0}))
        .await;
    assert_eq!(demo.calls("long_running"), 3);
}

#[tokio::test]
async fn budgets_charge_fixed_costs_and_metered_response_tokens() {
    let demo = start_demo().await;
    let gw = gateway(
        &demo,
        r#"quotas:
  - name: daily
    key: [subject]
    budget:
      units: 10
      per: 1d
      cost:
        - { tools: [up.add], units: 4 }
        - { tools: [up.echo], metered: response_tokens }
"#,
    )
    .await;
    gw.shared.quotas.set_clock(Clock::manual(1_700_000_000 * S));
    let alice = Caller::open(&gw.url(), "alice-key").await;
    let add = json!({"a": 1, "b": 2});
    alice.ok("add", add.clone()).await;
    alice.ok("add", add.clone()).await;
    // 8 of 10 spent: a cost of 4 no longer fits.
    let (h, v) = assert_limited(alice.call("add", add.clone()).await, "daily").await;
    assert_eq!(v["error"]["data"]["kind"], "budget");
    assert!(
        header(&h, "ratelimit-policy").ends_with(";q=10;w=86400"),
        "{h:?}"
    );
    assert_eq!(demo.calls("add"), 2);
    // A metered call needs only some budget left; its response (well over 8 bytes) is
    // charged when it ends, and the next one is refused.
    alice.ok("echo", echo("a response of some size")).await;
    assert_limited(alice.call("echo", echo("x")).await, "daily").await;
    assert_eq!(demo.calls("echo"), 1);

    // What is left, as the operator sees it.
    let r = admin_get(&gw, "/admin/quotas?subject=alice", ADMIN_READ_TOKEN).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let daily = report["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["issuer"] == "api-key")
        .unwrap_or_else(|| panic!("{report}"))
        .clone();
    assert_eq!(daily["name"], "daily");
    let spent = daily["budget"]["spent"].as_u64().unwrap();
    assert!(spent > 10, "{daily}");
    assert_eq!(daily["budget"]["left"], 0, "{daily}");
    let r = admin_get(&gw, "/admin/quotas?subject=bob", ADMIN_READ_TOKEN).await;
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["limits"][0]["budget"]["spent"], 0, "{report}");
    let r = admin_get(&gw, "/admin/quotas", ADMIN_READ_TOKEN).await;
    assert_eq!(r.status(), 400);
}

fn redis_yaml(redis: &RedisServer, limits: &str) -> String {
    format!(
        "redis: {{ url: \"{}\", timeout: 200ms }}\nquotas:\n{limits}",
        redis.url()
    )
}

#[tokio::test]
async fn two_gateways_sharing_one_redis_enforce_one_limit() {
    let redis = RedisServer::start();
    let demo = start_demo().await;
    let extra = redis_yaml(
        &redis,
        "  - { name: global, key: [subject], rate: { requests: 4, per: 1h }, backend: redis }\n",
    );
    let (a, b) = (gateway(&demo, &extra).await, gateway(&demo, &extra).await);
    let on_a = Caller::open(&a.url(), "alice-key").await;
    let on_b = Caller::open(&b.url(), "alice-key").await;
    for i in 0..2 {
        on_a.ok("echo", echo(&format!("a{i}"))).await;
        on_b.ok("echo", echo(&format!("b{i}"))).await;
    }
    assert_limited(on_a.call("echo", echo("a")).await, "global").await;
    assert_limited(on_b.call("echo", echo("b")).await, "global").await;
    assert_eq!(
        demo.calls("echo"),
        4,
        "four calls in all, across both replicas"
    );
    // The other replica sees the same counter in its report.
    let r = admin_get(
        &b,
        "/admin/quotas?subject=alice&issuer=api-key",
        ADMIN_READ_TOKEN,
    )
    .await;
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["limits"][0]["source"], "redis", "{report}");
    assert_eq!(report["limits"][0]["rate"]["remaining"], 0, "{report}");
    // Bob is counted apart.
    Caller::open(&b.url(), "bob-key")
        .await
        .ok("echo", echo("bob"))
        .await;
}

#[tokio::test]
async fn a_killed_redis_fails_open_or_closed_per_limit_and_recovers() {
    let mut redis = RedisServer::start();
    let demo = start_demo().await;
    let extra = redis_yaml(
        &redis,
        r#"  - { name: open, key: [subject], tools: [up.echo], rate: { requests: 2, per: 1h }, backend: redis, on_redis_error: fail_open }
  - { name: closed, key: [subject], tools: [up.add], rate: { requests: 100, per: 1h }, backend: redis, on_redis_error: fail_closed }
"#,
    );
    let gw = gateway(&demo, &extra).await;
    let alice = Caller::open(&gw.url(), "alice-key").await;
    let add = json!({"a": 1, "b": 2});
    alice.ok("add", add.clone()).await;

    redis.kill();
    // fail_closed: a clear 503, the upstream not called.
    let r = alice.call("add", add.clone()).await;
    assert_eq!(header(r.headers(), "retry-after"), "1");
    let v = assert_error(r, 503, -32000, "quota store (Redis)").await;
    assert_eq!(v["error"]["data"]["limit"], "closed", "{v}");
    assert_eq!(demo.calls("add"), 1);
    // fail_open: counted per replica in memory, and that local limit still holds.
    alice.ok("echo", echo("one")).await;
    alice.ok("echo", echo("two")).await;
    assert_limited(alice.call("echo", echo("three")).await, "open").await;
    let fallbacks = |mode: &'static str, limit: &'static str| {
        let gw = &gw;
        async move {
            let l = format!("limit=\"{limit}\"");
            let m = format!("mode=\"{mode}\"");
            metric(gw, "mcp_gateway_quota_redis_fallbacks_total", &[&l, &m]).await
        }
    };
    assert_eq!(fallbacks("fail_open", "open").await, Some(3.0));
    assert_eq!(fallbacks("fail_closed", "closed").await, Some(1.0));

    redis.restart();
    // Bounded wait for the store's back-off (1 s) to pass and the connection to return.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = alice.call("add", add.clone()).await;
        if r.status() == 200 {
            let v = jsonrpc_body(r).await;
            assert!(v["result"].is_object(), "{v}");
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Redis (empty after the restart) counts again: two echoes pass there.
    alice.ok("echo", echo("back")).await;
}

/// A call that never reached its upstream (connection refused) did not run: it gives back
/// its rate slot and its fixed budget charge, in memory and in Redis, so an outage does not
/// use up a caller's quota. Before, the third refused call met `mem`'s budget (3 + 3 + 3
/// of 10 units spent) and got 429 instead of the outage's 502. The Redis limit has room for
/// every call with or without refunds (they are sent after each answer, so one may land
/// late): its counters are read once they have landed. A virtual server's call whose
/// upstream session cannot be opened (refused after its decision) gives back the same way.
#[tokio::test]
async fn calls_that_never_reached_the_upstream_use_up_no_quota() {
    let redis = RedisServer::start();
    let demo = start_demo().await;
    let extra = redis_yaml(
        &redis,
        r#"  - { name: mem, key: [subject], rate: { requests: 3, per: 1h }, budget: { units: 10, per: 1h, cost: [{ tools: [up.echo], units: 3 }] } }
  - { name: shared, key: [subject], rate: { requests: 5, per: 1h }, budget: { units: 20, per: 1h, cost: [{ tools: [up.echo], units: 4 }] }, backend: redis }
"#,
    );
    let gw = gateway(&demo, &extra).await;
    let alice = Caller::open(&gw.url(), "alice-key").await;
    alice.ok("echo", echo("up")).await;
    // A virtual-server session that has not called the upstream yet: its first call must
    // open the upstream session, which fails once the upstream is down (refused after its
    // decision, before anything is sent).
    let on_vserver = Caller::open(&format!("http://{}/v/all/mcp", gw.addr), "alice-key").await;
    demo.shutdown().await;
    for _ in 0..4 {
        let r = alice.call("echo", echo("down")).await;
        assert_error(r, 502, -32000, "connection refused").await;
    }
    for _ in 0..2 {
        let r = on_vserver.call("up__echo", echo("down")).await;
        assert_error(r, 502, -32000, "could not open a session").await;
    }
    // What the one delivered call took, and no more: `mem` 2 of 3 slots left and 3 of 10
    // units spent, `shared` 4 of 5 and 4 of 20. Redis refunds: wait for them to land.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report: Value = admin_get(
            &gw,
            "/admin/quotas?subject=alice&issuer=api-key",
            ADMIN_READ_TOKEN,
        )
        .await
        .json()
        .await
        .unwrap();
        let limits = report["limits"].as_array().cloned().unwrap_or_default();
        let of = |name: &str| {
            limits
                .iter()
                .find(|l| l["name"] == name)
                .cloned()
                .unwrap_or_default()
        };
        let (mem, shared) = (of("mem"), of("shared"));
        assert_eq!(mem["rate"]["remaining"], 2, "{report}");
        assert_eq!(mem["budget"]["spent"], 3, "{report}");
        if shared["rate"]["remaining"] == 4 && shared["budget"]["spent"] == 4 {
            assert_eq!(shared["source"], "redis", "{report}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Redis refunds never landed: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
