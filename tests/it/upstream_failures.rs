//! When the upstream fails (refused, timeout, reset, 5xx) the client gets a JSON-RPC error
//! that names the upstream and the cause and carries the request id, never an empty 200;
//! and the failure is counted in the metrics.

use std::time::Duration;

use crate::common::{self, *};
use axum::routing::post;

const CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;

#[tokio::test]
async fn connection_refused_is_502_naming_the_upstream() {
    let port = free_port(); // nothing listens here
    let gw = start_gateway(&config_for(&format!("http://127.0.0.1:{port}/mcp")).yaml()).await;
    let r = common::post(&gw.url(), CALL, &[]).await;
    let v = assert_error(r, 502, -32000, "upstream \"up\" failed: connection refused").await;
    assert_eq!(v["id"], 42);
    assert_eq!(v["error"]["data"]["upstream"], "up");
    let n = metric(
        &gw,
        "mcp_gateway_upstream_errors_total",
        &["kind=\"connect_refused\"", "upstream=\"up\""],
    )
    .await;
    assert_eq!(n, Some(1.0));
    let n = metric(
        &gw,
        "mcp_gateway_requests_total",
        &["method=\"tools/call\"", "outcome=\"upstream_error\""],
    )
    .await;
    assert_eq!(n, Some(1.0));
}

#[tokio::test]
async fn slow_upstream_is_504_after_read_timeout() {
    let addr = raw_upstream(axum::Router::new().route(
        "/mcp",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late"
        }),
    ))
    .await;
    let gw = start_gateway(
        &Config::one_route(
            Upstream::new("up", &format!("http://{addr}/mcp"))
                .read_timeout(Duration::from_millis(300)),
        )
        .yaml(),
    )
    .await;
    let started = std::time::Instant::now();
    let r = common::post(&gw.url(), CALL, &[]).await;
    let v = assert_error(r, 504, -32000, "timed out waiting for the response").await;
    assert_eq!(v["id"], 42);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered before the upstream did"
    );
}

#[tokio::test]
async fn upstream_hanging_up_is_502() {
    let addr = hangup_upstream().await;
    let gw = start_gateway(&config_for(&format!("http://{addr}/mcp")).yaml()).await;
    let r = common::post(&gw.url(), CALL, &[]).await;
    let v = assert_error(r, 502, -32000, "upstream \"up\" failed").await;
    assert_eq!(v["id"], 42);
}

#[tokio::test]
async fn upstream_5xx_becomes_502_quoting_the_upstream() {
    let addr = raw_upstream(axum::Router::new().route(
        "/mcp",
        post(|| async {
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "boom: database down",
            )
        }),
    ))
    .await;
    let gw = start_gateway(&config_for(&format!("http://{addr}/mcp")).yaml()).await;
    let r = common::post(&gw.url(), CALL, &[]).await;
    let v = assert_error(
        r,
        502,
        -32000,
        "upstream \"up\" failed: answered HTTP 500: boom: database down",
    )
    .await;
    assert_eq!(v["id"], 42);
    let n = metric(
        &gw,
        "mcp_gateway_upstream_errors_total",
        &["kind=\"status_5xx\""],
    )
    .await;
    assert_eq!(n, Some(1.0));
}

#[tokio::test]
async fn upstream_4xx_passes_through_untouched() {
    let addr = raw_upstream(axum::Router::new().route(
        "/mcp",
        post(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                [("content-type", "application/json")],
                r#"{"jsonrpc":"2.0","id":42,"error":{"code":-32600,"message":"Session not found"}}"#,
            )
        }),
    ))
    .await;
    let gw = start_gateway(&config_for(&format!("http://{addr}/mcp")).yaml()).await;
    let r = common::post(&gw.url(), CALL, &[]).await;
    assert_error(r, 404, -32600, "Session not found").await;
}
