//! A minimal, fast MCP upstream for load tests: stateless JSON answers with fixed bodies, so
//! the load test measures the proxies in front of it rather than the server.
//!
//! ```text
//! cargo run --release --example fast_upstream -- 127.0.0.1:18000 [TOOLS]
//! ```
//! `tools/list` returns TOOLS (default 20) realistic definitions (about 8 KB for 20);
//! `tools/call` returns a one-line text result; `initialize` works without sessions;
//! notifications get 202. It is not an MCP server to build on: it answers by matching the
//! method name in the body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;

fn tools_json(n: usize) -> String {
    let tools: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("tool_{i:03}"),
                "description": "Look up records in the example system by identifier and return the matching fields as text.",
                "inputSchema": {"type": "object", "properties": {
                    "id": {"type": "string", "description": "record identifier"},
                    "fields": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100}
                }, "required": ["id"]}
            })
        })
        .collect();
    serde_json::json!({ "tools": tools }).to_string()
}

/// Answer `{"jsonrpc":"2.0","id":<id>,"result":<result>}` using the id's raw text.
fn answer(body: &[u8], result: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<&'a serde_json::value::RawValue>,
    }
    let id = serde_json::from_slice::<Id<'_>>(body)
        .ok()
        .and_then(|i| i.id)
        .map_or("null", |r| r.get());
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18000".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let list = Arc::new(tools_json(n));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new().route(
            "/mcp",
            post(move |body: Bytes| {
                let list = list.clone();
                async move {
                    let has = |m: &[u8]| body.windows(m.len()).any(|w| w == m);
                    let result = if has(b"\"tools/list\"") {
                        list.as_str().to_owned()
                    } else if has(b"\"tools/call\"") {
                        r#"{"content":[{"type":"text","text":"ok"}],"isError":false}"#.to_owned()
                    } else if has(b"\"initialize\"") {
                        r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"fast","version":"1"}}"#.to_owned()
                    } else {
                        return StatusCode::ACCEPTED.into_response();
                    };
                    ([(header::CONTENT_TYPE, "application/json")], answer(&body, &result)).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("fast MCP upstream listening on http://{addr}/mcp ({n} tools)");
        axum::serve(listener, app).await
    })
}
