//! `logging/setLevel` on a virtual server (handshake era): one client session, several
//! upstream sessions, so the level is fanned out to every upstream of the server that
//! declares `logging`, each on this client session's own session with it (opened if need
//! be) and with the credential [`crate::decision::decide`] chooses for it, all at once. The
//! client gets
//! one answer: `{}` when every upstream took the level, otherwise
//! [`Reject::FanOutFailed`] naming each upstream that did not (the others keep the new
//! level). An upstream that lost the session (404) gets it once more on a new one: setting a
//! level twice is harmless.
//!
//! After an upstream took the level, its server-to-client stream is followed for this client
//! session ([`super::events`]), so its log messages outside calls reach the client's GET
//! stream (those inside a call come on the call's stream, as sent).
//!
//! 2026-07-28 removed `logging/setLevel` (404 + -32601, [`super::modern`]): a modern client
//! asks for log messages per request (`_meta` `io.modelcontextprotocol/logLevel`), and they
//! come on that request's stream.

use crate::decision::{self, Exchange, Message, SessionBinding, Target};
use crate::digest::Digest;
use crate::error::Reject;
use crate::registry::client::{McpClient, UpstreamSession};
use crate::state::{Runtime, Shared};

use super::{list, result, session, Answer, Request};

/// The position of `level` in [`LEVELS`] (0 = debug), `None` for no MCP level.
pub fn level_index(level: &str) -> Option<u8> {
    LEVELS
        .iter()
        .position(|l| *l == level)
        .and_then(|i| u8::try_from(i).ok())
}

/// No level: a log floor above every level (a 2026-07-28 request that asked for none).
pub const NO_LEVEL: u8 = 8;

/// The levels of RFC 5424 that MCP names, lowest first.
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Set the level on every upstream of the server that declares `logging`, all at once
/// (each bounded by its `read_timeout`).
pub(super) async fn set_level(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    digest: Digest,
    expires: u64,
) -> Result<Answer, Reject> {
    let level = crate::mcp::rewrite::string_param(req.body, "level")
        .map(|(l, _)| l)
        .filter(|l| LEVELS.contains(&l.as_str()))
        .ok_or_else(|| {
            Reject::InvalidParams(format!(
                "logging/setLevel needs params.level, one of {}",
                LEVELS.join(", ")
            ))
        })?;
    // Waits for the first discovery: it says which upstreams declare `logging`.
    let cat = list::catalog(shared, runtime, req.index).await?;
    let snapshot = shared.registry.snapshot();
    // Only upstreams this caller sees something of (a tool, prompt or resource): setting a
    // level opens a session there with the caller's credential and follows its log
    // stream, and a failure names it, so an upstream hidden from the caller is left out.
    let class = list::class(req.server, req.principal);
    let sees = |u: usize| {
        cat.entries
            .iter()
            .enumerate()
            .any(|(i, e)| e.upstream == u && cat.visible(req.server, class, i))
            || cat.items.entries.iter().any(|e| {
                e.upstream == u
                    && crate::registry::items::visible(
                        req.server,
                        class,
                        e.kind,
                        &e.upstream_name,
                        &e.own,
                    )
            })
    };
    let binding = SessionBinding::Gateway { digest, expires };
    let targets: Vec<Target> = req
        .server
        .upstreams
        .iter()
        .filter(|&&i| sees(i))
        .filter_map(|&i| runtime.upstreams.get(i))
        .filter(|u| {
            snapshot
                .upstreams
                .get(u.name())
                .is_some_and(|s| s.offers.logging)
        })
        .map(|u| Target {
            upstream: u.clone(),
            exchange: Exchange::Message,
            tool: None,
            session: binding,
            item: None,
        })
        .collect();
    // The session's events entry, before any upstream takes the level: a caller holding
    // its most sessions with events gets 429 (`crate::caps`), not a half-applied level.
    let events = super::events::entry(shared, digest, expires, req.principal)?;
    // All at once: the answer waits for the slowest upstream, not for the sum of them.
    let legs = targets.iter().map(|t| {
        Box::pin(set_one(
            shared, runtime, req, t, digest, expires, &level, &events,
        ))
    });
    let outcomes = join_all(legs.collect()).await;
    let failed: Vec<(String, String)> = targets
        .iter()
        .zip(outcomes)
        .filter_map(|(t, r)| r.err().map(|cause| (t.upstream_name().to_string(), cause)))
        .collect();
    if !failed.is_empty() {
        return Err(Reject::FanOutFailed {
            method: "logging/setLevel",
            failed,
        });
    }
    Ok(Answer::Reply {
        body: result(req.id_json(), b"{}"),
        session: None,
    })
}

/// One upstream: the decision (a target without a tool: only the credential step applies),
/// the upstream session, the request, and the follower of its stream.
#[allow(clippy::too_many_arguments)]
async fn set_one(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    target: &Target,
    digest: Digest,
    expires: u64,
    level: &str,
    events: &std::sync::Arc<super::events::SessionEvents>,
) -> Result<(), String> {
    let message = Message {
        body: req.body,
        call: Some(req.call),
        headers: None,
    };
    let decided = decision::decide(target, message, req.principal, runtime, shared.stores())
        .await
        .map_err(|r| r.reject.to_string())?;
    let credential = decided.credential.as_ref();
    let u = &target.upstream;
    let caps = session::client_caps(shared, runtime, digest);
    let auth = credential
        .and_then(|v| v.to_str().ok())
        .map(|v| (u.config.auth.header.as_str(), v));
    let client = McpClient {
        http: &shared.http,
        url: &u.config.url,
        auth,
        timeout: u.config.read_timeout,
    };
    let params = serde_json::json!({ "level": level });
    let mut sid = None;
    for attempt in 0..2 {
        let id = session::upstream_session(shared, digest, expires, u, credential, caps)
            .await
            .map_err(|r| r.to_string())?;
        let s = UpstreamSession {
            id: id.clone(),
            capabilities: serde_json::Value::Null,
        };
        match client.request(&s, "logging/setLevel", params.clone()).await {
            Ok(_) => {
                sid = Some(id);
                break;
            }
            // The upstream restarted and lost the session: once more on a new one.
            Err(e) if e == "HTTP 404" && attempt == 0 => {
                session::forget_upstream_session(shared, digest, u.name());
            }
            Err(e) => return Err(e),
        }
    }
    let Some(sid) = sid else {
        return Err("the upstream lost the session twice".into());
    };
    let expose = req.server.names == crate::config::Names::Prefixed;
    super::events::follow(
        shared,
        events,
        expires,
        u,
        sid.as_deref(),
        credential,
        expose,
    )
    .await;
    Ok(())
}

/// A 2026-07-28 request's log floor: the level index its
/// `_meta["io.modelcontextprotocol/logLevel"]` (`level`) asks for, or [`NO_LEVEL`] when it
/// asks for none (or names no MCP level): then no log message may reach it.
pub fn floor(level: Option<&str>) -> u8 {
    level.and_then(level_index).unwrap_or(NO_LEVEL)
}

/// Run `futures` concurrently on this task; their outputs in order. (A virtual server has a
/// handful of upstreams: polling each on every wake costs nothing worth a dependency.)
async fn join_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_some() {
                continue;
            }
            match std::pin::Pin::new(f).poll(cx) {
                std::task::Poll::Ready(v) => *out = Some(v),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
