//! Why the gateway answered a request itself instead of forwarding it.
//!
//! [`Reject`] is the only error type that crosses from the domain modules into `proxy/`, and
//! this file is the one place that maps it to everything its response and its metric carry:
//! HTTP status, JSON-RPC code and data, the response headers it needs (`Allow`,
//! `WWW-Authenticate`) and the outcome label. `proxy::respond` only writes what it says.
//! Messages are lower-case sentences without a trailing period, written for the person
//! reading them in an MCP client: they say what was wrong and, where it helps, what to do.

/// Gateway-defined JSON-RPC code for transport, policy and upstream failures (the
/// implementation-defined server range, as the TypeScript SDK uses for transport errors).
pub const GATEWAY_ERROR: i32 = -32000;
/// JSON-RPC parse error.
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC invalid request.
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC invalid params.
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC method not found.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Session not found (the code FastMCP and the TS SDK use for this case).
pub const SESSION_NOT_FOUND: i32 = -32001;
/// JSON-RPC internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// A request metadata header disagrees with the body (2026-07-28 revision, SEP-2243).
pub const HEADER_MISMATCH: i32 = -32020;
/// The call waits for a human approver (gateway-defined). Not MCP's -32042 (URL
/// elicitation required): that one promises `data.elicitations` a client would act on, and
/// approvals work without elicitation support.
pub const APPROVAL_REQUIRED: i32 = -32030;
/// A human approver denied the call (gateway-defined).
pub const APPROVAL_DENIED: i32 = -32031;
/// The request's protocol revision is not one the gateway speaks (2026-07-28 revision).
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;

use http::header::{HeaderName, HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};

/// `Retry-After` (seconds) of a 503 for an unreachable quota store: the Redis client retries
/// one second after a failure (`store::redis::BACKOFF`).
pub const STORE_RETRY_AFTER: u64 = 1;

use crate::metrics::Outcome;

/// The kind of path a 405 was for, which decides the methods it takes: the `Allow` header
/// (RFC 9110 requires one on a 405) and the advice in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A route or virtual-server path: streamable HTTP is POST, GET (stream) and DELETE (end
    /// session).
    McpEndpoint,
    /// An RFC 9728 protected-resource metadata document: a read-only resource.
    ResourceMetadata,
}

impl PathKind {
    /// The `Allow` header value.
    pub fn allow(self) -> &'static str {
        match self {
            PathKind::McpEndpoint => "POST, GET, DELETE",
            PathKind::ResourceMetadata => "GET",
        }
    }

    /// What the path is, for the message.
    fn what(self) -> &'static str {
        match self {
            PathKind::McpEndpoint => "an MCP endpoint",
            PathKind::ResourceMetadata => "the protected-resource metadata document",
        }
    }

    /// The methods to use instead, as the message says them.
    fn advice(self) -> &'static str {
        match self {
            PathKind::McpEndpoint => "POST, GET or DELETE",
            PathKind::ResourceMetadata => "GET",
        }
    }
}

