//! Runtime state shared by every request: one [`ArcSwap`] holding the current [`Runtime`]
//! (validated config + resolved upstreams), so a configuration reload is a single atomic swap,
//! plus the process-lifetime [`Metrics`].

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::http_client::HttpClient;
use crate::identity::{Identity, VaultWriter};
use crate::metrics::Metrics;
use crate::upstreams::Upstreams;
use crate::vault::{self, SecretRef, Vault};

/// Everything a request needs that is derived from configuration.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub upstreams: Upstreams,
    /// `None` when no listener authenticates.
    pub auth: Option<Authenticator>,
    pub identity: Identity,
    /// Virtual-server catalogs, rebuilt as the registry changes.
    pub catalogs: crate::registry::catalog::Catalogs,
    /// Configured session key (shared by replicas); `None`: the process's random one.
    pub session_keys: Option<crate::session::SessionKeys>,
}

impl Runtime {
    /// Build from a validated config: resolves upstream addresses, opens the vault, resolves
    /// every secret reference and loads JWT keys. Fails with the field that could not be used.
    pub fn new(config: Config, http: &HttpClient) -> anyhow::Result<Runtime> {
        let upstreams = Upstreams::from_config(&config)?;
        let (vault, writer) = match &config.vault {
            None => (None, None),
            Some(v) => {
                let key_ref: SecretRef = v
                    .key
                    .parse()
                    .map_err(|e| anyhow::anyhow!("vault.key: {e}"))?;
                let kek = Arc::new(
                    vault::kek_from_ref(&key_ref).map_err(|e| anyhow::anyhow!("vault.key: {e}"))?,
                );
                let opened = Vault::open(&v.path, kek.as_ref())
                    .map_err(|e| anyhow::anyhow!("vault.path {}: {e}", v.path.display()))?;
                let writer = VaultWriter {
                    path: v.path.clone(),
                    kek,
                };
                (Some(opened), Some(writer))
            }
        };
        let resolve = |r: &str| -> Result<Vec<u8>, String> {
            let sr: SecretRef = r.parse().map_err(|e: vault::VaultError| e.to_string())?;
            vault::resolve(&sr, vault.as_ref())
                .map(|s| s.expose().to_vec())
                .map_err(|e| e.to_string())
        };
        let auth = match &config.auth {
            Some(a) => Some(Authenticator::new(a, &resolve, http)?),
            None => None,
        };
        let identity = Identity::new(&config, &resolve, vault.as_ref(), writer, http)?;
        let session_key = |field: &str, r: &str| -> anyhow::Result<Vec<u8>> {
            use base64::Engine as _;
            let raw = resolve(r).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            let text = String::from_utf8_lossy(&raw);
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| anyhow::anyhow!("{field}: must be base64 of 32 bytes"))
        };
        let session_keys = match &config.sessions.key {
            None => None,
            Some(r) => {
                let key = session_key("sessions.key", r)?;
                let previous = config
                    .sessions
                    .previous_keys
                    .iter()
                    .enumerate()
                    .map(|(i, r)| session_key(&format!("sessions.previous_keys[{i}]"), r))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Some(
                    crate::session::SessionKeys::with_previous(&key, &previous)
                        .map_err(|e| anyhow::anyhow!("sessions.key: {e}"))?,
                )
            }
        };
        Ok(Runtime {
            config,
            upstreams,
            auth,
            identity,
            catalogs: Default::default(),
            session_keys,
        })
    }
}

/// Cache of upstream sessions opened for virtual-server sessions.
pub type UpstreamSessions =
    std::collections::HashMap<(crate::digest::Digest, String), Option<String>>;

/// State shared by all listeners and the admin service of one gateway.
#[derive(Debug)]
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub metrics: Metrics,
    /// What every upstream offers (virtual servers).
    pub registry: crate::registry::Registry,
    /// Seals gateway session tokens (random per process).
    pub sessions: crate::session::SessionKeys,
    /// Upstream sessions opened for gateway sessions: (token digest, upstream name) -> the
    /// upstream's session id (`None` for a stateless upstream).
    pub upstream_sessions: std::sync::Mutex<UpstreamSessions>,
    /// Gateway sessions ended by DELETE on this replica (bounded; refuses when full).
    pub revoked: crate::session::Revocations,
    /// Side requests (upstream session setup).
    pub http: HttpClient,
}

impl Shared {
    /// Count changed tool definitions found by a registry refresh.
    pub fn record_tool_changes(&self, changes: &[crate::registry::pinning::Change]) {
        use crate::config::raw::OnChange;
        for c in changes {
            let action = match c.action {
                OnChange::Quarantine => "quarantine",
                OnChange::Alert => "alert",
                OnChange::Accept => "accept",
            };
            self.metrics.tool_changed(&c.upstream, action);
        }
    }

    /// Re-read the configuration file (and the vault and key files it names), build a new
    /// [`Runtime`] and swap it in atomically. In-flight requests finish on the snapshot they
    /// took. On any error the running configuration stays and the error is returned.
    ///
    /// Listener sockets are bound at startup: a file whose listener addresses differ is
    /// refused (use `--upgrade` for that).
    pub fn reload(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let config =
            crate::config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let current = self.runtime.load();
        let old: Vec<_> = current.config.listeners.iter().map(|l| l.address).collect();
        let new: Vec<_> = config.listeners.iter().map(|l| l.address).collect();
        if old != new {
            anyhow::bail!(
                "listener addresses changed ({old:?} -> {new:?}); sockets are bound at startup, restart with --upgrade"
            );
        }
        let runtime = Runtime::new(config, &self.http)?;
        self.runtime.store(Arc::new(runtime));
        // Virtual-server policy may have changed what clients can see.
        self.registry.notify_changed();
        Ok(())
    }

    /// `http` is the client `runtime` was built with: the gateway's one side-request client.
    pub fn new(runtime: Runtime, http: HttpClient) -> anyhow::Result<Arc<Shared>> {
        Ok(Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            metrics: Metrics::new()?,
            registry: crate::registry::Registry::new(http.clone()),
            sessions: crate::session::SessionKeys::random()?,
            upstream_sessions: Default::default(),
            revoked: Default::default(),
            http,
        }))
    }
}
