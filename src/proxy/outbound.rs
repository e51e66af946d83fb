//! The request as the upstream sees it. Runs in `upstream_request_filter` (and for the
//! large-body forward): request target and `Host` become the upstream's own, and the browser
//! `Origin` (already checked by the guard) is dropped so upstreams with their own
//! DNS-rebinding protection accept the forwarded request. `Expect` is dropped: the gateway
//! already holds the whole body.
//!
//! The client's `Authorization` and API-key header are removed (unless the upstream is
//! `passthrough`), as are the upstream's `strip_headers`; the credential chosen by
//! [`crate::identity`] is set instead.
//!
//! `Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID` and the body pass through as sent.

use pingora::http::RequestHeader;

use super::ctx::RequestCtx;

/// Rewrite `req` for the upstream chosen in `ctx`.
pub(crate) fn request_header(req: &mut RequestHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    let (Some(rt), Some(i)) = (&ctx.runtime, ctx.upstream) else {
        return Err(pingora::Error::explain(
            pingora::ErrorType::InternalError,
            "no upstream chosen for the request",
        ));
    };
    let (Some(upstream), Some(path), Some(host)) = (
        rt.config.upstreams.get(i),
        rt.upstreams.path(i),
        rt.upstreams.host(i),
    ) else {
        return Err(pingora::Error::explain(
            pingora::ErrorType::InternalError,
            "upstream index out of range",
        ));
    };
    req.set_uri(path.clone());
    req.insert_header(http::header::HOST, host.clone())?;
    // Client credentials never reach an upstream by accident: only `passthrough` keeps them.
    if upstream.auth.mode != crate::config::PropagationMode::Passthrough {
        req.remove_header(&http::header::AUTHORIZATION);
        if let Some(auth) = &rt.config.auth {
            req.remove_header(&auth.api_key_header);
        }
    }
    for h in &upstream.strip_headers {
        req.remove_header(h);
    }
    if let Some(v) = &ctx.credential {
        req.insert_header(upstream.auth.header.clone(), v.clone())?;
    }
    if ctx.vserver.is_some() {
        // The client's session is the gateway's; the upstream gets its own.
        req.remove_header("mcp-session-id");
        if let Some(sid) = &ctx.upstream_session {
            req.insert_header("mcp-session-id", sid.as_str())?;
        }
        req.insert_header(
            "mcp-protocol-version",
            crate::registry::client::PROTOCOL_VERSION,
        )?;
    }
    if ctx.body_replaced {
        req.remove_header(&http::header::TRANSFER_ENCODING);
        req.insert_header(http::header::CONTENT_LENGTH, ctx.body.len().to_string())?;
    }
    req.remove_header(&http::header::ORIGIN);
    // The body was read (and `100 Continue` sent, if asked) before forwarding.
    req.remove_header(&http::header::EXPECT);
    Ok(())
}
