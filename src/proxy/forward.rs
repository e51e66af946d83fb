//! Forwarding a request whose body did not fit Pingora's 64 KiB retry buffer.
//!
//! Pingora can only replay a body it buffered itself, and that buffer is fixed at 64 KiB
//! (pingora-0.9 notes §2). Bodies between 64 KiB and `limits.max_request_body_bytes` were
//! already read into `ctx.body` by admit, so this module sends them with a pooled
//! [`Connector`] and streams the upstream's answer back chunk by chunk, through the same
//! [`relay`] functions the proxy path uses. Runs inside `request_filter`, which then reports
//! the response as written.

use std::time::Instant;

use pingora::connectors::http::Connector;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use super::{heal, outbound, relay, respond};
use crate::error::Reject;
use crate::metrics::Outcome;
use crate::state::Shared;

/// Send `ctx.body` upstream and relay the response. Errors before the response header was
/// written are answered with a JSON-RPC error; after that the connection is just closed.
pub(crate) async fn forward_buffered(
    shared: &Shared,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    // Pooled connections of the gateway's side-request client (Pingora's proxy keeps its own
    // pool).
    match exchange(shared, shared.http.connector(), session, ctx).await {
        Ok(()) => Ok(()),
        Err(e) if *e.esource() == pingora::ErrorSource::Downstream => {
            ctx.outcome = Outcome::ClientClosed;
            Err(e)
        }
        Err(e) if !respond::final_header_sent(session) => {
            super::give_back_if_undelivered(shared, ctx, &e).await;
            let reject = match ctx.pending.take() {
                Some(r) => r,
                None => respond::upstream_reject(ctx, &e).unwrap_or_else(|| {
                    Reject::Internal(format!(
                        "forwarding the request failed: {}",
                        e.etype().as_str()
                    ))
                }),
            };
            respond::reject(session, ctx, &reject).await
        }
        Err(e) => {
            ctx.outcome = Outcome::UpstreamError;
            Err(e)
        }
    }
}

async fn exchange(
    shared: &Shared,
    connector: &Connector,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let Some(upstream) = ctx.target.as_ref().map(|t| t.upstream.clone()) else {
        return Err(pingora::Error::explain(
            pingora::ErrorType::InternalError,
            "no upstream chosen for the request",
        ));
    };
    let peer = upstream.peer(false);
    let mut req = session.req_header().clone();
    strip_hop_by_hop(&mut req);
    outbound::request_header(&mut req, ctx)?;
    req.insert_header(http::header::CONTENT_LENGTH, ctx.body.len().to_string())?;

    let (mut up, _reused) = connector
        .get_http_session(peer)
        .await
        .map_err(|e| e.into_up())?;
    // The connector does not copy the peer's timeouts onto the session; the proxy path does.
    up.set_read_timeout(peer.options.read_timeout);
    up.set_write_timeout(peer.options.write_timeout);
    ctx.timings.forwarded_at = Some(Instant::now());
    up.write_request_header(Box::new(req))
        .await
        .map_err(|e| e.into_up())?;
    up.write_request_body(ctx.body.clone(), true)
        .await
        .map_err(|e| e.into_up())?;
    up.finish_request_body().await.map_err(|e| e.into_up())?;
    // From here the upstream may be silent for a long time (a slow tool): watch the client
    // meanwhile, as the proxy path does, so one that leaves cancels the call.
    let mut watch = true;
    unless_client_leaves(session, &mut watch, async {
        up.read_response_header().await.map_err(|e| e.into_up())
    })
    .await?;
    let mut resp: ResponseHeader = match up.response_header() {
        Some(h) => h.clone(),
        None => {
            return Err(pingora::Error::explain(
                pingora::ErrorType::InvalidHTTPHeader,
                "upstream sent no response header",
            )
            .into_up())
        }
    };
    ctx.timings.upstream_header_at = Some(Instant::now());
    if heal::is_session_lost(ctx, resp.status.as_u16()) {
        // As on the proxy path: forget the lost upstream session. This body is too large to
        // resend, so the client is told to call again (which opens a new session).
        return Err(heal::session_lost(shared, ctx));
    }
    if let Some(reject) = relay::early_reject(&resp, ctx) {
        ctx.pending = Some(reject);
        return Err(pingora::Error::explain(
            pingora::ErrorType::HTTPStatus(502),
            "upstream answer replaced by the gateway",
        ));
    }
    relay::response_header(&mut resp, ctx)?;
    session.write_response_header(Box::new(resp), false).await?;
    loop {
        let mut chunk = unless_client_leaves(session, &mut watch, async {
            up.read_response_body().await.map_err(|e| e.into_up())
        })
        .await?;
        let end = chunk.is_none() || up.response_done();
        relay::response_body(&mut chunk, end, ctx);
        super::held::refuse_input(shared, ctx);
        if chunk.is_some() || end {
            session.write_response_body(chunk, end).await?;
        }
        if end {
            break;
        }
    }
    let idle = Some(upstream.config.idle_timeout);
    connector.release_http_session(up, peer, idle).await;
    Ok(())
}

/// `upstream`'s result, unless the client's connection closes first: then that downstream
/// error, which `forward_buffered` records as the client leaving (`logging` then cancels a
/// 2026-07-28 client's call upstream, `proxy::held`), and the upstream connection is
/// dropped. `watch` turns false once the connection has nothing more to tell (as in
/// `mrtr::carry_on`).
async fn unless_client_leaves<T>(
    session: &mut Session,
    watch: &mut bool,
    upstream: impl std::future::Future<Output = pingora::Result<T>>,
) -> pingora::Result<T> {
    tokio::pin!(upstream);
    while *watch {
        tokio::select! {
            r = &mut upstream => return r,
            r = session.downstream_session.read_body_or_idle(true) => {
                if let Err(e) = r {
                    return Err(e.into_down());
                }
                *watch = false;
            }
        }
    }
    upstream.await
}

/// What Pingora's proxy path does to a request before forwarding it: hop-by-hop headers
/// (RFC 9110 §7.6.1), anything the client's `Connection` header nominates, and `Proxy-*`
/// credentials stay with this hop; the upstream request is HTTP/1.1.
pub(super) fn strip_hop_by_hop(req: &mut pingora::http::RequestHeader) {
    let nominated: Vec<http::HeaderName> = req
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| http::HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for h in nominated {
        req.remove_header(&h);
    }
    for h in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        req.remove_header(h);
    }
    req.set_version(http::Version::HTTP_11);
}
