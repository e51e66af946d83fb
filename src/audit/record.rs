//! The record: one line of the trail, a JSON object written field by field ([`Line`]) in
//! the schema's order (docs/audit.md). A request's line is written on the writer thread from
//! its [`Facts`] ([`Facts::write`]); an admin write's from an [`AdminRecord`]. The writer
//! appends `prev` and `hash` (see `chain`).
//!
//! Why not a `#[derive(Serialize)]` struct: the writer thread's work per record is the
//! audit trail's cost, and a struct meant copying every name into it to serialize it once,
//! escaping its ~30 constant keys on every record and parsing the arguments back into a
//! value to embed them. Here constant keys and values known to need no escaping (labels,
//! hex, times) are copied as bytes, only strings from configuration or clients are escaped,
//! and the arguments are copied as their canonical text.
//!
//! Optional fields are left out when unknown, so a line carries what happened and no more.
//! Arguments: the bytes the upstream runs (`Decision.rewritten` when set), digested exactly
//! (canonical form, numbers as written) and shown redacted; above [`MAX_ARGUMENT_BYTES`] the
//! shown arguments are replaced by a note with their size (the digest still covers them).

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use once_cell::sync::Lazy;

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

/// Who made an admin write.
#[derive(Debug, Clone)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
}

/// An admin write: who, what was asked and how it ended.
#[derive(Debug, Clone)]
pub struct AdminRecord {
    time: SystemTime,
    who: Option<Principal>,
    /// `approve tool "x" of upstream "crm"`, `refused POST /admin/... from 1.2.3.4:5`.
    action: String,
    /// `Ok`: done; `Err`: why it failed or was refused.
    result: Result<(), String>,
    status: Option<u16>,
}

impl AdminRecord {
    /// The record of an admin write. `who`: the admin actor (`None` when refused before
    /// anyone was authenticated).
    pub fn new(
        who: Option<Principal>,
        action: String,
        result: Result<(), &str>,
        status: Option<u16>,
    ) -> AdminRecord {
        AdminRecord {
            time: SystemTime::now(),
            who,
            action,
            result: result.map_err(crate::error::clip),
            status,
        }
    }

    /// Append the record's JSON object to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let refused = self.result.is_err();
        let mut line = Line::open(out);
        line.time("time", self.time);
        line.plain("request_id", &request_id());
        line.plain("kind", "admin");
        if let Some(who) = &self.who {
            let mut p = line.object("principal");
            p.str("issuer", &who.issuer);
            p.str("subject", &who.subject);
            p.close();
        }
        line.plain("decision", if refused { "refused" } else { "allowed" });
        if refused {
            line.plain("refused_by", "admin");
        }
        line.plain("outcome", if refused { "rejected" } else { "ok" });
        line.opt_num("status", self.status);
        line.num("bytes_in", 0u64);
        line.num("bytes_out", 0u64);
        let mut a = line.object("admin");
        a.str("action", &self.action);
        match &self.result {
            Ok(()) => a.plain("result", "done"),
            Err(why) => a.str("result", why),
        }
        a.close();
        line.close();
    }
}

/// A finished request's facts, owned: what `logging` hands the writer thread, which writes
/// the record from them ([`Facts::write`]). The costly part of a record (canonical
/// arguments, redaction, digests, reading the call's outcome from its response, escaping)
/// so runs off the request's worker, which only copies a few names and takes references
/// (`Bytes`, `Arc`) to what it already holds.
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
    /// Where `params.arguments` of a `tools/call` is in `body` (its parse found it).
    pub arguments: Option<std::ops::Range<usize>>,
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
    /// An MRTR round (`proxy::mrtr`): a retry's link to its first round. Boxed: rare.
    pub round: Option<Box<Round>>,
}

