//! The `auth` section (`config/auth.rs`): one test per rule.

use super::assert_err;
use super::principals::two_issuers;

#[test]
fn group_issuers_is_required_with_several_issuers_and_must_name_them() {
    assert_err(
        &two_issuers("{}", ""),
        "auth.jwt.group_issuers",
        "required when auth.jwt.issuers lists more than one issuer",
    );
    assert_err(
        &two_issuers("{}", "group_issuers: [https://idp-a, https://idp-x]"),
        "auth.jwt.group_issuers[1]",
        "not one of auth.jwt.issuers",
    );
}

#[test]
fn an_issuer_cannot_contain_a_hash_or_be_api_key() {
    for bad in ["https://idp-a#x", "api-key"] {
        let y = two_issuers("{}", "group_issuers: []").replace(
            "issuers: [https://idp-a, https://idp-b]",
            &format!("issuers: [https://idp-a, \"{bad}\"]"),
        );
        assert_err(&y, "auth.jwt.issuers[1]", "contain no '#'");
    }
}

/// An authenticating listener and an `auth` section: `resource` plus `{extra}` (lines
/// indented two spaces).
fn with_auth(extra: &str) -> String {
    format!(
        r#"
listeners:
  - address: 127.0.0.1:8080
    routes: [{{ path: /mcp, upstream: demo }}]
upstreams:
  - {{ name: demo, url: "http://127.0.0.1:8000/mcp" }}
auth:
  resource: https://mcp.example.com
{extra}
"#
    )
}

/// `auth.jwt` with one issuer and the key `{key}` (a flow mapping).
fn with_key(key: &str) -> String {
    with_auth(&format!(
        "  jwt:\n    issuers: [https://idp]\n    keys:\n      - {key}"
    ))
}

const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn the_resource_is_an_http_url_without_query() {
    assert_err(
        &with_auth("  api_keys: []").replace("https://mcp.example.com", "\"not a url\""),
        "auth.resource",
        "invalid URL \"not a url\"",
    );
    for bad in ["ftp://mcp.example.com", "https://mcp.example.com/?x=1"] {
        assert_err(
            &with_auth("").replace("https://mcp.example.com", bad),
            "auth.resource",
            "expected http(s)://host[:port][/path]",
        );
    }
}

#[test]
fn the_api_key_header_is_a_header_name() {
    assert_err(
        &with_auth("  api_key_header: \"x y\""),
        "auth.api_key_header",
        "invalid header name",
    );
}

#[test]
fn the_token_cache_holds_at_least_one_entry() {
    assert_err(
        &with_auth("  cache_max_entries: 0"),
        "auth.cache_max_entries",
        "must be at least 1",
    );
}

#[test]
fn an_api_key_is_a_sha256_in_hex() {
    for bad in ["abc", &"g".repeat(64)] {
        assert_err(
            &with_auth(&format!(
                "  api_keys:\n    - {{ sha256: \"{bad}\", subject: a }}"
            )),
            "auth.api_keys[0].sha256",
            "expected 64 hex characters",
        );
    }
}

#[test]
fn an_api_key_has_a_subject() {
    assert_err(
        &with_auth(&format!(
            "  api_keys:\n    - {{ sha256: \"{KEY}\", subject: \"\" }}"
        )),
        "auth.api_keys[0].subject",
        "must not be empty",
    );
}

#[test]
fn an_api_key_is_configured_once() {
    assert_err(
        &with_auth(&format!(
            "  api_keys:\n    - {{ sha256: \"{KEY}\", subject: a }}\n    - {{ sha256: \"{KEY}\", subject: b }}"
        )),
        "auth.api_keys[1].sha256",
        "duplicate API key",
    );
}

#[test]
fn auth_needs_jwt_or_api_keys() {
    assert_err(
        &with_auth(""),
        "auth",
        "configure jwt and/or api_keys, or set auth: none on the listeners",
    );
}

