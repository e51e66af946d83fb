//! [`Record`]: one line of the trail, built on the request's worker from plain values
//! ([`Request`], or [`Record::admin`]). The writer adds `prev` and `hash` (see `chain`).
//!
//! Optional fields are left out when unknown, so a line carries what happened and no more.
//! Arguments: the bytes the upstream runs (`Decision.rewritten` when set), digested exactly
//! (canonical form, numbers as written) and shown redacted; above [`MAX_ARGUMENT_BYTES`] the
//! shown arguments are replaced by a note with their size (the digest still covers them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use once_cell::sync::Lazy;
use serde::Serialize;
use serde_json::Value;

use crate::config::Redaction;
use crate::decision::Step;
use crate::error::Reject;
use crate::mcp::McpMethod;
use crate::metrics::Outcome;

/// Largest canonical arguments shown in a record (64 KiB): one record stays one readable
/// line, and a client cannot make every record megabytes long.
pub const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

/// Depth bound for the canonical form (the strict parse already bounded the body).
const MAX_DEPTH: usize = 128;

/// Whether the gateway let the request through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    Refused,
}

/// Who made the request.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The tool of a `tools/call`: the name the client used and the upstream's own name.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub exposed: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// What one quota limit counted against the call.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaCharge {
    pub limit: String,
    /// Budget units charged (fixed cost or response tokens); absent for a limit with no
    /// budget, where the call counted as one request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
}

/// An admin write: what was asked and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Admin {
    /// `approve tool "x" of upstream "crm"`, `refused POST /admin/... from 1.2.3.4:5`.
    pub action: String,
    /// `done`, or why it failed / was refused.
    pub result: String,
}

/// One audit record, as serialized (field order is the line's order). `prev` and `hash`
/// are appended by the writer.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// `mcp` or `admin`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<Tool>,
    /// A bounded label (`tools/call`, `initialize`, ..., `other`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// SHA-256 (hex) of the canonical arguments the upstream runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments_sha256: Option<String>,
    pub decision: Decision,
    /// The decision step (`Step::as_label`) or stage that refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_by: Option<&'static str>,
    /// The policy rule, quota limit or approval id behind a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The message the client was given, when the gateway answered with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ok`, `rejected`, `upstream_error`, `client_closed`, `internal_error`.
    pub outcome: &'static str,
    /// HTTP status the client received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// JSON-RPC error code of an error the gateway wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i32>,
    /// JSON-RPC error code of the upstream's error response to a `tools/call`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_error_code: Option<i64>,
    /// The tool result's `isError` (a `tools/call` the upstream answered with a result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// The quota limits that counted the call and what they charged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quota: Vec<QuotaCharge>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Time in the gateway before the request went upstream (or until it was answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_ms: Option<f64>,
    /// Time from sending upstream to the upstream's response headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<Admin>,
}

/// A finished request's facts, owned: what `logging` hands the writer thread, which builds
/// the [`Record`] from them ([`Facts::record`]). The costly part of a record (canonical
/// arguments, redaction, digests, reading the call's outcome from its response, about 20,000
/// instructions for a small call) so runs off the request's worker, which only copies a few
/// names and takes references (`Bytes`, `Arc`) to what it already holds.
#[derive(Debug)]
pub struct Facts {
    pub time: SystemTime,
    pub request_id: String,
    pub trace_id: Option<crate::trace::TraceId>,
    pub principal: Option<Arc<crate::auth::Principal>>,
    pub virtual_server: Option<String>,
    pub upstream: Option<String>,
    /// The name the client called, and the upstream's name for it when resolved.
    pub tool: Option<(String, Option<String>)>,
    pub method: McpMethod,
    /// The body the upstream runs (or the client's, when refused first).
    pub body: Bytes,
    pub refused_by: Option<Step>,
    pub reject: Option<Reject>,
    pub forwarded: bool,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub upstream_status: Option<u16>,
    /// A `tools/call` response as it passed (all of it, at most 64 KiB), and whether it is
    /// an event stream.
    pub response: Option<(Vec<u8>, bool)>,
    pub quota: Vec<crate::quota::Charge>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub gateway_time: Option<Duration>,
    pub upstream_time: Option<Duration>,
    /// The redaction rules the request was served under.
    pub redaction: Arc<Redaction>,
}

