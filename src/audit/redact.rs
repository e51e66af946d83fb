//! Argument redaction: every `audit.redact.rules[]` entry covering the tool contributes its
//! named paths and its default; per argument the strongest action wins (`drop` over `hash`
//! over `keep`), so adding a rule can only hide more. Arguments no covering rule names get
//! the strongest covering rule's `default`, else `redact.default`.
//!
//! It works on the canonical arguments (`approval::canonical_arguments`: keys sorted,
//! strings re-encoded, numbers exactly as written), walking only as deep as the rules name
//! and copying every kept subtree as its canonical bytes. No `serde_json::Value` is built:
//! that cost a parse, a tree and a re-serialization per record on the writer thread, and
//! it turned numbers into `f64`, so two big integers could show (and hash) as one.
//!
//! `hash` writes `"sha256:<hex>"` of the value's canonical bytes, so equal values stay
//! comparable across records. It is unkeyed: a low-entropy value (a PIN, a national id) can
//! be found by guessing; `drop` those.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::config::raw::RedactAction;
use crate::config::Redaction;

/// Paths named by the covering rules, as a tree over argument segments.
#[derive(Debug, Default)]
struct Node {
    action: Option<RedactAction>,
    children: BTreeMap<String, Node>,
}

/// The canonical `arguments` of a call to `upstream`'s tool `tool`, redacted by
/// `redaction`, as JSON text. `Cow::Borrowed`: nothing to redact (no rule covers the tool
/// and the default keeps). `Err`: `arguments` is not JSON (never for canonical bytes).
pub fn redact<'a>(
    redaction: &Redaction,
    upstream: &str,
    tool: &str,
    arguments: &'a str,
) -> Result<Cow<'a, str>, String> {
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
        return Ok(Cow::Borrowed(arguments));
    }
    let raw: &RawValue = serde_json::from_str(arguments).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(arguments.len());
    // The default applies per argument (each member of `arguments`), never to the whole.
    members(&root, default, raw, &mut out)?;
    // Every piece appended is JSON text taken from `arguments` or written by serde_json.
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|e| e.to_string())
}

/// `value` under `node`, appended to `out`; `false`: dropped (nothing appended).
fn apply(
    node: &Node,
    default: RedactAction,
    value: &RawValue,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    if let Some(action) = node.action {
        // `keep` on a path never overrides what is named below it (`user: keep` with
        // `user.password: drop` drops the password): the strongest action wins, per value.
        if action != RedactAction::Keep || node.children.is_empty() {
            return Ok(act(action, value, out));
        }
        members(node, RedactAction::Keep, value, out)?;
        return Ok(true);
    }
    if node.children.is_empty() {
        return Ok(act(default, value, out));
    }
    members(node, default, value, out)?;
    Ok(true)
}

/// The child of `node` a member named `key` falls under: the path segment spelled as `key`,
/// else one equal to it ignoring case or after Unicode folding (`Password` under a rule
/// for `password`). Go's and .NET's case-insensitive binding reads such a member as that
/// argument, so it is that argument's secret; the strict pass has already refused an
/// object holding two spellings, so at most one member matches.
fn child<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    node.children.get(key).or_else(|| {
        node.children
            .iter()
            .find(|(k, _)| crate::mcp::strict::same_key(k.as_bytes(), key.as_bytes()))
            .map(|(_, n)| n)
    })
}

/// `value`'s members redacted under `node`'s children, appended to `out`.
fn members(
    node: &Node,
    default: RedactAction,
    value: &RawValue,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let text = value.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            let Members(entries) = serde_json::from_str(text).map_err(|e| e.to_string())?;
            out.push(b'{');
            let mut first = true;
            for (key, v) in entries {
                let mark = out.len();
                if !first {
                    out.push(b',');
                }
                push_key(&key, out);
                let kept = match child(node, &key) {
                    Some(n) => apply(n, default, v, out)?,
                    None => act(default, v, out),
                };
                if kept {
                    first = false;
                } else {
                    out.truncate(mark);
                }
            }
            out.push(b'}');
        }
        // An array element cannot be left out without shifting the others: a dropped one
        // becomes `null`.
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| e.to_string())?;
            out.push(b'[');
            for (i, v) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let kept = match node.children.get(i.to_string().as_str()) {
                    Some(n) => apply(n, default, v, out)?,
                    None => act(default, v, out),
                };
                if !kept {
                    out.extend_from_slice(b"null");
                }
            }
            out.push(b']');
        }
        // A scalar where the rules name children: nothing below it is named.
        _ => {
            if !act(default, value, out) {
                out.extend_from_slice(b"null");
            }
        }
    }
    Ok(())
}

/// Append `value` as `action` says; `false`: dropped.
fn act(action: RedactAction, value: &RawValue, out: &mut Vec<u8>) -> bool {
    match action {
        RedactAction::Keep => out.extend_from_slice(value.get().as_bytes()),
        RedactAction::Drop => return false,
        RedactAction::Hash => {
            // The bytes are canonical (see the module docs): equal values, equal digests.
            let digest = ring::digest::digest(&ring::digest::SHA256, value.get().as_bytes());
            out.extend_from_slice(b"\"sha256:");
            out.extend_from_slice(crate::digest::hex(digest.as_ref()).as_bytes());
            out.push(b'"');
        }
    }
    true
}

/// `key` as a JSON string, and the `:` after it.
fn push_key(key: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
}

