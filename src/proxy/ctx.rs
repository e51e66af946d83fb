//! [`RequestCtx`]: everything one request learns on its way through the Pingora phases.
//!
//! Written by `request_filter` (admit), read by `upstream_peer`, `upstream_request_filter` and
//! the response filters, and turned into metrics in `logging`. Dropped at the end of the
//! request. Grouped by what decided it: the endpoint and caller, the message, the
//! [`Target`] and its [`Decision`], the upstream session, self-healing, timings and outcome.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::heal::Heal;
use crate::auth::Principal;
use crate::decision::{Decision, Step, Target};
use crate::endpoints::Endpoint;
use crate::mcp::jsonrpc::RpcCall;
use crate::mcp::McpMethod;
use crate::metrics::{Outcome, UpstreamErrorKind};
use crate::state::Runtime;

/// Per-request state. See the module docs for who writes and reads what.
#[derive(Debug)]
pub struct RequestCtx {
    /// The configuration snapshot this request is served with, taken once in `request_filter`.
    pub runtime: Option<Arc<Runtime>>,
    /// The MCP endpoint addressed (a route or a virtual server).
    pub endpoint: Option<Arc<Endpoint>>,
    /// The authenticated caller.
    pub principal: Option<Arc<Principal>>,
    /// The whole request body (POST), kept for error ids and the large-body forward; after a
    /// decision that rewrote it, the body the upstream receives.
    pub body: Bytes,
    /// The parsed JSON-RPC message (POST).
    pub call: Option<RpcCall>,
    /// Span of the JSON-RPC id in `body`, also for messages that failed validation.
    pub id: Option<Range<usize>>,
    /// Metric label for the request.
    pub method: McpMethod,
    /// Where the request goes, once resolved.
    pub target: Option<Target>,
    /// What [`crate::decision::decide`] allowed (credential, rewritten body).
    pub decision: Option<Decision>,
    /// The step of the decision that refused the request, if one did.
    pub refused_by: Option<Step>,
    /// `ctx.body` is a rewritten body that must replace the client's.
    pub body_replaced: bool,
    /// The upstream's session (virtual servers: the one the gateway opened for this
    /// client session).
    pub upstream_session: UpstreamSession,
    /// Self-healing after an upstream lost its session.
    pub heal: Heal,
    pub timings: Timings,
    /// How the response body is treated.
    pub response: ResponseMode,
    /// A rejection decided on the upstream's response header, written by `fail_to_proxy`.
    pub pending: Option<crate::error::Reject>,
    pub outcome: Outcome,
    pub upstream_error: Option<UpstreamErrorKind>,
    /// Bytes of the upstream's response body relayed to the client (the metered cost of a
    /// quota budget is charged from it in `logging`).
    pub response_bytes: u64,
    /// The rejection the gateway answered with, for the audit record.
    pub rejected: Option<crate::error::Reject>,
    /// The upstream's own HTTP status (before a 5xx is replaced).
    pub upstream_status: Option<u16>,
    /// The target of a call refused before its credential step: kept out of `target` (its
    /// upstream must not show in the answer or the metrics), but the audit names it.
    pub refused_target: Option<Target>,
    /// The request's W3C trace (continued from the client's `traceparent`, or started);
    /// `None` only before `request_filter` set it. Its trace id goes to the logs and
    /// the audit record, and upstream as `traceparent`.
    pub trace: Option<crate::trace::Trace>,
    /// The catalog entry a virtual server's `tools/call` named, kept once the caller may see
    /// the tool (also when a later decision step refused it): the bounded tool label.
    pub tool: Option<ToolRef>,
    /// A `tools/call` response body kept for the audit record's outcome (trail on only).
    pub capture: Option<Capture>,
    /// A virtual server's call streaming its answer (SSE): server-to-client request ids
    /// become gateway ids on the way ([`crate::vserver::ids`]). Boxed: most requests have
    /// none, and the context is moved with `memcpy`.
    pub sse_ids: Option<Box<crate::vserver::ids::IdRewriter>>,
    /// The in-flight entry of a virtual server's call (cancellation routing), removed in
    /// `logging` when its answer ends.
    pub in_flight: Option<crate::digest::Digest>,
    /// The id the upstream knows the call by, where it is not the request's own (a resumed
    /// MRTR call runs under its first request's id): what a cancellation must name.
    pub upstream_id: Option<Vec<u8>>,
    /// A virtual server's result whose resource URIs become the exposed ones
    /// ([`crate::vserver::results`]). Boxed: most requests have none.
    pub results: Option<Box<crate::vserver::results::ResultRewriter>>,
    /// A 2026-07-28 client's log floor (`crate::vserver::logging::floor`), read from its
    /// `_meta` before the decision takes the envelope out of the body.
    pub log_floor: Option<u8>,
    /// A 2026-07-28 call waiting for its client's input across requests (`proxy::mrtr`):
    /// the audit id this request's record takes and, on a retry, the round it is.
    /// Boxed: rare.
    pub mrtr: Option<Box<MrtrRound>>,
}

/// What the audit record of an MRTR round needs: [`RequestCtx::mrtr`].
#[derive(Debug, Default)]
pub struct MrtrRound {
    /// This request's audit `request_id`, fixed when its call parks (its retry names it).
    pub request_id: Option<String>,
    /// On a retry: the round it is.
    pub round: Option<crate::audit::Round>,
}

/// A tool of a virtual server's catalog (one `Arc` clone: no string is copied).
#[derive(Debug, Clone)]
pub struct ToolRef {
    pub catalog: Arc<crate::registry::catalog::Catalog>,
    pub position: usize,
}

