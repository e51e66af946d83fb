//! [`MemoryApprovals`]: approvals in this process, for a single replica (no `redis`
//! section). It lives in `Shared`, so a configuration reload keeps outstanding approvals
//! (those whose rules changed no longer match: their binding carries the old version).
//!
//! Bounded by the caller's `limit` (`approvals.max_pending`, default 10,000): a full table
//! first drops expired entries, then refuses new requests rather than forget a live
//! approval. One `Mutex` over two maps (by id, by binding) so every method is atomic; the
//! table sees approval-gated calls and approver actions only, never the plain call path.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::binding::Binding;
use super::record::{Approval, State, Verdict};
use super::store::{sort_and_cut, ApprovalStore, DecideError, StoreError};

/// In-memory approvals.
#[derive(Debug, Default)]
pub struct MemoryApprovals {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Approval>,
    /// Binding (hex) -> id.
    by_binding: HashMap<String, String>,
}

impl Inner {
    fn live_for(&self, binding: &str, now: u64) -> Option<&Approval> {
        let id = self.by_binding.get(binding)?;
        self.by_id.get(id).filter(|a| a.live(now))
    }

    fn remove(&mut self, id: &str) {
        if let Some(a) = self.by_id.remove(id) {
            if self.by_binding.get(&a.binding).is_some_and(|i| i == id) {
                self.by_binding.remove(&a.binding);
            }
        }
    }

    fn put(&mut self, a: Approval) {
        if let Some(old) = self.by_binding.insert(a.binding.clone(), a.id.clone()) {
            self.by_id.remove(&old);
        }
        self.by_id.insert(a.id.clone(), a);
    }

    /// O(n), run only when the table is full.
    fn purge(&mut self, now: u64) {
        let dead: Vec<String> = self
            .by_id
            .values()
            .filter(|a| !a.live(now))
            .map(|a| a.id.clone())
            .collect();
        for id in dead {
            self.remove(&id);
        }
    }
}

impl MemoryApprovals {
    /// The tables, also after a panic elsewhere poisoned the lock: every method leaves both
    /// maps consistent before it can panic.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Approvals held, live or not yet purged.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ApprovalStore for MemoryApprovals {
    async fn request(
        &self,
        binding: &Binding,
        new: Approval,
        limit: usize,
        now: u64,
    ) -> Result<Approval, StoreError> {
        let mut inner = self.lock();
        if let Some(a) = inner.live_for(&binding.hex(), now) {
            return Ok(a.clone());
        }
        if inner.by_id.len() >= limit {
            inner.purge(now);
            if inner.by_id.len() >= limit {
                return Err(StoreError::Full { limit });
            }
        }
        inner.put(new.clone());
        Ok(new)
    }

    async fn get(&self, id: &str, now: u64) -> Result<Option<Approval>, StoreError> {
        Ok(self.lock().by_id.get(id).filter(|a| a.live(now)).cloned())
    }

    async fn list(&self, limit: usize, now: u64) -> Result<Vec<Approval>, StoreError> {
        let live = self
            .lock()
            .by_id
            .values()
            .filter(|a| a.live(now))
            .cloned()
            .collect();
        Ok(sort_and_cut(live, limit))
    }

