//! A minimal, fast MCP upstream for load tests: JSON answers with fixed bodies, so the load
//! test measures the proxies in front of it rather than the server.
//!
//! ```text
//! cargo run --release --example fast_upstream -- 127.0.0.1:18000 [TOOLS] [--ports N] [--sessions] [--no-modern]
//! ```
//! - `tools/list` returns TOOLS (default 20) realistic definitions (about 8 KB for 20);
//!   `tools/call` returns a one-line text result; notifications get 202.
//! - `--ports N` serves the same endpoint on N consecutive ports starting at the given one
//!   (many "upstreams" in one process, for a virtual server over 20 upstreams).
//! - `--sessions` makes `initialize` hand out an `Mcp-Session-Id` (a counter; nothing is
//!   kept), so a gateway has an upstream session to remember per client session.
//! - It is dual-era, as FastMCP and the Python SDK servers are (`--no-modern`: handshake
//!   era only, a 400 to `server/discover` as server-everything answers): it answers
//!   `server/discover` (2026-07-28), and a request carrying the 2026-07-28 `_meta` envelope
//!   gets `resultType` in its result; such a `tools/call` must carry `Mcp-Name` equal to the
//!   tool name (400 otherwise, like a real modern server's -32020 check).
//! - `GET /stats` answers how many `initialize`, `tools/list` and `tools/call` requests all
//!   ports together received, so a load test can prove a list came from a registry.
//!
//! It is not an MCP server to build on: it answers by matching the method name in the body.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};

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
                }, "required": ["id"]},
                "annotations": {"readOnlyHint": true}
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

#[derive(Default)]
struct Stats {
    initialize: AtomicU64,
    list: AtomicU64,
    call: AtomicU64,
}

struct Options {
    addr: std::net::SocketAddr,
    tools: usize,
    ports: u16,
    sessions: bool,
    modern: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        addr: ([127, 0, 0, 1], 18000).into(),
        tools: 20,
        ports: 1,
        sessions: false,
        modern: true,
    };
    let mut positional = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sessions" => o.sessions = true,
            "--no-modern" => o.modern = false,
            "--ports" => {
                o.ports = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|n| (1..=256).contains(n))
                    .ok_or("--ports takes a number from 1 to 256")?;
            }
            _ if positional == 0 => {
                o.addr = a.parse().map_err(|e| format!("address {a:?}: {e}"))?;
                positional += 1;
            }
            _ if positional == 1 => {
                o.tools = a.parse().map_err(|e| format!("tools {a:?}: {e}"))?;
                positional += 1;
            }
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(o)
}

fn main() -> std::io::Result<()> {
    let o = options().map_err(std::io::Error::other)?;
    let list = Arc::new(tools_json(o.tools));
    let stats = Arc::new(Stats::default());
    let next_session = Arc::new(AtomicU64::new(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let s = stats.clone();
        let app = axum::Router::new()
            .route(
                "/mcp",
                post(move |headers: axum::http::HeaderMap, body: Bytes| {
                    let (list, stats, next) = (list.clone(), s.clone(), next_session.clone());
                    async move {
                        let has = |m: &[u8]| body.windows(m.len()).any(|w| w == m);
                        let mut session = None;
                        let modern = o.modern && has(b"\"io.modelcontextprotocol/protocolVersion\"");
                        let result = if has(b"\"server/discover\"") {
                            if !modern {
                                return (StatusCode::BAD_REQUEST, "Bad Request: Server not initialized").into_response();
                            }
                            r#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"serverInfo":{"name":"fast","version":"1"},"resultType":"complete"}"#.to_owned()
                        } else if has(b"\"tools/list\"") {
                            stats.list.fetch_add(1, Ordering::Relaxed);
                            list.as_str().to_owned()
                        } else if has(b"\"tools/call\"") {
                            stats.call.fetch_add(1, Ordering::Relaxed);
                            if modern {
                                // The name header must say what the body says (quoted in the body).
                                let named = headers
                                    .get("mcp-name")
                                    .is_some_and(|n| has(format!("\"name\":\"{}\"", n.to_str().unwrap_or("")).as_bytes()));
                                if !named {
                                    return (StatusCode::BAD_REQUEST, "Mcp-Name does not match params.name").into_response();
                                }
                                r#"{"content":[{"type":"text","text":"ok"}],"isError":false,"resultType":"complete"}"#.to_owned()
                            } else {
                                r#"{"content":[{"type":"text","text":"ok"}],"isError":false}"#.to_owned()
                            }
                        } else if has(b"\"initialize\"") {
                            stats.initialize.fetch_add(1, Ordering::Relaxed);
                            if o.sessions {
                                session = Some(format!("s{}", next.fetch_add(1, Ordering::Relaxed)));
                            }
                            r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"fast","version":"1"}}"#.to_owned()
                        } else {
                            return StatusCode::ACCEPTED.into_response();
                        };
                        let mut resp = ([(header::CONTENT_TYPE, "application/json")], answer(&body, &result)).into_response();
                        if let Some(sid) = session.and_then(|s| s.parse().ok()) {
                            resp.headers_mut().insert("mcp-session-id", sid);
                        }
                        resp
                    }
                }),
            )
            .route(
                "/stats",
                get(move || {
                    let s = stats.clone();
                    async move {
                        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
                        format!(
                            r#"{{"initialize":{},"tools/list":{},"tools/call":{}}}"#,
                            n(&s.initialize),
                            n(&s.list),
                            n(&s.call)
                        )
                    }
                }),
            );
        let mut servers = Vec::new();
        for i in 0..o.ports {
            let mut addr = o.addr;
            let port = o.addr.port().checked_add(i).ok_or_else(|| {
                std::io::Error::other(format!("port {} + {i} is past 65535", o.addr.port()))
            })?;
            addr.set_port(port);
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("fast MCP upstream listening on http://{addr}/mcp ({} tools)", o.tools);
            servers.push(tokio::spawn(axum::serve(listener, app.clone()).into_future()));
        }
        for s in servers {
            s.await.map_err(std::io::Error::other)??;
        }
        Ok(())
    })
}
