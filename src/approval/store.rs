//! [`ApprovalStore`]: where approvals live, in memory per replica ([`super::MemoryApprovals`])
//! or in Redis shared by every replica ([`super::RedisApprovals`]).
//!
//! Every method takes `now` (seconds since the epoch, from the gateway's
//! [`super::Clock`]) instead of reading a clock, so expiry is the caller's clock in both
//! stores and tests move it without sleeping. An approval whose `expires_at <= now` is
//! gone for every method, whether or not the store has dropped it yet.

use async_trait::async_trait;

use super::binding::Binding;
use super::record::{Approval, Verdict};

/// The store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `limit` live approvals are held: no new one until some expire or are used.
    #[error("{limit} approvals are already waiting or unused (approvals.max_pending)")]
    Full { limit: usize },
    /// The shared store did not answer.
    #[error("{0}")]
    Unavailable(String),
}

/// Why [`ApprovalStore::decide`] did not record a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// No live approval has this id (never existed, expired, or already used).
    #[error("no pending approval {0}: it does not exist, expired or was already used")]
    NotFound(String),
    /// It was decided before; the decision stands.
    #[error("approval {} is already {}", .0.id, .0.state.as_str())]
    AlreadyDecided(Box<Approval>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Approvals by id and by [`Binding`]. Implementations are atomic per method: two replicas
/// consuming the same approval at once get it exactly once between them.
#[async_trait]
pub trait ApprovalStore: Send + Sync + std::fmt::Debug {
    /// The live approval for `binding` in whatever state, or, when there is none, `new`
    /// (pending) stored and returned: retries before a decision get the same id instead of
    /// piling up new ones. Refused with [`StoreError::Full`] when `limit` are held.
    async fn request(
        &self,
        binding: &Binding,
        new: Approval,
        limit: usize,
        now: u64,
    ) -> Result<Approval, StoreError>;

    /// The live approval with this id.
    async fn get(&self, id: &str, now: u64) -> Result<Option<Approval>, StoreError>;

    /// At most `limit` live approvals: pending ones first, each group newest first.
    async fn list(&self, limit: usize, now: u64) -> Result<Vec<Approval>, StoreError>;

    /// Approve or deny a pending approval; it then lives `ttl` seconds more (an approved one
    /// waits that long for its retry, a denied one refuses retries that long).
    async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        approver: &str,
        ttl: u64,
        now: u64,
    ) -> Result<Approval, DecideError>;

    /// Take the approved approval for `binding`, if there is one: it is removed, so exactly
    /// one call gets it.
    async fn consume(&self, binding: &Binding, now: u64) -> Result<Option<Approval>, StoreError>;

    /// Put back an approval [`Self::consume`] took, when a later step refused the call it
    /// was consumed for (nothing ran, so the approval is not spent). Does nothing once it has
    /// expired.
    async fn restore(&self, approval: &Approval, now: u64) -> Result<(), StoreError>;
}

/// Order for [`ApprovalStore::list`]: pending first, then newest first; then cut.
pub(super) fn sort_and_cut(mut all: Vec<Approval>, limit: usize) -> Vec<Approval> {
    use super::record::State;
    all.sort_by(|a, b| {
        (a.state != State::Pending)
            .cmp(&(b.state != State::Pending))
            .then(b.created_at.cmp(&a.created_at))
            .then(a.id.cmp(&b.id))
    });
    all.truncate(limit);
    all
}
