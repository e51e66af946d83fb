//! The configuration file exactly as written: strict serde structs.
//!
//! Every struct denies unknown fields so a typo fails at startup instead of being ignored.
//! Defaults live here (`#[serde(default)]`); meaning and cross-references are checked in
//! [`super::validate`]. The doc comments on these fields are the reference for
//! `docs/config.md` and `conf/gateway.yaml`.

use std::time::Duration;

use serde::Deserialize;

/// Top-level gateway configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Process settings; mapped onto Pingora's `ServerConf`.
    #[serde(default)]
    pub server: RawServer,
    /// Where clients connect. At least one.
    pub listeners: Vec<RawListener>,
    /// The MCP servers behind the gateway. At least one.
    pub upstreams: Vec<RawUpstream>,
    /// The operator port: `/healthz`, `/readyz`, `/metrics`. Optional.
    #[serde(default)]
    pub admin: Option<RawAdmin>,
    /// Request limits.
    #[serde(default)]
    pub limits: RawLimits,
}

/// Process settings (a subset of Pingora's `ServerConf`, with our defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Worker threads per listener service.
    pub threads: usize,
    /// Let idle worker threads steal work from busy ones.
    pub work_stealing: bool,
    /// Seconds to keep serving after SIGTERM / upgrade before shutting runtimes down.
    pub grace_period_seconds: u64,
    /// Seconds to wait for runtimes to finish after the grace period.
    pub graceful_shutdown_timeout_seconds: u64,
    /// PID file (written when daemonized or upgraded).
    pub pid_file: String,
    /// Unix socket used to hand listening sockets to a new process (`--upgrade`).
    pub upgrade_sock: String,
    /// Idle upstream connections kept for reuse, per listener service.
    pub upstream_keepalive_pool_size: usize,
    /// Write Pingora's error log to this file instead of stderr.
    pub error_log: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            threads: 1,
            work_stealing: true,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 5,
            pid_file: "/tmp/mcp-gateway.pid".into(),
            upgrade_sock: "/tmp/mcp-gateway-upgrade.sock".into(),
            upstream_keepalive_pool_size: 128,
            error_log: None,
        }
    }
}

/// One listening socket and the MCP endpoints (routes) it serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Name used in logs and metrics; defaults to the address.
    #[serde(default)]
    pub name: Option<String>,
    /// `IP:PORT` to bind, e.g. `127.0.0.1:8080` or `0.0.0.0:8080`.
    pub address: String,
    /// MCP endpoints on this listener. At least one.
    pub routes: Vec<RawRoute>,
    /// Accepted `Host` header values (`name` or `name:port`, `*` for any). Default: for a loopback
    /// address, `localhost`, `127.0.0.1` and `[::1]` on any port; otherwise any host.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Accepted browser `Origin` values (`scheme://host[:port]`). Requests without `Origin`
    /// (non-browser clients) are always accepted. Default: none.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// One MCP endpoint: a path on the listener and the upstream it proxies to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Exact request path, e.g. `/mcp`.
    pub path: String,
    /// Name of an entry in `upstreams`.
    pub upstream: String,
}

/// One upstream MCP server (streamable HTTP).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Name used in routes, errors and metric labels: `[A-Za-z0-9_-]{1,32}`.
    pub name: String,
    /// The server's MCP endpoint, `http://` or `https://`, e.g. `http://127.0.0.1:8000/mcp`.
    pub url: String,
    /// Time allowed to establish a TCP (and TLS) connection.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for the response headers or the next body bytes of a POST response.
    #[serde(default = "default_read_timeout", with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Longest silence allowed on a server-to-client SSE stream (GET).
    #[serde(default = "default_stream_idle_timeout", with = "humantime_serde")]
    pub stream_idle_timeout: Duration,
    /// Longest wait to write the request to the upstream.
    #[serde(default = "default_write_timeout", with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long an idle pooled connection to this upstream is kept.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_stream_idle_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_write_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The admin (operator) listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `IP:PORT` to bind. Keep it private (loopback or an internal network).
    pub address: String,
}

/// Request limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Largest accepted request body, in bytes. Larger bodies get 413.
    pub max_request_body_bytes: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_request_body_bytes: 1024 * 1024,
        }
    }
}
