//! The plain-value sections (`config/values.rs`: `server`, `limits`, `registry`,
//! `sessions`, `vault`): one test per rule.

use super::{assert_err, BASE};
use crate::config::{from_yaml, DEFAULT_MAX_JSON_DEPTH};

#[test]
fn json_depth_limit_is_bounded_by_what_serde_json_reads() {
    assert_eq!(
        from_yaml(BASE).unwrap().limits.max_json_depth,
        DEFAULT_MAX_JSON_DEPTH
    );
    for bad in [0, 1, 129, 100_000] {
        assert_err(
            &format!("{BASE}limits:\n  max_json_depth: {bad}\n"),
            "limits.max_json_depth",
            "between 2 and 128",
        );
    }
    let c = from_yaml(&format!("{BASE}limits:\n  max_json_depth: 128\n")).unwrap();
    assert_eq!(c.limits.max_json_depth, 128);
}

#[test]
fn zero_limits_and_timeouts_are_rejected() {
    assert_err(
        &format!("{BASE}limits:\n  max_request_body_bytes: 0\n"),
        "limits.max_request_body_bytes",
        "between 1 and",
    );
    assert_err(
        &BASE.replace(
            "url: http://127.0.0.1:8000/mcp",
            "url: http://127.0.0.1:8000/mcp\n    read_timeout: 0s",
        ),
        "upstreams[0].read_timeout",
        "greater than 0",
    );
    assert_err(
        &format!("{BASE}server:\n  threads: 0\n"),
        "server.threads",
        "at least 1",
    );
}

#[test]
fn the_body_limit_is_at_most_64_mib() {
    assert_err(
        &format!("{BASE}limits:\n  max_request_body_bytes: 67108865\n"),
        "limits.max_request_body_bytes",
        "must be between 1 and 67108864, got 67108865",
    );
    assert!(from_yaml(&format!(
        "{BASE}limits:\n  max_request_body_bytes: 67108864\n"
    ))
    .is_ok());
}

#[test]
fn the_vault_key_is_an_env_or_file_reference() {
    for bad in ["secret:k", "env:", "c2VjcmV0"] {
        assert_err(
            &format!("{BASE}vault:\n  path: /v.json\n  key: \"{bad}\"\n"),
            "vault.key",
            "use env:NAME or file:PATH",
        );
    }
}

#[test]
fn the_separator_is_1_to_4_name_characters() {
    for bad in ["\"\"", ".", "_____"] {
        assert_err(
            &format!("{BASE}registry:\n  separator: {bad}\n"),
            "registry.separator",
            "1 to 4 of A-Z a-z 0-9 _ -",
        );
    }
}

#[test]
fn registry_intervals_are_positive() {
    for field in ["refresh_interval", "timeout"] {
        assert_err(
            &format!("{BASE}registry:\n  {field}: 0s\n"),
            "registry",
            "refresh_interval and timeout must be greater than 0",
        );
    }
}

#[test]
fn the_session_lifetime_is_positive() {
    assert_err(
        &format!("{BASE}sessions:\n  ttl: 0s\n"),
        "sessions.ttl",
        "must be greater than 0",
    );
}

#[test]
fn session_keys_are_references() {
    assert_err(
        &format!("{BASE}sessions:\n  key: c2VjcmV0\n"),
        "sessions.key",
        "invalid secret reference",
    );
    assert_err(
        &format!("{BASE}sessions:\n  key: \"env:K\"\n  previous_keys: [\"env:OLD\", old]\n"),
        "sessions.previous_keys[1]",
        "invalid secret reference",
    );
}

#[test]
fn previous_session_keys_need_a_current_one() {
    assert_err(
        &format!("{BASE}sessions:\n  previous_keys: [\"env:OLD\"]\n"),
        "sessions.previous_keys",
        "needs sessions.key",
    );
}

#[test]
fn vault_references_need_a_vault_section() {
    let upstream_auth = |auth: &str| {
        BASE.replace(
            "url: http://127.0.0.1:8000/mcp",
            &format!("url: http://127.0.0.1:8000/mcp\n    auth: {{ {auth} }}"),
        )
    };
    let jwt_secret = BASE.replace("    auth: none\n", "")
        + "auth:\n  resource: https://mcp.test\n  jwt:\n    issuers: [https://idp]\n    keys:\n      - { secret: \"secret:jwt\", algorithms: [HS256] }\n";
    for y in [
        upstream_auth("mode: static, secret: \"secret:gh\""),
        upstream_auth("mode: passthrough, fallback: \"secret:gh\""),
        format!("{BASE}sessions:\n  key: \"secret:sk\"\n"),
        jwt_secret,
    ] {
        assert_err(
            &y,
            "vault",
            "secret: references or per_user credentials need a vault section",
        );
    }
    // The same references from the environment need no vault.
    assert!(from_yaml(&upstream_auth("mode: static, secret: \"env:GH\"")).is_ok());
}

#[test]
fn per_principal_caps_are_between_1_and_their_per_replica_total() {
    let c = from_yaml(BASE).unwrap();
    assert_eq!(c.limits.max_parked_calls_per_principal, 32);
    assert_eq!(c.limits.max_streams_per_principal, 16);
    assert_eq!(c.limits.max_event_sessions_per_principal, 256);
    for (field, total) in [
        ("max_parked_calls_per_principal", 1024),
        ("max_streams_per_principal", 4096),
        ("max_event_sessions_per_principal", 10_000),
    ] {
        for bad in [0, total + 1] {
            assert_err(
                &format!("{BASE}limits:\n  {field}: {bad}\n"),
                &format!("limits.{field}"),
                &format!("must be between 1 and {total} (the per-replica total), got {bad}"),
            );
        }
        for good in [1, total] {
            assert!(
                from_yaml(&format!("{BASE}limits:\n  {field}: {good}\n")).is_ok(),
                "{field}: {good}"
            );
        }
    }
}
