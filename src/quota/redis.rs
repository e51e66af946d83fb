//! The Redis backend: one atomic Lua script per check, so every replica sees one counter and
//! no two replicas can both take the last slot. The script is [`super::memory::apply`] in
//! Lua, in microseconds (Lua numbers are doubles: exact up to 2^53 µs, about 285 years after
//! the epoch; nanoseconds would not be). `now` comes from the gateway's [`super::Clock`],
//! not from Redis's `TIME`, so tests can move it; replicas must keep synchronised clocks.
//!
//! Keys, all under `redis.key_prefix` through [`RedisStore::key`], all with a TTL so Redis
//! never fills with dead counters:
//! - `quota:<limit>:rate:<key…>`: the GCRA arrival time; expires when the rate is full again.
//! - `quota:<limit>:budget:<key…>:<window>`: units spent in that window; expires a second
//!   after the window ends.
//! - `quota:<limit>:conc:<key…>`: a sorted set, one member per call in flight, scored by
//!   when its permit lapses (now + [`PERMIT_TTL_NS`]). A release removes its member; a
//!   replica that crashes leaves members that lapse on their own and are swept by the next
//!   check, so a crash costs capacity for at most that long, not forever (a bare counter
//!   with a TTL would never come back down under steady traffic).
//!
//! Not Redis Cluster-aware: a check's keys are not hash-tagged into one slot (use a single
//! Redis, or Sentinel).

use std::sync::Arc;

use super::memory::{Ask, Exceeded};
use crate::store::redis::{RedisStore, Unavailable};

/// How long a concurrency permit counts in Redis if its release never comes (15 min, past
/// any sane upstream read timeout).
pub const PERMIT_TTL_NS: u64 = 15 * 60 * 1_000_000_000;

const US: u64 = 1_000;

/// KEYS: rate, conc, budget. ARGV: now, T, burst, cmax, member, hold, units, need, charge,
/// window left (all times in µs). Returns {0, the rate's new arrival time µs (0: no rate)}
/// or {kind, retry µs}: 1 rate, 2 concurrency, 3 budget. Numbers are written back with `%.0f`: Redis formats a bare Lua number with 14
/// significant digits, which would round a microsecond timestamp.
const CHECK: &str = r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cmax = tonumber(ARGV[4])
local hold = tonumber(ARGV[6])
local units = tonumber(ARGV[7])
local need = tonumber(ARGV[8])
local charge = tonumber(ARGV[9])
local wleft = tonumber(ARGV[10])
local function f(x) return string.format('%.0f', x) end
local new_tat = 0
if t > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  new_tat = tat + t
  local allow_at = new_tat - burst * t
  if now < allow_at then return {1, f(allow_at - now)} end
end
if units > 0 and need > 0 then
  local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
  if spent + need > units then return {3, f(wleft)} end
end
if cmax > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', f(now))
  if redis.call('ZCARD', KEYS[2]) >= cmax then return {2, '0'} end
end
if t > 0 then
  redis.call('SET', KEYS[1], f(new_tat), 'PX', f(math.ceil((new_tat - now) / 1000) + 1))
end
if units > 0 and charge > 0 then
  redis.call('INCRBY', KEYS[3], f(charge))
  redis.call('PEXPIRE', KEYS[3], f(math.ceil(wleft / 1000) + 1000))
end
if cmax > 0 then
  redis.call('ZADD', KEYS[2], f(now + hold), ARGV[5])
  redis.call('PEXPIRE', KEYS[2], f(math.ceil(hold / 1000) + 1000))
end
return {0, f(new_tat)}
";

/// KEYS: budget. ARGV: units, ttl ms.
const CHARGE: &str = r"
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// KEYS: rate, budget (the charged window's). ARGV: µs to move the arrival time back (what
/// of the call's slot is still ahead), charge units (0: none). A counter that expired
/// meanwhile is left alone; TTLs are kept (the arrival time only moves back); a budget never
/// goes below zero (a key recreated since holds only later calls' units).
const REFUND: &str = r"
local back = tonumber(ARGV[1])
local charge = tonumber(ARGV[2])
if back > 0 then
  local tat = redis.call('GET', KEYS[1])
  local ttl = redis.call('PTTL', KEYS[1])
  if tat and ttl > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', tonumber(tat) - back), 'PX', ttl)
  end
end
if charge > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  local left = redis.call('DECRBY', KEYS[2], charge)
  if left < 0 then redis.call('INCRBY', KEYS[2], -left) end
end
return 1
";

fn refund_script() -> &'static redis::Script {
    static S: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    S.get_or_init(|| redis::Script::new(REFUND))
}

fn check_script() -> &'static redis::Script {
    static S: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    S.get_or_init(|| redis::Script::new(CHECK))
}

fn charge_script() -> &'static redis::Script {
    static S: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    S.get_or_init(|| redis::Script::new(CHARGE))
}

/// The keys of one counter: `base` is `quota:<limit>` and `parts` the counter's key.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) rate: String,
    pub(crate) conc: String,
    /// Without the window index (see [`Keys::budget`]).
    budget: String,
}

