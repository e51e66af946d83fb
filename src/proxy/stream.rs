//! The server-to-client SSE stream of a virtual-server session, written by the gateway: a
//! `notifications/tools/list_changed` (and `prompts/…`, `resources/…`: [`current_items`])
//! whenever what this caller can see changes (upstream
//! tools rediscovered, a tool quarantined or approved, policy reloaded), and a comment every
//! 15 s so idle proxies keep the connection; and the upstream notifications relayed for the
//! client session ([`crate::vserver::events`]: resource updates, log messages). Runs in `request_filter` until the client
//! leaves. What the caller sees comes from [`crate::vserver::list::current_tools`].

use bytes::Bytes;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::state::Shared;
use crate::vserver::list::{current_items, current_tools};

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
    ctx: &RequestCtx,
    events: tokio::sync::broadcast::Receiver<Bytes>,
) -> pingora::Result<()> {
    let mut events = Some(events);
    let mut h = pingora::http::ResponseHeader::build(200, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
    h.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
    h.insert_header("x-accel-buffering", "no")?;
    session.write_response_header(Box::new(h), false).await?;
    let principal = ctx.principal.as_deref();
    let mut changes = shared.registry.subscribe();
    let mut last = current_tools(shared, server, principal).await;
    let mut last_items = current_items(shared, server, principal).await;
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = current_tools(shared, server, principal).await;
                if now != last {
                    last = now;
                    session.write_response_body(Some(Bytes::from_static(LIST_CHANGED)), false).await?;
                }
                let items = current_items(shared, server, principal).await;
                let (was, is) = (last_items.as_ref(), items.as_ref());
                if was.map(|w| &w.0) != is.map(|i| &i.0) {
                    session.write_response_body(Some(Bytes::from_static(PROMPTS_CHANGED)), false).await?;
                }
                if was.map(|w| &w.1) != is.map(|i| &i.1) {
                    session.write_response_body(Some(Bytes::from_static(RESOURCES_CHANGED)), false).await?;
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
