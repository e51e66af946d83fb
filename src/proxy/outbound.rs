//! The request as the upstream sees it. Runs in `upstream_request_filter` (and for the
//! large-body forward): request target and `Host` become the upstream's own, and the browser
//! `Origin` (already checked by the guard) is dropped so upstreams with their own
//! DNS-rebinding protection accept the forwarded request. `Expect` is dropped: the gateway
//! already holds the whole body.
//!
//! The client's API-key header is always removed, and so is `Authorization` unless the
//! upstream is `passthrough` and the caller authenticated with a JWT (an API key is never
//! forwarded), as are the upstream's `strip_headers`; the credential chosen by
//! [`crate::identity`] is set instead.
//!
//! On plain routes `Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID` and the body
//! pass through as sent (virtual servers: see the binding cases below, and no
//! `Accept-Encoding`);
//! a POST's `Content-Type` becomes exactly `application/json` and header names with
//! underscores are dropped (aliases of checked headers for CGI-style servers).
//! `traceparent` becomes the gateway's span of the request's trace ([`crate::trace`]).

use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;

use super::ctx::{RequestCtx, UpstreamSession};
use crate::decision::SessionBinding;

/// Rewrite `req` for the upstream chosen in `ctx`.
pub(crate) fn request_header(req: &mut RequestHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    let (Some(rt), Some(target)) = (&ctx.runtime, &ctx.target) else {
        return Err(pingora::Error::explain(
            pingora::ErrorType::InternalError,
            "no upstream chosen for the request",
        ));
    };
    let up = &target.upstream;
    let (upstream, path, host) = (&up.config, &up.path, &up.host);
    req.set_uri(path.clone());
    req.insert_header(http::header::HOST, host.clone())?;
    // Client credentials never reach an upstream by accident: only `passthrough` keeps the
    // `Authorization` header, and only when it is not an API key (a user's JWT, or whatever a
    // client sends on an `auth: none` listener). The API-key header is always removed.
    if let Some(auth) = &rt.config.auth {
        remove(req, &auth.api_key_header);
    }
    let keep_authorization = upstream.auth.mode == crate::config::PropagationMode::Passthrough
        && ctx
            .principal
            .as_ref()
            .is_none_or(|p| p.method == crate::auth::AuthMethod::Jwt);
    if !keep_authorization {
        remove(req, &http::header::AUTHORIZATION);
    }
    for h in &upstream.strip_headers {
        remove(req, h);
    }
    // Header names with underscores: CGI-style servers read `Mcp_Name` as `Mcp-Name` and
    // `X_Api_Key` as `X-Api-Key`, so an alias would slip past the checks and the credential
    // stripping above. No MCP header has one; nginx drops them by default for this reason.
    if req.headers.keys().any(|n| n.as_str().contains('_')) {
        let aliases: Vec<HeaderName> = req
            .headers
            .keys()
            .filter(|n| n.as_str().contains('_'))
            .cloned()
            .collect();
        for name in &aliases {
            req.remove_header(name);
        }
    }
    if let Some(v) = ctx.credential() {
        req.insert_header(upstream.auth.header.clone(), v.clone())?;
    }
    // W3C Trace Context: the upstream is a child of the gateway's span. A `tracestate`
    // belongs to the client's `traceparent`: it goes on only when that trace was continued.
    match &ctx.trace {
        Some(t) => {
            let v = HeaderValue::from_bytes(&t.header_value()).map_err(|_| {
                pingora::Error::explain(
                    pingora::ErrorType::InternalError,
                    "traceparent is not a valid header value",
                )
            })?;
            req.insert_header(TRACEPARENT, v)?;
            if !t.continued() {
                remove(req, &TRACESTATE);
            }
        }
        None => {
            remove(req, &TRACEPARENT);
            remove(req, &TRACESTATE);
        }
    }
    if let SessionBinding::Gateway { .. } = target.session {
        // The client's session is the gateway's; the upstream gets its own.
        match &ctx.upstream_session {
            UpstreamSession::Gateway(Some(sid)) => {
                let v = HeaderValue::from_str(sid).map_err(|_| {
                    pingora::Error::explain(
                        pingora::ErrorType::InternalError,
                        "upstream session id is not a valid header value",
                    )
                })?;
                req.insert_header(MCP_SESSION_ID, v)?;
            }
            _ => remove(req, &MCP_SESSION_ID),
        }
        // The request's metadata headers say what the decided bytes say, or nothing: an
        // upstream (or anything in front of it that routes or authorises on them) must never
        // read a name or argument the gateway did not check. `Mcp-Name`: see [`mcp_name`].
        // `Mcp-Method` needs nothing: admit refused one that disagrees with the body, and no
        // step changes the method. `Mcp-Param-*`: removed (the body's arguments, pinned ones
        // included, are what counts; the gateway speaks a handshake-era revision upstream,
        // which has no such headers).
        mcp_name(req, ctx)?;
        remove_params(req);
        // The gateway's own protocol revision with the upstream (usually what the client
        // already sent: then nothing to do).
        let ours = crate::mcp::revision::PREFERRED;
        let mut sent = req.headers.get_all(&MCP_PROTOCOL_VERSION).iter();
        let only_ours = sent.next().map(HeaderValue::as_bytes) == Some(ours.as_bytes())
            && sent.next().is_none();
        if !only_ours {
            req.insert_header(MCP_PROTOCOL_VERSION, HeaderValue::from_static(ours))?;
        }
    }
    if target.session != SessionBinding::Client {
        // A virtual server reads its answers (URIs exposed, a 2026-07-28 client's log level,
        // `resultType`, the audit's outcome): an encoding the client accepts would let the
        // upstream compress them past every one of those filters. Identity, then.
        remove(req, &http::header::ACCEPT_ENCODING);
    }
    if let SessionBinding::Stateless = target.session {
        // A 2026-07-28 upstream: no session, and the client's own revision and envelope.
        // The name and the `Mcp-Param-*` headers follow the decided bytes.
        remove(req, &MCP_SESSION_ID);
        mcp_name(req, ctx)?;
        // `Mcp-Param-*`: built from the decided arguments (checked against the client's in
        // step 3), never the client's own; none at all for most tools.
        remove_params(req);
        let params = ctx.decision.as_ref().map_or(&[][..], |d| &d.mcp_params[..]);
        for (name, value) in params {
            req.insert_header(name.clone(), value.clone())?;
        }
    }
    if ctx.body_replaced {
        remove(req, &http::header::TRANSFER_ENCODING);
        req.insert_header(
            http::header::CONTENT_LENGTH,
            HeaderValue::from(ctx.body.len()),
        )?;
    }
    // The body was checked as UTF-8 JSON: say exactly that, so no upstream decodes it with
    // another charset the client named (admit refused any but utf-8 already).
    if req.method == http::Method::POST
        && req
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes)
            != Some(b"application/json")
    {
        req.insert_header(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )?;
    }
    remove(req, &http::header::ORIGIN);
    // The body was read (and `100 Continue` sent, if asked) before forwarding.
    remove(req, &http::header::EXPECT);
    Ok(())
}

