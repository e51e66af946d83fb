//! Responses the gateway writes itself: JSON-RPC error bodies for every [`Reject`], and the
//! translation of Pingora upstream errors into a [`Reject::Upstream`] that names the upstream.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use super::ctx::RequestCtx;
use crate::error::Reject;
use crate::mcp::jsonrpc;
use crate::metrics::UpstreamErrorKind;

/// Write `reject` as the response: its HTTP status, the headers it asks for, and a JSON-RPC
/// error carrying the request id when one is known. Records its outcome in `ctx`. Runs in
/// `request_filter` or `fail_to_proxy`, before any response header was sent.
pub(crate) async fn reject(
    session: &mut Session,
    ctx: &mut RequestCtx,
    reject: &Reject,
) -> pingora::Result<()> {
    ctx.outcome = reject.outcome();
    ctx.rejected = Some(reject.clone());
    let body = error_body(ctx, reject);
    let mut h = ResponseHeader::build(reject.http_status(), Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    h.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    for (name, value) in reject.response_headers(|| metadata_url(ctx)) {
        h.insert_header(name, value)?;
    }
    // A client that sent a body we did not read cannot keep the connection.
    if matches!(reject, Reject::BodyTooLarge { .. }) {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// Absolute URL of the protected-resource metadata of the endpoint `ctx` was routed to (the
/// listener-wide default before routing), for the `WWW-Authenticate` challenge. `None`
/// without an `auth` section.
fn metadata_url(ctx: &RequestCtx) -> Option<String> {
    let rt = ctx.runtime.as_ref()?;
    let auth = rt.config.auth.as_ref()?;
    let metadata_path = ctx.endpoint.as_ref().map(|e| e.metadata_path.as_str());
    Some(crate::auth::metadata::url(
        auth,
        metadata_path.unwrap_or(crate::config::METADATA_PREFIX),
    ))
}

/// The JSON-RPC error body for `reject`, with the request id from `ctx`.
pub(crate) fn error_body(ctx: &RequestCtx, reject: &Reject) -> Bytes {
    Bytes::from(jsonrpc::error_response(
        ctx.id_json(),
        reject.jsonrpc_code(),
        &reject.to_string(),
        reject.jsonrpc_data().as_ref(),
    ))
}

/// Whether a final (non-1xx) response header already went to the client. A `100 Continue`
/// does not count: an error response can still follow it.
pub(crate) fn final_header_sent(session: &Session) -> bool {
    session
        .response_written()
        .is_some_and(|h| !h.status.is_informational())
}

/// Write a response the gateway produces itself (not an error).
pub(crate) async fn local(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Bytes,
    mcp_session: Option<&str>,
) -> pingora::Result<()> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    if !body.is_empty() {
        h.insert_header(http::header::CONTENT_TYPE, content_type)?;
    }
    if let Some(sid) = mcp_session {
        h.insert_header(crate::mcp::headers::MCP_SESSION_ID, sid)?;
    }
    h.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// Describe a Pingora error from the upstream side: metric kind, human cause, and whether it
/// was a timeout (504) rather than another failure (502). `None` when the error did not come
/// from the upstream (the client went away, or an internal error).
pub(crate) fn classify_upstream_error(e: &Error) -> Option<(UpstreamErrorKind, String, bool)> {
    use ErrorType::*;
    if *e.esource() != ErrorSource::Upstream {
        return None;
    }
    let (kind, what, timeout) = match e.etype() {
        ConnectRefused => (
            UpstreamErrorKind::ConnectRefused,
            "connection refused",
            false,
        ),
        ConnectTimedout => (UpstreamErrorKind::ConnectTimeout, "connect timed out", true),
        ConnectNoRoute => (UpstreamErrorKind::ConnectRefused, "no route to host", false),
        ReadTimedout => (
            UpstreamErrorKind::ReadTimeout,
            "timed out waiting for the response",
            true,
        ),
        WriteTimedout => (
            UpstreamErrorKind::WriteTimeout,
            "timed out sending the request",
            true,
        ),
        ConnectionClosed => (
            UpstreamErrorKind::ConnectionReset,
            "closed the connection before answering",
            false,
        ),
        ReadError | WriteError => (
            UpstreamErrorKind::ConnectionReset,
            "connection reset",
            false,
        ),
        TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError => {
            (UpstreamErrorKind::Other, "TLS handshake failed", false)
        }
        InvalidHTTPHeader | H1Error | H2Error => (
            UpstreamErrorKind::Other,
            "sent an invalid HTTP response",
            false,
        ),
        other => (UpstreamErrorKind::Other, other.as_str(), false),
    };
    Some((kind, what.to_string(), timeout))
}

/// Turn an upstream-side Pingora error into the rejection the client sees, and record the
/// error kind in `ctx`. `None` when the error is not the upstream's.
/// Whether `e` happened before any byte of the request could reach the upstream: no
/// connection (refused, unroutable, timed out) or no TLS session. What a consumed approval
/// was for then did not run.
pub(crate) fn never_reached_upstream(e: &Error) -> bool {
    use ErrorType::*;
    *e.esource() == ErrorSource::Upstream
        && matches!(
            e.etype(),
            ConnectRefused
                | ConnectTimedout
                | ConnectNoRoute
                | ConnectError
                | BindError
                | TLSHandshakeFailure
                | TLSHandshakeTimedout
                | InvalidCert
                | HandshakeError
        )
}

pub(crate) fn upstream_reject(ctx: &mut RequestCtx, e: &Error) -> Option<Reject> {
    let (kind, cause, timeout) = classify_upstream_error(e)?;
    ctx.upstream_error = Some(kind);
    Some(Reject::Upstream {
        upstream: ctx.upstream_name().to_string(),
        cause,
        timeout,
    })
}
