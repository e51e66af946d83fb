//! The tool registry: what every upstream MCP server offers, kept fresh in the background,
//! and the per-virtual-server catalogs built from it.
//!
//! Discovery ([`Registry::refresh`]) opens a session to each upstream used by a virtual
//! server, lists its tools (following `nextCursor`), and closes the session. An upstream that
//! fails keeps its last known tools, marked down with the error, so its tools are reported
//! unavailable instead of vanishing. Each successful change bumps the snapshot generation,
//! which invalidates the pre-serialized `tools/list` answers in [`catalog`].

pub mod catalog;
pub mod client;
pub mod items;
pub mod naming;
pub mod pinning;
pub mod view;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::config::Config;
use crate::http_client::HttpClient;
use crate::identity::Identity;
use crate::upstreams::Upstreams;

/// Health of an upstream as seen by discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not discovered yet.
    Unknown,
    Up,
    /// The last discovery failed; tools are the last known ones.
    Down {
        error: String,
    },
}

/// What one upstream offers.
#[derive(Debug, Clone)]
pub struct UpstreamTools {
    pub health: Health,
    /// Tool definitions exactly as the upstream sent them.
    pub tools: Vec<Value>,
    pub refreshed: Option<SystemTime>,
    /// Tools whose definition changed and await approval (hidden, calls refused).
    pub quarantined: Vec<String>,
    /// Prompts, resources and templates, as the upstream sent them.
    pub offers: Offers,
    /// It serves the stateless 2026-07-28 revision (its `server/discover` says so): a
    /// 2026-07-28 client's requests go to it statelessly, envelope and all, instead of
    /// through a session the gateway holds (docs/mcp-decisions.md, "Both eras").
    pub modern: bool,
}

/// What an upstream offers besides tools, listed only when it declares the capability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Offers {
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub templates: Vec<Value>,
    /// It declared `completions` (it answers `completion/complete`).
    pub completions: bool,
    /// It declared `logging` (it answers `logging/setLevel`).
    pub logging: bool,
    /// It declared `resources.subscribe` (it answers `resources/subscribe`).
    pub subscribe: bool,
}

/// An immutable view of every upstream's tools.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Bumped by every change; 0 = never refreshed.
    pub generation: u64,
    /// By upstream name.
    pub upstreams: HashMap<String, UpstreamTools>,
}

/// The registry of one gateway.
#[derive(Debug)]
pub struct Registry {
    snapshot: ArcSwap<Snapshot>,
    http: HttpClient,
    /// Ticks whenever what virtual servers expose may have changed (new snapshot, reload).
    changes: tokio::sync::watch::Sender<u64>,
    /// Asks the refresh task to rediscover now (an upstream announced a changed tool list).
    pub refresh_now: Arc<tokio::sync::Notify>,
    /// One refresh at a time; holds the approved tool fingerprints.
    refreshing: tokio::sync::Mutex<Option<pinning::Approvals>>,
}

