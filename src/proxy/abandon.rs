//! A 2026-07-28 client closing its response stream cancels the request.
//!
//! The modern revision has no `notifications/cancelled` over HTTP: "closing the response
//! stream" is the cancellation, and the server MUST treat it as one. Pingora notices the
//! client leaving while it relays the answer (a read error on the downstream), ends the
//! proxying with a downstream error and drops the upstream connection: that already closes
//! the upstream request, which is all a stateless upstream needs. A handshake-era upstream
//! behind a gateway-held session does not read a closed stream as a cancel (its spec says a
//! disconnect is not one), so the gateway sends it `notifications/cancelled` for the
//! request, on the same upstream session, with the call's credential.
//!
//! Legacy clients are left alone: for them a disconnect is not a cancel either, and they
//! send their own `notifications/cancelled` (routed by `vserver::reply`).
//!
//! The call keeps its in-flight slot until the notification was sent: a modern caller's next
//! call with the same id takes another slot meanwhile, so the notification cannot cancel it.

use std::sync::Arc;

use super::ctx::{RequestCtx, UpstreamSession};
use crate::decision::SessionBinding;
use crate::metrics::Outcome;
use crate::registry::client::{McpClient, UpstreamSession as Held};
use crate::state::Shared;

/// The `reason` the upstream is given.
const REASON: &str = "the 2026-07-28 client closed its response stream";

/// In `logging`: if a modern client left a call running on a gateway-held upstream session,
/// send the upstream `notifications/cancelled` for it (on a task: `logging` must not wait on
/// an upstream). Takes the call's in-flight key, freed once the notification went out.
pub(crate) fn on_client_gone(shared: &Arc<Shared>, ctx: &mut RequestCtx) {
    if ctx.outcome != Outcome::ClientClosed || ctx.timings.forwarded_at.is_none() {
        return;
    }
    let Some(target) = ctx.target.as_ref() else {
        return;
    };
    let is_request = ctx
        .call
        .as_ref()
        .is_some_and(|c| c.kind == crate::mcp::jsonrpc::MessageKind::Request);
    if !is_request
        || !target.modern_client()
        || !matches!(target.session, SessionBinding::Gateway { .. })
    {
        return;
    }
    // A stateless upstream (no session id): the dropped connection was its cancel.
    let UpstreamSession::Gateway(Some(sid)) = &ctx.upstream_session else {
        return;
    };
    let Some(id) = ctx.id_json() else { return };
    let Ok(id) = serde_json::from_slice::<serde_json::Value>(id) else {
        return;
    };
    let note = serde_json::json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": { "requestId": id, "reason": REASON },
    });
    let upstream = target.upstream.clone();
    let credential = ctx.credential().cloned();
    let sid = sid.clone();
    let key = ctx.in_flight.take();
    let shared = shared.clone();
    tokio::spawn(async move {
        let u = &upstream.config;
        let client = McpClient {
            http: &shared.http,
            url: &u.url,
            auth: credential
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|v| (u.auth.header.as_str(), v)),
            timeout: u.read_timeout,
        };
        let held = Held {
            id: Some(sid),
            capabilities: serde_json::Value::Null,
        };
        if let Err(e) = client.notify(&held, &note).await {
            log::debug!(
                "could not cancel an abandoned call on upstream {}: {e}",
                u.name
            );
        }
        if let Some(k) = key {
            crate::vserver::reply::done(&shared, k);
        }
    });
}
