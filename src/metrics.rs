//! Prometheus metrics: one struct, registered once per gateway, bounded label values only.
//!
//! Labels come from closed sets: configured upstream names (or `none`), [`McpMethod`] labels,
//! [`Outcome`] and [`UpstreamErrorKind`]. No client-supplied string ever becomes a label.
//! Each gateway owns its [`Registry`] (not the process-global default one) so several
//! gateways can run in one process, as the integration tests do; the admin listener serves it.

use std::time::Duration;

// pingora-prometheus re-exports the prometheus version Pingora itself links.
use pingora_prometheus::prometheus::{
    self, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

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
    /// Configured upstream name, or `none` when the request never got a route.
    pub upstream: &'a str,
    pub method: McpMethod,
    pub outcome: Outcome,
    /// Time the gateway spent before handing the request to the upstream.
    pub added: Option<Duration>,
    /// Time from sending the request upstream to its response headers.
    pub upstream_latency: Option<Duration>,
    pub upstream_error: Option<UpstreamErrorKind>,
    /// Propagation mode of a credential released to the upstream with this request.
    pub credential_mode: Option<&'static str>,
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
}

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
                "MCP requests handled, by upstream, JSON-RPC method and outcome",
            ),
            &["upstream", "method", "outcome"],
        )?;
        let added_latency = HistogramVec::new(
            HistogramOpts::new(
                "mcp_gateway_added_latency_seconds",
                "Time the gateway spends on a request before forwarding it (checks, body read, parse, routing)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method"],
        )?;
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "mcp_gateway_upstream_latency_seconds",
                "Time from sending a request upstream to receiving its response headers",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["upstream"],
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
        })
    }

    /// Record one finished request. Called only from the proxy's `logging` phase.
    pub fn record(&self, r: &RequestRecord<'_>) {
        self.requests
            .with_label_values(&[r.upstream, r.method.as_label(), r.outcome.as_label()])
            .inc();
        if let Some(d) = r.added {
            self.added_latency
                .with_label_values(&[r.method.as_label()])
                .observe(d.as_secs_f64());
        }
        if let Some(d) = r.upstream_latency {
            self.upstream_latency
                .with_label_values(&[r.upstream])
                .observe(d.as_secs_f64());
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
            upstream: "demo",
            method: McpMethod::ToolsCall,
            outcome: Outcome::UpstreamError,
            added: Some(Duration::from_micros(30)),
            upstream_latency: Some(Duration::from_millis(2)),
            upstream_error: Some(UpstreamErrorKind::ConnectRefused),
            credential_mode: Some("static"),
        });
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(
            r#"mcp_gateway_requests_total{method="tools/call",outcome="upstream_error",upstream="demo"} 1"#
        ));
        assert!(text.contains(
            r#"mcp_gateway_upstream_errors_total{kind="connect_refused",upstream="demo"} 1"#
        ));
        assert!(text.contains("mcp_gateway_added_latency_seconds_bucket"));
        assert!(text.contains("mcp_gateway_upstream_latency_seconds_count{upstream=\"demo\"} 1"));
        m.session_revocation_full();
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("mcp_gateway_session_revocations_full_total 1"));
    }
}
