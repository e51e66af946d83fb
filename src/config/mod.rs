//! Configuration: load the YAML file, check it, and turn it into runtime types.
//!
//! Two levels, as in River and agentgateway: [`raw`] mirrors the file (strict serde), and
//! [`validate`] produces [`Config`], whose values are already parsed (socket addresses, URLs,
//! upstream indices). Every error names the field path, e.g.
//! `upstreams[0].url: invalid URL "htp://x": scheme must be http or https`.
//!
//! Layout, one file per section of the file. The rule: **`raw` holds every serde struct**
//! (the file's shape and defaults in one place, the reference `docs/config.md` is written
//! from); **a section file holds that section's validated types and its validation
//! function**. An enum read from the file and used as is at run time lives in its section
//! and `raw` re-exports it.
//!
//! - `upstream`: upstreams, identity propagation ([`PropagationMode`], [`OnChange`])
//! - `auth`: client authentication (JWT issuers and keys, API keys)
//! - `listener`: listeners, routes, the `Host`/`Origin` guard, which virtual servers each serves
//! - `virtual_server`: virtual servers, tool patterns, rules and overrides
//! - `principals`: subjects, groups and roles named by access lists, rules and admin grants
//! - `admin`: the operator listener and who may use `/admin/*`
//! - `policies`: argument rules (`crate::policy::arguments`)
//! - `redis`: the shared store replicas use for quotas and approvals
//! - `approvals`: which tool calls wait for a human approver (`crate::approval`)
//! - `quotas`: rate, concurrency and budget limits (`crate::quota::Limit`)
//! - `audit`: the audit trail's sinks, queue and argument redaction (`crate::audit`)
//! - `values`: `server`, `limits`, `registry`, `sessions`, `vault`
//! - `syntax`: value checks several sections share (names, addresses, secret references)
//!
//! [`validate`] calls the sections in a fixed order, passing each what it refers to (the
//! validated upstreams, the auth section); the order decides which error a file with several
//! is reported with. Tests: `tests/`, one file per section, all through [`from_yaml`].
//!
//! Dependencies: only the leaves [`crate::policy`] (tool patterns and exposed-name rules, which
//! the request path applies too) and `crate::quota::limit` (the validated limit types).

mod admin;
mod approvals;
mod audit;
mod auth;
mod listener;
mod policies;
mod principals;
mod quotas;
pub mod raw;
mod redis;
mod syntax;
#[cfg(test)]
mod tests;
mod upstream;
mod values;
mod virtual_server;

pub use admin::{
    AdminAuthConfig, AdminConfig, AdminJwtConfig, AdminPermission, AdminTokenConfig, PUBLIC_PATHS,
};
pub use approvals::{ApprovalRule, ApprovalsConfig, RequireApproval, MAX_APPROVAL_TTL};
pub use audit::{AuditConfig, RedactRule, Redaction};
pub use auth::{ApiKeyConfig, AuthConfig, JwtConfig, JwtKeyConfig, KeySource, API_KEY_ISSUER};
pub use listener::{HostPolicy, Listener, Route, METADATA_PREFIX};
pub use principals::{Caller, Principals, SubjectRef};
pub use raw::Names;
pub use redis::{RedisConfig, MAX_REDIS_POOL};
pub use upstream::{OAuthRefresh, OnChange, PropagationMode, Upstream, UpstreamAuth};
pub use values::{
    Limits, RegistryConfig, SessionsConfig, VaultConfig, DEFAULT_MAX_JSON_DEPTH, MAX_BODY_LIMIT,
    MAX_JSON_DEPTH_LIMIT,
};
pub use virtual_server::{ItemPatterns, Patterns, ToolOverride, ToolRule, VirtualServer};

use std::fmt;
use std::path::Path;

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
    pub admin: Option<AdminConfig>,
    pub limits: Limits,
    pub auth: Option<AuthConfig>,
    pub vault: Option<VaultConfig>,
    pub registry: RegistryConfig,
    pub virtual_servers: Vec<VirtualServer>,
    pub sessions: SessionsConfig,
    /// Argument rules, in the order written (the first that refuses a call names itself).
    pub policies: Vec<crate::policy::arguments::PolicyRule>,
    /// Where replicas share quota counters and approvals; `None`: per replica.
    pub redis: Option<RedisConfig>,
    /// Which tool calls wait for a human approver (defaults when the section is absent).
    pub approvals: ApprovalsConfig,
    /// Quota limits, in the order written (the first that refuses a call answers).
    pub quotas: Vec<crate::quota::Limit>,
    /// The audit trail; `None`: no records.
    pub audit: Option<AuditConfig>,
}

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
    let server = values::server(raw.server)?;
    let upstreams = upstream::validate(raw.upstreams)?;
    let auth = raw.auth.map(auth::validate).transpose()?;
    let vault = raw.vault.map(values::vault).transpose()?;
    let (mut listeners, served) = listener::validate(raw.listeners, &upstreams, auth.as_ref())?;
    let admin = raw
        .admin
        .map(|a| admin::validate(a, &listeners, auth.as_ref()))
        .transpose()?;
    let limits = values::limits(&raw.limits)?;
    let registry = values::registry(raw.registry)?;
    let sessions = values::sessions(raw.sessions)?;
    values::require_vault(&upstreams, auth.as_ref(), &sessions, vault.as_ref())?;
    let virtual_servers =
        virtual_server::validate(raw.virtual_servers, &upstreams, &listeners, auth.as_ref())?;
    listener::assign_virtual_servers(served, &mut listeners, &virtual_servers)?;
    let policies = policies::validate(raw.policies, &upstreams, &virtual_servers, auth.as_ref())?;
    let redis = raw
        .redis
        .map(|r| redis::validate(r, vault.as_ref()))
        .transpose()?;
    let approvals =
        approvals::validate(raw.approvals, &upstreams, &virtual_servers, admin.as_ref())?;
    let quotas = quotas::validate(raw.quotas, &upstreams, redis.as_ref())?;
    let audit = raw.audit.map(audit::validate).transpose()?;
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
        limits,
        auth,
        vault,
        registry,
        virtual_servers,
        sessions,
        policies,
        redis,
        approvals,
        quotas,
        audit,
    })
}
