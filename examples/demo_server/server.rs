//! A small but real MCP server used as the upstream for the gateway's demo and
//! its integration tests.
//!
//! It is built on rmcp's Streamable HTTP server (`StreamableHttpService`) with
//! the default in-process session manager, mounted at `/mcp` in an axum
//! router. An axum middleware records every HTTP request that reaches `/mcp`
//! (count and headers) so tests can observe what the gateway forwarded.
//!
//! This file is compiled twice: as a module of the `demo_server` example and,
//! via `#[path]`, as a module of integration-test crates. It therefore depends
//! only on external crates, never on the `mcp_gateway` library.

// Every user of this module uses only part of its API (the example binary never
// calls `calls()` or `last_headers()`, most tests never call `shutdown()`), and
// in those crates the module is private, so `pub` items are "unreachable".
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use axum::{
    extract::Request, middleware::Next, response::Response, serve::ListenerExt as _, Router,
};
use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, Implementation, ProgressNotificationParam,
        ServerCapabilities, ServerConfig,
    },
    schemars,
    service::RequestContext,
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    },
    ErrorData, RoleServer, ServerHandler,
};
use serde::Deserialize;
use tokio::{sync::watch, task::JoinHandle};

/// Name reported in the `initialize` result's `serverInfo`.
pub const SERVER_NAME: &str = "mcp-gateway-demo";

/// How long [`DemoServer::shutdown`] waits for open connections to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Options for [`DemoServer::start`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoOptions {
    /// `false` (the default, rmcp's default): sessionful server; every
    /// response to a POSTed request is a `text/event-stream`, and the server
    /// issues `Mcp-Session-Id` and accepts `DELETE` to end a session.
    ///
    /// `true`: answer simple requests with `Content-Type: application/json`.
    /// rmcp 3.11 only honours `json_response` in its *stateless* mode, so this
    /// also turns sessions off: no `Mcp-Session-Id` is issued, `GET`/`DELETE`
    /// get 405, and each request is served by a fresh handler. A request whose
    /// handler emits notifications before its result (e.g. `long_running` with
    /// a progress token) still falls back to an SSE response so nothing is lost.
    pub json_response: bool,
    /// Print one line to stdout for every `tools/call` that reaches the server (tool name and
    /// arguments), so the README demo can show which calls the gateway let through and which
    /// never arrived. Off for tests and load tests (a line per call is noise there).
    pub log_calls: bool,
}

/// State shared by the HTTP middleware, every session's handler and the
/// [`DemoServer`] handle.
#[derive(Debug, Default)]
struct Shared {
    /// `tools/call` count per requested tool name (counted before dispatch,
    /// so unknown tool names are counted as well).
    calls: Mutex<HashMap<String, usize>>,
    /// Headers of the most recent HTTP request to `/mcp`.
    last_headers: Mutex<Option<http::HeaderMap>>,
    /// `Authorization` values of the last [`RECENT`] requests that carried one (a gateway's
    /// own discovery requests may come between a test's call and its check).
    recent_authorization: Mutex<std::collections::VecDeque<String>>,
    /// Total HTTP requests to `/mcp`.
    requests: AtomicUsize,
    /// TCP connections accepted.
    connections: AtomicUsize,
    /// `long_running` calls that ended because they were cancelled.
    cancelled: AtomicUsize,
    /// Releases `long_running` calls with `gated: true` waiting after their first step
    /// ([`DemoServer::release`]).
    gate: tokio::sync::Notify,
    /// [`DemoOptions::log_calls`].
    log_calls: bool,
}

/// Locks a mutex, ignoring poisoning: the data here are plain counters and
/// snapshots, so a panic elsewhere can't leave them inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running demo server. Shut it down with [`DemoServer::shutdown`]; dropping
/// it also initiates a (non-waiting) shutdown.
#[derive(Debug)]
pub struct DemoServer {
    /// Address the server is listening on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Cancels every rmcp session and open SSE stream.
    cancel_rmcp: CancelRmcp,
    /// Tells axum to stop accepting and drain connections.
    stop_tx: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl DemoServer {
    /// Starts serving MCP at `http://{listener address}/mcp` on a background task.
    pub async fn start(
        listener: tokio::net::TcpListener,
        opts: DemoOptions,
    ) -> anyhow::Result<DemoServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            log_calls: opts.log_calls,
            ..Shared::default()
        });

        let config = if opts.json_response {
            StreamableHttpServerConfig::default()
                .with_legacy_session_mode(false)
                .with_json_response(true)
        } else {
            StreamableHttpServerConfig::default()
        }
        // rmcp's DNS-rebinding protection only accepts loopback `Host`s by
        // default. This server sits behind the gateway, which does its own
        // Host/Origin checks and may forward any `Host` (e.g. a name, or
        // `127.0.0.1:PORT`), so accept every Host here.
        .disable_allowed_hosts();
        let rmcp_token = config.cancellation_token.clone();
        let cancel_rmcp = CancelRmcp(Box::new(move || rmcp_token.cancel()));

        let handler_shared = shared.clone();
        let service: StreamableHttpService<DemoHandler, LocalSessionManager> =
            StreamableHttpService::new(
                move || Ok(DemoHandler::new(handler_shared.clone())),
                Arc::new(LocalSessionManager::default()),
                config,
            );

        let middleware_shared = shared.clone();
        let recorder = axum::middleware::from_fn(move |request: Request, next: Next| {
            let shared = middleware_shared.clone();
            async move { record_request(&shared, request, next).await }
        });
        let app = Router::new()
            .route_service("/mcp", service)
            .route_layer(recorder);

        let accept_shared = shared.clone();
        let listener = listener.tap_io(move |_| {
            accept_shared.connections.fetch_add(1, Ordering::SeqCst);
        });

        let (stop_tx, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Resolves when `true` is sent or the sender is dropped.
                    let _ = stop_rx.wait_for(|stop| *stop).await;
                })
                .await
        });

        Ok(DemoServer {
            addr,
            shared,
            cancel_rmcp,
            stop_tx,
            task: Some(task),
        })
    }

    /// The MCP endpoint URL, `http://{addr}/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// How many `tools/call` requests reached the tool called `tool`.
    pub fn calls(&self, tool: &str) -> usize {
        lock(&self.shared.calls).get(tool).copied().unwrap_or(0)
    }

    /// Headers of the most recent HTTP request to `/mcp`, if any.
    pub fn last_headers(&self) -> Option<http::HeaderMap> {
        lock(&self.shared.last_headers).clone()
    }

    /// `Authorization` values of the most recent requests that carried one, oldest first.
    pub fn recent_authorization(&self) -> Vec<String> {
        lock(&self.shared.recent_authorization)
            .iter()
            .cloned()
            .collect()
    }

    /// Total HTTP requests (any method) to `/mcp`.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Total TCP connections accepted (to observe connection reuse).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Let one `long_running` call with `gated: true` go on past its first step.
    pub fn release(&self) {
        self.shared.gate.notify_one();
    }

    /// How many `long_running` calls were cancelled (`notifications/cancelled`, or rmcp
    /// noticing the request's end) before they finished.
    pub fn cancelled(&self) -> usize {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Stops accepting connections, ends all MCP sessions and streams, and
    /// waits (up to a few seconds) for open connections to finish.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    fn signal_stop(&self) {
        (self.cancel_rmcp.0)();
        let _ = self.stop_tx.send(true);
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        // Best effort: the serve task winds down on its own once signalled.
        self.signal_stop();
    }
}

