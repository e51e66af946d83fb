//! The plain-value sections: `server`, `limits`, `registry`, `sessions` and `vault`. Each is
//! a few numbers or references with range and syntax checks; the one cross-reference is
//! [`require_vault`]: whether the other sections' references need a `vault` section.

use std::time::Duration;

use crate::policy::names::valid_separator;

use super::raw::{RawLimits, RawRegistry, RawServer, RawSessions, RawVault};
use super::syntax::secret_ref;
use super::{AuthConfig, ConfigError, KeySource, PropagationMode, Upstream};

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
    /// Per-principal caps on long-lived state ([`crate::caps`]).
    pub max_parked_calls_per_principal: usize,
    pub max_streams_per_principal: usize,
    pub max_event_sessions_per_principal: usize,
}

/// Default for `limits.max_parked_calls_per_principal`. A parked call waits for a person
/// (a form, a confirmation), and a person answers one at a time; 32 leaves room for an
/// agent host that runs several tool calls in parallel, each asking, for several of the
/// principal's windows. It holds an upstream connection and up to about 2 MiB (a 1 MiB
/// answer channel, a 1 MiB partial event) each, so at most about 64 MiB per principal, and
/// 32 principals at their cap still leave the per-replica 1,024 with room.
pub(super) const DEFAULT_PARKED_PER_PRINCIPAL: usize = 32;

/// Default for `limits.max_streams_per_principal` (GET and listen streams together). One
/// stream carries every notification type, so a client needs one per session; 16 covers one person's several clients (IDE,
/// desktop app, CLI) or a service account's few agent processes, and 256 principals at
/// their cap fit the per-replica 4,096.
pub(super) const DEFAULT_STREAMS_PER_PRINCIPAL: usize = 16;

/// Default for `limits.max_event_sessions_per_principal`. A handshake-era client holds one
/// session (with its GET stream) per connected host or agent; 256 is generous for a service
/// account running many agents, and 39 principals at their cap still fit the per-replica
/// 10,000. Each such session also follows at most one upstream stream per upstream of its
/// virtual server, so this bounds a principal's upstream streams too.
pub(super) const DEFAULT_EVENT_SESSIONS_PER_PRINCIPAL: usize = 256;

/// Largest value accepted for `limits.max_request_body_bytes` (64 MiB): bodies are buffered.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Default for `limits.max_json_depth`: deep enough for any tool arguments seen in practice
/// (JSON Schema documents nest about 10 levels), far below any parser's recursion limit.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;

/// Largest accepted `limits.max_json_depth`: serde_json, which the gateway itself uses for
/// pinned arguments and the registry, refuses nesting beyond 128, and the gateway must never
/// accept a body it cannot read itself.
pub const MAX_JSON_DEPTH_LIMIT: usize = 128;

/// Validates `server` (process settings, passed to Pingora as written).
pub(super) fn server(server: RawServer) -> Result<RawServer, ConfigError> {
    if server.threads == 0 {
        return Err(ConfigError::new("server.threads", "must be at least 1"));
    }
    Ok(server)
}

/// Validates `vault`: the key-encryption key is a reference (`env:` / `file:`), never a value.
pub(super) fn vault(v: RawVault) -> Result<VaultConfig, ConfigError> {
    if !(v.key.starts_with("env:") || v.key.starts_with("file:")) || v.key.len() <= 5 {
        return Err(ConfigError::new(
            "vault.key",
            format!(
                "invalid key reference {:?}: use env:NAME or file:PATH",
                v.key
            ),
        ));
    }
    Ok(VaultConfig {
        path: v.path.into(),
        key: v.key,
        disabled: v.disabled,
    })
}

/// Validates `limits`: the body limit (bodies are buffered), the JSON depth limit, and the
/// per-principal caps (each within its per-replica total).
pub(super) fn limits(l: &RawLimits) -> Result<Limits, ConfigError> {
    let max = l.max_request_body_bytes;
    if max == 0 || max > MAX_BODY_LIMIT {
        return Err(ConfigError::new(
            "limits.max_request_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT}, got {max}"),
        ));
    }

    let depth = l.max_json_depth;
    let depth_limit = MAX_JSON_DEPTH_LIMIT;
    if !(2..=depth_limit).contains(&depth) {
        // Below 2 no JSON-RPC message with params fits.
        return Err(ConfigError::new(
            "limits.max_json_depth",
            format!("must be between 2 and {depth_limit}, got {depth}"),
        ));
    }
    // A cap above its per-replica total would never apply; 0 would refuse every such request.
    let cap = |field: &str, value: usize, total: usize| {
        if (1..=total).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                format!("limits.{field}"),
                format!("must be between 1 and {total} (the per-replica total), got {value}"),
            ))
        }
    };
    Ok(Limits {
        max_request_body_bytes: max,
        max_json_depth: depth,
        max_parked_calls_per_principal: cap(
            "max_parked_calls_per_principal",
            l.max_parked_calls_per_principal,
            crate::proxy::mrtr::MAX_PARKED,
        )?,
        max_streams_per_principal: cap(
            "max_streams_per_principal",
            l.max_streams_per_principal,
            crate::vserver::listen::MAX_STREAMS,
        )?,
        max_event_sessions_per_principal: cap(
            "max_event_sessions_per_principal",
            l.max_event_sessions_per_principal,
            crate::vserver::events::MAX_SESSIONS,
        )?,
    })
}

/// Validates `sessions`: a non-zero lifetime, keys given as secret references, and old keys
/// only next to a current one.
pub(super) fn sessions(s: RawSessions) -> Result<SessionsConfig, ConfigError> {
    if s.ttl.is_zero() {
        return Err(ConfigError::new("sessions.ttl", "must be greater than 0"));
    }
    let mut previous_keys = Vec::with_capacity(s.previous_keys.len());
    for (i, k) in s.previous_keys.into_iter().enumerate() {
        if let Some(r) = secret_ref(format!("sessions.previous_keys[{i}]"), Some(k))? {
            previous_keys.push(r);
        }
    }
    if s.key.is_none() && !previous_keys.is_empty() {
        return Err(ConfigError::new(
            "sessions.previous_keys",
            "needs sessions.key",
        ));
    }
    Ok(SessionsConfig {
        previous_keys,
        key: secret_ref("sessions.key".into(), s.key)?,
        ttl: s.ttl,
    })
}

/// Refuses a configuration whose `secret:` references (upstream credentials, session keys,
/// JWT secrets and PEMs) or `per_user` credentials have no `vault` section to come from.
pub(super) fn require_vault(
    upstreams: &[Upstream],
    auth: Option<&AuthConfig>,
    sessions: &SessionsConfig,
    vault: Option<&VaultConfig>,
) -> Result<(), ConfigError> {
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
    }) || auth.and_then(|a| a.jwt.as_ref()).is_some_and(|j| {
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
    Ok(())
}

/// Validates `registry` (tool discovery): the exposed-name separator and non-zero intervals.
pub(super) fn registry(r: RawRegistry) -> Result<RegistryConfig, ConfigError> {
    if !valid_separator(&r.separator) {
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
