//! Configuration: load the YAML file, check it, and turn it into runtime types.
//!
//! Two levels, as in River and agentgateway: [`raw`] mirrors the file (strict serde), and
//! [`validate`] produces [`Config`], whose values are already parsed (socket addresses, URLs,
//! upstream indices). Every error names the field path, e.g.
//! `upstreams[0].url: invalid URL "htp://x": scheme must be http or https`.
//!
//! This module depends on nothing else in the crate.

pub mod raw;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use raw::RawConfig;

/// Why a configuration file was rejected: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path to the offending field (`listeners[0].routes[1].upstream`); empty for the file.
    pub path: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Validated configuration. Built once at startup (and on reload), read on every request.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: raw::RawServer,
    pub listeners: Vec<Listener>,
    pub upstreams: Vec<Upstream>,
    pub admin: Option<SocketAddr>,
    pub limits: Limits,
}

/// A validated listener.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub routes: Vec<Route>,
    pub hosts: HostPolicy,
    /// Lower-cased `scheme://host[:port]` values.
    pub allowed_origins: Vec<String>,
}

/// Which `Host` header values a listener accepts (DNS-rebinding guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPolicy {
    /// Any host (non-loopback listener without `allowed_hosts`, or `*` listed).
    Any,
    /// Lower-cased entries: `name` matches on any port, `name:port` only on that port.
    List(Vec<String>),
}

/// A validated route: exact path to upstream index.
#[derive(Debug, Clone)]
pub struct Route {
    pub path: String,
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
}

/// A validated upstream MCP server.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub url: url::Url,
    pub tls: bool,
    /// Host name (for DNS and SNI), without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Value for the `Host` header sent upstream (`host[:port]`).
    pub authority: String,
    /// Path and query sent upstream.
    pub path_and_query: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Validated request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_body_bytes: usize,
}

/// Largest value accepted for `limits.max_request_body_bytes` (64 MiB): bodies are buffered.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Read and validate a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    from_yaml(&text)
}

/// Parse and validate configuration text.
pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = path.trim_end_matches(".?").trim_end_matches('?');
        let path = if path == "." { "" } else { path };
        // serde_yaml prefixes its own (coarser) path; ours is the precise one.
        let inner = e.into_inner().to_string();
        let message = match inner.split_once(": ") {
            Some((prefix, rest)) if !prefix.contains(' ') => rest.to_string(),
            _ => inner,
        };
        ConfigError::new(path, message)
    })?;
    validate(raw)
}

