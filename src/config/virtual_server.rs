//! The `virtual_servers` section: aggregating MCP endpoints that show each principal a
//! slice of the upstreams' tools (access list, allow/deny patterns, per-principal rules,
//! per-tool overrides, environment).
//!
//! Tool patterns and exposed-name rules come from the leaf [`crate::policy`], which the
//! request path applies too, so config and registry agree on what a pattern means.

use std::collections::BTreeMap;

use crate::policy::names::is_valid_exposed;
use crate::policy::pattern::ToolPattern;

use super::principals::{self, Principals};
use super::raw::{RawPrincipals, RawVirtualServer};
use super::syntax::valid_name;
use super::{AuthConfig, ConfigError, Listener, Upstream, METADATA_PREFIX};

/// A validated principal-specific tool rule.
#[derive(Debug, Clone)]
pub struct ToolRule {
    pub who: Principals,
    pub allow: Vec<ToolPattern>,
    pub deny: Vec<ToolPattern>,
    /// The same, for prompts and resources.
    pub items: ItemPatterns,
}

/// Allow/deny patterns of one kind of catalog item.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    pub allow: Vec<ToolPattern>,
    pub deny: Vec<ToolPattern>,
}

/// `allow_prompts`/`deny_prompts` and `allow_resources`/`deny_resources` of a virtual server
/// or one of its rules: `upstream.name` and `upstream.uri` globs, read as the tool ones.
#[derive(Debug, Clone, Default)]
pub struct ItemPatterns {
    pub prompts: Patterns,
    pub resources: Patterns,
}

impl ItemPatterns {
    /// Parses the four lists; errors name `<at>.<key>[k]`.
    fn parse(
        at: &str,
        allow_prompts: &[String],
        deny_prompts: &[String],
        allow_resources: &[String],
        deny_resources: &[String],
    ) -> Result<ItemPatterns, ConfigError> {
        // The tool pattern's message, with the form these lists take.
        let parse = |key: &str, list: &[String], form: &str| {
            patterns(&format!("{at}.{key}"), list).map_err(|e| {
                ConfigError::new(e.path.clone(), format!("{}; here: {form}", e.message))
            })
        };
        let prompt = "<upstream>.<prompt name>, e.g. docs.greet, docs.*";
        let resource = "<upstream>.<the upstream's own URI>, e.g. docs.file:///*, apps.ui://*";
        Ok(ItemPatterns {
            prompts: Patterns {
                allow: parse("allow_prompts", allow_prompts, prompt)?,
                deny: parse("deny_prompts", deny_prompts, prompt)?,
            },
            resources: Patterns {
                allow: parse("allow_resources", allow_resources, resource)?,
                deny: parse("deny_resources", deny_resources, resource)?,
            },
        })
    }
}

/// A validated per-tool override.
#[derive(Debug, Clone, Default)]
pub struct ToolOverride {
    pub name: Option<String>,
    pub description: Option<String>,
    pub annotations: Option<serde_json::Value>,
    pub pinned: serde_json::Map<String, serde_json::Value>,
}

/// A validated virtual server.
#[derive(Debug, Clone)]
pub struct VirtualServer {
    pub name: String,
    pub route: String,
    /// Canonical URL (`auth.resource` + route) when auth is configured.
    pub resource_url: Option<String>,
    pub metadata_path: String,
    pub access: Principals,
    /// `access.anonymous`: unauthenticated callers may use it (on `auth: none` listeners
    /// that list it; validation guarantees `access` is then empty).
    pub anonymous: bool,
    pub allow: Vec<ToolPattern>,
    pub deny: Vec<ToolPattern>,
    pub rules: Vec<ToolRule>,
    /// Prompt and resource patterns (the rules' are in [`ToolRule::items`]).
    pub items: ItemPatterns,
    /// Keyed by `upstream.tool`.
    pub tools: BTreeMap<String, ToolOverride>,
    /// Indices of the upstreams it may include (by its patterns, and its environment).
    pub upstreams: Vec<usize>,
    pub environment: Option<String>,
    /// Which exposed tools wait for a human approver besides `approvals.rules`.
    pub require_approval: super::approvals::RequireApproval,
    /// Prefixed or the upstreams' own names ([`crate::registry::naming::Style`]).
    pub names: super::Names,
}

