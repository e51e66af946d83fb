//! Shared integration-test harness: a real gateway in-process on free ports, the real demo MCP
//! server (rmcp), raw upstreams for hostile cases, and small HTTP helpers.
#![allow(unreachable_pub)]

pub mod client;
pub mod config;
#[path = "../../../examples/demo_server/server.rs"]
pub mod demo;
pub mod python;
pub mod redis;
pub mod tokens;

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mcp_gateway::server::{self, ShutdownHandle};
use serde_json::Value;

pub use config::{
    Admin, AdminPermission, Algorithm, ApiKey, Auth, Config, Jwt, JwtKey, Limits, Listener,
    ListenerAuth, OnChange, Principals, PropagationMode, Registry, SecretRef, Server, ToolOverride,
    Upstream, UpstreamAuth, VirtualServer,
};

/// A gateway running on its own thread. Dropping it shuts it down.
pub struct Gateway {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The rendered configuration it runs with.
    pub yaml: String,
    /// The gateway's shared state (runtime snapshot, metrics) for white-box assertions.
    pub shared: std::sync::Arc<mcp_gateway::state::Shared>,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Gateway {
    /// URL of the `/mcp` route.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Ports handed to servers that bind them later (the gateway's listeners, "nothing listens
/// here" addresses). Bind-to-:0-and-release raced: the kernel hands the released port to the
/// next ephemeral need (an outgoing connection, another test's `:0` listener) before the
/// gateway binds it, and a test then talks to the wrong server (seen: 404 for an expected
/// 401). So these come from below the ephemeral range (Linux's default is 32768-60999),
/// which `:0` binds and outgoing connections never use, and each is handed out at most once
/// per process. The start is spread by process id so parallel test processes on one machine
/// (CI beside a developer's run) rarely meet.
const RESERVED_PORTS: std::ops::Range<u16> = 20000..32000;

/// A port that is free now and that no other caller in this process will be given.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(RESERVED_PORTS.end - RESERVED_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = RESERVED_PORTS.start + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {RESERVED_PORTS:?}")
}

/// [`Config::one_route`] to an upstream named `up` at `upstream_url`.
pub fn config_for(upstream_url: &str) -> Config {
    Config::one_route(Upstream::new("up", upstream_url))
}

/// Fill in the listener and admin addresses of a template.
pub fn render(template: &str, addr: SocketAddr, admin: SocketAddr) -> String {
    template
        .replace("{LISTEN}", &addr.to_string())
        .replace("{ADMIN}", &admin.to_string())
}

/// Admin bearer token with the `read` permission in [`Admin::with_test_tokens`].
pub const ADMIN_READ_TOKEN: &str = "test-admin-read-token";
/// Admin bearer token with the `write` permission in [`Admin::with_test_tokens`].
pub const ADMIN_WRITE_TOKEN: &str = "test-admin-write-token";
/// Admin bearer token with the `approve` permission in [`Admin::with_test_tokens`].
pub const ADMIN_APPROVE_TOKEN: &str = "test-admin-approve-token";

/// GET an admin path with an admin bearer token.
pub async fn admin_get(gw: &Gateway, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(gw.admin_url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("send admin request")
}

/// POST a JSON body to an admin path with an admin bearer token.
pub async fn admin_post(
    gw: &Gateway,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    http()
        .post(gw.admin_url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send admin request")
}

/// Start a gateway from a YAML template ([`Config::yaml`], or literal YAML with `{LISTEN}`,
/// `{ADMIN}`) and wait until it accepts.
pub async fn start_gateway(template: &str) -> Gateway {
    let localhost = std::net::Ipv4Addr::LOCALHOST;
    let addr = std::net::SocketAddr::from((localhost, free_port()));
    let admin = std::net::SocketAddr::from((localhost, free_port()));
    let yaml = render(template, addr, admin);
    let config = mcp_gateway::config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let (srv, shared) = server::build(config, None, None).expect("build gateway");
    let handle = ShutdownHandle::default();
    let h2 = handle.clone();
    let s2 = shared.clone();
    let thread = std::thread::spawn(move || server::run_until_shutdown(srv, &s2, &h2));
    let deadline = Instant::now() + Duration::from_secs(10);
    for a in [addr, admin] {
        while tokio::net::TcpStream::connect(a).await.is_err() {
            assert!(Instant::now() < deadline, "gateway did not start on {a}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Gateway {
        addr,
        admin,
        yaml,
        shared,
        handle,
        thread: Some(thread),
    }
}

/// Start the demo MCP server (rmcp) on a free port.
pub async fn start_demo() -> demo::DemoServer {
    start_demo_with(demo::DemoOptions::default()).await
}

pub async fn start_demo_with(opts: demo::DemoOptions) -> demo::DemoServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind demo");
    demo::DemoServer::start(listener, opts)
        .await
        .expect("start demo server")
}

/// Demo server plus a gateway in front of it.
pub async fn demo_and_gateway() -> (demo::DemoServer, Gateway) {
    let d = start_demo().await;
    let gw = start_gateway(&config_for(&d.url()).yaml()).await;
    (d, gw)
}

/// A plain HTTP client (no pooling surprises between tests).
pub fn http() -> reqwest::Client {
    client::reqwest_client().expect("reqwest client")
}

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// POST a JSON-RPC body with the standard MCP headers plus `extra`.
pub async fn post(
    url: &str,
    body: impl Into<reqwest::Body>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = http()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .body(body);
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("send request")
}

/// Read a response body as one JSON-RPC message: a JSON body, or the first `data:` event of
/// an SSE body that parses as JSON-RPC with an id or error.
pub async fn jsonrpc_body(resp: reqwest::Response) -> Value {
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let text = resp.text().await.expect("read body");
    if !sse {
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some() || v.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC message in SSE body: {text}"))
}

/// Initialize a session over raw HTTP; returns the `Mcp-Session-Id`.
pub async fn raw_initialize(url: &str) -> String {
    let init = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw-test", "version": "0"}}
    });
    let resp = post(url, init.to_string(), &[]).await;
    assert_eq!(resp.status(), 200);
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("mcp-session-id header")
        .to_string();
    let v = jsonrpc_body(resp).await;
    assert!(v["result"]["serverInfo"].is_object(), "{v}");
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let resp = post(url, note, &[("mcp-session-id", &sid)]).await;
    assert_eq!(resp.status(), 202);
    sid
}

/// Assert a gateway-written JSON-RPC error: HTTP status, code, and a message substring.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: i64, needle: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let v = jsonrpc_body(resp).await;
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "message {msg:?} should contain {needle:?}"
    );
    v
}

/// Scrape the gateway's /metrics and return the value of the first sample line that starts
/// with `prefix` and contains every label in `labels`.
pub async fn metric(gw: &Gateway, name: &str, labels: &[&str]) -> Option<f64> {
    let text = http()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The sum of every sample of `name` (exactly: `name{` or `name `) whose line contains every
/// label in `labels`; 0 when there is none.
pub async fn metric_sum(gw: &Gateway, name: &str, labels: &[&str]) -> f64 {
    let text = metrics_text(gw).await;
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && labels.iter().all(|lab| l.contains(lab))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The gateway's whole /metrics text.
pub async fn metrics_text(gw: &Gateway) -> String {
    let r = http()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status(), 200);
    r.text().await.expect("metrics body")
}

/// Serve an axum router on a free port (for upstreams the SDK would never be: 500s, stalls,
/// wrong content types). Runs until the test's runtime ends.
pub async fn raw_upstream(router: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind raw upstream");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, router).await;
    });
    addr
}

/// An upstream that accepts TCP connections, reads a little, and closes them without answering.
pub async fn hangup_upstream() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    addr
}
