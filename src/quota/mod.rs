//! Quotas and budgets: how much a caller may use, checked in the decision step before a
//! `tools/call` goes out (`decision::Step::Quota`, after argument policy, so a refused call
//! burns nothing, and before the credential step).
//!
//! A limit (`quotas[]`, validated into [`Limit`]) covers some tools and counts per key: any
//! combination of the caller's identity (issuer + subject, never the session, so
//! re-`initialize` resets nothing), agent, groups, virtual server, upstream and tool. It can
//! carry three kinds, all checked before any is taken:
//!
//! - **rate**: `requests` per `per` with a `burst`, by GCRA ([`gcra`]);
//! - **concurrency**: calls in flight, a permit held until the response ends ([`Held`]);
//! - **budget**: units per fixed window (`per: 1h`, `1d`, aligned to the epoch), a call
//!   costing a fixed number of units or, metered, its response's approximate tokens
//!   (bytes / 4) charged when the response ends.
//!
//! Counters live in memory per replica ([`memory`], sharded and bounded) or in Redis for a
//! cluster-wide limit ([`redis`]: one atomic script per check). A Redis-backed limit whose
//! Redis does not answer either falls back to its in-memory counter (`fail_open`) or
//! refuses with a 503 (`fail_closed`). Time is an injectable [`Clock`].
//!
//! Layout: `limit` (the validated config, a leaf `config` builds), `gcra` (pure arithmetic),
//! `clock`, `memory`, `redis`, `held` (what a call owes until it ends), `report` (the admin
//! view). `docs/quotas.md` is the operator's reference.

mod clock;
mod gcra;
mod held;
mod limit;
mod memory;
mod redis;
mod report;

pub use clock::Clock;
pub use held::{Charge, Held};
pub use limit::{
    Backend, Budget, Cost, CostRule, KeyParts, Limit, OnRedisError, Rate, MAX_GROUP_KEYS,
};
pub use memory::{MAX_KEYS, SHARDS};
pub use redis::PERMIT_TTL_NS;
pub use report::{ReportQuery, MAX_REPORTED};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::error::{QuotaKind, Reject};
use crate::metrics::Metrics;
use crate::store::redis::RedisStore;
use held::{Counter, Metered, Permit, Taken};
use memory::{Ask, BudgetAsk, Exceeded, MemoryCounters};

/// The call a check is about: who, and which tool where.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    /// Issuer and subject of the caller (`""` for anonymous callers: one shared counter).
    pub issuer: &'a str,
    pub subject: &'a str,
    /// The agent acting for the caller, or `""`.
    pub agent: &'a str,
    pub groups: &'a [String],
    /// The virtual server's name, or `""` on a plain route.
    pub virtual_server: &'a str,
    pub upstream: &'a str,
    /// The upstream's name of the tool.
    pub tool: &'a str,
}

