//! The `listeners` section (`config/listener.rs`): one test per rule, including which
//! listeners serve which virtual servers, and anonymous access to them
//! (`listeners[].virtual_servers`, `virtual_servers[].access.anonymous`).

use super::*;

/// Listener 0 authenticates (API keys), listener 1 is `auth: none`. `{L0}` / `{L1}` are extra
/// listener keys, `{VS}` the virtual servers.
const TEMPLATE: &str = r#"
listeners:
  - address: 127.0.0.1:8080
    routes: [{ path: /mcp, upstream: demo }]
{L0}
  - address: 127.0.0.1:8081
    auth: none
    routes: [{ path: /mcp, upstream: demo }]
{L1}
upstreams:
  - { name: demo, url: "http://127.0.0.1:8000/mcp" }
auth:
  resource: https://mcp.example.com
  api_keys:
    - { sha256: "0000000000000000000000000000000000000000000000000000000000000000", subject: alice }
virtual_servers:
{VS}
"#;

fn yaml(l0: &str, l1: &str, vs: &str) -> String {
    TEMPLATE
        .replace("{L0}", l0)
        .replace("{L1}", l1)
        .replace("{VS}", vs)
}

const TEAM: &str = "  - { name: team, route: /v/team/mcp, access: { groups: [eng] } }";
const OPEN: &str = "  - { name: open, route: /v/open/mcp, access: { anonymous: true } }";

use super::assert_err;

#[test]
fn default_is_every_server_on_authenticating_listeners_and_none_without_auth() {
    let c = from_yaml(&yaml("", "", TEAM)).unwrap();
    assert_eq!(c.listeners[0].virtual_servers, vec![0]);
    assert!(c.listeners[1].virtual_servers.is_empty());
    assert!(!c.virtual_servers[0].anonymous);
}

#[test]
fn an_anonymous_server_is_served_where_listed() {
    let vs = format!("{TEAM}\n{OPEN}");
    let c = from_yaml(&yaml("", "    virtual_servers: [open]", &vs)).unwrap();
    assert_eq!(c.listeners[0].virtual_servers, vec![0, 1]);
    assert_eq!(c.listeners[1].virtual_servers, vec![1]);
    assert!(c.virtual_servers[1].anonymous);
    assert!(c.virtual_servers[1].access.is_everyone());
}

#[test]
fn an_authenticating_listener_may_serve_a_subset() {
    let vs = format!("{TEAM}\n{OPEN}");
    let c = from_yaml(&yaml(
        "    virtual_servers: [team]",
        "    virtual_servers: [open]",
        &vs,
    ))
    .unwrap();
    assert_eq!(c.listeners[0].virtual_servers, vec![0]);
    let c = from_yaml(&yaml("    virtual_servers: []", "", TEAM)).unwrap();
    assert!(c.listeners[0].virtual_servers.is_empty());
}

#[test]
fn listing_a_server_without_anonymous_on_an_auth_none_listener_is_refused() {
    assert_err(
        &yaml("", "    virtual_servers: [team]", TEAM),
        "listeners[1].virtual_servers[0]",
        "set virtual_servers[0].access.anonymous: true",
    );
}

#[test]
fn anonymous_without_an_auth_none_listener_serving_it_is_refused() {
    // Not listed by the auth: none listener (its default is none).
    assert_err(
        &yaml("", "", OPEN),
        "virtual_servers[0].access.anonymous",
        "no listener with auth: none serves \"open\"",
    );
}

#[test]
fn anonymous_with_subjects_groups_or_roles_is_refused() {
    for who in ["subjects: [alice]", "groups: [eng]", "roles: [admin]"] {
        let vs = format!(
            "  - {{ name: open, route: /v/open/mcp, access: {{ anonymous: true, {who} }} }}"
        );
        assert_err(
            &yaml("", "    virtual_servers: [open]", &vs),
            "virtual_servers[0].access",
            "use either anonymous or subjects/groups/roles",
        );
    }
}

#[test]
fn unknown_or_repeated_names_in_a_listener_list_are_refused() {
    assert_err(
        &yaml("    virtual_servers: [team, nope]", "", TEAM),
        "listeners[0].virtual_servers[1]",
        "unknown virtual server \"nope\" (configured: team)",
    );
    assert_err(
        &yaml("    virtual_servers: [team, team]", "", TEAM),
        "listeners[0].virtual_servers[1]",
        "listed twice",
    );
}

#[test]
fn unknown_access_keys_are_refused() {
    let vs = "  - { name: open, route: /v/open/mcp, access: { anonymus: true } }";
    let e = from_yaml(&yaml("", "", vs)).expect_err("typo must be refused");
    assert!(e.path.starts_with("virtual_servers[0].access"), "{e}");
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
fn two_listeners_cannot_share_an_address() {
    let y = BASE.replace(
        "upstreams:",
        "  - address: 127.0.0.1:8080\n    auth: none\n    routes: [{ path: /mcp, upstream: demo }]\nupstreams:",
    );
    assert_err(
        &y,
        "listeners[1].address",
        "127.0.0.1:8080 is used by another listener",
    );
}

#[test]
fn a_listener_has_a_route() {
    let y = BASE.replace(
        "    routes:\n      - path: /mcp\n        upstream: demo\n",
        "    routes: []\n",
    );
    assert_err(&y, "listeners[0].routes", "at least one route is required");
}

#[test]
fn credentials_that_need_a_principal_need_an_authenticating_listener() {
    let y = BASE.replace(
        "url: http://127.0.0.1:8000/mcp",
        "url: http://127.0.0.1:8000/mcp\n    auth: { mode: signed_identity, signing_key: \"env:K\" }",
    );
    assert_err(
        &y,
        "listeners[0].routes[0].upstream",
        "upstream \"demo\" uses signed_identity credentials, which need an authenticated caller, but this listener has auth: none",
    );
}

#[test]
fn an_authenticating_listener_needs_an_auth_section() {
    assert_err(
        &BASE.replace("    auth: none\n", ""),
        "listeners[0].auth",
        "authentication is required by default but there is no auth section",
    );
}

#[test]
fn allowed_hosts_are_names_with_optional_ports() {
    for bad in ["", "a/b", "user@h", "::1", "a b"] {
        let y = BASE.replace(
            "    routes:",
            &format!("    allowed_hosts: [localhost, \"{bad}\"]\n    routes:"),
        );
        assert_err(
            &y,
            "listeners[0].allowed_hosts[1]",
            "expected name, name:port or [v6]:port",
        );
    }
    let y = BASE.replace(
        "    routes:",
        "    allowed_hosts: [\"MCP.example.com:8080\", \"[::1]:8080\"]\n    routes:",
    );
    assert_eq!(
        from_yaml(&y).unwrap().listeners[0].hosts,
        HostPolicy::List(vec!["mcp.example.com:8080".into(), "[::1]:8080".into()])
    );
}
