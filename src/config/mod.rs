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
mod listener;
mod principals;
pub mod raw;
mod syntax;
#[cfg(test)]
mod tests;
mod upstream;
mod virtual_server;

pub use admin::{AdminAuthConfig, AdminConfig, AdminJwtConfig, AdminTokenConfig, PUBLIC_PATHS};
pub use auth::{ApiKeyConfig, AuthConfig, JwtConfig, JwtKeyConfig, KeySource, API_KEY_ISSUER};
pub use listener::{HostPolicy, Listener, Route, METADATA_PREFIX};
pub use principals::{Caller, Principals, SubjectRef};
pub use raw::AdminPermission;
pub use upstream::{OAuthRefresh, OnChange, PropagationMode, Upstream, UpstreamAuth};
pub use virtual_server::{ToolOverride, ToolRule, VirtualServer};

use std::fmt;
use std::path::Path;
use std::time::Duration;

use raw::RawConfig;
use syntax::secret_ref;

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

    let (mut listeners, served) = listener::validate(raw.listeners, &upstreams, auth.as_ref())?;

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
    listener::assign_virtual_servers(served, &mut listeners, &virtual_servers)?;
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
