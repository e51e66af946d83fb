//! A virtual server's catalog: the registry's tools under their exposed names, with the
//! server's overrides applied, and who may see each one.
//!
//! Built once per (virtual server, registry generation) and shared. `tools/list` answers are
//! pre-serialized per *principal class* (the set of rules that apply to the caller), so the
//! hot path is a cache lookup and a copy, with no JSON tree per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::BoundedMap;

use bytes::Bytes;
use serde_json::Value;

use super::naming::{self, Collision};
use super::Snapshot;
use crate::config::{Config, VirtualServer};
use crate::policy::pattern::ToolPattern;

/// One tool as a virtual server exposes it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub exposed: String,
    /// Index of the owning upstream.
    pub upstream: usize,
    pub upstream_name: String,
    /// The upstream's own name for the tool.
    pub tool: String,
    /// Definition as advertised (name, description, annotations overridden; pinned
    /// arguments removed from `inputSchema`).
    pub definition: Value,
    /// Arguments the gateway sets.
    pub pinned: serde_json::Map<String, Value>,
    /// The owning upstream is down.
    pub unavailable: bool,
    /// Its arguments marked `x-mcp-header` in the upstream's schema (pinned ones included):
    /// the `Mcp-Param-*` headers checked and rebuilt for 2026-07-28 calls
    /// ([`crate::mcp::params`]). Usually none.
    pub param_headers: Vec<crate::mcp::params::ParamHeader>,
}

/// (principal class, offset, page size).
type PageKey = (u64, usize, usize);
/// A serialized page and the offset of the next one.
type Page = (Bytes, Option<usize>);

/// Everything a virtual server offers at one registry generation.
#[derive(Debug)]
pub struct Catalog {
    pub generation: u64,
    pub entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    /// Exposed-name collisions found while building (both origins named); the colliding
    /// tools are left out rather than resolved silently.
    pub collisions: Vec<Collision>,
    /// Prompts, resources and resource templates ([`super::items`]).
    pub items: super::items::Items,
    /// What a 2026-07-28 list result adds after the list ([`crate::mcp::envelope::list_tail`]).
    pub modern_tail: Vec<u8>,
    /// The upstreams (indices into the configuration's) that serve the stateless
    /// 2026-07-28 revision: [`Catalog::speaks_modern`].
    modern_upstreams: Vec<usize>,
    /// Serialized pages by (principal class, offset, page size).
    lists: BoundedMap<PageKey, Page>,
    /// Which entries each principal class may see, decided once per class (glob matching
    /// on every `tools/call` cost ~1,300 instructions).
    visibility: BoundedMap<u64, Arc<[bool]>>,
}

/// Principal classes (and, separately, serialized pages) remembered per catalog. Both caches
/// live as long as the catalog (one registry generation), so their entries never expire
/// ([`NEVER`]): when full, the oldest insert goes.
const MAX_CLASSES: usize = 4096;

/// Expiry of entries that live as long as their catalog; `now` is always 0.
const NEVER: u64 = u64::MAX;

