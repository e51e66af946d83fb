//! Prompts, resources and resource templates as catalog entries: what a virtual server's
//! upstreams offer besides tools, under exposed names, and who may see each one.
//!
//! - A prompt is exposed as `<upstream><separator><name>`, by the tools' naming function
//!   ([`naming::exposed`], no overrides).
//! - A resource (or template) URI is exposed as `<scheme>://mcpgw/<upstream>/<rest>` for the
//!   upstream's own `<scheme>:<rest>` ([`expose_uri`], [`own_uri`]). The scheme is kept
//!   because MCP Apps hosts only render `ui://` resources; `<rest>` is kept byte for byte (no
//!   percent-encoding) so a template's `{expressions}` and the client's expansion of them,
//!   query strings and percent signs all reach the upstream exactly as the upstream wrote
//!   them. docs/mcp-decisions.md, "Resource URIs on virtual servers".
//! - With `names: upstream` ([`Style::Own`]) prompts keep their own names and resources their
//!   own URIs. A URI no list showed (a template the client expanded) then carries no upstream
//!   name: it goes to the server's one upstream, or to the one upstream with a template whose
//!   literal start (before its first `{`) the URI begins with; with none or several it is
//!   refused as unknown rather than guessed.
//!
//! Visibility uses the virtual server's `allow_prompts`/`deny_prompts` and
//! `allow_resources`/`deny_resources` (and its rules'), matched as `upstream.name` and
//! `upstream.uri` (the upstream's own URI or template) with the same globs as tools. A read
//! of a URI the list never showed (a template expanded by the client) is decided by the
//! same patterns on the URI it names.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

use super::naming::{self, Style};
use super::Snapshot;
use crate::config::{Config, Patterns, VirtualServer};
use crate::policy::pattern::ToolPattern;

/// The authority every exposed URI carries: marks it as the gateway's.
const AUTHORITY: &str = "mcpgw";

/// What kind of item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Prompt,
    Resource,
    Template,
}

impl Kind {
    /// The list result's member and the definition's key of the exposed name.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Kind::Prompt => ("prompts", "name"),
            Kind::Resource => ("resources", "uri"),
            Kind::Template => ("resourceTemplates", "uriTemplate"),
        }
    }
}

/// One prompt, resource or template as a virtual server exposes it.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: Kind,
    /// The exposed name (prompts) or URI (resources, templates).
    pub exposed: String,
    /// Index of the owning upstream.
    pub upstream: usize,
    pub upstream_name: String,
    /// The upstream's own name or URI.
    pub own: String,
    /// Definition as advertised (exposed name or URI in place).
    pub definition: Value,
    /// The owning upstream is down.
    pub unavailable: bool,
}

/// Everything besides tools a virtual server offers at one registry generation.
#[derive(Debug, Default)]
pub struct Items {
    pub entries: Vec<Item>,
    /// Some upstream of the server answers `completion/complete`.
    pub completions: bool,
    /// Some upstream of the server answers `logging/setLevel`.
    pub logging: bool,
    /// Some upstream of the server answers `resources/subscribe`.
    pub subscribe: bool,
    by_name: HashMap<(Kind, String), usize>,
    /// Upstreams (indexes) that serve at least one resource or template here: a link in a
    /// result can only be read through the server when its upstream serves resources.
    serving: std::collections::HashSet<usize>,
}

