//! One test per validation rule, asserting on the path and a message substring.

use super::*;

const BASE: &str = r#"
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

fn err(yaml: &str) -> ConfigError {
    from_yaml(yaml).expect_err("config should be rejected")
}

fn assert_err(yaml: &str, path: &str, needle: &str) {
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
