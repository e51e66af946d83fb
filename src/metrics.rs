//! Prometheus metrics: one struct, registered once per gateway, bounded label values only.
//!
//! Labels come from closed sets: configured names (upstreams, virtual servers, policy rules,
//! quota limits; or `none`), tool names from a virtual server's catalog (bounded by the
//! registry; `unknown` for any other name a client sends), [`McpMethod`] labels, [`Outcome`],
//! [`UpstreamErrorKind`], [`crate::decision::Step`], [`AuthFailure`] and [`ApprovalEvent`].
//! No client-supplied string ever becomes a label. docs/observability.md lists every metric.
//! Each gateway owns its [`Registry`] (not the process-global default one) so several
//! gateways can run in one process, as the integration tests do; the admin listener serves it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

// pingora-prometheus re-exports the prometheus version Pingora itself links.
use pingora_prometheus::prometheus::{
    self, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

use crate::decision::Step;
use crate::mcp::McpMethod;

/// How a request ended, from the gateway's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Forwarded and answered by the upstream with a status below 500.
    #[default]
    Ok,
    /// Refused by the gateway because of the client's request (4xx written by the gateway).
    Rejected,
    /// The upstream failed: connect error, timeout, reset, or a 5xx answer.
    UpstreamError,
    /// The client went away before the response was complete.
    ClientClosed,
    /// A failure inside the gateway.
    InternalError,
}

impl Outcome {
    pub fn as_label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::UpstreamError => "upstream_error",
            Outcome::ClientClosed => "client_closed",
            Outcome::InternalError => "internal_error",
        }
    }
}

/// Why an upstream exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    ConnectRefused,
    ConnectTimeout,
    ReadTimeout,
    WriteTimeout,
    ConnectionReset,
    Status5xx,
    Other,
}

impl UpstreamErrorKind {
    pub fn as_label(self) -> &'static str {
        match self {
            UpstreamErrorKind::ConnectRefused => "connect_refused",
            UpstreamErrorKind::ConnectTimeout => "connect_timeout",
            UpstreamErrorKind::ReadTimeout => "read_timeout",
            UpstreamErrorKind::WriteTimeout => "write_timeout",
            UpstreamErrorKind::ConnectionReset => "connection_reset",
            UpstreamErrorKind::Status5xx => "status_5xx",
            UpstreamErrorKind::Other => "other",
        }
    }
}

/// What `logging()` knows about a finished request, in plain values.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// Configured virtual server name, or `none` (a plain route, or no endpoint).
    pub virtual_server: &'a str,
    /// Configured upstream name, or `none` when the request never got a route.
    pub upstream: &'a str,
    pub method: McpMethod,
    /// Exposed tool name from the virtual server's catalog; [`TOOL_NONE`] when the message
    /// is not a `tools/call`, [`TOOL_UNKNOWN`] for a name the catalog does not (visibly) hold
    /// and for calls on plain routes (whose names the gateway does not vet).
    pub tool: &'a str,
    pub outcome: Outcome,
    /// Time the gateway spent on the request: until it handed it to the upstream, or (not
    /// forwarded) until it wrote its own answer.
    pub added: Option<Duration>,
    /// Time from sending the request upstream to its response headers.
    pub upstream_latency: Option<Duration>,
    pub upstream_error: Option<UpstreamErrorKind>,
    /// Propagation mode of a credential released to the upstream with this request.
    pub credential_mode: Option<&'static str>,
    /// The decision step that refused the request, if one did.
    pub refused_by: Option<Step>,
}

/// Tool label of a message that is not a `tools/call`.
pub const TOOL_NONE: &str = "none";
/// Tool label of a `tools/call` whose name is not a visible catalog entry (or on a plain
/// route): the client's string never becomes a label.
pub const TOOL_UNKNOWN: &str = "unknown";

/// Why authentication (or a virtual server's access list) refused a request: a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`, or two API keys.
    Malformed,
    /// An API key no `auth.api_keys` entry has.
    UnknownApiKey,
    /// A JWT that failed verification (signature, issuer, audience, expiry), or JWTs not
    /// accepted here.
    InvalidToken,
    /// Authenticated, without a required scope (403).
    InsufficientScope,
    /// Authenticated, not on the virtual server's access list (403).
    ServerNotAllowed,
}

