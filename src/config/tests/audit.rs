//! `audit`: sinks, rotation, queue and redaction rules.

use super::{assert_err, BASE};
use crate::config::from_yaml;
use crate::config::raw::{OnFull, RedactAction};

fn with(audit: &str) -> String {
    format!("{BASE}audit:\n{audit}")
}

#[test]
fn defaults_and_a_full_section_validate() {
    let c = from_yaml(&with("  path: /var/log/mcp/audit.jsonl\n")).unwrap();
    let a = c.audit.unwrap();
    assert_eq!(a.max_file_bytes, 100 * 1024 * 1024);
    assert_eq!((a.max_files, a.queue, a.on_full), (10, 8192, OnFull::Block));
    assert_eq!(a.redact.default, RedactAction::Keep);
    assert!(!a.stdout && a.redact.rules.is_empty());
    let c = from_yaml(&with(
        r#"  stdout: true
  max_file_bytes: 4096
  max_files: 2
  queue: 16
  on_full: drop
  redact:
    default: hash
    rules:
      - tools: ["crm.*"]
        arguments: { ssn: drop, card.number: hash, /a~1b: keep }
      - { tools: ["*.read_*"], default: drop }
"#,
    ))
    .unwrap();
    let a = c.audit.unwrap();
    assert!(a.stdout && a.path.is_none());
    assert_eq!(a.on_full, OnFull::Drop);
    assert_eq!(a.redact.default, RedactAction::Hash);
    assert_eq!(a.redact.rules[0].arguments.len(), 3);
    assert_eq!(a.redact.rules[1].default, Some(RedactAction::Drop));
    assert!(from_yaml(BASE).unwrap().audit.is_none());
}

#[test]
fn it_must_write_somewhere() {
    assert_err(&with("  stdout: false\n"), "audit", "set path");
    assert_err(&with("  path: \"\"\n"), "audit.path", "not a file path");
}

#[test]
fn rotation_and_queue_are_bounded() {
    assert_err(
        &with("  stdout: true\n  max_file_bytes: 100\n"),
        "audit.max_file_bytes",
        "at least 4096",
    );
    assert_err(
        &with("  stdout: true\n  max_files: 0\n"),
        "audit.max_files",
        "1 to 1000",
    );
    assert_err(
        &with("  stdout: true\n  queue: 0\n"),
        "audit.queue",
        "1 to 1000000",
    );
    assert_err(
        &with("  stdout: true\n  on_full: wait\n"),
        "audit.on_full",
        "unknown variant",
    );
}

#[test]
fn redaction_rules_name_tools_paths_and_actions() {
    let rule = |r: &str| {
        with(&format!(
            "  stdout: true\n  redact:\n    rules:\n      - {r}\n"
        ))
    };
    assert_err(
        &rule("{ tools: [], default: drop }"),
        "audit.redact.rules[0].tools",
        "is empty",
    );
    assert_err(
        &rule("{ tools: [nodot], default: drop }"),
        "audit.redact.rules[0].tools[0]",
        "no '.'",
    );
    assert_err(
        &rule("{ tools: [a.b] }"),
        "audit.redact.rules[0]",
        "says nothing",
    );
    assert_err(
        &rule("{ tools: [a.b], arguments: { \"a..b\": drop } }"),
        "audit.redact.rules[0].arguments.a..b",
        "not an argument path",
    );
    assert_err(
        &rule("{ tools: [a.b], arguments: { x: mask } }"),
        "audit.redact.rules[0].arguments.x",
        "unknown variant",
    );
}
