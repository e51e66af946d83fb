//! Command line: `mcp-gateway -c FILE` runs, `-t` validates and exits.

use std::path::PathBuf;

use clap::Parser;

/// An MCP gateway on Pingora: one endpoint in front of many MCP servers.
#[derive(Debug, Parser)]
#[command(name = "mcp-gateway", version, about)]
pub struct Cli {
    /// Configuration file (YAML).
    #[arg(short = 'c', long = "conf", value_name = "FILE")]
    pub conf: PathBuf,
    /// Validate the configuration, print "ok" and exit 0 (exit 1 with the error otherwise).
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// Take over the listening sockets of a running instance (zero-downtime upgrade).
    #[arg(short = 'u', long = "upgrade")]
    pub upgrade: bool,
    /// Run in the background.
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
}

impl Cli {
    /// Pingora's process options for these flags (the config file is ours, not Pingora's).
    pub fn pingora_opt(&self) -> pingora::server::configuration::Opt {
        pingora::server::configuration::Opt {
            upgrade: self.upgrade,
            daemon: self.daemon,
            ..Default::default()
        }
    }
}