impl Catalog {
    /// Build from the registry snapshot.
    pub fn build(config: &Config, vs: &VirtualServer, snapshot: &Snapshot) -> Catalog {
        let mut candidates = Vec::new();
        for &i in &vs.upstreams {
            let Some(u) = config.upstreams.get(i) else {
                continue;
            };
            let Some(ut) = snapshot.upstreams.get(&u.name) else {
                continue;
            };
            for def in &ut.tools {
                let Some(tool) = def.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if ut.quarantined.iter().any(|q| q == tool) {
                    // Changed definition awaiting approval: hidden, calls refused.
                    continue;
                }
                let key = format!("{}.{tool}", u.name);
                let over = vs.tools.get(&key);
                candidates.push((
                    i,
                    u.name.clone(),
                    tool.to_string(),
                    def,
                    over,
                    ut.health != super::Health::Up,
                ));
            }
        }
        let triples: Vec<(String, String, Option<String>)> = candidates
            .iter()
            .map(|(_, u, t, _, o, _)| (u.clone(), t.clone(), o.and_then(|o| o.name.clone())))
            .collect();
        let style = naming::Style::of(vs.names, &config.registry.separator);
        let (names, collisions) = match naming::assign(&triples, style) {
            Ok(r) => r,
            Err(e) => {
                log::error!("virtual server {:?}: {e}", vs.name);
                (Vec::new(), Vec::new())
            }
        };
        let colliding: Vec<&str> = collisions.iter().map(|c| c.name.as_str()).collect();
        for c in &collisions {
            log::error!("virtual server {:?}: {c}", vs.name);
        }
        let mut entries = Vec::with_capacity(names.len());
        let mut by_name = HashMap::with_capacity(names.len());
        for (exp, (upstream, upstream_name, tool, def, over, down)) in
            names.into_iter().zip(candidates)
        {
            if colliding.contains(&exp.name.as_str()) {
                continue;
            }
            let mut definition = def.clone();
            definition["name"] = Value::String(exp.name.clone());
            let mut pinned = serde_json::Map::new();
            let pins = over.map(|o| &o.pinned);
            if let Some(o) = over {
                if let Some(d) = &o.description {
                    definition["description"] = Value::String(d.clone());
                }
                if let Some(a) = &o.annotations {
                    definition["annotations"] = a.clone();
                }
                pinned = o.pinned.clone();
                if let Some(schema) = definition.get_mut("inputSchema") {
                    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut)
                    {
                        for k in pinned.keys() {
                            props.remove(k);
                        }
                    }
                    if let Some(req) = schema.get_mut("required").and_then(Value::as_array_mut) {
                        req.retain(|r| r.as_str().is_none_or(|r| !pinned.contains_key(r)));
                    }
                }
            }
            // An MCP Apps view the tool names is one of this server's resources: the host
            // reads it by the exposed URI.
            super::items::expose_view(&mut definition, style, &upstream_name);
            // The rules every caller here is held to, said in the schema up front.
            crate::policy::schema::tighten(
                &mut definition,
                config.policies.iter().filter(|r| {
                    r.applies_to(&upstream_name, &tool) && r.unconditional_on(&vs.name)
                }),
            );
            by_name.insert(exp.name.clone(), entries.len());
            let param_headers = def.get("inputSchema").map_or_else(Vec::new, |schema| {
                crate::mcp::params::annotated(schema, pins.unwrap_or(&serde_json::Map::new()))
            });
            entries.push(Entry {
                param_headers,
                exposed: exp.name,
                upstream,
                upstream_name,
                tool,
                definition,
                pinned,
                unavailable: down,
            });
        }
        Catalog {
            generation: snapshot.generation,
            entries,
            by_name,
            collisions,
            items: super::items::Items::build(config, vs, snapshot),
            modern_tail: crate::mcp::envelope::list_tail(
                u64::try_from(config.registry.refresh_interval.as_millis()).unwrap_or(u64::MAX),
                &vs.name,
            ),
            lists: BoundedMap::new(MAX_CLASSES),
            visibility: BoundedMap::new(MAX_CLASSES),
            modern_upstreams: vs
                .upstreams
                .iter()
                .copied()
                .filter(|&i| {
                    // The configuration current now: a reload to `stateless: false` holds
                    // at once, before the refresh it starts has probed anything.
                    config.upstreams.get(i).is_some_and(|u| {
                        u.stateless && snapshot.upstreams.get(&u.name).is_some_and(|t| t.modern)
                    })
                })
                .collect(),
        }
    }

    /// Whether upstream `upstream` (an index into the configuration's upstreams) serves the
    /// stateless 2026-07-28 revision, as its last discovery found: a 2026-07-28 client's
    /// request then goes to it as sent, with no session held for it.
    pub fn speaks_modern(&self, upstream: usize) -> bool {
        self.modern_upstreams.contains(&upstream)
    }

    /// The entry for an exposed name, if `class` may see it.
    pub fn lookup(&self, vs: &VirtualServer, class: u64, exposed: &str) -> Option<&Entry> {
        let (i, e) = self.resolve(exposed)?;
        self.visible(vs, class, i).then_some(e)
    }

    /// The position and entry of an exposed name, whoever asks: resolving a name decides
    /// nothing; [`Catalog::visible`] does (in [`crate::decision::decide`]).
    pub fn resolve(&self, exposed: &str) -> Option<(usize, &Entry)> {
        let i = *self.by_name.get(exposed)?;
        Some((i, self.entries.get(i)?))
    }

    /// Whether a caller of `class` may see the entry at `position`.
    pub fn visible(&self, vs: &VirtualServer, class: u64, position: usize) -> bool {
        self.visibility(vs, class)
            .get(position)
            .copied()
            .unwrap_or(false)
    }

    /// For each entry, whether `class` may see it.
    fn visibility(&self, vs: &VirtualServer, class: u64) -> Arc<[bool]> {
        if let Some(v) = self.visibility.get(&class, 0) {
            return v;
        }
        let v: Arc<[bool]> = self
            .entries
            .iter()
            .map(|e| visible(vs, class, &e.upstream_name, &e.tool))
            .collect();
        self.visibility.insert(class, v.clone(), NEVER, 0);
        v
    }

    /// One page of what `class` may see: the JSON array and the offset of the next page.
    /// Pages are serialized once per (class, offset).
    pub fn tools_page(
        &self,
        vs: &VirtualServer,
        class: u64,
        offset: usize,
        size: usize,
    ) -> (Bytes, Option<usize>) {
        // The hot path: a cache hit is one lookup and a `Bytes` clone.
        let key = (class, offset, size);
        if let Some(hit) = self.lists.get(&key, 0) {
            return hit;
        }
        let seen = self.visibility(vs, class);
        let visible: Vec<&Value> = self
            .entries
            .iter()
            .zip(seen.iter())
            .filter(|(_, &v)| v)
            .map(|(e, _)| &e.definition)
            .collect();
        let end = offset.saturating_add(size).min(visible.len());
        let next = (end < visible.len()).then_some(end);
        let page = visible
            .get(offset.min(visible.len())..end)
            .unwrap_or_default();
        let bytes = Bytes::from(serde_json::to_vec(page).unwrap_or_else(|_| b"[]".to_vec()));
        self.lists.insert(key, (bytes.clone(), next), NEVER, 0);
        (bytes, next)
    }

    /// The JSON array of every tool definition `class` may see (one page of everything).
    pub fn tools_json(&self, vs: &VirtualServer, class: u64) -> Bytes {
        self.tools_page(vs, class, 0, usize::MAX).0
    }
}

