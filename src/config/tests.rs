//! One test per validation rule, asserting on the path and a message substring.

use std::time::Duration;

use super::*;

pub(super) const BASE: &str = r#"
listeners:
  - address: 127.0.0.1:8080
    auth: none
    routes:
      - path: /mcp
        upstream: demo
upstreams:
  - name: demo
    url: http://127.0.0.1:8000/mcp
"#;

/// Shared by every config test module (`access_tests`, `admin::tests`).
pub(super) fn err(yaml: &str) -> ConfigError {
    from_yaml(yaml).expect_err("config should be rejected")
}

pub(super) fn assert_err(yaml: &str, path: &str, needle: &str) {
    let e = err(yaml);
    assert_eq!(e.path, path, "{e}");
    assert!(
        e.message.contains(needle),
        "{e:?} should mention {needle:?}"
    );
}

#[test]
fn minimal_config_gets_defaults() {
    let c = from_yaml(BASE).unwrap();
    assert_eq!(c.server.threads, 1);
    assert_eq!(c.server.grace_period_seconds, 5);
    assert_eq!(c.limits.max_request_body_bytes, 1024 * 1024);
    assert_eq!(c.listeners[0].name, "127.0.0.1:8080");
    assert_eq!(c.listeners[0].routes[0].upstream, 0);
    assert!(matches!(c.listeners[0].hosts, HostPolicy::List(_)));
    let u = &c.upstreams[0];
    assert_eq!(
        (
            u.authority.as_str(),
            u.path_and_query.as_str(),
            u.port,
            u.tls
        ),
        ("127.0.0.1:8000", "/mcp", 8000, false)
    );
    assert_eq!(u.read_timeout, Duration::from_secs(60));
    assert!(c.admin.is_none());
}

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
fn unknown_field_names_its_path() {
    let y = BASE.replace("    routes:", "    adress: x\n    routes:");
    let e = err(&y);
    assert_eq!(e.path, "listeners[0].adress");
    assert!(e.message.contains("unknown field `adress`"), "{e}");
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
fn unknown_upstream_in_route() {
    assert_err(
        &BASE.replace("upstream: demo", "upstream: nope"),
        "listeners[0].routes[0].upstream",
        "unknown upstream \"nope\" (configured: demo)",
    );
}

#[test]
fn bad_listener_address() {
    assert_err(
        &BASE.replace("127.0.0.1:8080", "localhost"),
        "listeners[0].address",
        "expected IP:PORT",
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

#[test]
fn route_path_rules() {
    assert_err(
        &BASE.replace("path: /mcp", "path: mcp"),
        "listeners[0].routes[0].path",
        "must start with /",
    );
    let y = BASE.replace(
        "      - path: /mcp\n        upstream: demo",
        "      - path: /mcp\n        upstream: demo\n      - path: /mcp\n        upstream: demo",
    );
    assert_err(&y, "listeners[0].routes[1].path", "duplicate route path");
}

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
fn admin_address_must_differ_from_listeners() {
    assert_err(
        &format!("{BASE}admin:\n  address: 127.0.0.1:8080\n"),
        "admin.address",
        "also a listener address",
    );
}

#[test]
fn empty_sections_are_rejected() {
    assert_err(
        "listeners: []\nupstreams: []\n",
        "upstreams",
        "at least one upstream",
    );
    assert_err(
        "listeners: []\nupstreams:\n  - name: a\n    url: http://127.0.0.1:1/\n",
        "listeners",
        "at least one listener",
    );
    let e = err("upstreams: []\n");
    assert!(e.message.contains("missing field `listeners`"), "{e}");
}

#[test]
fn host_and_origin_lists() {
    let y = BASE.replace("    routes:", "    allowed_hosts: []\n    routes:");
    assert_err(&y, "listeners[0].allowed_hosts", "empty list");
    let y = BASE.replace("    routes:", "    allowed_hosts: [\"*\"]\n    routes:");
    assert_eq!(from_yaml(&y).unwrap().listeners[0].hosts, HostPolicy::Any);
    let y = BASE.replace(
        "    routes:",
        "    allowed_origins: [\"http://x.com/path\"]\n    routes:",
    );
    assert_err(&y, "listeners[0].allowed_origins[0]", "invalid origin");
    let y = BASE.replace(
        "    routes:",
        "    allowed_origins: [\"HTTP://Localhost:6274\"]\n    routes:",
    );
    assert_eq!(
        from_yaml(&y).unwrap().listeners[0].allowed_origins,
        vec!["http://localhost:6274"]
    );
}

#[test]
fn non_loopback_listener_allows_any_host_by_default() {
    let c = from_yaml(&BASE.replace("127.0.0.1:8080", "0.0.0.0:8080")).unwrap();
    assert_eq!(c.listeners[0].hosts, HostPolicy::Any);
}

#[test]
fn yaml_syntax_error_is_one_line() {
    let e = err("listeners: [\n");
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// Two JWT issuers, an API key and a virtual server whose access list is `{ACCESS}`.
fn two_issuers(access: &str, jwt_extra: &str) -> String {
    format!(
        r#"
listeners:
  - address: 127.0.0.1:8080
    routes:
      - path: /mcp
        upstream: demo
upstreams:
  - name: demo
    url: http://127.0.0.1:8000/mcp
auth:
  resource: https://mcp.test
  api_keys:
    - {{ sha256: "{h}", subject: bot }}
  jwt:
    issuers: [https://idp-a, https://idp-b]
    {jwt_extra}
    keys:
      - {{ secret: "env:A", issuer: https://idp-a, algorithms: [HS256] }}
      - {{ secret: "env:B", issuer: https://idp-b, algorithms: [HS256] }}
virtual_servers:
  - name: s
    route: /s/mcp
    access: {access}
"#,
        h = "0".repeat(64)
    )
}

#[test]
fn with_several_issuers_a_bare_subject_is_refused() {
    assert_err(
        &two_issuers(
            "{ subjects: [https://idp-a#alice, alice] }",
            "group_issuers: []",
        ),
        "virtual_servers[0].access.subjects[1]",
        "does not say which issuer",
    );
}

#[test]
fn a_qualified_subject_must_name_a_configured_issuer() {
    assert_err(
        &two_issuers("{ subjects: [https://idp-c#alice] }", "group_issuers: []"),
        "virtual_servers[0].access.subjects[0]",
        "\"https://idp-c\" is not one of auth.jwt.issuers",
    );
    assert_err(
        &two_issuers("{ subjects: [https://idp-a#] }", "group_issuers: []"),
        "virtual_servers[0].access.subjects[0]",
        "empty subject",
    );
    let c = from_yaml(&two_issuers(
        "{ subjects: [https://idp-a#alice, api-key#bot] }",
        "group_issuers: [https://idp-a]",
    ))
    .unwrap();
    let access = &c.virtual_servers[0].access;
    let who = |issuer, subject| Caller {
        issuer,
        subject,
        groups: &[],
        roles: &[],
    };
    assert!(access.matches(&who("https://idp-a", "alice")));
    assert!(!access.matches(&who("https://idp-b", "alice")), "B's alice");
    assert!(access.matches(&who(API_KEY_ISSUER, "bot")));
    assert!(!access.matches(&who("https://idp-a", "bot")));
    assert_eq!(access.subjects[0].to_string(), "https://idp-a#alice");
    assert!(c.auth.as_ref().unwrap().qualified_subjects());
}

#[test]
fn rules_subjects_are_checked_too() {
    let y = two_issuers("{}", "group_issuers: []").replace(
        "    access: {}",
        "    rules:\n      - { subjects: [alice], allow_tools: [\"demo.*\"] }",
    );
    assert_err(
        &y,
        "virtual_servers[0].rules[0].subjects[0]",
        "write ISSUER#SUBJECT",
    );
}

#[test]
fn with_one_issuer_a_bare_subject_names_it_and_api_keys() {
    let y = two_issuers("{ subjects: [alice] }", "")
        .replace(
            "issuers: [https://idp-a, https://idp-b]",
            "issuers: [https://idp-a]",
        )
        .replace(
            "      - { secret: \"env:B\", issuer: https://idp-b, algorithms: [HS256] }\n",
            "",
        );
    let c = from_yaml(&y).unwrap();
    let jwt = c.auth.as_ref().unwrap().jwt.as_ref().unwrap();
    assert_eq!(
        jwt.group_issuers,
        ["https://idp-a"],
        "default: the one issuer"
    );
    assert!(!c.auth.as_ref().unwrap().qualified_subjects());
    let who = |issuer| Caller {
        issuer,
        subject: "alice",
        groups: &[],
        roles: &[],
    };
    let access = &c.virtual_servers[0].access;
    assert!(access.matches(&who("https://idp-a")) && access.matches(&who(API_KEY_ISSUER)));
    assert!(
        !access.matches(&Caller::ANONYMOUS),
        "an anonymous caller is nobody's subject"
    );
}

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
