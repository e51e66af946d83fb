//! Messages the gateway sends on a 2026-07-28 client's behalf, on the handshake-era upstream
//! session it holds for that client: a cancellation when the client leaves, and the refusal
//! of server-to-client requests the client cannot receive.
//!
//! **Leaving cancels.** The modern revision has no `notifications/cancelled` over HTTP:
//! "closing the response stream" is the cancellation, and the server MUST treat it as one.
//! Pingora notices the client leaving while it relays the answer (a read error on the
//! downstream), ends the proxying with a downstream error and drops the upstream connection:
//! that already closes the upstream request, which is all a stateless upstream needs. A
//! handshake-era upstream behind a gateway-held session does not read a closed stream as a
//! cancel (its spec says a disconnect is not one), so the gateway sends it
//! `notifications/cancelled` for the request, on the same upstream session, with the call's
//! credential ([`on_client_gone`]). Legacy clients are left alone: for them a disconnect is
//! not a cancel either, and they send their own `notifications/cancelled` (routed by
//! `vserver::reply`). The call keeps its in-flight slot until the notification was sent: a
//! modern caller's next call with the same id takes another slot meanwhile, so the
//! notification cannot cancel it.
//!
//! **Server-to-client requests that cannot become an `InputRequiredResult` are refused.** A
//! modern client gets no JSON-RPC requests: its revision returns them inside an
//! `InputRequiredResult`, which `proxy::mrtr` produces for `tools/call`s whose client
//! declared the capability. Anywhere else (a `prompts/get`, a client that declared nothing,
//! a full table of parked calls) the request is taken out of the stream
//! (`vserver::ids::IdRewriter::refusing`) and answered here with a JSON-RPC error that says
//! why ([`refuse_input`]): the tool gets an error at once instead of waiting for an answer
//! that cannot come, and the client gets the tool's answer.

use std::sync::Arc;

use super::ctx::{RequestCtx, UpstreamSession};
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
    let is_request = ctx
        .call
        .as_ref()
        .is_some_and(|c| c.kind == crate::mcp::jsonrpc::MessageKind::Request);
    if !is_request {
        return;
    }
    let Some(id) = ctx.upstream_id.as_deref().or(ctx.id_json()) else {
        return;
    };
    let Ok(id) = serde_json::from_slice::<serde_json::Value>(id) else {
        return;
    };
    let note = serde_json::json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": { "requestId": id, "reason": REASON },
    });
    if let Some(send) = Sender::of(shared, ctx) {
        let then = ctx.in_flight.take().map(|k| (shared.clone(), k));
        send.spawn(vec![note], then);
    }
}

/// In the response body filter: answer the server-to-client requests taken out of a modern
/// client's stream with an error naming the reason.
pub(crate) fn refuse_input(shared: &Shared, ctx: &mut RequestCtx) {
    let Some(refused) = ctx.sse_ids.as_mut().map(|ids| ids.take_refused()) else {
        return;
    };
    if !refused.is_empty() {
        refuse(shared, ctx, refused);
    }
}

/// Answer `refused` (requests of the upstream of `ctx`'s call) with an error naming the
/// reason.
pub(crate) fn refuse(
    shared: &Shared,
    ctx: &RequestCtx,
    refused: Vec<crate::vserver::ids::Refused>,
) {
    let answers = refused
        .into_iter()
        .filter_map(|r| {
            let (raw, method) = (r.id, r.method);
            let id = serde_json::from_slice::<serde_json::Value>(&raw).ok()?;
            Some(serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {
                    "code": -32601,
                    "message": format!(
                        "mcp-gateway: {} cannot reach this client: it speaks the stateless 2026-07-28 revision, and the gateway turns such requests into an InputRequiredResult only for tools/call, when the client declares the capability in _meta and the caller and this replica have room for another call waiting for input (limits.max_parked_calls_per_principal, 1,024 per replica); a handshake-era session (initialize) can answer it",
                        crate::error::clip(&method)
                    ),
                },
            }))
        })
        .collect::<Vec<_>>();
    log::debug!(
        "refused {} server-to-client request(s) of upstream {} to a 2026-07-28 client",
        answers.len(),
        ctx.upstream_name()
    );
    if let Some(send) = Sender::of(shared, ctx) {
        send.spawn(answers, None);
    }
}

/// Post `messages` in order on `upstream`'s session `sid`, on a task; then free the
/// in-flight key in `then`.
pub(crate) fn post(
    http: crate::http_client::HttpClient,
    upstream: Arc<crate::upstreams::UpstreamRt>,
    credential: Option<http::HeaderValue>,
    sid: String,
    messages: Vec<serde_json::Value>,
    then: Option<(Arc<Shared>, crate::digest::Digest)>,
) {
    Sender {
        http,
        upstream,
        credential,
        sid,
    }
    .spawn(messages, then);
}

/// What it takes to post on the upstream session a modern client's call went out on.
struct Sender {
    http: crate::http_client::HttpClient,
    upstream: Arc<crate::upstreams::UpstreamRt>,
    credential: Option<http::HeaderValue>,
    sid: String,
}

impl Sender {
    /// `None` unless the request is a modern client's, on a gateway-held session with an id
    /// (a stateless upstream has nothing to post to: the dropped connection was its cancel).
    fn of(shared: &Shared, ctx: &RequestCtx) -> Option<Sender> {
        let target = ctx.target.as_ref()?;
        if !target.translates() {
            return None;
        }
        let UpstreamSession::Gateway(Some(sid)) = &ctx.upstream_session else {
            return None;
        };
        Some(Sender {
            http: shared.http.clone(),
            upstream: target.upstream.clone(),
            credential: ctx.credential().cloned(),
            sid: sid.clone(),
        })
    }

    /// Post `messages` in order on a task, then free the in-flight key in `then` (if any).
    fn spawn(
        self,
        messages: Vec<serde_json::Value>,
        then: Option<(Arc<Shared>, crate::digest::Digest)>,
    ) {
        tokio::spawn(async move {
            let u = &self.upstream.config;
            let client = McpClient {
                http: &self.http,
                url: &u.url,
                auth: self
                    .credential
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (u.auth.header.as_str(), v)),
                timeout: u.read_timeout,
            };
            let held = Held {
                id: Some(self.sid),
                capabilities: serde_json::Value::Null,
            };
            for m in &messages {
                if let Err(e) = client.notify(&held, m).await {
                    log::debug!(
                        "could not post to upstream {} for a 2026-07-28 client: {e}",
                        u.name
                    );
                }
            }
            if let Some((shared, k)) = then {
                crate::vserver::reply::done(&shared, k);
            }
        });
    }
}