/// A request the gateway refuses or cannot complete. Each variant's doc gives its HTTP status
/// and JSON-RPC code; [`Reject::http_status`], [`Reject::jsonrpc_code`],
/// [`Reject::response_headers`] and [`Reject::outcome`] are the mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// 404, -32000: the path is not a configured MCP endpoint on this listener. The message
    /// never lists the listener's routes: the caller is not authenticated yet, and the route
    /// paths (virtual-server names among them) are not theirs to enumerate.
    #[error("no MCP endpoint at {path}; check the URL your client is configured with")]
    NoRoute { path: String },
    /// 405, -32000: the path does not take this method; `on` says which methods it does
    /// (the `Allow` header).
    #[error("HTTP method {method} is not allowed on {}; use {}", on.what(), on.advice())]
    MethodNotAllowed { method: String, on: PathKind },
    /// 421, -32000: DNS-rebinding guard, the `Host` header is not one this listener serves.
    #[error("host {host:?} is not allowed on this listener (DNS-rebinding protection); add it to allowed_hosts")]
    HostNotAllowed { host: String },
    /// 403, -32000: DNS-rebinding guard, a browser `Origin` that is not allowed.
    #[error(
        "origin {origin:?} is not allowed (DNS-rebinding protection); add it to allowed_origins"
    )]
    OriginNotAllowed { origin: String },
    /// 400, -32000: a POST body must be `application/json` (charset, if given, utf-8), with
    /// one `Content-Type` header.
    #[error("Content-Type must be application/json (charset utf-8, if any), got {got:?}")]
    UnsupportedContentType { got: String },
    /// 415, -32000: a compressed (or otherwise encoded) body cannot be checked.
    #[error("Content-Encoding {got:?} is not accepted; send the JSON body uncompressed")]
    UnsupportedContentEncoding { got: String },
    /// 406, -32000: the client must accept what streamable HTTP may answer.
    #[error("{0}")]
    NotAcceptable(&'static str),
    /// 413, -32600: the request body is over `limits.max_request_body_bytes`.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// 400, -32000: the request body could not be read from the client.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// 400, -32700: the body is not valid JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// 400, -32600: valid JSON, but not a JSON-RPC message we accept.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// 400, -32020: an `Mcp-Method` / `Mcp-Name` header says something else than the body.
    #[error("{header} header {header_value:?} does not match the body ({body_value:?}); send the header that matches the body (a 2026-07-28 request must send it; an older one may leave it out)")]
    HeaderMismatch {
        header: &'static str,
        header_value: String,
        body_value: String,
    },
    /// 400, -32602: a known method with unusable params.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// 502 (504 for timeouts), -32000: the upstream failed; names the upstream and the cause.
    #[error("upstream {upstream:?} failed: {cause}")]
    Upstream {
        upstream: String,
        cause: String,
        timeout: bool,
    },
    /// 401, -32000: missing or invalid credentials. `invalid_token` adds
    /// `error="invalid_token"` to the `WWW-Authenticate` challenge.
    #[error("authentication required: {reason}")]
    Unauthenticated { reason: String, invalid_token: bool },
    /// 403, -32000: authenticated, but without a required scope.
    #[error("insufficient scope: this endpoint needs {scopes} (missing: {missing})")]
    InsufficientScope { scopes: String, missing: String },
    /// 403, -32000: the credential the upstream needs for this caller is not available
    /// (no per-user credential and no fallback, or the credential set is disabled).
    #[error("no credential for upstream {upstream:?}: {reason}")]
    CredentialUnavailable { upstream: String, reason: String },
    /// 502, -32000: exchanging the caller's token for the upstream failed; the call was not
    /// made (never without credentials).
    #[error("token exchange for upstream {upstream:?} failed: {cause}")]
    TokenExchange { upstream: String, cause: String },
    /// 403, -32000: the upstream refused the caller's delegated credential (HTTP 401).
    #[error("upstream {upstream:?} rejected the credentials of {subject:?}; re-authorise {upstream} for this user")]
    UpstreamUnauthorized { upstream: String, subject: String },
    /// 403, -32000: the caller may not use this virtual server.
    #[error("{subject:?} may not use virtual server {server:?}")]
    ServerNotAllowed { server: String, subject: String },
    /// 400, -32000: a virtual-server request without `Mcp-Session-Id`.
    #[error("Mcp-Session-Id header required: send initialize first")]
    SessionRequired,
    /// 404, -32001: unknown, tampered, expired or foreign session; the client must
    /// re-initialize (as the spec says for 404).
    #[error("session not found: initialize a new session")]
    SessionNotFound,
    /// 503, -32000: a DELETE could not be recorded because this replica's table of ended
    /// sessions is full of unexpired ones; the session was not ended.
    #[error("this gateway cannot record another ended session now ({capacity} are held until their tokens expire); the session was not ended and stays valid: retry the DELETE later")]
    SessionRevocationsFull { capacity: usize },
    /// 200, -32601: the method is not served here.
    #[error("method not found: {method}")]
    MethodNotFound { method: String },
    /// 200, -32602: the tool does not exist or the caller may not see it (one answer for both,
    /// so hidden tools cannot be probed).
    #[error("unknown tool: {name}")]
    UnknownTool { name: String },
    /// 200, -32602: a prompt or resource of a virtual server that does not exist or the
    /// caller may not see (one answer for both, as for tools). -32602 in both eras: the
    /// handshake era's -32002 for a resource is what 2026-07-28 retires.
    #[error("unknown {kind}: {name} (list them with {kind}s/list)")]
    UnknownItem { kind: &'static str, name: String },
    /// 200, -32602: a `tools/list` cursor that is not (or no longer) valid.
    #[error("invalid or outdated cursor: list again from the start")]
    InvalidCursor,
    /// 200, -32602: the client sent an argument the gateway pins.
    #[error("argument {argument:?} of {tool} is set by the gateway and cannot be sent")]
    PinnedArgument { tool: String, argument: String },
    /// 200, -32602: an argument policy rule refused the call; the upstream was not called.
    /// `data.rule` names the rule.
    #[error("{message} (policy {rule}); the call was not made")]
    PolicyViolation { rule: String, message: String },
    /// 500, -32603: a bug or resource problem inside the gateway.
    #[error("internal gateway error: {0}")]
    Internal(String),
    /// 200, -32030: the call waits for a human approver; the upstream was not called.
    /// `data` carries `approvalId`, `approvalUrl`, `retryAfter` (seconds) and `expiresAt`.
    /// HTTP 200 like the other tool-level refusals: clients hand a JSON-RPC error in a 200
    /// to the model and the user (who must act on it), while a 4xx often surfaces as a
    /// transport failure without the message. Its own code, so a client or agent can tell
    /// "ask a human, then retry" from a permanent refusal.
    #[error("this call needs a human's approval (approval {id}){}; it was not made: once it is approved, retry the identical call (same tool, same arguments) within its validity, until {expires_at}; retry after about {retry_after}s", url.as_ref().map(|u| format!(": an approver can decide at {u}")).unwrap_or_default())]
    ApprovalRequired {
        id: String,
        url: Option<String>,
        retry_after: u64,
        /// RFC 3339.
        expires_at: String,
    },
    /// 200, -32031: a human approver denied this exact call; the upstream was not called.
    /// Who denied it goes to the operator log, not to the caller.
    #[error("a human approver denied this call (approval {id}); it was not made: do not retry it unchanged")]
    ApprovalDenied { id: String },
    /// 503, -32000: the approval store (Redis) cannot be reached or is full, so whether the
    /// call is approved cannot be known; it is refused (an approval never fails open).
    #[error("cannot check the approval this call needs: {reason}; it was not made: retry later")]
    ApprovalUnavailable { reason: String },
    /// 429, -32000: a quota or budget (`quotas[]`) is used up; the upstream was not called.
    /// `Retry-After`, `RateLimit-Policy` and `RateLimit` headers; `data.retryAfter`
    /// (seconds) and `data.limit` (the limit's name).
    #[error("{} {limit:?} exceeded ({}); the call was not made: retry in {retry_after} s", kind.what(), kind.terms(*quota, *window))]
    QuotaExceeded {
        limit: String,
        kind: QuotaKind,
        /// Requests, calls in flight or units allowed ...
        quota: u64,
        /// ... per this many seconds (0 for concurrency).
        window: u64,
        /// Seconds until a call would pass, rounded up.
        retry_after: u64,
    },
    /// 503, -32000: a `fail_closed` limit could not reach its Redis; the call was not made.
    #[error("the quota store (Redis) for limit {limit:?} is unreachable, so the call was not made; retry in a few seconds")]
    QuotaStoreUnavailable { limit: String },
    /// 400, -32022: a 2026-07-28-style request (`_meta` protocol version) naming a revision
    /// the gateway does not speak. `data.supported` lists every revision it does (both eras,
    /// so a dual-era client can fall back to `initialize`), `data.requested` the one asked.
    #[error("unsupported protocol version {requested:?}; use one of {}", crate::mcp::revision::ALL.join(", "))]
    UnsupportedRevision { requested: String },
    /// 404, -32601: a 2026-07-28 request for a method this server does not serve (the modern
    /// revision's status for it; legacy requests get [`Reject::MethodNotFound`], 200).
    #[error("method not found: {method}")]
    ModernMethodNotFound { method: String },
    /// 502, -32000: a message a virtual server fans out to several upstreams
    /// (`logging/setLevel`) failed on some; `data.failed` names each with its cause. The
    /// others took it (the message says so: a client retrying resends it to all).
    #[error(
        "{method} failed on {}; the other upstreams of this server took it",
        fan_out_list(failed)
    )]
    FanOutFailed {
        method: &'static str,
        failed: Vec<(String, String)>,
    },
    /// 503, -32000: this replica already serves its most server-to-client streams (GET and
    /// `subscriptions/listen`).
    #[error("this gateway already serves {capacity} server-to-client streams (GET and subscriptions/listen); retry later, or rely on the ttlMs of list results")]
    StreamsFull { capacity: usize },
    /// 429, -32000: the caller already holds its most of some long-lived state on this
    /// replica (`limits.max_*_per_principal`, [`crate::caps`]); nothing was sent upstream.
    /// `data.limit` names the `limits` field, `data.max` its value. No `Retry-After`: the
    /// place comes back when the caller ends something it holds, not after a time.
    #[error("you already hold {limit} {}, the most one caller may on this gateway (limits.{}); {}", cap.what(), cap.field(), cap.advice())]
    PrincipalCapReached { cap: crate::caps::Cap, limit: usize },
}

