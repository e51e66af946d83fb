//! Per-principal caps on the long-lived state a replica keeps for its callers.
//!
//! Some tables outlive the request that fills them: calls parked for their client's input
//! (`proxy::mrtr`, each holding an upstream connection and up to a few MiB of answer),
//! `subscriptions/listen` streams (`vserver::listen`, a connection and a task each) and the
//! client sessions with relayed upstream events (`vserver::events`, a broadcast buffer and
//! up to one upstream stream per upstream of the server). Each has a per-replica total; on
//! its own that total lets one caller take all of it and deny everyone else. So each also has
//! a cap per *principal* (`limits.max_*_per_principal`), the outer total staying as it was.
//!
//! The principal is the authenticated caller's identity as the decision knows it: (issuer,
//! subject) of [`crate::auth::Principal`], never a session id, a request id or any other
//! string the client chooses (a caller could mint new ones to escape its cap). Callers
//! without authentication (an `anonymous` virtual server) are one principal: nothing tells
//! them apart, so together they hold one cap's worth.
//!
//! A held place is a [`Slot`]; dropping it gives the place back. The slot lives inside what
//! it counts (the parked call, the stream's task, the events entry), so every way that
//! thing ends (finished, expired, cancelled, client gone, evicted) releases it, with no
//! decrement to forget. Counts are taken and given back under one lock, so a cap is never
//! exceeded however many requests race for its last place. A principal's count is removed
//! when it reaches zero: the table holds only principals that hold something, so it is
//! bounded by the per-replica totals. Nothing here is a metric label (principals are not).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::auth::Principal;
use crate::digest::Digest;
use crate::error::Reject;

/// Which per-principal cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cap {
    /// 2026-07-28 calls parked for their client's input (`proxy::mrtr`).
    ParkedCalls,
    /// Open server-to-client streams: a legacy session's GET stream and a 2026-07-28
    /// `subscriptions/listen` stream (`proxy::stream`).
    Streams,
    /// Client sessions with relayed upstream events (`vserver::events`).
    EventSessions,
}

impl Cap {
    /// The `limits` field that sets it.
    pub fn field(self) -> &'static str {
        match self {
            Cap::ParkedCalls => "max_parked_calls_per_principal",
            Cap::Streams => "max_streams_per_principal",
            Cap::EventSessions => "max_event_sessions_per_principal",
        }
    }

    /// What is counted, in the plural, for the refusal's message.
    pub fn what(self) -> &'static str {
        match self {
            Cap::ParkedCalls => "calls waiting for your input (InputRequiredResult)",
            Cap::Streams => "open server-to-client streams (GET streams and subscriptions/listen)",
            Cap::EventSessions => {
                "sessions with a server-to-client stream, resource subscriptions or a log level"
            }
        }
    }

    /// What the caller can do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Cap::ParkedCalls => "finish the pending calls (retry them with their inputResponses) or drop them (they expire 5 minutes after they asked), then call again",
            Cap::Streams => "close a stream you no longer need (one stream per session, or one listen stream for every notification type, is enough), then open this one again",
            Cap::EventSessions => "end the sessions you no longer use (HTTP DELETE with their Mcp-Session-Id) or let them expire, then retry",
        }
    }
}

/// A principal's key: a keyed digest of its (issuer, subject), ("", "") for anonymous
/// callers. Not reversible, so a table of them discloses nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrincipalKey(Digest);

impl PrincipalKey {
    pub fn of(principal: Option<&Principal>) -> PrincipalKey {
        let (issuer, subject) =
            principal.map_or(("", ""), |p| (p.issuer.as_str(), p.subject.as_str()));
        PrincipalKey(crate::digest::keyed(&[
            b"principal-cap",
            issuer.as_bytes(),
            subject.as_bytes(),
        ]))
    }
}

type Table = HashMap<(Cap, PrincipalKey), usize>;

