//! Opens many MCP sessions through a gateway, for the load test's memory figure.
//!
//! ```text
//! cargo run --release --example session_load -- URL SESSIONS CONCURRENCY [BEARER_TOKEN]
//! ```
//! Each session is a real one: `initialize` (keeping the `Mcp-Session-Id` it returns),
//! `notifications/initialized`, then one `tools/call` of `TOOL` (env, default
//! `fast__tool_000`) on it, so the gateway also opens and remembers the upstream session.
//! Sessions are left open (no DELETE). Prints how many succeeded; exits 1 if any failed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"session-load","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

async fn one(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    call: &str,
) -> Result<(), String> {
    let post = |body: String, sid: Option<&str>| {
        let mut r = client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = sid {
            r = r
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-06-18");
        }
        r.send()
    };
    let resp = post(INIT.to_string(), None)
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("initialize: HTTP {}", resp.status()));
    }
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = resp.bytes().await;
    let sid = sid.as_deref();
    let resp = post(INITIALIZED.to_string(), sid)
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("initialized: HTTP {}", resp.status()));
    }
    let resp = post(call.to_string(), sid)
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() || !body.windows(8).any(|w| w == b"\"result\"") {
        return Err(format!(
            "tools/call: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(n), Some(c)) = (
        args.first().cloned(),
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: session_load URL SESSIONS CONCURRENCY [BEARER_TOKEN]");
        std::process::exit(2);
    };
    let token = args.get(3).cloned();
    let tool = std::env::var("TOOL").unwrap_or_else(|_| "fast__tool_000".into());
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"id":"1"}}}}}}"#
    );
    // reqwest is built without a TLS provider of its own (rmcp's feature set): install one.
    pingora::tls::install_default_crypto_provider();
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("session_load: {e}");
            std::process::exit(2);
        }
    };
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut workers = Vec::new();
    for _ in 0..c.max(1) {
        let (client, url, token, call) = (client.clone(), url.clone(), token.clone(), call.clone());
        let (next, failed, first_error) = (next.clone(), failed.clone(), first_error.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                if let Err(e) = one(&client, &url, token.as_deref(), &call).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut f) = first_error.lock() {
                        f.get_or_insert(e);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let failed = failed.load(Ordering::Relaxed);
    println!("{} sessions opened, {failed} failed", n - failed.min(n));
    if failed > 0 {
        if let Ok(f) = first_error.lock() {
            eprintln!("first error: {}", f.as_deref().unwrap_or("?"));
        }
        std::process::exit(1);
    }
}
