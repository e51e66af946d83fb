//! `mcp-gateway tools`: what one principal would see on each virtual server, and why every
//! other tool is hidden.
//!
//! A virtual server's tool list comes from allow/deny patterns, per-principal rules,
//! overrides and whatever the upstreams offer right now, so "why doesn't alice see
//! `github__add`?" has no answer in the config file alone. This command answers it the way the
//! gateway would: it loads and validates the config, builds the same [`Runtime`] (vault
//! opened, secrets resolved), runs one discovery round against the real upstreams, and
//! evaluates each virtual server's catalog for the given principal with the same functions
//! the request path uses. Nothing is served, and the gateway's files are only read: tool
//! approvals the discovery round would record go to a private copy of
//! `registry.state_file`, so inspecting never trusts a tool on the gateway's behalf.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::config::{self, Config, Principals};
use crate::registry::catalog::{self, Catalogs};
use crate::registry::{pinning, view, Registry, Snapshot};
use crate::state::Runtime;

/// `mcp-gateway tools -c FILE --as SUBJECT [--group G]... [--role R]... [--server NAME]`.
#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// Configuration file (YAML).
    #[arg(short = 'c', long = "conf", value_name = "FILE")]
    pub conf: PathBuf,
    #[command(flatten)]
    pub who: AsPrincipal,
    /// Report only this virtual server.
    #[arg(long = "server", value_name = "NAME")]
    pub server: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--as SUBJECT [--group G]... [--role R]...`: the principal an operator command
/// evaluates for (`tools`, `policy explain`).
#[derive(Debug, Clone, Args)]
pub struct AsPrincipal {
    /// The principal's subject (a token's `sub`, an API key's `subject`); `ISSUER#SUBJECT` to
    /// name the issuer (needed to match qualified access-list entries).
    #[arg(long = "as", value_name = "SUBJECT")]
    pub subject: String,
    /// A group the principal is in (repeat for several).
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// A role the principal has (repeat for several).
    #[arg(long = "role", value_name = "R")]
    pub roles: Vec<String>,
}

/// Everything the command reports; `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub principal: Principal,
    /// Discovery health of every upstream the reported virtual servers include.
    pub upstreams: Vec<UpstreamHealth>,
    pub servers: Vec<ServerView>,
}

/// The principal the report is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub subject: String,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
}

/// One upstream as the discovery round saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamHealth {
    pub name: String,
    /// `up`, `down` or `unknown` (not discovered).
    pub health: &'static str,
    /// Why discovery failed, when `down`.
    pub error: Option<String>,
    /// Tools it offers (the last known ones when down).
    pub tools: usize,
    /// Tools whose definition changed since it was approved (hidden everywhere).
    pub quarantined: Vec<String>,
}

/// One virtual server from the principal's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerView {
    pub name: String,
    pub route: String,
    /// Whether the principal may use the server at all; when false nothing below is filled in.
    pub access: bool,
    /// Who may use the server (all empty: every authenticated principal).
    pub access_list: AccessList,
    /// Indices of the server's `rules` that apply to the principal.
    pub rules: Vec<usize>,
    pub visible: Vec<VisibleTool>,
    pub hidden: Vec<HiddenTool>,
    /// Exposed-name collisions (the colliding tools are left out of the catalog).
    pub collisions: Vec<String>,
}

/// A virtual server's `access` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessList {
    pub subjects: Vec<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
}

impl From<&Principals> for AccessList {
    fn from(p: &Principals) -> Self {
        AccessList {
            subjects: p.subjects.iter().map(ToString::to_string).collect(),
            groups: p.groups.clone(),
            roles: p.roles.clone(),
        }
    }
}

/// A tool the principal sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisibleTool {
    pub exposed: String,
    pub upstream: String,
    pub tool: String,
    /// The owning upstream is down: listed, but calls will fail.
    pub unavailable: bool,
}

/// A tool the principal does not see, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HiddenTool {
    pub exposed: String,
    pub upstream: String,
    pub tool: String,
    pub reason: String,
}

/// Run the command: print the report to stdout. Errors are one sentence for `error: ...`.
pub fn run(args: &ToolsArgs) -> anyhow::Result<()> {
    let config =
        config::load(&args.conf).map_err(|e| anyhow::anyhow!("{}: {e}", args.conf.display()))?;
    let selected = select(&config, args.server.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.conf.display()))?;
    let http = crate::http_client::HttpClient::default();
    let rt = Runtime::new(config, &http, Default::default())?;
    let snapshot = discover(&rt, &selected, http)?;
    let principal = Principal {
        subject: args.who.subject.clone(),
        groups: args.who.groups.clone(),
        roles: args.who.roles.clone(),
    };
    let report = build_report(&rt.config, &snapshot, &principal, &selected);
    let text = if args.json {
        let mut j = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        j.push('\n');
        j
    } else {
        render_text(&report)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")
}