impl<'a> Call<'a> {
    /// The caller's part of a call from its principal (`None`: anonymous).
    pub fn caller(principal: Option<&'a crate::auth::Principal>) -> Call<'a> {
        match principal {
            Some(p) => Call {
                issuer: &p.issuer,
                subject: &p.subject,
                agent: p.agent.as_deref().unwrap_or(""),
                groups: &p.groups,
                ..Call::default()
            },
            None => Call::default(),
        }
    }
}

/// The quota engine of one gateway: counters, clock and metrics. Lives in `Shared`, so a
/// reload (new limits) keeps every count; a limit keeps its counters as long as its name
/// and key do.
pub struct Quotas {
    memory: Arc<MemoryCounters>,
    clock: ArcSwap<Clock>,
    metrics: Metrics,
    /// Names this replica's permits in Redis (random per process).
    member_prefix: String,
    next_member: AtomicU64,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl Quotas {
    pub fn new(metrics: Metrics) -> Quotas {
        use ring::rand::SecureRandom as _;
        let mut id = [0u8; 8];
        // A failed draw only makes permit names guessable, which costs nothing: they are
        // not secrets, only distinct per replica.
        let _ = ring::rand::SystemRandom::new().fill(&mut id);
        Quotas {
            memory: Arc::new(MemoryCounters::default()),
            clock: ArcSwap::from_pointee(Clock::system()),
            metrics,
            member_prefix: format!("{:016x}", u64::from_le_bytes(id)),
            next_member: AtomicU64::new(0),
        }
    }

    /// Replace the clock (tests: a [`Clock::manual`]).
    pub fn set_clock(&self, clock: Clock) {
        self.clock.store(Arc::new(clock));
    }

    pub fn clock(&self) -> Clock {
        Clock::clone(&self.clock.load())
    }

    /// Counters held in memory on this replica.
    pub fn memory_len(&self) -> usize {
        self.memory.len()
    }

    /// Check every limit in `limits` that covers `call`, in order, and take from each: the
    /// first that refuses answers (429, or 503 for a `fail_closed` limit whose Redis is
    /// unreachable). What earlier limits took for a refused call goes back ([`Held::refund`]:
    /// their rate slot, a fixed budget charge), as do permits.
    pub async fn check(
        &self,
        limits: &[Limit],
        redis: Option<&Arc<RedisStore>>,
        call: &Call<'_>,
    ) -> Result<Held, Reject> {
        let clock = self.clock();
        let mut held = Held {
            clock: clock.clone(),
            ..Default::default()
        };
        for limit in limits
            .iter()
            .filter(|l| l.applies_to(call.upstream, call.tool))
        {
            let cost = limit
                .budget
                .as_ref()
                .map(|b| b.cost_of(call.upstream, call.tool));
            let ask = Ask {
                rate: limit.rate.map(|r| (r.emission_ns(), r.burst)),
                concurrency: limit.concurrency,
                budget: limit.budget.as_ref().map(|b| {
                    let (need, charge) = match cost {
                        Some(Cost::Units(n)) => (n, n),
                        _ => (1, 0),
                    };
                    BudgetAsk {
                        units: b.units,
                        per_ns: duration_ns(b.per),
                        need,
                        charge,
                    }
                }),
            };
            let span = limit.span_ns();
            for group in groups(limit, call) {
                let parts = key_parts(limit, call, group);
                let now = clock.now_ns();
                let (outcome, counter) = match (limit.backend, redis) {
                    (Backend::Redis, Some(store)) => {
                        let keys = redis::Keys::new(store, &limit.name, &parts);
                        let member = format!(
                            "{}-{}",
                            self.member_prefix,
                            self.next_member.fetch_add(1, Ordering::Relaxed)
                        );
                        match redis::acquire(store, &keys, &ask, now, &member).await {
                            Ok(outcome) => (outcome, (Counter::Redis(store.clone(), keys), member)),
                            Err(e) => {
                                self.metrics.quota_redis_fallback(
                                    &limit.name,
                                    limit.on_redis_error.as_label(),
                                );
                                if limit.on_redis_error == OnRedisError::FailClosed {
                                    log::warn!("quota {}: {e}; refusing (fail_closed)", limit.name);
                                    held.refund();
                                    return Err(Reject::QuotaStoreUnavailable {
                                        limit: limit.name.clone(),
                                    });
                                }
                                log::debug!(
                                    "quota {}: {e}; counting in memory (fail_open)",
                                    limit.name
                                );
                                self.in_memory(limit, &parts, &ask, now, span)
                            }
                        }
                    }
                    _ => self.in_memory(limit, &parts, &ask, now, span),
                };
                let tat = match outcome {
                    Ok(tat) => tat,
                    Err(exceeded) => {
                        self.metrics.quota_decision(&limit.name, "limited");
                        // The call will not run: what earlier limits (and this one's other
                        // groups) took goes back.
                        held.refund();
                        return Err(refusal(limit, exceeded));
                    }
                };
                let (counter, member) = counter;
                let charge = ask
                    .budget
                    .filter(|b| b.charge > 0)
                    .map(|b| (b.charge, gcra::window(now, b.per_ns).0));
                if ask.rate.is_some() || charge.is_some() {
                    held.taken.push(Taken {
                        counter: counter.clone(),
                        slot: ask.rate.map(|(t, _)| (t, tat)),
                        charge,
                    });
                }
                if limit.concurrency.is_some() {
                    held.permits.push(Permit {
                        counter: counter.clone(),
                        member,
                        clock: clock.clone(),
                    });
                }
                if let (Some(Cost::ResponseTokens), Some(b)) = (cost, &limit.budget) {
                    held.metered.push(Metered {
                        counter,
                        per_ns: duration_ns(b.per),
                        span_ns: span,
                    });
                }
            }
            self.metrics.quota_decision(&limit.name, "allowed");
            held.charges.push(Charge {
                limit: limit.name.clone(),
                units: match cost {
                    Some(Cost::Units(n)) => Some(n),
                    _ => None,
                },
                metered: matches!(cost, Some(Cost::ResponseTokens)),
            });
        }
        Ok(held)
    }

    fn in_memory(
        &self,
        limit: &Limit,
        parts: &[&str],
        ask: &Ask,
        now: u64,
        span: u64,
    ) -> (Result<u64, Exceeded>, (Counter, String)) {
        let key: Arc<str> = memory_key(&limit.name, parts).into();
        let outcome = self.memory.acquire(&key, ask, now, span);
        (
            outcome,
            (Counter::Memory(self.memory.clone(), key), String::new()),
        )
    }
}

fn duration_ns(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// The group each counter of `call` is for: one per group the caller has (at most
/// [`MAX_GROUP_KEYS`]; `""`, one shared counter, for callers with none) when the limit is
/// keyed by group, else one counter.
fn groups<'a>(limit: &Limit, call: &Call<'a>) -> Vec<Option<&'a str>> {
    if !limit.key.group {
        return vec![None];
    }
    let mut out: Vec<Option<&str>> = call
        .groups
        .iter()
        .take(MAX_GROUP_KEYS)
        .map(|g| Some(g.as_str()))
        .collect();
    if out.is_empty() {
        out.push(Some(""));
    }
    out
}

/// The parts of a counter's key, in a fixed order: issuer, subject, agent, group, virtual
/// server, upstream, tool (those the limit keys by). Anonymous callers have issuer and
/// subject `""`: one counter for all of them.
fn key_parts<'a>(limit: &Limit, call: &Call<'a>, group: Option<&'a str>) -> Vec<&'a str> {
    let k = limit.key;
    let mut parts = Vec::with_capacity(8);
    if k.subject {
        parts.push(call.issuer);
        parts.push(call.subject);
    }
    if k.agent {
        parts.push(call.agent);
    }
    if let Some(g) = group {
        parts.push(g);
    }
    if k.virtual_server {
        parts.push(call.virtual_server);
    }
    if k.upstream {
        parts.push(call.upstream);
    }
    if k.tool {
        parts.push(call.tool);
    }
    parts
}

/// The in-memory key: the limit's name and each part, length-prefixed (a subject may hold
/// any character, so no separator could be trusted).
fn memory_key(limit: &str, parts: &[&str]) -> String {
    let mut k =
        String::with_capacity(limit.len() + parts.iter().map(|p| p.len() + 4).sum::<usize>() + 4);
    for p in std::iter::once(&limit).chain(parts) {
        push_len(&mut k, p.len());
        k.push(':');
        k.push_str(p);
    }
    k
}

/// `n` in decimal, without the formatting machinery (a third of the key's cost with it).
fn push_len(k: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        k.push(char::from(d));
    }
}

/// The 429 for `exceeded` on `limit`.
fn refusal(limit: &Limit, exceeded: Exceeded) -> Reject {
    let (kind, quota, window, retry_ns) = match exceeded {
        Exceeded::Rate { retry_ns } => {
            let r = limit.rate.unwrap_or(Rate {
                requests: 0,
                per: std::time::Duration::ZERO,
                burst: 0,
            });
            (QuotaKind::Rate, r.requests, r.per.as_secs(), retry_ns)
        }
        Exceeded::Budget { retry_ns } => {
            let (units, per) = limit
                .budget
                .as_ref()
                .map_or((0, 0), |b| (b.units, b.per.as_secs()));
            (QuotaKind::Budget, units, per, retry_ns)
        }
        // When a call ends is not known; one second is the shortest honest hint.
        Exceeded::Concurrency => (
            QuotaKind::Concurrency,
            u64::from(limit.concurrency.unwrap_or(0)),
            0,
            1_000_000_000,
        ),
    };
    Reject::QuotaExceeded {
        limit: limit.name.clone(),
        kind,
        quota,
        window,
        retry_after: gcra::ceil_secs(retry_ns).max(1),
    }
}

#[cfg(test)]
mod tests;