/// `Mcp-Name`: the name the rewrite step put in the body (a renamed tool, prompt or
/// resource), else removed; set only where the client sent one (a handshake-era call carries
/// none and gets none).
fn mcp_name(req: &mut RequestHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    if req.headers.contains_key(MCP_NAME) {
        match ctx.decision.as_ref().and_then(|d| d.mcp_name.as_ref()) {
            // By its `&'static str` spelling: Pingora copies a `HeaderName` it does not
            // know into a new buffer for its case map, on every call.
            Some(v) => req.insert_header("Mcp-Name", v.clone())?,
            None => remove(req, &MCP_NAME),
        }
    }
    Ok(())
}

/// Remove every `Mcp-Param-*` header the client sent (a scan of the names; nothing
/// allocated when there are none, as for most requests).
fn remove_params(req: &mut RequestHeader) {
    let is_param = |n: &HeaderName| n.as_str().starts_with(crate::mcp::params::PREFIX);
    if req.headers.keys().any(is_param) {
        let names: Vec<HeaderName> = req
            .headers
            .keys()
            .filter(|n| is_param(n))
            .cloned()
            .collect();
        for name in &names {
            req.remove_header(name);
        }
    }
}

const MCP_SESSION_ID: HeaderName = HeaderName::from_static(crate::mcp::headers::MCP_SESSION_ID);
const MCP_PROTOCOL_VERSION: HeaderName =
    HeaderName::from_static(crate::mcp::headers::MCP_PROTOCOL_VERSION);
const MCP_NAME: HeaderName = HeaderName::from_static(crate::mcp::headers::MCP_NAME);
const TRACEPARENT: HeaderName = HeaderName::from_static(crate::trace::TRACEPARENT);
const TRACESTATE: HeaderName = HeaderName::from_static(crate::trace::TRACESTATE);

/// Remove a header only when present: Pingora's removal also updates its case-preserving
/// name map, which is wasted work for the headers most requests don't carry.
fn remove(req: &mut RequestHeader, name: &HeaderName) {
    if req.headers.contains_key(name) {
        req.remove_header(name);
    }
}
