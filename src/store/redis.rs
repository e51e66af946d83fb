//! The shared backend: a Redis server every replica talks to (quota counters, approvals).
//!
//! [`RedisStore`] is the one way the gateway reaches Redis, through the redis-rs crate:
//! - a small pool of multiplexed connections (`redis.pool`, used round-robin), created
//!   lazily on first use inside the runtime that uses them, so startup never waits for Redis
//!   and `-t` never connects;
//! - every command bounded by `redis.timeout`: past it the store counts as unreachable;
//! - after a failure the store answers [`Unavailable`] at once for [`BACKOFF`] instead of
//!   making every request wait out the timeout while Redis is down; the first request after
//!   the back-off tries again, so recovery needs no restart;
//! - keys built by [`RedisStore::key`] under `redis.key_prefix`, each part escaped so a
//!   client-chosen subject cannot forge another key's shape.
//!
//! What an unreachable Redis means is the caller's decision (a quota's `on_redis_error`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::config::RedisConfig;

/// How long the store fails fast after a failed command before it tries Redis again.
pub const BACKOFF: Duration = Duration::from_secs(1);

/// Redis did not answer usefully: down, timed out, or an error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Redis at {endpoint} {cause}")]
pub struct Unavailable {
    pub endpoint: String,
    pub cause: String,
}

/// Connections to the configured Redis.
pub struct RedisStore {
    client: redis::Client,
    pool: usize,
    conns: OnceCell<Vec<ConnectionManager>>,
    next: AtomicUsize,
    timeout: Duration,
    connect_timeout: Duration,
    prefix: String,
    /// `host:port/db`, for messages (never the password).
    endpoint: String,
    /// Milliseconds since `epoch` until which commands fail fast (0: healthy).
    down_until: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("endpoint", &self.endpoint)
            .field("pool", &self.pool)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Prepares the connections (no I/O). `password` is the resolved `redis.password`.
    pub fn new(config: &RedisConfig, password: Option<String>) -> anyhow::Result<RedisStore> {
        let db = config
            .url
            .path()
            .trim_start_matches('/')
            .parse::<i64>()
            .unwrap_or(0);
        let host = config.url.host_str().unwrap_or_default().to_string();
        let port = config.url.port().unwrap_or(6379);
        use redis::IntoConnectionInfo as _;
        let mut settings = redis::RedisConnectionInfo::default().set_db(db);
        if let Some(u) = &config.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &password {
            settings = settings.set_password(p);
        }
        let info = redis::ConnectionAddr::Tcp(host.clone(), port)
            .into_connection_info()
            .map_err(|e| anyhow::anyhow!("redis.url {}: {e}", config.url))?
            .set_redis_settings(settings);
        let client = redis::Client::open(info)
            .map_err(|e| anyhow::anyhow!("redis.url {}: {e}", config.url))?;
        Ok(RedisStore {
            client,
            pool: config.pool,
            conns: OnceCell::new(),
            next: AtomicUsize::new(0),
            timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            prefix: config.key_prefix.clone(),
            endpoint: format!("{host}:{port}/{db}"),
            down_until: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// `host:port/db`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A key under the configured prefix: the parts joined by `:`, each with `%` and `:`
    /// percent-escaped, so `("a:b", "c")` and `("a", "b:c")` are different keys.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(':');
            }
            for c in p.chars() {
                match c {
                    '%' => k.push_str("%25"),
                    ':' => k.push_str("%3A"),
                    c => k.push(c),
                }
            }
        }
        k
    }

    /// Whether the store is in its fail-fast back-off after a failure.
    pub fn backing_off(&self) -> bool {
        self.now_ms() < self.down_until.load(Ordering::Relaxed)
    }

    /// Runs one command (or a script invocation, a pipeline: anything redis-rs can send)
    /// on the next pooled connection, within `redis.timeout`.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self.backing_off() {
            return Err(self.unavailable("is unreachable (retrying after a back-off)"));
        }
        let conn = self.connection().await?;
        match tokio::time::timeout(self.timeout, op(conn)).await {
            Ok(Ok(v)) => {
                self.down_until.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => Err(self.failed(&format!("failed: {e}"))),
            Err(_) => Err(self.failed(&format!(
                "did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, Unavailable> {
        let conns = self
            .conns
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(self.connect_timeout);
                (0..self.pool)
                    .map(|_| {
                        ConnectionManager::new_lazy_with_config(self.client.clone(), config.clone())
                    })
                    .collect::<redis::RedisResult<Vec<_>>>()
            })
            .await
            .map_err(|e| self.failed(&format!("cannot be set up: {e}")))?;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % conns.len().max(1);
        conns
            .get(i)
            .cloned()
            .ok_or_else(|| self.unavailable("has no connection"))
    }

    fn failed(&self, cause: &str) -> Unavailable {
        let until = self.now_ms() + BACKOFF.as_millis() as u64;
        self.down_until.store(until, Ordering::Relaxed);
        log::warn!("Redis at {} {cause}", self.endpoint);
        self.unavailable(cause)
    }

    fn unavailable(&self, cause: &str) -> Unavailable {
        Unavailable {
            endpoint: self.endpoint.clone(),
            cause: cause.to_string(),
        }
    }

    fn now_ms(&self) -> u64 {
        // Never 0, so `down_until == 0` always means healthy.
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> RedisStore {
        let c = crate::config::from_yaml(
            "listeners: [{address: '127.0.0.1:1', auth: none, routes: [{path: /mcp, upstream: u}]}]\nupstreams: [{name: u, url: 'http://127.0.0.1:2/mcp'}]\nredis: {url: 'redis://127.0.0.1:1/3', timeout: 50ms}\n",
        )
        .unwrap();
        RedisStore::new(c.redis.as_ref().unwrap(), None).unwrap()
    }

    #[test]
    fn keys_escape_their_parts() {
        let s = store();
        assert_eq!(s.key(&["q", "a:b", "c"]), "mcpgw:q:a%3Ab:c");
        assert_ne!(s.key(&["a:b", "c"]), s.key(&["a", "b:c"]));
        assert_eq!(s.key(&["100%"]), "mcpgw:100%25");
        assert_eq!(s.endpoint(), "127.0.0.1:1/3");
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast_after_the_first_failure() {
        // Port 1: nothing listens, the connection is refused at once.
        let s = store();
        let ping = |c: ConnectionManager| async move {
            let mut c = c;
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        let e = s.run(ping).await.unwrap_err();
        assert!(e.to_string().starts_with("Redis at 127.0.0.1:1/3 "), "{e}");
        assert!(s.backing_off());
        let e = s.run(ping).await.unwrap_err();
        assert!(e.cause.contains("back-off"), "{e}");
    }
}
