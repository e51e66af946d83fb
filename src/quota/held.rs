//! [`Held`]: what an allowed call owes its limits until its response ends. It rides in the
//! request's `Decision` (so in `RequestCtx`) and is settled in the `logging` phase:
//! concurrency permits are given back when it drops (whatever ended the request: a
//! response, an error, a client that went away), metered costs are charged by
//! [`Held::finish`] from the response's size.

use std::sync::Arc;

use super::clock::Clock;
use super::memory::MemoryCounters;
use super::redis::{self as backend, Keys};
use crate::store::redis::RedisStore;

/// Where a counter lives.
#[derive(Debug, Clone)]
pub(crate) enum Counter {
    Memory(Arc<MemoryCounters>, Arc<str>),
    Redis(Arc<RedisStore>, Keys),
}

/// A concurrency permit; dropping it gives it back.
#[derive(Debug)]
pub(crate) struct Permit {
    pub(crate) counter: Counter,
    /// The Redis sorted-set member of this call.
    pub(crate) member: String,
    pub(crate) clock: Clock,
}

impl Drop for Permit {
    fn drop(&mut self) {
        match &self.counter {
            Counter::Memory(m, key) => m.release(key, self.clock.now_ns()),
            Counter::Redis(store, keys) => backend::release(
                store.clone(),
                keys.conc.clone(),
                std::mem::take(&mut self.member),
            ),
        }
    }
}

/// A budget charged from the response when it ends.
#[derive(Debug, Clone)]
pub(crate) struct Metered {
    pub(crate) counter: Counter,
    pub(crate) per_ns: u64,
    pub(crate) span_ns: u64,
}

/// What one limit counted against a call, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The limit's configured name.
    pub limit: String,
    /// Budget units charged: the fixed cost, or (metered) the response's approximate
    /// tokens once it ended; `None` for a limit without a budget (rate or concurrency
    /// only: the call counted as one request).
    pub units: Option<u64>,
    /// The units are the response's tokens, set by [`Held::finish`].
    pub metered: bool,
}

/// What one counter took from a call when it was checked, given back by [`Held::refund`]
/// if the call never runs.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) counter: Counter,
    /// The rate slot the call took: (the emission interval, the arrival time its acquire
    /// left), in ns.
    pub(crate) slot: Option<(u64, u64)>,
    /// A fixed budget charge: (units, the index of the window it went to).
    pub(crate) charge: Option<(u64, u64)>,
}

/// Permits and pending charges of one call. Empty (the default) for calls no limit covers.
#[derive(Debug, Default)]
pub struct Held {
    pub(crate) permits: Vec<Permit>,
    pub(crate) metered: Vec<Metered>,
    /// What the check took up front (rate slots, fixed charges), while the call may still
    /// not run.
    pub(crate) taken: Vec<Taken>,
    pub(crate) clock: Clock,
    /// Every limit that counted the call, in configuration order (one per limit, its
    /// per-group counters together).
    pub(crate) charges: Vec<Charge>,
}

impl Held {
    /// Charge metered costs for a response of `response_bytes` bytes (approximate tokens =
    /// bytes / 4, rounded up), then give back the permits. Called once, when the response
    /// ended; a `Held` dropped without it (the request never reached `logging`) still gives
    /// its permits back.
    pub fn finish(&mut self, response_bytes: u64) {
        let tokens = super::gcra::approx_tokens(response_bytes);
        for c in self.charges.iter_mut().filter(|c| c.metered) {
            c.units = Some(tokens);
        }
        let now = self.clock.now_ns();
        for m in self.metered.drain(..) {
            if tokens == 0 {
                continue;
            }
            match m.counter {
                Counter::Memory(t, key) => t.charge(&key, tokens, m.per_ns, now, m.span_ns),
                Counter::Redis(store, keys) => backend::charge(store, &keys, tokens, m.per_ns, now),
            }
        }
        self.permits.clear();
    }

    /// Give back what the check took for a call that never ran: refused by a later limit or
    /// a later decision step, or never delivered to its upstream. Rate slots and fixed
    /// budget charges go back to their counters, metered budgets are not charged, and the
    /// call lists no charges (its audit record says nothing counted it). Permits go back as
    /// always, when it drops. Once: what is given back is gone from here.
    pub fn refund(&mut self) {
        let now = self.clock.now_ns();
        for t in self.taken.drain(..) {
            match t.counter {
                Counter::Memory(m, key) => m.refund(&key, t.slot, t.charge, now),
                Counter::Redis(store, keys) => backend::refund(store, &keys, t.slot, t.charge, now),
            }
        }
        self.metered.clear();
        self.charges.clear();
    }

    /// Take the charges out (for the audit record, once the call is settled).
    pub fn take_charges(&mut self) -> Vec<Charge> {
        std::mem::take(&mut self.charges)
    }

    /// What a call that waits for its client's input (MRTR, `proxy::mrtr`) carries into
    /// its client's retry, which is the same call and is charged nothing new: its
    /// concurrency permits (moved: the call is still in flight upstream, until its last
    /// round ends or it expires) and its metered budgets (each round's response is charged
    /// to them). The charges already made stay here for this round's audit record.
    pub fn carry(&mut self) -> Held {
        Held {
            permits: std::mem::take(&mut self.permits),
            metered: self.metered.clone(),
            // This round was delivered: what it took stays taken.
            taken: Vec::new(),
            clock: self.clock.clone(),
            charges: self
                .charges
                .iter()
                .filter(|c| c.metered)
                .map(|c| Charge {
                    units: None,
                    ..c.clone()
                })
                .collect(),
        }
    }

    /// Take back what [`Held::carry`] gave a call that could not park after all.
    pub fn uncarry(&mut self, mut carried: Held) {
        self.permits.append(&mut carried.permits);
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.permits.is_empty() && self.metered.is_empty()
    }
}
