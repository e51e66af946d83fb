//! The in-memory backend: every counter of every limit on this replica, in [`SHARDS`]
//! [`BoundedMap`]s picked by key hash, so concurrent calls of different callers rarely
//! meet on a lock (each critical section is one hash probe and a few integer operations).
//!
//! Bounded at [`MAX_KEYS`] counters in all ([`SHARDS`] × 4,096). A new key in a full shard
//! first drops counters that expired (a rate back to full, a budget window over, no call in
//! flight for [`HOLD_NS`]), then the one closest to expiry: the counter whose loss changes
//! least. Lives in `Shared`, so a configuration reload keeps every count.

use std::hash::BuildHasher;

use std::sync::Arc;

use super::gcra;
use crate::store::BoundedMap;

/// Shards (a power of two).
pub const SHARDS: usize = 16;
/// Most counters one replica keeps, over all limits.
pub const MAX_KEYS: usize = SHARDS * 4_096;
/// How long a concurrency counter is kept after its last acquire (1 h): a call holding a
/// permit longer than that may find its counter gone, and the limit briefly undercounts.
pub(crate) const HOLD_NS: u64 = 3_600 * 1_000_000_000;

/// One counter: the state of every kind a limit has, for one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counter {
    /// GCRA theoretical arrival time (ns since the epoch; 0: unused).
    pub(crate) tat: u64,
    /// Calls holding a permit.
    pub(crate) in_flight: u32,
    /// Index of the budget window `spent` counts in.
    pub(crate) window: u64,
    pub(crate) spent: u64,
}

/// What one call asks of one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ask {
    /// (emission interval ns, burst).
    pub(crate) rate: Option<(u64, u64)>,
    pub(crate) concurrency: Option<u32>,
    pub(crate) budget: Option<BudgetAsk>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BudgetAsk {
    pub(crate) units: u64,
    pub(crate) per_ns: u64,
    /// Units that must be left for the call to pass (the fixed cost, or 1 when metered).
    pub(crate) need: u64,
    /// Units charged now (the fixed cost; 0 when metered).
    pub(crate) charge: u64,
}

/// Which kind refused, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Rate { retry_ns: u64 },
    Concurrency,
    Budget { retry_ns: u64 },
}

/// Check every kind of `ask` against `c` at `now`, and only if all pass, take them: the
/// rate's slot, the budget's fixed charge, a concurrency permit. The Redis script is the
/// same function.
pub(crate) fn apply(c: &mut Counter, ask: &Ask, now: u64) -> Result<(), Exceeded> {
    let mut tat = None;
    if let Some((t, burst)) = ask.rate {
        match gcra::rate(c.tat, now, t, burst) {
            gcra::RateVerdict::Allowed { tat: next, .. } => tat = Some(next),
            gcra::RateVerdict::Limited { retry_ns } => return Err(Exceeded::Rate { retry_ns }),
        }
    }
    let mut window = None;
    if let Some(b) = ask.budget {
        let (index, left_ns) = gcra::window(now, b.per_ns);
        let spent = if c.window == index { c.spent } else { 0 };
        if !gcra::budget_fits(spent, b.units, b.need) {
            return Err(Exceeded::Budget { retry_ns: left_ns });
        }
        window = Some((index, spent.saturating_add(b.charge)));
    }
    if let Some(max) = ask.concurrency {
        if c.in_flight >= max {
            return Err(Exceeded::Concurrency);
        }
        c.in_flight += 1;
    }
    if let Some(t) = tat {
        c.tat = t;
    }
    if let Some((index, spent)) = window {
        c.window = index;
        c.spent = spent;
    }
    Ok(())
}

/// The sharded table.
pub(crate) struct MemoryCounters {
    shards: Vec<BoundedMap<Arc<str>, Counter>>,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for MemoryCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCounters")
            .field("shards", &self.shards.len())
            .field("capacity", &MAX_KEYS)
            .finish()
    }
}

impl Default for MemoryCounters {
    fn default() -> Self {
        MemoryCounters::with_capacity(MAX_KEYS)
    }
}

impl MemoryCounters {
    /// A table of at most `capacity` counters (rounded up to a multiple of [`SHARDS`]).
    pub(crate) fn with_capacity(capacity: usize) -> MemoryCounters {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        MemoryCounters {
            shards: (0..SHARDS).map(|_| BoundedMap::new(per_shard)).collect(),
            hasher: Default::default(),
        }
    }

    fn shard(&self, key: &str) -> &BoundedMap<Arc<str>, Counter> {
        let i = (self.hasher.hash_one(key) as usize) & (SHARDS - 1);
        &self.shards[i]
    }

    /// [`apply`] `ask` to the counter under `key`; `span_ns` is how long it must be kept.
    /// Allowed, the counter's arrival time after it (what [`MemoryCounters::refund`] needs).
    pub(crate) fn acquire(
        &self,
        key: &Arc<str>,
        ask: &Ask,
        now: u64,
        span_ns: u64,
    ) -> Result<u64, Exceeded> {
        let keep = if ask.concurrency.is_some() {
            span_ns.max(HOLD_NS)
        } else {
            span_ns
        };
        // One key allocation per call: the table and the caller's permit share it.
        self.shard(key).upsert(
            key.clone(),
            now.saturating_add(keep),
            now,
            Counter::default,
            |c| apply(c, ask, now).map(|()| c.tat),
        )
    }

