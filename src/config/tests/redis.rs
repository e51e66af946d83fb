//! `redis`: the shared store.

use std::time::Duration;

use super::{assert_err, BASE};
use crate::config::from_yaml;

fn with(redis: &str) -> String {
    format!("{BASE}redis:\n{redis}")
}

#[test]
fn a_redis_section_gets_defaults() {
    let c = from_yaml(&with("  url: redis://127.0.0.1:6379/2\n")).unwrap();
    let r = c.redis.unwrap();
    assert_eq!(r.url.as_str(), "redis://127.0.0.1:6379/2");
    assert_eq!(r.pool, 4);
    assert_eq!(r.timeout, Duration::from_millis(250));
    assert_eq!(r.connect_timeout, Duration::from_secs(1));
    assert_eq!(r.key_prefix, "mcpgw:");
    assert!(from_yaml(BASE).unwrap().redis.is_none());
}

#[test]
fn bad_redis_settings_name_their_field() {
    assert_err(&with("  url: rediss://h:1\n"), "redis.url", "no TLS client");
    assert_err(&with("  url: 'redis://'\n"), "redis.url", "host");
    assert_err(
        &with("  url: redis://:pw@h:1\n"),
        "redis.url",
        "move them to redis.username and redis.password",
    );
    assert_err(
        &with("  url: redis://h:1/x\n"),
        "redis.url",
        "database number",
    );
    assert_err(&with("  url: redis://h:1/0?a=b\n"), "redis.url", "no query");
    assert_err(
        &with("  url: redis://h:1\n  password: hunter2\n"),
        "redis.password",
        "secret reference",
    );
    assert_err(
        &with("  url: redis://h:1\n  password: secret:redis\n"),
        "redis.password",
        "needs a vault section",
    );
    assert!(from_yaml(&with(
        "  url: redis://h:1\n  password: env:REDIS_PASSWORD\n"
    ))
    .is_ok());
    assert_err(
        &with("  url: redis://h:1\n  username: gw\n"),
        "redis.username",
        "needs redis.password",
    );
    assert_err(
        &with("  url: redis://h:1\n  pool: 0\n"),
        "redis.pool",
        "between 1 and 64",
    );
    assert_err(
        &with("  url: redis://h:1\n  timeout: 0s\n"),
        "redis.timeout",
        "greater than 0",
    );
    assert_err(
        &with("  url: redis://h:1\n  key_prefix: 'a b'\n"),
        "redis.key_prefix",
        "no whitespace",
    );
    assert_err(
        &with("  url: redis://h:1\n  tls: true\n"),
        "redis.tls",
        "unknown field `tls`",
    );
}
