//! `mcp-gateway` binary: parse flags, then run a `vault` or `tools` command, or load the
//! config and run the server.

use clap::Parser;
use mcp_gateway::cli::{Cli, Command};
use mcp_gateway::{config, policy_cmd, server, tools_cmd, vault};

/// mimalloc instead of glibc malloc: per-request allocation is a tenth of the proxy's
/// instructions under glibc (measured with callgrind, see load-tests/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut cli = Cli::parse();
    // `tools` reports everything it learns (discovery errors, collisions) in its output, so
    // its log stays quiet unless RUST_LOG asks for more.
    let quiet = matches!(
        cli.command,
        Some(Command::Tools(_) | Command::Policy(_) | Command::Approvals(_) | Command::Audit(_))
    );
    let level = if quiet { "off" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    let done = match cli.command.take() {
        Some(Command::Vault(cmd)) => Some(vault::cli::run(cmd)),
        Some(Command::Tools(args)) => Some(tools_cmd::run(&args)),
        Some(Command::Policy(cmd)) => match policy_cmd::run(&cmd) {
            Ok(true) => Some(Ok(())),
            // Blocked: the report is printed; 3 tells a script "a rule refuses" apart from 1
            // ("the command failed").
            Ok(false) => std::process::exit(3),
            Err(e) => Some(Err(e)),
        },
        Some(Command::Approvals(args)) => Some(mcp_gateway::approvals_cmd::run(&args)),
        Some(Command::Audit(cmd)) => Some(mcp_gateway::audit::cli::run(&cmd)),
        None => None,
    };
    if let Some(result) = done {
        if let Err(e) = result {
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
        Ok((server, shared)) => {
            server::run(server, &shared, pingora::server::RunArgs::default());
            std::process::exit(0)
        }
        Err(e) => fail(format_args!("{e:#}")),
    }
}

/// Prints `error: MSG` on one line to stderr and exits 1.
fn fail(msg: std::fmt::Arguments<'_>) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}
