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
pub mod naming;
pub mod pattern;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::config::Config;
use crate::http_client::HttpClient;
use crate::identity::Identity;

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
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            http: HttpClient::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }
}

impl Registry {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Discover the tools of every upstream some virtual server uses. Never fails: errors
    /// mark the upstream down.
    pub async fn refresh(&self, config: &Config, identity: &Identity) {
        let _one = self.refreshing.lock().await;
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
            let Some(u) = config.upstreams.get(i) else {
                continue;
            };
            let cred = identity.service_credential(i);
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
            let result = async {
                let session = client.initialize().await?;
                let tools = client.list_tools(&session).await;
                client.close(&session).await;
                tools
            }
            .await;
            let previous = old.upstreams.get(&u.name);
            let entry = match result {
                Ok(tools) => {
                    if previous.is_none_or(|p| p.tools != tools || p.health != Health::Up) {
                        changed = true;
                    }
                    UpstreamTools {
                        health: Health::Up,
                        tools,
                        refreshed: Some(SystemTime::now()),
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
                    }
                }
            };
            upstreams.insert(u.name.clone(), entry);
        }
        if changed || old.generation == 0 || upstreams.len() != old.upstreams.len() {
            self.snapshot.store(Arc::new(Snapshot {
                generation: old.generation + 1,
                upstreams,
            }));
        }
    }
}
