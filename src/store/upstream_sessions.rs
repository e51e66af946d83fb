//! Upstream sessions opened for gateway sessions: [`UpstreamSessionStore`] and its in-memory
//! implementation, [`MemoryUpstreamSessions`].
//!
//! A virtual-server session fans out to several upstreams, each with its own `Mcp-Session-Id`
//! opened lazily on the first call routed there. The gateway session's token digest keys
//! them; they are forgotten when the upstream answers 404 (it lost the session), all at once
//! when the client DELETEs the gateway session, and with the gateway session's expiry.

use crate::digest::Digest;

use super::bounded::BoundedMap;

/// What is known of one upstream for one gateway session.
///
/// `None` from [`UpstreamSessionStore::get`]: nothing opened yet. `Some(None)`: opened, and
/// the upstream is stateless (it sent no session id), so it is not initialized again.
pub type UpstreamSession = Option<String>;

/// Where upstream sessions are kept. Called on every virtual-server `tools/call`, so
/// synchronous and cheap. Upstream names (not indexes) identify upstreams: a reload that
/// reorders upstreams never mixes sessions up.
pub trait UpstreamSessionStore: Send + Sync + std::fmt::Debug {
    /// The upstream session of gateway session `session` at `upstream`, if one was opened.
    fn get(&self, session: &Digest, upstream: &str, now: u64) -> Option<UpstreamSession>;

    /// Remember the upstream session `id` of `session` at `upstream`, until the gateway
    /// session's token expires at `expires` (seconds since the epoch). Never fails: a full
    /// store forgets another session's upstream sessions (they idle out upstream, and are
    /// opened again if that session comes back).
    fn insert(&self, session: Digest, expires: u64, upstream: &str, id: UpstreamSession, now: u64);

    /// Forget one upstream session (the upstream answered 404: it no longer knows it).
    fn remove(&self, session: &Digest, upstream: &str);

    /// Forget every upstream session of `session` (it was ended by DELETE) and return the
    /// `(upstream, session id)` pairs that have an id, so the caller can DELETE them upstream.
    fn take_all(&self, session: &Digest) -> Vec<(String, String)>;

    /// Gateway sessions held (a gauge; an expired one counts until it is pruned).
    fn held(&self) -> usize;
}

/// Bound of the in-memory store, in gateway sessions (as many as the opened-session cache
/// holds). Each holds one pair per upstream its client has called, at most
/// `MAX_PER_SESSION` (16): about 100 bytes a pair, so at worst 1.6 million pairs (~160 MiB).
/// The flat table before this one held at most 100,000 pairs but scanned all of them under
/// its lock on every DELETE; this one ends a session in one removal.
pub const MAX_UPSTREAM_SESSIONS: usize = 100_000;

/// Upstreams remembered per gateway session. Most virtual servers front a handful of
/// upstreams; a client session that calls more than 16 forgets the least recently opened one
/// (and reopens it if used again: one `initialize`, never a wrong session). This is what
/// bounds the store's memory together with [`MAX_UPSTREAM_SESSIONS`].
const MAX_PER_SESSION: usize = 16;

/// The in-memory [`UpstreamSessionStore`]: one [`BoundedMap`] entry per gateway session (so
/// [`UpstreamSessionStore::take_all`] is one removal, not a scan of every session), holding
/// that session's few `(upstream, id)` pairs. When full, the gateway session closest to
/// expiry is forgotten first.
#[derive(Debug)]
pub struct MemoryUpstreamSessions {
    by_session: BoundedMap<Digest, Vec<(String, UpstreamSession)>>,
}

impl Default for MemoryUpstreamSessions {
    fn default() -> Self {
        Self::with_capacity(MAX_UPSTREAM_SESSIONS)
    }
}

impl MemoryUpstreamSessions {
    /// Room for `capacity` gateway sessions.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryUpstreamSessions {
            by_session: BoundedMap::new(capacity),
        }
    }

    /// Gateway sessions held.
    pub fn len(&self) -> usize {
        self.by_session.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_session.is_empty()
    }
}