impl Facts {
    /// The record of these facts.
    pub fn record(&self) -> Record {
        let call_outcome = self
            .response
            .as_ref()
            .and_then(|(body, sse)| crate::mcp::outcome::read(body, *sse));
        let trace_id = self.trace_id.map(|t| t.to_string());
        let request = Request {
            time: self.time,
            request_id: Some(&self.request_id),
            trace_id: trace_id.as_deref(),
            principal: self.principal.as_deref(),
            virtual_server: self.virtual_server.as_deref(),
            upstream: self.upstream.as_deref(),
            tool: self
                .tool
                .as_ref()
                .map(|(exposed, upstream)| (exposed.as_str(), upstream.as_deref())),
            method: self.method,
            body: &self.body,
            refused_by: self.refused_by,
            reject: self.reject.as_ref(),
            forwarded: self.forwarded,
            outcome: self.outcome,
            status: self.status,
            upstream_status: self.upstream_status,
            call_outcome,
            quota: &self.quota,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            gateway_time: self.gateway_time,
            upstream_time: self.upstream_time,
        };
        Record::request(&request, &self.redaction)
    }
}

/// A finished request in borrowed, plain values: what [`Record::request`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// When the request ended (`logging` ran).
    pub time: SystemTime,
    /// The request's id when one exists; else one is generated ([`request_id`]).
    pub request_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    pub principal: Option<&'a crate::auth::Principal>,
    pub virtual_server: Option<&'a str>,
    pub upstream: Option<&'a str>,
    /// The name the client called, and the upstream's name for it when resolved.
    pub tool: Option<(&'a str, Option<&'a str>)>,
    pub method: McpMethod,
    /// The body the upstream runs (or the client's, when refused first); read for
    /// `tools/call` arguments only.
    pub body: &'a [u8],
    pub refused_by: Option<Step>,
    pub reject: Option<&'a Reject>,
    /// The request went out to the upstream.
    pub forwarded: bool,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub upstream_status: Option<u16>,
    /// How the upstream answered a `tools/call` (read from its response body).
    pub call_outcome: Option<crate::mcp::outcome::CallOutcome>,
    /// What the quota limits charged the call.
    pub quota: &'a [crate::quota::Charge],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub gateway_time: Option<Duration>,
    pub upstream_time: Option<Duration>,
}

