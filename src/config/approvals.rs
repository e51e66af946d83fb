//! Validation of the `approvals` section (and `virtual_servers[].require_approval`): which
//! `tools/call`s wait for a human approver (`crate::approval`), how long an approval lives,
//! and the URL an approver is sent to.
//!
//! The section's [`ApprovalsConfig::version`] is a digest of everything that decides whether
//! a call needs an approval (the rules, each virtual server's `require_approval`, the TTL).
//! Every approval is bound to it, so a reload that changes the rules invalidates the
//! approvals given under the old ones instead of letting them through under new meaning.

use std::time::Duration;

use serde::Deserialize;

use crate::policy::pattern::ToolPattern;

use super::raw::RawApprovals;
use super::virtual_server::patterns;
use super::{AdminConfig, ConfigError, Upstream, VirtualServer};

/// Longest `approvals.ttl`: an approval is for a call a person is waiting on, not a standing
/// permission.
pub const MAX_APPROVAL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most approvals `approvals.max_pending` may allow (each is about 3 KiB in memory, with its
/// 2 KiB argument preview: 1,000,000 is about 3 GiB).
pub(super) const MAX_APPROVALS_LIMIT: usize = 1_000_000;
/// What `{id}` in `approvals.approver_url` stands for.
const ID_PLACEHOLDER: &str = "{id}";

/// Which of a virtual server's tools need an approval on top of `approvals.rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequireApproval {
    /// Only the tools `approvals.rules` name.
    #[default]
    None,
    /// Also every tool that may be destructive: by the MCP annotations' defaults, a tool is
    /// unless it says `readOnlyHint: true` or `destructiveHint: false`.
    Destructive,
}

/// One `approvals.rules[]` entry.
#[derive(Debug, Clone)]
pub struct ApprovalRule {
    pub tools: Vec<ToolPattern>,
}

/// Validated `approvals` settings (the defaults when the section is absent).
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    pub ttl: Duration,
    pub retry_after: Duration,
    /// Template with `{id}`; `None`: no admin listener and no `approver_url` (the caller is
    /// told the id only).
    pub approver_url: Option<String>,
    pub max_pending: usize,
    pub rules: Vec<ApprovalRule>,
    /// Whether any virtual server has `require_approval: destructive`.
    pub destructive_servers: bool,
    /// Digest of the approval-relevant configuration (module docs).
    pub version: [u8; 32],
}

impl ApprovalsConfig {
    /// Whether a call could need an approval at all: the one check approval-free
    /// configurations pay per `tools/call`.
    pub fn active(&self) -> bool {
        !self.rules.is_empty() || self.destructive_servers
    }

    /// Whether a rule names `upstream.tool`.
    pub fn rule_covers(&self, upstream: &str, tool: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.tools.iter().any(|p| p.matches(upstream, tool)))
    }

    /// The approver-facing URL of approval `id`.
    pub fn url_for(&self, id: &str) -> Option<String> {
        self.approver_url
            .as_ref()
            .map(|t| t.replace(ID_PLACEHOLDER, id))
    }
}

pub(super) fn validate(
    raw: Option<RawApprovals>,
    upstreams: &[Upstream],
    virtual_servers: &[VirtualServer],
    admin: Option<&AdminConfig>,
) -> Result<ApprovalsConfig, ConfigError> {
    let raw = raw.unwrap_or(RawApprovals {
        ttl: Duration::from_secs(15 * 60),
        retry_after: Duration::from_secs(10),
        approver_url: None,
        max_pending: 10_000,
        rules: Vec::new(),
    });
    if raw.ttl < Duration::from_secs(1) || raw.ttl > MAX_APPROVAL_TTL {
        return Err(ConfigError::new(
            "approvals.ttl",
            "must be between 1s and 7d",
        ));
    }
    if raw.retry_after < Duration::from_secs(1) || raw.retry_after > raw.ttl {
        return Err(ConfigError::new(
            "approvals.retry_after",
            "must be at least 1s and at most approvals.ttl",
        ));
    }
    if !(1..=MAX_APPROVALS_LIMIT).contains(&raw.max_pending) {
        return Err(ConfigError::new(
            "approvals.max_pending",
            format!(
                "must be between 1 and {MAX_APPROVALS_LIMIT}, got {}",
                raw.max_pending
            ),
        ));
    }
    let approver_url = match raw.approver_url {
        Some(t) => {
            let probe = t.replace(ID_PLACEHOLDER, "ID");
            let ok = t.contains(ID_PLACEHOLDER)
                && url::Url::parse(&probe)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err(ConfigError::new(
                    "approvals.approver_url",
                    format!("{t:?}: give an http(s) URL with {ID_PLACEHOLDER} where the approval id goes, e.g. https://ops.example/approvals/{ID_PLACEHOLDER}"),
                ));
            }
            Some(t)
        }
        None => admin.map(|a| format!("http://{}/admin/approvals/{ID_PLACEHOLDER}", a.address)),
    };
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.into_iter().enumerate() {
        let at = format!("approvals.rules[{i}].tools");
        if r.tools.is_empty() {
            return Err(ConfigError::new(
                at,
                "name the tools that need an approval (upstream.tool patterns, as allow_tools)",
            ));
        }
        let tools = patterns(&at, &r.tools)?;
        for (k, t) in tools.iter().enumerate() {
            if !upstreams.iter().any(|u| t.matches_upstream(&u.name)) {
                return Err(ConfigError::new(
                    format!("{at}[{k}]"),
                    format!("{:?} matches no configured upstream", r.tools[k]),
                ));
            }
        }
        rules.push(ApprovalRule { tools });
    }
    let destructive_servers = virtual_servers
        .iter()
        .any(|v| v.require_approval == RequireApproval::Destructive);
    let version = version(raw.ttl, &rules, virtual_servers);
    Ok(ApprovalsConfig {
        ttl: raw.ttl,
        retry_after: raw.retry_after,
        approver_url,
        max_pending: raw.max_pending,
        rules,
        destructive_servers,
        version,
    })
}

/// SHA-256 over the rules' patterns, each virtual server's `require_approval` and the TTL,
/// each field length-prefixed so no two configurations share an encoding.
fn version(ttl: Duration, rules: &[ApprovalRule], servers: &[VirtualServer]) -> [u8; 32] {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |b: &[u8]| {
        d.update(&(b.len() as u64).to_be_bytes());
        d.update(b);
    };
    field(b"approvals v1");
    field(&ttl.as_secs().to_be_bytes());
    for r in rules {
        field(b"rule");
        for p in &r.tools {
            field(p.as_str().as_bytes());
        }
    }
    for v in servers {
        if v.require_approval == RequireApproval::Destructive {
            field(b"destructive");
            field(v.name.as_bytes());
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(d.finish().as_ref());
    out
}
