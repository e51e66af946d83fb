//! `quotas[]`: limits on `tools/call`, validated into [`Limit`]s (tool patterns checked
//! against the upstreams, windows and counts bounded, the Redis section required where a
//! limit is shared).

use std::time::Duration;

use crate::quota::{Backend, Budget, Cost, CostRule, KeyParts, Limit, OnRedisError, Rate};

use super::raw::{RawBudget, RawQuota, RawRate};
use super::syntax::valid_name;
use super::virtual_server::patterns;
use super::{ConfigError, RedisConfig, Upstream};

/// Most limits: each is a metric label value and may be one more check per call.
pub(super) const MAX_QUOTAS: usize = 64;
/// Longest window (31 days): longer budgets outlive any sensible TTL and deployment.
const MAX_WINDOW: Duration = Duration::from_secs(31 * 24 * 3_600);
/// Fastest rate: one request per microsecond (the Redis script's resolution).
const MAX_PER_SECOND: u64 = 1_000_000;
/// Largest concurrency limit.
const MAX_CONCURRENCY: u32 = 1_000_000;

pub(super) fn validate(
    raw: Vec<RawQuota>,
    upstreams: &[Upstream],
    redis: Option<&RedisConfig>,
) -> Result<Vec<Limit>, ConfigError> {
    if raw.len() > MAX_QUOTAS {
        return Err(ConfigError::new(
            "quotas",
            format!("at most {MAX_QUOTAS} limits, got {}", raw.len()),
        ));
    }
    let mut out: Vec<Limit> = Vec::with_capacity(raw.len());
    for (i, q) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("quotas[{i}].{f}");
        if !valid_name(&q.name) || out.iter().any(|o| o.name == q.name) {
            return Err(ConfigError::new(
                at("name"),
                format!(
                    "invalid or duplicate name {:?}: letters, digits, _ and -, at most 32",
                    q.name
                ),
            ));
        }
        let key = key_parts(&q.key, &at("key"))?;
        let tools = tool_patterns(&at("tools"), &q.tools, upstreams)?;
        let rate = q.rate.map(|r| rate(r, &at("rate"))).transpose()?;
        if let Some(c) = q.concurrency {
            if !(1..=MAX_CONCURRENCY).contains(&c) {
                return Err(ConfigError::new(
                    at("concurrency"),
                    format!("must be between 1 and {MAX_CONCURRENCY}, got {c}"),
                ));
            }
        }
        let budget = q
            .budget
            .map(|b| budget(b, &at("budget"), upstreams))
            .transpose()?;
        if rate.is_none() && q.concurrency.is_none() && budget.is_none() {
            return Err(ConfigError::new(
                format!("quotas[{i}]"),
                "the limit limits nothing: give rate, concurrency or budget",
            ));
        }
        let backend = match q.backend.as_deref() {
            None | Some("memory") => Backend::Memory,
            Some("redis") => Backend::Redis,
            Some(other) => {
                return Err(ConfigError::new(
                    at("backend"),
                    format!("{other:?}: use memory or redis"),
                ))
            }
        };
        if backend == Backend::Redis && redis.is_none() {
            return Err(ConfigError::new(
                at("backend"),
                "redis needs the top-level redis section (redis.url)",
            ));
        }
        let on_redis_error = match q.on_redis_error.as_deref() {
            None => OnRedisError::FailOpen,
            Some(_) if backend != Backend::Redis => {
                return Err(ConfigError::new(
                    at("on_redis_error"),
                    "only applies to backend: redis",
                ))
            }
            Some("fail_open") => OnRedisError::FailOpen,
            Some("fail_closed") => OnRedisError::FailClosed,
            Some(other) => {
                return Err(ConfigError::new(
                    at("on_redis_error"),
                    format!("{other:?}: use fail_open or fail_closed"),
                ))
            }
        };
        out.push(Limit {
            name: q.name,
            key,
            tools,
            rate,
            concurrency: q.concurrency,
            budget,
            backend,
            on_redis_error,
        });
    }
    Ok(out)
}