/// Check meaning and cross-references, and build the runtime types.
pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let server = raw.server;
    if server.threads == 0 {
        return Err(ConfigError::new("server.threads", "must be at least 1"));
    }

    if raw.upstreams.is_empty() {
        return Err(ConfigError::new(
            "upstreams",
            "at least one upstream is required",
        ));
    }
    let mut upstreams = Vec::with_capacity(raw.upstreams.len());
    for (i, u) in raw.upstreams.into_iter().enumerate() {
        let at = |field: &str| format!("upstreams[{i}].{field}");
        if !valid_name(&u.name) {
            return Err(ConfigError::new(
                at("name"),
                format!("invalid name {:?}: use 1 to 32 of A-Z a-z 0-9 _ -", u.name),
            ));
        }
        if upstreams.iter().any(|p: &Upstream| p.name == u.name) {
            return Err(ConfigError::new(
                at("name"),
                format!("duplicate upstream name {:?}", u.name),
            ));
        }
        let url = parse_upstream_url(&u.url).map_err(|m| ConfigError::new(at("url"), m))?;
        for (field, d) in [
            ("connect_timeout", u.connect_timeout),
            ("read_timeout", u.read_timeout),
            ("stream_idle_timeout", u.stream_idle_timeout),
            ("write_timeout", u.write_timeout),
            ("idle_timeout", u.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(at(field), "must be greater than 0"));
            }
        }
        let tls = url.scheme() == "https";
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(), // unreachable: parse_upstream_url requires a host
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        upstreams.push(Upstream {
            name: u.name,
            tls,
            host,
            port,
            authority,
            path_and_query,
            url,
            connect_timeout: u.connect_timeout,
            read_timeout: u.read_timeout,
            stream_idle_timeout: u.stream_idle_timeout,
            write_timeout: u.write_timeout,
            idle_timeout: u.idle_timeout,
        });
    }

    if raw.listeners.is_empty() {
        return Err(ConfigError::new(
            "listeners",
            "at least one listener is required",
        ));
    }
    let mut listeners: Vec<Listener> = Vec::with_capacity(raw.listeners.len());
    for (i, l) in raw.listeners.into_iter().enumerate() {
        let at = |field: &str| format!("listeners[{i}].{field}");
        let address =
            parse_socket_addr(&l.address).map_err(|m| ConfigError::new(at("address"), m))?;
        if listeners.iter().any(|p| p.address == address) {
            return Err(ConfigError::new(
                at("address"),
                format!("{address} is used by another listener"),
            ));
        }
        if l.routes.is_empty() {
            return Err(ConfigError::new(
                at("routes"),
                "at least one route is required",
            ));
        }
        let mut routes: Vec<Route> = Vec::with_capacity(l.routes.len());
        for (j, r) in l.routes.into_iter().enumerate() {
            let rat = |field: &str| format!("listeners[{i}].routes[{j}].{field}");
            if !r.path.starts_with('/') || r.path.contains(['?', '#', ' ']) {
                return Err(ConfigError::new(
                    rat("path"),
                    format!(
                        "invalid path {:?}: must start with / and have no query",
                        r.path
                    ),
                ));
            }
            if routes.iter().any(|p| p.path == r.path) {
                return Err(ConfigError::new(
                    rat("path"),
                    format!("duplicate route path {:?}", r.path),
                ));
            }
            let Some(upstream) = upstreams.iter().position(|u| u.name == r.upstream) else {
                let known: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
                return Err(ConfigError::new(
                    rat("upstream"),
                    format!(
                        "unknown upstream {:?} (configured: {})",
                        r.upstream,
                        known.join(", ")
                    ),
                ));
            };
            routes.push(Route {
                path: r.path,
                upstream,
            });
        }
        let hosts = match l.allowed_hosts {
            None if address.ip().is_loopback() => {
                HostPolicy::List(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
            }
            None => HostPolicy::Any,
            Some(list) => {
                if list.is_empty() {
                    return Err(ConfigError::new(
                        at("allowed_hosts"),
                        "empty list would reject every request; omit the key or use [\"*\"]",
                    ));
                }
                if list.iter().any(|h| h == "*") {
                    HostPolicy::Any
                } else {
                    for (k, h) in list.iter().enumerate() {
                        if h.is_empty() || h.contains(['/', ' ', '@']) {
                            return Err(ConfigError::new(
                                format!("listeners[{i}].allowed_hosts[{k}]"),
                                format!("invalid host {h:?}: expected name or name:port"),
                            ));
                        }
                    }
                    HostPolicy::List(list.iter().map(|h| h.to_ascii_lowercase()).collect())
                }
            }
        };
        let mut allowed_origins = Vec::with_capacity(l.allowed_origins.len());
        for (k, o) in l.allowed_origins.iter().enumerate() {
            let valid = o == "null"
                || url::Url::parse(o).is_ok_and(|u| {
                    u.host_str().is_some() && (u.path() == "/" && !o.ends_with('/'))
                });
            if !valid {
                return Err(ConfigError::new(
                    format!("listeners[{i}].allowed_origins[{k}]"),
                    format!("invalid origin {o:?}: expected scheme://host[:port] with no path"),
                ));
            }
            allowed_origins.push(o.to_ascii_lowercase());
        }
        listeners.push(Listener {
            name: l.name.unwrap_or_else(|| address.to_string()),
            address,
            routes,
            hosts,
            allowed_origins,
        });
    }

    let admin = match raw.admin {
        None => None,
        Some(a) => {
            let addr =
                parse_socket_addr(&a.address).map_err(|m| ConfigError::new("admin.address", m))?;
            if listeners.iter().any(|l| l.address == addr) {
                return Err(ConfigError::new(
                    "admin.address",
                    format!("{addr} is also a listener address"),
                ));
            }
            Some(addr)
        }
    };

    let max = raw.limits.max_request_body_bytes;
    if max == 0 || max > MAX_BODY_LIMIT {
        return Err(ConfigError::new(
            "limits.max_request_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT}, got {max}"),
        ));
    }

    Ok(Config {
        server,
        listeners,
        upstreams,
        admin,
        limits: Limits {
            max_request_body_bytes: max,
        },
    })
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("invalid address {s:?}: expected IP:PORT, e.g. 127.0.0.1:8080"))
}

fn parse_upstream_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("invalid URL {s:?}: scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {s:?}: a host is required"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "invalid URL {s:?}: credentials in the URL are not allowed; configure them as upstream auth"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!("invalid URL {s:?}: a fragment is not allowed"));
    }
    Ok(url)
}