/// Cancels rmcp's server-wide cancellation token. That token is tokio-util's
/// `CancellationToken`, which this crate can't name (tokio-util is not a
/// direct dependency and rmcp doesn't re-export it), hence the closure.
struct CancelRmcp(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for CancelRmcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CancelRmcp")
    }
}

/// How many recent `Authorization` values are kept.
const RECENT: usize = 32;

/// axum middleware: count the request and remember its headers.
async fn record_request(shared: &Shared, request: Request, next: Next) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    *lock(&shared.last_headers) = Some(request.headers().clone());
    if let Some(v) = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut recent = lock(&shared.recent_authorization);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(v.to_string());
    }
    next.run(request).await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// Text to return unchanged.
    text: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// Left operand.
    a: i64,
    /// Right operand.
    b: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct LongRunningArgs {
    /// Number of steps (default 3, clamped to 1..=20).
    steps: Option<u32>,
    /// Milliseconds to sleep before each step (default 200, clamped to 0..=5000).
    interval_ms: Option<u64>,
    /// After the first step's progress, wait (at most 30 s) until the test releases the
    /// call (`DemoServer::release`): a test can then check that the first progress
    /// notification reached the client while the call was still running, with no timing.
    gated: Option<bool>,
}

/// The MCP handler. rmcp creates one per session (or per request in
/// stateless mode); they all share the same [`Shared`] counters.
#[derive(Debug, Clone)]
struct DemoHandler {
    shared: Arc<Shared>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl DemoHandler {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Return `text` unchanged.")]
    async fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Add two 64-bit integers and return the sum as text.")]
    async fn add(
        &self,
        Parameters(AddArgs { a, b }): Parameters<AddArgs>,
    ) -> Result<String, ErrorData> {
        a.checked_add(b)
            .map(|sum| sum.to_string())
            .ok_or_else(|| ErrorData::invalid_params("integer overflow", None))
    }

    #[tool(
        description = "Sleep `interval_ms` before each of `steps` steps, reporting progress \
                       after each step when the request carries a progress token."
    )]
    async fn long_running(
        &self,
        Parameters(args): Parameters<LongRunningArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        let steps = args.steps.unwrap_or(3).clamp(1, 20);
        let interval = Duration::from_millis(args.interval_ms.unwrap_or(200).clamp(0, 5000));
        let progress_token = context.meta.get_progress_token();
        for step in 1..=steps {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = context.ct.cancelled() => {
                    self.shared.cancelled.fetch_add(1, Ordering::SeqCst);
                    return Err(ErrorData::internal_error("request cancelled", None));
                }
            }
            if let Some(token) = &progress_token {
                // Sent on the POST's SSE stream right away (rmcp routes a
                // notification carrying a request's progress token to that
                // request's stream). A failure only means the client went away.
                let _ = context
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), f64::from(step))
                            .with_total(f64::from(steps))
                            .with_message(format!("step {step} of {steps}")),
                    )
                    .await;
            }
            if step == 1 && args.gated == Some(true) {
                // A release that came first is kept (`notify_one` stores one permit).
                let _ = tokio::time::timeout(Duration::from_secs(30), self.shared.gate.notified())
                    .await;
            }
        }
        Ok(format!("done after {steps} steps"))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions("Demo MCP server for mcp-gateway: tools echo, add, long_running.")
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        *lock(&self.shared.calls)
            .entry(request.name.to_string())
            .or_insert(0) += 1;
        if self.shared.log_calls {
            let arguments = request
                .arguments
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok())
                .unwrap_or_default();
            println!("tools/call {} {arguments}", request.name);
        }
        let tcc = ToolCallContext::new(self, request, context);
        self.tool_router.call(tcc).await
    }
}
