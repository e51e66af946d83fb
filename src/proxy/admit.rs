//! Request side, run in `request_filter`: classify the request, check and read it, resolve it
//! to a [`Target`] and have [`decision::decide`] rule on it. Everything here either fills
//! [`RequestCtx`] and returns [`Admitted`], or returns the [`Reject`] to answer with.
//!
//! The steps, in order, each saying why it sits where it does:
//!
//! 1. [`classify`] the path against the listener's endpoints (no Pingora `Session`): the
//!    public protected-resource metadata, an MCP endpoint, or 404.
//! 2. Host/Origin guard, before anything else is processed for a browser-borne request.
//! 3. Authenticate before reading any body, so anonymous clients can't make us buffer; then
//!    a virtual server's access list.
//! 4. Method and media types; GET and DELETE are dispatched here (they carry no message).
//! 5. Size, `100 Continue`, read the body (bounded), strict parse, metadata headers.
//! 6. Resolve: a plain route's target is its upstream; a virtual server answers most
//!    messages itself and resolves `tools/call` by exposed name ([`crate::vserver`]).
//! 7. [`decision::decide`]: the one ordered list of checks (visibility, availability, the
//!    bytes the upstream runs, argument policy, quotas, credential).
//! 8. A virtual server's upstream session, opened with the decided credential.

use std::sync::Arc;

use bytes::BytesMut;
use http::{header, Method};
use pingora::proxy::Session;

use super::ctx::{RequestCtx, UpstreamSession};
use super::heal::RETRY_BUFFER;
use crate::auth::Credentials;
use crate::decision::{self, Exchange, Message, SessionBinding, Target};
use crate::endpoints::{Endpoint, EndpointKind, ListenerEndpoints};
use crate::error::Reject;
use crate::guard;
use crate::mcp::{headers, jsonrpc, McpMethod};
use crate::state::{Runtime, Shared};
use crate::vserver;

/// How an admitted request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Pingora proxies it; a POST body is replayed from the retry buffer.
    Proxy,
    /// The body was larger than Pingora's 64 KiB retry buffer: forward it ourselves.
    ForwardBuffered,
    /// A virtual server's server-to-client stream (tools/list_changed), served by the gateway.
    /// `session`: the client session's (digest, expiry), for its relayed upstream events.
    VirtualStream {
        server: String,
        session: (crate::digest::Digest, u64),
    },
    /// The gateway answers itself (protected-resource metadata, virtual servers).
    Local {
        status: u16,
        content_type: &'static str,
        body: bytes::Bytes,
        /// `Mcp-Session-Id` to send (a virtual server's `initialize`).
        session: Option<String>,
    },
    /// A 2026-07-28 `subscriptions/listen` stream of a virtual server, served by the gateway.
    Listen {
        server: String,
        listen: Box<vserver::listen::Listen>,
    },
    /// A 2026-07-28 call that may need input from its client: forwarded by `proxy::mrtr`
    /// (`caller`: the modern binding's key).
    Bridge { caller: crate::digest::Digest },
    /// The retry of a call parked by `proxy::mrtr`, opened by its decision
    /// (`Decision::resumed`).
    Resume,
}

/// What a request path addresses on a listener.
#[derive(Debug, Clone)]
pub(crate) enum Classified {
    /// The public RFC 9728 metadata of this endpoint (only when authentication is configured).
    Metadata(Arc<Endpoint>),
    /// An MCP endpoint.
    Mcp(Arc<Endpoint>),
}

/// Classify a request path: metadata first (it is public: clients fetch it to learn how to
/// authenticate), then an MCP endpoint by exact path, else 404.
pub(crate) fn classify(
    endpoints: &ListenerEndpoints,
    path: &str,
    auth_configured: bool,
) -> Result<Classified, Reject> {
    if auth_configured {
        if let Some(e) = endpoints.with_metadata_at(path) {
            return Ok(Classified::Metadata(e.clone()));
        }
    }
    match endpoints.at(path) {
        Some(e) => Ok(Classified::Mcp(e.clone())),
        None => Err(no_route(endpoints, path)),
    }
}

