//! Validation of the `audit` section: the trail's sinks (file and/or stdout), rotation, the
//! queue between requests and the writer, and argument redaction by tool
//! (`crate::audit` applies it). Sink settings are fixed at startup (the writer owns the
//! file); redaction is read per request, so a reload changes it.

use serde::Deserialize;

use super::raw::{RawAudit, RawRedactRule};
use super::ConfigError;
use crate::policy::arguments::ArgPath;
use crate::policy::pattern::ToolPattern;

/// Smallest `max_file_bytes`: a file must hold a few records before it rotates.
const MIN_FILE_BYTES: u64 = 4096;
/// Most rotated files kept.
const MAX_FILES: u32 = 1000;
/// Largest queue (each slot is one boxed record, a few hundred bytes when full).
const MAX_QUEUE: usize = 1_000_000;

/// When the audit queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// The request waits for room: no record is ever lost, at the cost of latency when the
    /// writer falls behind.
    #[default]
    Block,
    /// The record is dropped and counted (`mcp_gateway_audit_dropped_total`).
    Drop,
}

/// What a redaction rule does with an argument. Ordered by strength: where several rules
/// cover one argument, the strongest wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactAction {
    /// Written as the client sent it.
    #[default]
    Keep,
    /// Replaced by `"sha256:<hex>"` of its canonical JSON (equal values stay comparable).
    Hash,
    /// Left out of the record.
    Drop,
}

/// Validated `audit` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    pub path: Option<std::path::PathBuf>,
    pub stdout: bool,
    pub max_file_bytes: u64,
    pub max_files: u32,
    pub queue: usize,
    pub on_full: OnFull,
    /// Shared with every queued request's facts: the writer redacts with the rules the
    /// request was served under.
    pub redact: std::sync::Arc<Redaction>,
}

impl AuditConfig {
    /// Whether `other` writes to the same sinks the same way (everything but redaction):
    /// the writer is started once, so a reload may change only the redaction.
    pub fn same_sink(&self, other: &AuditConfig) -> bool {
        (
            &self.path,
            self.stdout,
            self.max_file_bytes,
            self.max_files,
            self.queue,
            self.on_full,
        ) == (
            &other.path,
            other.stdout,
            other.max_file_bytes,
            other.max_files,
            other.queue,
            other.on_full,
        )
    }
}

/// `audit.redact`, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redaction {
    pub default: RedactAction,
    pub rules: Vec<RedactRule>,
}

/// One redaction rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RedactRule {
    pub tools: Vec<ToolPattern>,
    pub arguments: Vec<(ArgPath, RedactAction)>,
    pub default: Option<RedactAction>,
}

pub(super) fn validate(a: RawAudit) -> Result<AuditConfig, ConfigError> {
    if a.path.is_none() && !a.stdout {
        return Err(ConfigError::new(
            "audit",
            "writes nowhere: set path (a JSON Lines file) and/or stdout: true",
        ));
    }
    if let Some(p) = &a.path {
        if p.as_os_str().is_empty() || p.file_name().is_none() {
            return Err(ConfigError::new(
                "audit.path",
                format!("{:?} is not a file path", p.display().to_string()),
            ));
        }
    }
    if a.max_file_bytes < MIN_FILE_BYTES {
        return Err(ConfigError::new(
            "audit.max_file_bytes",
            format!(
                "must be at least {MIN_FILE_BYTES} (got {})",
                a.max_file_bytes
            ),
        ));
    }
    if a.max_files == 0 || a.max_files > MAX_FILES {
        return Err(ConfigError::new(
            "audit.max_files",
            format!("must be 1 to {MAX_FILES} (got {})", a.max_files),
        ));
    }
    if a.queue == 0 || a.queue > MAX_QUEUE {
        return Err(ConfigError::new(
            "audit.queue",
            format!("must be 1 to {MAX_QUEUE} (got {})", a.queue),
        ));
    }
    let rules = a
        .redact
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| rule(i, r))
        .collect::<Result<_, _>>()?;
    Ok(AuditConfig {
        path: a.path,
        stdout: a.stdout,
        max_file_bytes: a.max_file_bytes,
        max_files: a.max_files,
        queue: a.queue,
        on_full: a.on_full,
        redact: std::sync::Arc::new(Redaction {
            default: a.redact.default,
            rules,
        }),
    })
}

fn rule(i: usize, r: RawRedactRule) -> Result<RedactRule, ConfigError> {
    let at = format!("audit.redact.rules[{i}]");
    if r.tools.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.tools"),
            "is empty: name the tools this rule covers (upstream.tool patterns, e.g. crm.*)",
        ));
    }
    let tools = r
        .tools
        .iter()
        .enumerate()
        .map(|(j, t)| {
            ToolPattern::parse(t).map_err(|e| ConfigError::new(format!("{at}.tools[{j}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if r.arguments.is_empty() && r.default.is_none() {
        return Err(ConfigError::new(
            at,
            "says nothing: give arguments (path: keep|hash|drop) and/or a default",
        ));
    }
    let arguments = r
        .arguments
        .into_iter()
        .map(|(path, action)| {
            ArgPath::parse(&path)
                .map(|p| (p, action))
                .map_err(|e| ConfigError::new(format!("{at}.arguments.{path}"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RedactRule {
        tools,
        arguments,
        default: r.default,
    })
}