/// `upstream "a" (cause), upstream "b" (cause)` for [`Reject::FanOutFailed`].
fn fan_out_list(failed: &[(String, String)]) -> String {
    let parts: Vec<String> = failed
        .iter()
        .map(|(u, c)| format!("upstream {u:?} ({c})"))
        .collect();
    parts.join(", ")
}

/// Which kind of a limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    Rate,
    Concurrency,
    Budget,
}

impl QuotaKind {
    pub fn as_label(self) -> &'static str {
        match self {
            QuotaKind::Rate => "rate",
            QuotaKind::Concurrency => "concurrency",
            QuotaKind::Budget => "budget",
        }
    }

    fn what(self) -> &'static str {
        match self {
            QuotaKind::Rate => "rate limit",
            QuotaKind::Concurrency => "concurrency limit",
            QuotaKind::Budget => "budget",
        }
    }

    fn terms(self, quota: u64, window: u64) -> String {
        match self {
            QuotaKind::Rate => format!("{quota} requests per {window} s"),
            QuotaKind::Concurrency => format!("{quota} calls at once"),
            QuotaKind::Budget => format!("{quota} units per {window} s"),
        }
    }
}

impl Reject {
    /// The HTTP status of the response the gateway writes for this rejection.
    pub fn http_status(&self) -> u16 {
        match self {
            Reject::NoRoute { .. } => 404,
            Reject::MethodNotAllowed { .. } => 405,
            Reject::HostNotAllowed { .. } => 421,
            Reject::OriginNotAllowed { .. } => 403,
            Reject::UnsupportedContentType { .. } => 400,
            Reject::UnsupportedContentEncoding { .. } => 415,
            Reject::NotAcceptable(_) => 406,
            Reject::BodyTooLarge { .. } => 413,
            Reject::BodyRead(_) => 400,
            Reject::Parse(_) => 400,
            Reject::InvalidRequest(_) => 400,
            Reject::HeaderMismatch { .. } => 400,
            Reject::InvalidParams(_) => 400,
            Reject::Upstream { timeout: true, .. } => 504,
            Reject::Upstream { timeout: false, .. } => 502,
            Reject::Internal(_) => 500,
            Reject::Unauthenticated { .. } => 401,
            Reject::InsufficientScope { .. } => 403,
            Reject::CredentialUnavailable { .. } => 403,
            Reject::TokenExchange { .. } => 502,
            Reject::UpstreamUnauthorized { .. } => 403,
            Reject::ServerNotAllowed { .. } => 403,
            Reject::SessionRequired => 400,
            Reject::SessionNotFound => 404,
            Reject::SessionRevocationsFull { .. } => 503,
            Reject::QuotaExceeded { .. } => 429,
            Reject::QuotaStoreUnavailable { .. } => 503,
            Reject::MethodNotFound { .. }
            | Reject::UnknownTool { .. }
            | Reject::UnknownItem { .. }
            | Reject::PinnedArgument { .. }
            | Reject::PolicyViolation { .. }
            | Reject::InvalidCursor => 200,
            Reject::ApprovalRequired { .. } | Reject::ApprovalDenied { .. } => 200,
            Reject::ApprovalUnavailable { .. } => 503,
            Reject::UnsupportedRevision { .. } => 400,
            Reject::ModernMethodNotFound { .. } => 404,
            Reject::FanOutFailed { .. } => 502,
            Reject::StreamsFull { .. } => 503,
            Reject::PrincipalCapReached { .. } => 429,
        }
    }

