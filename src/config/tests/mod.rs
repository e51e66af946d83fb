//! One test per validation rule, asserting on the path and a message substring: one file
//! per section, like the code, plus the file-level rules (parsing, unknown keys, required
//! sections) here.
//!
//! Every test goes through [`from_yaml`], never a section function: the field path an
//! operator sees is built across serde and the sections, so only the whole path proves it,
//! and the sections' signatures stay free to change. The shared fixture ([`BASE`]) and
//! assertion helpers live here.

mod admin;
mod auth;
mod listener;
mod principals;
mod upstream;
mod values;
mod virtual_server;

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

/// The error `yaml` is rejected with (panics if it is accepted).
pub(super) fn err(yaml: &str) -> ConfigError {
    from_yaml(yaml).expect_err("config should be rejected")
}

/// Asserts `yaml` is rejected at exactly `path`, with a message containing `needle`.
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
fn unknown_field_names_its_path() {
    let y = BASE.replace("    routes:", "    adress: x\n    routes:");
    let e = err(&y);
    assert_eq!(e.path, "listeners[0].adress");
    assert!(e.message.contains("unknown field `adress`"), "{e}");
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
fn yaml_syntax_error_is_one_line() {
    let e = err("listeners: [\n");
    assert!(!e.to_string().contains('\n'), "{e}");
}