/// A process-unique request id: 64 random bits drawn at start and a counter (hex, 32
/// characters). Unique across replicas with overwhelming probability, and costs one atomic
/// increment.
pub fn request_id() -> String {
    static PREFIX: Lazy<u64> = Lazy::new(|| {
        use ring::rand::SecureRandom as _;
        let mut b = [0u8; 8];
        // No OS randomness (never seen): the clock still separates restarts.
        if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            b = t.to_be_bytes();
        }
        u64::from_be_bytes(b)
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{n:016x}", *PREFIX)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ms(d: Duration) -> f64 {
    // Microsecond resolution is plenty and keeps the line short.
    (d.as_micros() as f64) / 1000.0
}

impl Record {
    /// The record of a finished MCP request, arguments redacted by `redaction`.
    pub fn request(r: &Request<'_>, redaction: &Redaction) -> Record {
        let (decision, refused_by) = match (r.refused_by, r.reject) {
            (Some(step), _) => (Decision::Refused, Some(step.as_label())),
            (None, Some(reject)) if !r.forwarded => (Decision::Refused, Some(stage(reject))),
            _ => (Decision::Allowed, None),
        };
        let (arguments, arguments_sha256) = if r.method == McpMethod::ToolsCall {
            arguments(r, redaction)
        } else {
            (None, None)
        };
        Record {
            time: rfc3339(r.time),
            request_id: r.request_id.map_or_else(request_id, str::to_string),
            trace_id: r.trace_id.map(str::to_string),
            kind: "mcp",
            principal: r.principal.map(|p| Principal {
                issuer: p.issuer.clone(),
                subject: p.subject.clone(),
                groups: p.groups.clone(),
            }),
            agent: r.principal.and_then(|p| p.agent.clone()),
            virtual_server: r.virtual_server.map(str::to_string),
            upstream: r.upstream.map(str::to_string),
            tool: r.tool.map(|(exposed, upstream)| Tool {
                exposed: exposed.to_string(),
                upstream: upstream.map(str::to_string),
            }),
            method: Some(r.method.as_label()),
            arguments,
            arguments_sha256,
            decision,
            refused_by,
            rule: r.reject.and_then(rule),
            reason: r.reject.map(|e| crate::error::clip(&e.to_string())),
            outcome: r.outcome.as_label(),
            status: r.status,
            upstream_status: r.upstream_status,
            error_code: r.reject.map(Reject::jsonrpc_code),
            upstream_error_code: r.call_outcome.and_then(|o| o.error_code),
            is_error: r.call_outcome.and_then(|o| o.is_error),
            quota: r
                .quota
                .iter()
                .map(|c| QuotaCharge {
                    limit: c.limit.clone(),
                    units: c.units,
                })
                .collect(),
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            gateway_ms: r.gateway_time.map(ms),
            upstream_ms: r.upstream_time.map(ms),
            admin: None,
        }
    }

    /// The record of an admin write. `who`: the admin actor (`None` when refused before
    /// anyone was authenticated).
    pub fn admin(
        who: Option<Principal>,
        action: String,
        result: Result<(), &str>,
        status: Option<u16>,
    ) -> Record {
        let refused = result.is_err();
        Record {
            time: rfc3339(SystemTime::now()),
            request_id: request_id(),
            trace_id: None,
            kind: "admin",
            principal: who,
            agent: None,
            virtual_server: None,
            upstream: None,
            tool: None,
            method: None,
            arguments: None,
            arguments_sha256: None,
            decision: if refused {
                Decision::Refused
            } else {
                Decision::Allowed
            },
            refused_by: refused.then_some("admin"),
            rule: None,
            reason: None,
            outcome: if refused { "rejected" } else { "ok" },
            status,
            upstream_status: None,
            error_code: None,
            upstream_error_code: None,
            is_error: None,
            quota: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            gateway_ms: None,
            upstream_ms: None,
            admin: Some(Admin {
                action,
                result: match result {
                    Ok(()) => "done".into(),
                    Err(why) => crate::error::clip(why),
                },
            }),
        }
    }
}

/// The redacted arguments and the digest of the exact ones.
fn arguments(r: &Request<'_>, redaction: &Redaction) -> (Option<Value>, Option<String>) {
    let Ok(canonical) = crate::approval::canonical_arguments(r.body, MAX_DEPTH) else {
        // A body that failed the parse was refused; it has no arguments to show.
        return (None, None);
    };
    if canonical.is_empty() {
        return (None, None);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &canonical);
    let digest = crate::digest::hex(digest.as_ref());
    if canonical.len() > MAX_ARGUMENT_BYTES {
        let note =
            serde_json::json!({ "$omitted": "larger than 64 KiB", "bytes": canonical.len() });
        return (Some(note), Some(digest));
    }
    let shown = match serde_json::from_slice::<Value>(&canonical) {
        Ok(v) => {
            let (upstream, tool) = match (r.upstream, r.tool) {
                (Some(u), Some((exposed, upstream_tool))) => (u, upstream_tool.unwrap_or(exposed)),
                // No upstream resolved (an unknown tool): no rule can name it, only the
                // default applies.
                (_, Some((exposed, _))) => ("", exposed),
                _ => ("", ""),
            };
            Some(super::redact(redaction, upstream, tool, v))
        }
        Err(_) => None,
    };
    (shown, Some(digest))
}

/// The stage that refused a request outside the decision steps.
fn stage(reject: &Reject) -> &'static str {
    match reject {
        Reject::Unauthenticated { .. } | Reject::InsufficientScope { .. } => "authentication",
        Reject::ServerNotAllowed { .. } => "access",
        Reject::UnknownTool { .. } | Reject::UnknownItem { .. } => "visibility",
        Reject::SessionRequired
        | Reject::SessionNotFound
        | Reject::SessionRevocationsFull { .. } => "session",
        Reject::HostNotAllowed { .. } | Reject::OriginNotAllowed { .. } => "guard",
        _ => "request",
    }
}