impl Registry {
    /// An empty registry that discovers tools with `http`.
    pub fn new(http: HttpClient) -> Self {
        Registry {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            http,
            changes: tokio::sync::watch::channel(0).0,
            refresh_now: Arc::new(tokio::sync::Notify::new()),
            refreshing: tokio::sync::Mutex::new(None),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// A receiver that wakes when what virtual servers expose may have changed.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Signal a possible change (a new snapshot, or a configuration reload).
    pub fn notify_changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Approve the current definition of `upstream.tool` (it leaves quarantine at the next
    /// refresh, which the caller should trigger). `Err` when the tool is unknown.
    pub async fn approve(&self, config: &Config, upstream: &str, tool: &str) -> Result<(), String> {
        let snap = self.snapshot();
        let def = snap
            .upstreams
            .get(upstream)
            .and_then(|u| {
                u.tools
                    .iter()
                    .find(|d| d.get("name").and_then(Value::as_str) == Some(tool))
            })
            .ok_or_else(|| format!("no tool {tool:?} on upstream {upstream:?}"))?;
        let mut guard = self.refreshing.lock().await;
        let approvals = guard.get_or_insert_with(Default::default);
        approvals
            .map
            .insert(format!("{upstream}.{tool}"), pinning::fingerprint(def));
        if let Some(path) = &config.registry.state_file {
            approvals.save(path)?;
        }
        Ok(())
    }

    /// Discover the tools of every upstream some virtual server uses, and review changed
    /// definitions. Never fails: errors mark the upstream down. Returns the changes seen.
    pub async fn refresh(
        &self,
        config: &Config,
        upstreams: &Upstreams,
        identity: &Identity,
    ) -> Vec<pinning::Change> {
        self.refresh_inner(config, upstreams, identity, false).await
    }

    /// Discover once if nothing has been discovered yet (first requests after start). Waiters
    /// behind a running discovery do not run another one.
    pub async fn ensure_discovered(
        &self,
        config: &Config,
        upstreams: &Upstreams,
        identity: &Identity,
    ) -> Vec<pinning::Change> {
        self.refresh_inner(config, upstreams, identity, true).await
    }

    async fn refresh_inner(
        &self,
        config: &Config,
        resolved: &Upstreams,
        identity: &Identity,
        only_if_empty: bool,
    ) -> Vec<pinning::Change> {
        let mut guard = self.refreshing.lock().await;
        if only_if_empty && self.snapshot.load().generation != 0 {
            return Vec::new();
        }
        if guard.is_none() {
            match &config.registry.state_file {
                Some(path) => match pinning::Approvals::load(path) {
                    Ok(a) => *guard = Some(a),
                    Err(e) => {
                        // Fail closed: trusting every current definition as new would turn
                        // quarantine off and overwrite the operator's approvals.
                        log::error!("registry: {e}; no tools are served until it is fixed");
                        return Vec::new();
                    }
                },
                None => *guard = Some(pinning::Approvals::default()),
            }
        }
        let approvals = guard.get_or_insert_with(Default::default);
        let mut dirty = false;
        let mut all_changes = Vec::new();
        let mut used: Vec<usize> = config
            .virtual_servers
            .iter()
            .flat_map(|v| v.upstreams.iter().copied())
            .collect();
        used.sort_unstable();
        used.dedup();
        let old = self.snapshot.load_full();
        let mut upstreams = HashMap::with_capacity(used.len());
        let mut changed = false;
        for i in used {
            let Some(up) = resolved.get(i) else {
                continue;
            };
            let u = &up.config;
            let cred = identity.service_credential(&up.credential);
            let header = cred
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|v| (u.auth.header.as_str(), v));
            let client = client::McpClient {
                http: &self.http,
                url: &u.url,
                auth: header,
                timeout: config.registry.timeout,
            };
            let previous = old.upstreams.get(&u.name);
            let result = async {
                // Asked only where it may be used (`upstreams[].stateless`), beside the
                // handshake (one round trip, not two, per upstream and refresh). No definite
                // answer (a timeout, a dropped connection) keeps what the last one said, so
                // a blip does not move its callers between the eras.
                let (modern, session) = if u.stateless {
                    let (m, s) = tokio::join!(client.speaks_modern(), client.initialize());
                    (m.unwrap_or_else(|| previous.is_some_and(|p| p.modern)), s)
                } else {
                    (false, client.initialize().await)
                };
                let session = session?;
                if previous.is_some_and(|p| p.modern != modern) {
                    log::info!(
                        "registry: upstream {:?} {} 2026-07-28 (server/discover): its 2026-07-28 callers now go {}",
                        u.name,
                        if modern { "now speaks" } else { "no longer speaks" },
                        if modern { "statelessly" } else { "through held sessions" }
                    );
                }
                let tools = client.list_tools(&session).await;
                let offers = match &tools {
                    Ok(_) => client.list_offers(&session, &u.name).await,
                    Err(_) => Offers::default(),
                };
                client.close(&session).await;
                tools.map(|t| (t, offers, modern))
            }
            .await;
            let entry = match result {
                Ok((tools, offers, modern)) => {
                    let (quarantined, changes) =
                        approvals.review(&u.name, u.on_change, &tools, &mut dirty);
                    for c in &changes {
                        log::warn!(
                            "registry: tool {}.{} changed definition ({} -> {}): {:?}",
                            c.upstream,
                            c.tool,
                            &c.approved[..12.min(c.approved.len())],
                            &c.seen[..12.min(c.seen.len())],
                            c.action
                        );
                    }
                    all_changes.extend(changes);
                    if previous.is_none_or(|p| {
                        p.tools != tools
                            || p.health != Health::Up
                            || p.quarantined != quarantined
                            || p.offers != offers
                            || p.modern != modern
                    }) {
                        changed = true;
                    }
                    UpstreamTools {
                        health: Health::Up,
                        tools,
                        refreshed: Some(SystemTime::now()),
                        quarantined,
                        offers,
                        modern,
                    }
                }
                Err(error) => {
                    log::warn!("registry: upstream {:?} discovery failed: {error}", u.name);
                    let health = Health::Down { error };
                    if previous.is_none_or(|p| p.health != health) {
                        changed = true;
                    }
                    UpstreamTools {
                        health,
                        tools: previous.map(|p| p.tools.clone()).unwrap_or_default(),
                        refreshed: previous.and_then(|p| p.refreshed),
                        quarantined: previous.map(|p| p.quarantined.clone()).unwrap_or_default(),
                        offers: previous.map(|p| p.offers.clone()).unwrap_or_default(),
                        modern: u.stateless && previous.is_some_and(|p| p.modern),
                    }
                }
            };
            upstreams.insert(u.name.clone(), entry);
        }
        if dirty {
            if let Some(path) = &config.registry.state_file {
                if let Err(e) = approvals.save(path) {
                    log::error!("registry: {e}");
                }
            }
        }
        if changed || old.generation == 0 || upstreams.len() != old.upstreams.len() {
            self.snapshot.store(Arc::new(Snapshot {
                generation: old.generation + 1,
                upstreams,
            }));
            self.notify_changed();
        }
        all_changes
    }
}
