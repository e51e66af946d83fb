//! Upstream events for a virtual server's client sessions (handshake era): resource
//! subscriptions and the upstream log notifications that are not tied to a call.
//!
//! An upstream sends `notifications/resources/updated` (and `notifications/message` outside
//! a call) on its own server-to-client stream (GET) of the session the gateway holds for the
//! client. So when a client session subscribes to a resource or sets a log level, the
//! gateway follows that upstream session's GET stream (one *follower* task per client
//! session and upstream: the upstream allows one GET stream per session) and relays those two
//! notifications to the client's GET stream through a per-session broadcast channel:
//!
//! - `notifications/resources/updated` only for a URI this client session subscribed to on
//!   that upstream (an upstream cannot push a URI the client never asked for, or one it may
//!   not see), with `params.uri` rewritten to the exposed form; and only while the session's
//!   caller may still see it, in the configuration current when the update arrives (a
//!   resource hidden after the subscription, by a reload, is not relayed: its subscription
//!   ends then, and stays held only so that the client's unsubscribe of it still passes);
//! - `notifications/message` as sent.
//!
//! `resources/unsubscribe` of a URI this session holds needs no visibility (it only
//! removes, and the upstream knows the URI from the subscription): [`holds`], read when
//! the request is resolved (`vserver::items`), lets the decision skip that check.
//!
//! Everything else on the upstream's stream is dropped here (list changes reach clients
//! through the registry, [`crate::registry::watch`]).
//!
//! Bounds: [`MAX_SUBSCRIPTIONS`] per client session, [`MAX_SESSIONS`] sessions with events
//! per replica (a [`BoundedMap`]; an evicted session's followers stop) and
//! `limits.max_event_sessions_per_principal` per caller ([`crate::caps`]: 429 past it; the
//! place is a [`crate::caps::Slot`] in the session's entry, given back when the entry goes:
//! DELETE, eviction, or, once expired, the next purge), so a caller holds at most that many
//! times its server's upstreams of follower streams; an event of at most
//! [`MAX_EVENT`] bytes (larger ones are dropped, logged), and [`BACKLOG`] notifications
//! queued per session for a slow GET reader (older ones are dropped for it, logged). A
//! follower ends with its client session (DELETE, eviction, or the token's expiry) and
//! when its upstream refuses the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use crate::digest::Digest;
use crate::error::Reject;
use crate::http_client::HttpClient;
use crate::state::Shared;
use crate::store::BoundedMap;
use crate::upstreams::UpstreamRt;

/// Resource subscriptions one client session may hold. Each costs the upstream a
/// subscription entry and the gateway a table entry; 64 is far more than a client shows a
/// person at once (an MCP host subscribes to the resources it has open), and a client that
/// wants to follow a whole collection should follow `notifications/resources/list_changed`.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Client sessions with subscriptions or a level set, per replica. Each holds a broadcast
/// buffer and up to one upstream stream per upstream of its server; 10,000 is ten times the
/// sessions a replica serves in the load tests.
pub const MAX_SESSIONS: usize = 10_000;

/// Longest upstream event relayed (the 64 KiB bound of the gateway's other response copies).
pub const MAX_EVENT: usize = 64 * 1024;

/// Notifications queued per client session for its GET readers.
pub const BACKLOG: usize = 64;

/// The per-replica table of client sessions' events.
pub type Events = BoundedMap<Digest, Arc<SessionEvents>>;

/// A new, empty table.
pub fn table() -> Events {
    BoundedMap::new(MAX_SESSIONS)
}

/// One client session's events: its subscriptions, followers and the channel to its GET
/// streams.
pub struct SessionEvents {
    tx: broadcast::Sender<Bytes>,
    /// (upstream name, the upstream's own URI) → whether its updates are relayed (`false`:
    /// it was hidden after the subscription; held until the client unsubscribes).
    subs: Arc<Mutex<Subscriptions>>,
    /// Who subscribed, for the visibility check when an update arrives (set by
    /// [`subscription`]).
    viewer: Arc<Mutex<Option<Viewer>>>,
    /// Follower tasks by upstream name.
    followers: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// The caller's place under `limits.max_event_sessions_per_principal`.
    _slot: crate::caps::Slot,
}

/// A client session's subscriptions: (upstream name, own URI) → relayed.
type Subscriptions = HashMap<(String, String), bool>;

