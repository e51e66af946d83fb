//! Argument policy: checks on a `tools/call`'s arguments, applied by
//! [`crate::decision::decide`] to the bytes the upstream will execute (after the tool name
//! and pinned arguments are spliced in), on plain routes and virtual servers alike.
//!
//! A rule ([`PolicyRule`]) names the tools it covers with the same `upstream.tool` patterns
//! as `allow_tools`, and checks arguments addressed by a dotted path (`options.branch`) or a
//! JSON pointer (`/options/branch`). Regular expressions are compiled once at load. The body
//! already passed the strict pass (no duplicate keys at any depth), so the one reading here
//! is the upstream's reading.

use serde_json::Value;

use super::pattern::ToolPattern;
use super::who::{Caller, Principals};

/// A validated policy rule: which calls it covers, and what it requires of them.
#[derive(Debug, Clone)]
pub struct PolicyRule {
    /// Names the rule in errors, metrics and audit (bounded: from configuration).
    pub id: String,
    /// The `upstream.tool` names it applies to.
    pub tools: Vec<ToolPattern>,
    /// Virtual servers it applies on (by name); empty: everywhere, plain routes included.
    pub servers: Vec<String>,
    /// Callers it applies to; `None`: everyone (anonymous callers included).
    pub when: Option<Principals>,
    /// Whole-tool rule: only these callers may call the covered tools at all.
    pub allow_when: Option<Principals>,
    /// Checks on arguments that are present.
    pub checks: Vec<(ArgPath, Check)>,
    /// Arguments that must be present.
    pub required: Vec<ArgPath>,
    /// Arguments that must be absent.
    pub forbidden: Vec<ArgPath>,
}

/// Where an argument is: path segments below `params.arguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgPath {
    /// As written in the configuration (used in messages).
    pub text: String,
    segments: Vec<String>,
}

/// One check on a present argument.
#[derive(Debug, Clone)]
pub enum Check {
    /// One of these JSON values.
    Enum(Vec<Value>),
    /// A string this regular expression matches (anchor it yourself: `^acme/`).
    Pattern(regex::Regex),
    /// A number at least this.
    Min(f64),
    /// A number at most this.
    Max(f64),
    /// A string of at most this many characters, or an array of at most this many items.
    MaxLength(usize),
    /// A string that, with `.` and `..` segments and repeated `/` resolved, starts with this
    /// (`/srv/data/../etc` is `/srv/etc`). A path that climbs above its root is refused.
    Prefix(String),
    /// None of these JSON values.
    Deny(Vec<Value>),
    /// This JSON type.
    Type(JsonType),
}

/// JSON types a rule can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl JsonType {
    /// From its name in the configuration.
    pub fn parse(s: &str) -> Option<JsonType> {
        Some(match s {
            "string" => JsonType::String,
            "number" => JsonType::Number,
            "integer" => JsonType::Integer,
            "boolean" => JsonType::Boolean,
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            _ => return None,
        })
    }

    /// Its JSON Schema `type` keyword.
    pub fn schema_name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
        }
    }

    fn name(self) -> &'static str {
        match self {
            JsonType::String => "a string",
            JsonType::Number => "a number",
            JsonType::Integer => "an integer",
            JsonType::Boolean => "a boolean",
            JsonType::Object => "an object",
            JsonType::Array => "an array",
        }
    }

    fn holds(self, v: &Value) -> bool {
        match self {
            JsonType::String => v.is_string(),
            JsonType::Number => v.is_number(),
            JsonType::Integer => v.is_i64() || v.is_u64(),
            JsonType::Boolean => v.is_boolean(),
            JsonType::Object => v.is_object(),
            JsonType::Array => v.is_array(),
        }
    }
}