    async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        approver: &str,
        ttl: u64,
        now: u64,
    ) -> Result<Approval, DecideError> {
        let mut inner = self.lock();
        let a = inner
            .by_id
            .get_mut(id)
            .filter(|a| a.live(now))
            .ok_or_else(|| DecideError::NotFound(id.to_string()))?;
        if a.state != State::Pending {
            return Err(DecideError::AlreadyDecided(Box::new(a.clone())));
        }
        a.state = match verdict {
            Verdict::Approve => State::Approved,
            Verdict::Deny => State::Denied,
        };
        a.decided_by = Some(approver.to_string());
        a.decided_at = Some(now);
        a.expires_at = now.saturating_add(ttl);
        Ok(a.clone())
    }

    async fn consume(&self, binding: &Binding, now: u64) -> Result<Option<Approval>, StoreError> {
        let mut inner = self.lock();
        let Some(a) = inner
            .live_for(&binding.hex(), now)
            .filter(|a| a.state == State::Approved)
            .cloned()
        else {
            return Ok(None);
        };
        inner.remove(&a.id);
        Ok(Some(a))
    }

    async fn restore(&self, approval: &Approval, now: u64) -> Result<(), StoreError> {
        if !approval.live(now) || approval.state != State::Approved {
            return Ok(());
        }
        let mut inner = self.lock();
        // A pending request an identical call made meanwhile gives way to the approval.
        if inner
            .live_for(&approval.binding, now)
            .is_some_and(|a| a.state != State::Pending)
        {
            return Ok(());
        }
        inner.put(approval.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn approval(id: &str, binding: &Binding, now: u64) -> Approval {
        Approval {
            id: id.into(),
            state: State::Pending,
            created_at: now,
            expires_at: now + 60,
            issuer: "iss".into(),
            subject: "alice".into(),
            agent: None,
            server: None,
            upstream: "up".into(),
            tool: "t".into(),
            arguments: "{}".into(),
            arguments_truncated: false,
            arguments_sha256: String::new(),
            binding: binding.hex(),
            decided_by: None,
            decided_at: None,
        }
    }

    #[tokio::test]
    async fn request_reuses_consume_takes_once_restore_puts_back() {
        let s = MemoryApprovals::default();
        let b = Binding([1; 32]);
        let a = s
            .request(&b, approval("a", &b, 100), 10, 100)
            .await
            .unwrap();
        let again = s
            .request(&b, approval("b", &b, 101), 10, 101)
            .await
            .unwrap();
        assert_eq!(again.id, "a", "a retry before the decision keeps its id");
        assert_eq!(
            s.consume(&b, 101).await.unwrap(),
            None,
            "pending is not approved"
        );
        let d = s
            .decide("a", Verdict::Approve, "ops", 60, 102)
            .await
            .unwrap();
        assert_eq!((d.state, d.expires_at), (State::Approved, 162));
        assert!(matches!(
            s.decide("a", Verdict::Deny, "ops", 60, 103).await,
            Err(DecideError::AlreadyDecided(_))
        ));
        let taken = s.consume(&b, 103).await.unwrap().unwrap();
        assert_eq!(taken.id, a.id);
        assert_eq!(s.consume(&b, 103).await.unwrap(), None, "exactly once");
        assert_eq!(s.get("a", 103).await.unwrap(), None);
        s.restore(&taken, 104).await.unwrap();
        assert_eq!(s.consume(&b, 104).await.unwrap().unwrap().id, "a");
        s.restore(&taken, 200).await.unwrap();
        assert!(s.is_empty(), "an expired approval is not restored");
    }

    #[tokio::test]
    async fn expiry_and_the_bound() {
        let s = MemoryApprovals::default();
        let (b1, b2, b3) = (Binding([1; 32]), Binding([2; 32]), Binding([3; 32]));
        s.request(&b1, approval("a", &b1, 100), 2, 100)
            .await
            .unwrap();
        s.request(&b2, approval("b", &b2, 100), 2, 100)
            .await
            .unwrap();
        assert_eq!(
            s.request(&b3, approval("c", &b3, 100), 2, 100).await,
            Err(StoreError::Full { limit: 2 })
        );
        assert!(matches!(
            s.decide("a", Verdict::Approve, "ops", 60, 160).await,
            Err(DecideError::NotFound(_))
        ));
        // Past expiry the full table makes room, and b1 gets a new id.
        s.request(&b3, approval("c", &b3, 160), 2, 160)
            .await
            .unwrap();
        let fresh = s
            .request(&b1, approval("d", &b1, 160), 2, 160)
            .await
            .unwrap();
        assert_eq!(fresh.id, "d");
        let ids: Vec<String> = s
            .list(10, 160)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids.len(), 2);
    }

    #[tokio::test]
    async fn list_puts_pending_first() {
        let s = MemoryApprovals::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            let b = Binding([i as u8; 32]);
            s.request(&b, approval(id, &b, 100 + i as u64), 10, 100)
                .await
                .unwrap();
        }
        s.decide("c", Verdict::Deny, "ops", 60, 103).await.unwrap();
        let ids: Vec<String> = s
            .list(10, 103)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["b", "a", "c"]);
        assert_eq!(s.list(1, 103).await.unwrap().len(), 1);
    }
}
