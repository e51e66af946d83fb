//! [`RedisApprovals`]: approvals in the shared Redis (`redis` section), so an approval given
//! through any replica's admin API is honoured, once, by whichever replica gets the retry.
//!
//! Keys (under `redis.key_prefix`, built by `RedisStore::key`):
//! - `approval:b:<binding hex>`: a hash, the approval of one binding: `id`, `state`,
//!   `expires`, `decided_by`, `decided_at`, and `rec` (the JSON record as created);
//! - `approval:id:<id>`: the binding hex, to find an approval by id;
//! - `approval:index`: a sorted set of binding hexes by expiry, for listing and the bound.
//!
//! Each method is one Lua script (atomic on the server), so `consume` hands an approval to
//! exactly one caller however many replicas race for it. Every key has a TTL a minute past
//! its approval's expiry (the gateway's clock decides expiry, the TTL only cleans up); the
//! index's TTL is refreshed on every write to outlive its longest entry. Keys an id script
//! computes from ARGV (the hash of an id) are not declared in KEYS: fine on one Redis
//! server or a replicated primary, not on Redis Cluster (not supported by the `redis`
//! section).

use std::sync::Arc;

use async_trait::async_trait;
use once_cell::sync::Lazy;
use redis::Script;

use super::binding::Binding;
use super::record::{Approval, State, Verdict};
use super::store::{sort_and_cut, ApprovalStore, DecideError, StoreError};
use crate::store::redis::RedisStore;

/// Most index entries one `list` reads (it sorts them, pending first, then cuts).
const MAX_LIST_SCAN: usize = 5000;
/// Seconds a key outlives its approval's expiry.
const KEY_SLACK: u64 = 60;

/// Approvals in Redis.
#[derive(Debug, Clone)]
pub struct RedisApprovals {
    redis: Arc<RedisStore>,
}

/// KEYS: hash, new id key, index. ARGV: now, id, rec, expires, key ttl, limit, binding hex,
/// index ttl. Returns `{"found", <hash pairs>}`, `{"created"}` or `{"full"}`.
static REQUEST: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local cur = redis.call('HGETALL', KEYS[1])
if #cur > 0 then
  for i = 1, #cur, 2 do
    if cur[i] == 'expires' and tonumber(cur[i + 1]) > tonumber(ARGV[1]) then
      table.insert(cur, 1, 'found')
      return cur
    end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then return {'full'} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'state', 'pending', 'rec', ARGV[3], 'expires', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[7], 'EX', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[7])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return {'created'}
",
    )
});

/// KEYS: hash, index. ARGV: now, binding hex. Returns `{"taken", <hash pairs>}` or `{}`.
static CONSUME: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local st = redis.call('HMGET', KEYS[1], 'state', 'expires')
if st[1] == 'approved' and tonumber(st[2]) > tonumber(ARGV[1]) then
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  table.insert(all, 1, 'taken')
  return all
end
return {}
",
    )
});

/// KEYS: id key, index. ARGV: now, state, approver, ttl, hash prefix, id, index ttl.
/// Returns `{"decided" | "already", <hash pairs>}` or `{}` (no live approval with the id).
static DECIDE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local hex = redis.call('GET', KEYS[1])
if not hex then return {} end
local kb = ARGV[5] .. hex
local cur = redis.call('HMGET', kb, 'id', 'state', 'expires')
if cur[1] ~= ARGV[6] or not cur[3] or tonumber(cur[3]) <= tonumber(ARGV[1]) then return {} end
if cur[2] ~= 'pending' then
  local all = redis.call('HGETALL', kb)
  table.insert(all, 1, 'already')
  return all
end
local expires = tonumber(ARGV[1]) + tonumber(ARGV[4])
redis.call('HSET', kb, 'state', ARGV[2], 'decided_by', ARGV[3], 'decided_at', ARGV[1], 'expires', expires)
local ttl = tonumber(ARGV[4]) + 60
redis.call('EXPIRE', kb, ttl)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], expires, hex)
redis.call('EXPIRE', KEYS[2], ARGV[7])
local all = redis.call('HGETALL', kb)
table.insert(all, 1, 'decided')
return all
",
    )
});