/// Validates `virtual_servers`: names, routes (no clash with listener routes), access,
/// tool patterns and rules, which upstreams each includes (by its patterns and environment),
/// and per-tool overrides. Which listeners serve them is decided afterwards
/// (`listener::assign_virtual_servers`), once they are known by name.
pub(super) fn validate(
    raw: Vec<RawVirtualServer>,
    upstreams: &[Upstream],
    listeners: &[Listener],
    auth: Option<&AuthConfig>,
) -> Result<Vec<VirtualServer>, ConfigError> {
    let mut out: Vec<VirtualServer> = Vec::with_capacity(raw.len());
    for (i, v) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("virtual_servers[{i}].{f}");
        if !valid_name(&v.name) || out.iter().any(|o| o.name == v.name) {
            return Err(ConfigError::new(
                at("name"),
                format!("invalid or duplicate name {:?}", v.name),
            ));
        }
        if !v.route.starts_with('/') || v.route.contains(['?', '#', ' ']) {
            return Err(ConfigError::new(
                at("route"),
                format!("invalid path {:?}: must start with /", v.route),
            ));
        }
        let clash = listeners
            .iter()
            .any(|l| l.routes.iter().any(|r| r.path == v.route))
            || out.iter().any(|o| o.route == v.route);
        if clash {
            return Err(ConfigError::new(
                at("route"),
                format!("{:?} is already a route", v.route),
            ));
        }
        let a = &v.access;
        if a.anonymous && !(a.subjects.is_empty() && a.groups.is_empty() && a.roles.is_empty()) {
            return Err(ConfigError::new(
                at("access"),
                "anonymous: true lets every caller in, and an anonymous caller has no subject, group or role; use either anonymous or subjects/groups/roles",
            ));
        }
        let allow = patterns(&at("allow_tools"), &v.allow_tools)?;
        let deny = patterns(&at("deny_tools"), &v.deny_tools)?;
        let items = ItemPatterns::parse(
            &format!("virtual_servers[{i}]"),
            &v.allow_prompts,
            &v.deny_prompts,
            &v.allow_resources,
            &v.deny_resources,
        )?;
        if v.rules.len() > 64 {
            return Err(ConfigError::new(
                at("rules"),
                format!("{} rules; at most 64 per virtual server", v.rules.len()),
            ));
        }
        let mut rules = Vec::with_capacity(v.rules.len());
        for (j, r) in v.rules.into_iter().enumerate() {
            rules.push(ToolRule {
                allow: patterns(
                    &format!("virtual_servers[{i}].rules[{j}].allow_tools"),
                    &r.allow_tools,
                )?,
                deny: patterns(
                    &format!("virtual_servers[{i}].rules[{j}].deny_tools"),
                    &r.deny_tools,
                )?,
                items: ItemPatterns::parse(
                    &format!("virtual_servers[{i}].rules[{j}]"),
                    &r.allow_prompts,
                    &r.deny_prompts,
                    &r.allow_resources,
                    &r.deny_resources,
                )?,
                who: principals::validate(
                    &format!("virtual_servers[{i}].rules[{j}]"),
                    RawPrincipals {
                        subjects: r.subjects,
                        groups: r.groups,
                        roles: r.roles,
                        ..RawPrincipals::default()
                    },
                    auth,
                )?,
            });
        }
        // Included upstreams: those some allow pattern (top level or in a rule) can name;
        // all of them when nothing is allowed explicitly.
        let all_allow: Vec<_> = allow
            .iter()
            .chain(rules.iter().flat_map(|r| r.allow.iter()))
            .collect();
        let mut included = Vec::new();
        for (k, u) in upstreams.iter().enumerate() {
            let named =
                all_allow.is_empty() || all_allow.iter().any(|p| p.matches_upstream(&u.name));
            if !named {
                continue;
            }
            if let Some(env) = &v.environment {
                if u.environment.as_ref() != Some(env) {
                    // An explicit pattern naming an upstream of another environment is an error;
                    // wildcards just skip it.
                    if all_allow.iter().any(|p| p.names_upstream_exactly(&u.name)) {
                        return Err(ConfigError::new(
                            at("allow_tools"),
                            format!(
                                "virtual server {:?} is environment {env:?} but upstream {:?} is {}",
                                v.name,
                                u.name,
                                u.environment.as_deref().map_or("untagged".to_string(), |e| format!("{e:?}"))
                            ),
                        ));
                    }
                    continue;
                }
            }
            included.push(k);
        }
        let mut tools = BTreeMap::new();
        for (key, o) in v.tools {
            let Some((up, _tool)) = key.split_once('.') else {
                return Err(ConfigError::new(
                    at(&format!("tools.{key}")),
                    "keys are upstream.tool",
                ));
            };
            if !upstreams.iter().any(|u| u.name == up) {
                return Err(ConfigError::new(
                    at(&format!("tools.{key}")),
                    format!("unknown upstream {up:?}"),
                ));
            }
            if let Some(n) = &o.name {
                if !is_valid_exposed(n) {
                    return Err(ConfigError::new(
                        at(&format!("tools.{key}.name")),
                        format!("{n:?} must match ^[a-zA-Z0-9_-]{{1,64}}$"),
                    ));
                }
            }
            tools.insert(
                key,
                ToolOverride {
                    name: o.name,
                    description: o.description,
                    annotations: o.annotations,
                    pinned: o.pinned,
                },
            );
        }
        out.push(VirtualServer {
            resource_url: auth.map(|a| format!("{}{}", a.resource, v.route)),
            metadata_path: format!("{METADATA_PREFIX}{}", v.route),
            name: v.name,
            route: v.route,
            anonymous: v.access.anonymous,
            access: principals::validate(
                &at("access"),
                RawPrincipals {
                    subjects: v.access.subjects,
                    groups: v.access.groups,
                    roles: v.access.roles,
                    ..RawPrincipals::default()
                },
                auth,
            )?,
            allow,
            deny,
            rules,
            items,
            tools,
            upstreams: included,
            environment: v.environment,
            require_approval: v.require_approval,
            names: v.names,
        });
    }
    Ok(out)
}

/// Parses the tool patterns of the list at `path` (errors name `path[k]`).
pub(super) fn patterns(path: &str, list: &[String]) -> Result<Vec<ToolPattern>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(k, p)| {
            ToolPattern::parse(p).map_err(|m| ConfigError::new(format!("{path}[{k}]"), m))
        })
        .collect()
}
