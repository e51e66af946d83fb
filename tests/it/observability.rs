//! Metrics, tracing and the Grafana dashboard through the running gateway and the real rmcp
//! demo upstream: counters move by the expected deltas (a call, a policy refusal, an
//! approval, a quota hit, authentication failures), both latency histograms get samples, no
//! label carries a client string, every PromQL expression of `conf/grafana/mcp-gateway.json`
//! names a metric the gateway exports, and `traceparent` reaches the upstream continued,
//! replaced or started.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::tokens::{sha256_hex, RESOURCE};
use crate::common::*;

/// A governed gateway: API key `alice-key`, the demo upstream on `/mcp` and on virtual server
/// `all` (`/v/all/mcp`), a policy on `up.echo`, approvals for `up.echo`, a quota of two
/// `up.add` calls, and an approver token.
async fn governed(demo: &demo::DemoServer) -> Gateway {
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
    tokens: [{{ name: approver, sha256: "{approver}", permission: approve }}]
auth:
  resource: {RESOURCE}
  api_keys:
    - {{ sha256: "{alice}", subject: alice }}
virtual_servers:
  - {{ name: all, route: /v/all/mcp }}
policies:
  - id: short-echo
    tools: [up.echo]
    arguments:
      text: {{ max_length: 5 }}
approvals:
  rules:
    - tools: [up.echo]
quotas:
  - name: two-adds
    key: [subject]
    tools: [up.add]
    rate: {{ requests: 2, per: 1h }}
"#,
        url = demo.url(),
        approver = sha256_hex(ADMIN_APPROVE_TOKEN),
        alice = sha256_hex("alice-key"),
    );
    start_gateway(&yaml).await
}

const ALICE: &str = "Bearer alice-key";

/// Open a session on `url` as alice.
async fn open(url: &str) -> String {
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "observability-test", "version": "0"}}
    });
    let r = post(url, init.to_string(), &[("authorization", ALICE)]).await;
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
        &[("authorization", ALICE), ("mcp-session-id", &sid)],
    )
    .await;
    assert_eq!(r.status(), 202);
    sid
}

/// A `tools/call` as alice on session `sid`; the JSON-RPC answer.
async fn call(url: &str, sid: &str, tool: &str, args: Value) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": tool, "arguments": args}
    });
    let r = post(
        url,
        body.to_string(),
        &[("authorization", ALICE), ("mcp-session-id", sid)],
    )
    .await;
    jsonrpc_body(r).await
}

fn vs(gw: &Gateway) -> String {
    format!("http://{}/v/all/mcp", gw.addr)
}