/// KEYS: id key. ARGV: hash prefix, now, id. Returns `{"found", <hash pairs>}` or `{}`.
static GET: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local hex = redis.call('GET', KEYS[1])
if not hex then return {} end
local all = redis.call('HGETALL', ARGV[1] .. hex)
table.insert(all, 1, 'found')
return all
",
    )
});

/// KEYS: index. ARGV: now, scan limit, hash prefix. Returns one array of hash pairs per
/// live indexed binding.
static LIST: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local hexes = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i, h in ipairs(hexes) do out[i] = redis.call('HGETALL', ARGV[3] .. h) end
return out
",
    )
});

/// KEYS: hash, id key, index. ARGV: id, rec, expires, decided_by, decided_at, key ttl,
/// binding hex, index ttl. Puts an approved approval back unless the binding holds a
/// decided one again.
static RESTORE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'approved' or st == 'denied' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', 'approved', 'rec', ARGV[2], 'expires', ARGV[3], 'decided_by', ARGV[4], 'decided_at', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], ARGV[7], 'EX', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[7])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return 1
",
    )
});

impl RedisApprovals {
    pub fn new(redis: Arc<RedisStore>) -> RedisApprovals {
        RedisApprovals { redis }
    }

    fn hash_key(&self, b: &str) -> String {
        self.redis.key(&["approval", "b", b])
    }

    fn hash_prefix(&self) -> String {
        self.redis.key(&["approval", "b", ""])
    }

    fn id_key(&self, id: &str) -> String {
        self.redis.key(&["approval", "id", id])
    }

    fn index_key(&self) -> String {
        self.redis.key(&["approval", "index"])
    }

