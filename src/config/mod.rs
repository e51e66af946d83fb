//! Configuration: load the YAML file, check it, and turn it into runtime types.
//!
//! Two levels, as in River and agentgateway: [`raw`] mirrors the file (strict serde), and
//! [`validate`] produces [`Config`], whose values are already parsed (socket addresses, URLs,
//! upstream indices). Every error names the field path, e.g.
//! `upstreams[0].url: invalid URL "htp://x": scheme must be http or https`.
//!
//! This module depends on nothing else in the crate.

#[cfg(test)]
mod access_tests;
mod admin;
mod auth;
mod principals;
pub mod raw;
mod syntax;
#[cfg(test)]
mod tests;
mod upstream;
mod virtual_server;

pub use admin::{AdminAuthConfig, AdminConfig, AdminJwtConfig, AdminTokenConfig, PUBLIC_PATHS};
pub use auth::{ApiKeyConfig, AuthConfig, JwtConfig, JwtKeyConfig, KeySource, API_KEY_ISSUER};
pub use principals::{Caller, Principals, SubjectRef};
pub use raw::AdminPermission;
pub use upstream::{OAuthRefresh, OnChange, PropagationMode, Upstream, UpstreamAuth};
pub use virtual_server::{ToolOverride, ToolRule, VirtualServer};

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use raw::RawConfig;
use syntax::{parse_socket_addr, secret_ref};

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
    pub admin: Option<AdminConfig>,
    pub limits: Limits,
    pub auth: Option<AuthConfig>,
    pub vault: Option<VaultConfig>,
    pub registry: RegistryConfig,
    pub virtual_servers: Vec<VirtualServer>,
    pub sessions: SessionsConfig,
}

/// Validated session settings.
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    /// Secret reference to a base64 32-byte key; `None` = random per process.
    pub key: Option<String>,
    /// Secret references of keys `key` replaced.
    pub previous_keys: Vec<String>,
    pub ttl: Duration,
}

/// Validated tool-discovery settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub separator: String,
    pub refresh_interval: Duration,
    pub timeout: Duration,
    pub state_file: Option<std::path::PathBuf>,
    pub page_size: usize,
}

/// Validated vault settings (references only; opened at startup).
#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub path: std::path::PathBuf,
    /// `env:NAME` or `file:PATH`.
    pub key: String,
    pub disabled: Vec<String>,
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
    /// Whether MCP requests on this listener must authenticate.
    pub auth_required: bool,
    /// Indices into [`Config::virtual_servers`] of the virtual servers served here. A
    /// virtual server's route on any other listener is an unknown path.
    pub virtual_servers: Vec<usize>,
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
    /// Canonical URL of this MCP endpoint (`auth.resource` + path), when auth is configured.
    pub resource_url: Option<String>,
    /// Path of its protected-resource metadata: `/.well-known/oauth-protected-resource` + path.
    pub metadata_path: String,
}

/// Path prefix of RFC 9728 protected-resource metadata.
pub const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// Validated request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_body_bytes: usize,
    /// See [`crate::mcp::strict`].
    pub max_json_depth: usize,
}

/// Largest value accepted for `limits.max_request_body_bytes` (64 MiB): bodies are buffered.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Default for `limits.max_json_depth`: deep enough for any tool arguments seen in practice
/// (JSON Schema documents nest about 10 levels), far below any parser's recursion limit.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;