/// The client session's caller on its virtual server: enough to ask, when an update
/// arrives, whether it may still see the resource in the configuration current then.
#[derive(Clone)]
struct Viewer {
    /// Weak: a follower must not keep the gateway's state alive past shutdown.
    shared: std::sync::Weak<Shared>,
    server: String,
    principal: Option<Arc<crate::auth::Principal>>,
}

impl Viewer {
    /// Whether the caller may see `upstream`'s resource `own` (its own URI): the server
    /// still exists and still has that upstream, and its patterns show the URI to the
    /// caller's class (the check `resources/read` is decided with).
    fn sees(&self, upstream: &str, own: &str) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let runtime = shared.runtime.load();
        let config = &runtime.config;
        let Some(vs) = config
            .virtual_servers
            .iter()
            .find(|v| v.name == self.server)
        else {
            return false;
        };
        let serves = vs
            .upstreams
            .iter()
            .any(|&i| config.upstreams.get(i).is_some_and(|u| u.name == upstream));
        let class = super::list::class(vs, self.principal.as_deref());
        serves
            && crate::registry::items::visible(
                vs,
                class,
                crate::registry::items::Kind::Resource,
                upstream,
                own,
            )
    }
}

impl std::fmt::Debug for SessionEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEvents").finish_non_exhaustive()
    }
}

impl Drop for SessionEvents {
    /// The session ended or was evicted: its upstream streams close.
    fn drop(&mut self) {
        let followers = self
            .followers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, f) in followers.drain() {
            f.abort();
        }
    }
}

