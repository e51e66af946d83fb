//! `GET /admin/quotas`: what is left of each limit for one caller, read without taking
//! anything. The counters are found by rebuilding their keys from the query (a counter's
//! key is not listed anywhere, by design: the table holds no index of subjects).

use std::sync::Arc;

use serde_json::{json, Value};

use super::gcra;
use super::{key_parts, memory_key, redis, Backend, Call, Limit, Quotas};
use crate::store::redis::RedisStore;

/// Most counters one report shows (limits × issuers × groups), so a query cannot make the
/// admin listener build an unbounded answer.
pub const MAX_REPORTED: usize = 256;

/// Who and what to report on; parts a limit keys by and the query leaves out count as `""`
/// (what a call without them uses: a plain route has no virtual server).
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    pub subject: String,
    /// `None`: every issuer in `issuers` (the API-key issuer and the configured JWT issuers).
    pub issuer: Option<String>,
    pub agent: Option<String>,
    /// `None`: the `""` counter of callers without groups.
    pub group: Option<String>,
    pub virtual_server: Option<String>,
    pub upstream: Option<String>,
    pub tool: Option<String>,
}

impl Quotas {
    /// The report: one entry per limit and issuer (for limits keyed by subject).
    pub async fn report(
        &self,
        limits: &[Limit],
        redis: Option<&Arc<RedisStore>>,
        query: &ReportQuery,
        issuers: &[String],
    ) -> Value {
        let now = self.clock().now_ns();
        let issuers: Vec<String> = match &query.issuer {
            Some(i) => vec![i.clone()],
            None => issuers.to_vec(),
        };
        let mut out = Vec::new();
        let mut truncated = false;
        'limits: for limit in limits {
            let per_issuer: Vec<Option<&str>> = if limit.key.subject {
                issuers.iter().map(|i| Some(i.as_str())).collect()
            } else {
                vec![None]
            };
            for issuer in per_issuer {
                if out.len() >= MAX_REPORTED {
                    truncated = true;
                    break 'limits;
                }
                let call = Call {
                    issuer: issuer.unwrap_or_default(),
                    subject: &query.subject,
                    agent: query.agent.as_deref().unwrap_or(""),
                    groups: &[],
                    virtual_server: query.virtual_server.as_deref().unwrap_or(""),
                    upstream: query.upstream.as_deref().unwrap_or(""),
                    tool: query.tool.as_deref().unwrap_or(""),
                };
                let group = limit
                    .key
                    .group
                    .then(|| query.group.as_deref().unwrap_or(""));
                let parts = key_parts(limit, &call, group);
                out.push(self.entry(limit, redis, &parts, issuer, now).await);
            }
        }
        json!({ "subject": query.subject, "limits": out, "truncated": truncated })
    }

    async fn entry(
        &self,
        limit: &Limit,
        redis: Option<&Arc<RedisStore>>,
        parts: &[&str],
        issuer: Option<&str>,
        now: u64,
    ) -> Value {
        let per_ns = limit.budget.as_ref().map(|b| super::duration_ns(b.per));
        let (state, source) = match (limit.backend, redis) {
            (Backend::Redis, Some(store)) => {
                let keys = redis::Keys::new(store, &limit.name, parts);
                match redis::peek(store, &keys, per_ns, now).await {
                    Ok(s) => (s, "redis".to_string()),
                    Err(e) => (self.peek_memory(limit, parts, now), format!("memory ({e})")),
                }
            }
            _ => (self.peek_memory(limit, parts, now), "memory".to_string()),
        };
        let (tat, in_flight, spent) = state;
        let mut v = json!({
            "name": limit.name,
            "backend": match limit.backend { Backend::Memory => "memory", Backend::Redis => "redis" },
            "source": source,
            "key": parts,
        });
        if let Some(i) = issuer {
            v["issuer"] = json!(i);
        }
        if let Some(r) = limit.rate {
            let (remaining, reset) = gcra::rate_left(tat, now, r.emission_ns(), r.burst);
            v["rate"] = json!({
                "requests": r.requests, "per_seconds": r.per.as_secs(), "burst": r.burst,
                "remaining": remaining, "reset_seconds": gcra::ceil_secs(reset),
            });
        }
        if let Some(c) = limit.concurrency {
            v["concurrency"] = json!({ "limit": c, "in_flight": in_flight });
        }
        if let (Some(b), Some(per)) = (&limit.budget, per_ns) {
            let (_, left_ns) = gcra::window(now, per);
            v["budget"] = json!({
                "units": b.units, "per_seconds": b.per.as_secs(), "spent": spent,
                "left": b.units.saturating_sub(spent), "reset_seconds": gcra::ceil_secs(left_ns),
            });
        }
        v
    }

    /// (tat, in flight, spent this window) of the in-memory counter.
    fn peek_memory(&self, limit: &Limit, parts: &[&str], now: u64) -> (u64, u64, u64) {
        let c = self
            .memory
            .peek(&memory_key(&limit.name, parts), now)
            .unwrap_or_default();
        let spent = limit.budget.as_ref().map_or(0, |b| {
            let (index, _) = gcra::window(now, super::duration_ns(b.per));
            if c.window == index {
                c.spent
            } else {
                0
            }
        });
        (c.tat, u64::from(c.in_flight), spent)
    }
}