    /// The JSON-RPC error code in the response body.
    pub fn jsonrpc_code(&self) -> i32 {
        match self {
            Reject::Parse(_) => PARSE_ERROR,
            Reject::InvalidRequest(_) | Reject::BodyTooLarge { .. } => INVALID_REQUEST,
            Reject::InvalidParams(_)
            | Reject::UnknownTool { .. }
            | Reject::UnknownItem { .. }
            | Reject::PinnedArgument { .. }
            | Reject::PolicyViolation { .. }
            | Reject::InvalidCursor => INVALID_PARAMS,
            Reject::MethodNotFound { .. } => METHOD_NOT_FOUND,
            Reject::SessionNotFound => SESSION_NOT_FOUND,
            Reject::HeaderMismatch { .. } => HEADER_MISMATCH,
            Reject::Internal(_) => INTERNAL_ERROR,
            Reject::NoRoute { .. }
            | Reject::MethodNotAllowed { .. }
            | Reject::HostNotAllowed { .. }
            | Reject::OriginNotAllowed { .. }
            | Reject::UnsupportedContentType { .. }
            | Reject::UnsupportedContentEncoding { .. }
            | Reject::NotAcceptable(_)
            | Reject::BodyRead(_)
            | Reject::Upstream { .. }
            | Reject::Unauthenticated { .. }
            | Reject::InsufficientScope { .. }
            | Reject::CredentialUnavailable { .. }
            | Reject::TokenExchange { .. }
            | Reject::UpstreamUnauthorized { .. }
            | Reject::ServerNotAllowed { .. }
            | Reject::SessionRequired
            | Reject::SessionRevocationsFull { .. } => GATEWAY_ERROR,
            Reject::ApprovalRequired { .. } => APPROVAL_REQUIRED,
            Reject::ApprovalDenied { .. } => APPROVAL_DENIED,
            Reject::ApprovalUnavailable { .. }
            | Reject::QuotaExceeded { .. }
            | Reject::QuotaStoreUnavailable { .. } => GATEWAY_ERROR,
            Reject::UnsupportedRevision { .. } => UNSUPPORTED_PROTOCOL_VERSION,
            Reject::ModernMethodNotFound { .. } => METHOD_NOT_FOUND,
            Reject::FanOutFailed { .. } => GATEWAY_ERROR,
            Reject::StreamsFull { .. } => GATEWAY_ERROR,
            Reject::PrincipalCapReached { .. } => GATEWAY_ERROR,
        }
    }

    /// Structured `error.data` for the JSON-RPC body, where there is something to add.
    pub fn jsonrpc_data(&self) -> Option<serde_json::Value> {
        match self {
            Reject::Upstream {
                upstream, cause, ..
            } => Some(serde_json::json!({ "upstream": upstream, "cause": cause })),
            Reject::BodyTooLarge { limit } => Some(serde_json::json!({ "limit": limit })),
            Reject::PolicyViolation { rule, .. } => Some(serde_json::json!({ "rule": rule })),
            Reject::CredentialUnavailable { upstream, .. }
            | Reject::TokenExchange { upstream, .. }
            | Reject::UpstreamUnauthorized { upstream, .. } => {
                Some(serde_json::json!({ "upstream": upstream }))
            }
            Reject::ApprovalRequired {
                id,
                url,
                retry_after,
                expires_at,
            } => Some(serde_json::json!({
                "approvalId": id,
                "approvalUrl": url,
                "retryAfter": retry_after,
                "expiresAt": expires_at,
                "state": "pending",
            })),
            Reject::ApprovalDenied { id } => {
                Some(serde_json::json!({ "approvalId": id, "state": "denied" }))
            }
            Reject::QuotaExceeded {
                limit,
                kind,
                retry_after,
                ..
            } => Some(serde_json::json!({
                "limit": limit,
                "kind": kind.as_label(),
                "retryAfter": retry_after,
            })),
            Reject::QuotaStoreUnavailable { limit } => Some(serde_json::json!({
                "limit": limit,
                "retryAfter": STORE_RETRY_AFTER,
            })),
            Reject::UnsupportedRevision { requested } => Some(serde_json::json!({
                "supported": crate::mcp::revision::ALL,
                "requested": requested,
            })),
            Reject::FanOutFailed { failed, .. } => Some(serde_json::json!({
                "failed": failed
                    .iter()
                    .map(|(u, c)| serde_json::json!({ "upstream": u, "cause": c }))
                    .collect::<Vec<_>>(),
            })),
            Reject::PrincipalCapReached { cap, limit } => Some(serde_json::json!({
                "limit": cap.field(),
                "max": limit,
            })),
            _ => None,
        }
    }