impl UpstreamSessionStore for MemoryUpstreamSessions {
    fn get(&self, session: &Digest, upstream: &str, now: u64) -> Option<UpstreamSession> {
        self.by_session
            .read(session, now, |ups| {
                ups.iter()
                    .find(|(name, _)| name == upstream)
                    .map(|(_, id)| id.clone())
            })
            .flatten()
    }

    fn insert(&self, session: Digest, expires: u64, upstream: &str, id: UpstreamSession, now: u64) {
        self.by_session
            .upsert(session, expires, now, Vec::new, |ups| {
                if let Some(slot) = ups.iter_mut().find(|(name, _)| name == upstream) {
                    slot.1 = id;
                    return;
                }
                if ups.len() >= MAX_PER_SESSION {
                    ups.remove(0);
                }
                ups.push((upstream.to_string(), id));
            });
    }

    fn remove(&self, session: &Digest, upstream: &str) {
        // `now` 0: an expired entry is harmless to edit, and this needs no clock.
        self.by_session
            .update(session, 0, |ups| ups.retain(|(name, _)| name != upstream));
    }

    fn take_all(&self, session: &Digest) -> Vec<(String, String)> {
        self.by_session
            .remove(session)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, id)| Some((name, id?)))
            .collect()
    }

    fn held(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u32) -> Digest {
        crate::digest::keyed(&[n.to_be_bytes().as_slice()])
    }

    #[test]
    fn get_insert_remove() {
        let s = MemoryUpstreamSessions::default();
        assert_eq!(s.get(&d(1), "a", 0), None, "nothing opened");
        s.insert(d(1), 100, "a", Some("sid-a".into()), 0);
        s.insert(d(1), 100, "b", None, 0);
        assert_eq!(s.get(&d(1), "a", 0), Some(Some("sid-a".into())));
        assert_eq!(s.get(&d(1), "b", 0), Some(None), "stateless, opened");
        assert_eq!(s.get(&d(2), "a", 0), None, "another gateway session");
        s.insert(d(1), 100, "a", Some("sid-a2".into()), 0);
        assert_eq!(
            s.get(&d(1), "a", 0),
            Some(Some("sid-a2".into())),
            "replaced"
        );
        s.remove(&d(1), "a");
        assert_eq!(s.get(&d(1), "a", 0), None);
        assert_eq!(s.get(&d(1), "b", 0), Some(None), "the other stays");
    }

    #[test]
    fn take_all_returns_the_sessions_with_ids_and_forgets_them_all() {
        let s = MemoryUpstreamSessions::default();
        s.insert(d(1), 100, "a", Some("sid-a".into()), 0);
        s.insert(d(1), 100, "b", None, 0);
        s.insert(d(1), 100, "c", Some("sid-c".into()), 0);
        s.insert(d(2), 100, "a", Some("other".into()), 0);
        let mut ended = s.take_all(&d(1));
        ended.sort();
        assert_eq!(
            ended,
            [("a".into(), "sid-a".into()), ("c".into(), "sid-c".into())]
        );
        assert_eq!(s.get(&d(1), "b", 0), None);
        assert_eq!(s.get(&d(2), "a", 0), Some(Some("other".into())));
        assert!(s.take_all(&d(1)).is_empty(), "twice is nothing");
    }

    #[test]
    fn they_end_with_the_gateway_session_and_are_bounded() {
        let s = MemoryUpstreamSessions::with_capacity(2);
        s.insert(d(1), 100, "a", Some("x".into()), 0);
        assert_eq!(s.get(&d(1), "a", 100), None, "gateway session expired");
        s.insert(d(2), 300, "a", Some("y".into()), 0);
        s.insert(d(3), 200, "a", Some("z".into()), 150);
        assert_eq!(s.len(), 2, "the expired session made room");
        s.insert(d(4), 400, "a", None, 150);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&d(3), "a", 150), None, "closest to expiry went");
        for i in 0..(MAX_PER_SESSION + 10) {
            s.insert(d(4), 400, &format!("u{i}"), None, 150);
        }
        assert_eq!(s.get(&d(4), "a", 150), None, "oldest upstream forgotten");
        let newest = format!("u{}", MAX_PER_SESSION + 9);
        assert_eq!(s.get(&d(4), &newest, 150), Some(None));
    }
}
