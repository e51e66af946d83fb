//! `mcp-gateway approvals list|show ID|approve ID|deny ID`: the approver's command line,
//! a client of the admin API (`/admin/approvals`, docs/approvals.md), so it works against
//! any replica and every decision is authenticated and audited the same way as through
//! HTTP.
//!
//! The admin API's address comes from `--admin URL` or the configuration's `admin.address`
//! (`-c FILE`); the token from a reference (`env:VAR`, default
//! `env:MCP_GATEWAY_ADMIN_TOKEN`, or `file:PATH`), never from the command line itself, where
//! shell history and `ps` would keep it.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

/// How long one admin request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `mcp-gateway approvals [--admin URL | -c FILE] [--token REF] [--json] ACTION`.
#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// The admin API, e.g. http://127.0.0.1:9090 (the gateway's admin.address).
    #[arg(long = "admin", value_name = "URL", conflicts_with = "conf")]
    pub admin: Option<String>,
    /// Take the admin address from this configuration file.
    #[arg(short = 'c', long = "conf", value_name = "FILE")]
    pub conf: Option<PathBuf>,
    /// The admin token (approve permission to decide, read to list): env:VAR or file:PATH.
    #[arg(
        long = "token",
        value_name = "REF",
        default_value = "env:MCP_GATEWAY_ADMIN_TOKEN"
    )]
    pub token: String,
    /// Print the admin API's JSON answer.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: ApprovalsAction,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum ApprovalsAction {
    /// Calls waiting for (or approved by) an approver, pending first.
    List,
    /// One approval with its full argument preview.
    Show { id: String },
    /// Let the identical retry of the call through, once.
    Approve { id: String },
    /// Refuse the call; identical retries are refused until the approval expires.
    Deny { id: String },
}

/// Run the command; errors are one sentence for `error: ...`.
pub fn run(args: &ApprovalsArgs) -> anyhow::Result<()> {
    let base = base_url(args)?;
    let token = token(&args.token)?;
    let (method, path, body) = match &args.action {
        ApprovalsAction::List => ("GET", "/admin/approvals".to_string(), None),
        ApprovalsAction::Show { id } => ("GET", format!("/admin/approvals/{}", path_id(id)?), None),
        ApprovalsAction::Approve { id } => (
            "POST",
            "/admin/approvals/approve".to_string(),
            Some(serde_json::json!({ "id": id }).to_string()),
        ),
        ApprovalsAction::Deny { id } => (
            "POST",
            "/admin/approvals/deny".to_string(),
            Some(serde_json::json!({ "id": id }).to_string()),
        ),
    };
    let url = base
        .join(&path)
        .with_context(|| format!("cannot build the URL of {path}"))?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let resp = tokio
        .block_on(crate::http_client::HttpClient::default().send(
            method,
            &url,
            &headers,
            body.map(bytes::Bytes::from),
            TIMEOUT,
        ))
        .map_err(|e| anyhow::anyhow!("admin API at {base}: {e}"))?;
    let v: Value = serde_json::from_slice(&resp.body).with_context(|| {
        format!(
            "admin API at {base} answered {} with a body that is not JSON",
            resp.status
        )
    })?;
    if resp.status != 200 {
        let msg = v["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("admin API answered {}: {msg}", resp.status);
    }
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&v).context("cannot encode the answer")?;
        t.push('\n');
        t
    } else {
        match &args.action {
            ApprovalsAction::List => render_list(&v),
            ApprovalsAction::Show { .. } => render_one(&v),
            ApprovalsAction::Approve { .. } | ApprovalsAction::Deny { .. } => format!(
                "{} {}: {} may now {}\n",
                v["state"].as_str().unwrap_or("?"),
                v["id"].as_str().unwrap_or("?"),
                call_label(&v),
                if v["state"] == "approved" {
                    "run once (the identical retry)"
                } else {
                    "not run"
                }
            ),
        }
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")
}

fn base_url(args: &ApprovalsArgs) -> anyhow::Result<url::Url> {
    let raw = match (&args.admin, &args.conf) {
        (Some(u), _) => u.clone(),
        (None, Some(conf)) => {
            let c = crate::config::load(conf)
                .map_err(|e| anyhow::anyhow!("{}: {e}", conf.display()))?;
            let a = c.admin.ok_or_else(|| {
                anyhow::anyhow!("{}: has no admin section (no admin API)", conf.display())
            })?;
            format!("http://{}", a.address)
        }
        (None, None) => anyhow::bail!("give the admin API with --admin URL or -c FILE"),
    };
    let url = url::Url::parse(&raw).map_err(|e| anyhow::anyhow!("--admin {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("--admin {raw:?}: use an http:// or https:// URL");
    }
    Ok(url)
}

fn token(reference: &str) -> anyhow::Result<String> {
    let r: crate::vault::SecretRef = reference
        .parse()
        .map_err(|_| anyhow::anyhow!("--token must be env:VAR or file:PATH"))?;
    if matches!(r, crate::vault::SecretRef::Vault { .. }) {
        anyhow::bail!("--token must be env:VAR or file:PATH");
    }
    let secret = crate::vault::resolve(&r, None).map_err(|e| anyhow::anyhow!("--token: {e}"))?;
    let t = secret
        .expose_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--token: the admin token is empty or not text"))?;
    Ok(t.to_string())
}

/// An id as a path segment: the shape approval ids have, so it needs no escaping.
fn path_id(id: &str) -> anyhow::Result<&str> {
    if crate::approval::valid_id(id) {
        Ok(id)
    } else {
        anyhow::bail!("{:?} is not an approval id", crate::error::clip(id))
    }
}

fn call_label(v: &Value) -> String {
    let who = v["subject"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("(anonymous)");
    let server = v["server"]
        .as_str()
        .map(|s| format!(" via {s}"))
        .unwrap_or_default();
    format!(
        "{}.{} for {who}{server}",
        v["upstream"].as_str().unwrap_or("?"),
        v["tool"].as_str().unwrap_or("?")
    )
}

fn render_list(v: &Value) -> String {
    let items = v["approvals"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "no approvals\n".into();
    }
    let mut out = String::new();
    for a in &items {
        let mut args = a["arguments"].as_str().unwrap_or("").to_string();
        if args.len() > 60 {
            let mut end = 60;
            while !args.is_char_boundary(end) {
                end -= 1;
            }
            args.truncate(end);
            args.push_str("...");
        }
        out.push_str(&format!(
            "{}  {:<8}  until {}  {}  {}\n",
            a["id"].as_str().unwrap_or("?"),
            a["state"].as_str().unwrap_or("?"),
            a["expires"].as_str().unwrap_or("?"),
            call_label(a),
            args
        ));
    }
    out
}

fn render_one(a: &Value) -> String {
    format!(
        "approval  {}\nstate     {}\ncall      {}\nagent     {}\ncreated   {}\nexpires   {}\ndecided   {}\narguments {}{}\n",
        a["id"].as_str().unwrap_or("?"),
        a["state"].as_str().unwrap_or("?"),
        call_label(a),
        a["agent"].as_str().unwrap_or("-"),
        a["created"].as_str().unwrap_or("?"),
        a["expires"].as_str().unwrap_or("?"),
        a["decidedBy"].as_str().unwrap_or("-"),
        a["arguments"].as_str().unwrap_or(""),
        if a["argumentsTruncated"] == true {
            " (truncated)"
        } else {
            ""
        },
    )
}