impl ArgPath {
    /// `repo`, `options.branch`, or a JSON pointer `/options/branch` (`~1` is `/`, `~0` is
    /// `~`). Empty segments are refused.
    pub fn parse(text: &str) -> Result<ArgPath, String> {
        let segments: Vec<String> = match text.strip_prefix('/') {
            Some(pointer) => pointer
                .split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect(),
            None => text.split('.').map(str::to_string).collect(),
        };
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "{text:?} is not an argument path: use name, a.b, or a JSON pointer /a/b"
            ));
        }
        Ok(ArgPath {
            text: text.to_string(),
            segments,
        })
    }

    /// The path's segments below `params.arguments`.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value at the path, if there is one. `Err` when an object on the way has no
    /// member named exactly as the path's segment but one equal to it ignoring case or after
    /// Unicode folding (`Path` for `path`): the rule would not see it, while Go's and .NET's
    /// case-insensitive binding reads it as that argument. The strict pass has already
    /// refused an object holding both spellings.
    fn find<'a>(&self, arguments: &'a Value) -> Result<Option<&'a Value>, String> {
        let mut v = arguments;
        for s in &self.segments {
            v = match v {
                Value::Object(m) => match m.get(s) {
                    Some(next) => next,
                    None => {
                        let twin = m
                            .keys()
                            .find(|k| crate::mcp::strict::same_key(k.as_bytes(), s.as_bytes()));
                        return match twin {
                            Some(k) => Err(format!(
                                "argument {:?} is written {:?}: parsers disagree on whether that is {:?}, so spell it exactly",
                                self.text,
                                crate::error::clip(k),
                                s
                            )),
                            None => Ok(None),
                        };
                    }
                },
                Value::Array(a) => match s.parse::<usize>().ok().and_then(|i| a.get(i)) {
                    Some(next) => next,
                    None => return Ok(None),
                },
                _ => return Ok(None),
            };
        }
        Ok(Some(v))
    }
}

/// A refused call: the rule and what is wrong, in words a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: String,
    pub message: String,
}

impl PolicyRule {
    /// Whether the rule covers `upstream.tool`.
    pub fn applies_to(&self, upstream: &str, tool: &str) -> bool {
        self.tools.iter().any(|p| p.matches(upstream, tool))
    }

    /// Whether the rule covers this call: the tool, the virtual server it is called through
    /// (`None` on a plain route) and the caller.
    pub fn covers(
        &self,
        upstream: &str,
        tool: &str,
        server: Option<&str>,
        caller: &Caller<'_>,
    ) -> bool {
        self.applies_to(upstream, tool)
            && (self.servers.is_empty()
                || server.is_some_and(|s| self.servers.iter().any(|x| x == s)))
            && self.when.as_ref().is_none_or(|w| w.matches(caller))
    }

    /// Whether the rule applies to every caller on `server` (no `when`, no `allow_when`):
    /// only such rules may tighten the schema every caller is shown.
    pub fn unconditional_on(&self, server: &str) -> bool {
        self.when.is_none()
            && self.allow_when.is_none()
            && (self.servers.is_empty() || self.servers.iter().any(|s| s == server))
    }

