//! Command line: `mcp-gateway -c FILE` runs, `-t` validates and exits, and
//! `mcp-gateway vault ...` manages the credential vault.
//!
//! Flags for running the gateway and the subcommands are separate on purpose: `-c` is
//! required only when no subcommand is given, and mixing the two is a usage error.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

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
}