impl Items {
    /// Build from the registry snapshot: every prompt, resource and template of the server's
    /// upstreams. Exposed names that collide are left out (both), as for tools.
    pub fn build(config: &Config, vs: &VirtualServer, snapshot: &Snapshot) -> Items {
        let mut items = Items::default();
        let mut colliding = Vec::new();
        let style = Style::of(vs.names, &config.registry.separator);
        for &i in &vs.upstreams {
            let Some(u) = config.upstreams.get(i) else {
                continue;
            };
            let Some(ut) = snapshot.upstreams.get(&u.name) else {
                continue;
            };
            let down = ut.health != super::Health::Up;
            items.completions |= ut.offers.completions;
            items.logging |= ut.offers.logging;
            items.subscribe |= ut.offers.subscribe;
            let lists = [
                (Kind::Prompt, &ut.offers.prompts),
                (Kind::Resource, &ut.offers.resources),
                (Kind::Template, &ut.offers.templates),
            ];
            for (kind, list) in lists {
                let key = kind.keys().1;
                for def in list {
                    let Some(own) = def.get(key).and_then(Value::as_str) else {
                        continue;
                    };
                    let exposed = match kind {
                        Kind::Prompt => Some(naming::exposed(style, &u.name, own)),
                        Kind::Resource | Kind::Template => expose_uri(style, &u.name, own),
                    };
                    let Some(exposed) = exposed else {
                        log::warn!(
                            "virtual server {:?}: upstream {:?} offers {own:?}, not a URI; left out",
                            vs.name,
                            u.name
                        );
                        continue;
                    };
                    let mut definition = def.clone();
                    definition[key] = Value::String(exposed.clone());
                    if items.by_name.contains_key(&(kind, exposed.clone())) {
                        log::error!(
                            "virtual server {:?}: two upstreams' items are both exposed as {exposed:?}; both left out",
                            vs.name
                        );
                        colliding.push((kind, exposed));
                        continue;
                    }
                    items
                        .by_name
                        .insert((kind, exposed.clone()), items.entries.len());
                    items.entries.push(Item {
                        kind,
                        exposed,
                        upstream: i,
                        upstream_name: u.name.clone(),
                        own: own.to_string(),
                        definition,
                        unavailable: down,
                    });
                }
            }
        }
        if !colliding.is_empty() {
            let keep: Vec<Item> = std::mem::take(&mut items.entries)
                .into_iter()
                .filter(|e| !colliding.contains(&(e.kind, e.exposed.clone())))
                .collect();
            items.by_name = keep
                .iter()
                .enumerate()
                .map(|(n, e)| ((e.kind, e.exposed.clone()), n))
                .collect();
            items.entries = keep;
        }
        items.serving = items
            .entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::Resource | Kind::Template))
            .map(|e| e.upstream)
            .collect();
        items
    }

    /// Whether upstream `upstream` (index) serves resources on this server.
    pub fn serves_resources(&self, upstream: usize) -> bool {
        self.serving.contains(&upstream)
    }

    /// The position and entry of an exposed prompt name or resource URI, whoever asks.
    pub fn resolve(&self, kind: Kind, exposed: &str) -> Option<(usize, &Item)> {
        let i = *self.by_name.get(&(kind, exposed.to_string()))?;
        Some((i, self.entries.get(i)?))
    }

    /// Which upstream of `vs` an exposed URI no list showed belongs to: `(upstream index,
    /// name, its own URI)`. Prefixed: the upstream the URI names, if it is one of this
    /// server's. Own names: see the module doc.
    pub fn owner_of_uri<'c>(
        &self,
        config: &'c Config,
        vs: &VirtualServer,
        exposed: &str,
    ) -> Option<(usize, &'c str, String)> {
        let (i, own) = match Style::of(vs.names, &config.registry.separator) {
            Style::Prefixed(_) => {
                let (upstream, own) = own_uri(exposed)?;
                let own = unlisted_own(&own)?;
                let &i = vs
                    .upstreams
                    .iter()
                    .find(|&&i| config.upstreams.get(i).is_some_and(|u| u.name == upstream))?;
                (i, own)
            }
            Style::Own => {
                let own = unlisted_own(exposed)?;
                let single = vs.upstreams.len() == 1;
                let mut owners = vs.upstreams.iter().copied().filter(|&i| {
                    single
                        || self.entries.iter().any(|e| {
                            e.kind == Kind::Template
                                && e.upstream == i
                                && own.starts_with(&template_start(&e.own))
                        })
                });
                let i = owners.next()?;
                if owners.next().is_some() {
                    return None;
                }
                (i, own)
            }
        };
        Some((i, config.upstreams.get(i)?.name.as_str(), own))
    }

    /// The JSON array of the `kind` items a caller of `class` may see.
    pub fn list_json(&self, vs: &VirtualServer, class: u64, kind: Kind) -> Bytes {
        let seen: Vec<&Value> = self
            .entries
            .iter()
            .filter(|e| e.kind == kind && visible(vs, class, e.kind, &e.upstream_name, &e.own))
            .map(|e| &e.definition)
            .collect();
        Bytes::from(serde_json::to_vec(&seen).unwrap_or_else(|_| b"[]".to_vec()))
    }

    /// Whether any item of `kind` exists (the server declares the capability).
    pub fn has(&self, kind: Kind) -> bool {
        self.entries.iter().any(|e| e.kind == kind)
    }
}

