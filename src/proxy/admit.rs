//! Request side, run in `request_filter`: decide whether a request may go upstream and where.
//!
//! The order matters and each step says why it sits where it does. Everything here either
//! fills [`RequestCtx`] and returns [`Admitted`], or returns the [`Reject`] to answer with.

use std::sync::Arc;

use bytes::BytesMut;
use http::{header, Method};
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use super::vserver;
use crate::auth::Credentials;
use crate::config::Listener;
use crate::error::Reject;
use crate::guard;
use crate::mcp::{headers, jsonrpc, McpMethod};
use crate::state::{Runtime, Shared};

/// How an admitted request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Pingora proxies it; a POST body is replayed from the retry buffer.
    Proxy,
    /// The body was larger than Pingora's 64 KiB retry buffer: forward it ourselves.
    ForwardBuffered,
    /// A virtual server's server-to-client stream (tools/list_changed), served by the gateway.
    VirtualStream { server: String },
    /// The gateway answers itself (protected-resource metadata, virtual servers).
    Local {
        status: u16,
        content_type: &'static str,
        body: bytes::Bytes,
        /// `Mcp-Session-Id` to send (a virtual server's `initialize`).
        session: Option<String>,
    },
}

/// The MCP endpoint a request addresses.
#[derive(Debug, Clone, Copy)]
enum Endpoint<'a> {
    Route(&'a crate::config::Route),
    Virtual(usize, &'a crate::config::VirtualServer),
}

impl Endpoint<'_> {
    fn resource_url(&self) -> Option<&str> {
        match self {
            Endpoint::Route(r) => r.resource_url.as_deref(),
            Endpoint::Virtual(_, v) => v.resource_url.as_deref(),
        }
    }
}

