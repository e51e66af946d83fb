//! `approvals` and `virtual_servers[].require_approval`: which calls wait for an approver.

use std::time::Duration;

use super::{assert_err, BASE};
use crate::config::{from_yaml, RequireApproval};

fn with(approvals: &str) -> String {
    format!("{BASE}approvals:\n{approvals}")
}

const VSERVER: &str = "virtual_servers:\n  - name: ops\n    route: /v/ops/mcp\n";

#[test]
fn without_the_section_nothing_needs_an_approval() {
    let c = from_yaml(BASE).unwrap();
    let a = &c.approvals;
    assert!(!a.active());
    assert_eq!(a.ttl, Duration::from_secs(900));
    assert_eq!(a.retry_after, Duration::from_secs(10));
    assert_eq!(a.max_pending, 10_000);
    assert_eq!(a.approver_url, None, "no admin listener, no approver_url");
}

#[test]
fn rules_settings_and_the_default_url() {
    let yaml = format!(
        "{BASE}admin: {{address: '127.0.0.1:9090'}}\napprovals:\n  ttl: 1h\n  retry_after: 30s\n  max_pending: 5\n  rules:\n    - tools: [demo.delete_*, 'demo.drop']\n"
    );
    let c = from_yaml(&yaml).unwrap();
    let a = &c.approvals;
    assert!(a.active());
    assert!(a.rule_covers("demo", "delete_all"));
    assert!(a.rule_covers("demo", "drop"));
    assert!(!a.rule_covers("demo", "read"));
    assert_eq!(a.ttl, Duration::from_secs(3600));
    assert_eq!(a.retry_after, Duration::from_secs(30));
    assert_eq!(a.max_pending, 5);
    assert_eq!(
        a.url_for("abc").as_deref(),
        Some("http://127.0.0.1:9090/admin/approvals/abc")
    );
    let c = from_yaml(&with(
        "  approver_url: 'https://ops.example/a/{id}?from=gw'\n",
    ))
    .unwrap();
    assert_eq!(
        c.approvals.url_for("x1").as_deref(),
        Some("https://ops.example/a/x1?from=gw")
    );
}

#[test]
fn require_approval_on_a_virtual_server() {
    let c = from_yaml(&format!(
        "{BASE}{VSERVER}    require_approval: destructive\n"
    ))
    .unwrap();
    assert_eq!(
        c.virtual_servers[0].require_approval,
        RequireApproval::Destructive
    );
    assert!(c.approvals.active());
    let c = from_yaml(&format!("{BASE}{VSERVER}")).unwrap();
    assert_eq!(c.virtual_servers[0].require_approval, RequireApproval::None);
    assert!(!c.approvals.active());
    assert_err(
        &format!("{BASE}{VSERVER}    require_approval: always\n"),
        "virtual_servers[0].require_approval",
        "unknown variant",
    );
}

#[test]
fn the_version_changes_with_the_rules_and_not_with_hints() {
    let v = |yaml: &str| from_yaml(yaml).unwrap().approvals.version;
    let base = v(&with("  rules: [{tools: [demo.a]}]\n"));
    assert_eq!(
        base,
        v(&with("  retry_after: 20s\n  rules: [{tools: [demo.a]}]\n")),
        "the retry hint is not approval-relevant"
    );
    assert_ne!(base, v(&with("  rules: [{tools: [demo.b]}]\n")));
    assert_ne!(base, v(&with("  rules: [{tools: [demo.a, demo.b]}]\n")));
    assert_ne!(base, v(&with("  ttl: 1h\n  rules: [{tools: [demo.a]}]\n")));
    assert_ne!(
        v(&format!("{BASE}{VSERVER}")),
        v(&format!(
            "{BASE}{VSERVER}    require_approval: destructive\n"
        ))
    );
}

#[test]
fn ttl_is_between_a_second_and_a_week() {
    assert_err(&with("  ttl: 0s\n"), "approvals.ttl", "between 1s and 7d");
    assert_err(&with("  ttl: 8d\n"), "approvals.ttl", "between 1s and 7d");
    assert_err(&with("  ttl: soon\n"), "approvals.ttl", "");
}

#[test]
fn retry_after_is_at_least_a_second_and_at_most_the_ttl() {
    assert_err(
        &with("  retry_after: 0s\n"),
        "approvals.retry_after",
        "at least 1s",
    );
    assert_err(
        &with("  ttl: 10s\n  retry_after: 11s\n"),
        "approvals.retry_after",
        "at most approvals.ttl",
    );
}

#[test]
fn max_pending_is_bounded() {
    assert_err(
        &with("  max_pending: 0\n"),
        "approvals.max_pending",
        "between 1 and 1000000",
    );
    assert_err(
        &with("  max_pending: 1000001\n"),
        "approvals.max_pending",
        "between 1 and 1000000",
    );
}

#[test]
fn approver_url_needs_the_id_and_an_http_url() {
    for bad in [
        "https://ops.example/approvals",
        "ftp://ops.example/{id}",
        "not a url {id}",
    ] {
        assert_err(
            &with(&format!("  approver_url: '{bad}'\n")),
            "approvals.approver_url",
            "{id}",
        );
    }
}

#[test]
fn a_rule_names_tools_with_valid_patterns_of_known_upstreams() {
    assert_err(
        &with("  rules: [{tools: []}]\n"),
        "approvals.rules[0].tools",
        "name the tools",
    );
    assert_err(
        &with("  rules: [{tools: [demo.a, nodot]}]\n"),
        "approvals.rules[0].tools[1]",
        "<upstream>.<tool>",
    );
    assert_err(
        &with("  rules: [{tools: [demo.a]}, {tools: [other.*]}]\n"),
        "approvals.rules[1].tools[0]",
        "matches no configured upstream",
    );
    assert_err(
        &with("  rules: [{tools: [demo.a], who: [x]}]\n"),
        "approvals.rules[0].who",
        "unknown field",
    );
}

#[test]
fn unknown_keys_are_refused() {
    assert_err(&with("  tll: 1m\n"), "approvals.tll", "unknown field");
}