/// Check and resolve one request. Runs first in `request_filter`.
pub(crate) async fn admit(
    session: &mut Session,
    ctx: &mut RequestCtx,
    shared: &Arc<Shared>,
    runtime: &Arc<Runtime>,
    listener_index: usize,
) -> Result<Admitted, Reject> {
    let (Some(listener), Some(endpoints)) = (
        runtime.config.listeners.get(listener_index),
        runtime.endpoints.get(listener_index),
    ) else {
        return Err(Reject::Internal("listener index out of range".into()));
    };
    let req = session.req_header();
    // The request's trace first, so every log line and audit record of it (refusals
    // included) carries its id. A missing or invalid `traceparent` starts a new trace.
    ctx.trace = Some(crate::trace::Trace::from_headers(
        req.headers
            .get_all(crate::trace::TRACEPARENT)
            .iter()
            .map(http::HeaderValue::as_bytes),
    ));

    // 1. Classify.
    let endpoint = match classify(endpoints, req.uri.path(), runtime.config.auth.is_some())? {
        Classified::Metadata(e) => {
            if req.method != Method::GET {
                return Err(Reject::MethodNotAllowed {
                    method: crate::error::clip(req.method.as_str()),
                    on: crate::error::PathKind::ResourceMetadata,
                });
            }
            let auth = runtime
                .config
                .auth
                .as_ref()
                .ok_or_else(|| Reject::Internal("metadata without auth".into()))?;
            return Ok(Admitted::Local {
                status: 200,
                content_type: "application/json",
                body: crate::auth::metadata::document(auth, e.resource_url.as_deref()).into(),
                session: None,
            });
        }
        Classified::Mcp(e) => e,
    };
    ctx.endpoint = Some(endpoint.clone());

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
        match auth
            .authenticate(creds, endpoint.resource_url.as_deref())
            .await
        {
            Ok(p) => ctx.principal = Some(p),
            Err(reject) => {
                shared
                    .metrics
                    .auth_failed(crate::auth::failure_reason(&creds, &reject));
                return Err(reject);
            }
        }
    }
    if let EndpointKind::Virtual { server: vs, .. } = &endpoint.kind {
        // An empty access list means every *authenticated* caller; an unauthenticated one
        // (an `auth: none` listener) gets in only where the server says `anonymous: true`.
        let allowed = match &ctx.principal {
            Some(p) => vs.access.matches(&p.caller()),
            None => vs.anonymous,
        };
        if !allowed {
            shared
                .metrics
                .auth_failed(crate::metrics::AuthFailure::ServerNotAllowed);
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
    let principal = ctx.principal.clone();
    match (&req.method, &endpoint.kind) {
        (&Method::POST, _) => {}
        (&Method::GET, EndpointKind::Route(upstream)) => {
            guard::check_get_headers(header_str(req, header::ACCEPT))?;
            ctx.method = McpMethod::Stream;
            let target = Target::route(upstream.clone(), Exchange::Stream);
            decide(ctx, target, shared, runtime, &session.req_header().headers).await?;
            return Ok(Admitted::Proxy);
        }
        (&Method::DELETE, EndpointKind::Route(upstream)) => {
            ctx.method = McpMethod::EndSession;
            let target = Target::route(upstream.clone(), Exchange::EndSession);
            decide(ctx, target, shared, runtime, &session.req_header().headers).await?;
            return Ok(Admitted::Proxy);
        }
        (&Method::DELETE, EndpointKind::Virtual { server, .. }) => {
            ctx.method = McpMethod::EndSession;
            let ended = vserver::session::end(
                shared,
                runtime,
                server,
                principal.as_deref(),
                header_str(req, headers::MCP_SESSION_ID),
            )?;
            Box::pin(vserver::session::close_upstream_sessions(
                shared,
                runtime,
                principal.as_deref(),
                ended,
            ))
            .await;
            return Ok(Admitted::Local {
                status: 200,
                content_type: "application/json",
                body: bytes::Bytes::from_static(b"{}"),
                session: None,
            });
        }
        (&Method::GET, EndpointKind::Virtual { server, .. }) => {
            ctx.method = McpMethod::Stream;
            guard::check_get_headers(header_str(req, header::ACCEPT))?;
            let session = vserver::session::check(
                shared,
                runtime,
                server,
                principal.as_deref(),
                header_str(req, headers::MCP_SESSION_ID),
            )?;
            return Ok(Admitted::VirtualStream {
                server: server.name.clone(),
                session,
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

    // Retry buffering must be on *before* reading, or Pingora has nothing to replay upstream
    // (pingora-0.9 notes §2).
    session.enable_retry_buffering();
    // Grow with the data: a declared length alone must not reserve memory.
    let mut body = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit).min(RETRY_BUFFER));
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

    // Parse strictly (one meaning for every parser: no duplicate keys, bounded depth), then
    // method, id and tool name, borrowed from the body.
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
    let checked = headers::check_request(&session.req_header().headers, &call, &ctx.body)?;
    let call = &*ctx.call.insert(call);

    // 6. Resolve to a target.
    let target = match &endpoint.kind {
        EndpointKind::Route(upstream) => Target::route(upstream.clone(), Exchange::Message),
        EndpointKind::Virtual { index, server } => {
            let request = vserver::Request {
                server,
                index: *index,
                principal: principal.as_deref(),
                body: &ctx.body,
                call,
                session_header: header_str(session.req_header(), headers::MCP_SESSION_ID),
                headers: &session.req_header().headers,
                checked,
            };
            match vserver::handle(shared, runtime, request).await? {
                vserver::Answer::Reply { body, session } => {
                    return Ok(Admitted::Local {
                        status: 200,
                        content_type: "application/json",
                        body,
                        session,
                    })
                }
                vserver::Answer::Accepted => {
                    return Ok(Admitted::Local {
                        status: 202,
                        content_type: "application/json",
                        body: bytes::Bytes::new(),
                        session: None,
                    })
                }
                vserver::Answer::Forward(target) => target,
                vserver::Answer::Listen(listen) => {
                    return Ok(Admitted::Listen {
                        server: server.name.clone(),
                        listen,
                    })
                }
                vserver::Answer::Relay { target, body, call } => {
                    // The bytes decided on are the ones that go upstream (id restored).
                    if body != ctx.body {
                        ctx.body = body;
                        ctx.id = call.id.clone();
                        ctx.body_replaced = true;
                    }
                    ctx.call = Some(call);
                    target
                }
            }
        }
    };

    // A 2026-07-28 client's log level and capabilities, from the envelope `vserver::handle`
    // read (step 3 may take it out of the bytes). Its log level holds whichever era the
    // upstream speaks: the spec sends no log message to a client that asked for none.
    let modern = target.modern();
    if let Some(m) = modern {
        ctx.log_floor = Some(m.log_floor);
    }
    let modern_caps = modern.map(|m| m.caps).unwrap_or_default();

    // 7. Decide.
    decide(ctx, target, shared, runtime, &session.req_header().headers).await?;

    // The retry of a call waiting for its client's input goes to that call (`mrtr`).
    if ctx.decision.as_ref().is_some_and(|d| d.resumed.is_some()) {
        return Ok(Admitted::Resume);
    }

    // 8. The upstream session of a virtual server's call, opened with the decided credential.
    let binding = ctx.target.as_ref().map(|t| (t.session, t.upstream.clone()));
    let mut bridge_caller = None;
    if let Some((SessionBinding::Gateway { digest, expires }, upstream)) = binding {
        let is_request = ctx
            .call
            .as_ref()
            .is_some_and(|c| c.kind == jsonrpc::MessageKind::Request);
        let modern = ctx
            .target
            .as_ref()
            .is_some_and(crate::decision::Target::modern_client);
        let name = upstream.name().to_string();
        // A call can be cancelled until its answer ends (`logging` forgets it). A modern
        // caller's calls share the sessions held for it, so each takes a session slot where
        // its id is not in flight (`reply::reserve_modern`): the upstream routes answers by id.
        let digest = match ctx.id_json().filter(|_| is_request) {
            Some(id) if modern => {
                bridge_caller = Some(digest);
                // Upstream sessions declare the caller's capabilities: one set per session.
                let base = if modern_caps.0 == 0 {
                    digest
                } else {
                    crate::digest::keyed(&[b"modern-caps", &digest.to_le_bytes(), &[modern_caps.0]])
                };
                let (slot, key) = vserver::reply::reserve_modern(shared, base, expires, id, &name)?;
                ctx.in_flight = Some(key);
                if let Some(t) = ctx.target.as_mut() {
                    t.session = SessionBinding::Gateway {
                        digest: slot,
                        expires,
                    };
                }
                slot
            }
            Some(id) => {
                ctx.in_flight = vserver::reply::track(shared, digest, expires, id, &name);
                digest
            }
            None => digest,
        };
        let sid = vserver::session::upstream_session(
            shared,
            digest,
            expires,
            &upstream,
            ctx.credential(),
            if modern {
                modern_caps
            } else {
                vserver::session::client_caps(shared, runtime, digest)
            },
        )
        .await?;
        // A resource subscription: recorded for the client session (capped), and for a
        // subscribe the upstream's stream followed before the request goes out, so the
        // updates reach the client's GET stream (`vserver::events`). Boxed: rare.
        if matches!(
            ctx.method,
            McpMethod::ResourcesSubscribe | McpMethod::ResourcesUnsubscribe
        ) {
            let own = ctx
                .target
                .as_ref()
                .and_then(|t| t.item.as_ref())
                .map_or("", |i| i.own.as_str());
            let server = ctx
                .target
                .as_ref()
                .and_then(|t| t.item.as_ref())
                .map_or("", |i| i.server.name.as_str());
            Box::pin(vserver::events::subscription(
                shared,
                server,
                ctx.principal.as_ref(),
                digest,
                expires,
                &upstream,
                sid.as_deref(),
                ctx.credential(),
                own,
                ctx.method == McpMethod::ResourcesSubscribe,
                ctx.exposes_uris(),
            ))
            .await?;
        }
        ctx.upstream_session = UpstreamSession::Gateway(sid);
    }
    if let Some(caller) = bridge_caller.filter(|_| super::mrtr::bridged(ctx, modern_caps)) {
        return Ok(Admitted::Bridge { caller });
    }

    // A rewritten body is sent by us when it does not fit the retry buffer either way; small
    // ones are substituted in request_body_filter.
    if session.retry_buffer_truncated() || (ctx.body_replaced && ctx.body.len() > RETRY_BUFFER) {
        Ok(Admitted::ForwardBuffered)
    } else {
        Ok(Admitted::Proxy)
    }
}

/// Run the decision on `target` and record it: the target, the decision (with the rewritten
/// body in place of the client's), or the step that refused.
async fn decide(
    ctx: &mut RequestCtx,
    target: Target,
    shared: &Shared,
    runtime: &Runtime,
    headers: &http::HeaderMap,
) -> Result<(), Reject> {
    let message = Message {
        body: &ctx.body,
        call: ctx.call.as_ref(),
        headers: Some(headers),
    };
    let outcome = decision::decide(
        &target,
        message,
        ctx.principal.as_deref(),
        runtime,
        shared.stores(),
    )
    .await;
    // The tool's catalog name labels the metrics once the caller may see it (a hidden tool
    // stays `unknown`, like a missing one).
    if outcome
        .as_ref()
        .map_or_else(|r| r.step != decision::Step::Visibility, |_| true)
    {
        ctx.tool = target.tool.as_ref().map(|t| super::ctx::ToolRef {
            catalog: t.catalog.clone(),
            position: t.position,
        });
    }
    // A call refused before its credential step never named an upstream to the client, and
    // its metrics say `upstream="none"` (a hidden tool must look like a missing one there
    // too); from the credential step on, the upstream is part of the answer.
    if outcome
        .as_ref()
        .map_or_else(|r| r.step == decision::Step::Credential, |_| true)
    {
        ctx.target = Some(target);
    } else {
        ctx.refused_target = Some(target);
    }
    match outcome {
        Ok(mut d) => {
            if d.approval.is_some() {
                shared.metrics.approval(crate::metrics::ApprovalEvent::Used);
            }
            if let Some((body, call)) = d.rewritten.take() {
                ctx.body = body;
                ctx.id = call.id.clone();
                ctx.call = Some(call);
                ctx.body_replaced = true;
            }
            ctx.decision = Some(d);
            Ok(())
        }
        Err(refusal) => {
            ctx.refused_by = Some(refusal.step);
            match &refusal.reject {
                Reject::PolicyViolation { rule, .. } => shared.metrics.policy_denied(rule),
                Reject::ApprovalRequired { .. } => shared
                    .metrics
                    .approval(crate::metrics::ApprovalEvent::Required),
                _ => {}
            }
            Err(refusal.reject)
        }
    }
}

fn header_str(req: &pingora::http::RequestHeader, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The 404 for a path that is no MCP endpoint here. What the listener does serve goes to the
/// debug log for the operator, not to the (unauthenticated) caller.
fn no_route(endpoints: &ListenerEndpoints, path: &str) -> Reject {
    let path = crate::error::clip(path);
    if log::log_enabled!(log::Level::Debug) {
        let served: Vec<&str> = endpoints.paths().collect();
        log::debug!(
            "no MCP endpoint at {path}; this listener serves {}",
            served.join(", ")
        );
    }
    Reject::NoRoute { path }
}

#[cfg(test)]
mod tests {
    use super::{classify, Classified};
    use crate::endpoints::EndpointKind;
    use crate::error::Reject;

    fn runtime(auth: bool) -> crate::state::Runtime {
        let (listener, auth) = if auth {
            (
                "",
                "auth:\n  resource: https://mcp.example.com\n  api_keys:\n    - { sha256: \"0000000000000000000000000000000000000000000000000000000000000000\", subject: a }\n",
            )
        } else {
            ("\n    auth: none", "")
        };
        let yaml = format!(
            r#"
listeners:
  - address: 127.0.0.1:1{listener}
    routes: [{{ path: /mcp, upstream: crm }}]
upstreams:
  - {{ name: crm, url: "http://127.0.0.1:2/mcp" }}
virtual_servers:
  - {{ name: s, route: /v/s/mcp }}
{auth}"#
        );
        let config = crate::config::from_yaml(&yaml).unwrap();
        let http = crate::http_client::HttpClient::default();
        crate::state::Runtime::new(config, &http, Default::default()).unwrap()
    }

    #[test]
    fn a_path_is_a_route_a_virtual_server_its_metadata_or_404() {
        let rt = runtime(true);
        let eps = &rt.endpoints[0];
        match classify(eps, "/mcp", true) {
            Ok(Classified::Mcp(e)) => {
                assert!(matches!(&e.kind, EndpointKind::Route(u) if u.name() == "crm"))
            }
            other => panic!("{other:?}"),
        }
        match classify(eps, "/v/s/mcp", true) {
            Ok(Classified::Mcp(e)) => {
                assert!(
                    matches!(&e.kind, EndpointKind::Virtual { server, .. } if server.name == "s")
                )
            }
            other => panic!("{other:?}"),
        }
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource/v/s/mcp",
        ] {
            assert!(
                matches!(classify(eps, path, true), Ok(Classified::Metadata(_))),
                "{path}"
            );
        }
        assert!(matches!(
            classify(eps, "/other", true),
            Err(Reject::NoRoute { path }) if path == "/other"
        ));
    }

    #[test]
    fn metadata_is_served_only_when_authentication_is_configured() {
        let rt = runtime(false);
        assert!(matches!(
            classify(
                &rt.endpoints[0],
                "/.well-known/oauth-protected-resource/mcp",
                false
            ),
            Err(Reject::NoRoute { .. })
        ));
    }
}
