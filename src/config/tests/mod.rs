//! One test per validation rule, asserting on the path and a message substring: one file
//! per section, like the code, plus the file-level rules (parsing, unknown keys, required
//! sections) here.
//!
//! Every test goes through [`from_yaml`], never a section function: the field path an
//! operator sees is built across serde and the sections, so only the whole path proves it,
//! and the sections' signatures stay free to change. The shared fixture ([`BASE`]) and
//! assertion helpers live here.

mod admin;
mod approvals;
mod audit;
mod auth;
mod listener;
mod policies;
pub(super) mod principals;
mod quotas;
mod redis;
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

#[test]
fn a_value_of_the_wrong_type_names_its_path() {
    let y = BASE.replace(
        "url: http://127.0.0.1:8000/mcp",
        "url: http://127.0.0.1:8000/mcp\n    read_timeout: soon",
    );
    assert_err(&y, "upstreams[0].read_timeout", "expected a duration");
}

#[test]
fn an_unreadable_file_names_it() {
    let e = load(Path::new("/nonexistent/gateway.yaml")).expect_err("no such file");
    assert_eq!(e.path, "");
    assert!(
        e.message
            .contains("cannot read config file /nonexistent/gateway.yaml"),
        "{e}"
    );
}

/// Every struct of the file refuses a key it does not know, at the key's own path, however
/// deeply nested: a typo never silently falls back to a default.
#[test]
fn a_typo_at_any_depth_names_its_path() {
    let auth = "auth:\n  resource: https://mcp.test\n  jwt:\n    issuers: [https://idp]\n    keys:\n      - { jwks_file: /k.json, algorithms: [RS256] }\n";
    let with_upstream = |extra: &str| {
        BASE.replace(
            "url: http://127.0.0.1:8000/mcp",
            &format!("url: http://127.0.0.1:8000/mcp\n    {extra}"),
        )
    };
    let cases = [
        (format!("{BASE}server:\n  thread: 2\n"), "server.thread"),
        (format!("{BASE}limits:\n  max_body: 2\n"), "limits.max_body"),
        (format!("{BASE}registry:\n  separater: _\n"), "registry.separater"),
        (format!("{BASE}sessions:\n  kye: \"env:K\"\n"), "sessions.kye"),
        (format!("{BASE}vault:\n  path: /v\n  key: \"env:K\"\n  disable: []\n"), "vault.disable"),
        (with_upstream("auth: { mdoe: none }"), "upstreams[0].auth.mdoe"),
        (
            with_upstream("auth: { mode: per_user, credential: gh, oauth: { token_url: \"https://i/t\", client_id: c, refresh: 1m } }"),
            "upstreams[0].auth.oauth.refresh",
        ),
        (
            BASE.replace("        upstream: demo", "        upstream: demo\n        upsteam: demo"),
            "listeners[0].routes[0].upsteam",
        ),
        (format!("{BASE}{}", auth.replace("issuers:", "isuers: []\n    issuers:")), "auth.jwt.isuers"),
        (format!("{BASE}{}", auth.replace("algorithms:", "algoritms: [], algorithms:")), "auth.jwt.keys[0].algoritms"),
        (format!("{BASE}{auth}    claims: {{ subjet: sub }}\n"), "auth.jwt.claims.subjet"),
        (format!("{BASE}{auth}  api_keys:\n    - {{ sha256: x, subject: a, scope: [] }}\n"), "auth.api_keys[0].scope"),
        (format!("{BASE}admin:\n  address: 127.0.0.1:9090\n  auth:\n    tokens:\n      - {{ nmae: a }}\n"), "admin.auth.tokens[0].nmae"),
        (format!("{BASE}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n      write: {{ subjets: [a] }}\n"), "admin.auth.jwt.write.subjets"),
        (format!("{BASE}virtual_servers:\n  - {{ name: s, route: /s, acess: {{}} }}\n"), "virtual_servers[0].acess"),
        (format!("{BASE}virtual_servers:\n  - {{ name: s, route: /s, rules: [{{ role: [r] }}] }}\n"), "virtual_servers[0].rules[0].role"),
    ];
    for (yaml, path) in cases {
        let e = err(&yaml);
        assert_eq!(e.path, path, "{e}");
        assert!(e.message.starts_with("unknown field"), "{e}");
    }
}
