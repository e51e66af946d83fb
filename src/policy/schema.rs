//! Tightening a tool's advertised `inputSchema` to the policy rules every caller is held to,
//! so a model is told up front what the gateway will refuse (`enum`, `pattern`, bounds,
//! lengths, types, denied values, required and forbidden arguments) instead of learning it
//! from -32602 answers.
//!
//! Only what JSON Schema says exactly is written: `prefix` (checked after resolving `.` and
//! `..`) has no schema equivalent and is left to the check. Only properties the upstream
//! already advertises are tightened (a rule on an argument the schema does not describe
//! adds nothing: the schema would otherwise invent an argument). Applied when a virtual
//! server's catalog is built, with the rules that apply to every caller on that server
//! ([`super::arguments::PolicyRule::unconditional_on`]); plain routes pass the upstream's
//! `tools/list` through untouched.

use serde_json::{Map, Value};

use super::arguments::{Check, PolicyRule};

/// Tighten `definition["inputSchema"]` in place to `rules`.
pub fn tighten<'a>(definition: &mut Value, rules: impl IntoIterator<Item = &'a PolicyRule>) {
    let Some(schema) = definition.get_mut("inputSchema") else {
        return;
    };
    for rule in rules {
        for path in &rule.required {
            if let Some((parent, name)) = parent_of(schema, path.segments()) {
                if has_property(parent, name) {
                    add_required(parent, name);
                }
            }
        }
        for path in &rule.forbidden {
            if let Some((parent, name)) = parent_of(schema, path.segments()) {
                if let Some(props) = parent.get_mut("properties").and_then(Value::as_object_mut) {
                    props.remove(name);
                }
                if let Some(req) = parent.get_mut("required").and_then(Value::as_array_mut) {
                    req.retain(|r| r.as_str() != Some(name));
                }
            }
        }
        for (path, check) in &rule.checks {
            let Some((parent, name)) = parent_of(schema, path.segments()) else {
                continue;
            };
            let Some(prop) = parent
                .get_mut("properties")
                .and_then(Value::as_object_mut)
                .and_then(|p| p.get_mut(name))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            apply(prop, check);
        }
    }
}

/// The object schema holding the last segment, and that segment; `None` when the path
/// leaves the described properties (or goes through an array index).
fn parent_of<'s, 'p>(
    schema: &'s mut Value,
    segments: &'p [String],
) -> Option<(&'s mut Value, &'p str)> {
    let (last, walk) = segments.split_last()?;
    let mut at = schema;
    for s in walk {
        at = at.get_mut("properties")?.get_mut(s.as_str())?;
    }
    at.is_object().then_some((at, last.as_str()))
}

fn has_property(parent: &Value, name: &str) -> bool {
    parent
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key(name))
}

fn add_required(parent: &mut Value, name: &str) {
    let Some(obj) = parent.as_object_mut() else {
        return;
    };
    let req = obj
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = req.as_array_mut() {
        if !list.iter().any(|r| r.as_str() == Some(name)) {
            list.push(Value::String(name.to_string()));
        }
    }
}

fn apply(prop: &mut Map<String, Value>, check: &Check) {
    match check {
        Check::Enum(values) => {
            let allowed = match prop.get("enum").and_then(Value::as_array) {
                // Both hold: the intersection, in the rule's order.
                Some(existing) => values
                    .iter()
                    .filter(|v| existing.contains(v))
                    .cloned()
                    .collect(),
                None => values.clone(),
            };
            prop.insert("enum".into(), Value::Array(allowed));
        }
        Check::Pattern(re) => {
            let pattern = Value::String(re.as_str().to_string());
            if prop.contains_key("pattern") {
                // One `pattern` keyword per schema: a second goes under `allOf`.
                let all = prop
                    .entry("allOf")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Some(list) = all.as_array_mut() {
                    list.push(serde_json::json!({ "pattern": pattern }));
                }
            } else {
                prop.insert("pattern".into(), pattern);
            }
        }
        Check::Min(min) => bound(prop, "minimum", *min, f64::max),
        Check::Max(max) => bound(prop, "maximum", *max, f64::min),
        Check::MaxLength(n) => {
            let key = if prop.get("type").and_then(Value::as_str) == Some("array") {
                "maxItems"
            } else {
                "maxLength"
            };
            let n = prop
                .get(key)
                .and_then(Value::as_u64)
                .map_or(*n as u64, |e| e.min(*n as u64));
            prop.insert(key.into(), Value::from(n));
        }
        Check::Deny(values) => {
            prop.insert("not".into(), serde_json::json!({ "enum": values }));
        }
        Check::Type(t) => {
            prop.insert("type".into(), Value::String(t.schema_name().into()));
        }
        Check::Prefix(_) => {}
    }
}

