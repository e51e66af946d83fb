//! Subjects in access lists and rules (`config/principals.rs`): one test per rule.

use super::assert_err;
use crate::config::{from_yaml, Caller, API_KEY_ISSUER};

/// Two JWT issuers, an API key and a virtual server whose access list is `{ACCESS}`.
pub(super) fn two_issuers(access: &str, jwt_extra: &str) -> String {
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
        agent: None,
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
        agent: None,
    };
    let access = &c.virtual_servers[0].access;
    assert!(access.matches(&who("https://idp-a")) && access.matches(&who(API_KEY_ISSUER)));
    assert!(
        !access.matches(&Caller::ANONYMOUS),
        "an anonymous caller is nobody's subject"
    );
}