/// The refusal for a name or URI that does not exist or is hidden (the same answer: a
/// hidden item's existence is not disclosed). -32602, as 2026-07-28 says for an unknown
/// resource (the handshake era's -32002 is kept out of use: docs/mcp-decisions.md).
pub fn unknown(kind: Kind, exposed: &str) -> crate::error::Reject {
    crate::error::Reject::UnknownItem {
        kind: match kind {
            Kind::Prompt => "prompt",
            Kind::Resource | Kind::Template => "resource",
        },
        name: crate::error::clip(exposed),
    }
}

/// The list result's member name for `kind`.
pub fn list_key(kind: Kind) -> &'static str {
    kind.keys().0
}

fn any_match(list: &[ToolPattern], upstream: &str, name: &str) -> bool {
    list.iter().any(|p| p.matches(upstream, name))
}

/// Whether a caller of `class` may see upstream `u`'s item `name` (its own name or URI) of
/// `kind`: allowed by the server (or by a rule that applies) and denied by neither; with no
/// allow list of that kind anywhere on the server, everything is allowed. The same reading as
/// tools ([`super::catalog`]).
pub fn visible(vs: &VirtualServer, class: u64, kind: Kind, u: &str, name: &str) -> bool {
    fn pick(p: &crate::config::ItemPatterns, kind: Kind) -> &Patterns {
        match kind {
            Kind::Prompt => &p.prompts,
            Kind::Resource | Kind::Template => &p.resources,
        }
    }
    let applies = |i: usize| i < 64 && class & (1u64 << i) != 0;
    let top = pick(&vs.items, kind);
    let rules = || {
        vs.rules
            .iter()
            .enumerate()
            .map(move |(i, r)| (i, pick(&r.items, kind)))
    };
    let allowed = (top.allow.is_empty() && rules().all(|(_, r)| r.allow.is_empty()))
        || any_match(&top.allow, u, name)
        || rules().any(|(i, r)| applies(i) && any_match(&r.allow, u, name));
    let denied = any_match(&top.deny, u, name)
        || rules().any(|(i, r)| applies(i) && any_match(&r.deny, u, name));
    allowed && !denied
}

/// The exposed URI of upstream `upstream`'s own `uri` (`<scheme>:<rest>`): prefixed,
/// `<scheme>://mcpgw/<upstream>/<rest>`; own names, `uri` itself. `None` when `uri` has no
/// scheme (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`, then `:`).
pub fn expose_uri(style: Style<'_>, upstream: &str, uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| match style {
        Style::Prefixed(_) => format!("{scheme}://{AUTHORITY}/{upstream}/{rest}"),
        Style::Own => uri.to_string(),
    })
}

/// What every expansion of URI template `template` starts with, in [`unlisted_own`]'s
/// reading (scheme lowercased): the text before its first `{`.
fn template_start(template: &str) -> String {
    let literal = template.split('{').next().unwrap_or_default();
    match literal.split_once(':') {
        Some((scheme, rest)) => format!("{}:{rest}", scheme.to_ascii_lowercase()),
        None => literal.to_ascii_lowercase(),
    }
}

/// A tool definition's MCP Apps view (`_meta.ui.resourceUri`, and the older flat
/// `_meta["ui/resourceUri"]`) rewritten to the exposed URI of upstream `upstream`'s resource,
/// so a host reads it through the virtual server. Other `_meta` is left as sent.
pub fn expose_view(definition: &mut Value, style: Style<'_>, upstream: &str) {
    let Some(meta) = definition.get_mut("_meta").and_then(Value::as_object_mut) else {
        return;
    };
    let rewrite = |v: &mut Value| {
        if let Some(exposed) = v.as_str().and_then(|u| expose_uri(style, upstream, u)) {
            *v = Value::String(exposed);
        }
    };
    if let Some(v) = meta.get_mut("ui").and_then(|ui| ui.get_mut("resourceUri")) {
        rewrite(v);
    }
    if let Some(v) = meta.get_mut("ui/resourceUri") {
        rewrite(v);
    }
}

