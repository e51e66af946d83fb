//! The `upstreams` section (`config/upstream.rs`): one test per rule.

use std::time::Duration;

use super::{assert_err, err, BASE};
use crate::config::from_yaml;

#[test]
fn humantime_durations_and_https_default_port() {
    let y = BASE.replace(
        "url: http://127.0.0.1:8000/mcp",
        "url: https://mcp.example.com/v1/mcp?x=1\n    connect_timeout: 250ms\n    read_timeout: 2m",
    );
    let c = from_yaml(&y).unwrap();
    let u = &c.upstreams[0];
    assert_eq!(u.connect_timeout, Duration::from_millis(250));
    assert_eq!(u.read_timeout, Duration::from_secs(120));
    assert_eq!((u.port, u.tls), (443, true));
    assert_eq!(u.authority, "mcp.example.com");
    assert_eq!(u.path_and_query, "/v1/mcp?x=1");
}

#[test]
fn bad_url_scheme() {
    let y = BASE.replace("http://127.0.0.1:8000/mcp", "htp://x");
    let e = err(&y);
    assert_eq!(
        e.to_string(),
        r#"upstreams[0].url: invalid URL "htp://x": scheme must be http or https"#
    );
}

#[test]
fn unparsable_url_and_credentials_in_url() {
    assert_err(
        &BASE.replace("http://127.0.0.1:8000/mcp", "not a url"),
        "upstreams[0].url",
        "invalid URL",
    );
    assert_err(
        &BASE.replace("http://127.0.0.1:8000/mcp", "http://u:p@h/mcp"),
        "upstreams[0].url",
        "credentials",
    );
}

#[test]
fn duplicate_upstream_names() {
    let y = format!("{BASE}  - name: demo\n    url: http://127.0.0.1:9/mcp\n");
    assert_err(&y, "upstreams[1].name", "duplicate upstream name");
}

#[test]
fn invalid_upstream_name() {
    let y = BASE
        .replace("name: demo", "name: \"a b\"")
        .replace("upstream: demo", "upstream: \"a b\"");
    assert_err(&y, "upstreams[0].name", "invalid name");
}

/// [`BASE`] with `{extra}` added to the upstream (lines indented four spaces).
fn with_upstream(extra: &str) -> String {
    BASE.replace(
        "url: http://127.0.0.1:8000/mcp",
        &format!("url: http://127.0.0.1:8000/mcp\n{extra}"),
    )
}

/// [`BASE`] whose upstream has `auth: { MAPPING }`.
fn with_auth(mapping: &str) -> String {
    with_upstream(&format!("    auth: {{ {mapping} }}"))
}

#[test]
fn a_url_needs_a_host_and_no_fragment() {
    // The URL parser itself refuses an http(s) URL without a host ("empty host").
    assert_err(
        &BASE.replace("http://127.0.0.1:8000/mcp", "\"http://:8000/mcp\""),
        "upstreams[0].url",
        "empty host",
    );
    assert_err(
        &BASE.replace("http://127.0.0.1:8000/mcp", "http://h/mcp#x"),
        "upstreams[0].url",
        "a fragment is not allowed",
    );
}

#[test]
fn every_timeout_must_be_positive() {
    for field in [
        "connect_timeout",
        "read_timeout",
        "stream_idle_timeout",
        "write_timeout",
        "idle_timeout",
    ] {
        assert_err(
            &with_upstream(&format!("    {field}: 0s")),
            &format!("upstreams[0].{field}"),
            "must be greater than 0",
        );
    }
}

#[test]
fn strip_headers_are_header_names() {
    assert_err(
        &with_upstream("    strip_headers: [x-ok, \"bad header\"]"),
        "upstreams[0].strip_headers[1]",
        "invalid header name \"bad header\"",
    );
}

#[test]
fn the_credential_header_is_a_header_name() {
    assert_err(
        &with_auth("mode: passthrough, header: \"a:b\""),
        "upstreams[0].auth.header",
        "invalid header name",
    );
}

#[test]
fn every_secret_is_a_reference() {
    for field in ["secret", "fallback", "signing_key", "client_secret"] {
        assert_err(
            &with_auth(&format!("mode: passthrough, {field}: hunter2")),
            &format!("upstreams[0].auth.{field}"),
            "invalid secret reference",
        );
    }
    assert_err(
        &with_auth(
            "mode: per_user, credential: gh, oauth: { token_url: \"https://idp/t\", client_id: c, client_secret: \"env:\" }",
        ),
        "upstreams[0].auth.oauth.client_secret",
        "invalid secret reference",
    );
}

#[test]
fn each_mode_needs_its_credential() {
    for (mode, field) in [
        ("static", "secret"),
        ("per_user", "credential"),
        ("signed_identity", "signing_key"),
        ("token_exchange", "token_url"),
    ] {
        assert_err(
            &with_auth(&format!("mode: {mode}")),
            &format!("upstreams[0].auth.{field}"),
            &format!("required for mode {mode}"),
        );
    }
}

#[test]
fn the_identity_ttl_must_be_positive() {
    assert_err(
        &with_auth("mode: signed_identity, signing_key: \"env:K\", ttl: 0s"),
        "upstreams[0].auth.ttl",
        "must be greater than 0",
    );
}

#[test]
fn the_token_url_uses_https_off_loopback_and_has_no_credentials() {
    assert_err(
        &with_auth("mode: token_exchange, token_url: \"http://idp.example.com/token\""),
        "upstreams[0].auth.token_url",
        "must use https (plain http only on loopback)",
    );
    assert_err(
        &with_auth("mode: token_exchange, token_url: \"https://u:p@idp.example.com/token\""),
        "upstreams[0].auth.token_url",
        "credentials in the URL are not allowed",
    );
    assert_err(
        &with_auth("mode: token_exchange, token_url: \"ftp://idp/token\""),
        "upstreams[0].auth.token_url",
        "expected http(s)://host/...",
    );
}

#[test]
fn oauth_refresh_is_only_for_per_user() {
    assert_err(
        &with_auth(
            "mode: static, secret: \"env:S\", oauth: { token_url: \"https://idp/t\", client_id: c }",
        ),
        "upstreams[0].auth.oauth",
        "only used with mode per_user",
    );
}

#[test]
fn the_oauth_token_url_is_checked_like_the_token_url() {
    assert_err(
        &with_auth(
            "mode: per_user, credential: gh, oauth: { token_url: \"http://idp.example.com/t\", client_id: c }",
        ),
        "upstreams[0].auth.oauth.token_url",
        "must use https",
    );
}

#[test]
fn a_per_user_credential_is_a_vault_name_without_a_slash() {
    for bad in ["\"\"", "gh/alice"] {
        assert_err(
            &with_auth(&format!("mode: per_user, credential: {bad}")),
            "upstreams[0].auth.credential",
            "a vault name without '/'",
        );
    }
}