fn key_parts(list: &[String], at: &str) -> Result<KeyParts, ConfigError> {
    let mut k = KeyParts::default();
    for (n, part) in list.iter().enumerate() {
        let flag = match part.as_str() {
            "subject" => &mut k.subject,
            "agent" => &mut k.agent,
            "group" => &mut k.group,
            "virtual_server" => &mut k.virtual_server,
            "upstream" => &mut k.upstream,
            "tool" => &mut k.tool,
            other => {
                return Err(ConfigError::new(
                    format!("{at}[{n}]"),
                    format!(
                        "{other:?}: use subject, agent, group, virtual_server, upstream or tool"
                    ),
                ))
            }
        };
        if std::mem::replace(flag, true) {
            return Err(ConfigError::new(
                format!("{at}[{n}]"),
                format!("{part:?} is listed twice"),
            ));
        }
    }
    Ok(k)
}

fn tool_patterns(
    at: &str,
    list: &[String],
    upstreams: &[Upstream],
) -> Result<Vec<crate::policy::pattern::ToolPattern>, ConfigError> {
    let tools = patterns(at, list)?;
    for (k, t) in tools.iter().enumerate() {
        if !upstreams.iter().any(|u| t.matches_upstream(&u.name)) {
            return Err(ConfigError::new(
                format!("{at}[{k}]"),
                format!("{:?} matches no configured upstream", list[k]),
            ));
        }
    }
    Ok(tools)
}

/// A window: whole seconds, at least 1 s, at most [`MAX_WINDOW`] (the `RateLimit` headers
/// speak whole seconds).
fn window(per: Duration, at: &str) -> Result<(), ConfigError> {
    if per < Duration::from_secs(1) || per > MAX_WINDOW || per.subsec_nanos() != 0 {
        return Err(ConfigError::new(
            at,
            "must be whole seconds, from 1s to 31d (e.g. 1m, 1h, 1d)",
        ));
    }
    Ok(())
}

fn rate(r: RawRate, at: &str) -> Result<Rate, ConfigError> {
    window(r.per, &format!("{at}.per"))?;
    if r.requests == 0 || r.requests / r.per.as_secs().max(1) > MAX_PER_SECOND {
        return Err(ConfigError::new(
            format!("{at}.requests"),
            format!(
                "must be at least 1 and at most {MAX_PER_SECOND} per second, got {}",
                r.requests
            ),
        ));
    }
    let burst = r.burst.unwrap_or(r.requests);
    if burst == 0 || burst > r.requests.max(1_000_000) {
        return Err(ConfigError::new(
            format!("{at}.burst"),
            format!("must be at least 1 and at most max(requests, 1000000), got {burst}"),
        ));
    }
    Ok(Rate {
        requests: r.requests,
        per: r.per,
        burst,
    })
}

fn budget(b: RawBudget, at: &str, upstreams: &[Upstream]) -> Result<Budget, ConfigError> {
    window(b.per, &format!("{at}.per"))?;
    if b.units == 0 {
        return Err(ConfigError::new(
            format!("{at}.units"),
            "must be at least 1",
        ));
    }
    let mut costs = Vec::with_capacity(b.cost.len());
    for (k, c) in b.cost.into_iter().enumerate() {
        let entry = format!("{at}.cost[{k}]");
        let at = |f: &str| format!("{entry}.{f}");
        if c.tools.is_empty() {
            return Err(ConfigError::new(
                at("tools"),
                "name the tools this cost applies to (upstream.tool patterns)",
            ));
        }
        let tools = tool_patterns(&at("tools"), &c.tools, upstreams)?;
        let cost = match (c.units, c.metered.as_deref()) {
            (Some(n), None) => Cost::Units(n),
            (None, Some("response_tokens")) => Cost::ResponseTokens,
            (None, Some(other)) => {
                return Err(ConfigError::new(
                    at("metered"),
                    format!("{other:?}: the one meter is response_tokens"),
                ))
            }
            _ => {
                return Err(ConfigError::new(
                    entry.clone(),
                    "give exactly one of units or metered",
                ))
            }
        };
        costs.push(CostRule { tools, cost });
    }
    Ok(Budget {
        units: b.units,
        per: b.per,
        costs,
    })
}
