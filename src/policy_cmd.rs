//! `mcp-gateway policy explain`: which `policies[]` rule allows or blocks a call, and why.
//!
//! "Why was alice's `github.create_issue` refused?" depends on the tool, the virtual server
//! it is called through, who is calling and the arguments, so the answer is not in the file
//! at a glance. This command loads and validates the config and runs the same functions the
//! decision point's policy step runs ([`PolicyRule::covers`], `admits`, `check`), in the same
//! order, for every rule: the verdict is the one the gateway would give. No upstream is
//! contacted and nothing is served. Visibility, quotas and approvals are other steps and are
//! not evaluated here (`mcp-gateway tools` explains visibility).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::config::{self, Caller};
use crate::policy::arguments::PolicyRule;

/// `mcp-gateway policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate every policy rule for one call and print which allows or blocks it, and why.
    /// Exits 0 when the call would be allowed, 3 when a rule blocks it, 1 on a bad config or
    /// bad arguments.
    Explain(ExplainArgs),
}

/// `mcp-gateway policy explain -c FILE --as SUBJECT --tool UPSTREAM.TOOL [--args JSON] ...`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Configuration file (YAML).
    #[arg(short = 'c', long = "conf", value_name = "FILE")]
    pub conf: PathBuf,
    #[command(flatten)]
    pub who: crate::tools_cmd::AsPrincipal,
    /// The agent acting for the caller (a JWT `act` subject).
    #[arg(long = "agent", value_name = "A")]
    pub agent: Option<String>,
    /// The virtual server the call goes through (omit for a plain route).
    #[arg(long = "server", value_name = "NAME")]
    pub server: Option<String>,
    /// The tool as `upstream.tool` (the upstream's own tool name).
    #[arg(long = "tool", value_name = "UPSTREAM.TOOL")]
    pub tool: String,
    /// The call's `arguments`, as a JSON object.
    #[arg(long = "args", value_name = "JSON", default_value = "{}")]
    pub args: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `explain` found; `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub tool: String,
    pub server: Option<String>,
    /// `allowed`, or `blocked`.
    pub verdict: &'static str,
    /// The rule that blocks the call (the first, in configuration order).
    pub blocked_by: Option<String>,
    /// The message the caller would get.
    pub message: Option<String>,
    /// Every rule, in configuration order.
    pub rules: Vec<RuleResult>,
}

/// One rule's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    pub id: String,
    /// `not applicable`, `allows` or `blocks`.
    pub outcome: &'static str,
    /// Why: which part of the rule did not apply, or what it refuses.
    pub reason: String,
}

/// Runs the command; `Ok(true)` when the call would be allowed.
pub fn run(cmd: &PolicyCommand) -> anyhow::Result<bool> {
    let PolicyCommand::Explain(args) = cmd;
    let config =
        config::load(&args.conf).map_err(|e| anyhow::anyhow!("{}: {e}", args.conf.display()))?;
    let report = explain(&config, args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(report.blocked_by.is_none())
}

/// Evaluate `args` against `config`'s rules.
pub fn explain(config: &config::Config, args: &ExplainArgs) -> anyhow::Result<Explanation> {
    let Some((upstream, tool)) = args.tool.split_once('.') else {
        anyhow::bail!(
            "--tool {:?}: write UPSTREAM.TOOL, e.g. github.create_issue",
            args.tool
        );
    };
    if !config.upstreams.iter().any(|u| u.name == upstream) {
        anyhow::bail!("--tool {:?}: no upstream named {upstream:?}", args.tool);
    }
    if let Some(s) = &args.server {
        if !config.virtual_servers.iter().any(|v| &v.name == s) {
            anyhow::bail!("--server {s:?}: no virtual server of that name");
        }
    }
    let arguments: serde_json::Value =
        serde_json::from_str(&args.args).map_err(|e| anyhow::anyhow!("--args: not JSON: {e}"))?;
    if !arguments.is_object() {
        anyhow::bail!(
            "--args: give the arguments as a JSON object, e.g. '{{\"repo\": \"acme/x\"}}'"
        );
    }
    let who = &args.who;
    let (issuer, subject) = who.subject.split_once('#').unwrap_or(("", &who.subject));
    let caller = Caller {
        issuer,
        subject,
        groups: &who.groups,
        roles: &who.roles,
        agent: args.agent.as_deref(),
    };
    let server = args.server.as_deref();
    let mut rules = Vec::with_capacity(config.policies.len());
    let mut blocked: Option<(String, String)> = None;
    for rule in &config.policies {
        let (outcome, reason) = match not_applicable(rule, upstream, tool, server, &caller) {
            Some(why) => ("not applicable", why),
            None => match rule
                .admits(&caller)
                .and_then(|()| rule.check(Some(&arguments)))
            {
                Ok(()) => ("allows", "every check passes".to_string()),
                Err(v) => {
                    blocked.get_or_insert_with(|| (v.rule.clone(), v.message.clone()));
                    ("blocks", v.message)
                }
            },
        };
        rules.push(RuleResult {
            id: rule.id.clone(),
            outcome,
            reason,
        });
    }
    Ok(Explanation {
        tool: args.tool.clone(),
        server: args.server.clone(),
        verdict: if blocked.is_some() {
            "blocked"
        } else {
            "allowed"
        },
        message: blocked.as_ref().map(|(_, m)| m.clone()),
        blocked_by: blocked.map(|(r, _)| r),
        rules,
    })
}

/// Why `rule` does not cover the call, or `None` when it does (the same test as
/// [`PolicyRule::covers`], taken apart to say which part failed).
fn not_applicable(
    rule: &PolicyRule,
    upstream: &str,
    tool: &str,
    server: Option<&str>,
    caller: &Caller<'_>,
) -> Option<String> {
    if rule.covers(upstream, tool, server, caller) {
        return None;
    }
    Some(if !rule.applies_to(upstream, tool) {
        let patterns: Vec<&str> = rule.tools.iter().map(|p| p.as_str()).collect();
        format!("tools {patterns:?} do not match {upstream}.{tool}")
    } else if !rule.servers.is_empty()
        && !server.is_some_and(|s| rule.servers.iter().any(|x| x == s))
    {
        format!("applies only on virtual servers {:?}", rule.servers)
    } else {
        "when does not name this caller".to_string()
    })
}

fn render(r: &Explanation) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let on = r
        .server
        .as_deref()
        .map_or("a plain route".to_string(), |s| {
            format!("virtual server {s}")
        });
    let _ = writeln!(out, "{} on {on}:", r.tool);
    if r.rules.is_empty() {
        let _ = writeln!(out, "  no policies[] rules are configured");
    }
    for rule in &r.rules {
        let _ = writeln!(
            out,
            "  {:<24} {:<15} {}",
            rule.id, rule.outcome, rule.reason
        );
    }
    match (&r.blocked_by, &r.message) {
        (Some(id), Some(m)) => {
            let _ = writeln!(out, "verdict: blocked by {id}: {m}");
        }
        _ => {
            let _ = writeln!(out, "verdict: allowed");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:8080
    auth: none
    routes: [{ path: /mcp, upstream: github }]
upstreams:
  - { name: github, url: "http://127.0.0.1:8000/mcp" }
virtual_servers:
  - { name: eng, route: /eng/mcp, allow_tools: ["github.*"] }
policies:
  - id: admins-only-delete
    tools: [github.delete_repo]
    allow_when: { groups: [admins] }
  - id: repo-in-acme
    tools: ["github.*"]
    arguments:
      repo: { pattern: "^acme/" }
  - id: contractors-no-force
    tools: ["github.*"]
    virtual_servers: [eng]
    when: { groups: [contractors] }
    forbidden: [force]
"#;

    fn args(tool: &str, server: Option<&str>, groups: &[&str], json: &str) -> ExplainArgs {
        ExplainArgs {
            conf: PathBuf::new(),
            who: crate::tools_cmd::AsPrincipal {
                subject: "alice".into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                roles: vec![],
            },
            agent: None,
            server: server.map(str::to_string),
            tool: tool.into(),
            args: json.into(),
            json: false,
        }
    }

    #[test]
    fn explains_which_rule_blocks_and_why() {
        let c = config::from_yaml(YAML).unwrap();
        let ok = explain(&c, &args("github.list", None, &[], r#"{"repo":"acme/x"}"#)).unwrap();
        assert_eq!(ok.verdict, "allowed");
        assert_eq!(ok.rules[0].outcome, "not applicable");
        assert_eq!(ok.rules[1].outcome, "allows");
        assert_eq!(
            ok.rules[2].reason,
            "applies only on virtual servers [\"eng\"]"
        );

        let e = explain(
            &c,
            &args(
                "github.list",
                Some("eng"),
                &["contractors"],
                r#"{"repo":"evil/x","force":true}"#,
            ),
        )
        .unwrap();
        assert_eq!(e.verdict, "blocked");
        assert_eq!(e.blocked_by.as_deref(), Some("repo-in-acme"));
        assert_eq!(e.rules[2].outcome, "blocks", "every rule is reported");
        assert!(render(&e).contains(
            "verdict: blocked by repo-in-acme: argument \"repo\" must be a string matching ^acme/"
        ));

        let e = explain(
            &c,
            &args("github.delete_repo", None, &[], r#"{"repo":"acme/x"}"#),
        )
        .unwrap();
        assert_eq!(e.blocked_by.as_deref(), Some("admins-only-delete"));
        let e = explain(
            &c,
            &args(
                "github.delete_repo",
                None,
                &["admins"],
                r#"{"repo":"acme/x"}"#,
            ),
        )
        .unwrap();
        assert_eq!(e.verdict, "allowed");
        let e = explain(
            &c,
            &args(
                "github.list",
                Some("eng"),
                &[],
                r#"{"repo":"acme/x","force":1}"#,
            ),
        )
        .unwrap();
        assert_eq!(e.rules[2].reason, "when does not name this caller");
    }

    #[test]
    fn bad_arguments_say_what_to_write() {
        let c = config::from_yaml(YAML).unwrap();
        let err = |a: ExplainArgs| explain(&c, &a).unwrap_err().to_string();
        assert!(err(args("list", None, &[], "{}")).contains("UPSTREAM.TOOL"));
        assert!(err(args("crm.list", None, &[], "{}")).contains("no upstream named \"crm\""));
        assert!(err(args("github.list", Some("ops"), &[], "{}")).contains("no virtual server"));
        assert!(err(args("github.list", None, &[], "{")).contains("not JSON"));
        assert!(err(args("github.list", None, &[], "[1]")).contains("JSON object"));
    }
}