impl SessionEvents {
    fn new(slot: crate::caps::Slot) -> SessionEvents {
        SessionEvents {
            tx: broadcast::channel(BACKLOG).0,
            subs: Arc::new(Mutex::new(HashMap::new())),
            viewer: Arc::new(Mutex::new(None)),
            followers: Mutex::new(HashMap::new()),
            _slot: slot,
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Client session `session`'s events, created on first use, when its caller `principal`
/// (the one the session is bound to) has a place left (429 otherwise).
pub fn entry(
    shared: &Shared,
    session: Digest,
    expires: u64,
    principal: Option<&crate::auth::Principal>,
) -> Result<Arc<SessionEvents>, Reject> {
    use crate::caps::{Cap, PrincipalKey};
    let now = now();
    if let Some(e) = shared.events.get(&session, now) {
        return Ok(e);
    }
    let cap = shared
        .runtime
        .load()
        .config
        .limits
        .max_event_sessions_per_principal;
    let who = PrincipalKey::of(principal);
    let slot = match shared.caps.acquire(Cap::EventSessions, who, cap) {
        Ok(slot) => slot,
        Err(_) => {
            // Expired sessions keep their place until the table drops them: drop them now.
            shared.events.purge(now);
            shared.caps.acquire(Cap::EventSessions, who, cap)?
        }
    };
    // Created by a racing request meanwhile: that one is used, and this place given back.
    Ok(shared.events.upsert(
        session,
        expires,
        now,
        move || Arc::new(SessionEvents::new(slot)),
        |e| e.clone(),
    ))
}

/// A receiver of the notifications relayed to client session `session` (its GET stream).
pub fn receiver(
    shared: &Shared,
    session: Digest,
    expires: u64,
    principal: Option<&crate::auth::Principal>,
) -> Result<broadcast::Receiver<Bytes>, Reject> {
    Ok(entry(shared, session, expires, principal)?.tx.subscribe())
}

/// Whether client session `session` holds a subscription to `upstream`'s resource `own`
/// (relayed or not): its unsubscribe needs no visibility.
pub fn holds(shared: &Shared, session: Digest, upstream: &str, own: &str) -> bool {
    shared.events.get(&session, now()).is_some_and(|e| {
        e.subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(upstream.to_string(), scheme_lowered(own)))
    })
}

/// Forget a client session's subscriptions and stop its followers (DELETE).
pub fn end(shared: &Shared, session: Digest) {
    shared.events.remove(&session);
}

/// A `resources/subscribe` (or unsubscribe) the decision allowed, on `upstream`'s session
/// `sid`: recorded for the client session (refused past [`MAX_SUBSCRIPTIONS`]), and for a
/// subscribe the upstream's stream followed before the request goes out, so an update sent
/// right after the subscription is not missed. `server` and `principal`: who subscribed,
/// for the visibility check of each update.
#[allow(clippy::too_many_arguments)]
pub async fn subscription(
    shared: &Arc<Shared>,
    server: &str,
    principal: Option<&Arc<crate::auth::Principal>>,
    session: Digest,
    expires: u64,
    upstream: &UpstreamRt,
    sid: Option<&str>,
    credential: Option<&http::HeaderValue>,
    own: &str,
    subscribe: bool,
    expose: bool,
) -> Result<(), Reject> {
    if !subscribe && shared.events.get(&session, now()).is_none() {
        return Ok(()); // nothing to forget: no entry (and no place) taken for it
    }
    let e = entry(shared, session, expires, principal.map(|p| &**p))?;
    let key = (upstream.name().to_string(), scheme_lowered(own));
    {
        let mut subs = e.subs.lock().unwrap_or_else(PoisonError::into_inner);
        if !subscribe {
            subs.remove(&key);
            return Ok(());
        }
        if !subs.contains_key(&key) && subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(Reject::InvalidParams(format!(
                "this session holds {MAX_SUBSCRIPTIONS} resource subscriptions, the most it may; unsubscribe from one first"
            )));
        }
        // (Again after it was hidden and shown: the decision just saw it visible.)
        subs.insert(key, true);
    }
    *e.viewer.lock().unwrap_or_else(PoisonError::into_inner) = Some(Viewer {
        shared: Arc::downgrade(shared),
        server: server.to_string(),
        principal: principal.cloned(),
    });
    follow(shared, &e, expires, upstream, sid, credential, expose).await;
    Ok(())
}

/// Follow `upstream`'s stream of session `sid` for the client session `e`, unless a follower
/// runs already. Waits until the stream is open (or refused), at most the upstream's
/// `read_timeout`. A refused stream is logged: the request itself still goes out, only its
/// notifications cannot arrive. `expose`: the server exposes URIs under its own
/// (`names: prefixed`), so an update's URI is rewritten to it.
pub async fn follow(
    shared: &Shared,
    e: &Arc<SessionEvents>,
    expires: u64,
    upstream: &UpstreamRt,
    sid: Option<&str>,
    credential: Option<&http::HeaderValue>,
    expose: bool,
) {
    let name = upstream.name().to_string();
    // An upstream without sessions has one stream for everyone: with a shared credential it
    // would carry other callers' log messages. Only a session's own stream is followed.
    if sid.is_none() {
        log::debug!("upstream {name:?} keeps no sessions: its stream is not followed for one client session");
        return;
    }
    let (ready_tx, ready) = oneshot::channel();
    {
        let mut followers = e.followers.lock().unwrap_or_else(PoisonError::into_inner);
        if followers.get(&name).is_some_and(|f| !f.is_finished()) {
            return;
        }
        let follower = Follower {
            http: shared.http.clone(),
            url: upstream.config.url.clone(),
            upstream: name.clone(),
            sid: sid.map(str::to_string),
            auth: credential
                .and_then(|v| v.to_str().ok())
                .map(|v| (upstream.config.auth.header.to_string(), v.to_string())),
            tx: e.tx.clone(),
            subs: e.subs.clone(),
            viewer: e.viewer.clone(),
            expires,
            expose,
        };
        let task = tokio::spawn(follower.run(ready_tx));
        followers.insert(name.clone(), task.abort_handle());
    }
    match tokio::time::timeout(upstream.config.read_timeout, ready).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(cause))) => log::warn!(
            "upstream {name:?}: its server-to-client stream could not be followed ({cause}); resource updates and log messages outside calls will not reach the client"
        ),
        _ => log::warn!("upstream {name:?}: its server-to-client stream did not open in time"),
    }
}

/// One upstream stream followed for one client session.
struct Follower {
    http: HttpClient,
    url: url::Url,
    upstream: String,
    sid: Option<String>,
    auth: Option<(String, String)>,
    tx: broadcast::Sender<Bytes>,
    subs: Arc<Mutex<Subscriptions>>,
    viewer: Arc<Mutex<Option<Viewer>>>,
    /// The client session's expiry (seconds since the epoch): the follower ends then.
    expires: u64,
    /// Rewrite updates' URIs to the server's (`names: prefixed`).
    expose: bool,
}

impl Follower {
    /// Follow until the session expires; reconnect after the stream ends (1 s doubling to
    /// 60 s); stop when the upstream refuses it (405: no stream; 404: session gone).
    async fn run(self, ready: oneshot::Sender<Result<(), String>>) {
        let left = Duration::from_secs(self.expires.saturating_sub(now()));
        let _ = tokio::time::timeout(left, self.follow(ready)).await;
    }