/// The labels of a virtual-server `tools/call` metric sample.
fn call_labels<'a>(tool: &'a str, upstream: &'a str, outcome: &'a str) -> [String; 5] {
    [
        r#"virtual_server="all""#.to_string(),
        format!(r#"upstream="{upstream}""#),
        r#"method="tools/call""#.to_string(),
        format!(r#"tool="{tool}""#),
        format!(r#"outcome="{outcome}""#),
    ]
}

async fn sum(gw: &Gateway, name: &str, labels: &[String]) -> f64 {
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    metric_sum(gw, name, &labels).await
}

#[tokio::test]
async fn metrics_move_by_the_expected_deltas() {
    let demo = start_demo().await;
    let gw = governed(&demo).await;
    let url = vs(&gw);
    let sid = open(&url).await;
    let requests = "mcp_gateway_requests_total";

    // A call that goes through: counted once, with a gateway time and an upstream time.
    let ok = call_labels("up__add", "up", "ok");
    let before = sum(&gw, requests, &ok).await;
    let v = call(&url, &sid, "up__add", json!({"a": 1, "b": 2})).await;
    assert_eq!(v["result"]["content"][0]["text"], "3", "{v}");
    assert_eq!(sum(&gw, requests, &ok).await - before, 1.0);
    for h in [
        "mcp_gateway_added_latency_seconds_count",
        "mcp_gateway_upstream_latency_seconds_count",
    ] {
        assert_eq!(sum(&gw, h, &ok).await, 1.0, "{h}");
    }

    // A policy refusal: by step and by rule; the request is `rejected`, its tool known, its
    // upstream not named (refused before the credential step), no upstream time.
    let refused = call_labels("up__echo", "none", "rejected");
    let v = call(&url, &sid, "up__echo", json!({"text": "far too long"})).await;
    assert_eq!(v["error"]["data"]["rule"], "short-echo", "{v}");
    assert_eq!(sum(&gw, requests, &refused).await, 1.0);
    assert_eq!(
        sum(&gw, "mcp_gateway_added_latency_seconds_count", &refused).await,
        1.0
    );
    assert_eq!(
        sum(&gw, "mcp_gateway_upstream_latency_seconds_count", &refused).await,
        0.0
    );
    let step = |s: &str| {
        [
            r#"virtual_server="all""#.to_string(),
            format!(r#"step="{s}""#),
        ]
    };
    assert_eq!(
        sum(&gw, "mcp_gateway_refusals_total", &step("policy")).await,
        1.0
    );
    assert_eq!(
        sum(
            &gw,
            "mcp_gateway_policy_denials_total",
            &[r#"rule="short-echo""#.into()]
        )
        .await,
        1.0
    );

    // An approval: required, approved, used.
    let approvals = |e: &str| [format!(r#"event="{e}""#)];
    let v = call(&url, &sid, "up__echo", json!({"text": "hi"})).await;
    assert_eq!(v["error"]["code"], -32030, "{v}");
    let id = v["error"]["data"]["approvalId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = admin_post(
        &gw,
        "/admin/approvals/approve",
        ADMIN_APPROVE_TOKEN,
        &json!({ "id": id }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = call(&url, &sid, "up__echo", json!({"text": "hi"})).await;
    assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
    for (event, n) in [("required", 1.0), ("approved", 1.0), ("used", 1.0)] {
        assert_eq!(
            sum(&gw, "mcp_gateway_approvals_total", &approvals(event)).await,
            n,
            "{event}"
        );
    }
    assert_eq!(
        sum(&gw, "mcp_gateway_refusals_total", &step("approval")).await,
        1.0
    );

    // A quota hit: the third add in the hour.
    call(&url, &sid, "up__add", json!({"a": 1, "b": 2})).await;
    let v = call(&url, &sid, "up__add", json!({"a": 1, "b": 2})).await;
    assert_eq!(v["error"]["data"]["limit"], "two-adds", "{v}");
    assert_eq!(
        sum(&gw, "mcp_gateway_refusals_total", &step("quota")).await,
        1.0
    );
    assert_eq!(
        sum(
            &gw,
            "mcp_gateway_quota_decisions_total",
            &[r#"limit="two-adds""#.into(), r#"result="limited""#.into()]
        )
        .await,
        1.0
    );

    // Authentication failures, by reason.
    let reason = |r: &str| [format!(r#"reason="{r}""#)];
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    assert_eq!(post(&url, init, &[]).await.status(), 401);
    assert_eq!(
        post(&url, init, &[("authorization", "Bearer wrong-key")])
            .await
            .status(),
        401
    );
    assert_eq!(
        post(&url, init, &[("authorization", "Basic x")])
            .await
            .status(),
        401
    );
    for r in ["missing", "unknown_api_key", "malformed"] {
        assert_eq!(
            sum(&gw, "mcp_gateway_auth_failures_total", &reason(r)).await,
            1.0,
            "{r}"
        );
    }

    // State gauges: the virtual server's session holds an upstream session; discovery saw
    // the demo upstream up with its three tools; the build is identified.
    assert!(sum(&gw, "mcp_gateway_sessions_open", &[]).await >= 1.0);
    let up = [r#"upstream="up""#.to_string()];
    assert_eq!(sum(&gw, "mcp_gateway_upstream_up", &up).await, 1.0);
    assert_eq!(sum(&gw, "mcp_gateway_upstream_tools", &up).await, 3.0);
    let text = metrics_text(&gw).await;
    assert!(
        text.contains(&format!(
            r#"mcp_gateway_build_info{{commit="{}",version="{}"}} 1"#,
            mcp_gateway::metrics::GIT_COMMIT,
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

#[tokio::test]
async fn no_label_carries_a_client_string() {
    let demo = start_demo().await;
    let gw = governed(&demo).await;
    let url = vs(&gw);
    let sid = open(&url).await;
    let evil = "evil\"{x}";
    let v = call(&url, &sid, evil, json!({})).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    // On the plain route too, where the gateway does not vet tool names.
    let plain = gw.url();
    let psid = open(&plain).await;
    let v = call(&plain, &psid, evil, json!({})).await;
    assert!(
        v["error"].is_object() || v["result"]["isError"] == true,
        "{v}"
    );
    // A method, a session id, a traceparent, an API key and a path of the client's.
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": evil}).to_string();
    post(
        &url,
        body.clone(),
        &[("authorization", ALICE), ("mcp-session-id", &sid)],
    )
    .await;
    post(
        &url,
        body.clone(),
        &[("authorization", ALICE), ("mcp-session-id", evil)],
    )
    .await;
    post(&url, body.clone(), &[("authorization", "Bearer evil-key")]).await;
    post(
        &url,
        body.clone(),
        &[("traceparent", evil), ("authorization", ALICE)],
    )
    .await;
    post(&format!("http://{}/evil", gw.addr), body, &[]).await;

    let text = metrics_text(&gw).await;
    assert!(!text.contains("evil"), "{text}");
    let unknown = [
        r#"virtual_server="all""#.to_string(),
        r#"tool="unknown""#.to_string(),
        r#"outcome="rejected""#.to_string(),
    ];
    assert_eq!(sum(&gw, "mcp_gateway_requests_total", &unknown).await, 1.0);
    // Every label value is one of the gateway's closed sets or a configured name.
    let allowed: BTreeSet<&str> = [
        "all",
        "none",
        "up",
        "unknown",
        "up__add",
        "up__echo",
        "up__long_running",
    ]
    .into_iter()
    .collect();
    for line in text
        .lines()
        .filter(|l| l.starts_with("mcp_gateway_requests_total{"))
    {
        for label in ["virtual_server", "upstream", "tool"] {
            let value = line
                .split(&format!("{label}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            assert!(allowed.contains(value), "{label}={value:?} in {line}");
        }
    }
}

/// Metric names in a PromQL expression (`mcp_gateway_*`), histogram series suffixes removed.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("mcp_gateway_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every `expr` in a Grafana dashboard (panels, nested row panels, template variables).
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// Metric family names in a scrape (`# TYPE` lines), with the series a histogram adds.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        if kind == "histogram" {
            for suffix in ["_bucket", "_count", "_sum"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name.to_string());
    }
    names
}

#[tokio::test]
async fn the_dashboard_queries_only_metrics_the_gateway_exports() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/grafana/mcp-gateway.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read dashboard"))
            .expect("the dashboard is JSON");
    assert!(dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36);
    assert_eq!(dashboard["uid"], "mcp-gateway");
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    let used: BTreeSet<String> = all.iter().flat_map(|e| metric_names(e)).collect();
    assert!(used.len() >= 10, "{used:?}");
    for p in dashboard["panels"].as_array().expect("panels") {
        assert!(p["gridPos"].is_object() && p["id"].is_u64(), "{p}");
    }

    // Traffic that makes every metric appear: the governed gateway's calls, refusals and
    // failures, then a second gateway whose upstream is down and whose quota's Redis is.
    let demo = start_demo().await;
    let gw = governed(&demo).await;
    let url = vs(&gw);
    let sid = open(&url).await;
    call(&url, &sid, "up__add", json!({"a": 1, "b": 2})).await;
    call(&url, &sid, "up__echo", json!({"text": "far too long"})).await;
    let v = call(&url, &sid, "up__echo", json!({"text": "hi"})).await;
    let id = v["error"]["data"]["approvalId"]
        .as_str()
        .unwrap()
        .to_string();
    admin_post(
        &gw,
        "/admin/approvals/deny",
        ADMIN_APPROVE_TOKEN,
        &json!({ "id": id }),
    )
    .await;
    for _ in 0..3 {
        call(&url, &sid, "up__add", json!({"a": 1, "b": 2})).await;
    }
    post(&url, "{}", &[]).await;
    let mut have = exported(&metrics_text(&gw).await);

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let yaml = format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    auth: none
    routes: [{{ path: /mcp, upstream: down }}]
upstreams:
  - {{ name: down, url: "http://127.0.0.1:{dead}/mcp" }}
admin:
  address: "{{ADMIN}}"
redis: {{ url: "redis://127.0.0.1:{dead}/0" }}
quotas:
  - name: shared
    key: [subject]
    rate: {{ requests: 100, per: 1m }}
    backend: redis
    on_redis_error: fail_open
"#
    );
    let down = start_gateway(&yaml).await;
    let call =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}"#;
    let r = post(&down.url(), call, &[]).await;
    assert_eq!(r.status(), 502);
    have.extend(exported(&metrics_text(&down).await));

    let missing: Vec<&String> = used.iter().filter(|n| !have.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the gateway does not export: {missing:?}\nexported: {have:?}"
    );
}

/// The `traceparent` the upstream received with the tools/call number `i`.
fn upstream_traceparent(seen: &crate::hostile::Seen, i: usize) -> (Option<String>, Option<String>) {
    let headers = seen.headers.lock().expect("seen headers");
    let get = |name: &str| {
        headers[i]
            .iter()
            .find_map(|h| h.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    (get("traceparent"), get("tracestate"))
}

#[tokio::test]
async fn traceparent_is_continued_replaced_or_started_upstream() {
    use crate::hostile::{last_wins_upstream, Seen};
    let seen = Seen::default();
    let upstream = last_wins_upstream(seen.clone()).await;
    let gw = start_gateway(&Config::one_route(Upstream::new("crm", &upstream)).yaml()).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{}}}"#;
    let incoming_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming = format!("00-{incoming_id}-00f067aa0ba902b7-01");
    let parse = |v: &str| -> (String, String, String) {
        let parts: Vec<&str> = v.split('-').collect();
        assert_eq!(parts.len(), 4, "{v}");
        assert_eq!(parts[0], "00", "{v}");
        assert!(
            parts[1].len() == 32 && parts[2].len() == 16 && parts[3].len() == 2,
            "{v}"
        );
        assert!(
            v.bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{v}"
        );
        assert_ne!(parts[1], "0".repeat(32));
        assert_ne!(parts[2], "0".repeat(16));
        (parts[1].into(), parts[2].into(), parts[3].into())
    };

    // 1. Continued: the same trace id, the gateway's span as parent; tracestate goes on.
    let r = post(
        &gw.url(),
        body,
        &[("traceparent", &incoming), ("tracestate", "vendor=abc")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let (tp, ts) = upstream_traceparent(&seen, 0);
    let (id, parent, flags) = parse(&tp.expect("traceparent upstream"));
    assert_eq!(id, incoming_id);
    assert_ne!(
        parent, "00f067aa0ba902b7",
        "the gateway's own span is the parent"
    );
    assert_eq!(flags, "01");
    assert_eq!(ts.as_deref(), Some("vendor=abc"));

    // 2. Invalid (uppercase hex): replaced by a new trace, its tracestate dropped, the call
    //    answered as usual.
    let bad = incoming.to_uppercase();
    let r = post(
        &gw.url(),
        body,
        &[("traceparent", &bad), ("tracestate", "vendor=abc")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let (tp, ts) = upstream_traceparent(&seen, 1);
    let (id2, parent2, _) = parse(&tp.expect("traceparent upstream"));
    assert_ne!(id2, incoming_id);
    assert_ne!(id2, incoming_id.to_uppercase());
    assert_ne!(parent2, parent);
    assert_eq!(ts, None);

    // 3. Absent: started.
    let r = post(&gw.url(), body, &[]).await;
    assert_eq!(r.status(), 200);
    let (tp, _) = upstream_traceparent(&seen, 2);
    let (id3, _, flags3) = parse(&tp.expect("traceparent upstream"));
    assert_ne!(id3, id2);
    assert_eq!(flags3, "03");

    // A forwarded body larger than the retry buffer takes the gateway's own forward path:
    // it carries the trace as well.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"get_customer","arguments":{{"pad":"{}"}}}}}}"#,
        "x".repeat(70 * 1024)
    );
    let r = post(&gw.url(), big, &[("traceparent", &incoming)]).await;
    assert_eq!(r.status(), 200);
    let (tp, _) = upstream_traceparent(&seen, 3);
    let (id4, parent4, _) = parse(&tp.expect("traceparent upstream"));
    assert_eq!(id4, incoming_id);
    assert_ne!(parent4, "00f067aa0ba902b7");
}