impl AuthFailure {
    pub fn as_label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnknownApiKey => "unknown_api_key",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::InsufficientScope => "insufficient_scope",
            AuthFailure::ServerNotAllowed => "server_not_allowed",
        }
    }
}

/// What happened to a human approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalEvent {
    /// A call was answered "approval required" (a retry while still pending counts again).
    Required,
    /// An approver approved (admin API).
    Approved,
    /// An approver denied (admin API).
    Denied,
    /// An approved call went out, consuming its approval.
    Used,
    /// A `used` approval given back: its call never reached the upstream (connection
    /// refused, timed out, no route), so it did not run. `used - restored` is what ran.
    Restored,
}

impl ApprovalEvent {
    pub fn as_label(self) -> &'static str {
        match self {
            ApprovalEvent::Required => "required",
            ApprovalEvent::Approved => "approved",
            ApprovalEvent::Denied => "denied",
            ApprovalEvent::Used => "used",
            ApprovalEvent::Restored => "restored",
        }
    }
}

/// Gauges read from the gateway's state when `/metrics` is scraped.
#[derive(Debug, Default)]
pub struct StateGauges<'a> {
    /// Gateway sessions of virtual servers holding upstream sessions in this replica.
    pub sessions_open: usize,
    /// Per configured upstream that discovery covers: (name, up, tools known).
    pub upstreams: Vec<(&'a str, bool, usize)>,
}

/// All request metrics of one gateway.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    added_latency: HistogramVec,
    upstream_latency: HistogramVec,
    upstream_errors: IntCounterVec,
    credential_releases: IntCounterVec,
    tool_changes: IntCounterVec,
    session_revocations_full: IntCounter,
    quota_decisions: IntCounterVec,
    quota_redis_fallbacks: IntCounterVec,
    audit_queue_depth: IntGauge,
    audit_dropped: IntCounterVec,
    audit_records: IntCounter,
    refusals: IntCounterVec,
    policy_denials: IntCounterVec,
    auth_failures: IntCounterVec,
    approvals: IntCounterVec,
    sessions_open: IntGauge,
    upstream_up: IntGaugeVec,
    upstream_tools: IntGaugeVec,
    /// Resolved request series by keyed hash of their labels ([`Metrics::series`]).
    request_series: Arc<RwLock<HashMap<crate::digest::Digest, Arc<RequestSeries>>>>,
}

/// The counter and histograms of one request label tuple.
#[derive(Debug)]
struct RequestSeries {
    requests: IntCounter,
    added: Histogram,
    upstream: OnceLock<Histogram>,
}

/// Labels of the request counter and both latency histograms, in this order.
const REQUEST_LABELS: &[&str] = &["virtual_server", "upstream", "method", "tool", "outcome"];