/// Indices of the virtual servers to report: `only`, or all of them.
pub fn select(config: &Config, only: Option<&str>) -> Result<Vec<usize>, String> {
    let names: Vec<&str> = config
        .virtual_servers
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    if names.is_empty() {
        return Err("no virtual_servers are configured, so there is no tool list to report".into());
    }
    match only {
        None => Ok((0..names.len()).collect()),
        Some(name) => names
            .iter()
            .position(|n| *n == name)
            .map(|i| vec![i])
            .ok_or_else(|| {
                format!(
                    "no virtual server named {name:?}; configured: {}",
                    names.join(", ")
                )
            }),
    }
}

/// One discovery round over the upstreams of the selected virtual servers, as the gateway
/// runs it at startup.
fn discover(
    rt: &Runtime,
    selected: &[usize],
    http: crate::http_client::HttpClient,
) -> anyhow::Result<Arc<Snapshot>> {
    // Discovery contacts every upstream some virtual server uses; scope it to the servers
    // being reported so `--server` does not wait on unrelated upstreams. Upstream indices are
    // unchanged, so the scoped snapshot fits the full config.
    let mut scope = rt.config.clone();
    scope.virtual_servers = selected
        .iter()
        .filter_map(|&i| rt.config.virtual_servers.get(i).cloned())
        .collect();
    let _copy = match &rt.config.registry.state_file {
        None => None,
        Some(path) => {
            let copy = StateCopy::of(path)?;
            scope.registry.state_file = Some(copy.file.clone());
            Some(copy)
        }
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime for discovery")?;
    let registry = Registry::new(http);
    tokio.block_on(async {
        registry.refresh(&scope, &rt.upstreams, &rt.identity).await;
    });
    Ok(registry.snapshot())
}

/// A private copy of `registry.state_file` in a fresh temporary directory, removed on drop.
/// Discovery reads approvals from it exactly as the gateway reads its file (so quarantined
/// tools show as quarantined), and writes the approvals of first sightings to it instead of
/// the gateway's file.
#[derive(Debug)]
struct StateCopy {
    dir: PathBuf,
    file: PathBuf,
}

impl StateCopy {
    fn of(original: &std::path::Path) -> anyhow::Result<StateCopy> {
        // The gateway starts with no approvals when the file is unreadable (and logs it);
        // here that would silently report nothing quarantined, so say so instead.
        pinning::Approvals::load(original)
            .map_err(|e| anyhow::anyhow!("registry.state_file: {e}"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("mcp-gateway-tools-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| {
            format!(
                "cannot create a temporary directory {} for a copy of registry.state_file",
                dir.display()
            )
        })?;
        let copy = StateCopy {
            file: dir.join("state.json"),
            dir,
        };
        match std::fs::copy(original, &copy.file) {
            Ok(_) => {}
            // Nothing approved yet: the copy stays missing, as the original is.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "registry.state_file: cannot copy {} to {}: {e}",
                    original.display(),
                    copy.file.display()
                ))
            }
        }
        Ok(copy)
    }
}

