//! Command line: `mcp-gateway -c FILE` runs, `-t` validates and exits,
//! `mcp-gateway vault ...` manages the credential vault, and `mcp-gateway tools ...` shows
//! what a principal would see on each virtual server.
//!
//! Flags for running the gateway and the subcommands are separate on purpose: `-c` is
//! required only when no subcommand is given, and mixing the two is a usage error.
//! Subcommands that read the config (`tools`) take their own `-c/--conf`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::policy_cmd::PolicyCommand;
use crate::tools_cmd::ToolsArgs;
use crate::vault::cli::VaultCommand;

/// An MCP gateway on Pingora: one endpoint in front of many MCP servers.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-gateway",
    version,
    about,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Configuration file (YAML).
    #[arg(short = 'c', long = "conf", value_name = "FILE", required = true)]
    pub conf: Option<PathBuf>,
    /// Validate the configuration, print "ok" and exit 0 (exit 1 with the error otherwise).
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// Take over the listening sockets of a running instance (zero-downtime upgrade).
    #[arg(short = 'u', long = "upgrade")]
    pub upgrade: bool,
    /// Run in the background.
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// A management command instead of running the gateway.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Management subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the encrypted credential vault (see docs/vault.md).
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Show the tools a principal would see on each virtual server, and why others are hidden.
    ///
    /// Loads the config and opens the vault as the server does, runs one discovery round
    /// against the upstreams, and evaluates every virtual server (or only --server NAME) for
    /// the principal given by --as, --group and --role. Exits 1 on a bad config.
    Tools(ToolsArgs),
    /// Explain argument policy: which `policies[]` rule allows or blocks a call, and why
    /// (see docs/policy.md).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List, approve or deny tool calls waiting for a human approver, through the admin API
    /// (see docs/approvals.md). Takes --admin URL (or -c FILE for its admin.address) and
    /// --token env:VAR|file:PATH (default env:MCP_GATEWAY_ADMIN_TOKEN).
    Approvals(crate::approvals_cmd::ApprovalsArgs),
    /// Verify the audit trail's hash chain, or query its records (see docs/audit.md).
    #[command(subcommand)]
    Audit(crate::audit::cli::AuditCommand),
}

impl Cli {
    /// The configuration file. Always `Some` when no subcommand was given (clap enforces it).
    pub fn conf(&self) -> Option<&Path> {
        self.conf.as_deref()
    }

    /// Pingora's process options for these flags (the config file is ours, not Pingora's).
    pub fn pingora_opt(&self) -> pingora::server::configuration::Opt {
        pingora::server::configuration::Opt {
            upgrade: self.upgrade,
            daemon: self.daemon,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_is_required_without_a_subcommand() {
        assert!(Cli::try_parse_from(["mcp-gateway", "-t"]).is_err());
        let cli = Cli::try_parse_from(["mcp-gateway", "-t", "-c", "gw.yaml"]).unwrap();
        assert_eq!(cli.conf(), Some(Path::new("gw.yaml")));
        assert!(cli.test && cli.command.is_none());
    }

    #[test]
    fn vault_subcommand_needs_no_conf_and_excludes_it() {
        let cli = Cli::try_parse_from(["mcp-gateway", "vault", "gen-key"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Vault(VaultCommand::GenKey))
        ));
        assert!(Cli::try_parse_from(["mcp-gateway", "-c", "x", "vault", "gen-key"]).is_err());
        let err = Cli::try_parse_from([
            "mcp-gateway",
            "vault",
            "get",
            "github",
            "--vault",
            "v.json",
            "--key",
            "ghp_inline",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("env:VAR or file:PATH"), "{err}");
        assert!(!err.contains("ghp_inline"), "{err}");
    }

    #[test]
    fn tools_subcommand_takes_its_own_conf_and_repeated_groups() {
        let cli = Cli::try_parse_from([
            "mcp-gateway",
            "tools",
            "-c",
            "gw.yaml",
            "--as",
            "bob",
            "--group",
            "eng",
            "--group",
            "ops",
            "--role",
            "admin",
            "--server",
            "support",
            "--json",
        ])
        .unwrap();
        let Some(Command::Tools(t)) = cli.command else {
            panic!("expected the tools subcommand");
        };
        assert_eq!(t.conf, Path::new("gw.yaml"));
        assert_eq!(t.who.subject, "bob");
        assert_eq!(t.who.groups, ["eng", "ops"]);
        assert_eq!(t.who.roles, ["admin"]);
        assert_eq!(t.server.as_deref(), Some("support"));
        assert!(t.json);
        // --as and -c are required; the top-level -c does not stand in for them.
        assert!(Cli::try_parse_from(["mcp-gateway", "tools", "-c", "gw.yaml"]).is_err());
        assert!(Cli::try_parse_from(["mcp-gateway", "tools", "--as", "bob"]).is_err());
        assert!(
            Cli::try_parse_from(["mcp-gateway", "-c", "x", "tools", "-c", "x", "--as", "b"])
                .is_err()
        );
    }

    #[test]
    fn approvals_subcommand_takes_the_admin_url_a_token_reference_and_an_action() {
        use crate::approvals_cmd::ApprovalsAction;
        let cli = Cli::try_parse_from([
            "mcp-gateway",
            "approvals",
            "--admin",
            "http://127.0.0.1:9090",
            "approve",
            "abc",
            "--json",
        ])
        .unwrap();
        let Some(Command::Approvals(a)) = cli.command else {
            panic!("expected the approvals subcommand");
        };
        assert_eq!(a.admin.as_deref(), Some("http://127.0.0.1:9090"));
        assert_eq!(a.token, "env:MCP_GATEWAY_ADMIN_TOKEN");
        assert!(a.json);
        assert!(matches!(a.action, ApprovalsAction::Approve { ref id } if id == "abc"));
        assert!(Cli::try_parse_from(["mcp-gateway", "approvals", "list"]).is_ok());
        assert!(Cli::try_parse_from(["mcp-gateway", "approvals", "approve"]).is_err());
        assert!(Cli::try_parse_from([
            "mcp-gateway",
            "approvals",
            "--admin",
            "http://x",
            "-c",
            "gw.yaml",
            "list"
        ])
        .is_err());
    }

    #[test]
    fn audit_subcommand_takes_files_and_filters() {
        use crate::audit::cli::AuditCommand;
        let cli = Cli::try_parse_from(["mcp-gateway", "audit", "verify", "a.jsonl.1", "a.jsonl"])
            .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Audit(AuditCommand::Verify { ref files })) if files.len() == 2)
        );
        assert!(Cli::try_parse_from(["mcp-gateway", "audit", "verify"]).is_err());
        let cli = Cli::try_parse_from([
            "mcp-gateway",
            "audit",
            "query",
            "a.jsonl",
            "--subject",
            "alice",
            "--tool",
            "crm__*",
            "--since",
            "1h",
            "--decision",
            "refused",
            "--json",
        ])
        .unwrap();
        let Some(Command::Audit(AuditCommand::Query(q))) = cli.command else {
            panic!("expected audit query");
        };
        assert_eq!(q.since, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(
            (q.subject.as_deref(), q.tool.as_deref()),
            (Some("alice"), Some("crm__*"))
        );
        assert!(q.json);
        assert!(
            Cli::try_parse_from(["mcp-gateway", "audit", "query", "a", "--since", "soon"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["mcp-gateway", "audit", "query", "a", "--decision", "maybe"])
                .is_err()
        );
    }
}
