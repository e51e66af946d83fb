//! [`Approvals`]: the gateway's approvals (one per process, in `Shared`, so reloads keep
//! them): the decision step ([`Approvals::gate`]) and what the admin API does with them.
//!
//! Which store: Redis when the running configuration has a `redis` section (every replica
//! sees the same approvals), else this process's [`MemoryApprovals`]. An unreachable Redis
//! refuses the call (503): an approval cannot fail open.

use std::sync::Arc;

use super::binding::{bind, canonical_arguments, digest, CallIdentity};
use super::clock::{rfc3339, Clock};
use super::memory::MemoryApprovals;
use super::record::{new_id, preview, Approval, State, Verdict};
use super::redis::RedisApprovals;
use super::store::{ApprovalStore, DecideError, StoreError};
use crate::auth::Principal;
use crate::config::RequireApproval;
use crate::decision::ToolCall;
use crate::error::Reject;
use crate::state::Runtime;

/// Most approvals one admin listing returns.
pub const MAX_LIST: usize = 500;

/// The approvals of one gateway process.
#[derive(Debug, Default)]
pub struct Approvals {
    memory: Arc<MemoryApprovals>,
    clock: Clock,
}

/// The tool a call is for, as approvals name it.
struct Called<'a> {
    server: Option<&'a str>,
    upstream: &'a str,
    tool: std::borrow::Cow<'a, str>,
    /// The virtual server asks for approval of this tool by its annotations.
    destructive: bool,
}

impl Approvals {
    /// The clock approvals expire by (tests advance it).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The store the running configuration uses.
    pub fn store(&self, rt: &Runtime) -> Arc<dyn ApprovalStore> {
        match &rt.redis {
            Some(r) => Arc::new(RedisApprovals::new(r.clone())),
            None => self.memory.clone(),
        }
    }

    /// The decision step for one `tools/call`, on the bytes the upstream will run (`body`,
    /// `call`). `Ok(None)`: no approval needed. `Ok(Some(a))`: `a` was approved and is now
    /// consumed by this call (hand it to [`Self::restore`] if a later step refuses the
    /// call). `Err`: approval required, denied, or the store is unavailable.
    ///
    /// A tool no rule covers costs pattern matches only: no JSON is read, no store asked.
    pub async fn gate(
        &self,
        rt: &Runtime,
        view: &ToolCall<'_>,
        principal: Option<&Principal>,
    ) -> Result<Option<Approval>, Reject> {
        let cfg = &rt.config.approvals;
        let called = called(view);
        if !(called.destructive || cfg.rule_covers(called.upstream, &called.tool)) {
            return Ok(None);
        }
        let canonical = canonical_arguments(view.body, rt.config.limits.max_json_depth)
            .map_err(Reject::InvalidParams)?;
        let args = digest(&canonical);
        let who = CallIdentity {
            issuer: principal.map_or("", |p| p.issuer.as_str()),
            subject: principal.map_or("", |p| p.subject.as_str()),
            agent: principal.and_then(|p| p.agent.as_deref()),
            server: called.server,
            upstream: called.upstream,
            tool: &called.tool,
        };
        let binding = bind(&who, &args, &cfg.version);
        let store = self.store(rt);
        let now = self.clock.now();
        let unavailable = |e: StoreError| Reject::ApprovalUnavailable {
            reason: e.to_string(),
        };
        // consume, else request; `request` finding an approved one (decided between the
        // two) goes round once more to consume it.
        for _ in 0..2 {
            if let Some(a) = store.consume(&binding, now).await.map_err(unavailable)? {
                log::info!(
                    "approval {} used: {}.{} by {:?} (approved by {})",
                    a.id,
                    a.upstream,
                    a.tool,
                    a.subject,
                    a.decided_by.as_deref().unwrap_or("?")
                );
                return Ok(Some(a));
            }
            let id = new_id().map_err(Reject::Internal)?;
            let (arguments, arguments_truncated) = preview(&canonical);
            let new = Approval {
                id,
                state: State::Pending,
                created_at: now,
                expires_at: now.saturating_add(cfg.ttl.as_secs()),
                issuer: who.issuer.to_string(),
                subject: who.subject.to_string(),
                agent: who.agent.map(str::to_string),
                server: who.server.map(str::to_string),
                upstream: who.upstream.to_string(),
                tool: who.tool.to_string(),
                arguments,
                arguments_truncated,
                arguments_sha256: crate::digest::hex(&args),
                binding: binding.hex(),
                decided_by: None,
                decided_at: None,
            };
            let a = store
                .request(&binding, new, cfg.max_pending, now)
                .await
                .map_err(unavailable)?;
            match a.state {
                State::Pending => {
                    return Err(Reject::ApprovalRequired {
                        url: cfg.url_for(&a.id),
                        retry_after: cfg.retry_after.as_secs(),
                        expires_at: rfc3339(a.expires_at),
                        id: a.id,
                    })
                }
                State::Denied => {
                    log::info!(
                        "approval {} denied by {}: refused {}.{} for {:?}",
                        a.id,
                        a.decided_by.as_deref().unwrap_or("?"),
                        a.upstream,
                        a.tool,
                        a.subject
                    );
                    return Err(Reject::ApprovalDenied { id: a.id });
                }
                State::Approved => continue,
            }
        }
        Err(Reject::ApprovalUnavailable {
            reason: "the approval was used by an identical concurrent call".into(),
        })
    }

