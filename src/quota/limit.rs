//! What a `quotas[]` entry says once validated: the runtime [`Limit`]. A leaf (it depends
//! only on the tool patterns), so `config` can build it, as it builds argument rules.

use std::time::Duration;

use crate::policy::pattern::ToolPattern;

/// Which attributes of a call pick its counter. Every part not chosen is shared: a limit
/// with no key part is one counter for every caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyParts {
    /// The caller's identity: issuer and subject (never the session).
    pub subject: bool,
    /// The agent acting for the caller (`act` claim, or an agent API key).
    pub agent: bool,
    /// One counter per group the caller has (see [`MAX_GROUP_KEYS`]).
    pub group: bool,
    pub virtual_server: bool,
    pub upstream: bool,
    pub tool: bool,
}

/// Most groups of one caller a `group`-keyed limit counts (the first ones, in the order the
/// token lists them): each is one more counter checked per call, and a token is the caller's
/// to fill.
pub const MAX_GROUP_KEYS: usize = 16;

/// Where a limit's counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Per replica, in memory (the default).
    #[default]
    Memory,
    /// Shared by every replica through the `redis` section.
    Redis,
}

/// What a Redis-backed limit does when Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRedisError {
    /// Enforce the limit per replica, in memory, until Redis answers again (counted by
    /// `mcp_gateway_quota_redis_fallbacks_total`).
    #[default]
    FailOpen,
    /// Refuse the call with a 503 that says to retry.
    FailClosed,
}

impl OnRedisError {
    pub fn as_label(self) -> &'static str {
        match self {
            OnRedisError::FailOpen => "fail_open",
            OnRedisError::FailClosed => "fail_closed",
        }
    }
}

/// A request rate, enforced by GCRA (see [`super::gcra`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// `requests` per `per`, as written (for the `RateLimit-Policy` header).
    pub requests: u64,
    pub per: Duration,
    /// Most requests allowed at once (default `requests`).
    pub burst: u64,
}

impl Rate {
    /// Nanoseconds between two requests at the steady rate.
    pub fn emission_ns(&self) -> u64 {
        (self.per.as_nanos() / u128::from(self.requests.max(1))) as u64
    }
}

/// How much one call costs against a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A fixed number of units, charged when the call is allowed.
    Units(u64),
    /// Approximate tokens of the response (body bytes / 4, rounded up), charged when the
    /// response ends. The call is allowed while any budget is left.
    ResponseTokens,
}

/// The cost of the tools matching `tools`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRule {
    pub tools: Vec<ToolPattern>,
    pub cost: Cost,
}

/// A budget of units per fixed window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub units: u64,
    /// The window; windows start at multiples of it since the Unix epoch (UTC), so `1d` resets
    /// at midnight UTC.
    pub per: Duration,
    /// First match wins; a tool no rule matches costs one unit.
    pub costs: Vec<CostRule>,
}

impl Budget {
    /// The cost of `upstream.tool`.
    pub fn cost_of(&self, upstream: &str, tool: &str) -> Cost {
        self.costs
            .iter()
            .find(|r| r.tools.iter().any(|p| p.matches(upstream, tool)))
            .map_or(Cost::Units(1), |r| r.cost)
    }
}

/// One validated `quotas[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Names the limit in headers, errors, metrics and the admin API.
    pub name: String,
    pub key: KeyParts,
    /// The calls it covers (`upstream.tool` patterns); empty: every `tools/call`.
    pub tools: Vec<ToolPattern>,
    pub rate: Option<Rate>,
    pub concurrency: Option<u32>,
    pub budget: Option<Budget>,
    pub backend: Backend,
    pub on_redis_error: OnRedisError,
}

impl Limit {
    /// Whether the limit covers calls of `tool` on `upstream`.
    pub fn applies_to(&self, upstream: &str, tool: &str) -> bool {
        self.tools.is_empty() || self.tools.iter().any(|p| p.matches(upstream, tool))
    }

    /// How long a counter of this limit must be remembered after its last use: a rate's
    /// state is fresh again after `burst` emission intervals, a budget's after its window.
    /// Concurrency counters are kept while calls hold them (see the memory backend).
    pub fn span_ns(&self) -> u64 {
        let rate = self
            .rate
            .map_or(0, |r| r.emission_ns().saturating_mul(r.burst));
        let budget = self
            .budget
            .as_ref()
            .map_or(0, |b| b.per.as_nanos().min(u128::from(u64::MAX)) as u64);
        rate.max(budget).max(1)
    }
}