    /// The metric outcome of a request that ended with this rejection: the upstream's fault,
    /// the gateway's, or (everything else) a refusal.
    pub fn outcome(&self) -> Outcome {
        match self {
            Reject::Upstream { .. } | Reject::TokenExchange { .. } => Outcome::UpstreamError,
            Reject::Internal(_) | Reject::QuotaStoreUnavailable { .. } => Outcome::InternalError,
            Reject::NoRoute { .. }
            | Reject::MethodNotAllowed { .. }
            | Reject::HostNotAllowed { .. }
            | Reject::OriginNotAllowed { .. }
            | Reject::UnsupportedContentType { .. }
            | Reject::UnsupportedContentEncoding { .. }
            | Reject::NotAcceptable(_)
            | Reject::BodyTooLarge { .. }
            | Reject::BodyRead(_)
            | Reject::Parse(_)
            | Reject::InvalidRequest(_)
            | Reject::HeaderMismatch { .. }
            | Reject::InvalidParams(_)
            | Reject::Unauthenticated { .. }
            | Reject::InsufficientScope { .. }
            | Reject::CredentialUnavailable { .. }
            | Reject::UpstreamUnauthorized { .. }
            | Reject::ServerNotAllowed { .. }
            | Reject::SessionRequired
            | Reject::SessionNotFound
            | Reject::SessionRevocationsFull { .. }
            | Reject::MethodNotFound { .. }
            | Reject::UnknownTool { .. }
            | Reject::UnknownItem { .. }
            | Reject::InvalidCursor
            | Reject::PinnedArgument { .. }
            | Reject::PolicyViolation { .. }
            | Reject::ApprovalRequired { .. }
            | Reject::ApprovalDenied { .. }
            | Reject::ApprovalUnavailable { .. }
            | Reject::QuotaExceeded { .. }
            | Reject::UnsupportedRevision { .. }
            | Reject::ModernMethodNotFound { .. }
            | Reject::StreamsFull { .. } => Outcome::Rejected,
            Reject::FanOutFailed { .. } => Outcome::UpstreamError,
            Reject::PrincipalCapReached { .. } => Outcome::Rejected,
        }
    }

    /// Headers the response carries besides `Content-Type` and `Content-Length`: `Allow` on a
    /// 405, the `WWW-Authenticate` challenge (RFC 6750, pointing at the RFC 9728 metadata) on
    /// an authentication 401 or scope 403. `metadata_url` gives the absolute URL of the
    /// endpoint's protected-resource metadata, asked only for those two (every other
    /// rejection, a flood of 404s say, builds no URL); `None` (no `auth` section) sends no
    /// challenge.
    /// A challenge that is not a valid header value (it is built from configuration) is left
    /// out rather than failing the response.
    pub fn response_headers(
        &self,
        metadata_url: impl FnOnce() -> Option<String>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        use crate::auth::metadata;
        let challenge = |value: Option<String>| {
            value
                .and_then(|v| HeaderValue::from_str(&v).ok())
                .map(|v| (WWW_AUTHENTICATE, v))
                .into_iter()
                .collect()
        };
        match self {
            Reject::MethodNotAllowed { on, .. } => {
                vec![(ALLOW, HeaderValue::from_static(on.allow()))]
            }
            Reject::Unauthenticated { invalid_token, .. } => {
                challenge(metadata_url().map(|u| metadata::challenge(&u, *invalid_token)))
            }
            Reject::InsufficientScope { scopes, .. } => {
                challenge(metadata_url().map(|u| metadata::scope_challenge(&u, scopes)))
            }
            Reject::QuotaExceeded {
                limit,
                quota,
                window,
                retry_after,
                ..
            } => {
                // IETF draft-ietf-httpapi-ratelimit-headers, structured-field form. The
                // limit's name is a config name ([A-Za-z0-9_-]), safe in an sf-string.
                let policy = if *window > 0 {
                    format!("\"{limit}\";q={quota};w={window}")
                } else {
                    format!("\"{limit}\";q={quota}")
                };
                let state = format!("\"{limit}\";r=0;t={retry_after}");
                [
                    (RETRY_AFTER, retry_after.to_string()),
                    (HeaderName::from_static("ratelimit-policy"), policy),
                    (HeaderName::from_static("ratelimit"), state),
                ]
                .into_iter()
                .filter_map(|(n, v)| HeaderValue::from_str(&v).ok().map(|v| (n, v)))
                .collect()
            }
            Reject::QuotaStoreUnavailable { .. } => {
                vec![(RETRY_AFTER, HeaderValue::from(STORE_RETRY_AFTER))]
            }
            Reject::NoRoute { .. }
            | Reject::HostNotAllowed { .. }
            | Reject::OriginNotAllowed { .. }
            | Reject::UnsupportedContentType { .. }
            | Reject::UnsupportedContentEncoding { .. }
            | Reject::NotAcceptable(_)
            | Reject::BodyTooLarge { .. }
            | Reject::BodyRead(_)
            | Reject::Parse(_)
            | Reject::InvalidRequest(_)
            | Reject::HeaderMismatch { .. }
            | Reject::InvalidParams(_)
            | Reject::Upstream { .. }
            | Reject::CredentialUnavailable { .. }
            | Reject::TokenExchange { .. }
            | Reject::UpstreamUnauthorized { .. }
            | Reject::ServerNotAllowed { .. }
            | Reject::SessionRequired
            | Reject::SessionNotFound
            | Reject::SessionRevocationsFull { .. }
            | Reject::MethodNotFound { .. }
            | Reject::UnknownTool { .. }
            | Reject::UnknownItem { .. }
            | Reject::InvalidCursor
            | Reject::PinnedArgument { .. }
            | Reject::PolicyViolation { .. }
            | Reject::Internal(_)
            | Reject::ApprovalRequired { .. }
            | Reject::ApprovalDenied { .. }
            | Reject::ApprovalUnavailable { .. }
            | Reject::UnsupportedRevision { .. }
            | Reject::ModernMethodNotFound { .. }
            | Reject::FanOutFailed { .. }
            | Reject::StreamsFull { .. }
            | Reject::PrincipalCapReached { .. } => Vec::new(),
        }
    }
}