impl Keys {
    pub(crate) fn new(store: &RedisStore, limit: &str, parts: &[&str]) -> Keys {
        let key = |kind: &str| {
            let mut all = Vec::with_capacity(parts.len() + 3);
            all.extend_from_slice(&["quota", limit, kind]);
            all.extend_from_slice(parts);
            store.key(&all)
        };
        Keys {
            rate: key("rate"),
            conc: key("conc"),
            budget: key("budget"),
        }
    }

    /// The budget key of window `index` (digits need no escaping).
    pub(crate) fn budget(&self, index: u64) -> String {
        format!("{}:{index}", self.budget)
    }
}

/// Run the check script: `Ok(Ok(tat))` allowed (and taken; `tat`, the rate's new arrival
/// time in ns), `Ok(Err(_))` refused.
pub(crate) async fn acquire(
    store: &RedisStore,
    keys: &Keys,
    ask: &Ask,
    now_ns: u64,
    member: &str,
) -> Result<Result<u64, Exceeded>, Unavailable> {
    let now = now_ns / US;
    let (t, burst) = ask.rate.map_or((0, 0), |(t, b)| ((t / US).max(1), b));
    let (index, left_ns) = ask
        .budget
        .map_or((0, 0), |b| super::gcra::window(now_ns, b.per_ns));
    let b = ask.budget.unwrap_or_default();
    let budget_key = keys.budget(index);
    let mut inv = check_script().prepare_invoke();
    inv.key(&keys.rate)
        .key(&keys.conc)
        .key(&budget_key)
        .arg(now)
        .arg(t)
        .arg(burst)
        .arg(ask.concurrency.unwrap_or(0))
        .arg(member)
        .arg(PERMIT_TTL_NS / US)
        .arg(b.units)
        .arg(b.need)
        .arg(b.charge)
        .arg(left_ns.div_ceil(US));
    let (kind, retry_us): (u8, u64) = store
        .run(|mut c| async move { inv.invoke_async(&mut c).await })
        .await?;
    Ok(match kind {
        0 => Ok(retry_us.saturating_mul(US)),
        1 => Err(Exceeded::Rate {
            retry_ns: retry_us.saturating_mul(US),
        }),
        2 => Err(Exceeded::Concurrency),
        _ => Err(Exceeded::Budget {
            retry_ns: retry_us.saturating_mul(US),
        }),
    })
}

/// Give back a concurrency permit. Spawned: the request is over and nobody waits for it;
/// if Redis is down the member lapses after [`PERMIT_TTL_NS`].
pub(crate) fn release(store: Arc<RedisStore>, conc_key: String, member: String) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let _ = store
            .run(|mut c| async move {
                redis::cmd("ZREM")
                    .arg(&conc_key)
                    .arg(&member)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
    });
}

/// Charge a metered cost to the window `now_ns` falls in. Spawned, as [`release`]; a charge
/// lost while Redis is down is not replayed (the budget undercounts by that call).
pub(crate) fn charge(store: Arc<RedisStore>, keys: &Keys, units: u64, per_ns: u64, now_ns: u64) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (index, left_ns) = super::gcra::window(now_ns, per_ns);
    let key = keys.budget(index);
    let ttl_ms = left_ns.div_ceil(1_000_000) + 1_000;
    rt.spawn(async move {
        let _ = store
            .run(|mut c| async move {
                charge_script()
                    .key(&key)
                    .arg(units)
                    .arg(ttl_ms)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
    });
}

/// Give back what [`acquire`] took for a call that never ran (see
/// [`super::MemoryCounters::refund`]). Spawned, as [`release`]: a refund lost while Redis is
/// down is not replayed (the limit overcounts by that call until its window ends).
pub(crate) fn refund(
    store: Arc<RedisStore>,
    keys: &Keys,
    slot: Option<(u64, u64)>,
    charge: Option<(u64, u64)>,
    now_ns: u64,
) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    // In `acquire`'s units and rounding: what of the slot is still ahead of now.
    let back_us = slot.map_or(0, |(t, tat)| {
        ((t / US).max(1)).min((tat / US).saturating_sub(now_ns / US))
    });
    let (units, window) = charge.unwrap_or((0, 0));
    let rate = keys.rate.clone();
    let budget = keys.budget(window);
    rt.spawn(async move {
        let _ = store
            .run(|mut c| async move {
                refund_script()
                    .key(&rate)
                    .key(&budget)
                    .arg(back_us)
                    .arg(units)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
    });
}

/// What Redis holds for one counter: (rate tat ns, calls in flight, units spent this window).
pub(crate) async fn peek(
    store: &RedisStore,
    keys: &Keys,
    per_ns: Option<u64>,
    now_ns: u64,
) -> Result<(u64, u64, u64), Unavailable> {
    let index = per_ns.map_or(0, |p| super::gcra::window(now_ns, p).0);
    let budget = keys.budget(index);
    let now = (now_ns / US).to_string();
    let (tat, conc, spent): (Option<u64>, u64, Option<u64>) = store
        .run(|mut c| async move {
            redis::pipe()
                .get(&keys.rate)
                .cmd("ZCOUNT")
                .arg(&keys.conc)
                .arg(format!("({now}"))
                .arg("+inf")
                .get(&budget)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok((
        tat.unwrap_or(0).saturating_mul(US),
        conc,
        spent.unwrap_or(0),
    ))
}
