//! The Pingora `ProxyHttp` implementation: a thin dispatcher over plain modules.
//!
//! Only this module tree touches `pingora::proxy::Session`. Phase by phase:
//!
//! | phase | module | what |
//! |---|---|---|
//! | `request_filter` | [`admit`], [`forward`], [`respond`] | route, guard, read + parse body; reject, or forward a >64 KiB body itself |
//! | `upstream_peer` | [`crate::upstreams`] | clone the pre-built peer of the chosen upstream |
//! | `upstream_request_filter` | [`outbound`] | upstream path, `Host`, drop `Origin` |
//! | `upstream_response_filter` | here | note when the upstream's headers arrived |
//! | `response_filter` / `response_body_filter` | [`relay`] | SSE headers, 5xx to JSON-RPC error, gateway ids for server-to-client requests on virtual servers' call streams |
//! | `fail_to_proxy` | [`respond`] | connect/timeout/reset to a JSON-RPC error naming the upstream |
//! | `logging` | [`crate::metrics`], [`crate::quota`], [`trail`] | the one place request metrics are recorded; quota permits given back, metered costs charged; the audit record queued |

mod admit;
pub mod ctx;
mod forward;
mod heal;
mod held;
pub mod mrtr;
mod outbound;
mod relay;
mod respond;
mod stream;
mod trail;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

use crate::error::Reject;
use crate::metrics::{Outcome, RequestRecord};
use crate::state::Shared;
use ctx::RequestCtx;

/// One listener's MCP proxy. Holds the shared state and which listener it serves.
pub struct McpGateway {
    shared: Arc<Shared>,
    listener: usize,
}

impl std::fmt::Debug for McpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpGateway")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl McpGateway {
    pub fn new(shared: Arc<Shared>, listener: usize) -> McpGateway {
        McpGateway { shared, listener }
    }
}

fn internal(msg: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InternalError, msg)
}