/// The upstream and its own URI of an exposed one ([`expose_uri`] reversed); `None` for a
/// URI that is not the gateway's.
pub fn own_uri(exposed: &str) -> Option<(&str, String)> {
    let (scheme, rest) = exposed.split_once("://")?;
    let rest = rest.strip_prefix(AUTHORITY)?.strip_prefix('/')?;
    let (upstream, own_rest) = rest.split_once('/')?;
    let valid_upstream = !upstream.is_empty()
        && upstream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    valid_upstream.then(|| (upstream, format!("{scheme}:{own_rest}")))
}

/// A URI no list showed, in the one reading both the patterns and the upstream give it, or
/// `None` when two readers could resolve it differently. The patterns decide an unlisted URI
/// on its text while the upstream resolves it, so: the scheme is lowercased (schemes are
/// case-insensitive, RFC 3986 3.1: `SECRET:` must meet a `secret:*` rule), and a URI with a
/// dot segment (`.`, `..`), a backslash or a percent-escaped `.`, `/`, `\` or `%` is refused
/// (`file:///public/../secret` or `%2e%2e` would pass `file:///public/*` and read elsewhere).
/// Listed URIs are the upstream's own exact strings and need none of this.
fn unlisted_own(own: &str) -> Option<String> {
    let (scheme, rest) = own.split_once(':')?;
    let lower = rest.to_ascii_lowercase();
    let escaped = ["%2e", "%2f", "%5c", "%25"]
        .iter()
        .any(|e| lower.contains(e));
    let dots = rest
        .split(['/', '?', '#'])
        .any(|segment| segment == "." || segment == "..");
    if escaped || dots || rest.contains('\\') {
        return None;
    }
    Some(format!("{}:{rest}", scheme.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::{expose_uri, expose_view, own_uri, unlisted_own, Items, Kind, Style};

    const P: Style<'static> = Style::Prefixed("__");

    #[test]
    fn an_unlisted_uri_has_one_reading_or_none() {
        assert_eq!(
            unlisted_own("SECRET://vault/key").as_deref(),
            Some("secret://vault/key")
        );
        assert_eq!(
            unlisted_own("file:///docs/a%20b.md").as_deref(),
            Some("file:///docs/a%20b.md")
        );
        for bad in [
            "file:///public/../secret",
            "file:///public/./x",
            "file:///public/..",
            "file:///public/%2e%2e/secret",
            "file:///public/%2E%2e/secret",
            "file:///public%2fsecret",
            "file:///public%5csecret",
            "file:///public%252e%252e/x",
            "file:///public\\..\\secret",
            "no-scheme",
        ] {
            assert_eq!(unlisted_own(bad), None, "{bad}");
        }
    }
    use crate::registry::{Health, Offers, Snapshot, UpstreamTools};
    use serde_json::json;

    fn upstream(health: Health, offers: Offers) -> UpstreamTools {
        UpstreamTools {
            health,
            tools: vec![],
            refreshed: None,
            quarantined: vec![],
            offers,
            modern: false,
        }
    }

    fn uris(
        items: &Items,
        vs: &crate::config::VirtualServer,
        class: u64,
        kind: Kind,
    ) -> Vec<String> {
        let v: Vec<serde_json::Value> =
            serde_json::from_slice(&items.list_json(vs, class, kind)).unwrap();
        let key = if kind == Kind::Prompt { "name" } else { "uri" };
        v.iter()
            .map(|d| d[key].as_str().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn items_are_namespaced_filtered_per_class_and_collisions_left_out() {
        let config = crate::config::from_yaml(
            r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{ path: /mcp, upstream: docs }]
upstreams:
  - { name: docs, url: "http://127.0.0.1:2/mcp" }
  - { name: a, url: "http://127.0.0.1:3/mcp" }
  - { name: a__b, url: "http://127.0.0.1:4/mcp" }
virtual_servers:
  - name: s
    route: /v/s/mcp
    deny_prompts: [docs.secret]
    allow_resources: ["docs.file:*"]
    rules:
      - { groups: [ops], allow_resources: ["docs.secret:*"], deny_prompts: ["docs.greet"] }
"#,
        )
        .unwrap();
        let mut snap = Snapshot {
            generation: 1,
            ..Default::default()
        };
        let docs = Offers {
            prompts: vec![json!({"name": "greet"}), json!({"name": "secret"})],
            resources: vec![
                json!({"uri": "file:///a.md"}),
                json!({"uri": "secret://k"}),
                json!({"uri": "no scheme"}),
            ],
            templates: vec![json!({"uriTemplate": "file:///{path}"})],
            completions: true,
            logging: false,
            subscribe: false,
        };
        snap.upstreams
            .insert("docs".into(), upstream(Health::Up, docs));
        // `a` + `b__c` and `a__b` + `c` are both exposed as `a__b__c`: both left out.
        let prompt = |n: &str| Offers {
            prompts: vec![json!({ "name": n })],
            ..Offers::default()
        };
        snap.upstreams
            .insert("a".into(), upstream(Health::Up, prompt("b__c")));
        let down = Health::Down { error: "x".into() };
        snap.upstreams
            .insert("a__b".into(), upstream(down, prompt("c")));
        let vs = &config.virtual_servers[0];
        let items = Items::build(&config, vs, &snap);
        assert!(items.completions);
        assert!(items.resolve(Kind::Prompt, "a__b__c").is_none());
        let ops = 1;
        assert_eq!(uris(&items, vs, 0, Kind::Prompt), ["docs__greet"]);
        assert!(uris(&items, vs, ops, Kind::Prompt).is_empty());
        assert_eq!(
            uris(&items, vs, 0, Kind::Resource),
            ["file://mcpgw/docs////a.md"]
        );
        assert_eq!(
            uris(&items, vs, ops, Kind::Resource),
            ["file://mcpgw/docs////a.md", "secret://mcpgw/docs///k"]
        );
        let (_, t) = items
            .resolve(Kind::Template, "file://mcpgw/docs////{path}")
            .unwrap();
        assert_eq!((t.own.as_str(), t.unavailable), ("file:///{path}", false));
        let (_, p) = items.resolve(Kind::Prompt, "docs__greet").unwrap();
        assert_eq!(
            (p.upstream_name.as_str(), p.own.as_str()),
            ("docs", "greet")
        );
        assert_eq!(
            items.owner_of_uri(&config, vs, "file://mcpgw/docs////x"),
            Some((0, "docs", "file:///x".to_string()))
        );
        assert_eq!(
            items.owner_of_uri(&config, vs, "file://mcpgw/zz////x"),
            None
        );
    }

    #[test]
    fn own_names_keep_names_and_uris_and_route_unlisted_uris_by_template() {
        let yaml = |names: &str| {
            format!(
                r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{{ path: /mcp, upstream: docs }}]
upstreams:
  - {{ name: docs, url: "http://127.0.0.1:2/mcp" }}
  - {{ name: wiki, url: "http://127.0.0.1:3/mcp" }}
virtual_servers:
  - {{ name: s, route: /v/s/mcp, names: upstream{names} }}
"#
            )
        };
        let mut snap = Snapshot {
            generation: 1,
            ..Default::default()
        };
        let offers = |prompt: &str, uri: &str, template: &str| Offers {
            prompts: vec![json!({ "name": prompt }), json!({ "name": "shared" })],
            resources: vec![json!({ "uri": uri }), json!({ "uri": "same://x" })],
            templates: vec![json!({ "uriTemplate": template })],
            ..Offers::default()
        };
        snap.upstreams.insert(
            "docs".into(),
            upstream(
                Health::Up,
                offers("greet", "file:///a.md", "file:///{path}"),
            ),
        );
        snap.upstreams.insert(
            "wiki".into(),
            upstream(Health::Up, offers("page", "wiki://home", "wiki://{page}")),
        );
        let config = crate::config::from_yaml(&yaml("")).unwrap();
        let vs = &config.virtual_servers[0];
        let items = Items::build(&config, vs, &snap);
        assert!(items.serves_resources(0) && items.serves_resources(1));
        assert!(!items.serves_resources(2), "no such upstream");
        // Own names; what two upstreams both offer is left out, as for tools.
        assert_eq!(uris(&items, vs, 0, Kind::Prompt), ["greet", "page"]);
        assert_eq!(
            uris(&items, vs, 0, Kind::Resource),
            ["file:///a.md", "wiki://home"]
        );
        let (_, t) = items.resolve(Kind::Template, "wiki://{page}").unwrap();
        assert_eq!(
            (t.upstream_name.as_str(), t.own.as_str()),
            ("wiki", "wiki://{page}")
        );
        // An expansion goes to the one upstream whose template it starts like.
        assert_eq!(
            items.owner_of_uri(&config, vs, "WIKI://start"),
            Some((1, "wiki", "wiki://start".to_string()))
        );
        assert_eq!(
            items.owner_of_uri(&config, vs, "file:///b.md"),
            Some((0, "docs", "file:///b.md".to_string()))
        );
        assert_eq!(items.owner_of_uri(&config, vs, "other://x"), None);
        assert_eq!(items.owner_of_uri(&config, vs, "file:///../x"), None);
        // Over one upstream, every URI is that upstream's.
        let one = crate::config::from_yaml(&yaml(", allow_tools: [\"docs.*\"]")).unwrap();
        let vs = &one.virtual_servers[0];
        let items = Items::build(&one, vs, &snap);
        assert_eq!(uris(&items, vs, 0, Kind::Prompt), ["greet", "shared"]);
        assert_eq!(
            items.owner_of_uri(&one, vs, "other://x"),
            Some((0, "docs", "other://x".to_string()))
        );
        let mut def = json!({"name": "t", "_meta": {"ui": {"resourceUri": "ui://v"}}});
        expose_view(&mut def, Style::Own, "docs");
        assert_eq!(def["_meta"]["ui"]["resourceUri"], "ui://v");
    }

    #[test]
    fn a_tools_mcp_apps_view_names_the_exposed_resource() {
        let mut def = json!({"name": "forecast", "_meta": {
            "ui": {"resourceUri": "ui://weather/view.html", "csp": {}},
            "ui/resourceUri": "ui://weather/view.html",
            "other": "ui://kept"}});
        expose_view(&mut def, P, "apps");
        let exposed = "ui://mcpgw/apps///weather/view.html";
        assert_eq!(def["_meta"]["ui"]["resourceUri"], exposed);
        assert_eq!(def["_meta"]["ui/resourceUri"], exposed);
        assert_eq!(def["_meta"]["other"], "ui://kept");
        let mut plain = json!({"name": "x"});
        expose_view(&mut plain, P, "apps");
        assert_eq!(plain, json!({"name": "x"}));
    }

    #[test]
    fn exposed_uris_round_trip_byte_for_byte() {
        for uri in [
            "ui://weather/view.html",
            "file:///etc/hosts",
            "https://example.com/a?b=c&d=%2F#frag",
            "note:100%25 done",
            "urn:isbn:0451450523",
            "db://rows/{table}/{id}",
            "x:",
            "mcpgw://mcpgw/other/x:y",
        ] {
            let exposed = expose_uri(P, "docs-1", uri).unwrap();
            assert_eq!(
                own_uri(&exposed),
                Some(("docs-1", uri.to_string())),
                "{uri}"
            );
        }
        assert_eq!(
            expose_uri(P, "apps", "ui://weather/view.html").unwrap(),
            "ui://mcpgw/apps///weather/view.html",
            "the scheme survives: MCP Apps hosts render ui:// only"
        );
    }

    #[test]
    fn only_gateway_uris_with_a_scheme_are_accepted() {
        assert_eq!(expose_uri(P, "a", "no-scheme"), None);
        assert_eq!(expose_uri(P, "a", "1x:y"), None);
        assert_eq!(expose_uri(P, "a", ":y"), None);
        assert_eq!(own_uri("ui://weather/view.html"), None);
        assert_eq!(own_uri("ui://mcpgw/"), None);
        assert_eq!(own_uri("ui://mcpgw/bad.name/x"), None);
        assert_eq!(own_uri("ui://mcpgwx/a/x"), None);
    }
}
