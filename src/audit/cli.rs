//! `mcp-gateway audit verify FILE...` and `mcp-gateway audit query FILE... [filters]`:
//! offline tools over the JSON Lines files; they need no configuration and no running
//! gateway.
//!
//! `verify` exits 1 naming the first broken record (`file:line: why`). `query` prints a
//! table, or with `--json` the matching lines as they are (hash fields included, so the
//! output can itself be verified when nothing was filtered out).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde_json::Value;

/// `mcp-gateway audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record's hash and the chain across FILEs, given oldest first
    /// (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`). Exits 1 naming the first broken record.
    Verify {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the records of FILEs that match every filter given.
    Query(QueryArgs),
}

/// `audit query` filters.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The principal's subject, exactly.
    #[arg(long)]
    pub subject: Option<String>,
    /// A tool glob (`*` matches any run), against the name the client called
    /// (`crm__*`) and the upstream's `upstream.tool` (`crm.*`).
    #[arg(long, value_name = "PATTERN")]
    pub tool: Option<String>,
    /// Only records from this long ago on (`30m`, `1h`, `2d`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,
    /// Only `allowed` or `refused` records.
    #[arg(long, value_parser = ["allowed", "refused"])]
    pub decision: Option<String>,
    /// Print matching records as JSON Lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run the command; errors are one sentence for `error: ...`.
pub fn run(cmd: &AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { files } => match super::verify(files) {
            Ok(v) => {
                let from = if v.starts_at == super::GENESIS {
                    "from the first record ever written".to_string()
                } else {
                    format!("continuing from {}", v.starts_at)
                };
                println!(
                    "ok: {} records in {} file(s), chain intact {from}; last hash {}",
                    v.records,
                    files.len(),
                    v.last
                );
                Ok(())
            }
            Err(b) => anyhow::bail!("audit chain broken at {b}"),
        },
        AuditCommand::Query(q) => query(q),
    }
}

fn query(q: &QueryArgs) -> anyhow::Result<()> {
    let since = q.since.map(|d| {
        SystemTime::now()
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    });
    let out = std::io::stdout();
    let mut out = out.lock();
    if !q.json {
        writeln!(
            out,
            "{:<24} {:<16} {:<12} {:<28} {:<8} {:<24} {:>6} {:>9}",
            "TIME", "SUBJECT", "METHOD", "TOOL", "DECISION", "REFUSED BY / RULE", "STATUS", "MS"
        )?;
    }
    for file in &q.files {
        let text = std::fs::read(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            // A line that is not a record (torn) is skipped here; `verify` reports it.
            let Ok(r) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            if !matches(&r, q, since) {
                continue;
            }
            if q.json {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            } else {
                writeln!(out, "{}", row(&r))?;
            }
        }
    }
    Ok(())
}

fn matches(r: &Value, q: &QueryArgs, since: Option<SystemTime>) -> bool {
    if let Some(s) = &q.subject {
        if r["principal"]["subject"].as_str() != Some(s.as_str()) {
            return false;
        }
    }
    if let Some(p) = &q.tool {
        let glob = |name: &str| crate::policy::pattern::glob(p.as_bytes(), name.as_bytes());
        let exposed = r["tool"]["exposed"].as_str().is_some_and(glob);
        let upstream = match (r["upstream"].as_str(), r["tool"]["upstream"].as_str()) {
            (Some(u), Some(t)) => glob(&format!("{u}.{t}")),
            _ => false,
        };
        if !exposed && !upstream {
            return false;
        }
    }
    if let Some(d) = &q.decision {
        if r["decision"].as_str() != Some(d.as_str()) {
            return false;
        }
    }
    if let Some(since) = since {
        let at = r["time"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok());
        if at.is_none_or(|t| t < since) {
            return false;
        }
    }
    true
}

fn row(r: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let why = match (r["refused_by"].as_str(), r["rule"].as_str()) {
        (Some(step), Some(rule)) => format!("{step} {rule}"),
        (Some(step), None) => step.to_string(),
        _ => "-".into(),
    };
    let method = match r["kind"].as_str() {
        Some("admin") => "admin".to_string(),
        _ => s(&r["method"]),
    };
    let tool = match r["admin"]["action"].as_str() {
        Some(a) => a.to_string(),
        None => s(&r["tool"]["exposed"]),
    };
    format!(
        "{:<24} {:<16} {:<12} {:<28} {:<8} {:<24} {:>6} {:>9}",
        s(&r["time"]),
        s(&r["principal"]["subject"]),
        method,
        tool,
        s(&r["decision"]),
        why,
        r["status"].as_u64().map_or("-".into(), |n| n.to_string()),
        r["gateway_ms"]
            .as_f64()
            .map_or("-".into(), |n| format!("{n:.3}")),
    )
}