/// Cut a client-supplied string to a length that is safe to echo back in an error.
pub fn clip(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "https://gw.example/.well-known/oauth-protected-resource/mcp";

    /// One value of every variant, two where a field changes the mapping (`Upstream`'s
    /// `timeout`, `Unauthenticated`'s `invalid_token`, `MethodNotAllowed`'s path kind).
    fn every_variant() -> Vec<Reject> {
        vec![
            Reject::NoRoute { path: "/x".into() },
            Reject::MethodNotAllowed {
                method: "PUT".into(),
                on: PathKind::McpEndpoint,
            },
            Reject::MethodNotAllowed {
                method: "POST".into(),
                on: PathKind::ResourceMetadata,
            },
            Reject::HostNotAllowed {
                host: "evil".into(),
            },
            Reject::OriginNotAllowed {
                origin: "http://evil".into(),
            },
            Reject::UnsupportedContentType {
                got: "text/plain".into(),
            },
            Reject::UnsupportedContentEncoding { got: "br".into() },
            Reject::NotAcceptable("x"),
            Reject::BodyTooLarge { limit: 1 },
            Reject::BodyRead("reset".into()),
            Reject::Parse("x".into()),
            Reject::InvalidRequest("x".into()),
            Reject::InvalidParams("x".into()),
            Reject::HeaderMismatch {
                header: "Mcp-Name",
                header_value: "a".into(),
                body_value: "b".into(),
            },
            Reject::Upstream {
                upstream: "u".into(),
                cause: "c".into(),
                timeout: false,
            },
            Reject::Upstream {
                upstream: "u".into(),
                cause: "c".into(),
                timeout: true,
            },
            Reject::Internal("x".into()),
            Reject::Unauthenticated {
                reason: "x".into(),
                invalid_token: true,
            },
            Reject::Unauthenticated {
                reason: "x".into(),
                invalid_token: false,
            },
            Reject::InsufficientScope {
                scopes: "mcp:tools".into(),
                missing: "mcp:tools".into(),
            },
            Reject::CredentialUnavailable {
                upstream: "u".into(),
                reason: "r".into(),
            },
            Reject::TokenExchange {
                upstream: "u".into(),
                cause: "c".into(),
            },
            Reject::UpstreamUnauthorized {
                upstream: "u".into(),
                subject: "s".into(),
            },
            Reject::ServerNotAllowed {
                server: "v".into(),
                subject: "s".into(),
            },
            Reject::SessionRequired,
            Reject::SessionNotFound,
            Reject::SessionRevocationsFull { capacity: 1 },
            Reject::MethodNotFound {
                method: "x/y".into(),
            },
            Reject::UnknownTool { name: "t".into() },
            Reject::UnknownItem {
                kind: "prompt",
                name: "p".into(),
            },
            Reject::InvalidCursor,
            Reject::PinnedArgument {
                tool: "t".into(),
                argument: "a".into(),
            },
            Reject::PolicyViolation {
                rule: "r".into(),
                message: "argument \"a\" is required".into(),
            },
            Reject::ApprovalRequired {
                id: "i".into(),
                url: Some("https://ops/i".into()),
                retry_after: 10,
                expires_at: "2030-01-01T00:00:00Z".into(),
            },
            Reject::ApprovalDenied { id: "i".into() },
            Reject::ApprovalUnavailable {
                reason: "Redis at h:1/0 is unreachable".into(),
            },
            Reject::QuotaExceeded {
                limit: "per-user".into(),
                kind: QuotaKind::Rate,
                quota: 100,
                window: 60,
                retry_after: 12,
            },
            Reject::QuotaExceeded {
                limit: "slots".into(),
                kind: QuotaKind::Concurrency,
                quota: 2,
                window: 0,
                retry_after: 1,
            },
            Reject::QuotaStoreUnavailable {
                limit: "global".into(),
            },
            Reject::UnsupportedRevision {
                requested: "2099-01-01".into(),
            },
            Reject::ModernMethodNotFound {
                method: "ping".into(),
            },
            Reject::FanOutFailed {
                method: "logging/setLevel",
                failed: vec![("crm".into(), "HTTP 500".into())],
            },
            Reject::StreamsFull { capacity: 1 },
            Reject::PrincipalCapReached {
                cap: crate::caps::Cap::ParkedCalls,
                limit: 32,
            },
        ]
    }

    /// Status, code, outcome and headers, written out per variant. No wildcard arm: a new
    /// variant does not compile until its whole mapping is decided here (add a value of it
    /// to [`every_variant`] too).
    fn expected(r: &Reject) -> (u16, i32, Outcome, Vec<(&'static str, String)>) {
        use Outcome::{InternalError, Rejected, UpstreamError};
        let none = Vec::new;
        let www = |v: String| vec![("www-authenticate", v)];
        match r {
            Reject::NoRoute { .. } => (404, GATEWAY_ERROR, Rejected, none()),
            Reject::MethodNotAllowed {
                on: PathKind::McpEndpoint,
                ..
            } => (
                405,
                GATEWAY_ERROR,
                Rejected,
                vec![("allow", "POST, GET, DELETE".into())],
            ),
            Reject::MethodNotAllowed {
                on: PathKind::ResourceMetadata,
                ..
            } => (405, GATEWAY_ERROR, Rejected, vec![("allow", "GET".into())]),
            Reject::HostNotAllowed { .. } => (421, GATEWAY_ERROR, Rejected, none()),
            Reject::OriginNotAllowed { .. } => (403, GATEWAY_ERROR, Rejected, none()),
            Reject::UnsupportedContentType { .. } => (400, GATEWAY_ERROR, Rejected, none()),
            Reject::UnsupportedContentEncoding { .. } => (415, GATEWAY_ERROR, Rejected, none()),
            Reject::NotAcceptable(_) => (406, GATEWAY_ERROR, Rejected, none()),
            Reject::BodyTooLarge { .. } => (413, INVALID_REQUEST, Rejected, none()),
            Reject::BodyRead(_) => (400, GATEWAY_ERROR, Rejected, none()),
            Reject::Parse(_) => (400, PARSE_ERROR, Rejected, none()),
            Reject::InvalidRequest(_) => (400, INVALID_REQUEST, Rejected, none()),
            Reject::HeaderMismatch { .. } => (400, HEADER_MISMATCH, Rejected, none()),
            Reject::InvalidParams(_) => (400, INVALID_PARAMS, Rejected, none()),
            Reject::Upstream { timeout: true, .. } => (504, GATEWAY_ERROR, UpstreamError, none()),
            Reject::Upstream { timeout: false, .. } => {
                (502, GATEWAY_ERROR, UpstreamError, none())
            }
            Reject::Unauthenticated {
                invalid_token: false,
                ..
            } => (
                401,
                GATEWAY_ERROR,
                Rejected,
                www(format!("Bearer resource_metadata=\"{METADATA}\"")),
            ),
            Reject::Unauthenticated {
                invalid_token: true,
                ..
            } => (
                401,
                GATEWAY_ERROR,
                Rejected,
                www(format!(
                    "Bearer resource_metadata=\"{METADATA}\", error=\"invalid_token\""
                )),
            ),
            Reject::InsufficientScope { .. } => (
                403,
                GATEWAY_ERROR,
                Rejected,
                www(format!("Bearer resource_metadata=\"{METADATA}\", error=\"insufficient_scope\", scope=\"mcp:tools\"")),
            ),
            Reject::CredentialUnavailable { .. } => (403, GATEWAY_ERROR, Rejected, none()),
            Reject::TokenExchange { .. } => (502, GATEWAY_ERROR, UpstreamError, none()),
            Reject::UpstreamUnauthorized { .. } => (403, GATEWAY_ERROR, Rejected, none()),
            Reject::ServerNotAllowed { .. } => (403, GATEWAY_ERROR, Rejected, none()),
            Reject::SessionRequired => (400, GATEWAY_ERROR, Rejected, none()),
            Reject::SessionNotFound => (404, SESSION_NOT_FOUND, Rejected, none()),
            // 503 counts as `rejected`: the client's DELETE was refused, nothing failed.
            Reject::SessionRevocationsFull { .. } => (503, GATEWAY_ERROR, Rejected, none()),
            Reject::MethodNotFound { .. } => (200, METHOD_NOT_FOUND, Rejected, none()),
            Reject::UnknownTool { .. } => (200, INVALID_PARAMS, Rejected, none()),
            Reject::UnknownItem { .. } => (200, INVALID_PARAMS, Rejected, none()),
            Reject::InvalidCursor => (200, INVALID_PARAMS, Rejected, none()),
            Reject::PinnedArgument { .. } => (200, INVALID_PARAMS, Rejected, none()),
            Reject::PolicyViolation { .. } => (200, INVALID_PARAMS, Rejected, none()),
            Reject::Internal(_) => (500, INTERNAL_ERROR, InternalError, none()),
            Reject::ApprovalRequired { .. } => (200, APPROVAL_REQUIRED, Rejected, none()),
            Reject::ApprovalDenied { .. } => (200, APPROVAL_DENIED, Rejected, none()),
            // 503 counts as `rejected`: the gateway refused to guess, nothing failed upstream.
            Reject::ApprovalUnavailable { .. } => (503, GATEWAY_ERROR, Rejected, none()),
            Reject::QuotaExceeded { window: 60, .. } => (
                429,
                GATEWAY_ERROR,
                Rejected,
                vec![
                    ("retry-after", "12".into()),
                    ("ratelimit-policy", "\"per-user\";q=100;w=60".into()),
                    ("ratelimit", "\"per-user\";r=0;t=12".into()),
                ],
            ),
            Reject::QuotaExceeded { .. } => (
                429,
                GATEWAY_ERROR,
                Rejected,
                vec![
                    ("retry-after", "1".into()),
                    ("ratelimit-policy", "\"slots\";q=2".into()),
                    ("ratelimit", "\"slots\";r=0;t=1".into()),
                ],
            ),
            Reject::QuotaStoreUnavailable { .. } => (
                503,
                GATEWAY_ERROR,
                InternalError,
                vec![("retry-after", "1".into())],
            ),
            Reject::UnsupportedRevision { .. } => {
                (400, UNSUPPORTED_PROTOCOL_VERSION, Rejected, none())
            }
            Reject::ModernMethodNotFound { .. } => (404, METHOD_NOT_FOUND, Rejected, none()),
            Reject::FanOutFailed { .. } => (502, GATEWAY_ERROR, UpstreamError, none()),
            // 503 counts as `rejected`: a bound was reached, nothing failed.
            Reject::StreamsFull { .. } => (503, GATEWAY_ERROR, Rejected, none()),
            // 429 like a quota: this caller is over its share; others are still served.
            Reject::PrincipalCapReached { .. } => (429, GATEWAY_ERROR, Rejected, none()),
        }
    }

    #[test]
    fn a_principal_cap_names_the_limit_its_value_and_what_to_do() {
        use crate::caps::Cap;
        for cap in [Cap::ParkedCalls, Cap::Streams, Cap::EventSessions] {
            let r = Reject::PrincipalCapReached { cap, limit: 7 };
            let m = r.to_string();
            assert!(m.contains(&format!("limits.{}", cap.field())), "{m}");
            assert!(m.starts_with("you already hold 7 "), "{m}");
            assert!(m.contains(cap.advice()), "{m}");
            assert_eq!(
                r.jsonrpc_data(),
                Some(serde_json::json!({"limit": cap.field(), "max": 7}))
            );
        }
    }

    #[test]
    fn an_unsupported_revision_lists_every_supported_one() {
        let r = Reject::UnsupportedRevision {
            requested: "2099-01-01".into(),
        };
        assert_eq!(
            r.jsonrpc_data(),
            Some(serde_json::json!({
                "supported": ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"],
                "requested": "2099-01-01",
            }))
        );
        assert!(r.to_string().contains("2026-07-28"), "{r}");
    }

    #[test]
    fn an_approval_refusal_says_what_to_do_and_carries_the_id() {
        let r = Reject::ApprovalRequired {
            id: "abc".into(),
            url: Some("https://ops/abc".into()),
            retry_after: 10,
            expires_at: "2030-01-01T00:00:00Z".into(),
        };
        let m = r.to_string();
        assert!(
            m.contains("approval abc") && m.contains("https://ops/abc"),
            "{m}"
        );
        assert!(m.contains("retry the identical call"), "{m}");
        assert_eq!(
            r.jsonrpc_data(),
            Some(serde_json::json!({
                "approvalId": "abc",
                "approvalUrl": "https://ops/abc",
                "retryAfter": 10,
                "expiresAt": "2030-01-01T00:00:00Z",
                "state": "pending",
            }))
        );
        let d = Reject::ApprovalDenied { id: "abc".into() }.to_string();
        assert!(d.contains("denied"), "{d}");
    }

    #[test]
    fn every_variant_maps_to_its_status_code_outcome_and_headers() {
        for r in every_variant() {
            let headers: Vec<(String, String)> = r
                .response_headers(|| Some(METADATA.to_string()))
                .into_iter()
                .map(|(n, v)| {
                    let v = v.to_str().unwrap_or("(not text)").to_string();
                    (n.as_str().to_string(), v)
                })
                .collect();
            let (status, code, outcome, want) = expected(&r);
            let want: Vec<(String, String)> =
                want.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
            assert_eq!(
                (r.http_status(), r.jsonrpc_code(), r.outcome(), headers),
                (status, code, outcome, want),
                "{r:?}"
            );
            assert!(
                r.http_status() >= 400 || r.jsonrpc_code() != GATEWAY_ERROR,
                "{r:?}"
            );
            assert!((-32768..=-32000).contains(&r.jsonrpc_code()), "{r:?}");
            assert!(!r.to_string().ends_with('.'), "{r}");
        }
    }

    #[test]
    fn no_challenge_without_a_metadata_url() {
        for r in every_variant() {
            assert!(
                r.response_headers(|| None)
                    .iter()
                    .all(|(n, _)| n != WWW_AUTHENTICATE),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_405_names_the_methods_its_path_takes() {
        let mk = |on| Reject::MethodNotAllowed {
            method: "PUT".into(),
            on,
        };
        assert_eq!(
            mk(PathKind::McpEndpoint).to_string(),
            "HTTP method PUT is not allowed on an MCP endpoint; use POST, GET or DELETE"
        );
        assert_eq!(
            mk(PathKind::ResourceMetadata).to_string(),
            "HTTP method PUT is not allowed on the protected-resource metadata document; use GET"
        );
    }

    #[test]
    fn a_429_says_which_limit_and_when_to_retry() {
        let r = Reject::QuotaExceeded {
            limit: "per-user".into(),
            kind: QuotaKind::Budget,
            quota: 1000,
            window: 3600,
            retry_after: 5,
        };
        assert_eq!(
            r.to_string(),
            "budget \"per-user\" exceeded (1000 units per 3600 s); the call was not made: retry in 5 s"
        );
        assert_eq!(
            r.jsonrpc_data(),
            Some(serde_json::json!({"limit": "per-user", "kind": "budget", "retryAfter": 5}))
        );
    }

    #[test]
    fn timeouts_are_504_and_other_upstream_failures_502() {
        let mk = |timeout| Reject::Upstream {
            upstream: "u".into(),
            cause: "c".into(),
            timeout,
        };
        assert_eq!(mk(true).http_status(), 504);
        assert_eq!(mk(false).http_status(), 502);
    }

    #[test]
    fn clip_keeps_short_strings_and_cuts_long_ones_on_char_boundaries() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(100);
        let c = clip(&long);
        assert!(c.len() <= 123 && c.ends_with("..."));
    }
}