impl Drop for StateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Evaluate the selected virtual servers for `who` against `snapshot`: the registry view
/// ([`view`]) of the servers and the upstreams they include, from this principal's point of
/// view. Pure: no I/O.
pub fn build_report(
    config: &Config,
    snapshot: &Snapshot,
    who: &Principal,
    selected: &[usize],
) -> Report {
    let mut used: Vec<usize> = selected
        .iter()
        .filter_map(|&i| config.virtual_servers.get(i))
        .flat_map(|v| v.upstreams.iter().copied())
        .collect();
    used.sort_unstable();
    used.dedup();
    let upstreams = used
        .iter()
        .filter_map(|&i| view::upstream(config, i, snapshot))
        .map(|u| UpstreamHealth {
            name: u.name,
            health: u.health,
            error: u.error,
            tools: u.definitions,
            quarantined: u.quarantined,
        })
        .collect();
    let catalogs = Catalogs::default();
    let servers = selected
        .iter()
        .filter_map(|&i| {
            Some((
                config.virtual_servers.get(i)?,
                view::server(config, i, snapshot, &catalogs)?,
            ))
        })
        .map(|(vs, server)| {
            // `--subject ISSUER#SUBJECT` names the issuer, as access lists do.
            let (issuer, subject) = who.subject.split_once('#').unwrap_or(("", &who.subject));
            let caller = config::Caller {
                issuer,
                subject,
                groups: &who.groups,
                roles: &who.roles,
                agent: None,
            };
            let mut out = ServerView {
                name: server.name,
                route: server.route,
                access: vs.access.matches(&caller),
                access_list: AccessList::from(&vs.access),
                rules: Vec::new(),
                visible: Vec::new(),
                hidden: Vec::new(),
                collisions: Vec::new(),
            };
            if !out.access {
                return out;
            }
            out.rules = vs
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.who.matches(&caller))
                .map(|(i, _)| i)
                .collect();
            let class = catalog::class_of(vs, &caller);
            for t in server.tools {
                match catalog::why_hidden(vs, class, &t.upstream, &t.tool) {
                    None => out.visible.push(VisibleTool {
                        exposed: t.exposed,
                        upstream: t.upstream,
                        tool: t.tool,
                        unavailable: t.unavailable,
                    }),
                    Some(reason) => out.hidden.push(HiddenTool {
                        exposed: t.exposed,
                        upstream: t.upstream,
                        tool: t.tool,
                        reason,
                    }),
                }
            }
            // Quarantined tools are not in the catalog; list them as hidden, saying why.
            for q in server.quarantined {
                let reason = format!(
                    "quarantined: its definition changed since it was approved; \
                     approve it on the admin listener with POST /admin/registry/approve \
                     and the JSON body {} (a write admin token; see docs/admin.md)",
                    serde_json::json!({"upstream": q.upstream, "tool": q.tool})
                );
                out.hidden.push(HiddenTool {
                    exposed: q.exposed,
                    upstream: q.upstream,
                    tool: q.tool,
                    reason,
                });
            }
            out.collisions = server.collisions;
            out
        })
        .collect();
    Report {
        principal: who.clone(),
        upstreams,
        servers,
    }
}

/// Plain, column-aligned text for people.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let p = &r.principal;
    out.push_str(&format!(
        "principal {}  groups: {}  roles: {}\n",
        p.subject,
        list_or_dash(&p.groups),
        list_or_dash(&p.roles)
    ));
    out.push_str("\nupstreams\n");
    let rows: Vec<Vec<String>> = r
        .upstreams
        .iter()
        .map(|u| {
            let tools = match &u.error {
                Some(e) if u.tools > 0 => {
                    format!("discovery failed: {e} ({} last known tools)", u.tools)
                }
                Some(e) => format!("discovery failed: {e}"),
                None => format!("{} tools", u.tools),
            };
            let tools = if u.quarantined.is_empty() {
                tools
            } else {
                format!("{tools}; quarantined: {}", u.quarantined.join(", "))
            };
            vec![u.name.clone(), u.health.to_string(), tools]
        })
        .collect();
    table(&mut out, "  ", &rows);
    for s in &r.servers {
        out.push_str(&format!("\nvirtual server {} ({})\n", s.name, s.route));
        if !s.access {
            let a = &s.access_list;
            out.push_str(&format!(
                "  no access: not named by its access list (subjects: {}; groups: {}; roles: {})\n",
                list_or_dash(&a.subjects),
                list_or_dash(&a.groups),
                list_or_dash(&a.roles)
            ));
            continue;
        }
        let rules: Vec<String> = s.rules.iter().map(|i| format!("rules[{i}]")).collect();
        out.push_str(&format!("  rules that apply: {}\n", list_or_none(&rules)));
        out.push_str(&format!("  visible ({})\n", s.visible.len()));
        let rows: Vec<Vec<String>> = s
            .visible
            .iter()
            .map(|t| {
                let mut origin = format!("{}.{}", t.upstream, t.tool);
                if t.unavailable {
                    origin.push_str(" (upstream down)");
                }
                vec![t.exposed.clone(), origin]
            })
            .collect();
        table(&mut out, "    ", &rows);
        out.push_str(&format!("  hidden ({})\n", s.hidden.len()));
        let rows: Vec<Vec<String>> = s
            .hidden
            .iter()
            .map(|t| {
                vec![
                    t.exposed.clone(),
                    format!("{}.{}", t.upstream, t.tool),
                    t.reason.clone(),
                ]
            })
            .collect();
        table(&mut out, "    ", &rows);
        if !s.collisions.is_empty() {
            out.push_str(&format!("  collisions ({})\n", s.collisions.len()));
            for c in &s.collisions {
                out.push_str(&format!("    {c}\n"));
            }
        }
    }
    out
}

/// Rows with every column but the last padded to its widest cell.
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths.get(c).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<pad$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::registry::{Health, UpstreamTools};

    const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{ path: /mcp, upstream: github }]