/// Check and classify one request. Runs first in `request_filter`.
pub(crate) async fn admit(
    session: &mut Session,
    ctx: &mut RequestCtx,
    shared: &Shared,
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
        let resource = listener
            .routes
            .iter()
            .find(|r| r.metadata_path == path)
            .map(|r| r.resource_url.as_deref())
            .or_else(|| {
                served(listener, &runtime.config)
                    .find(|(_, v)| v.metadata_path == path)
                    .map(|(_, v)| v.resource_url.as_deref())
            });
        if let Some(resource) = resource {
            if req.method != Method::GET {
                return Err(Reject::MethodNotAllowed {
                    method: crate::error::clip(req.method.as_str()),
                    on: crate::error::PathKind::ResourceMetadata,
                });
            }
            return Ok(Admitted::Local {
                status: 200,
                content_type: "application/json",
                body: crate::auth::metadata::document(auth, resource).into(),
                session: None,
            });
        }
    }

    // 1. Route by exact path: cheapest check, and it tells us which upstream names errors.
    let endpoint = if let Some((i, r)) = listener
        .routes
        .iter()
        .enumerate()
        .find(|(_, r)| r.path == path)
    {
        ctx.upstream = Some(r.upstream);
        ctx.route = Some(i);
        Endpoint::Route(r)
    } else if let Some((i, v)) = served(listener, &runtime.config).find(|(_, v)| v.route == path) {
        ctx.vserver = Some(i);
        Endpoint::Virtual(i, v)
    } else {
        return Err(no_route(listener, &runtime.config, path));
    };

    // 2. DNS-rebinding guard before anything else is processed for a browser-borne request.
    guard::check_request(
        req.uri.authority().map(|a| a.as_str()),
        header_str(req, header::HOST),
        header_str(req, header::ORIGIN),
        &listener.hosts,
        &listener.allowed_origins,
        listener.address,
    )?;

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
        ctx.principal = Some(auth.authenticate(creds, endpoint.resource_url()).await?);
    }
    if let Endpoint::Virtual(_, vs) = endpoint {
        // An empty access list means every *authenticated* caller; an unauthenticated one
        // (an `auth: none` listener) gets in only where the server says `anonymous: true`.
        let allowed = match &ctx.principal {
            Some(p) => vs.access.matches(&p.caller()),
            None => vs.anonymous,
        };
        if !allowed {
            return Err(Reject::ServerNotAllowed {
                server: vs.name.clone(),
                subject: ctx
                    .principal
                    .as_ref()
                    .map_or_else(String::new, |p| p.subject.clone()),
            });
        }
    }

    // 4. Method and media types, before buffering any body. GET and DELETE carry none: one
    //    that did would be forwarded unread on a plain route.
    let req = session.req_header();
    if req.method == Method::GET || req.method == Method::DELETE {
        guard::check_no_body(
            header_str(req, header::CONTENT_LENGTH),
            req.headers.contains_key(header::TRANSFER_ENCODING),
        )?;
    }
    match (&req.method, endpoint) {
        (&Method::POST, _) => {}
        (&Method::GET, Endpoint::Route(route)) => {
            guard::check_get_headers(header_str(req, header::ACCEPT))?;
            ctx.stream = true;
            ctx.method = McpMethod::Stream;
            credential(ctx, runtime, route.upstream).await?;
            return Ok(Admitted::Proxy);
        }
        (&Method::DELETE, Endpoint::Route(route)) => {
            ctx.method = McpMethod::EndSession;
            credential(ctx, runtime, route.upstream).await?;
            return Ok(Admitted::Proxy);
        }
        (&Method::DELETE, Endpoint::Virtual(_, vs)) => {
            ctx.method = McpMethod::EndSession;
            let ended = vserver::end_session(
                shared,
                runtime,
                vs,
                ctx,
                header_str(req, headers::MCP_SESSION_ID),
            )?;
            Box::pin(vserver::close_upstream_sessions(
                shared, runtime, ctx, ended,
            ))
            .await;
            return Ok(Admitted::Local {
                status: 200,
                content_type: "application/json",
                body: bytes::Bytes::from_static(b"{}"),
                session: None,
            });
        }
        (&Method::GET, Endpoint::Virtual(_, vs)) => {
            ctx.method = McpMethod::Stream;
            guard::check_get_headers(header_str(req, header::ACCEPT))?;
            vserver::check_session(
                shared,
                runtime,
                vs,
                ctx,
                header_str(req, headers::MCP_SESSION_ID),
            )?;
            return Ok(Admitted::VirtualStream {
                server: vs.name.clone(),
            });
        }
        (m, _) => {
            return Err(Reject::MethodNotAllowed {
                method: crate::error::clip(m.as_str()),
                on: crate::error::PathKind::McpEndpoint,
            })
        }
    }
    guard::check_post_headers(
        header_str(req, header::CONTENT_TYPE),
        header_str(req, header::ACCEPT),
    )?;
    guard::check_body_representation(
        req.headers.get_all(header::CONTENT_TYPE).iter().count(),
        req.headers
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .map(|v| v.to_str().unwrap_or("(not text)")),
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

    // 7. Parse strictly (one meaning for every parser: no duplicate keys, bounded depth),
    //    then method, id and tool name, borrowed from the body.
    let call = match jsonrpc::parse(&ctx.body, runtime.config.limits.max_json_depth) {
        Ok(c) => c,
        Err(failure) => {
            ctx.id = failure.id; // so the error answer carries the request's id
            return Err(failure.reject);
        }
    };
    ctx.id = call.id.clone();
    ctx.method = call.method;
    // Metadata headers must say what the body says: the upstream (or anything routing on
    // the headers) must not see a different request than the one decided on here.
    headers::check_request(&session.req_header().headers, &call, &ctx.body)?;
    ctx.call = Some(call);

    // 8. A virtual server answers most messages itself and routes tools/call by name.
    if let Endpoint::Virtual(i, _) = endpoint {
        let sid = header_str(session.req_header(), headers::MCP_SESSION_ID).map(str::to_string);
        match vserver::handle(shared, runtime, i, ctx, sid.as_deref()).await? {
            vserver::Action::Reply { body, session } => {
                return Ok(Admitted::Local {
                    status: 200,
                    content_type: "application/json",
                    body,
                    session,
                })
            }
            vserver::Action::Accepted => {
                return Ok(Admitted::Local {
                    status: 202,
                    content_type: "application/json",
                    body: bytes::Bytes::new(),
                    session: None,
                })
            }
            vserver::Action::Forward => {}
        }
    }

    // 9. The caller's credential for this upstream, last: only well-formed requests cost a
    //    token exchange.
    let Some(upstream) = ctx.upstream else {
        return Err(Reject::Internal("no upstream chosen".into()));
    };
    credential(ctx, runtime, upstream).await?;
    if ctx.vserver.is_some() {
        ctx.upstream_session = vserver::upstream_session(shared, runtime, ctx).await?;
    }

    // The replaced body of a virtual-server call is sent by us when it does not fit the
    // retry buffer either way; small ones are substituted in request_body_filter.
    if session.retry_buffer_truncated() || (ctx.body_replaced && ctx.body.len() > 64 * 1024) {
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

fn header_str(req: &pingora::http::RequestHeader, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The virtual servers `listener` serves, with their indices in `config.virtual_servers`.
fn served<'a>(
    listener: &'a Listener,
    config: &'a crate::config::Config,
) -> impl Iterator<Item = (usize, &'a crate::config::VirtualServer)> {
    listener
        .virtual_servers
        .iter()
        .filter_map(|&i| config.virtual_servers.get(i).map(|v| (i, v)))
}

/// The 404 for a path that is no MCP endpoint here. What the listener does serve goes to the
/// debug log for the operator, not to the (unauthenticated) caller.
fn no_route(listener: &Listener, config: &crate::config::Config, path: &str) -> Reject {
    let path = crate::error::clip(path);
    if log::log_enabled!(log::Level::Debug) {
        let served: Vec<&str> = listener
            .routes
            .iter()
            .map(|r| r.path.as_str())
            .chain(served(listener, config).map(|(_, v)| v.route.as_str()))
            .collect();
        log::debug!(
            "listener {}: no MCP endpoint at {path}; it serves {}",
            listener.name,
            served.join(", ")
        );
    }
    Reject::NoRoute { path }
}