/// A round of a 2026-07-28 call that waited for its client's input (MRTR): what the record
/// of a retry says about the call it resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// The `request_id` of the call's first round (the request that answered
    /// `input_required` first) and this round's number (2 for the first retry). `None` for
    /// a 2026-07-28 upstream's own rounds (stateless): the gateway keeps no state between
    /// them, so it records the answers' digest only.
    pub first: Option<String>,
    pub number: Option<u32>,
    /// SHA-256 of the retry's canonical `inputResponses` (the form `arguments_sha256`
    /// digests), `None` when it carried none: what the client answered, recorded without
    /// the answers themselves.
    pub input_responses: Option<[u8; 32]>,
}

impl Facts {
    /// Append the record's JSON object to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let (refused, refused_by) = match (self.refused_by, &self.reject) {
            (Some(step), _) => (true, Some(step.as_label())),
            (None, Some(reject)) if !self.forwarded => (true, Some(stage(reject))),
            _ => (false, None),
        };
        let call_outcome = self
            .response
            .as_ref()
            .and_then(|(body, sse)| crate::mcp::outcome::read(body, *sse));
        let principal = self.principal.as_deref();
        let mut line = Line::open(out);
        line.time("time", self.time);
        line.plain("request_id", &self.request_id);
        if let Some(t) = self.trace_id {
            line.key("trace_id");
            line.out.push(b'"');
            crate::digest::push_hex(&t.0, line.out);
            line.out.push(b'"');
        }
        line.plain("kind", "mcp");
        if let Some(p) = principal {
            let mut o = line.object("principal");
            o.str("issuer", &p.issuer);
            o.str("subject", &p.subject);
            if !p.groups.is_empty() {
                o.key("groups");
                o.out.push(b'[');
                for (i, g) in p.groups.iter().enumerate() {
                    if i > 0 {
                        o.out.push(b',');
                    }
                    escape(g, o.out);
                }
                o.out.push(b']');
            }
            o.close();
        }
        line.opt_str("agent", principal.and_then(|p| p.agent.as_deref()));
        line.opt_str("virtual_server", self.virtual_server.as_deref());
        line.opt_str("upstream", self.upstream.as_deref());
        if let Some((exposed, upstream)) = &self.tool {
            let mut t = line.object("tool");
            t.str("exposed", exposed);
            t.opt_str("upstream", upstream.as_deref());
            t.close();
        }
        line.plain("method", self.method.as_label());
        if self.method == McpMethod::ToolsCall {
            self.arguments(&mut line);
        }
        if let Some(r) = &self.round {
            if let Some(first) = &r.first {
                line.plain("resumes", first);
            }
            if let Some(n) = r.number {
                line.num("round", n);
            }
            if let Some(d) = &r.input_responses {
                line.key("input_responses_sha256");
                line.out.push(b'"');
                crate::digest::push_hex(d, line.out);
                line.out.push(b'"');
            }
        }
        line.plain("decision", if refused { "refused" } else { "allowed" });
        if let Some(by) = refused_by {
            line.plain("refused_by", by);
        }
        line.opt_str("rule", self.reject.as_ref().and_then(rule));
        if let Some(reject) = &self.reject {
            line.str("reason", &crate::error::clip(&reject.to_string()));
        }
        line.plain("outcome", self.outcome.as_label());
        line.opt_num("status", self.status);
        line.opt_num("upstream_status", self.upstream_status);
        line.opt_num("error_code", self.reject.as_ref().map(Reject::jsonrpc_code));
        line.opt_num(
            "upstream_error_code",
            call_outcome.and_then(|o| o.error_code),
        );
        if let Some(is_error) = call_outcome.and_then(|o| o.is_error) {
            line.key("is_error");
            line.out
                .extend_from_slice(if is_error { b"true" } else { b"false" });
        }
        if !self.quota.is_empty() {
            line.key("quota");
            line.out.push(b'[');
            for (i, c) in self.quota.iter().enumerate() {
                if i > 0 {
                    line.out.push(b',');
                }
                let mut q = Line::open(line.out);
                q.str("limit", &c.limit);
                q.opt_num("units", c.units);
                q.close();
            }
            line.out.push(b']');
        }
        line.num("bytes_in", self.bytes_in);
        line.num("bytes_out", self.bytes_out);
        line.opt_ms("gateway_ms", self.gateway_time);
        line.opt_ms("upstream_ms", self.upstream_time);
        line.close();
    }

    /// `arguments` (redacted) and `arguments_sha256` (of the exact ones).
    fn arguments(&self, line: &mut Line<'_>) {
        // A body that failed the parse was refused: it has no arguments to show.
        let Some(raw) = self.arguments.clone().and_then(|r| self.body.get(r)) else {
            return;
        };
        let Ok(canonical) = crate::approval::canonical_value(raw, MAX_DEPTH) else {
            return;
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, &canonical);
        if canonical.len() > MAX_ARGUMENT_BYTES {
            line.key("arguments");
            let _ = write!(
                line.out,
                r#"{{"$omitted":"larger than 64 KiB","bytes":{}}}"#,
                canonical.len()
            );
        } else if let Ok(canonical) = std::str::from_utf8(&canonical) {
            // (Canonical bytes are serde_json's output over a `str`: always UTF-8.)
            let (upstream, tool) = match (self.upstream.as_deref(), &self.tool) {
                (Some(u), Some((exposed, upstream_tool))) => {
                    (u, upstream_tool.as_deref().unwrap_or(exposed))
                }
                // No upstream resolved (an unknown tool): no rule can name it, only the
                // default applies.
                (_, Some((exposed, _))) => ("", exposed.as_str()),
                _ => ("", ""),
            };
            if let Ok(shown) = super::redact(&self.redaction, upstream, tool, canonical) {
                line.key("arguments");
                line.out.extend_from_slice(shown.as_bytes());
            }
        }
        line.key("arguments_sha256");
        line.out.push(b'"');
        crate::digest::push_hex(digest.as_ref(), line.out);
        line.out.push(b'"');
    }
}

