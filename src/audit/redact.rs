//! Argument redaction: every `audit.redact.rules[]` entry covering the tool contributes its
//! named paths and its default; per argument the strongest action wins (`drop` over `hash`
//! over `keep`), so adding a rule can only hide more. Arguments no covering rule names get
//! the strongest covering rule's `default`, else `redact.default`.
//!
//! `hash` writes `"sha256:<hex>"` of the value's canonical JSON (keys sorted), so equal
//! values stay comparable across records. It is unkeyed: a low-entropy value (a PIN, a
//! national id) can be found by guessing; `drop` those.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::raw::RedactAction;
use crate::config::Redaction;

/// Paths named by the covering rules, as a tree over argument segments.
#[derive(Debug, Default)]
struct Node {
    action: Option<RedactAction>,
    children: BTreeMap<String, Node>,
}

/// `arguments` of a call to `upstream`'s tool `tool`, redacted by `redaction`.
pub fn redact(redaction: &Redaction, upstream: &str, tool: &str, arguments: Value) -> Value {
    let mut root = Node::default();
    let mut default: Option<RedactAction> = None;
    for rule in redaction
        .rules
        .iter()
        .filter(|r| r.tools.iter().any(|p| p.matches(upstream, tool)))
    {
        if let Some(d) = rule.default {
            default = Some(default.map_or(d, |x| x.max(d)));
        }
        for (path, action) in &rule.arguments {
            let node = path
                .segments()
                .iter()
                .fold(&mut root, |n, s| n.children.entry(s.clone()).or_default());
            node.action = Some(node.action.map_or(*action, |a| a.max(*action)));
        }
    }
    let default = default.unwrap_or(redaction.default);
    if root.action.is_none() && root.children.is_empty() && default == RedactAction::Keep {
        return arguments;
    }
    // The default applies per argument (each member of `arguments`), never to the whole.
    members(&root, default, arguments)
}

/// `value` under `node`; `None`: dropped.
fn apply(node: &Node, default: RedactAction, value: Value) -> Option<Value> {
    if let Some(action) = node.action {
        return act(action, value);
    }
    if node.children.is_empty() {
        return act(default, value);
    }
    Some(members(node, default, value))
}

/// `value`'s members redacted under `node`'s children.
fn members(node: &Node, default: RedactAction, value: Value) -> Value {
    let child = |key: &str, v: Value| match node.children.get(key) {
        Some(n) => apply(n, default, v),
        None => act(default, v),
    };
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| child(&k, v).map(|v| (k, v)))
                .collect(),
        ),
        // An array element cannot be left out without shifting the others: a dropped one
        // becomes `null`.
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| child(&i.to_string(), v).unwrap_or(Value::Null))
                .collect(),
        ),
        // A scalar where the rules name children: nothing below it is named.
        other => act(default, other).unwrap_or(Value::Null),
    }
}

fn act(action: RedactAction, value: Value) -> Option<Value> {
    match action {
        RedactAction::Keep => Some(value),
        RedactAction::Drop => None,
        RedactAction::Hash => {
            let mut canonical = Vec::new();
            write_canonical(&value, &mut canonical);
            let digest = ring::digest::digest(&ring::digest::SHA256, &canonical);
            Some(Value::String(format!(
                "sha256:{}",
                crate::digest::hex(digest.as_ref())
            )))
        }
    }
}

/// JSON with object keys sorted at every depth (independent of `serde_json`'s map order).
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedactRule;
    use crate::policy::arguments::ArgPath;
    use crate::policy::pattern::ToolPattern;
    use serde_json::json;

    fn rule(
        tools: &[&str],
        args: &[(&str, RedactAction)],
        default: Option<RedactAction>,
    ) -> RedactRule {
        RedactRule {
            tools: tools
                .iter()
                .map(|t| ToolPattern::parse(t).unwrap())
                .collect(),
            arguments: args
                .iter()
                .map(|(p, a)| (ArgPath::parse(p).unwrap(), *a))
                .collect(),
            default,
        }
    }

    #[test]
    fn named_paths_are_hashed_or_dropped_and_the_rest_kept() {
        let r = Redaction {
            default: RedactAction::Keep,
            rules: vec![rule(
                &["crm.*"],
                &[
                    ("ssn", RedactAction::Drop),
                    ("card.number", RedactAction::Hash),
                ],
                None,
            )],
        };
        let out = redact(
            &r,
            "crm",
            "lookup",
            json!({"name": "ann", "ssn": "123-45-6789", "card": {"number": "4111", "exp": "12/30"}}),
        );
        let text = out.to_string();
        assert!(
            !text.contains("123-45-6789") && !text.contains("ssn"),
            "{text}"
        );
        assert!(!text.contains("4111"), "{text}");
        assert_eq!(out["name"], "ann");
        assert_eq!(out["card"]["exp"], "12/30");
        assert!(out["card"]["number"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:") && s.len() == 71));
        // Another tool: untouched.
        let other = redact(&r, "git", "log", json!({"ssn": "1"}));
        assert_eq!(other, json!({"ssn": "1"}));
    }

    #[test]
    fn the_strongest_action_wins_and_defaults_cover_unnamed_arguments() {
        let r = Redaction {
            default: RedactAction::Keep,
            rules: vec![
                rule(&["*.*"], &[("token", RedactAction::Hash)], None),
                rule(
                    &["vault.*"],
                    &[("token", RedactAction::Drop), ("id", RedactAction::Keep)],
                    Some(RedactAction::Hash),
                ),
            ],
        };
        let out = redact(
            &r,
            "vault",
            "read",
            json!({"token": "s3cret", "id": 7, "note": "x"}),
        );
        assert!(out.get("token").is_none(), "{out}");
        assert_eq!(out["id"], 7);
        assert!(out["note"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:")));
        let dropped_default = Redaction {
            default: RedactAction::Drop,
            rules: vec![],
        };
        assert_eq!(
            redact(&dropped_default, "a", "b", json!({"x": 1})),
            json!({})
        );
    }

    #[test]
    fn hashes_do_not_depend_on_key_order_and_array_elements_drop_to_null() {
        let r = Redaction {
            default: RedactAction::Keep,
            rules: vec![rule(
                &["a.b"],
                &[("o", RedactAction::Hash), ("l.1", RedactAction::Drop)],
                None,
            )],
        };
        let x = redact(&r, "a", "b", json!({"o": {"k": 1, "j": 2}, "l": [1, 2, 3]}));
        let y = redact(
            &r,
            "a",
            "b",
            serde_json::from_str(r#"{"o":{"j":2,"k":1},"l":[1,2,3]}"#).unwrap(),
        );
        assert_eq!(x["o"], y["o"]);
        assert_eq!(x["l"], json!([1, null, 3]));
    }
}