upstreams:
  - { name: github, url: "http://127.0.0.1:2/mcp" }
  - { name: crm, url: "http://127.0.0.1:3/mcp" }
virtual_servers:
  - name: support
    route: /v/support/mcp
    allow_tools: ["github.echo", "crm.*"]
    rules:
      - groups: [eng]
        allow_tools: ["github.*"]
    tools:
      crm.add: { name: github__echo }
  - name: ops
    route: /v/ops/mcp
    access: { roles: [admin] }
"#;

    fn tools(health: Health, names: &[&str]) -> UpstreamTools {
        UpstreamTools {
            health,
            tools: names.iter().map(|n| json!({"name": n})).collect(),
            refreshed: None,
            quarantined: Vec::new(),
            offers: Default::default(),
            modern: false,
        }
    }

    fn fixture() -> (Config, Snapshot) {
        let config = config::from_yaml(YAML).expect("test config");
        let down = Health::Down {
            error: "connection refused".into(),
        };
        let snapshot = Snapshot {
            generation: 1,
            upstreams: HashMap::from([
                ("github".to_string(), tools(Health::Up, &["echo", "add"])),
                ("crm".to_string(), tools(down, &["add", "echo"])),
            ]),
        };
        (config, snapshot)
    }

    fn who(subject: &str, groups: &[&str], roles: &[&str]) -> Principal {
        Principal {
            subject: subject.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn select_names_the_configured_servers_when_one_is_unknown() {
        let (config, _) = fixture();
        assert_eq!(select(&config, None), Ok(vec![0, 1]));
        assert_eq!(select(&config, Some("ops")), Ok(vec![1]));
        assert_eq!(
            select(&config, Some("nope")),
            Err(r#"no virtual server named "nope"; configured: support, ops"#.into())
        );
        let mut empty = config.clone();
        empty.virtual_servers.clear();
        assert!(select(&empty, None)
            .unwrap_err()
            .contains("no virtual_servers are configured"));
    }

    #[test]
    fn report_marks_down_upstreams_collisions_and_access() {
        let (config, snapshot) = fixture();
        let r = build_report(&config, &snapshot, &who("alice", &[], &[]), &[0, 1]);
        assert_eq!(
            r.upstreams
                .iter()
                .map(|u| (u.name.as_str(), u.health, u.tools))
                .collect::<Vec<_>>(),
            [("github", "up", 2), ("crm", "down", 2)]
        );
        assert_eq!(r.upstreams[1].error.as_deref(), Some("connection refused"));
        let support = &r.servers[0];
        // crm.add's override name collides with github.echo: both are left out and reported.
        assert_eq!(support.collisions.len(), 1, "{support:?}");
        assert!(support.collisions[0].contains("github.echo and crm.add"));
        let vis: Vec<(&str, bool)> = support
            .visible
            .iter()
            .map(|t| (t.exposed.as_str(), t.unavailable))
            .collect();
        assert_eq!(vis, [("crm__echo", true)]);
        assert_eq!(support.hidden.len(), 1);
        assert_eq!(support.hidden[0].exposed, "github__add");
        let ops = &r.servers[1];
        assert!(!ops.access && ops.visible.is_empty() && ops.hidden.is_empty());
        assert_eq!(ops.access_list.roles, ["admin"]);

        let eng = build_report(
            &config,
            &snapshot,
            &who("bob", &["eng"], &["admin"]),
            &[0, 1],
        );
        assert_eq!(eng.servers[0].rules, [0]);
        assert!(eng.servers[0].hidden.is_empty());
        assert!(eng.servers[1].access);
    }

    #[test]
    fn text_is_aligned_and_says_what_is_down_and_why() {
        let (config, snapshot) = fixture();
        let r = build_report(&config, &snapshot, &who("alice", &[], &[]), &[0, 1]);
        let text = render_text(&r);
        let expected = [
            "principal alice  groups: -  roles: -",
            "",
            "upstreams",
            "  github  up    2 tools",
            "  crm     down  discovery failed: connection refused (2 last known tools)",
            "",
            "virtual server support (/v/support/mcp)",
            "  rules that apply: none",
            "  visible (1)",
            "    crm__echo  crm.echo (upstream down)",
            "  hidden (1)",
            "    github__add  github.add  not matched by any allow_tools pattern that applies to this principal",
            "  collisions (1)",
        ];
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..expected.len()], expected, "{text}");
        let ops = "virtual server ops (/v/ops/mcp)\n  no access: not named by its access list \
                   (subjects: -; groups: -; roles: admin)\n";
        assert!(text.ends_with(ops), "{text}");
    }
}