    async fn follow(&self, ready: oneshot::Sender<Result<(), String>>) {
        let mut ready = Some(ready);
        let mut backoff = Duration::from_secs(1);
        loop {
            let auth = self.auth.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
            let opened = crate::registry::watch::open_stream(
                self.http.connector(),
                &self.url,
                self.sid.as_deref(),
                auth,
            )
            .await;
            let mut s = match opened {
                Ok(s) => s,
                Err(e) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(e));
                        return;
                    }
                    log::debug!(
                        "upstream {:?}: stream for a client session: {e}",
                        self.upstream
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
            };
            let status = s.response_header().map_or(0, |h| h.status.as_u16());
            if status != 200 {
                let cause = format!("GET answered HTTP {status}");
                match ready.take() {
                    Some(r) => {
                        let _ = r.send(Err(cause));
                    }
                    None => log::debug!("upstream {:?}: {cause}; stopped", self.upstream),
                }
                return;
            }
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(()));
            }
            backoff = Duration::from_secs(1);
            let mut events = EventReader::default();
            while let Ok(Some(chunk)) = s.read_response_body().await {
                for data in events.push(&chunk) {
                    let sees = |own: &str| {
                        let viewer = self
                            .viewer
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .clone();
                        viewer.is_some_and(|v| v.sees(&self.upstream, own))
                    };
                    if let Some(frame) =
                        relay(&data, &self.upstream, &self.subs, self.expose, &sees)
                    {
                        // No receiver (no GET stream open) drops it: a server MAY send
                        // notifications only where a stream is open.
                        let _ = self.tx.send(frame);
                    }
                }
            }
            tokio::time::sleep(backoff).await;
        }
    }
}

/// SSE events out of a byte stream: the joined `data:` lines of each, at most
/// [`MAX_EVENT`] bytes (a longer event is dropped whole, logged).
#[derive(Debug, Default)]
struct EventReader {
    line: Vec<u8>,
    data: Vec<u8>,
    oversize: bool,
}

