//! `policies[]`: argument rules, validated into [`PolicyRule`]s (regular expressions
//! compiled once here, paths parsed, tool patterns checked against the upstreams).

use crate::policy::arguments::{ArgPath, Check, JsonType, PolicyRule};

use super::principals;
use super::raw::{RawArgumentChecks, RawPolicy};
use super::syntax::valid_name;
use super::virtual_server::patterns;
use super::{AuthConfig, ConfigError, Upstream, VirtualServer};

/// Largest compiled size of one `pattern` (regex's own default is 10 MiB per expression;
/// rules are checked on every call they cover, so keep them small).
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;

pub(super) fn validate(
    raw: Vec<RawPolicy>,
    upstreams: &[Upstream],
    virtual_servers: &[VirtualServer],
    auth: Option<&AuthConfig>,
) -> Result<Vec<PolicyRule>, ConfigError> {
    let mut out: Vec<PolicyRule> = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("policies[{i}].{f}");
        if !valid_name(&p.id) || out.iter().any(|o| o.id == p.id) {
            return Err(ConfigError::new(
                at("id"),
                format!(
                    "invalid or duplicate id {:?}: letters, digits, _ and -, at most 32",
                    p.id
                ),
            ));
        }
        if p.tools.is_empty() {
            return Err(ConfigError::new(
                at("tools"),
                "name the tools the rule covers (upstream.tool patterns, as allow_tools)",
            ));
        }
        let tools = patterns(&at("tools"), &p.tools)?;
        for (k, t) in tools.iter().enumerate() {
            if !upstreams.iter().any(|u| t.matches_upstream(&u.name)) {
                return Err(ConfigError::new(
                    format!("{}[{k}]", at("tools")),
                    format!("{:?} matches no configured upstream", p.tools[k]),
                ));
            }
        }
        let paths = |field: &str, list: &[String]| -> Result<Vec<ArgPath>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(k, t)| {
                    ArgPath::parse(t)
                        .map_err(|m| ConfigError::new(format!("{}[{k}]", at(field)), m))
                })
                .collect()
        };
        let required = paths("required", &p.required)?;
        let forbidden = paths("forbidden", &p.forbidden)?;
        let mut checks = Vec::new();
        for (name, c) in &p.arguments {
            let at = |f: &str| format!("policies[{i}].arguments.{name}{f}");
            let path = ArgPath::parse(name).map_err(|m| ConfigError::new(at(""), m))?;
            let before = checks.len();
            for check in argument_checks(c, &at)? {
                checks.push((path.clone(), check));
            }
            if checks.len() == before {
                return Err(ConfigError::new(
                    at(""),
                    "no check: use enum, pattern, min, max, max_length, prefix, deny or type",
                ));
            }
        }
        for (k, s) in p.virtual_servers.iter().enumerate() {
            if !virtual_servers.iter().any(|v| &v.name == s) {
                return Err(ConfigError::new(
                    format!("{}[{k}]", at("virtual_servers")),
                    format!("{s:?} is not a configured virtual server"),
                ));
            }
        }
        let who = |field: &str, raw: Option<super::raw::RawPrincipals>| {
            raw.map(|r| {
                let p = principals::validate(&at(field), r, auth)?;
                if p.is_everyone() {
                    return Err(ConfigError::new(
                        at(field),
                        "name at least one of subjects, groups, roles, issuers, agents (or leave it out)",
                    ));
                }
                Ok(p)
            })
            .transpose()
        };
        let when = who("when", p.when)?;
        let allow_when = who("allow_when", p.allow_when)?;
        if checks.is_empty() && required.is_empty() && forbidden.is_empty() && allow_when.is_none()
        {
            return Err(ConfigError::new(
                format!("policies[{i}]"),
                "the rule checks nothing: give arguments, required, forbidden or allow_when",
            ));
        }
        out.push(PolicyRule {
            id: p.id,
            tools,
            servers: p.virtual_servers,
            when,
            allow_when,
            checks,
            required,
            forbidden,
        });
    }
    Ok(out)
}

fn argument_checks(
    c: &RawArgumentChecks,
    at: &dyn Fn(&str) -> String,
) -> Result<Vec<Check>, ConfigError> {
    let mut out = Vec::new();
    if let Some(values) = &c.one_of {
        if values.is_empty() {
            return Err(ConfigError::new(
                at(".enum"),
                "must list at least one value",
            ));
        }
        out.push(Check::Enum(values.clone()));
    }
    if let Some(p) = &c.pattern {
        let re = regex::RegexBuilder::new(p)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                ConfigError::new(at(".pattern"), format!("invalid regular expression: {e}"))
            })?;
        out.push(Check::Pattern(re));
    }
    for (field, v) in [(".min", c.min), (".max", c.max)] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(ConfigError::new(at(field), "must be a finite number"));
        }
    }
    if let (Some(min), Some(max)) = (c.min, c.max) {
        if min > max {
            return Err(ConfigError::new(
                at(".min"),
                format!("{min} is greater than max {max}"),
            ));
        }
    }
    out.extend(c.min.map(Check::Min));
    out.extend(c.max.map(Check::Max));
    out.extend(c.max_length.map(Check::MaxLength));
    if let Some(prefix) = &c.prefix {
        if prefix.is_empty() || prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(ConfigError::new(
                at(".prefix"),
                format!("{prefix:?}: give a non-empty prefix without . or .. segments"),
            ));
        }
        out.push(Check::Prefix(prefix.clone()));
    }
    if let Some(values) = &c.deny {
        out.push(Check::Deny(values.clone()));
    }
    if let Some(kind) = &c.kind {
        let t = JsonType::parse(kind).ok_or_else(|| {
            ConfigError::new(
                at(".type"),
                format!("{kind:?}: use string, number, integer, boolean, object or array"),
            )
        })?;
        out.push(Check::Type(t));
    }
    Ok(out)
}
