//! The built-in status page: `GET /admin/status` (server-rendered HTML, no scripts, no
//! external assets, refreshes itself every 5 s) and `GET /admin/status.json` (the same
//! data). Both are rendered from ONE [`Status`] built per request by [`build`], so the page
//! can never show something the JSON does not say.
//!
//! Where the numbers come from (docs/observability.md#status-page):
//! - traffic, error rates, latency percentiles and denials: the gateway's metrics registry
//!   ([`figures`]), counted since the process started;
//! - upstream health and tool counts: the tool registry's last discovery round;
//! - pending approvals: the approval store (at most [`MAX_APPROVALS`]; arguments are not
//!   shown, only their digest);
//! - recent audit records: the trail's own records (already redacted), the last
//!   [`crate::audit::Recent::CAPACITY`] the writer wrote.
//!
//! Everything is bounded: label values come from closed sets (configured names, catalog
//! tools), rows are capped ([`MAX_ROWS`]), and every string is escaped when it becomes HTML.

mod figures;
mod html;

use serde::Serialize;

use crate::state::{Runtime, Shared};
use figures::{by_labels, Buckets, Families};
pub use figures::{Counts, Percentiles};

/// Most rows in each table (the label sets are bounded already; this bounds the page).
pub const MAX_ROWS: usize = 100;
/// Most approvals listed.
pub const MAX_APPROVALS: usize = 50;
/// Seconds between the page's reloads.
pub const REFRESH_SECONDS: u32 = 5;

