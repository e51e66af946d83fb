//! End to end through the gateway with real MCP software on both sides: the official Rust SDK
//! (rmcp) as client and as the demo upstream.

use std::time::Duration;

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn rmcp_client_initializes_lists_and_calls_through_the_gateway() {
    let (demo, gw) = demo_and_gateway().await;
    let c = client::connect(&gw.url())
        .await
        .expect("initialize through gateway");
    let info = c.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("mcp-gateway-demo")
    );

    let tools = c.list_all_tools().await.expect("tools/list");
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["add", "echo", "long_running"]);

    let r = client::call_tool(&c, "add", json!({"a": 2, "b": 3}))
        .await
        .unwrap();
    assert_eq!(client::text_of(&r), "5");
    assert_eq!(demo.calls("add"), 1);
    c.cancel().await.ok();

    let ok = metric(
        &gw,
        "mcp_gateway_requests_total",
        &["method=\"tools/call\"", "outcome=\"ok\""],
    )
    .await;
    assert_eq!(ok, Some(1.0));
    let init = metric(
        &gw,
        "mcp_gateway_requests_total",
        &["method=\"initialize\"", "outcome=\"ok\""],
    )
    .await;
    assert_eq!(init, Some(1.0));
    let hist = metric_sum(
        &gw,
        "mcp_gateway_upstream_latency_seconds_count",
        &["upstream=\"up\""],
    )
    .await;
    assert!(hist >= 3.0, "{hist:?}");
}

/// Progress reaches the client while the call is still running: the demo server sends the
/// first step's notification and then waits for the test to release it, so a gateway that
/// held the stream back until the end would never show the first event before the release
/// (the bounded wait below would fail). No timing is measured.
pub(crate) async fn progress_streams_before_the_call_ends(
    demo: &demo::DemoServer,
    url: &str,
    tool: &str,
) {
    let c = client::connect(url).await.expect("connect");
    let call = client::call_tool_with_progress(
        &c,
        tool,
        json!({"steps": 2, "interval_ms": 0, "gated": true}),
    );
    let watch = async {
        let mut seen = 0;
        for _ in 0..1000 {
            seen = c.service().events().len();
            if seen >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The server cannot finish before the release below: the event came mid-call.
        assert_eq!(
            seen, 1,
            "the first progress event arrives while the call waits"
        );
        demo.release();
    };
    let (r, ()) = tokio::join!(call, watch);
    let r = r.expect("the gated call");
    assert_eq!(client::text_of(&r), "done after 2 steps");
    for _ in 0..500 {
        if c.service().events().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = c.service().events();
    assert_eq!(events.len(), 2, "two progress notifications");
    for (i, (_, p)) in events.iter().enumerate() {
        assert_eq!(p.progress, (i + 1) as f64);
    }
    c.cancel().await.ok();
}

#[tokio::test]
async fn progress_events_stream_through_as_they_happen() {
    let (demo, gw) = demo_and_gateway().await;
    progress_streams_before_the_call_ends(&demo, &gw.url(), "long_running").await;
}

#[tokio::test]
async fn sse_responses_are_marked_unbuffered_and_session_headers_pass_through() {
    let (_demo, gw) = demo_and_gateway().await;
    let sid = raw_initialize(&gw.url()).await;
    let r = post(
        &gw.url(),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "2025-06-18"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.starts_with("text/event-stream")),
        Some(true)
    );
    assert_eq!(r.headers().get("x-accel-buffering").unwrap(), "no");
    let v = jsonrpc_body(r).await;
    assert_eq!(v["id"], 2);
    assert_eq!(v["result"]["tools"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn json_responses_pass_through() {
    let d = start_demo_with(demo::DemoOptions {
        json_response: true,
        ..Default::default()
    })
    .await;
    let gw = start_gateway(&config_for(&d.url()).yaml()).await;
    let c = client::connect(&gw.url()).await.unwrap();
    let r = client::call_tool(&c, "echo", json!({"text": "json mode"}))
        .await
        .unwrap();
    assert_eq!(client::text_of(&r), "json mode");
    c.cancel().await.ok();
}

#[tokio::test]
async fn delete_ends_the_session() {
    let (demo, gw) = demo_and_gateway().await;
    let sid = raw_initialize(&gw.url()).await;
    let r = http()
        .delete(gw.url())
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "DELETE answered {}", r.status());
    let before = demo.requests();
    let r = post(
        &gw.url(),
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
        &[("mcp-session-id", &sid)],
    )
    .await;
    assert_eq!(
        demo.requests(),
        before + 1,
        "the request reached the upstream"
    );
    assert!(
        r.status().is_client_error(),
        "ended session still usable: {}",
        r.status()
    );
}

#[tokio::test]
async fn get_opens_the_server_to_client_stream() {
    let (_demo, gw) = demo_and_gateway().await;
    let sid = raw_initialize(&gw.url()).await;
    let r = http()
        .get(gw.url())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.starts_with("text/event-stream")),
        Some(true)
    );
    assert_eq!(r.headers().get("x-accel-buffering").unwrap(), "no");
}

/// Bodies under Pingora's 64 KiB retry buffer are replayed by Pingora; larger ones are forwarded
/// by the gateway itself. Both must reach the upstream byte for byte.
#[tokio::test]
async fn large_tool_call_bodies_reach_the_upstream_intact() {
    let (demo, gw) = demo_and_gateway().await;
    let c = client::connect(&gw.url()).await.unwrap();
    for size in [60 * 1024, 200 * 1024] {
        let text: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let r = client::call_tool(&c, "echo", json!({ "text": text }))
            .await
            .unwrap();
        let back = client::text_of(&r);
        assert_eq!(back.len(), size);
        assert!(back == text, "{size} byte body was altered");
    }
    assert_eq!(demo.calls("echo"), 2);
    c.cancel().await.ok();
}

#[tokio::test]
async fn large_body_over_a_dead_upstream_still_gets_a_clean_error() {
    let port = free_port();
    let gw = start_gateway(&config_for(&format!("http://127.0.0.1:{port}/mcp")).yaml()).await;
    let body = json!({"jsonrpc":"2.0","id":"big","method":"tools/call",
        "params":{"name":"echo","arguments":{"text":"y".repeat(100 * 1024)}}});
    let r = post(&gw.url(), body.to_string(), &[]).await;
    let v = assert_error(r, 502, -32000, "connection refused").await;
    assert_eq!(v["id"], "big");
}

#[tokio::test]
async fn admin_health_ready_and_metrics() {
    let (_demo, gw) = demo_and_gateway().await;
    raw_initialize(&gw.url()).await;
    let r = http().get(gw.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http().get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["upstreams"], json!(["up"]));
    let r = http().get(gw.admin_url("/metrics")).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE mcp_gateway_requests_total counter"),
        "{text}"
    );
    let r = http().get(gw.admin_url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let (demo, gw) = demo_and_gateway().await;
    let sid = raw_initialize(&gw.url()).await;
    for i in 0..20 {
        let r = post(
            &gw.url(),
            format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"ping"}}"#),
            &[("mcp-session-id", &sid)],
        )
        .await;
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
    }
    assert!(demo.requests() >= 22);
    let accepted = demo.connections();
    assert!(
        accepted <= 3,
        "{accepted} upstream connections for 22 requests"
    );
}