/// Version of this build, and the git commit when the build set `MCP_GATEWAY_GIT_COMMIT`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = match option_env!("MCP_GATEWAY_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    /// Create and register every metric in a fresh registry.
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "mcp_gateway_requests_total",
                "MCP requests handled, by virtual server, upstream, JSON-RPC method, tool and outcome",
            ),
            REQUEST_LABELS,
        )?;
        let added_latency = HistogramVec::new(
            HistogramOpts::new(
                "mcp_gateway_added_latency_seconds",
                "Gateway time: until a request is forwarded (checks, body read, parse, routing, decision), or until the gateway's own answer is written",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            REQUEST_LABELS,
        )?;
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "mcp_gateway_upstream_latency_seconds",
                "Upstream time: from sending a request upstream to receiving its response headers",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            REQUEST_LABELS,
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "mcp_gateway_upstream_errors_total",
                "Failed upstream exchanges, by upstream and kind",
            ),
            &["upstream", "kind"],
        )?;
        let credential_releases = IntCounterVec::new(
            Opts::new(
                "mcp_gateway_credential_releases_total",
                "Credentials released to upstreams, by upstream and propagation mode",
            ),
            &["upstream", "mode"],
        )?;
        registry.register(Box::new(credential_releases.clone()))?;
        let tool_changes = IntCounterVec::new(
            Opts::new(
                "mcp_gateway_tool_changes_total",
                "Upstream tool definitions that changed from the approved fingerprint, by upstream and action",
            ),
            &["upstream", "action"],
        )?;
        registry.register(Box::new(tool_changes.clone()))?;
        // No labels: one table per replica.
        let session_revocations_full = IntCounter::with_opts(Opts::new(
            "mcp_gateway_session_revocations_full_total",
            "Session DELETEs refused because the table of ended sessions was full of unexpired ones",
        ))?;
        registry.register(Box::new(session_revocations_full.clone()))?;
        // `limit` is a configured limit name (bounded by `quotas[]`), never a subject.
        let quota_decisions = IntCounterVec::new(
            Opts::new(
                "mcp_gateway_quota_decisions_total",
                "tools/call checks by a quota limit, by limit name and result (allowed, limited)",
            ),
            &["limit", "result"],
        )?;
        registry.register(Box::new(quota_decisions.clone()))?;
        let quota_redis_fallbacks = IntCounterVec::new(
            Opts::new(
                "mcp_gateway_quota_redis_fallbacks_total",
                "Quota checks whose Redis did not answer, by limit name and on_redis_error mode (fail_open: counted in memory; fail_closed: refused)",
            ),
            &["limit", "mode"],
        )?;
        registry.register(Box::new(quota_redis_fallbacks.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(added_latency.clone()))?;
        registry.register(Box::new(upstream_latency.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        let audit_queue_depth = IntGauge::with_opts(Opts::new(
            "mcp_gateway_audit_queue_depth",
            "Audit records waiting for the writer (sampled as records are queued and written)",
        ))?;
        registry.register(Box::new(audit_queue_depth.clone()))?;
        // `reason`: queue_full (on_full: drop), write_error, closed (after shutdown).
        let audit_dropped = IntCounterVec::new(
            Opts::new(
                "mcp_gateway_audit_dropped_total",
                "Audit records lost, by reason (queue_full, write_error, closed)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(audit_dropped.clone()))?;
        let audit_records = IntCounter::with_opts(Opts::new(
            "mcp_gateway_audit_records_total",
            "Audit records queued for the writer (written unless counted as dropped)",
        ))?;
        registry.register(Box::new(audit_records.clone()))?;
        let counter = |name: &str, help: &str, labels: &[&str]| -> anyhow::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let refusals = counter(
            "mcp_gateway_refusals_total",
            "Requests refused by the decision point, by virtual server and decision step",
            &["virtual_server", "step"],
        )?;
        // `rule` is a configured policy rule id (bounded by `policies[]`).
        let policy_denials = counter(
            "mcp_gateway_policy_denials_total",
            "tools/call refused by an argument policy rule, by rule id",
            &["rule"],
        )?;
        let auth_failures = counter(
            "mcp_gateway_auth_failures_total",
            "Requests refused by authentication or a virtual server's access list, by reason",
            &["reason"],
        )?;
        let approvals = counter(
            "mcp_gateway_approvals_total",
            "Human approvals: calls answered approval-required, approver decisions, approvals used and given back",
            &["event"],
        )?;
        let sessions_open = IntGauge::with_opts(Opts::new(
            "mcp_gateway_sessions_open",
            "Virtual-server gateway sessions holding upstream sessions in this replica",
        ))?;
        registry.register(Box::new(sessions_open.clone()))?;
        let upstream_up = IntGaugeVec::new(
            Opts::new(
                "mcp_gateway_upstream_up",
                "1 when the upstream's last tool discovery succeeded, 0 when it failed (upstreams discovery covers)",
            ),
            &["upstream"],
        )?;
        registry.register(Box::new(upstream_up.clone()))?;
        let upstream_tools = IntGaugeVec::new(
            Opts::new(
                "mcp_gateway_upstream_tools",
                "Tools the upstream offered at its last successful discovery",
            ),
            &["upstream"],
        )?;
        registry.register(Box::new(upstream_tools.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "mcp_gateway_build_info",
                "Always 1; the version and git commit (or unknown) of this build",
            ),
            &["version", "commit"],
        )?;
        registry.register(Box::new(build_info.clone()))?;
        build_info.with_label_values(&[VERSION, GIT_COMMIT]).set(1);
        Ok(Metrics {
            registry,
            requests,
            added_latency,
            upstream_latency,
            upstream_errors,
            credential_releases,
            tool_changes,
            session_revocations_full,
            quota_decisions,
            quota_redis_fallbacks,
            audit_queue_depth,
            audit_dropped,
            audit_records,
            refusals,
            policy_denials,
            auth_failures,
            approvals,
            sessions_open,
            upstream_up,
            upstream_tools,
            request_series: Arc::default(),
        })
    }

    /// Record one finished request. Called only from the proxy's `logging` phase.
    pub fn record(&self, r: &RequestRecord<'_>) {
        let labels = [
            r.virtual_server,
            r.upstream,
            r.method.as_label(),
            r.tool,
            r.outcome.as_label(),
        ];
        let series = self.series(&labels);
        series.requests.inc();
        if let Some(d) = r.added {
            series.added.observe(d.as_secs_f64());
        }
        if let Some(d) = r.upstream_latency {
            series
                .upstream
                .get_or_init(|| self.upstream_latency.with_label_values(&labels))
                .observe(d.as_secs_f64());
        }
        if let Some(step) = r.refused_by {
            self.refusals
                .with_label_values(&[r.virtual_server, step.as_label()])
                .inc();
        }
        if let Some(mode) = r.credential_mode {
            self.credential_releases
                .with_label_values(&[r.upstream, mode])
                .inc();
        }
        if let Some(k) = r.upstream_error {
            self.upstream_errors
                .with_label_values(&[r.upstream, k.as_label()])
                .inc();
        }
    }

    /// The request series of one label tuple, resolved once: one keyed hash and one shared
    /// read lock per request instead of a label lookup per series (measured: 85 ns per
    /// record, 296 ns with the three lookups). The table holds one entry per label tuple, as many as the series
    /// themselves (bounded: every label comes from a closed set).
    fn series(&self, labels: &[&str; 5]) -> Arc<RequestSeries> {
        let key = crate::digest::keyed(&labels.map(str::as_bytes));
        if let Some(s) = self
            .request_series
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return s;
        }
        let s = Arc::new(RequestSeries {
            requests: self.requests.with_label_values(labels),
            added: self.added_latency.with_label_values(labels),
            // A refused request has no upstream time: no empty series for it.
            upstream: OnceLock::new(),
        });
        match self.request_series.write() {
            Ok(mut m) => m.entry(key).or_insert(s).clone(),
            Err(_) => s,
        }
    }

    /// Count a changed tool definition (`upstream` is a configured name; `action` is one of
    /// quarantine / alert / accept).
    pub fn tool_changed(&self, upstream: &str, action: &'static str) {
        self.tool_changes
            .with_label_values(&[upstream, action])
            .inc();
    }

    /// Count a session DELETE refused because the revocation table was full.
    pub fn session_revocation_full(&self) {
        self.session_revocations_full.inc();
    }

    /// Count a quota check: `limit` is a configured limit name, `result` allowed / limited.
    pub fn quota_decision(&self, limit: &str, result: &'static str) {
        self.quota_decisions
            .with_label_values(&[limit, result])
            .inc();
    }

    /// Count a quota check whose Redis did not answer (`mode`: fail_open / fail_closed).
    pub fn quota_redis_fallback(&self, limit: &str, mode: &'static str) {
        self.quota_redis_fallbacks
            .with_label_values(&[limit, mode])
            .inc();
    }

    /// Set the audit queue's depth.
    pub fn audit_queue_depth(&self, depth: usize) {
        self.audit_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Count a record queued for the audit writer.
    pub fn audit_record_queued(&self) {
        self.audit_records.inc();
    }

    /// Count a lost audit record (`reason`: queue_full, write_error, closed).
    pub fn audit_dropped(&self, reason: &'static str) {
        self.audit_dropped.with_label_values(&[reason]).inc();
    }

    /// Count an argument policy refusal (`rule`: a configured rule id).
    pub fn policy_denied(&self, rule: &str) {
        self.policy_denials.with_label_values(&[rule]).inc();
    }

    /// Count an authentication or access-list refusal.
    pub fn auth_failed(&self, reason: AuthFailure) {
        self.auth_failures
            .with_label_values(&[reason.as_label()])
            .inc();
    }

    /// Count an approval event.
    pub fn approval(&self, event: ApprovalEvent) {
        self.approvals.with_label_values(&[event.as_label()]).inc();
    }

    /// Set the gauges read from the gateway's state (before a scrape). Upstreams no longer
    /// configured disappear.
    pub fn set_state(&self, s: &StateGauges<'_>) {
        self.sessions_open
            .set(i64::try_from(s.sessions_open).unwrap_or(i64::MAX));
        self.upstream_up.reset();
        self.upstream_tools.reset();
        for (name, up, tools) in &s.upstreams {
            self.upstream_up
                .with_label_values(&[*name])
                .set(i64::from(*up));
            self.upstream_tools
                .with_label_values(&[*name])
                .set(i64::try_from(*tools).unwrap_or(i64::MAX));
        }
    }

    /// This gateway's metric families (not the process-global registry's): the admin status
    /// page reads its figures here, so it and `/metrics` never disagree.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// Prometheus text exposition of this gateway's metrics plus the process-global registry
    /// (where Pingora and libraries register theirs).
    pub fn render(&self) -> Vec<u8> {
        use prometheus::Encoder;
        let mut families = self.registry.gather();
        families.extend(prometheus::gather());
        let mut out = Vec::with_capacity(8 * 1024);
        // Encoding into a Vec cannot fail for well-formed families; on error, serve what we have.
        if let Err(e) = prometheus::TextEncoder::new().encode(&families, &mut out) {
            log::error!("encoding metrics failed: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_then_render_shows_bounded_labels() {
        let m = Metrics::new().unwrap();
        m.record(&RequestRecord {
            virtual_server: "none",
            upstream: "demo",
            method: McpMethod::ToolsCall,
            tool: TOOL_UNKNOWN,
            refused_by: None,
            outcome: Outcome::UpstreamError,
            added: Some(Duration::from_micros(30)),
            upstream_latency: Some(Duration::from_millis(2)),
            upstream_error: Some(UpstreamErrorKind::ConnectRefused),
            credential_mode: Some("static"),
        });
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(
            r#"mcp_gateway_requests_total{method="tools/call",outcome="upstream_error",tool="unknown",upstream="demo",virtual_server="none"} 1"#
        ));
        assert!(text.contains(
            r#"mcp_gateway_upstream_errors_total{kind="connect_refused",upstream="demo"} 1"#
        ));
        assert!(text.contains("mcp_gateway_added_latency_seconds_bucket"));
        assert!(text.contains(r#"mcp_gateway_upstream_latency_seconds_count{method="tools/call",outcome="upstream_error",tool="unknown",upstream="demo",virtual_server="none"} 1"#));
        m.session_revocation_full();
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("mcp_gateway_session_revocations_full_total 1"));
    }

    #[test]
    fn refusals_events_and_state_gauges_render_with_their_bounded_labels() {
        let m = Metrics::new().unwrap();
        m.record(&RequestRecord {
            virtual_server: "all",
            upstream: "none",
            method: McpMethod::ToolsCall,
            tool: "crm__delete",
            outcome: Outcome::Rejected,
            added: Some(Duration::from_micros(30)),
            upstream_latency: None,
            upstream_error: None,
            credential_mode: None,
            refused_by: Some(Step::Policy),
        });
        m.policy_denied("no-prod");
        m.auth_failed(AuthFailure::UnknownApiKey);
        m.approval(ApprovalEvent::Required);
        m.set_state(&StateGauges {
            sessions_open: 3,
            upstreams: vec![("crm", true, 12), ("github", false, 0)],
        });
        let text = String::from_utf8(m.render()).unwrap();
        for line in [
            r#"mcp_gateway_refusals_total{step="policy",virtual_server="all"} 1"#,
            r#"mcp_gateway_policy_denials_total{rule="no-prod"} 1"#,
            r#"mcp_gateway_auth_failures_total{reason="unknown_api_key"} 1"#,
            r#"mcp_gateway_approvals_total{event="required"} 1"#,
            "mcp_gateway_sessions_open 3",
            r#"mcp_gateway_upstream_up{upstream="crm"} 1"#,
            r#"mcp_gateway_upstream_up{upstream="github"} 0"#,
            r#"mcp_gateway_upstream_tools{upstream="crm"} 12"#,
            r#"mcp_gateway_added_latency_seconds_count{method="tools/call",outcome="rejected",tool="crm__delete",upstream="none",virtual_server="all"} 1"#,
            "mcp_gateway_build_info{commit=",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("mcp_gateway_upstream_latency_seconds_count"));
        // An upstream removed from the configuration disappears at the next scrape.
        m.set_state(&StateGauges {
            sessions_open: 0,
            upstreams: vec![("crm", true, 12)],
        });
        let text = String::from_utf8(m.render()).unwrap();
        assert!(!text.contains("github"), "{text}");
    }
}
