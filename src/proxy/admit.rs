//! Request side, run in `request_filter`: decide whether a request may go upstream and where.
//!
//! The order matters and each step says why it sits where it does. Everything here either
//! fills [`RequestCtx`] and returns [`Admitted`], or returns the [`Reject`] to answer with.

use std::sync::Arc;

use bytes::BytesMut;
use http::{header, Method};
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::auth::Credentials;
use crate::config::Listener;
use crate::error::Reject;
use crate::guard;
use crate::mcp::{jsonrpc, McpMethod};
use crate::state::Runtime;

/// How an admitted request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Pingora proxies it; a POST body is replayed from the retry buffer.
    Proxy,
    /// The body was larger than Pingora's 64 KiB retry buffer: forward it ourselves.
    ForwardBuffered,
    /// The gateway answers itself (protected-resource metadata).
    Local {
        status: u16,
        content_type: &'static str,
        body: bytes::Bytes,
    },
}

/// Check and classify one request. Runs first in `request_filter`.
pub(crate) async fn admit(
    session: &mut Session,
    ctx: &mut RequestCtx,
    runtime: &Arc<Runtime>,
    listener_index: usize,
) -> Result<Admitted, Reject> {
    let Some(listener) = runtime.config.listeners.get(listener_index) else {
        return Err(Reject::Internal("listener index out of range".into()));
    };
    let req = session.req_header();
    ctx.listener = listener_index;

    // 0. Protected-resource metadata (RFC 9728) is public: clients fetch it to learn how to
    //    authenticate.
    let path = req.uri.path();
    if let Some(auth) = &runtime.config.auth {
        if let Some(route) = listener.routes.iter().find(|r| r.metadata_path == path) {
            if req.method != Method::GET {
                return Err(Reject::MethodNotAllowed {
                    method: crate::error::clip(req.method.as_str()),
                });
            }
            return Ok(Admitted::Local {
                status: 200,
                content_type: "application/json",
                body: crate::auth::metadata::document(auth, route).into(),
            });
        }
    }

    // 1. Route by exact path: cheapest check, and it tells us which upstream names errors.
    let Some((route_index, route)) = listener
        .routes
        .iter()
        .enumerate()
        .find(|(_, r)| r.path == path)
    else {
        return Err(no_route(listener, path));
    };
    ctx.upstream = Some(route.upstream);
    ctx.route = Some(route_index);

    // 2. DNS-rebinding guard before anything else is processed for a browser-borne request.
    // RFC 9112 §3.2.2: an absolute-form target's authority wins over the Host header.
    let host = req
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers.get(header::HOST).and_then(|v| v.to_str().ok()));
    guard::check_host(host, &listener.hosts)?;
    let origin = header_str(req, header::ORIGIN);
    guard::check_origin(origin, &listener.allowed_origins)?;

    // 3. Authenticate before reading any body, so anonymous clients can't make us buffer.
    if listener.auth_required {
        let Some(auth) = &runtime.auth else {
            return Err(Reject::Internal(
                "authentication required but not configured".into(),
            ));
        };
        let creds = Credentials {
            authorization: header_str(req, header::AUTHORIZATION),
            api_key: header_str(req, auth.config().api_key_header.clone()),
        };
        ctx.principal = Some(auth.authenticate(creds, route).await?);
    }

    // 4. Method and media types, before buffering any body.
    let req = session.req_header();
    match req.method {
        Method::POST => {}
        Method::GET => {
            guard::check_get_headers(header_str(req, header::ACCEPT))?;
            ctx.stream = true;
            ctx.method = McpMethod::Stream;
            credential(ctx, runtime, route.upstream).await?;
            return Ok(Admitted::Proxy);
        }
        Method::DELETE => {
            ctx.method = McpMethod::EndSession;
            credential(ctx, runtime, route.upstream).await?;
            return Ok(Admitted::Proxy);
        }
        ref m => {
            return Err(Reject::MethodNotAllowed {
                method: crate::error::clip(m.as_str()),
            })
        }
    }
    guard::check_post_headers(
        header_str(req, header::CONTENT_TYPE),
        header_str(req, header::ACCEPT),
    )?;

    // 5. Size: refuse a declared oversize body without reading it.
    let limit = runtime.config.limits.max_request_body_bytes;
    let declared = header_str(req, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Reject::BodyTooLarge { limit });
    }

    // A client waiting for `100 Continue` would otherwise stall until its own timeout: we
    // read the body here, before any upstream is contacted. (outbound drops `Expect`.)
    if req
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
    {
        session
            .as_mut()
            .write_continue_response()
            .await
            .map_err(|e| Reject::BodyRead(e.etype().as_str().to_string()))?;
    }

    // 6. Read the body. Retry buffering must be on *before* reading, or Pingora has nothing
    //    to replay upstream (pingora-0.9 notes §2).
    session.enable_retry_buffering();
    // Grow with the data: a declared length alone must not reserve memory.
    let mut body = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit).min(64 * 1024));
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(Reject::BodyTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(Reject::BodyRead(e.etype().as_str().to_string())),
        }
    }
    ctx.body = body.freeze();

    // 7. Parse: method, id and tool name, borrowed from the body.
    let call = match jsonrpc::parse(&ctx.body) {
        Ok(c) => c,
        Err(failure) => {
            ctx.id = failure.id; // so the error answer carries the request's id
            return Err(failure.reject);
        }
    };
    ctx.id = call.id.clone();
    ctx.method = call.method;
    ctx.call = Some(call);

    // 8. The caller's credential for this upstream, last: only well-formed requests cost a
    //    token exchange.
    credential(ctx, runtime, route.upstream).await?;

    if session.retry_buffer_truncated() {
        Ok(Admitted::ForwardBuffered)
    } else {
        Ok(Admitted::Proxy)
    }
}

async fn credential(
    ctx: &mut RequestCtx,
    runtime: &Runtime,
    upstream: usize,
) -> Result<(), Reject> {
    let Some(u) = runtime.config.upstreams.get(upstream) else {
        return Err(Reject::Internal("upstream index out of range".into()));
    };
    ctx.credential = runtime
        .identity
        .credential(upstream, u, ctx.principal.as_deref())
        .await?;
    Ok(())
}

fn header_str(req: &pingora::http::RequestHeader, name: header::HeaderName) -> Option<&str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn no_route(listener: &Listener, path: &str) -> Reject {
    let served: Vec<&str> = listener.routes.iter().map(|r| r.path.as_str()).collect();
    Reject::NoRoute {
        path: crate::error::clip(path),
        served: served.join(", "),
    }
}