#[test]
fn jwt_needs_an_issuer() {
    assert_err(
        &with_auth("  jwt:\n    issuers: []\n    keys: []"),
        "auth.jwt.issuers",
        "at least one issuer is required",
    );
}

#[test]
fn audiences_is_omitted_rather_than_empty() {
    assert_err(
        &with_auth("  jwt:\n    issuers: [https://idp]\n    audiences: []\n    keys: []"),
        "auth.jwt.audiences",
        "empty list; omit it",
    );
}

#[test]
fn jwt_needs_a_key() {
    assert_err(
        &with_auth("  jwt:\n    issuers: [https://idp]\n    keys: []"),
        "auth.jwt.keys",
        "at least one key source is required",
    );
}

#[test]
fn a_key_has_exactly_one_source() {
    for key in [
        "{ algorithms: [RS256] }",
        "{ jwks_file: /k.json, pem: \"env:P\", algorithms: [RS256] }",
    ] {
        assert_err(
            &with_key(key),
            "auth.jwt.keys[0]",
            "set exactly one of jwks_file, jwks_url, secret, pem",
        );
    }
}

#[test]
fn a_key_lists_its_algorithms() {
    assert_err(
        &with_key("{ jwks_file: /k.json, algorithms: [] }"),
        "auth.jwt.keys[0].algorithms",
        "list the algorithms this key may verify",
    );
}

#[test]
fn algorithms_are_known_names() {
    assert_err(
        &with_key("{ jwks_file: /k.json, algorithms: [RS256, none] }"),
        "auth.jwt.keys[0].algorithms",
        "unknown algorithm \"none\"",
    );
}

#[test]
fn hmac_algorithms_go_with_secrets_only() {
    for key in [
        "{ secret: \"env:S\", algorithms: [HS256, RS256] }",
        "{ jwks_file: /k.json, algorithms: [HS256] }",
    ] {
        assert_err(
            &with_key(key),
            "auth.jwt.keys[0].algorithms",
            "HS* algorithms go only with a `secret` key",
        );
    }
}

#[test]
fn a_jwks_url_uses_https_off_loopback() {
    assert_err(
        &with_key("{ jwks_url: \"http://idp.example.com/jwks\", algorithms: [RS256] }"),
        "auth.jwt.keys[0].jwks_url",
        "must use https (plain http only on loopback)",
    );
    assert!(super::super::from_yaml(&with_key(
        "{ jwks_url: \"http://127.0.0.1:9/jwks\", algorithms: [RS256] }"
    ))
    .is_ok());
}

#[test]
fn secret_and_pem_keys_are_references() {
    assert_err(
        &with_key("{ secret: hunter2, algorithms: [HS256] }"),
        "auth.jwt.keys[0].secret",
        "invalid secret reference",
    );
    assert_err(
        &with_key("{ pem: \"-----BEGIN\", algorithms: [RS256] }"),
        "auth.jwt.keys[0].pem",
        "invalid secret reference",
    );
}

#[test]
fn key_refresh_intervals_are_positive() {
    for field in ["refresh_interval", "min_refresh_interval"] {
        assert_err(
            &with_key(&format!(
                "{{ jwks_file: /k.json, algorithms: [RS256], {field}: 0s }}"
            )),
            "auth.jwt.keys[0].refresh_interval",
            "must be greater than 0",
        );
    }
}

#[test]
fn a_key_issuer_is_configured_and_required_with_several() {
    assert_err(
        &with_key("{ jwks_file: /k.json, issuer: https://other, algorithms: [RS256] }"),
        "auth.jwt.keys[0].issuer",
        "\"https://other\" is not one of auth.jwt.issuers",
    );
    assert_err(
        &with_auth(
            "  jwt:\n    issuers: [https://a, https://b]\n    group_issuers: []\n    keys:\n      - { jwks_file: /k.json, algorithms: [RS256] }",
        ),
        "auth.jwt.keys[0].issuer",
        "required when auth.jwt.issuers lists more than one issuer",
    );
}
