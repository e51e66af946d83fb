//! `mcp-gateway` binary: parse flags, load the config, run the server.

use clap::Parser;
use mcp_gateway::{cli::Cli, config, server};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let config = match config::load(&cli.conf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", cli.conf.display());
            std::process::exit(1);
        }
    };
    if cli.test {
        println!("ok");
        return;
    }
    let opt = cli.pingora_opt();
    match server::build(config, Some(opt)) {
        Ok((server, _shared)) => server.run_forever(),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