/// Largest accepted `limits.max_json_depth`: serde_json, which the gateway itself uses for
/// pinned arguments and the registry, refuses nesting beyond 128, and the gateway must never
/// accept a body it cannot read itself.
pub const MAX_JSON_DEPTH_LIMIT: usize = 128;

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

    let upstreams = upstream::validate(raw.upstreams)?;

    let auth = raw.auth.map(auth::validate).transpose()?;
    let vault = match raw.vault {
        Some(v) => {
            if !(v.key.starts_with("env:") || v.key.starts_with("file:")) || v.key.len() <= 5 {
                return Err(ConfigError::new(
                    "vault.key",
                    format!(
                        "invalid key reference {:?}: use env:NAME or file:PATH",
                        v.key
                    ),
                ));
            }
            Some(VaultConfig {
                path: v.path.into(),
                key: v.key,
                disabled: v.disabled,
            })
        }
        None => None,
    };

    if raw.listeners.is_empty() {
        return Err(ConfigError::new(
            "listeners",
            "at least one listener is required",
        ));
    }
    let mut listeners: Vec<Listener> = Vec::with_capacity(raw.listeners.len());
    // `listeners[i].virtual_servers` as written; resolved once the virtual servers are.
    let mut served: Vec<Option<Vec<String>>> = Vec::with_capacity(raw.listeners.len());
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
            if l.auth == raw::ListenerAuth::None && upstreams[upstream].auth.mode.needs_principal()
            {
                return Err(ConfigError::new(
                    rat("upstream"),
                    format!(
                        "upstream {:?} uses {} credentials, which need an authenticated caller, but this listener has auth: none",
                        r.upstream,
                        upstreams[upstream].auth.mode.as_label()
                    ),
                ));
            }
            let resource_url = auth.as_ref().map(|a| format!("{}{}", a.resource, r.path));
            let metadata_path = format!("{METADATA_PREFIX}{}", r.path);
            routes.push(Route {
                path: r.path,
                upstream,
                resource_url,
                metadata_path,
            });
        }
        let hosts = host_policy(&format!("listeners[{i}]"), &address, l.allowed_hosts)?;
        let allowed_origins = allowed_origins(&format!("listeners[{i}]"), &l.allowed_origins)?;
        if l.auth == raw::ListenerAuth::Required && auth.is_none() {
            return Err(ConfigError::new(
                at("auth"),
                "authentication is required by default but there is no auth section; configure auth, or set auth: none on this listener",
            ));
        }
        served.push(l.virtual_servers);
        listeners.push(Listener {
            auth_required: l.auth == raw::ListenerAuth::Required,
            name: l.name.unwrap_or_else(|| address.to_string()),
            address,
            routes,
            hosts,
            allowed_origins,
            virtual_servers: Vec::new(),
        });
    }

    let admin = match raw.admin {
        None => None,
        Some(a) => Some(admin::validate(a, &listeners, auth.as_ref())?),
    };

    let max = raw.limits.max_request_body_bytes;
    if max == 0 || max > MAX_BODY_LIMIT {
        return Err(ConfigError::new(
            "limits.max_request_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT}, got {max}"),
        ));
    }

    let depth = raw.limits.max_json_depth;
    let depth_limit = MAX_JSON_DEPTH_LIMIT;
    if !(2..=depth_limit).contains(&depth) {
        // Below 2 no JSON-RPC message with params fits.
        return Err(ConfigError::new(
            "limits.max_json_depth",
            format!("must be between 2 and {depth_limit}, got {depth}"),
        ));
    }

    let registry = validate_registry(raw.registry)?;
    if raw.sessions.ttl.is_zero() {
        return Err(ConfigError::new("sessions.ttl", "must be greater than 0"));
    }
    let mut previous_keys = Vec::with_capacity(raw.sessions.previous_keys.len());
    for (i, k) in raw.sessions.previous_keys.into_iter().enumerate() {
        if let Some(r) = secret_ref(format!("sessions.previous_keys[{i}]"), Some(k))? {
            previous_keys.push(r);
        }
    }
    if raw.sessions.key.is_none() && !previous_keys.is_empty() {
        return Err(ConfigError::new(
            "sessions.previous_keys",
            "needs sessions.key",
        ));
    }
    let sessions = SessionsConfig {
        previous_keys,
        key: secret_ref("sessions.key".into(), raw.sessions.key)?,
        ttl: raw.sessions.ttl,
    };
    let uses_vault = upstreams.iter().any(|u| {
        [
            &u.auth.secret,
            &u.auth.fallback,
            &u.auth.signing_key,
            &u.auth.client_secret,
        ]
        .into_iter()
        .flatten()
        .chain(u.auth.oauth.iter().filter_map(|o| o.client_secret.as_ref()))
        .chain(sessions.key.iter())
        .chain(sessions.previous_keys.iter())
        .any(|r| r.starts_with("secret:"))
            || (u.auth.mode == PropagationMode::PerUser)
    }) || auth.as_ref().and_then(|a| a.jwt.as_ref()).is_some_and(|j| {
        j.keys.iter().any(|k| match &k.source {
            KeySource::Secret(r) | KeySource::Pem(r) => r.starts_with("secret:"),
            _ => false,
        })
    });
    if uses_vault && vault.is_none() {
        return Err(ConfigError::new(
            "vault",
            "secret: references or per_user credentials need a vault section (path and key)",
        ));
    }

    let virtual_servers =
        virtual_server::validate(raw.virtual_servers, &upstreams, &listeners, auth.as_ref())?;
    assign_virtual_servers(served, &mut listeners, &virtual_servers)?;
    if admin
        .as_ref()
        .and_then(|a| a.auth.as_ref())
        .is_some_and(|a| a.jwt.is_some())
    {
        admin::reserve_admin_audience(&listeners, &virtual_servers)?;
    }

    Ok(Config {
        server,
        listeners,
        upstreams,
        admin,
        limits: Limits {
            max_request_body_bytes: max,
            max_json_depth: depth,
        },
        auth,
        vault,
        registry,
        virtual_servers,
        sessions,
    })
}