    /// Put back an approval [`Self::gate`] consumed for a call a later step refused.
    pub async fn restore(&self, rt: &Runtime, approval: &Approval) -> Result<(), Reject> {
        self.store(rt)
            .restore(approval, self.clock.now())
            .await
            .map_err(|e| Reject::ApprovalUnavailable {
                reason: e.to_string(),
            })
    }

    /// Live approvals, pending first, at most `limit` (and [`MAX_LIST`]).
    pub async fn list(&self, rt: &Runtime, limit: usize) -> Result<Vec<Approval>, StoreError> {
        self.store(rt)
            .list(limit.min(MAX_LIST), self.clock.now())
            .await
    }

    pub async fn get(&self, rt: &Runtime, id: &str) -> Result<Option<Approval>, StoreError> {
        self.store(rt).get(id, self.clock.now()).await
    }

    /// Record an approver's decision; the approval then lives `approvals.ttl` more.
    pub async fn decide(
        &self,
        rt: &Runtime,
        id: &str,
        verdict: Verdict,
        approver: &str,
    ) -> Result<Approval, DecideError> {
        self.store(rt)
            .decide(
                id,
                verdict,
                approver,
                rt.config.approvals.ttl.as_secs(),
                self.clock.now(),
            )
            .await
    }
}

/// The called tool (server, upstream, upstream's tool name) and whether its virtual server
/// wants approval of it for its annotations; `None` when the name cannot be read (the
/// upstream then refuses the call itself).
fn called<'a>(view: &'a ToolCall<'_>) -> Called<'a> {
    // A virtual server asks for approval of the tools its annotations call destructive.
    let destructive = match (view.server, view.entry) {
        (Some(server), Some(entry)) => {
            server.require_approval == RequireApproval::Destructive
                && may_be_destructive(&entry.definition)
        }
        _ => false,
    };
    Called {
        server: view.server_name(),
        upstream: view.upstream,
        tool: std::borrow::Cow::Borrowed(&view.tool),
        destructive,
    }
}

/// MCP tool annotations' defaults: `destructiveHint` is true unless said otherwise, and
/// means nothing for a tool with `readOnlyHint: true`. So a tool is treated as possibly
/// destructive unless it says `readOnlyHint: true` or `destructiveHint: false` (the
/// advertised definition: a virtual server's `tools.X.annotations` override applies).
pub fn may_be_destructive(definition: &serde_json::Value) -> bool {
    let hint = |k: &str| definition["annotations"][k].as_bool();
    !(hint("readOnlyHint") == Some(true) || hint("destructiveHint") == Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn destructive_follows_the_mcp_defaults() {
        for (def, want) in [
            (json!({}), true),
            (json!({"annotations": {}}), true),
            (json!({"annotations": {"destructiveHint": true}}), true),
            (json!({"annotations": {"destructiveHint": false}}), false),
            (json!({"annotations": {"readOnlyHint": true}}), false),
            (
                json!({"annotations": {"readOnlyHint": false, "destructiveHint": true}}),
                true,
            ),
            (json!({"annotations": {"destructiveHint": "no"}}), true),
        ] {
            assert_eq!(may_be_destructive(&def), want, "{def}");
        }
    }
}