/// Sets `key` to the tighter of the existing bound and `value` (`pick` chooses).
fn bound(prop: &mut Map<String, Value>, key: &str, value: f64, pick: fn(f64, f64) -> f64) {
    let v = prop
        .get(key)
        .and_then(Value::as_f64)
        .map_or(value, |e| pick(e, value));
    let n = serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number);
    // Whole numbers are written as integers (`1`, not `1.0`), as a person would.
    let n = match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
        _ => n,
    };
    prop.insert(key.into(), n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::arguments::{ArgPath, JsonType};
    use crate::policy::pattern::ToolPattern;
    use serde_json::json;

    fn rule(checks: Vec<(&str, Check)>, required: &[&str], forbidden: &[&str]) -> PolicyRule {
        let path = |p: &&str| ArgPath::parse(p).unwrap();
        PolicyRule {
            id: "r".into(),
            tools: vec![ToolPattern::parse("*.*").unwrap()],
            servers: vec![],
            when: None,
            allow_when: None,
            checks: checks.into_iter().map(|(p, c)| (path(&p), c)).collect(),
            required: required.iter().map(path).collect(),
            forbidden: forbidden.iter().map(path).collect(),
        }
    }

    #[test]
    fn the_schema_says_what_the_rules_enforce() {
        let mut def = json!({"name": "t", "inputSchema": {
            "type": "object",
            "properties": {
                "repo": {"type": "string", "pattern": "^[a-z]"},
                "limit": {"type": "number", "minimum": 0, "maximum": 500},
                "state": {"type": "string", "enum": ["open", "closed", "all"]},
                "labels": {"type": "array"},
                "title": {"type": "string"},
                "force": {"type": "boolean"},
                "opts": {"type": "object", "properties": {"branch": {"type": "string"}}}
            },
            "required": ["force"]
        }});
        let r = rule(
            vec![
                ("repo", Check::Pattern(regex::Regex::new("^acme/").unwrap())),
                ("limit", Check::Min(1.0)),
                ("limit", Check::Max(100.0)),
                ("limit", Check::Type(JsonType::Integer)),
                (
                    "state",
                    Check::Enum(vec![json!("open"), json!("closed"), json!("x")]),
                ),
                ("labels", Check::MaxLength(3)),
                ("title", Check::MaxLength(80)),
                ("title", Check::Deny(vec![json!("")])),
                ("opts.branch", Check::Enum(vec![json!("main")])),
                ("undescribed", Check::Max(1.0)),
                ("repo", Check::Prefix("acme/".into())),
            ],
            &["repo", "undescribed"],
            &["force"],
        );
        tighten(&mut def, [&r]);
        let s = &def["inputSchema"];
        assert_eq!(s["properties"]["repo"]["pattern"], "^[a-z]");
        assert_eq!(
            s["properties"]["repo"]["allOf"],
            json!([{"pattern": "^acme/"}])
        );
        assert_eq!(s["properties"]["limit"]["minimum"], 1);
        assert_eq!(s["properties"]["limit"]["maximum"], 100);
        assert_eq!(s["properties"]["limit"]["type"], "integer");
        assert_eq!(s["properties"]["state"]["enum"], json!(["open", "closed"]));
        assert_eq!(s["properties"]["labels"]["maxItems"], 3);
        assert_eq!(s["properties"]["title"]["maxLength"], 80);
        assert_eq!(s["properties"]["title"]["not"], json!({"enum": [""]}));
        assert_eq!(
            s["properties"]["opts"]["properties"]["branch"]["enum"],
            json!(["main"])
        );
        assert!(
            s["properties"].get("undescribed").is_none(),
            "no invented arguments"
        );
        assert!(
            s["properties"].get("force").is_none(),
            "forbidden is not advertised"
        );
        assert_eq!(s["required"], json!(["repo"]));
    }

    #[test]
    fn a_definition_without_a_schema_is_left_alone() {
        let mut def = json!({"name": "t"});
        tighten(&mut def, [&rule(vec![("a", Check::Max(1.0))], &["a"], &[])]);
        assert_eq!(def, json!({"name": "t"}));
    }
}