fn validate_registry(r: raw::RawRegistry) -> Result<RegistryConfig, ConfigError> {
    if !crate::policy::names::valid_separator(&r.separator) {
        return Err(ConfigError::new(
            "registry.separator",
            format!(
                "invalid separator {:?}: 1 to 4 of A-Z a-z 0-9 _ -",
                r.separator
            ),
        ));
    }
    if r.refresh_interval.is_zero() || r.timeout.is_zero() {
        return Err(ConfigError::new(
            "registry",
            "refresh_interval and timeout must be greater than 0",
        ));
    }
    Ok(RegistryConfig {
        separator: r.separator,
        refresh_interval: r.refresh_interval,
        timeout: r.timeout,
        state_file: r.state_file.map(Into::into),
        page_size: r.page_size,
    })
}

/// Decide which virtual servers each listener serves, and refuse anonymous access that is
/// not written down twice: an `auth: none` listener serves a virtual server only when its
/// `virtual_servers` lists it *and* the server says `access.anonymous: true`. Defaults:
/// every virtual server on an authenticating listener (its access list applies), none on an
/// `auth: none` one, so adding an anonymous listener never exposes a server by accident.
fn assign_virtual_servers(
    served: Vec<Option<Vec<String>>>,
    listeners: &mut [Listener],
    vservers: &[VirtualServer],
) -> Result<(), ConfigError> {
    for (i, (l, names)) in listeners.iter_mut().zip(served).enumerate() {
        let Some(names) = names else {
            if l.auth_required {
                l.virtual_servers = (0..vservers.len()).collect();
            }
            continue;
        };
        for (k, name) in names.iter().enumerate() {
            let at = format!("listeners[{i}].virtual_servers[{k}]");
            let Some(v) = vservers.iter().position(|v| &v.name == name) else {
                let known: Vec<&str> = vservers.iter().map(|v| v.name.as_str()).collect();
                return Err(ConfigError::new(
                    at,
                    format!(
                        "unknown virtual server {name:?} (configured: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            if l.virtual_servers.contains(&v) {
                return Err(ConfigError::new(
                    at,
                    format!("virtual server {name:?} is listed twice"),
                ));
            }
            if !l.auth_required && !vservers[v].anonymous {
                return Err(ConfigError::new(
                    at,
                    format!(
                        "this listener has auth: none, so virtual server {name:?} would be open to anonymous callers; set virtual_servers[{v}].access.anonymous: true to allow that, or serve it on a listener that authenticates"
                    ),
                ));
            }
            l.virtual_servers.push(v);
        }
    }
    for (v, vs) in vservers.iter().enumerate() {
        let anonymous_here = listeners
            .iter()
            .any(|l| !l.auth_required && l.virtual_servers.contains(&v));
        if vs.anonymous && !anonymous_here {
            return Err(ConfigError::new(
                format!("virtual_servers[{v}].access.anonymous"),
                format!(
                    "no listener with auth: none serves {:?}; add it to that listener's virtual_servers, or drop anonymous (authenticated callers are let in by an empty access)",
                    vs.name
                ),
            ));
        }
    }
    Ok(())
}

/// The `Host` policy of a listener (or the admin listener) at `at`: the DNS-rebinding guard's
/// list, defaulting to the loopback names on a loopback address and to any host otherwise.
fn host_policy(
    at: &str,
    address: &SocketAddr,
    allowed_hosts: Option<Vec<String>>,
) -> Result<HostPolicy, ConfigError> {
    Ok(match allowed_hosts {
        None if address.ip().is_loopback() => {
            HostPolicy::List(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
        }
        None => HostPolicy::Any,
        Some(list) => {
            if list.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.allowed_hosts"),
                    "empty list would reject every request; omit the key or use [\"*\"]",
                ));
            }
            if list.iter().any(|h| h == "*") {
                HostPolicy::Any
            } else {
                for (k, h) in list.iter().enumerate() {
                    let unbracketed_v6 = !h.starts_with('[') && h.matches(':').count() > 1;
                    if h.is_empty() || h.contains(['/', ' ', '@']) || unbracketed_v6 {
                        return Err(ConfigError::new(
                            format!("{at}.allowed_hosts[{k}]"),
                            format!("invalid host {h:?}: expected name, name:port or [v6]:port"),
                        ));
                    }
                }
                HostPolicy::List(list.iter().map(|h| h.to_ascii_lowercase()).collect())
            }
        }
    })
}

/// The browser `Origin`s a listener (or the admin listener) at `at` accepts, lower-cased.
fn allowed_origins(at: &str, list: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for (k, o) in list.iter().enumerate() {
        let valid = o == "null"
            || url::Url::parse(o)
                .is_ok_and(|u| u.host_str().is_some() && (u.path() == "/" && !o.ends_with('/')));
        if !valid {
            return Err(ConfigError::new(
                format!("{at}.allowed_origins[{k}]"),
                format!("invalid origin {o:?}: expected scheme://host[:port] with no path"),
            ));
        }
        out.push(o.to_ascii_lowercase());
    }
    Ok(out)
}