/// An object's members in their order, values unparsed, keys borrowed unless escaped.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    entries.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// A key borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedactRule;
    use crate::policy::arguments::ArgPath;
    use crate::policy::pattern::ToolPattern;
    use serde_json::{json, Value};

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

    /// `arguments` (any JSON) made canonical as a call's arguments are, redacted.
    fn run(r: &Redaction, upstream: &str, tool: &str, arguments: &str) -> String {
        let body = format!(r#"{{"params":{{"arguments":{arguments}}}}}"#);
        let canonical = crate::approval::canonical_arguments(body.as_bytes(), 64).unwrap();
        let canonical = String::from_utf8(canonical).unwrap();
        redact(r, upstream, tool, &canonical).unwrap().into_owned()
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
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
        let text = run(
            &r,
            "crm",
            "lookup",
            r#"{"name": "ann", "ssn": "123-45-6789", "card": {"number": "4111", "exp": "12/30"}}"#,
        );
        assert!(
            !text.contains("123-45-6789") && !text.contains("ssn"),
            "{text}"
        );
        assert!(!text.contains("4111"), "{text}");
        let out = parse(&text);
        assert_eq!(out["name"], "ann");
        assert_eq!(out["card"]["exp"], "12/30");
        assert!(out["card"]["number"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:") && s.len() == 71));
        // Another tool: untouched, and not copied.
        assert!(matches!(
            redact(&r, "git", "log", r#"{"ssn":"1"}"#),
            Ok(Cow::Borrowed(r#"{"ssn":"1"}"#))
        ));
    }

    /// A rule's path covers the argument however its key is cased or folded, as a
    /// case-insensitive upstream binds it: the secret is that argument's.
    #[test]
    fn paths_match_keys_ignoring_case_and_folding() {
        let r = Redaction {
            default: RedactAction::Keep,
            rules: vec![rule(
                &["crm.*"],
                &[
                    ("password", RedactAction::Drop),
                    ("card.number", RedactAction::Hash),
                ],
                None,
            )],
        };
        let text = run(
            &r,
            "crm",
            "login",
            r#"{"user": "ann", "PassWord": "hunter2", "Card": {"NUMBER": "4111", "exp": "12/30"}}"#,
        );
        assert!(
            !text.contains("hunter2") && !text.contains("4111"),
            "{text}"
        );
        let out = parse(&text);
        assert_eq!(out["user"], "ann");
        assert_eq!(out["Card"]["exp"], "12/30");
        assert!(out["Card"]["NUMBER"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:")));
        // Unicode folding too: `ſ` (long s) is `s` to Go's binding.
        let text = run(&r, "crm", "login", r#"{"paſſword": "hunter2"}"#);
        assert!(!text.contains("hunter2"), "{text}");
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
        let out = parse(&run(
            &r,
            "vault",
            "read",
            r#"{"token": "s3cret", "id": 7, "note": "x"}"#,
        ));
        assert!(out.get("token").is_none(), "{out}");
        assert_eq!(out["id"], 7);
        assert!(out["note"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:")));
        let dropped_default = Redaction {
            default: RedactAction::Drop,
            rules: vec![],
        };
        assert_eq!(run(&dropped_default, "a", "b", r#"{"x": 1, "y": 2}"#), "{}");
        // A dropped first member leaves no stray comma.
        let r = Redaction {
            default: RedactAction::Keep,
            rules: vec![rule(&["a.b"], &[("a", RedactAction::Drop)], None)],
        };
        assert_eq!(
            run(&r, "a", "b", r#"{"b": 2, "a": 1, "c": 3}"#),
            r#"{"b":2,"c":3}"#
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
        let x = parse(&run(
            &r,
            "a",
            "b",
            r#"{"o": {"k": 1, "j": 2}, "l": [1, 2, 3]}"#,
        ));
        let y = parse(&run(&r, "a", "b", r#"{"o":{"j":2,"k":1},"l":[1,2,3]}"#));
        assert_eq!(x["o"], y["o"]);
        assert_eq!(x["l"], json!([1, null, 3]));
    }

    #[test]
    fn a_kept_parent_does_not_show_a_dropped_child() {
        let r = Redaction {
            default: RedactAction::Keep,
            rules: vec![rule(
                &["a.b"],
                &[
                    ("user", RedactAction::Keep),
                    ("user.password", RedactAction::Drop),
                    ("user.pin", RedactAction::Hash),
                ],
                None,
            )],
        };
        let out = parse(&run(
            &r,
            "a",
            "b",
            r#"{"user": {"name": "ann", "password": "s3cret", "pin": "1234"}}"#,
        ));
        assert_eq!(out["user"]["name"], "ann");
        assert!(out["user"].get("password").is_none(), "{out}");
        assert!(out["user"]["pin"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:")));
    }

    #[test]
    fn numbers_are_shown_and_hashed_as_written() {
        let r = Redaction {
            default: RedactAction::Keep,
            rules: vec![rule(&["a.b"], &[("h", RedactAction::Hash)], None)],
        };
        // Two integers an f64 cannot tell apart stay two values, shown and hashed.
        let one = run(
            &r,
            "a",
            "b",
            r#"{"h": 12345678901234567890123, "n": 12345678901234567890123}"#,
        );
        let two = run(
            &r,
            "a",
            "b",
            r#"{"h": 12345678901234567890124, "n": 12345678901234567890124}"#,
        );
        assert!(one.contains(r#""n":12345678901234567890123"#), "{one}");
        assert_ne!(parse(&one)["h"], parse(&two)["h"]);
        // Escaped keys and strings survive.
        let esc = run(&r, "a", "b", r#"{"\u0068": "x", "k\"q": "a\nb"}"#);
        assert!(
            esc.contains(r#""k\"q":"a\nb""#) && !esc.contains(r#""x""#),
            "{esc}"
        );
    }
}