#[async_trait]
impl ProxyHttp for McpGateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let runtime = self.shared.runtime.load_full();
        ctx.runtime = Some(runtime.clone());
        match admit::admit(session, ctx, &self.shared, &runtime, self.listener).await {
            Ok(admit::Admitted::Proxy) => Ok(false),
            Ok(admit::Admitted::Local {
                status,
                content_type,
                body,
                session: sid,
            }) => {
                respond::local(session, status, content_type, body, sid.as_deref()).await?;
                Ok(true)
            }
            Ok(admit::Admitted::VirtualStream {
                server,
                session: (digest, expires),
            }) => {
                let principal = ctx.principal.as_deref();
                let events = match crate::vserver::events::receiver(
                    &self.shared,
                    digest,
                    expires,
                    principal,
                ) {
                    Ok(r) => r,
                    Err(reject) => {
                        respond::reject(session, ctx, &reject).await?;
                        return Ok(true);
                    }
                };
                Box::pin(stream::serve(session, &self.shared, &server, ctx, events)).await?;
                Ok(true)
            }
            Ok(admit::Admitted::Listen { server, listen }) => {
                Box::pin(stream::listen(session, &self.shared, &server, ctx, &listen)).await?;
                Ok(true)
            }
            Ok(admit::Admitted::Bridge { caller }) => {
                Box::pin(mrtr::start(&self.shared, session, ctx, caller)).await?;
                Ok(true)
            }
            Ok(admit::Admitted::Resume) => {
                Box::pin(mrtr::resume(&self.shared, session, ctx)).await?;
                Ok(true)
            }
            Ok(admit::Admitted::ForwardBuffered) => {
                Box::pin(forward::forward_buffered(&self.shared, session, ctx)).await?;
                Ok(true)
            }
            Err(reject) => {
                // Refused after its decision passed (an upstream session that could not be
                // opened, a full in-flight table): nothing was sent, so nothing ran.
                if ctx.decision.is_some() {
                    give_back(&self.shared, ctx).await;
                }
                respond::reject(session, ctx, &reject).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(target) = &ctx.target else {
            return Err(internal("upstream_peer called without a route"));
        };
        let stream = target.exchange == crate::decision::Exchange::Stream;
        Ok(Box::new(target.upstream.peer(stream).clone()))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if heal::needs_reopen(ctx) {
            // Boxed: this rare path's future is large, and inline it would be copied into
            // every request's `upstream_request_filter` future (measured: ~11,000 instructions
            // of memcpy per request).
            Box::pin(heal::reopen(&self.shared, ctx)).await?;
        }
        ctx.timings.forwarded_at = Some(Instant::now());
        outbound::request_header(req, ctx)
    }

    /// Substitute a rewritten body (virtual-server `tools/call`) for the replayed original.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if ctx.body_replaced {
            // `None` would end the upstream body early; an empty chunk means "nothing yet".
            *body = Some(if end_of_stream {
                ctx.body.clone()
            } else {
                Bytes::new()
            });
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.timings.upstream_header_at = Some(Instant::now());
        ctx.upstream_status = Some(resp.status.as_u16());
        if heal::is_session_lost(ctx, resp.status.as_u16()) {
            // The upstream lost our session (it restarted): resend once on a new session
            // when the tool is safe to run again, otherwise say so clearly.
            return Err(heal::session_lost(&self.shared, ctx));
        }
        // Answers the gateway replaces whole (delegated 401, body-less 5xx) are turned into an
        // error here, before any header goes out; `fail_to_proxy` writes `ctx.pending`.
        if let Some(reject) = relay::early_reject(resp, ctx) {
            ctx.pending = Some(reject);
            return Err(Error::explain(
                ErrorType::HTTPStatus(502),
                "upstream answer replaced by the gateway",
            ));
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        relay::response_header(resp, ctx)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        relay::response_body(body, end_of_stream, ctx);
        held::refuse_input(&self.shared, ctx);
        Ok(None)
    }

    /// Retry only what is safe to run twice: read-only MCP methods (and the GET stream) whose
    /// body we still hold, on a pooled connection the upstream closed (the stale keep-alive
    /// race). A `tools/call` the upstream may already have executed is never resent.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("upstream peer {peer}"));
        if heal::take_retry(ctx) {
            // Self-healing: one more attempt, on a new upstream session.
            e.set_retry(true);
            return e;
        }
        if ctx.pending.is_none()
            && !session.as_ref().retry_buffer_truncated()
            && ctx.method.is_safe_to_retry()
        {
            e.retry.decide_reuse(client_reused);
        } else {
            e.set_retry(false);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let reject = match ctx.pending.take() {
            Some(r) => Some(r),
            None => respond::upstream_reject(ctx, e),
        };
        let client_gone = matches!(
            (e.esource(), e.etype()),
            (
                pingora::ErrorSource::Downstream,
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed
            )
        );
        if client_gone {
            ctx.outcome = Outcome::ClientClosed;
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        give_back_if_undelivered(&self.shared, ctx, e).await;
        let reject = reject.unwrap_or_else(|| {
            Reject::Internal(format!("proxying failed: {}", e.etype().as_str()))
        });
        if respond::final_header_sent(session) {
            // Headers are out (e.g. an SSE stream cut mid-way): all we can do is close.
            ctx.outcome = Outcome::UpstreamError;
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let code = reject.http_status();
        if let Err(write_err) = respond::reject(session, ctx, &reject).await {
            log::debug!(
                "could not send the error response: {write_err} (trace {})",
                ctx.trace_id()
            );
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if e.is_some() && ctx.outcome == Outcome::Ok {
            ctx.outcome = Outcome::UpstreamError;
        }
        // The call's quota debts: metered costs from the response's size, then its
        // concurrency permits back (they also go back if the context drops without this).
        if let Some(d) = ctx.decision.as_mut() {
            d.quota.finish(ctx.response_bytes);
        }
        // A modern client that left cancels its call upstream (frees the slot when sent).
        held::on_client_gone(&self.shared, ctx);
        // A finished call can no longer be cancelled.
        if let Some(k) = ctx.in_flight.take() {
            crate::vserver::reply::done(&self.shared, k);
        }
        if let Some(step) = ctx.refused_by {
            // The decision's refusing step: in the audit record and a bounded metric label.
            log::debug!(
                "{} to {} refused at decision step {} (trace {})",
                ctx.method.as_label(),
                ctx.upstream_name(),
                step.as_label(),
                ctx.trace_id()
            );
        }
        if matches!(ctx.outcome, Outcome::UpstreamError | Outcome::InternalError) {
            log::debug!(
                "{} to {} ended {} (trace {})",
                ctx.method.as_label(),
                ctx.upstream_name(),
                ctx.outcome.as_label(),
                ctx.trace_id()
            );
        }
        let t = ctx.timings;
        // Gateway time: until forwarded, or (answered by the gateway) until now; not for a
        // stream the gateway served itself, whose length is the client's choice.
        let added = match t.forwarded_at {
            Some(f) => Some(f.saturating_duration_since(t.started)),
            None if matches!(
                ctx.method,
                crate::mcp::McpMethod::Stream | crate::mcp::McpMethod::SubscriptionsListen
            ) =>
            {
                None
            }
            None => Some(t.started.elapsed()),
        };
        let upstream_latency = match (t.forwarded_at, t.upstream_header_at) {
            (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
            _ => None,
        };
        // A credential counts as released once the request went out on a connection.
        let credential_mode = match (&ctx.target, ctx.credential()) {
            (Some(target), Some(_)) if t.forwarded_at.is_some() => {
                Some(target.upstream.config.auth.mode.as_label())
            }
            _ => None,
        };
        self.shared.metrics.record(&RequestRecord {
            credential_mode,
            virtual_server: ctx.virtual_server_name(),
            upstream: ctx.upstream_name(),
            method: ctx.method,
            tool: ctx.tool_label(),
            refused_by: ctx.refused_by,
            outcome: ctx.outcome,
            added,
            upstream_latency,
            upstream_error: ctx.upstream_error,
        });
        if self.shared.audit.enabled() {
            let facts = trail::facts(session, ctx, added, upstream_latency);
            self.shared.audit.submit_request(facts).await;
        }
    }
}

/// A call that never reached the upstream (`e` came before any byte could be delivered) did
/// not run: [`give_back`]. Not after a self-healing resend: its first attempt was delivered.
pub(crate) async fn give_back_if_undelivered(shared: &Shared, ctx: &mut RequestCtx, e: &Error) {
    if respond::never_reached_upstream(e) && ctx.heal == heal::Heal::Idle {
        give_back(shared, ctx).await;
    }
}

/// A call whose decision passed and that then did not run (refused by a later step, or never
/// delivered): what the decision took goes back, as `decision` does for its own later steps.
/// Its quota charges ([`crate::quota::Held::refund`]), so an outage does not use up a
/// caller's rate or budget; its approval, so the identical retry, once the upstream is back,
/// needs no second approver. Taken out of the decision, so given back at most once.
pub(crate) async fn give_back(shared: &Shared, ctx: &mut RequestCtx) {
    if let Some(d) = ctx.decision.as_mut() {
        d.quota.refund();
    }
    let (Some(a), Some(rt)) = (
        ctx.decision.as_mut().and_then(|d| d.approval.take()),
        ctx.runtime.as_ref(),
    ) else {
        return;
    };
    match shared.approvals.restore(rt, &a).await {
        Ok(()) => shared
            .metrics
            .approval(crate::metrics::ApprovalEvent::Restored),
        Err(e) => log::warn!(
            "approval {} could not be given back after the call did not run: {e}",
            a.id
        ),
    }
}
