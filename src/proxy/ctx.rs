//! [`RequestCtx`]: everything one request learns on its way through the Pingora phases.
//!
//! Written by `request_filter` (admit), read by `upstream_peer`, `upstream_request_filter` and
//! the response filters, and turned into metrics in `logging`. Dropped at the end of the request.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::auth::Principal;
use crate::mcp::jsonrpc::RpcCall;
use crate::mcp::McpMethod;
use crate::metrics::{Outcome, UpstreamErrorKind};
use crate::state::Runtime;

/// Per-request state. See the module docs for who writes and reads what.
#[derive(Debug)]
pub struct RequestCtx {
    /// When the request arrived (ctx creation).
    pub started: Instant,
    /// The configuration snapshot this request is served with, taken once in `request_filter`.
    pub runtime: Option<Arc<Runtime>>,
    /// Index of the chosen upstream in the snapshot's config.
    pub upstream: Option<usize>,
    /// Index of the matched route in the listener's routes.
    pub route: Option<usize>,
    /// The listener this request came in on.
    pub listener: usize,
    /// The authenticated caller.
    pub principal: Option<Arc<Principal>>,
    /// The credential header value to send upstream (identity propagation).
    pub credential: Option<http::HeaderValue>,
    /// Index of the virtual server addressed, if any.
    pub vserver: Option<usize>,
    /// Digest of the gateway session token (virtual servers).
    pub session_digest: Option<crate::digest::Digest>,
    /// Upstream session to use instead of the client's `Mcp-Session-Id` (virtual servers).
    pub upstream_session: Option<String>,
    /// `body` was rewritten (virtual-server `tools/call`) and must replace the client's.
    pub body_replaced: bool,
    /// The upstream's own name of the tool called through a virtual server.
    pub upstream_tool: Option<String>,
    /// That tool is annotated read-only or idempotent: safe to resend after re-opening a
    /// lost upstream session.
    pub tool_retry_safe: bool,
    /// Self-healing: the upstream lost our session and the call is being retried once on a
    /// new one (`Some(false)` = retry requested, `Some(true)` = retried).
    pub healed: Option<bool>,
    /// The request is a GET server-to-client stream (longer read timeout).
    pub stream: bool,
    /// The whole request body (POST), kept for error ids and the large-body forward.
    pub body: Bytes,
    /// The parsed JSON-RPC message (POST).
    pub call: Option<RpcCall>,
    /// Span of the JSON-RPC id in `body`, also for messages that failed validation.
    pub id: Option<Range<usize>>,
    /// Metric label for the request.
    pub method: McpMethod,
    /// When the request was handed to the upstream.
    pub forwarded_at: Option<Instant>,
    /// When the upstream's response headers arrived.
    pub upstream_header_at: Option<Instant>,
    /// How the response body is treated.
    pub response: ResponseMode,
    /// A rejection decided on the upstream's response header, written by `fail_to_proxy`.
    pub pending: Option<crate::error::Reject>,
    pub outcome: Outcome,
    pub upstream_error: Option<UpstreamErrorKind>,
}

/// What the response filters do with the upstream's body.
#[derive(Debug, Default)]
pub enum ResponseMode {
    /// Stream it through untouched (JSON and SSE alike).
    #[default]
    Passthrough,
    /// The upstream answered 5xx: swallow its body (keeping a bounded snippet) and emit a
    /// JSON-RPC error naming the upstream at the end.
    UpstreamFailure { status: u16, snippet: BytesMut },
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            runtime: None,
            upstream: None,
            route: None,
            listener: 0,
            principal: None,
            credential: None,
            vserver: None,
            session_digest: None,
            upstream_session: None,
            body_replaced: false,
            upstream_tool: None,
            tool_retry_safe: false,
            healed: None,
            stream: false,
            body: Bytes::new(),
            call: None,
            id: None,
            method: McpMethod::Unknown,
            forwarded_at: None,
            upstream_header_at: None,
            response: ResponseMode::Passthrough,
            pending: None,
            outcome: Outcome::Ok,
            upstream_error: None,
        }
    }

    /// Raw JSON of the request's JSON-RPC id, if it has one.
    pub fn id_json(&self) -> Option<&[u8]> {
        self.id.clone().and_then(|r| self.body.get(r))
    }

    /// Configured name of the chosen upstream, or `none`.
    pub fn upstream_name(&self) -> &str {
        match (&self.runtime, self.upstream) {
            (Some(rt), Some(i)) => rt
                .config
                .upstreams
                .get(i)
                .map_or("none", |u| u.name.as_str()),
            _ => "none",
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx::new()
    }
}
