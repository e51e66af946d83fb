//! Exercises the demo MCP server directly (no gateway in between).

use std::time::{Duration, Instant};

use crate::common::client::{call_tool, call_tool_with_progress, connect, reqwest_client, text_of};
use crate::common::demo::{DemoOptions, DemoServer};
use serde_json::json;

const INIT_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1.0"}}}"#;

async fn start(opts: DemoOptions) -> anyhow::Result<DemoServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    DemoServer::start(listener, opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_and_list_tools() -> anyhow::Result<()> {
    let server = start(DemoOptions::default()).await?;
    let client = connect(&server.url()).await?;

    let info = client
        .peer_info()
        .expect("initialized client has peer info");
    let server_info = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server_info.name, "mcp-gateway-demo");
    assert!(info.capabilities.tools.is_some(), "tools capability");

    let mut names: Vec<String> = client
        .list_all_tools()
        .await?
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["add", "echo", "long_running"]);

    client.cancel().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trips_300kb() -> anyhow::Result<()> {
    let server = start(DemoOptions::default()).await?;
    let client = connect(&server.url()).await?;

    let text: String = "0123456789abcdef\"\\\u{e9}\n"
        .chars()
        .cycle()
        .take(300 * 1024)
        .collect();
    let result = call_tool(&client, "echo", json!({ "text": text })).await?;
    assert_ne!(result.is_error, Some(true));
    assert_eq!(result.content.len(), 1);
    assert!(text_of(&result) == text, "echo changed the 300 KB text");
    assert_eq!(server.calls("echo"), 1);

    client.cancel().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_call_counts() -> anyhow::Result<()> {
    let server = start(DemoOptions::default()).await?;
    let client = connect(&server.url()).await?;

    assert_eq!(server.calls("add"), 0);
    let result = call_tool(&client, "add", json!({ "a": 2, "b": 3 })).await?;
    assert_eq!(text_of(&result), "5");
    let result = call_tool(&client, "add", json!({ "a": -10, "b": 4 })).await?;
    assert_eq!(text_of(&result), "-6");
    assert_eq!(server.calls("add"), 2);
    assert_eq!(server.calls("echo"), 0);

    // Bad arguments fail (rmcp reports them as a tool error result, or a
    // JSON-RPC error), but the call still counts as having reached the tool.
    if let Ok(result) = call_tool(&client, "add", json!({ "a": "x" })).await {
        assert_eq!(result.is_error, Some(true), "{result:?}");
    }
    assert_eq!(server.calls("add"), 3);

    client.cancel().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_streams_progress() -> anyhow::Result<()> {
    let server = start(DemoOptions::default()).await?;
    let client = connect(&server.url()).await?;

    let started = Instant::now();
    let result = call_tool_with_progress(
        &client,
        "long_running",
        json!({ "steps": 3, "interval_ms": 300 }),
    )
    .await?;
    let finished = Instant::now();
    assert_eq!(text_of(&result), "done after 3 steps");
    assert!(finished - started >= Duration::from_millis(900));

    // The client handles notifications on its own task, so the last progress event can be
    // recorded just after the result is returned: wait for it (bounded), then check order.
    let mut events = client.service().events();
    for _ in 0..200 {
        if events.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        events = client.service().events();
    }
    assert_eq!(events.len(), 3, "progress events: {events:?}");
    for (i, (at, event)) in events.iter().enumerate() {
        let step = i + 1;
        assert_eq!(event.progress, step as f64);
        assert_eq!(event.total, Some(3.0));
        assert_eq!(
            event.message.as_deref(),
            Some(&*format!("step {step} of 3"))
        );
        // The last event is sent just before the result and may be recorded just after it.
        if step < 3 {
            assert!(*at <= finished, "progress {step} arrived after the result");
        }
    }
    let spread = events[2].0 - events[0].0;
    assert!(
        spread >= Duration::from_millis(400),
        "progress was batched: first-to-last gap {spread:?}"
    );

    client.cancel().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_session_header_and_request_count() -> anyhow::Result<()> {
    let server = start(DemoOptions::default()).await?;
    assert_eq!(server.requests(), 0);
    assert!(server.last_headers().is_none());

    let client = connect(&server.url()).await?;
    // initialize, then notifications/initialized (and maybe a GET stream),
    // then this request: every request after initialize carries the session.
    client.list_all_tools().await?;
    assert!(server.requests() >= 3, "requests: {}", server.requests());
    let headers = server.last_headers().expect("headers recorded");
    assert!(
        headers.contains_key("mcp-session-id"),
        "no mcp-session-id in {headers:?}"
    );

    client.cancel().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http_behaviour() -> anyhow::Result<()> {
    let server = start(DemoOptions::default()).await?;
    let http = reqwest_client()?;

    // Missing Accept: rmcp rejects it (406).
    let response = http
        .post(server.url())
        .header("content-type", "application/json")
        .body(INIT_BODY)
        .send()
        .await?;
    assert!(
        response.status().is_client_error(),
        "status {}",
        response.status()
    );
    assert_eq!(response.status(), reqwest::StatusCode::NOT_ACCEPTABLE);

    // A proper initialize: SSE response with a session id.
    let response = http
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT_BODY)
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("initialize issues a session id")
        .clone();
    let body = response.text().await?;
    assert!(body.contains("mcp-gateway-demo"), "{body}");

    // DELETE ends the session; it is then unknown (404).
    let response = http
        .delete(server.url())
        .header("mcp-session-id", session.clone())
        .send()
        .await?;
    assert!(response.status().is_success(), "{}", response.status());
    let response = http
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);

    // Any Host is accepted (the gateway does the Host/Origin checks).
    let response = http
        .post(server.url())
        .header("host", "mcp.example.com")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT_BODY)
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(server.requests(), 5);
    // The client doesn't pool connections, so one connection per request.
    assert_eq!(server.connections(), 5);

    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_response_mode() -> anyhow::Result<()> {
    let server = start(DemoOptions {
        json_response: true,
        ..Default::default()
    })
    .await?;
    let http = reqwest_client()?;

    let response = http
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT_BODY)
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    // rmcp only does JSON responses statelessly: no session.
    assert!(response.headers().get("mcp-session-id").is_none());
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["result"]["serverInfo"]["name"], "mcp-gateway-demo");

    // The rmcp client works too, and progress still streams (SSE fallback).
    let client = connect(&server.url()).await?;
    let result = call_tool(&client, "add", json!({ "a": 40, "b": 2 })).await?;
    assert_eq!(text_of(&result), "42");
    let result = call_tool_with_progress(
        &client,
        "long_running",
        json!({ "steps": 2, "interval_ms": 50 }),
    )
    .await?;
    assert_eq!(text_of(&result), "done after 2 steps");
    // The client handles notifications on its own task: on a loaded machine the result can
    // be returned before the last progress event is recorded. Wait for it (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while client.service().events().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(client.service().events().len(), 2);

    client.cancel().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_with_connected_client() -> anyhow::Result<()> {
    let server = start(DemoOptions::default()).await?;
    let url = server.url();
    let client = connect(&url).await?;
    client.list_all_tools().await?;

    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The listener is gone.
    assert!(reqwest_client()?.get(&url).send().await.is_err());
    drop(client);
    Ok(())
}
