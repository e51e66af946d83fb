//! One typed view of the registry for operators: what every upstream offers and what every
//! virtual server exposes, built by one function ([`build`]) from the configuration, a
//! registry [`Snapshot`] and the virtual-server [`Catalogs`].
//!
//! The admin API (`GET /admin/registry`) serializes it as it is; `mcp-gateway tools` renders
//! its text and JSON reports from it, adding one principal's point of view (access, rules,
//! visible and hidden tools); a dashboard would read the same structs. Field order is the
//! JSON order.

use serde::Serialize;

use super::catalog::Catalogs;
use super::{naming, Health, Snapshot};
use crate::config::Config;

/// Everything the registry holds at one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryView {
    /// The snapshot's generation (0: never refreshed).
    pub generation: u64,
    /// Every configured upstream, in configuration order.
    pub upstreams: Vec<UpstreamView>,
    /// Every virtual server, in configuration order.
    pub virtual_servers: Vec<ServerView>,
}

/// One upstream as the last discovery round saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamView {
    pub name: String,
    pub environment: Option<String>,
    /// `up`, `down` or `unknown` (not discovered yet).
    pub health: &'static str,
    /// Why discovery failed, when `down`.
    pub error: Option<String>,
    /// Names of the tools it offers (the last known ones when down).
    pub tools: Vec<String>,
    /// Tools whose definition changed since it was approved (hidden everywhere, calls
    /// refused until approved).
    pub quarantined: Vec<String>,
    /// Tool definitions it sent, named or not (a nameless one is counted but never exposed).
    #[serde(skip)]
    pub definitions: usize,
}

/// One virtual server's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerView {
    pub name: String,
    pub route: String,
    pub environment: Option<String>,
    /// Every tool it exposes, before any principal's rules.
    pub tools: Vec<ToolView>,
    /// Exposed-name collisions (the colliding tools are left out of `tools`).
    pub collisions: Vec<String>,
    /// Tools of its upstreams held in quarantine, under the names they would be exposed as.
    /// Not in the admin JSON (whose shape is unchanged); the CLI lists them as hidden.
    #[serde(skip)]
    pub quarantined: Vec<QuarantinedTool>,
}

/// One tool a virtual server exposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolView {
    pub exposed: String,
    pub upstream: String,
    /// The upstream's own name for it.
    pub tool: String,
    /// The owning upstream is down: listed, but calls will fail.
    pub unavailable: bool,
}

/// A quarantined tool of a virtual server's upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedTool {
    pub exposed: String,
    pub upstream: String,
    pub tool: String,
}

/// Build the view. Pure: catalogs come from `catalogs` (built there on first use for this
/// snapshot's generation).
pub fn build(config: &Config, snapshot: &Snapshot, catalogs: &Catalogs) -> RegistryView {
    RegistryView {
        generation: snapshot.generation,
        upstreams: (0..config.upstreams.len())
            .filter_map(|i| upstream(config, i, snapshot))
            .collect(),
        virtual_servers: (0..config.virtual_servers.len())
            .filter_map(|i| server(config, i, snapshot, catalogs))
            .collect(),
    }
}

