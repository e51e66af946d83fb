//! The `virtual_servers` section (`config/virtual_server.rs`): one test per rule.

use super::{assert_err, BASE};
use crate::config::from_yaml;

/// [`BASE`] plus one virtual server `s` on `/s/mcp`; `body` adds its other keys (indented four).
fn with_vs(body: &str) -> String {
    format!("{BASE}virtual_servers:\n  - name: s\n    route: /s/mcp\n{body}")
}

#[test]
fn a_minimal_virtual_server_includes_every_upstream() {
    let c = from_yaml(&with_vs("")).unwrap();
    assert_eq!(c.virtual_servers[0].upstreams, vec![0]);
}

#[test]
fn names_are_valid_and_unique() {
    assert_err(
        &with_vs("").replace("name: s", "name: \"a b\""),
        "virtual_servers[0].name",
        "invalid or duplicate name \"a b\"",
    );
    let y = format!("{}  - name: s\n    route: /t/mcp\n", with_vs(""));
    assert_err(
        &y,
        "virtual_servers[1].name",
        "invalid or duplicate name \"s\"",
    );
}

#[test]
fn the_route_is_an_absolute_path_without_query() {
    for bad in ["s/mcp", "/s?x=1", "/s#f", "/a b"] {
        assert_err(
            &with_vs("").replace("route: /s/mcp", &format!("route: \"{bad}\"")),
            "virtual_servers[0].route",
            "must start with /",
        );
    }
}

#[test]
fn the_route_clashes_with_no_listener_route_or_other_virtual_server() {
    assert_err(
        &with_vs("").replace("route: /s/mcp", "route: /mcp"),
        "virtual_servers[0].route",
        "\"/mcp\" is already a route",
    );
    let y = format!("{}  - name: t\n    route: /s/mcp\n", with_vs(""));
    assert_err(
        &y,
        "virtual_servers[1].route",
        "\"/s/mcp\" is already a route",
    );
}

#[test]
fn tool_patterns_are_checked_where_they_are_written() {
    assert_err(
        &with_vs("    allow_tools: [demo]\n"),
        "virtual_servers[0].allow_tools[0]",
        "has no '.' between upstream and tool",
    );
    assert_err(
        &with_vs("    deny_tools: [\"demo.x\", \".x\"]\n"),
        "virtual_servers[0].deny_tools[1]",
        "empty upstream part",
    );
    assert_err(
        &with_vs("    rules:\n      - { groups: [g], allow_tools: [\"de/mo.x\"] }\n"),
        "virtual_servers[0].rules[0].allow_tools[0]",
        "in its upstream part",
    );
    assert_err(
        &with_vs("    rules:\n      - { groups: [g], deny_tools: [\"demo.\"] }\n"),
        "virtual_servers[0].rules[0].deny_tools[0]",
        "empty tool part",
    );
}

#[test]
fn prompt_and_resource_patterns_are_checked_where_they_are_written() {
    assert_err(
        &with_vs("    allow_prompts: [greet]\n"),
        "virtual_servers[0].allow_prompts[0]",
        "here: <upstream>.<prompt name>",
    );
    assert_err(
        &with_vs("    deny_prompts: [\"demo.x\", \".x\"]\n"),
        "virtual_servers[0].deny_prompts[1]",
        "empty upstream part",
    );
    assert_err(
        &with_vs("    allow_resources: [\"ui://*\"]\n"),
        "virtual_servers[0].allow_resources[0]",
        "here: <upstream>.<the upstream's own URI>, e.g. docs.file:///*, apps.ui://*",
    );
    assert_err(
        &with_vs("    deny_resources: [\"demo.\"]\n"),
        "virtual_servers[0].deny_resources[0]",
        "empty tool part",
    );
    assert_err(
        &with_vs("    rules:\n      - { groups: [g], allow_prompts: [\"de/mo.x\"] }\n"),
        "virtual_servers[0].rules[0].allow_prompts[0]",
        "in its upstream part",
    );
    assert_err(
        &with_vs("    rules:\n      - { groups: [g], deny_resources: [x] }\n"),
        "virtual_servers[0].rules[0].deny_resources[0]",
        "has no '.'",
    );
    let ok = with_vs(
        "    allow_prompts: [\"demo.*\"]\n    deny_resources: [\"demo.secret://*\"]\n    rules:\n      - { groups: [g], allow_resources: [\"demo.ui://*\"], deny_prompts: [demo.x] }\n",
    );
    let c = crate::config::from_yaml(&ok).unwrap();
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.items.prompts.allow.len(), 1);
    assert_eq!(vs.items.resources.deny[0].as_str(), "demo.secret://*");
    assert_eq!(vs.rules[0].items.resources.allow[0].as_str(), "demo.ui://*");
    assert_eq!(vs.rules[0].items.prompts.deny[0].as_str(), "demo.x");
}