/// The principal class: bit `i` set when rule `i` applies to the caller. Config validation
/// caps rules at 64 per virtual server, so every rule has its own bit.
pub fn class_of(vs: &VirtualServer, caller: &crate::config::Caller<'_>) -> u64 {
    vs.rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.who.matches(caller))
        .filter(|(i, _)| *i < 64)
        .fold(0u64, |acc, (i, _)| acc | (1u64 << i))
}

fn any_match(list: &[ToolPattern], upstream: &str, tool: &str) -> bool {
    list.iter().any(|p| p.matches(upstream, tool))
}

/// Whether a caller of `class` may see upstream `u`'s tool `t`: allowed by the server (or by
/// a rule that applies) and denied by neither.
fn visible(vs: &VirtualServer, class: u64, u: &str, t: &str) -> bool {
    let applies = |i: usize| i < 64 && class & (1u64 << i) != 0;
    let allowed = (vs.allow.is_empty() && vs.rules.iter().all(|r| r.allow.is_empty()))
        || any_match(&vs.allow, u, t)
        || vs
            .rules
            .iter()
            .enumerate()
            .any(|(i, r)| applies(i) && any_match(&r.allow, u, t));
    let denied = any_match(&vs.deny, u, t)
        || vs
            .rules
            .iter()
            .enumerate()
            .any(|(i, r)| applies(i) && any_match(&r.deny, u, t));
    allowed && !denied
}

/// Why a caller of `class` does not see upstream `u`'s tool `t` (`None`: it is visible). For
/// the operator CLI.
pub fn why_hidden(vs: &VirtualServer, class: u64, u: &str, t: &str) -> Option<String> {
    let applies = |i: usize| i < 64 && class & (1u64 << i) != 0;
    if let Some(p) = vs.deny.iter().find(|p| p.matches(u, t)) {
        return Some(format!("denied by deny_tools {}", p.as_str()));
    }
    for (i, r) in vs.rules.iter().enumerate() {
        if applies(i) {
            if let Some(p) = r.deny.iter().find(|p| p.matches(u, t)) {
                return Some(format!("denied by rules[{i}].deny_tools {}", p.as_str()));
            }
        }
    }
    if visible(vs, class, u, t) {
        return None;
    }
    Some("not matched by any allow_tools pattern that applies to this principal".into())
}

/// Catalogs of every virtual server, rebuilt when the registry generation changes.
#[derive(Debug, Default)]
pub struct Catalogs {
    built: Mutex<Vec<Option<Arc<Catalog>>>>,
}