impl ToolRef {
    /// The tool's exposed name (a catalog name, never the client's string).
    pub fn exposed(&self) -> Option<&str> {
        self.catalog
            .entries
            .get(self.position)
            .map(|e| e.exposed.as_str())
    }
}

/// The upstream session a request goes out on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UpstreamSession {
    /// The client's own `Mcp-Session-Id` is passed through (plain routes), or none is
    /// needed yet.
    #[default]
    Client,
    /// The gateway's session with the upstream; `None` for a stateless upstream.
    Gateway(Option<String>),
    /// The gateway's session was lost; a new one must be opened before the resend.
    Reopen,
}

/// When things happened.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// When the request arrived (ctx creation).
    pub started: Instant,
    /// When the request was handed to the upstream.
    pub forwarded_at: Option<Instant>,
    /// When the upstream's response headers arrived.
    pub upstream_header_at: Option<Instant>,
}

/// Most of a response body [`Capture`] keeps (64 KiB, as for the record's arguments): a
/// tool result larger than that is not read for its outcome.
pub const CAPTURE_LIMIT: usize = 64 * 1024;

/// The upstream's response body as it passed, for [`crate::mcp::outcome::read`] on the
/// audit writer: a copy, at most [`CAPTURE_LIMIT`] bytes (past it the copy is let go and
/// `overflow` set). A copy rather than `Bytes` clones of the chunks: a result is usually a
/// few hundred bytes, and copying them costs less than keeping the upstream's read buffers
/// alive until `logging` and freeing them on the writer thread.
#[derive(Debug, Default)]
pub struct Capture {
    pub bytes: Vec<u8>,
    pub sse: bool,
    pub overflow: bool,
}

impl Capture {
    pub fn push(&mut self, chunk: &[u8]) {
        if self.overflow {
            return;
        }
        if self.bytes.len() + chunk.len() > CAPTURE_LIMIT {
            self.overflow = true;
            self.bytes = Vec::new();
            return;
        }
        self.bytes.extend_from_slice(chunk);
    }
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
    /// A 2026-07-28 client's call answered by a handshake-era upstream: each result gets
    /// `resultType` as it streams ([`crate::mcp::stamp`]). Boxed: most requests never
    /// have one.
    StampResultType(Box<crate::mcp::stamp::ResultStamp>),
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            runtime: None,
            endpoint: None,
            principal: None,
            body: Bytes::new(),
            call: None,
            id: None,
            method: McpMethod::Unknown,
            target: None,
            decision: None,
            refused_by: None,
            body_replaced: false,
            upstream_session: UpstreamSession::Client,
            heal: Heal::Idle,
            timings: Timings {
                started: Instant::now(),
                forwarded_at: None,
                upstream_header_at: None,
            },
            response: ResponseMode::Passthrough,
            pending: None,
            outcome: Outcome::Ok,
            upstream_error: None,
            response_bytes: 0,
            rejected: None,
            upstream_status: None,
            refused_target: None,
            trace: None,
            tool: None,
            capture: None,
            sse_ids: None,
            in_flight: None,
            upstream_id: None,
            results: None,
            log_floor: None,
            mrtr: None,
        }
    }

    /// Raw JSON of the request's JSON-RPC id, if it has one.
    pub fn id_json(&self) -> Option<&[u8]> {
        self.id.clone().and_then(|r| self.body.get(r))
    }

    /// Configured name of the chosen upstream, or `none`.
    pub fn upstream_name(&self) -> &str {
        match (&self.target, &self.endpoint) {
            (Some(t), _) => t.upstream_name(),
            // A plain route names its upstream before the target is built (auth errors).
            (None, Some(e)) => match &e.kind {
                crate::endpoints::EndpointKind::Route(u) => u.name(),
                crate::endpoints::EndpointKind::Virtual { .. } => "none",
            },
            _ => "none",
        }
    }

    /// Whether the virtual server addressed exposes its upstreams' URIs under its own
    /// (`names: prefixed`): what it relays must then be rewritten to them.
    pub fn exposes_uris(&self) -> bool {
        matches!(
            self.endpoint.as_ref().map(|e| &e.kind),
            Some(crate::endpoints::EndpointKind::Virtual { server, .. })
                if server.names == crate::config::Names::Prefixed
        )
    }

    /// Configured name of the virtual server addressed, or `none` (a metric label).
    pub fn virtual_server_name(&self) -> &str {
        match self.endpoint.as_ref().map(|e| &e.kind) {
            Some(crate::endpoints::EndpointKind::Virtual { server, .. }) => server.name.as_str(),
            _ => "none",
        }
    }

    /// The tool label: the catalog's exposed name, `none` for other messages, `unknown` for
    /// a name that is not a visible catalog entry (the client's string is never a label).
    pub fn tool_label(&self) -> &str {
        if self.method != McpMethod::ToolsCall {
            return crate::metrics::TOOL_NONE;
        }
        self.tool
            .as_ref()
            .and_then(ToolRef::exposed)
            .unwrap_or(crate::metrics::TOOL_UNKNOWN)
    }

    /// The trace id for log lines: 32 hex digits, or `-` (formatted only when logged).
    pub fn trace_id(&self) -> crate::trace::LogId {
        crate::trace::LogId(self.trace.map(|t| t.trace_id))
    }

    /// Whether the request addresses a virtual server.
    pub fn is_virtual(&self) -> bool {
        self.endpoint
            .as_ref()
            .is_some_and(|e| matches!(e.kind, crate::endpoints::EndpointKind::Virtual { .. }))
    }

    /// The credential chosen for the upstream, if any.
    pub fn credential(&self) -> Option<&http::HeaderValue> {
        self.decision.as_ref().and_then(|d| d.credential.as_ref())
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx::new()
    }
}