/// One JSON object being written into a buffer, member by member.
pub(super) struct Line<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Line<'o> {
    fn open(out: &'o mut Vec<u8>) -> Line<'o> {
        out.push(b'{');
        Line { out, empty: true }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    /// `"key":` (after a comma unless first). Keys are this file's constants: plain ASCII.
    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A nested object under `key`; `close` it before writing on.
    fn object(&mut self, key: &str) -> Line<'_> {
        self.key(key);
        Line::open(self.out)
    }

    /// A string from configuration, a client or an upstream: escaped.
    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        escape(value, self.out);
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// A string the gateway made that needs no escaping (a label, hex, an id).
    fn plain(&mut self, key: &str, value: &str) {
        debug_assert!(!value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
    }

    fn num(&mut self, key: &str, value: impl serde::Serialize) {
        self.key(key);
        // Numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }

    fn opt_num(&mut self, key: &str, value: Option<impl serde::Serialize>) {
        if let Some(v) = value {
            self.num(key, v);
        }
    }

    /// Milliseconds with microsecond resolution: plenty, and it keeps the line short.
    fn opt_ms(&mut self, key: &str, value: Option<Duration>) {
        if let Some(d) = value {
            self.num(key, (d.as_micros() as f64) / 1000.0);
        }
    }

    /// RFC 3339 UTC with milliseconds.
    fn time(&mut self, key: &str, t: SystemTime) {
        self.key(key);
        let _ = write!(self.out, "\"{}\"", humantime::format_rfc3339_millis(t));
    }
}

/// `s` as a JSON string.
fn escape(s: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
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
fn rule(reject: &Reject) -> Option<&str> {
    match reject {
        Reject::PolicyViolation { rule, .. } => Some(rule),
        Reject::QuotaExceeded { limit, .. } | Reject::QuotaStoreUnavailable { limit } => {
            Some(limit)
        }
        Reject::ApprovalRequired { id, .. } | Reject::ApprovalDenied { id } => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn call(args: &str) -> Vec<u8> {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"lookup","arguments":{args}}}}}"#
        )
        .into_bytes()
    }

    fn facts(body: Vec<u8>) -> Facts {
        let arguments = crate::mcp::jsonrpc::parse(&body, 64)
            .ok()
            .and_then(|c| c.arguments);
        Facts {
            arguments,
            time: SystemTime::now(),
            request_id: request_id(),
            trace_id: None,
            principal: None,
            virtual_server: None,
            upstream: Some("crm".into()),
            tool: Some(("lookup".into(), None)),
            method: McpMethod::ToolsCall,
            bytes_in: body.len() as u64,
            body: Bytes::from(body),
            refused_by: None,
            reject: None,
            forwarded: true,
            outcome: Outcome::Ok,
            status: Some(200),
            upstream_status: Some(200),
            response: None,
            quota: Vec::new(),
            bytes_out: 10,
            gateway_time: Some(Duration::from_micros(1500)),
            upstream_time: None,
            redaction: Arc::default(),
            round: None,
        }
    }

    /// The line `f` writes, as text and parsed.
    fn line(f: &Facts) -> (String, Value) {
        let mut out = Vec::new();
        f.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (text, value)
    }

    #[test]
    fn a_resumed_round_names_its_first_round_and_digests_the_answers() {
        let mut f = facts(call(r#"{"q":"who?"}"#));
        let (_, plain) = line(&f);
        assert!(plain.get("resumes").is_none(), "{plain}");
        f.round = Some(Box::new(Round {
            first: Some("00000000000000010000000000000002".into()),
            number: Some(2),
            input_responses: Some([0xab; 32]),
        }));
        let (text, v) = line(&f);
        assert_eq!(v["resumes"], "00000000000000010000000000000002", "{v}");
        assert_eq!(v["round"], 2, "{v}");
        assert_eq!(v["input_responses_sha256"], "ab".repeat(32), "{v}");
        // After the arguments, before the decision (docs/audit.md's order).
        let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
        assert!(at("arguments_sha256") < at("resumes") && at("round") < at("decision"));
    }

    #[test]
    fn the_digest_covers_the_exact_arguments_and_ids_are_unique() {
        let (_, a) = line(&facts(call(r#"{"b":1,"a":"x"}"#)));
        let (_, b) = line(&facts(call(r#"{ "a" : "x", "b" : 1 }"#)));
        let (text_c, c) = line(&facts(call(r#"{"a":"x","b":1.0}"#)));
        assert_eq!(a["arguments_sha256"], b["arguments_sha256"]);
        assert_ne!(a["arguments_sha256"], c["arguments_sha256"]);
        assert_eq!(a["arguments_sha256"].as_str().map(str::len), Some(64));
        assert_ne!(a["request_id"], b["request_id"]);
        assert_eq!(a["gateway_ms"], 1.5);
        let time = a["time"].as_str().unwrap_or_default();
        assert!(time.ends_with('Z') && time.contains('.'), "{time}");
        // Shown canonical, numbers as written.
        assert_eq!(a["arguments"], serde_json::json!({"a": "x", "b": 1}));
        assert!(
            text_c.contains(r#""arguments":{"a":"x","b":1.0}"#),
            "{text_c}"
        );
        // Fields in the schema's order, unknown ones left out.
        assert!(text_c.starts_with(r#"{"time":""#), "{text_c}");
        assert!(!text_c.contains("principal") && !text_c.contains("trace_id"));
    }

    #[test]
    fn a_refusal_names_its_step_and_rule() {
        let mut f = facts(call("{}"));
        f.refused_by = Some(Step::Policy);
        f.reject = Some(Reject::PolicyViolation {
            rule: "no-prod".into(),
            message: "x \"quoted\"".into(),
        });
        f.forwarded = false;
        let (_, rec) = line(&f);
        assert_eq!(rec["decision"], "refused");
        assert_eq!(rec["refused_by"], "policy");
        assert_eq!(rec["rule"], "no-prod");
        assert_eq!(rec["error_code"], -32602);
        assert!(rec["reason"]
            .as_str()
            .is_some_and(|r| r.contains("\"quoted\"")));
        // An upstream failure after forwarding is not a refusal.
        let mut f = facts(call("{}"));
        f.reject = Some(Reject::Upstream {
            upstream: "crm".into(),
            cause: "reset".into(),
            timeout: false,
        });
        assert_eq!(line(&f).1["decision"], "allowed");
    }

    #[test]
    fn large_arguments_are_digested_but_not_shown() {
        let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(MAX_ARGUMENT_BYTES));
        let (text, rec) = line(&facts(call(&big)));
        assert!(rec["arguments_sha256"].is_string());
        assert!(text.len() < 2000, "{}", text.len());
        assert_eq!(rec["arguments"]["$omitted"], "larger than 64 KiB");
    }

    #[test]
    fn the_line_carries_the_principal_outcome_and_charges() {
        let mut f = facts(call(r#"{"a":1}"#));
        f.principal = Some(Arc::new(crate::auth::Principal {
            issuer: "https://idp".into(),
            subject: "al\u{1}ice \"x\"".into(),
            name: None,
            groups: vec!["eng".into(), "o\\n".into()],
            roles: vec![],
            scopes: vec![],
            agent: Some("bot".into()),
            method: crate::auth::AuthMethod::Jwt,
            expires_at: None,
            token: None,
        }));
        f.trace_id = Some(crate::trace::TraceId([0xab; 16]));
        f.tool = Some(("crm__lookup".into(), Some("lookup".into())));
        f.virtual_server = Some("dev".into());
        f.response = Some((
            br#"{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}"#.to_vec(),
            false,
        ));
        f.quota = vec![
            crate::quota::Charge {
                limit: "per-minute".into(),
                units: None,
                metered: false,
            },
            crate::quota::Charge {
                limit: "budget".into(),
                units: Some(3),
                metered: false,
            },
        ];
        let (_, rec) = line(&f);
        assert_eq!(rec["principal"]["subject"], "al\u{1}ice \"x\"");
        assert_eq!(
            rec["principal"]["groups"],
            serde_json::json!(["eng", "o\\n"])
        );
        assert_eq!(rec["agent"], "bot");
        assert_eq!(rec["trace_id"], "ab".repeat(16));
        assert_eq!(rec["virtual_server"], "dev");
        assert_eq!(rec["tool"]["exposed"], "crm__lookup");
        assert_eq!(rec["tool"]["upstream"], "lookup");
        assert_eq!(rec["method"], "tools/call");
        assert_eq!(rec["is_error"], true);
        assert_eq!(
            rec["quota"],
            serde_json::json!([{"limit": "per-minute"}, {"limit": "budget", "units": 3}])
        );
        assert_eq!(rec["arguments"]["a"], 1);
        assert_eq!(rec["status"], 200);
        assert_eq!(rec["bytes_out"], 10);
    }

    #[test]
    fn an_admin_write_says_who_what_and_how_it_ended() {
        let who = Principal {
            issuer: "admin-token".into(),
            subject: "ops".into(),
        };
        let mut out = Vec::new();
        AdminRecord::new(Some(who), "approve \"x\"".into(), Ok(()), None).write(&mut out);
        let rec: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(rec["kind"], "admin");
        assert_eq!(rec["principal"]["subject"], "ops");
        assert_eq!(rec["admin"]["action"], "approve \"x\"");
        assert_eq!(rec["admin"]["result"], "done");
        assert_eq!(rec["decision"], "allowed");
        let mut out = Vec::new();
        AdminRecord::new(None, "POST /x".into(), Err("no token"), Some(401)).write(&mut out);
        let rec: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(rec["refused_by"], "admin");
        assert_eq!(rec["outcome"], "rejected");
        assert_eq!(rec["status"], 401);
        assert_eq!(rec["admin"]["result"], "no token");
        assert!(rec.get("principal").is_none());
    }
}
