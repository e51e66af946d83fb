//! `mcp-gateway` binary: parse flags, then run a `vault` command or load the config and run
//! the server.

use clap::Parser;
use mcp_gateway::cli::{Cli, Command};
use mcp_gateway::{config, server, vault};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut cli = Cli::parse();
    if let Some(Command::Vault(cmd)) = cli.command.take() {
        if let Err(e) = vault::cli::run(cmd) {
            fail(format_args!("{e:#}"));
        }
        return;
    }
    // clap requires --conf when there is no subcommand; this is a second line of defence.
    let Some(conf) = cli.conf() else {
        fail(format_args!("--conf FILE is required"));
    };
    let config = match config::load(conf) {
        Ok(c) => c,
        Err(e) => fail(format_args!("{}: {e}", conf.display())),
    };
    if cli.test {
        println!("ok");
        return;
    }
    let opt = cli.pingora_opt();
    match server::build(config, Some(opt), Some(conf.to_path_buf())) {
        Ok((server, _shared)) => server.run_forever(),
        Err(e) => fail(format_args!("{e:#}")),
    }
}

/// Prints `error: MSG` on one line to stderr and exits 1.
fn fail(msg: std::fmt::Arguments<'_>) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}