/// The configured rule, limit or approval behind a refusal.
fn rule(reject: &Reject) -> Option<String> {
    match reject {
        Reject::PolicyViolation { rule, .. } => Some(rule.clone()),
        Reject::QuotaExceeded { limit, .. } | Reject::QuotaStoreUnavailable { limit } => {
            Some(limit.clone())
        }
        Reject::ApprovalRequired { id, .. } | Reject::ApprovalDenied { id } => Some(id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(args: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"lookup","arguments":{args}}}}}"#
        )
    }

    fn request(body: &[u8]) -> Request<'_> {
        Request {
            time: SystemTime::now(),
            request_id: None,
            trace_id: None,
            principal: None,
            virtual_server: None,
            upstream: Some("crm"),
            tool: Some(("lookup", None)),
            method: McpMethod::ToolsCall,
            body,
            refused_by: None,
            reject: None,
            forwarded: true,
            outcome: Outcome::Ok,
            status: Some(200),
            upstream_status: Some(200),
            call_outcome: None,
            quota: &[],
            bytes_in: body.len() as u64,
            bytes_out: 10,
            gateway_time: Some(Duration::from_micros(1500)),
            upstream_time: None,
        }
    }

    #[test]
    fn the_digest_covers_the_exact_arguments_and_ids_are_unique() {
        let a = call(r#"{"b":1,"a":"x"}"#);
        let b = call(r#"{ "a" : "x", "b" : 1 }"#);
        let c = call(r#"{"a":"x","b":1.0}"#);
        let d = Redaction::default();
        let (ra, rb, rc) = (
            Record::request(&request(a.as_bytes()), &d),
            Record::request(&request(b.as_bytes()), &d),
            Record::request(&request(c.as_bytes()), &d),
        );
        assert_eq!(ra.arguments_sha256, rb.arguments_sha256);
        assert_ne!(ra.arguments_sha256, rc.arguments_sha256);
        assert_ne!(ra.request_id, rb.request_id);
        assert_eq!(ra.gateway_ms, Some(1.5));
        assert!(
            ra.time.ends_with('Z') && ra.time.contains('.'),
            "{}",
            ra.time
        );
    }

    #[test]
    fn a_refusal_names_its_step_and_rule() {
        let body = call("{}");
        let reject = Reject::PolicyViolation {
            rule: "no-prod".into(),
            message: "x".into(),
        };
        let mut r = request(body.as_bytes());
        r.refused_by = Some(Step::Policy);
        r.reject = Some(&reject);
        r.forwarded = false;
        let rec = Record::request(&r, &Redaction::default());
        assert_eq!(rec.decision, Decision::Refused);
        assert_eq!(rec.refused_by, Some("policy"));
        assert_eq!(rec.rule.as_deref(), Some("no-prod"));
        assert_eq!(rec.error_code, Some(-32602));
        // An upstream failure after forwarding is not a refusal.
        let failed = Reject::Upstream {
            upstream: "crm".into(),
            cause: "reset".into(),
            timeout: false,
        };
        let mut r = request(body.as_bytes());
        r.reject = Some(&failed);
        let rec = Record::request(&r, &Redaction::default());
        assert_eq!(rec.decision, Decision::Allowed);
    }

    #[test]
    fn large_arguments_are_digested_but_not_shown() {
        let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(MAX_ARGUMENT_BYTES));
        let body = call(&big);
        let rec = Record::request(&request(body.as_bytes()), &Redaction::default());
        assert!(rec.arguments_sha256.is_some());
        let shown = rec.arguments.unwrap_or_default().to_string();
        assert!(shown.len() < 200 && shown.contains("$omitted"), "{shown}");
    }
}
