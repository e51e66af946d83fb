//! `policies[]`: argument rules.

use super::{assert_err, BASE};
use crate::config::from_yaml;

fn with(policy: &str) -> String {
    format!("{BASE}policies:\n{policy}")
}

#[test]
fn a_rule_is_validated_into_compiled_checks() {
    let c = from_yaml(&with(
        r#"  - id: repo-in-acme
    tools: ["demo.*"]
    arguments:
      repo: { pattern: "^acme/", max_length: 100 }
      limit: { min: 1, max: 100, type: integer }
      /options/branch: { enum: [main, dev] }
      path: { prefix: /srv/data/ }
      mode: { deny: [force] }
    required: [repo]
    forbidden: [admin]
"#,
    ))
    .unwrap();
    let r = &c.policies[0];
    assert_eq!(r.id, "repo-in-acme");
    assert_eq!(r.checks.len(), 8);
    assert!(r.applies_to("demo", "anything"));
}

#[test]
fn ids_are_names_and_unique() {
    let rule = |id: &str| format!("  - {{ id: {id}, tools: [demo.x], required: [a] }}\n");
    assert_err(
        &with(&rule("\"a b\"")),
        "policies[0].id",
        "invalid or duplicate id",
    );
    assert_err(
        &with(&format!("{}{}", rule("r"), rule("r"))),
        "policies[1].id",
        "invalid or duplicate id",
    );
}

#[test]
fn tools_are_required_well_formed_and_match_an_upstream() {
    assert_err(
        &with("  - { id: r, tools: [], required: [a] }\n"),
        "policies[0].tools",
        "name the tools",
    );
    assert_err(
        &with("  - { id: r, tools: [nodot], required: [a] }\n"),
        "policies[0].tools[0]",
        "",
    );
    assert_err(
        &with("  - { id: r, tools: [crm.x], required: [a] }\n"),
        "policies[0].tools[0]",
        "matches no configured upstream",
    );
}

#[test]
fn a_rule_must_check_something() {
    assert_err(
        &with("  - { id: r, tools: [demo.x] }\n"),
        "policies[0]",
        "checks nothing",
    );
    assert_err(
        &with("  - { id: r, tools: [demo.x], arguments: { a: {} } }\n"),
        "policies[0].arguments.a",
        "no check",
    );
}

#[test]
fn argument_paths_are_checked() {
    assert_err(
        &with("  - { id: r, tools: [demo.x], required: [\"a..b\"] }\n"),
        "policies[0].required[0]",
        "not an argument path",
    );
    assert_err(
        &with("  - { id: r, tools: [demo.x], forbidden: [\"/a//b\"] }\n"),
        "policies[0].forbidden[0]",
        "not an argument path",
    );
}

#[test]
fn each_check_is_validated_at_its_path() {
    let check = |c: &str| format!("  - {{ id: r, tools: [demo.x], arguments: {{ a: {c} }} }}\n");
    assert_err(
        &with(&check("{ pattern: \"(\" }")),
        "policies[0].arguments.a.pattern",
        "invalid regular expression",
    );
    assert_err(
        &with(&check("{ min: 5, max: 1 }")),
        "policies[0].arguments.a.min",
        "greater than max",
    );
    assert_err(
        &with(&check("{ max: .nan }")),
        "policies[0].arguments.a.max",
        "finite",
    );
    assert_err(
        &with(&check("{ enum: [] }")),
        "policies[0].arguments.a.enum",
        "at least one value",
    );
    assert_err(
        &with(&check("{ prefix: /srv/../etc }")),
        "policies[0].arguments.a.prefix",
        "without . or ..",
    );
    assert_err(
        &with(&check("{ type: text }")),
        "policies[0].arguments.a.type",
        "use string, number",
    );
}

#[test]
fn a_typo_inside_a_check_names_the_key() {
    assert_err(
        &with("  - { id: r, tools: [demo.x], arguments: { a: { patern: x } } }\n"),
        "policies[0].arguments.a.patern",
        "unknown field",
    );
}

#[test]
fn rules_can_be_scoped_to_virtual_servers_and_callers() {
    use crate::config::tests::principals::two_issuers;
    let yaml = format!(
        "{}policies:\n  - id: scoped\n    tools: [\"demo.*\"]\n    virtual_servers: [s]\n    when: {{ groups: [contractors], agents: [ci-bot], issuers: [https://idp-b] }}\n    allow_when: {{ subjects: [\"https://idp-a#alice\"], roles: [admin] }}\n    forbidden: [force]\n",
        two_issuers("{}", "group_issuers: [https://idp-a, https://idp-b]")
    );
    let c = from_yaml(&yaml).unwrap();
    let r = &c.policies[0];
    assert_eq!(r.servers, ["s"]);
    let when = r.when.as_ref().unwrap();
    assert_eq!(when.agents, ["ci-bot"]);
    assert_eq!(when.issuers, ["https://idp-b"]);
    assert_eq!(r.allow_when.as_ref().unwrap().roles, ["admin"]);

    // allow_when alone is a rule; an empty matcher is not.
    let only = |extra: &str| {
        format!(
            "{}policies:\n  - id: only\n    tools: [\"demo.*\"]\n{extra}",
            two_issuers("{}", "group_issuers: [https://idp-a, https://idp-b]")
        )
    };
    assert!(from_yaml(&only("    allow_when: { groups: [eng] }\n")).is_ok());
    assert_err(
        &only("    allow_when: {}\n"),
        "policies[0].allow_when",
        "name at least one",
    );
    assert_err(
        &only("    when: { groups: [] }\n    forbidden: [x]\n"),
        "policies[0].when",
        "name at least one",
    );
    assert_err(
        &only("    virtual_servers: [nope]\n    forbidden: [x]\n"),
        "policies[0].virtual_servers[0]",
        "not a configured virtual server",
    );
    assert_err(
        &only("    when: { issuers: [https://idp-z] }\n    forbidden: [x]\n"),
        "policies[0].when.issuers[0]",
        "not one of auth.jwt.issuers",
    );
    assert_err(
        &only("    when: { subjects: [alice] }\n    forbidden: [x]\n"),
        "policies[0].when.subjects[0]",
        "ISSUER#SUBJECT",
    );
    assert_err(
        &only("    when: { agents: [\"\"] }\n    forbidden: [x]\n"),
        "policies[0].when.agents[0]",
        "empty name",
    );
    assert_err(
        &only("    when: { teams: [x] }\n    forbidden: [x]\n"),
        "policies[0].when.teams",
        "unknown field",
    );
}
