//! Validation of the `redis` section: where replicas share state (quota counters, call
//! approvals). The URL is checked here and parsed by the client crate at startup; no
//! connection is made by `-t` or at startup (the first use connects, so a gateway starts
//! while Redis is down and each limit's `on_redis_error` decides what that means).

use std::time::Duration;

use super::raw::RawRedis;
use super::syntax::secret_ref;
use super::{ConfigError, VaultConfig};

/// Most pooled connections (each is multiplexed; a handful saturate one Redis).
pub const MAX_REDIS_POOL: usize = 64;

/// Validated `redis` settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`, without credentials.
    pub url: url::Url,
    /// Secret reference of the `AUTH` password.
    pub password: Option<String>,
    pub username: Option<String>,
    pub pool: usize,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub key_prefix: String,
}

pub(super) fn validate(
    r: RawRedis,
    vault: Option<&VaultConfig>,
) -> Result<RedisConfig, ConfigError> {
    let url = url::Url::parse(&r.url).map_err(|e| {
        ConfigError::new(
            "redis.url",
            format!("invalid URL {:?}: {e}; use redis://HOST:PORT[/DB]", r.url),
        )
    })?;
    if url.scheme() != "redis" {
        return Err(ConfigError::new(
            "redis.url",
            format!(
                "scheme {:?} is not supported: use redis:// (no TLS client is built in; keep Redis on a private network)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new("redis.url", "names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            "redis.url",
            "carries credentials: move them to redis.username and redis.password (a secret reference)",
        ));
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(ConfigError::new(
            "redis.url",
            format!("path {db:?} is not a database number"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new("redis.url", "takes no query or fragment"));
    }
    let password = secret_ref("redis.password".into(), r.password)?;
    if password
        .as_deref()
        .is_some_and(|p| p.starts_with("secret:"))
        && vault.is_none()
    {
        return Err(ConfigError::new(
            "redis.password",
            "a secret: reference needs a vault section (path and key), or use env:NAME / file:PATH",
        ));
    }
    if r.username.is_some() && password.is_none() {
        return Err(ConfigError::new("redis.username", "needs redis.password"));
    }
    if !(1..=MAX_REDIS_POOL).contains(&r.pool) {
        return Err(ConfigError::new(
            "redis.pool",
            format!("must be between 1 and {MAX_REDIS_POOL}, got {}", r.pool),
        ));
    }
    for (field, d) in [
        ("redis.timeout", r.timeout),
        ("redis.connect_timeout", r.connect_timeout),
    ] {
        if d.is_zero() || d > Duration::from_secs(60) {
            return Err(ConfigError::new(
                field,
                "must be greater than 0 and at most 60s",
            ));
        }
    }
    if r.key_prefix.len() > 64
        || r.key_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConfigError::new(
            "redis.key_prefix",
            "at most 64 characters, no whitespace",
        ));
    }
    Ok(RedisConfig {
        url,
        password,
        username: r.username,
        pool: r.pool,
        timeout: r.timeout,
        connect_timeout: r.connect_timeout,
        key_prefix: r.key_prefix,
    })
}