/// Everything the status page shows, as of [`Status::generated`].
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// RFC 3339 UTC.
    pub generated: String,
    pub version: &'static str,
    /// Every request, every method (`mcp_gateway_requests_total`).
    pub requests: Counts,
    /// `tools/call` requests.
    pub tool_calls: Counts,
    /// Gateway time of every request, and upstream time of forwarded ones.
    pub gateway_ms: Percentiles,
    pub upstream_ms: Percentiles,
    /// By virtual server (`none`: plain routes and requests that matched no endpoint).
    pub virtual_servers: Vec<ServerRow>,
    /// `tools/call` by virtual server and exposed tool name (`unknown`: names the catalog
    /// does not visibly hold, and calls on plain routes).
    pub calls: Vec<CallRow>,
    /// Rows left out past [`MAX_ROWS`].
    pub calls_not_shown: usize,
    pub denials: Denials,
    pub upstreams: Vec<UpstreamRow>,
    pub approvals: ApprovalsPanel,
    pub audit: AuditPanel,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerRow {
    pub virtual_server: String,
    pub requests: Counts,
    pub tool_calls: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallRow {
    pub virtual_server: String,
    pub tool: String,
    pub calls: Counts,
    pub gateway_ms: Percentiles,
    pub upstream_ms: Percentiles,
}

/// Why requests were refused, each from its own counter.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Denials {
    /// `mcp_gateway_refusals_total`: the decision step that refused.
    pub by_step: Vec<StepRow>,
    /// `mcp_gateway_policy_denials_total`: the argument policy rule.
    pub by_rule: Vec<NamedCount>,
    /// `mcp_gateway_quota_decisions_total{result="limited"}`: the quota limit.
    pub quota_limited: Vec<NamedCount>,
    /// `mcp_gateway_auth_failures_total`: authentication and access-list refusals.
    pub auth_failures: Vec<NamedCount>,
    /// `mcp_gateway_approvals_total`: required, approved, denied, used.
    pub approval_events: Vec<NamedCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub virtual_server: String,
    pub step: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedCount {
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpstreamRow {
    pub name: String,
    /// `up`, `down` or `unknown` (not discovered yet, or not covered by discovery).
    pub health: &'static str,
    /// Why the last discovery failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub tools: usize,
    pub quarantined: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApprovalsPanel {
    /// Calls waiting for an approver, oldest first.
    pub pending: Vec<PendingApproval>,
    /// Approved calls not yet retried (among the approvals read).
    pub approved_unused: usize,
    /// The store did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A pending approval without its arguments (the page is `read`; the preview is at
/// `GET /admin/approvals/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct PendingApproval {
    pub id: String,
    pub virtual_server: Option<String>,
    pub upstream: String,
    pub tool: String,
    pub issuer: String,
    pub subject: String,
    pub agent: Option<String>,
    pub created: String,
    pub expires: String,
    pub arguments_sha256: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditPanel {
    /// An `audit` section is configured.
    pub enabled: bool,
    /// The trail's records as written (redacted), newest first.
    pub records: Vec<serde_json::Value>,
}

const REQUESTS: &str = "mcp_gateway_requests_total";
const GATEWAY_TIME: &str = "mcp_gateway_added_latency_seconds";
const UPSTREAM_TIME: &str = "mcp_gateway_upstream_latency_seconds";
const TOOLS_CALL: &str = "tools/call";

/// Build the snapshot: one gather of the metrics, one registry snapshot, one approval list.
pub(super) async fn build(shared: &Shared, rt: &Runtime) -> Status {
    let families = Families::new(shared.metrics.gather());
    let (requests, tool_calls, virtual_servers) = traffic(&families);
    let (calls, calls_not_shown) = calls(&families);
    let mut gateway = Buckets::default();
    for (_, b) in families.histograms(GATEWAY_TIME) {
        gateway.add(&b);
    }
    let mut upstream = Buckets::default();
    for (_, b) in families.histograms(UPSTREAM_TIME) {
        upstream.add(&b);
    }
    Status {
        generated: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        version: crate::metrics::VERSION,
        requests,
        tool_calls,
        gateway_ms: gateway.percentiles(),
        upstream_ms: upstream.percentiles(),
        virtual_servers,
        calls,
        calls_not_shown,
        denials: denials(&families),
        upstreams: upstreams(shared, rt),
        approvals: approvals(shared, rt).await,
        audit: AuditPanel {
            enabled: shared.audit.enabled(),
            records: shared.audit.recent(),
        },
    }
}

/// Totals, `tools/call` totals and the per-virtual-server rows.
fn traffic(f: &Families) -> (Counts, Counts, Vec<ServerRow>) {
    let mut all = Counts::default();
    let mut calls = Counts::default();
    let mut servers: std::collections::BTreeMap<String, ServerRow> = Default::default();
    for (l, n) in f.counters(REQUESTS) {
        let outcome = l.get("outcome");
        all.add(outcome, n);
        let vs = l.get("virtual_server");
        let row = servers.entry(vs.to_string()).or_insert_with(|| ServerRow {
            virtual_server: vs.to_string(),
            requests: Counts::default(),
            tool_calls: 0,
        });
        row.requests.add(outcome, n);
        if l.get("method") == TOOLS_CALL {
            calls.add(outcome, n);
            row.tool_calls += n;
        }
    }
    let mut rows: Vec<ServerRow> = servers
        .into_values()
        .filter(|r| r.requests.total > 0)
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.requests.total));
    rows.truncate(MAX_ROWS);
    (all, calls, rows)
}

/// `tools/call` rows by (virtual server, tool), most calls first; and how many were cut.
fn calls(f: &Families) -> (Vec<CallRow>, usize) {
    type Key = (String, String);
    let key = |l: &figures::Labels<'_>| -> Key {
        (
            l.get("virtual_server").to_string(),
            l.get("tool").to_string(),
        )
    };
    let mut rows: std::collections::BTreeMap<Key, (Counts, Buckets, Buckets)> = Default::default();
    for (l, n) in f.counters(REQUESTS) {
        if l.get("method") == TOOLS_CALL {
            rows.entry(key(&l)).or_default().0.add(l.get("outcome"), n);
        }
    }
    for (name, upstream) in [(GATEWAY_TIME, false), (UPSTREAM_TIME, true)] {
        for (l, b) in f.histograms(name) {
            if l.get("method") != TOOLS_CALL {
                continue;
            }
            if let Some(r) = rows.get_mut(&key(&l)) {
                let sum = if upstream { &mut r.2 } else { &mut r.1 };
                sum.add(&b);
            }
        }
    }
    let mut rows: Vec<CallRow> = rows
        .into_iter()
        .filter(|(_, r)| r.0.total > 0)
        .map(|((virtual_server, tool), (calls, g, u))| CallRow {
            virtual_server,
            tool,
            calls,
            gateway_ms: g.percentiles(),
            upstream_ms: u.percentiles(),
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.calls.total));
    let cut = rows.len().saturating_sub(MAX_ROWS);
    rows.truncate(MAX_ROWS);
    (rows, cut)
}

fn denials(f: &Families) -> Denials {
    let named = |name: &str, label: &str| -> Vec<NamedCount> {
        by_labels(f, name, &[label])
            .into_iter()
            .take(MAX_ROWS)
            .map(|(k, count)| NamedCount {
                name: k.into_iter().next().unwrap_or_default(),
                count,
            })
            .collect()
    };
    let quota_limited = by_labels(f, "mcp_gateway_quota_decisions_total", &["limit", "result"])
        .into_iter()
        .filter(|(k, _)| k.get(1).is_some_and(|r| r == "limited"))
        .take(MAX_ROWS)
        .map(|(k, count)| NamedCount {
            name: k.into_iter().next().unwrap_or_default(),
            count,
        })
        .collect();
    Denials {
        by_step: by_labels(f, "mcp_gateway_refusals_total", &["virtual_server", "step"])
            .into_iter()
            .take(MAX_ROWS)
            .map(|(k, count)| {
                let mut k = k.into_iter();
                StepRow {
                    virtual_server: k.next().unwrap_or_default(),
                    step: k.next().unwrap_or_default(),
                    count,
                }
            })
            .collect(),
        by_rule: named("mcp_gateway_policy_denials_total", "rule"),
        quota_limited,
        auth_failures: named("mcp_gateway_auth_failures_total", "reason"),
        approval_events: named("mcp_gateway_approvals_total", "event"),
    }
}

/// Every configured upstream, as the last discovery round saw it.
fn upstreams(shared: &Shared, rt: &Runtime) -> Vec<UpstreamRow> {
    let snap = shared.registry.snapshot();
    let view = crate::registry::view::build(&rt.config, &snap, &rt.catalogs);
    view.upstreams
        .into_iter()
        .take(MAX_ROWS)
        .map(|u| UpstreamRow {
            health: u.health,
            error: u.error,
            tools: u.tools.len(),
            quarantined: u.quarantined.len(),
            name: u.name,
        })
        .collect()
}

async fn approvals(shared: &Shared, rt: &Runtime) -> ApprovalsPanel {
    use crate::approval::{rfc3339, State};
    // Pending ones come first in the store's list.
    let all = match shared.approvals.list(rt, MAX_APPROVALS).await {
        Ok(all) => all,
        Err(e) => {
            return ApprovalsPanel {
                error: Some(e.to_string()),
                ..ApprovalsPanel::default()
            }
        }
    };
    let mut pending: Vec<PendingApproval> = all
        .iter()
        .filter(|a| a.state == State::Pending)
        .map(|a| PendingApproval {
            id: a.id.clone(),
            virtual_server: a.server.clone(),
            upstream: a.upstream.clone(),
            tool: a.tool.clone(),
            issuer: a.issuer.clone(),
            subject: a.subject.clone(),
            agent: a.agent.clone(),
            created: rfc3339(a.created_at),
            expires: rfc3339(a.expires_at),
            arguments_sha256: a.arguments_sha256.clone(),
        })
        .collect();
    pending.sort_by(|a, b| a.created.cmp(&b.created));
    ApprovalsPanel {
        approved_unused: all.iter().filter(|a| a.state == State::Approved).count(),
        pending,
        error: None,
    }
}

/// The JSON form.
pub(super) fn json(status: &Status) -> serde_json::Value {
    // Cannot fail: no maps with non-string keys, no non-finite numbers.
    serde_json::to_value(status).unwrap_or(serde_json::Value::Null)
}

/// The HTML page.
pub(super) fn page(status: &Status) -> Vec<u8> {
    html::render(status).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::McpMethod;
    use crate::metrics::{Metrics, Outcome, RequestRecord, TOOL_NONE};
    use std::time::Duration;

    fn record(m: &Metrics, vs: &str, method: McpMethod, tool: &str, outcome: Outcome, us: u64) {
        m.record(&RequestRecord {
            virtual_server: vs,
            upstream: if outcome == Outcome::Rejected {
                "none"
            } else {
                "up"
            },
            method,
            tool,
            outcome,
            added: Some(Duration::from_micros(us)),
            upstream_latency: (outcome != Outcome::Rejected).then_some(Duration::from_millis(3)),
            upstream_error: None,
            credential_mode: None,
            refused_by: (outcome == Outcome::Rejected).then_some(crate::decision::Step::Policy),
        });
    }

    #[test]
    fn figures_come_from_the_metrics_registry() {
        let m = Metrics::new().unwrap();
        for _ in 0..3 {
            record(&m, "all", McpMethod::ToolsCall, "up__add", Outcome::Ok, 40);
        }
        record(
            &m,
            "all",
            McpMethod::ToolsCall,
            "up__echo",
            Outcome::Rejected,
            40,
        );
        record(
            &m,
            "all",
            McpMethod::ToolsCall,
            "up__add",
            Outcome::UpstreamError,
            40,
        );
        record(&m, "none", McpMethod::ToolsList, TOOL_NONE, Outcome::Ok, 40);
        m.policy_denied("short-echo");
        m.quota_decision("two-adds", "limited");
        m.quota_decision("two-adds", "allowed");
        let f = Families::new(m.gather());
        let (all, calls, servers) = traffic(&f);
        assert_eq!(
            (all.total, calls.total, calls.refused, calls.errors),
            (6, 5, 1, 1)
        );
        assert_eq!(servers[0].virtual_server, "all");
        assert_eq!((servers[0].requests.total, servers[0].tool_calls), (5, 5));
        let (rows, cut) = super::calls(&f);
        assert_eq!(cut, 0);
        assert_eq!((rows[0].tool.as_str(), rows[0].calls.total), ("up__add", 4));
        assert_eq!((rows[0].calls.ok, rows[0].calls.errors), (3, 1));
        // 40 µs lands in the (25, 50] µs bucket; 3 ms in (2.5, 5] ms.
        let g = rows[0].gateway_ms;
        assert_eq!(g.samples, 4);
        assert!(g.p50.is_some_and(|p| p > 0.025 && p <= 0.05), "{g:?}");
        let u = rows[0].upstream_ms;
        assert!(u.p99.is_some_and(|p| p > 2.5 && p <= 5.0), "{u:?}");
        assert_eq!(rows[1].upstream_ms.samples, 0);
        let d = denials(&f);
        assert_eq!(d.by_rule[0].name, "short-echo");
        assert_eq!((d.quota_limited.len(), d.quota_limited[0].count), (1, 1));
        assert_eq!(d.by_step[0].step, "policy");
    }
}