    async fn invoke<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, StoreError> {
        self.redis
            .run(move |mut conn| async move {
                let mut inv = script.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async::<T>(&mut conn).await
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

/// An approval from its hash's field/value pairs: the record as created, with the fields
/// a decision changes taken from the hash.
fn from_pairs(pairs: &[String]) -> Result<Approval, StoreError> {
    let field = |name: &str| {
        pairs
            .chunks(2)
            .find(|c| c.first().is_some_and(|k| k == name))
            .and_then(|c| c.get(1))
    };
    let bad =
        |what: &str| StoreError::Unavailable(format!("Redis holds a malformed approval ({what})"));
    let rec = field("rec").ok_or_else(|| bad("no record"))?;
    let mut a: Approval = serde_json::from_str(rec).map_err(|_| bad("record"))?;
    a.state = match field("state").map(String::as_str) {
        Some("pending") => State::Pending,
        Some("approved") => State::Approved,
        Some("denied") => State::Denied,
        _ => return Err(bad("state")),
    };
    a.expires_at = field("expires")
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| bad("expires"))?;
    a.decided_by = field("decided_by").cloned();
    a.decided_at = field("decided_at").and_then(|e| e.parse().ok());
    Ok(a)
}

#[async_trait]
impl ApprovalStore for RedisApprovals {
    async fn request(
        &self,
        binding: &Binding,
        new: Approval,
        limit: usize,
        now: u64,
    ) -> Result<Approval, StoreError> {
        let hex = binding.hex();
        let rec =
            serde_json::to_string(&new).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let ttl = new.expires_at.saturating_sub(now) + KEY_SLACK;
        let out: Vec<String> = self
            .invoke(
                &REQUEST,
                vec![self.hash_key(&hex), self.id_key(&new.id), self.index_key()],
                vec![
                    now.to_string(),
                    new.id.clone(),
                    rec,
                    new.expires_at.to_string(),
                    ttl.to_string(),
                    limit.to_string(),
                    hex,
                    index_ttl().to_string(),
                ],
            )
            .await?;
        match out.first().map(String::as_str) {
            Some("created") => Ok(new),
            Some("found") => from_pairs(&out[1..]),
            Some("full") => Err(StoreError::Full { limit }),
            _ => Err(StoreError::Unavailable(
                "unexpected answer from Redis".into(),
            )),
        }
    }

    async fn get(&self, id: &str, now: u64) -> Result<Option<Approval>, StoreError> {
        let out: Vec<String> = self
            .invoke(
                &GET,
                vec![self.id_key(id)],
                vec![self.hash_prefix(), now.to_string(), id.to_string()],
            )
            .await?;
        if out.len() < 2 {
            return Ok(None);
        }
        let a = from_pairs(&out[1..])?;
        Ok((a.id == id && a.live(now)).then_some(a))
    }

    async fn list(&self, limit: usize, now: u64) -> Result<Vec<Approval>, StoreError> {
        let out: Vec<Vec<String>> = self
            .invoke(
                &LIST,
                vec![self.index_key()],
                vec![
                    now.to_string(),
                    MAX_LIST_SCAN.to_string(),
                    self.hash_prefix(),
                ],
            )
            .await?;
        let live = out
            .iter()
            .filter(|p| !p.is_empty())
            .filter_map(|p| from_pairs(p).ok())
            .filter(|a| a.live(now))
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
        let state = match verdict {
            Verdict::Approve => "approved",
            Verdict::Deny => "denied",
        };
        let out: Vec<String> = self
            .invoke(
                &DECIDE,
                vec![self.id_key(id), self.index_key()],
                vec![
                    now.to_string(),
                    state.into(),
                    approver.into(),
                    ttl.to_string(),
                    self.hash_prefix(),
                    id.into(),
                    index_ttl().to_string(),
                ],
            )
            .await?;
        match out.first().map(String::as_str) {
            Some("decided") => Ok(from_pairs(&out[1..])?),
            Some("already") => Err(DecideError::AlreadyDecided(Box::new(from_pairs(
                &out[1..],
            )?))),
            _ => Err(DecideError::NotFound(id.to_string())),
        }
    }

    async fn consume(&self, binding: &Binding, now: u64) -> Result<Option<Approval>, StoreError> {
        let out: Vec<String> = self
            .invoke(
                &CONSUME,
                vec![self.hash_key(&binding.hex()), self.index_key()],
                vec![now.to_string(), binding.hex()],
            )
            .await?;
        if out.first().map(String::as_str) != Some("taken") {
            return Ok(None);
        }
        from_pairs(&out[1..]).map(Some)
    }

    async fn restore(&self, approval: &Approval, now: u64) -> Result<(), StoreError> {
        if !approval.live(now) || approval.state != State::Approved {
            return Ok(());
        }
        let mut created = approval.clone();
        created.state = State::Pending;
        created.decided_by = None;
        created.decided_at = None;
        let rec =
            serde_json::to_string(&created).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let ttl = approval.expires_at.saturating_sub(now) + KEY_SLACK;
        let _: i64 = self
            .invoke(
                &RESTORE,
                vec![
                    self.hash_key(&approval.binding),
                    self.id_key(&approval.id),
                    self.index_key(),
                ],
                vec![
                    approval.id.clone(),
                    rec,
                    approval.expires_at.to_string(),
                    approval.decided_by.clone().unwrap_or_default(),
                    approval.decided_at.unwrap_or(now).to_string(),
                    ttl.to_string(),
                    approval.binding.clone(),
                    index_ttl().to_string(),
                ],
            )
            .await?;
        Ok(())
    }
}

/// The index's TTL, refreshed on every write: longer than any entry it can hold (an
/// approval lives at most `approvals.ttl` pending plus `ttl` after its decision, and `ttl`
/// is at most [`crate::config::MAX_APPROVAL_TTL`]).
fn index_ttl() -> u64 {
    2 * crate::config::MAX_APPROVAL_TTL.as_secs() + KEY_SLACK
}