/// The per-principal counts of one replica (in `Shared`: a reload keeps them, and a cap
/// lowered by a reload applies to the next acquisition; places held stay held).
#[derive(Debug, Default)]
pub struct Counters {
    table: Arc<Mutex<Table>>,
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // Every change below is one map operation: a poisoned lock still holds sound counts.
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Counters {
    /// Take one place of `cap` for `who`, unless it already holds `limit`: then the refusal
    /// (429) names the cap, its value and what to do.
    pub fn acquire(&self, cap: Cap, who: PrincipalKey, limit: usize) -> Result<Slot, Reject> {
        let mut table = lock(&self.table);
        let held = table.entry((cap, who)).or_insert(0);
        if *held >= limit {
            if *held == 0 {
                table.remove(&(cap, who));
            }
            return Err(Reject::PrincipalCapReached { cap, limit });
        }
        *held += 1;
        Ok(Slot {
            table: self.table.clone(),
            key: (cap, who),
        })
    }

    /// Whether `who` has a place of `cap` left now (the same refusal as [`Self::acquire`]
    /// when not). Advisory: for refusing a request early, before the work that would take
    /// the place; the place itself is taken with `acquire`, which alone is exact.
    pub fn room(&self, cap: Cap, who: PrincipalKey, limit: usize) -> Result<(), Reject> {
        if self.held(cap, who) >= limit {
            return Err(Reject::PrincipalCapReached { cap, limit });
        }
        Ok(())
    }

    /// How many places of `cap` `who` holds.
    pub fn held(&self, cap: Cap, who: PrincipalKey) -> usize {
        lock(&self.table).get(&(cap, who)).copied().unwrap_or(0)
    }

    /// Principal-and-cap pairs with a place held (for tests: the table shrinks to zero).
    pub fn len(&self) -> usize {
        lock(&self.table).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One place held under a cap; dropping it gives the place back.
#[must_use = "the place is given back when the slot drops"]
pub struct Slot {
    table: Arc<Mutex<Table>>,
    key: (Cap, PrincipalKey),
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("cap", &self.key.0).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        if let Some(held) = table.get_mut(&self.key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                table.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(issuer: &str, subject: &str) -> Principal {
        Principal {
            issuer: issuer.into(),
            subject: subject.into(),
            name: None,
            groups: vec![],
            roles: vec![],
            scopes: vec![],
            agent: None,
            method: crate::auth::AuthMethod::ApiKey,
            expires_at: None,
            token: None,
        }
    }

    #[test]
    fn a_principal_at_its_cap_is_refused_and_another_is_not() {
        let c = Counters::default();
        let alice = PrincipalKey::of(Some(&principal("iss", "alice")));
        let bob = PrincipalKey::of(Some(&principal("iss", "bob")));
        let a1 = c.acquire(Cap::ParkedCalls, alice, 2);
        let a2 = c.acquire(Cap::ParkedCalls, alice, 2);
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(
            c.acquire(Cap::ParkedCalls, alice, 2).err(),
            Some(Reject::PrincipalCapReached {
                cap: Cap::ParkedCalls,
                limit: 2
            })
        );
        // Another principal, and another cap of the same principal, are counted apart.
        assert!(c.acquire(Cap::ParkedCalls, bob, 2).is_ok());
        assert!(c.acquire(Cap::Streams, alice, 2).is_ok());
        assert_eq!(c.held(Cap::ParkedCalls, alice), 2);
    }

    #[test]
    fn a_dropped_slot_gives_its_place_back_and_empty_counts_leave_the_table() {
        let c = Counters::default();
        let who = PrincipalKey::of(None);
        let s = c.acquire(Cap::Streams, who, 1).ok();
        assert!(c.acquire(Cap::Streams, who, 1).is_err());
        // A refusal at zero leaves nothing behind either.
        assert!(c.acquire(Cap::EventSessions, who, 0).is_err());
        assert_eq!(c.len(), 1);
        drop(s);
        assert!(c.is_empty(), "no entry for a principal that holds nothing");
        assert!(c.acquire(Cap::Streams, who, 1).is_ok());
        assert!(c.is_empty(), "the temporary slot dropped at once");
    }

    #[test]
    fn the_key_is_the_issuer_and_subject_only() {
        let a = principal("https://idp-a", "alice");
        let mut a_again = principal("https://idp-a", "alice");
        a_again.groups = vec!["admins".into()];
        a_again.agent = Some("bot".into());
        assert_eq!(PrincipalKey::of(Some(&a)), PrincipalKey::of(Some(&a_again)));
        let other_issuer = principal("https://idp-b", "alice");
        assert_ne!(
            PrincipalKey::of(Some(&a)),
            PrincipalKey::of(Some(&other_issuer))
        );
        assert_ne!(PrincipalKey::of(Some(&a)), PrincipalKey::of(None));
    }

    #[test]
    fn racing_acquisitions_never_exceed_the_cap_and_all_come_back() {
        let c = Arc::new(Counters::default());
        let who = PrincipalKey::of(Some(&principal("iss", "racer")));
        let granted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, granted, peak) = (c.clone(), granted.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        if let Ok(slot) = c.acquire(Cap::EventSessions, who, 3) {
                            granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            peak.fetch_max(
                                c.held(Cap::EventSessions, who),
                                std::sync::atomic::Ordering::Relaxed,
                            );
                            drop(slot);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 3);
        assert!(granted.load(std::sync::atomic::Ordering::Relaxed) > 0);
        assert!(c.is_empty());
    }
}