    /// The whole-tool check: `allow_when`, if any, names the caller.
    pub fn admits(&self, caller: &Caller<'_>) -> Result<(), Violation> {
        match &self.allow_when {
            Some(w) if !w.matches(caller) || caller.subject.is_empty() => Err(Violation {
                rule: self.id.clone(),
                message: "this tool may not be called by this principal (allow_when); ask an operator for access".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the call needs its arguments read (any argument check at all).
    pub fn reads_arguments(&self) -> bool {
        !(self.checks.is_empty() && self.required.is_empty() && self.forbidden.is_empty())
    }

    /// Check `arguments` (`params.arguments`, `None` when absent).
    pub fn check(&self, arguments: Option<&Value>) -> Result<(), Violation> {
        let empty = Value::Object(Default::default());
        let args = arguments.unwrap_or(&empty);
        let violation = |message: String| Violation {
            rule: self.id.clone(),
            message,
        };
        for p in &self.required {
            if p.find(args).map_err(violation)?.is_none() {
                return Err(violation(format!("argument {:?} is required", p.text)));
            }
        }
        for p in &self.forbidden {
            if p.find(args).map_err(violation)?.is_some() {
                return Err(violation(format!("argument {:?} is not allowed", p.text)));
            }
        }
        for (p, check) in &self.checks {
            if let Some(v) = p.find(args).map_err(violation)? {
                check
                    .apply(v)
                    .map_err(|why| violation(format!("argument {:?} {why}", p.text)))?;
            }
        }
        Ok(())
    }
}

impl Check {
    /// `Err(what it must be)` when `v` fails the check.
    fn apply(&self, v: &Value) -> Result<(), String> {
        match self {
            Check::Enum(allowed) => {
                if allowed.contains(v) {
                    Ok(())
                } else {
                    Err(format!("must be one of {}", list(allowed)))
                }
            }
            Check::Deny(denied) => {
                if denied.contains(v) {
                    Err(format!("must not be {v}"))
                } else {
                    Ok(())
                }
            }
            Check::Pattern(re) => match v.as_str() {
                Some(s) if re.is_match(s) => Ok(()),
                _ => Err(format!("must be a string matching {}", re.as_str())),
            },
            Check::Min(min) => match v.as_f64() {
                Some(n) if n >= *min => Ok(()),
                _ => Err(format!("must be a number of at least {min}")),
            },
            Check::Max(max) => match v.as_f64() {
                Some(n) if n <= *max => Ok(()),
                _ => Err(format!("must be a number of at most {max}")),
            },
            Check::MaxLength(n) => {
                let len = match v {
                    Value::String(s) => s.chars().count(),
                    Value::Array(a) => a.len(),
                    _ => return Err(format!("must be a string or array of at most {n}")),
                };
                if len <= *n {
                    Ok(())
                } else {
                    Err(format!("must be at most {n} long (it is {len})"))
                }
            }
            Check::Prefix(prefix) => match v.as_str().and_then(normalise) {
                Some(s) if s.starts_with(prefix.as_str()) => Ok(()),
                _ => Err(format!(
                    "must be a path under {prefix} (after resolving . and ..)"
                )),
            },
            Check::Type(t) => {
                if t.holds(v) {
                    Ok(())
                } else {
                    Err(format!("must be {}", t.name()))
                }
            }
        }
    }
}

fn list(values: &[Value]) -> String {
    let items: Vec<String> = values.iter().map(Value::to_string).collect();
    items.join(", ")
}

/// Resolve `.`, `..` and repeated `/` in a path or repo name; `None` if `..` climbs above
/// the start. A leading `/` is kept.
fn normalise(s: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in s.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            seg => out.push(seg),
        }
    }
    let joined = out.join("/");
    let rooted = if s.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    };
    // A trailing slash is kept, so `/srv/data/` as a value still matches the prefix
    // `/srv/data/`.
    Some(if s.ends_with('/') && !rooted.ends_with('/') {
        format!("{rooted}/")
    } else {
        rooted
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(checks: Vec<(&str, Check)>, required: &[&str], forbidden: &[&str]) -> PolicyRule {
        PolicyRule {
            id: "r1".into(),
            tools: vec![ToolPattern::parse("github.*").unwrap()],
            servers: vec![],
            when: None,
            allow_when: None,
            checks: checks
                .into_iter()
                .map(|(p, c)| (ArgPath::parse(p).unwrap(), c))
                .collect(),
            required: required
                .iter()
                .map(|p| ArgPath::parse(p).unwrap())
                .collect(),
            forbidden: forbidden
                .iter()
                .map(|p| ArgPath::parse(p).unwrap())
                .collect(),
        }
    }

    fn err(r: &PolicyRule, args: Value) -> String {
        r.check(Some(&args)).unwrap_err().message
    }

    #[test]
    fn paths_are_dotted_or_json_pointers() {
        let args = json!({"options": {"branch": "main", "a/b": 1}, "list": [10, 20]});
        let find = |p: &str| ArgPath::parse(p).unwrap().find(&args).unwrap().cloned();
        assert_eq!(find("options.branch"), Some(json!("main")));
        assert_eq!(find("/options/branch"), Some(json!("main")));
        assert_eq!(find("/options/a~1b"), Some(json!(1)));
        assert_eq!(find("list.1"), Some(json!(20)));
        assert_eq!(find("options.missing"), None);
        assert!(ArgPath::parse("a..b").is_err());
        assert!(ArgPath::parse("").is_err());
    }

    /// `{"Path": "/etc/shadow"}` alone: a `path` rule would see no argument, while Go's and
    /// .NET's case-insensitive binding reads it as `path`. Refused, naming both spellings,
    /// at any depth and whichever kind of rule reads it.
    #[test]
    fn an_argument_spelled_in_another_case_is_refused() {
        let args = json!({"Path": "/etc/shadow", "opts": {"Mode": "x"}});
        let p = ArgPath::parse("path").unwrap();
        let e = p.find(&args).unwrap_err();
        assert!(
            e.contains("\"Path\"") && e.contains("spell it exactly"),
            "{e}"
        );
        assert!(ArgPath::parse("opts.mode").unwrap().find(&args).is_err());
        assert_eq!(ArgPath::parse("other").unwrap().find(&args), Ok(None));
    }

    #[test]
    fn each_check_names_the_argument_and_what_it_must_be() {
        let re = regex::Regex::new("^acme/").unwrap();
        let r = rule(
            vec![
                ("repo", Check::Pattern(re)),
                ("limit", Check::Min(1.0)),
                ("limit", Check::Max(100.0)),
                ("state", Check::Enum(vec![json!("open"), json!("closed")])),
                ("title", Check::MaxLength(5)),
                ("mode", Check::Deny(vec![json!("force")])),
                ("draft", Check::Type(JsonType::Boolean)),
            ],
            &["repo"],
            &["admin"],
        );
        assert!(r
            .check(Some(&json!({"repo": "acme/x", "limit": 5})))
            .is_ok());
        assert_eq!(err(&r, json!({})), r#"argument "repo" is required"#);
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "admin": true})),
            r#"argument "admin" is not allowed"#
        );
        assert_eq!(
            err(&r, json!({"repo": "evil/x"})),
            r#"argument "repo" must be a string matching ^acme/"#
        );
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "limit": 0})),
            r#"argument "limit" must be a number of at least 1"#
        );
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "limit": "5"})),
            r#"argument "limit" must be a number of at least 1"#
        );
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "limit": 101})),
            r#"argument "limit" must be a number of at most 100"#
        );
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "state": "all"})),
            r#"argument "state" must be one of "open", "closed""#
        );
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "title": "héllo!"})),
            r#"argument "title" must be at most 5 long (it is 6)"#
        );
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "mode": "force"})),
            r#"argument "mode" must not be "force""#
        );
        assert_eq!(
            err(&r, json!({"repo": "acme/x", "draft": "yes"})),
            r#"argument "draft" must be a boolean"#
        );
        assert_eq!(r.check(None).unwrap_err().rule, "r1");
    }

    #[test]
    fn prefixes_are_checked_after_resolving_dot_segments() {
        let r = rule(vec![("path", Check::Prefix("/srv/data/".into()))], &[], &[]);
        let ok = |p: &str| r.check(Some(&json!({ "path": p }))).is_ok();
        assert!(ok("/srv/data/a.txt"));
        assert!(ok("/srv/data/./x/../b.txt"));
        assert!(ok("/srv//data/c"));
        assert!(!ok("/srv/data/../etc/passwd"));
        assert!(!ok("/srv/data/../../../etc/passwd"));
        assert!(!ok("/srv/database"));
        let repo = rule(vec![("repo", Check::Prefix("acme/".into()))], &[], &[]);
        assert!(repo.check(Some(&json!({"repo": "acme/tools"}))).is_ok());
        assert!(repo
            .check(Some(&json!({"repo": "acme/../evil/x"})))
            .is_err());
        assert!(repo.check(Some(&json!({"repo": "../acme/x"}))).is_err());
    }

    #[test]
    fn rules_apply_by_upstream_tool_pattern() {
        let r = rule(vec![], &[], &[]);
        assert!(r.applies_to("github", "list_issues"));
        assert!(!r.applies_to("crm", "list_issues"));
    }

    #[test]
    fn rules_cover_callers_and_servers_they_name() {
        let groups = vec!["contractors".to_string()];
        let contractor = Caller {
            issuer: "idp",
            subject: "carol",
            groups: &groups,
            roles: &[],
            agent: Some("ci-bot"),
        };
        let staff = Caller {
            issuer: "idp",
            subject: "sam",
            groups: &[],
            roles: &[],
            agent: None,
        };
        let mut r = rule(vec![], &[], &["force"]);
        assert!(r.covers("github", "push", None, &staff));
        r.servers = vec!["eng".into()];
        assert!(
            !r.covers("github", "push", None, &staff),
            "not on plain routes"
        );
        assert!(!r.covers("github", "push", Some("ops"), &staff));
        assert!(r.covers("github", "push", Some("eng"), &staff));
        r.when = Some(Principals {
            groups: groups.clone(),
            ..Default::default()
        });
        assert!(!r.covers("github", "push", Some("eng"), &staff));
        assert!(r.covers("github", "push", Some("eng"), &contractor));
        r.when = Some(Principals {
            agents: vec!["ci-bot".into()],
            ..Default::default()
        });
        assert!(
            r.covers("github", "push", Some("eng"), &contractor),
            "by agent"
        );
        r.when = Some(Principals {
            issuers: vec!["idp".into()],
            ..Default::default()
        });
        assert!(r.covers("github", "push", Some("eng"), &staff), "by issuer");
        assert!(!r.covers("github", "push", Some("eng"), &Caller::ANONYMOUS));
        assert!(!r.unconditional_on("eng"));
    }

    #[test]
    fn allow_when_admits_only_the_callers_it_names() {
        let roles = vec!["admin".to_string()];
        let admin = Caller {
            issuer: "idp",
            subject: "ada",
            groups: &[],
            roles: &roles,
            agent: None,
        };
        let mut r = rule(vec![], &[], &[]);
        assert!(r.admits(&Caller::ANONYMOUS).is_ok(), "no allow_when");
        r.allow_when = Some(Principals {
            roles: roles.clone(),
            ..Default::default()
        });
        assert!(r.admits(&admin).is_ok());
        let v = r.admits(&Caller::ANONYMOUS).unwrap_err();
        assert_eq!(v.rule, "r1");
        assert!(v.message.contains("allow_when"), "{}", v.message);
        assert!(!r.reads_arguments());
    }
}
