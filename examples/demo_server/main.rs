//! Demo MCP server to put behind the gateway.
//!
//! ```text
//! cargo run --example demo_server -- --listen 127.0.0.1:8000 [--json-response] [--log-calls]
//! ```
//!
//! Prints `demo MCP server listening on http://ADDR/mcp` once ready, then
//! serves until Ctrl-C or SIGTERM.

mod server;

use std::io::Write as _;

use server::{DemoOptions, DemoServer};

const USAGE: &str = "\
Usage: demo_server [--listen ADDR] [--json-response] [--log-calls]

A demo MCP server (tools: echo, add, long_running) on rmcp's Streamable HTTP
transport, serving at http://ADDR/mcp.

Options:
  --listen ADDR      address to listen on (default 127.0.0.1:8000; port 0 picks a free port)
  --json-response    answer simple requests with application/json instead of SSE
                     (rmcp only supports this statelessly: no Mcp-Session-Id)
  --log-calls        print a line for every tools/call received (tool and arguments)
  -h, --help         print this help";

struct Args {
    listen: String,
    json_response: bool,
    log_calls: bool,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut parsed = Args {
        listen: "127.0.0.1:8000".to_owned(),
        json_response: false,
        log_calls: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--json-response" => parsed.json_response = true,
            "--log-calls" => parsed.log_calls = true,
            "--listen" => {
                parsed.listen = args
                    .next()
                    .ok_or_else(|| "--listen requires a value".to_owned())?;
            }
            other => match other.strip_prefix("--listen=") {
                Some(value) => parsed.listen = value.to_owned(),
                None => return Err(format!("unknown argument: {other}")),
            },
        }
    }
    Ok(Parsed::Run(parsed))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let server = DemoServer::start(
        listener,
        DemoOptions {
            json_response: args.json_response,
            log_calls: args.log_calls,
        },
    )
    .await?;

    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "demo MCP server listening on {}", server.url())?;
        stdout.flush()?;
    }

    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                eprintln!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