    /// Give back a concurrency permit taken under `key`.
    pub(crate) fn release(&self, key: &str, now: u64) {
        self.shard(key).update(key, now, |c| {
            c.in_flight = c.in_flight.saturating_sub(1);
        });
    }

    /// Charge `units` to the budget window `now` falls in (a metered cost, after the call).
    pub(crate) fn charge(&self, key: &Arc<str>, units: u64, per_ns: u64, now: u64, span_ns: u64) {
        let (index, _) = gcra::window(now, per_ns);
        self.shard(key).upsert(
            key.clone(),
            now.saturating_add(span_ns),
            now,
            Counter::default,
            |c| {
                if c.window != index {
                    c.window = index;
                    c.spent = 0;
                }
                c.spent = c.spent.saturating_add(units);
            },
        );
    }

    /// Give back what a call that never ran took under `key`: `slot` is its rate slot (the
    /// emission interval, and the arrival time its acquire left), `charge` its fixed charge
    /// (units, and the window they went to: given back only while that window is still the
    /// counter's, never below zero).
    ///
    /// A slot is the interval before the arrival time the acquire left. Only what of it is
    /// still ahead goes back: once the counter has drained past it (a refund after a slow
    /// connect timeout), the slot has already come back on its own, and subtracting a whole
    /// interval would hand out a slot nobody gave up. Later calls' slots add up after it in
    /// any order, so the arrival time moves back by that much whatever came after.
    pub(crate) fn refund(
        &self,
        key: &str,
        slot: Option<(u64, u64)>,
        charge: Option<(u64, u64)>,
        now: u64,
    ) {
        self.shard(key).update(key, now, |c| {
            if let Some((t, tat)) = slot {
                c.tat = c.tat.saturating_sub(t.min(tat.saturating_sub(now)));
            }
            if let Some((units, window)) = charge {
                if c.window == window {
                    c.spent = c.spent.saturating_sub(units);
                }
            }
        });
    }

    /// The live counter under `key`, if any.
    pub(crate) fn peek(&self, key: &str, now: u64) -> Option<Counter> {
        self.shard(key).get(key, now)
    }

    /// Counters held (expired ones included until evicted).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(BoundedMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn rate(n: u64) -> Ask {
        Ask {
            rate: Some((S, n)),
            ..Default::default()
        }
    }

    #[test]
    fn a_refused_kind_takes_nothing_from_the_others() {
        let m = MemoryCounters::default();
        let ask = Ask {
            rate: Some((S, 2)),
            concurrency: Some(1),
            budget: Some(BudgetAsk {
                units: 10,
                per_ns: 3_600 * S,
                need: 3,
                charge: 3,
            }),
        };
        let now = 100 * S;
        assert_eq!(m.acquire(&"k".into(), &ask, now, S).map(drop), Ok(()));
        // The permit is held: concurrency refuses, and neither the rate nor the budget pay.
        assert_eq!(
            m.acquire(&"k".into(), &ask, now, S),
            Err(Exceeded::Concurrency)
        );
        let c = m.peek("k", now).unwrap();
        assert_eq!((c.in_flight, c.spent, c.tat), (1, 3, now + S));
        m.release("k", now);
        assert_eq!(m.acquire(&"k".into(), &ask, now, S).map(drop), Ok(()));
        m.release("k", now);
        assert!(matches!(
            m.acquire(&"k".into(), &ask, now, S),
            Err(Exceeded::Rate { retry_ns }) if retry_ns == S
        ));
        // Budget: 6 of 10 spent; a cost of 3 fits once more, then not.
        let ask = Ask { rate: None, ..ask };
        assert_eq!(m.acquire(&"k".into(), &ask, now, S).map(drop), Ok(()));
        m.release("k", now);
        assert!(matches!(
            m.acquire(&"k".into(), &ask, now, S),
            Err(Exceeded::Budget { retry_ns }) if retry_ns == 3_500 * S
        ));
        // The next window starts empty.
        assert_eq!(m.acquire(&"k".into(), &ask, 3_600 * S, S).map(drop), Ok(()));
    }

    #[test]
    fn metered_charges_land_after_the_call_and_block_the_next() {
        let m = MemoryCounters::default();
        let ask = Ask {
            budget: Some(BudgetAsk {
                units: 100,
                per_ns: 60 * S,
                need: 1,
                charge: 0,
            }),
            ..Default::default()
        };
        assert_eq!(m.acquire(&"k".into(), &ask, 0, 60 * S).map(drop), Ok(()));
        m.charge(&"k".into(), 150, 60 * S, 1, 60 * S);
        assert!(matches!(
            m.acquire(&"k".into(), &ask, 2, 60 * S),
            Err(Exceeded::Budget { .. })
        ));
    }

    #[test]
    fn the_table_is_bounded_and_keys_are_independent() {
        let m = MemoryCounters::with_capacity(32);
        for i in 0..1_000 {
            assert_eq!(
                m.acquire(&format!("k{i}").into(), &rate(1), 0, S).map(drop),
                Ok(())
            );
        }
        assert!(m.len() <= 32, "{}", m.len());
        // Expired counters go first: a fresh key at a later time finds room.
        assert_eq!(
            m.acquire(&"late".into(), &rate(1), 10 * S, S).map(drop),
            Ok(())
        );
        assert!(m.acquire(&"late".into(), &rate(1), 10 * S, S).is_err());
    }
}
