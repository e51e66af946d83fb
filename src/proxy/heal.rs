//! Self-healing: an upstream that lost the gateway's session (it restarted) answers 404; the
//! gateway opens a new upstream session and resends the call once, when that is harmless.
//!
//! The retry rule ([`may_resend`]): the tool is annotated read-only or idempotent, this is
//! the first attempt, and the body is still replayable (it fits Pingora's 64 KiB retry
//! buffer). Anything else is answered 502 saying the call was not resent. The three Pingora
//! phases involved each call one function here:
//!
//! | phase | function | state |
//! |---|---|---|
//! | `upstream_response_filter`, 404 on a gateway session | [`session_lost`] | `Idle` → `Armed` (or a 502) |
//! | `error_while_proxy` | [`take_retry`] | `Armed` → `Retried`, session `Reopen` |
//! | `upstream_request_filter` of the resend | [`reopen`] | a new upstream session |

use pingora::{Error, ErrorType};

use super::ctx::{RequestCtx, UpstreamSession};
use crate::decision::{RetrySafety, SessionBinding};
use crate::error::Reject;
use crate::metrics::Outcome;
use crate::state::Shared;

/// Pingora's retry buffer: a body larger than this cannot be replayed by the proxy.
pub(crate) const RETRY_BUFFER: usize = 64 * 1024;

/// Where a request is in self-healing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Heal {
    /// Nothing happened (every request but a few).
    #[default]
    Idle,
    /// The upstream lost the session; a resend on a new session is requested.
    Armed,
    /// The resend is under way; no further one.
    Retried,
}

/// The retry rule: resend only what may run twice, once, and only a replayable body.
pub(crate) fn may_resend(retry: RetrySafety, heal: Heal, body_len: usize) -> bool {
    retry == RetrySafety::Safe && heal == Heal::Idle && body_len <= RETRY_BUFFER
}

/// Whether a response status means the upstream lost the gateway's session.
pub(crate) fn is_session_lost(ctx: &RequestCtx, status: u16) -> bool {
    status == 404 && matches!(ctx.upstream_session, UpstreamSession::Gateway(Some(_)))
}

/// The upstream answered 404 to the gateway's session: forget it, and either arm the resend
/// or record the 502 that says why the call was not resent. Returns the error that ends this
/// attempt.
pub(crate) fn session_lost(shared: &Shared, ctx: &mut RequestCtx) -> Box<Error> {
    let Some(target) = &ctx.target else {
        return Error::explain(ErrorType::InternalError, "session lost without a target");
    };
    if let SessionBinding::Gateway { digest, .. } = target.session {
        crate::vserver::session::forget_upstream_session(shared, digest, target.upstream_name());
    }
    if may_resend(target.retry(), ctx.heal, ctx.body.len()) {
        ctx.heal = Heal::Armed;
    } else {
        let why = if target.retry() == RetrySafety::Unsafe {
            "because the tool is not marked read-only or idempotent"
        } else if ctx.body.len() > RETRY_BUFFER {
            "because its body is too large to resend"
        } else {
            "a second time"
        };
        let relayed = ctx
            .call
            .as_ref()
            .is_some_and(|c| c.kind != crate::mcp::jsonrpc::MessageKind::Request);
        let cause = if relayed {
            // A client's answer or cancellation (`vserver::reply`): the request it concerned
            // lived in the lost session, so there is nothing to resend it to.
            "lost the session (it restarted?) and with it the request this message concerned"
                .to_string()
        } else {
            format!(
                "lost the session (it restarted?); the call was not resent {why}: call it again"
            )
        };
        ctx.pending = Some(Reject::Upstream {
            upstream: target.upstream_name().to_string(),
            cause,
            timeout: false,
        });
        ctx.outcome = Outcome::UpstreamError;
    }
    Error::explain(ErrorType::HTTPStatus(502), "upstream session lost")
}

/// In `error_while_proxy`: whether this error is the armed resend. If so the request moves
/// to `Retried` and its upstream session is to be reopened.
pub(crate) fn take_retry(ctx: &mut RequestCtx) -> bool {
    if ctx.heal != Heal::Armed {
        return false;
    }
    ctx.heal = Heal::Retried;
    ctx.upstream_session = UpstreamSession::Reopen;
    true
}

/// Whether the request about to go out is the resend, needing a new upstream session.
pub(crate) fn needs_reopen(ctx: &RequestCtx) -> bool {
    ctx.heal == Heal::Retried && ctx.upstream_session == UpstreamSession::Reopen
}

/// Open the new upstream session for the resend, with the call's credential.
pub(crate) async fn reopen(shared: &Shared, ctx: &mut RequestCtx) -> pingora::Result<()> {
    let opened = match &ctx.target {
        Some(t) => match t.session {
            SessionBinding::Gateway { digest, expires } => {
                crate::vserver::session::upstream_session(
                    shared,
                    digest,
                    expires,
                    &t.upstream,
                    ctx.decision.as_ref().and_then(|d| d.credential.as_ref()),
                    match &ctx.runtime {
                        Some(rt) => crate::vserver::session::client_caps(shared, rt, digest),
                        None => Default::default(),
                    },
                )
                .await
            }
            SessionBinding::Client | SessionBinding::Stateless => Ok(None),
        },
        None => Err(Reject::Internal("resend without a target".into())),
    };
    match opened {
        Ok(sid) => {
            ctx.upstream_session = UpstreamSession::Gateway(sid);
            Ok(())
        }
        Err(r) => {
            ctx.pending = Some(r);
            Err(Error::explain(
                ErrorType::HTTPStatus(502),
                "could not reopen the upstream session",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_safe_first_attempt_with_a_replayable_body_is_resent() {
        assert!(may_resend(RetrySafety::Safe, Heal::Idle, 10));
        assert!(may_resend(RetrySafety::Safe, Heal::Idle, RETRY_BUFFER));
        assert!(!may_resend(RetrySafety::Safe, Heal::Idle, RETRY_BUFFER + 1));
        assert!(!may_resend(RetrySafety::Unsafe, Heal::Idle, 10));
        assert!(!may_resend(RetrySafety::Safe, Heal::Armed, 10));
        assert!(!may_resend(RetrySafety::Safe, Heal::Retried, 10));
    }

    #[test]
    fn the_resend_moves_armed_to_retried_once() {
        let mut ctx = RequestCtx::new();
        assert!(!take_retry(&mut ctx));
        ctx.heal = Heal::Armed;
        ctx.upstream_session = UpstreamSession::Gateway(Some("s".into()));
        assert!(take_retry(&mut ctx));
        assert_eq!(ctx.heal, Heal::Retried);
        assert!(needs_reopen(&ctx));
        assert!(!take_retry(&mut ctx));
    }
}
