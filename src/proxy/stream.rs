//! The server-to-client SSE stream of a virtual-server session, written by the gateway: a
//! `notifications/tools/list_changed` (and `prompts/…`, `resources/…`: [`current_items`])
//! whenever what this caller can see changes (upstream
//! tools rediscovered, a tool quarantined or approved, policy reloaded), and a comment every
//! 15 s so idle proxies keep the connection; and the upstream notifications relayed for the
//! client session ([`crate::vserver::events`]: resource updates, log messages). Runs in `request_filter` until the client
//! leaves. What the caller sees comes from [`crate::vserver::list::current_tools`].
//! A modern client's `subscriptions/listen` ([`listen`]) is served by the same loop.

use bytes::Bytes;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::state::Shared;
use crate::vserver::list::{current_items, current_tools};
use crate::vserver::listen::Listen;

/// Keep-alive comment interval: below the 30-60 s idle timeouts common in proxies.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

const LIST_CHANGED: &[u8] =
    b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
const PROMPTS_CHANGED: &[u8] =
    b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/prompts/list_changed\"}\n\n";
const RESOURCES_CHANGED: &[u8] =
    b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/list_changed\"}\n\n";

/// Serve the stream of virtual server `server` to the caller in `ctx`.
pub(crate) async fn serve(
    session: &mut Session,
    shared: &Shared,
    server: &str,
    ctx: &mut RequestCtx,
    events: tokio::sync::broadcast::Receiver<Bytes>,
) -> pingora::Result<()> {
    let frames = Frames {
        first: None,
        tools: Some(Bytes::from_static(LIST_CHANGED)),
        prompts: Some(Bytes::from_static(PROMPTS_CHANGED)),
        resources: Some(Bytes::from_static(RESOURCES_CHANGED)),
    };
    run(session, shared, server, ctx, frames, Some(events)).await
}

/// Serve a modern client's `subscriptions/listen` stream: the same changes as the GET
/// stream, only the types it opted in to, in frames tagged with its subscription id.
pub(crate) async fn listen(
    session: &mut Session,
    shared: &Shared,
    server: &str,
    ctx: &mut RequestCtx,
    listen: &Listen,
) -> pingora::Result<()> {
    let frames = Frames {
        first: Some(listen.ack.clone()),
        tools: listen.tools.clone(),
        prompts: listen.prompts.clone(),
        resources: listen.resources.clone(),
    };
    run(session, shared, server, ctx, frames, None).await
}

/// What a stream writes: an opening event, and one per kind of change (`None`: not sent).
struct Frames {
    first: Option<Bytes>,
    tools: Option<Bytes>,
    prompts: Option<Bytes>,
    resources: Option<Bytes>,
}

/// The one fan-out: wait for the registry's change signal, compare what this caller sees,
/// write the frames of what changed, and relay the session's upstream events (a legacy GET
/// stream's; `None` on a listen stream); a keep-alive comment when idle.
///
/// Every stream, GET or listen, takes a place: at most `limits.max_streams_per_principal`
/// per caller (429 past that, `crate::caps`) and `vserver::listen::MAX_STREAMS` at once
/// (503 past that). Both are held until this function returns, however the stream ends:
/// each holds a client connection and a task for as long as the client keeps it.
async fn run(
    session: &mut Session,
    shared: &Shared,
    server: &str,
    ctx: &mut RequestCtx,
    frames: Frames,
    mut events: Option<tokio::sync::broadcast::Receiver<Bytes>>,
) -> pingora::Result<()> {
    let cap = shared
        .runtime
        .load()
        .config
        .limits
        .max_streams_per_principal;
    let who = crate::caps::PrincipalKey::of(ctx.principal.as_deref());
    let _slot = match shared.caps.acquire(crate::caps::Cap::Streams, who, cap) {
        Ok(s) => s,
        Err(reject) => return super::respond::reject(session, ctx, &reject).await,
    };
    let Ok(_permit) = shared.server_streams.clone().try_acquire_owned() else {
        let full = crate::error::Reject::StreamsFull {
            capacity: crate::vserver::listen::MAX_STREAMS,
        };
        return super::respond::reject(session, ctx, &full).await;
    };
    let ctx = &*ctx;
    let mut h = pingora::http::ResponseHeader::build(200, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
    h.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
    h.insert_header("x-accel-buffering", "no")?;
    session.write_response_header(Box::new(h), false).await?;
    if let Some(first) = frames.first.clone() {
        session.write_response_body(Some(first), false).await?;
    }
    let principal = ctx.principal.as_deref();
    let mut changes = shared.registry.subscribe();
    let mut last = current_tools(shared, server, principal).await;
    let mut last_items = current_items(shared, server, principal).await;
    // Watch the client, as `proxy::mrtr` does: one that leaves ends the stream now (and
    // gives back its places: `crate::caps`), not at the next write up to 15 s later.
    let mut watch = true;
    loop {
        tokio::select! {
            gone = session.downstream_session.read_body_or_idle(true), if watch => {
                if let Err(e) = gone {
                    return Err(e.into_down());
                }
                watch = false; // nothing to watch for on this connection
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = current_tools(shared, server, principal).await;
                if now != last {
                    last = now;
                    if let Some(f) = &frames.tools {
                        session.write_response_body(Some(f.clone()), false).await?;
                    }
                }
                let items = current_items(shared, server, principal).await;
                let (was, is) = (last_items.as_ref(), items.as_ref());
                if let Some(f) = frames.prompts.as_ref().filter(|_| was.map(|w| &w.0) != is.map(|i| &i.0)) {
                    session.write_response_body(Some(f.clone()), false).await?;
                }
                if let Some(f) = frames.resources.as_ref().filter(|_| was.map(|w| &w.1) != is.map(|i| &i.1)) {
                    session.write_response_body(Some(f.clone()), false).await?;
                }
                last_items = items;
            }
            // Upstream resource updates and log messages for this session (`vserver::events`).
            event = async {
                match events.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => match event {
                Ok(frame) => session.write_response_body(Some(frame), false).await?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    log::warn!("a virtual-server GET stream fell {n} upstream notifications behind; they were dropped for it");
                }
                // Never while the table holds the session; an evicted one's stream keeps
                // its list changes and keep-alives.
                Err(tokio::sync::broadcast::error::RecvError::Closed) => events = None,
            },
            _ = tokio::time::sleep(KEEP_ALIVE) => {
                session.write_response_body(Some(Bytes::from_static(b": keep-alive\n\n")), false).await?;
            }
        }
    }
    session.write_response_body(None, true).await
}