#[test]
fn at_most_64_rules() {
    let rules = "      - { groups: [g] }\n".repeat(65);
    assert_err(
        &with_vs(&format!("    rules:\n{rules}")),
        "virtual_servers[0].rules",
        "65 rules; at most 64 per virtual server",
    );
    let rules = "      - { groups: [g] }\n".repeat(64);
    assert!(from_yaml(&with_vs(&format!("    rules:\n{rules}"))).is_ok());
}

/// `rules[]` spells out `subjects` / `groups` / `roles` instead of flattening a principals
/// struct: with `#[serde(flatten)]` a typo was reported at `rules[0]`, without the key.
#[test]
fn a_typo_inside_a_rule_names_the_key() {
    let y = with_vs("    rules:\n      - { subjects: [a], alow_tools: [\"demo.*\"] }\n");
    let e = super::err(&y);
    assert_eq!(e.path, "virtual_servers[0].rules[0].alow_tools", "{e}");
    assert!(
        e.message
            .contains("unknown field `alow_tools`, expected one of `subjects`"),
        "{e}"
    );
    assert_err(
        &with_vs("    rules:\n      - { subject: [a] }\n"),
        "virtual_servers[0].rules[0].subject",
        "unknown field `subject`",
    );
    assert_err(
        &with_vs("    rules:\n      - { groups: 5 }\n"),
        "virtual_servers[0].rules[0].groups",
        "expected a sequence",
    );
    let c = from_yaml(&with_vs(
        "    rules:\n      - { subjects: [a], groups: [g], roles: [r], allow_tools: [\"demo.*\"] }\n",
    ))
    .unwrap();
    let who = &c.virtual_servers[0].rules[0].who;
    assert_eq!(
        (
            who.subjects[0].subject.as_str(),
            &who.groups[..],
            &who.roles[..]
        ),
        ("a", &["g".to_string()][..], &["r".to_string()][..])
    );
}

#[test]
fn a_typo_inside_a_tool_override_names_the_key() {
    assert_err(
        &with_vs("    tools:\n      demo.x: { nmae: y }\n"),
        "virtual_servers[0].tools.demo.x.nmae",
        "unknown field `nmae`",
    );
}

#[test]
fn an_explicit_upstream_of_another_environment_is_refused() {
    assert_err(
        &with_vs("    environment: prod\n    allow_tools: [\"demo.*\"]\n"),
        "virtual_servers[0].allow_tools",
        "virtual server \"s\" is environment \"prod\" but upstream \"demo\" is untagged",
    );
    // A wildcard upstream part just skips upstreams of other environments.
    let c = from_yaml(&with_vs(
        "    environment: prod\n    allow_tools: [\"*.x\"]\n",
    ))
    .unwrap();
    assert!(c.virtual_servers[0].upstreams.is_empty());
}

#[test]
fn tool_override_keys_are_upstream_dot_tool_of_a_known_upstream() {
    assert_err(
        &with_vs("    tools:\n      demo: { name: x }\n"),
        "virtual_servers[0].tools.demo",
        "keys are upstream.tool",
    );
    assert_err(
        &with_vs("    tools:\n      nope.x: { name: x }\n"),
        "virtual_servers[0].tools.nope.x",
        "unknown upstream \"nope\"",
    );
}

#[test]
fn an_override_name_is_a_valid_exposed_name() {
    for bad in ["a.b", "\"\"", "\"x y\"", &"x".repeat(65)] {
        assert_err(
            &with_vs(&format!("    tools:\n      demo.x: {{ name: {bad} }}\n")),
            "virtual_servers[0].tools.demo.x.name",
            "must match ^[a-zA-Z0-9_-]{1,64}$",
        );
    }
}

#[test]
fn names_are_prefixed_or_the_upstreams_own() {
    use crate::config::Names;
    let c = from_yaml(&with_vs("")).unwrap();
    assert_eq!(c.virtual_servers[0].names, Names::Prefixed);
    let c = from_yaml(&with_vs("    names: upstream\n")).unwrap();
    assert_eq!(c.virtual_servers[0].names, Names::Upstream);
    assert_err(
        &with_vs("    names: own\n"),
        "virtual_servers[0].names",
        "unknown variant `own`, expected `prefixed` or `upstream`",
    );
}