/// The view of upstream `index` (`None`: no such upstream).
pub fn upstream(config: &Config, index: usize, snapshot: &Snapshot) -> Option<UpstreamView> {
    let u = config.upstreams.get(index)?;
    let seen = snapshot.upstreams.get(&u.name);
    let (health, error) = match seen.map(|s| &s.health) {
        Some(Health::Up) => ("up", None),
        Some(Health::Down { error }) => ("down", Some(error.clone())),
        Some(Health::Unknown) | None => ("unknown", None),
    };
    Some(UpstreamView {
        name: u.name.clone(),
        environment: u.environment.clone(),
        health,
        error,
        tools: seen
            .map(|s| {
                s.tools
                    .iter()
                    .filter_map(|d| d.get("name").and_then(serde_json::Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        quarantined: seen.map(|s| s.quarantined.clone()).unwrap_or_default(),
        definitions: seen.map_or(0, |s| s.tools.len()),
    })
}

/// The view of virtual server `index` (`None`: no such server).
pub fn server(
    config: &Config,
    index: usize,
    snapshot: &Snapshot,
    catalogs: &Catalogs,
) -> Option<ServerView> {
    let vs = config.virtual_servers.get(index)?;
    let cat = catalogs.get(config, index, snapshot);
    let tools = cat
        .iter()
        .flat_map(|c| c.entries.iter())
        .map(|e| ToolView {
            exposed: e.exposed.clone(),
            upstream: e.upstream_name.clone(),
            tool: e.tool.clone(),
            unavailable: e.unavailable,
        })
        .collect();
    let collisions = cat
        .iter()
        .flat_map(|c| c.collisions.iter())
        .map(ToString::to_string)
        .collect();
    // Quarantined tools are left out of the catalog; name them as they would appear.
    let mut quarantined = Vec::new();
    for u in vs.upstreams.iter().filter_map(|&i| config.upstreams.get(i)) {
        let Some(seen) = snapshot.upstreams.get(&u.name) else {
            continue;
        };
        for tool in &seen.quarantined {
            let exposed = vs
                .tools
                .get(&format!("{}.{tool}", u.name))
                .and_then(|o| o.name.clone())
                .unwrap_or_else(|| {
                    let style = naming::Style::of(vs.names, &config.registry.separator);
                    naming::exposed(style, &u.name, tool)
                });
            quarantined.push(QuarantinedTool {
                exposed,
                upstream: u.name.clone(),
                tool: tool.clone(),
            });
        }
    }
    Some(ServerView {
        name: vs.name.clone(),
        route: vs.route.clone(),
        environment: vs.environment.clone(),
        tools,
        collisions,
        quarantined,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::registry::UpstreamTools;

    const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{ path: /mcp, upstream: github }]
upstreams:
  - { name: github, url: "http://127.0.0.1:2/mcp", environment: prod }
  - { name: crm, url: "http://127.0.0.1:3/mcp" }
  - { name: idle, url: "http://127.0.0.1:4/mcp" }
virtual_servers:
  - name: support
    route: /v/support/mcp
    allow_tools: ["github.*", "crm.*"]
    tools:
      crm.add: { name: github__echo }
      github.old: { name: legacy }
"#;

    fn fixture() -> (Config, Snapshot) {
        let config = crate::config::from_yaml(YAML).expect("test config");
        let tools = |health, names: &[&str], quarantined: &[&str]| UpstreamTools {
            health,
            tools: names.iter().map(|n| json!({"name": n})).collect(),
            refreshed: None,
            quarantined: quarantined.iter().map(|q| q.to_string()).collect(),
            offers: Default::default(),
            modern: false,
        };
        let down = Health::Down {
            error: "connection refused".into(),
        };
        let mut github = tools(Health::Up, &["echo", "old", "new"], &["old", "new"]);
        github.tools.push(json!({"description": "no name"}));
        let snapshot = Snapshot {
            generation: 7,
            upstreams: HashMap::from([
                ("github".to_string(), github),
                ("crm".to_string(), tools(down, &["add", "get"], &[])),
            ]),
        };
        (config, snapshot)
    }

    /// The admin endpoint's JSON, exactly as it was built by hand before this view existed.
    #[test]
    fn admin_json_is_what_the_endpoint_always_sent() {
        let (config, snapshot) = fixture();
        let view = build(&config, &snapshot, &Catalogs::default());
        let got = serde_json::to_value(&view).unwrap().to_string();
        let want = json!({
            "generation": 7,
            "upstreams": [
                {"name": "github", "environment": "prod", "health": "up", "error": null,
                 "tools": ["echo", "old", "new"], "quarantined": ["old", "new"]},
                {"name": "crm", "environment": null, "health": "down",
                 "error": "connection refused", "tools": ["add", "get"], "quarantined": []},
                {"name": "idle", "environment": null, "health": "unknown", "error": null,
                 "tools": [], "quarantined": []},
            ],
            "virtual_servers": [{
                "name": "support", "route": "/v/support/mcp", "environment": null,
                "tools": [
                    {"exposed": "crm__get", "upstream": "crm", "tool": "get", "unavailable": true},
                ],
                "collisions": [view.virtual_servers[0].collisions[0].clone()],
            }],
        })
        .to_string();
        assert_eq!(got, want);
        assert!(view.virtual_servers[0].collisions[0].contains("github.echo and crm.add"));
    }

    #[test]
    fn quarantined_tools_are_named_as_they_would_be_exposed() {
        let (config, snapshot) = fixture();
        let s = server(&config, 0, &snapshot, &Catalogs::default()).unwrap();
        let q: Vec<(&str, &str)> = s
            .quarantined
            .iter()
            .map(|q| (q.exposed.as_str(), q.tool.as_str()))
            .collect();
        assert_eq!(q, [("legacy", "old"), ("github__new", "new")]);
        assert_eq!(upstream(&config, 0, &snapshot).unwrap().definitions, 4);
        assert!(server(&config, 1, &snapshot, &Catalogs::default()).is_none());
        assert!(upstream(&config, 3, &snapshot).is_none());
    }
}
