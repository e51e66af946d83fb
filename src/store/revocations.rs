//! Gateway sessions ended by DELETE, until their tokens expire: [`RevocationStore`] and its
//! in-memory implementation, [`MemoryRevocations`].
//!
//! A sealed session token stays genuine until its expiry, so ending a session means
//! remembering it. In memory that is per replica (a DELETE on one replica does not end the
//! session on another); a shared backend (Redis, say) would implement the same trait.

use crate::digest::Digest;

use super::bounded::BoundedMap;

/// Where ended sessions are remembered. Called on every virtual-server request
/// (`contains`) and on DELETE (`revoke`), so both are synchronous and must be cheap.
pub trait RevocationStore: Send + Sync + std::fmt::Debug {
    /// Whether the session with token digest `session` was ended. An implementation that
    /// cannot answer must say `true` (refuse the session), never `false`.
    fn contains(&self, session: &Digest) -> bool;

    /// Remember that `session`, whose token expires at `expires` (seconds since the epoch),
    /// has ended. `Err` when there is no room: the session was NOT ended, and the caller must
    /// refuse the DELETE (503 `SessionRevocationsFull`) rather than report it ended while its
    /// token still works.
    fn revoke(&self, session: Digest, expires: u64, now: u64) -> Result<(), RevocationsFull>;
}

/// [`RevocationStore::revoke`] found no room (the table holds `capacity` unexpired entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationsFull {
    pub capacity: usize,
}

/// Bound of the in-memory revocation table (about 100 bytes an entry with its expiry index).
pub const MAX_REVOKED: usize = 100_000;

/// The in-memory [`RevocationStore`]: a [`BoundedMap`] that, when full, drops expired entries
/// (an expired token no longer opens, so its entry protects nothing) and otherwise refuses:
/// it never evicts a live entry. Refusing costs O(1) plus the purge of what has expired.
#[derive(Debug)]
pub struct MemoryRevocations {
    /// Token digest -> (nothing), until the token's expiry.
    ended: BoundedMap<Digest, ()>,
}

impl Default for MemoryRevocations {
    fn default() -> Self {
        Self::with_capacity(MAX_REVOKED)
    }
}

impl MemoryRevocations {
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryRevocations {
            ended: BoundedMap::new(capacity),
        }
    }

    /// Whether the session `d` was ended here. Expired entries still answer `true` until
    /// purged: harmless (their tokens no longer open) and it needs no clock.
    pub fn contains(&self, d: &Digest) -> bool {
        self.ended.holds(d)
    }

    /// See [`RevocationStore::revoke`].
    pub fn revoke(&self, d: Digest, expires: u64, now: u64) -> Result<(), RevocationsFull> {
        self.ended
            .try_insert(d, (), expires, now)
            .map_err(|full| RevocationsFull {
                capacity: full.capacity,
            })
    }

    /// Entries held (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.ended.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ended.is_empty()
    }
}

impl RevocationStore for MemoryRevocations {
    fn contains(&self, session: &Digest) -> bool {
        MemoryRevocations::contains(self, session)
    }

    fn revoke(&self, session: Digest, expires: u64, now: u64) -> Result<(), RevocationsFull> {
        MemoryRevocations::revoke(self, session, expires, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u32) -> Digest {
        crate::digest::keyed(&[n.to_be_bytes().as_slice()])
    }

    #[test]
    fn revoked_sessions_are_remembered() {
        let r = MemoryRevocations::with_capacity(4);
        assert!(!r.contains(&digest(1)));
        r.revoke(digest(1), 100, 10).unwrap();
        assert!(r.contains(&digest(1)));
        assert!(!r.contains(&digest(2)));
        // Through the trait, as a second backend would be used.
        let store: &dyn RevocationStore = &r;
        assert!(store.contains(&digest(1)));
    }

    #[test]
    fn a_full_table_drops_expired_entries_before_taking_a_new_one() {
        let r = MemoryRevocations::with_capacity(3);
        r.revoke(digest(1), 50, 10).unwrap(); // expires at 50
        r.revoke(digest(2), 500, 10).unwrap();
        r.revoke(digest(3), 60, 10).unwrap(); // expires at 60
        assert_eq!(r.len(), 3);
        // At 100 both short-lived tokens are dead: pruned, and the new one fits.
        r.revoke(digest(4), 500, 100).unwrap();
        assert_eq!(r.len(), 2);
        assert!(!r.contains(&digest(1)) && !r.contains(&digest(3)));
        assert!(r.contains(&digest(2)) && r.contains(&digest(4)));
    }

    #[test]
    fn a_table_full_of_live_entries_refuses_and_keeps_what_it_has() {
        let r = MemoryRevocations::with_capacity(2);
        r.revoke(digest(1), 500, 10).unwrap();
        r.revoke(digest(2), 500, 10).unwrap();
        assert_eq!(
            r.revoke(digest(3), 500, 100),
            Err(RevocationsFull { capacity: 2 })
        );
        assert!(
            !r.contains(&digest(3)),
            "not recorded, so not reported ended"
        );
        assert!(
            r.contains(&digest(1)) && r.contains(&digest(2)),
            "nothing evicted"
        );
        // Revoking one already held needs no room.
        r.revoke(digest(1), 500, 100).unwrap();
        // Once entries expire there is room again.
        r.revoke(digest(3), 900, 500).unwrap();
        assert_eq!(r.len(), 1);
    }
}