impl Catalogs {
    /// The catalog of virtual server `index` for `snapshot` (built on first use per generation).
    pub fn get(&self, config: &Config, index: usize, snapshot: &Snapshot) -> Option<Arc<Catalog>> {
        let vs = config.virtual_servers.get(index)?;
        if let Ok(built) = self.built.lock() {
            if let Some(Some(c)) = built.get(index) {
                if c.generation == snapshot.generation {
                    return Some(c.clone());
                }
            }
        }
        let c = Arc::new(Catalog::build(config, vs, snapshot));
        if let Ok(mut built) = self.built.lock() {
            if built.len() <= index {
                built.resize(index + 1, None);
            }
            built[index] = Some(c.clone());
        }
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Health, UpstreamTools};
    use serde_json::json;

    fn setup() -> (Config, Snapshot) {
        let config = crate::config::from_yaml(
            r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{ path: /mcp, upstream: crm }]
upstreams:
  - { name: crm, url: "http://127.0.0.1:2/mcp" }
virtual_servers:
  - name: s
    route: /v/s/mcp
    allow_tools: [crm.read]
    deny_tools: [crm.drop]
    rules:
      - { groups: [admin], allow_tools: ["crm.*"] }
      - { subjects: [mallory], deny_tools: [crm.read] }
"#,
        )
        .unwrap();
        let tools = ["read", "write", "drop"]
            .iter()
            .map(|n| json!({"name": n, "inputSchema": {"type": "object"}}))
            .collect();
        let mut snap = Snapshot {
            generation: 1,
            ..Default::default()
        };
        snap.upstreams.insert(
            "crm".into(),
            UpstreamTools {
                health: Health::Up,
                tools,
                refreshed: None,
                quarantined: vec![],
                offers: Default::default(),
                modern: false,
            },
        );
        (config, snap)
    }

    fn names(bytes: &Bytes) -> Vec<String> {
        let v: Vec<Value> = serde_json::from_slice(bytes).unwrap();
        v.iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn classes_select_rules_and_deny_always_wins() {
        let (config, snap) = setup();
        let vs = &config.virtual_servers[0];
        let cat = Catalog::build(&config, vs, &snap);
        let class = |subject: &str, groups: &[String]| {
            class_of(
                vs,
                &crate::config::Caller {
                    issuer: "",
                    subject,
                    groups,
                    roles: &[],
                    agent: None,
                },
            )
        };
        let plain = class("alice", &[]);
        let admin = class("root", &["admin".into()]);
        let mallory = class("mallory", &[]);
        assert_eq!((plain, admin, mallory), (0, 1, 2));
        assert_eq!(names(&cat.tools_json(vs, plain)), ["crm__read"]);
        assert_eq!(
            names(&cat.tools_json(vs, admin)),
            ["crm__read", "crm__write"]
        );
        assert!(names(&cat.tools_json(vs, mallory)).is_empty());
        assert!(cat.lookup(vs, plain, "crm__write").is_none());
        assert!(
            cat.lookup(vs, admin, "crm__drop").is_none(),
            "deny wins over a rule allow"
        );
        let read = cat.lookup(vs, admin, "crm__read").unwrap();
        assert_eq!(why_hidden(vs, admin, &read.upstream_name, &read.tool), None);
    }

    #[test]
    fn pages_are_cached_per_class_so_a_cursor_cannot_reach_another_list() {
        let (config, snap) = setup();
        let vs = &config.virtual_servers[0];
        let cat = Catalog::build(&config, vs, &snap);
        let admin = class_of(
            vs,
            &crate::config::Caller {
                issuer: "",
                subject: "root",
                groups: &["admin".into()],
                roles: &[],
                agent: None,
            },
        );
        let (p, next) = cat.tools_page(vs, admin, 0, 1);
        assert_eq!((names(&p), next), (vec!["crm__read".to_string()], Some(1)));
        // Any offset the plain caller names stays within the plain caller's own list.
        for offset in 0..4 {
            let (p, _) = cat.tools_page(vs, 0, offset, 1);
            assert!(names(&p).iter().all(|n| n == "crm__read"), "{offset}");
        }
        let (p, next) = cat.tools_page(vs, 0, usize::MAX, usize::MAX);
        assert!(names(&p).is_empty() && next.is_none());
    }
}