impl EventReader {
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                if self.line.len() <= MAX_EVENT {
                    self.line.push(b);
                } else {
                    self.oversize = true;
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if line.is_empty() {
                if self.oversize {
                    log::warn!("an upstream event over {MAX_EVENT} bytes was dropped");
                } else if !self.data.is_empty() {
                    out.push(std::mem::take(&mut self.data));
                }
                self.data.clear();
                self.oversize = false;
            } else if let Some(d) = line.strip_prefix(b"data:") {
                let d = d.strip_prefix(b" ").unwrap_or(d);
                if self.data.len() + d.len() + 1 > MAX_EVENT {
                    self.oversize = true;
                } else {
                    if !self.data.is_empty() {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(d);
                }
            }
        }
        out
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// `uri` with its scheme in lower case (RFC 3986: schemes are case-insensitive), the form
/// subscriptions are kept and matched in: an unlisted URI's scheme was lowered when it was
/// decided, and an upstream may write its updates either way.
fn scheme_lowered(uri: &str) -> String {
    match uri.split_once(':') {
        Some((scheme, rest)) => format!("{}:{rest}", scheme.to_ascii_lowercase()),
        None => uri.to_string(),
    }
}

/// The SSE frame to relay for one upstream message, if it is one this module relays.
/// `sees`: whether the session's caller may see a resource (its own URI) now.
fn relay(
    data: &[u8],
    upstream: &str,
    subs: &Mutex<Subscriptions>,
    expose: bool,
    sees: &dyn Fn(&str) -> bool,
) -> Option<Bytes> {
    const UPDATED: &str = "notifications/resources/updated";
    const MESSAGE: &str = "notifications/message";
    // The byte scan first: most of a stream is keep-alives and list changes.
    if !contains(data, UPDATED.as_bytes()) && !contains(data, MESSAGE.as_bytes()) {
        return None;
    }
    let mut v: Value = serde_json::from_slice(data).ok()?;
    if v.get("id").is_some() {
        return None; // a request, not a notification
    }
    match v.get("method").and_then(Value::as_str)? {
        MESSAGE => {}
        UPDATED => {
            let own = v.get("params")?.get("uri")?.as_str()?.to_string();
            let key = (upstream.to_string(), scheme_lowered(&own));
            let relayed = subs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .copied();
            if relayed != Some(true) {
                log::debug!("upstream {upstream:?} sent an update for a URI this session did not subscribe to (or that was hidden from it since); dropped");
                return None;
            }
            // Checked without the table's lock: it reads the current configuration.
            if !sees(&key.1) {
                log::debug!("upstream {upstream:?} sent an update for a URI hidden from this session since it subscribed; its subscription ends");
                if let Some(r) = subs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_mut(&key)
                {
                    *r = false;
                }
                return None;
            }
            if expose {
                // (The separator names tools, not URIs.)
                let prefixed = crate::registry::naming::Style::Prefixed("");
                let exposed = crate::registry::items::expose_uri(prefixed, upstream, &own)?;
                v["params"]["uri"] = Value::String(exposed);
            }
        }
        _ => return None,
    }
    // Re-encoded: one `data:` line (no raw newline), whatever lines the upstream used.
    let json = serde_json::to_vec(&v).ok()?;
    let mut frame = Vec::with_capacity(json.len() + 24);
    frame.extend_from_slice(b"event: message\ndata: ");
    frame.extend_from_slice(&json);
    frame.extend_from_slice(b"\n\n");
    Some(Bytes::from(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(pairs: &[(&str, &str)]) -> Mutex<Subscriptions> {
        Mutex::new(
            pairs
                .iter()
                .map(|(u, o)| ((u.to_string(), o.to_string()), true))
                .collect(),
        )
    }

    /// A caller who sees everything.
    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn an_update_for_a_resource_hidden_since_is_dropped_and_ends_its_subscription() {
        let s = subs(&[("docs", "file:///a.md")]);
        let note = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a.md"}}"#;
        let hidden = |own: &str| own != "file:///a.md";
        assert!(relay(note, "docs", &s, false, &hidden).is_none());
        let key = ("docs".to_string(), "file:///a.md".to_string());
        assert_eq!(
            s.lock().unwrap().get(&key),
            Some(&false),
            "held for the unsubscribe, no longer relayed"
        );
        // Shown again, it stays ended until the client subscribes again.
        assert!(relay(note, "docs", &s, false, &all).is_none());
    }

    #[test]
    fn an_update_is_relayed_with_the_exposed_uri_only_when_subscribed() {
        let s = subs(&[("docs", "file:///a.md")]);
        let note = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a.md"}}"#;
        let f = relay(note, "docs", &s, true, &all).unwrap();
        let text = std::str::from_utf8(&f).unwrap();
        assert!(text.starts_with("event: message\ndata: {"), "{text}");
        assert!(
            text.contains(r#""uri":"file://mcpgw/docs////a.md""#),
            "{text}"
        );
        assert!(text.ends_with("}\n\n"));
        let other = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"secret://k"}}"#;
        assert!(relay(other, "docs", &s, true, &all).is_none());
        assert!(
            relay(note, "crm", &s, true, &all).is_none(),
            "another upstream's"
        );
        // Schemes compare case-insensitively; the rest of the URI does not.
        let upper = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"FILE:///a.md"}}"#;
        assert!(relay(upper, "docs", &s, false, &all).is_some());
        let path = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///A.md"}}"#;
        assert!(relay(path, "docs", &s, false, &all).is_none());
    }

    #[test]
    fn log_messages_pass_and_everything_else_is_dropped() {
        let s = subs(&[]);
        let log = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#;
        assert!(relay(log, "docs", &s, true, &all).is_some());
        let changed = br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
        assert!(relay(changed, "docs", &s, true, &all).is_none());
        let request = br#"{"jsonrpc":"2.0","id":1,"method":"notifications/message"}"#;
        assert!(relay(request, "docs", &s, true, &all).is_none());
    }

    #[test]
    fn events_are_cut_from_chunks_and_oversize_ones_dropped() {
        let mut r = EventReader::default();
        assert!(r.push(b"event: message\r\ndata: {\"a\":").is_empty());
        let out = r.push(b"1}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n");
        assert_eq!(out, vec![b"{\"a\":1}".to_vec(), b"x\ny".to_vec()]);
        let big = vec![b'x'; MAX_EVENT + 10];
        let mut chunk = b"data: ".to_vec();
        chunk.extend_from_slice(&big);
        chunk.extend_from_slice(b"\n\ndata: ok\n\n");
        assert_eq!(r.push(&chunk), vec![b"ok".to_vec()]);
    }
}
