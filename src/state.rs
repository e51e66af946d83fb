//! Runtime state shared by every request: one [`ArcSwap`] holding the current [`Runtime`]
//! (validated config + resolved upstreams), so a configuration reload is a single atomic swap,
//! plus the process-lifetime [`Metrics`].

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::http_client::HttpClient;
use crate::identity::{Identity, VaultWriter};
use crate::metrics::Metrics;
use crate::upstreams::Upstreams;
use crate::vault::{self, KillSwitch, SecretRef, Vault};

/// Everything a request needs that is derived from configuration.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    /// Every upstream, resolved once; requests hold an `Arc` of theirs.
    pub upstreams: Upstreams,
    /// What each listener serves, in the order of `config.listeners`.
    pub endpoints: Vec<crate::endpoints::ListenerEndpoints>,
    /// `None` when no listener authenticates.
    pub auth: Option<Authenticator>,
    pub identity: Identity,
    /// Virtual-server catalogs, rebuilt as the registry changes.
    pub catalogs: crate::registry::catalog::Catalogs,
    /// Configured session key (shared by replicas); `None`: the process's random one. Read it
    /// through [`Runtime::session_keys`], which applies the kill switch.
    session_keys: Option<crate::session::SessionKeys>,
    /// Vault names the configured session keys came from (`sessions.key`, `previous_keys`).
    session_key_names: Vec<String>,
    /// The gateway's kill switch (the same one across reloads).
    pub kill: Arc<KillSwitch>,
    /// The shared store (`redis` section); `None`: state is per replica.
    pub redis: Option<Arc<crate::store::redis::RedisStore>>,
}

/// The vault credential set a reference reads, if it is a `secret:` reference.
pub(crate) fn vault_name(reference: &str) -> Option<String> {
    reference
        .parse::<SecretRef>()
        .ok()
        .and_then(|r| r.vault_name().map(str::to_string))
}

impl Runtime {
    /// Build from a validated config: resolves upstream addresses, opens the vault, resolves
    /// every secret reference and loads JWT keys. Fails with the field that could not be used.
    ///
    /// The vault's disabled names (and `vault.disabled`) are stored into `kill` first. A
    /// secret whose name is disabled is not a build error: the part that needs it is built
    /// refusing (an upstream's credential, a JWT key, the session key), so `vault disable`
    /// never makes a reload fail.
    pub fn new(
        config: Config,
        http: &HttpClient,
        kill: Arc<KillSwitch>,
    ) -> anyhow::Result<Runtime> {
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
        kill.set(disabled_names(
            &config,
            vault.as_ref().map(Vault::disabled_names),
        ));
        let resolve = |r: &str| -> Result<Vec<u8>, String> {
            let sr: SecretRef = r.parse().map_err(|e: vault::VaultError| e.to_string())?;
            vault::resolve(&sr, vault.as_ref())
                .map(|s| s.expose().to_vec())
                .map_err(|e| e.to_string())
        };
        let auth = match &config.auth {
            Some(a) => Some(Authenticator::new(a, &resolve, http, &kill)?),
            None => None,
        };
        let (identity, sources) =
            Identity::new(&config, &resolve, vault.as_ref(), writer, http, &kill)?;
        let upstreams = Upstreams::build(&config, sources)?;
        let endpoints = crate::endpoints::build(&config, &upstreams)?;
        let session_key = |field: &str, r: &str| -> anyhow::Result<Vec<u8>> {
            use base64::Engine as _;
            let raw = resolve(r).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            let text = String::from_utf8_lossy(&raw);
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| anyhow::anyhow!("{field}: must be base64 of 32 bytes"))
        };
        let session_key_names: Vec<String> = config
            .sessions
            .key
            .iter()
            .chain(&config.sessions.previous_keys)
            .filter_map(|r| vault_name(r))
            .collect();
        let session_keys = match &config.sessions.key {
            None => None,
            Some(_) if kill.first_disabled(&session_key_names).is_some() => {
                log::warn!(
                    "sessions.key: a session key's credential set is disabled (kill switch); using a random per-process key, every client must re-initialize"
                );
                None
            }
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
        let redis = match &config.redis {
            None => None,
            Some(r) => {
                let password = r
                    .password
                    .as_deref()
                    .map(|p| {
                        resolve(p)
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .map_err(|e| anyhow::anyhow!("redis.password: {e}"))
                    })
                    .transpose()?;
                Some(Arc::new(crate::store::redis::RedisStore::new(r, password)?))
            }
        };
        Ok(Runtime {
            config,
            upstreams,
            endpoints,
            auth,
            identity,
            catalogs: Default::default(),
            session_keys,
            session_key_names,
            kill,
            redis,
        })
    }

    /// The configured session keys, unless one of their credential sets is disabled by the
    /// kill switch: then `None`, and sessions fall back to the process's random key (every
    /// session sealed under the disabled key stops opening).
    pub fn session_keys(&self) -> Option<&crate::session::SessionKeys> {
        if self.kill.first_disabled(&self.session_key_names).is_some() {
            return None;
        }
        self.session_keys.as_ref()
    }
}

/// Everything disabled: `vault.disabled` in the config plus the vault file's own list.
fn disabled_names(config: &Config, from_vault: Option<Vec<String>>) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = config
        .vault
        .as_ref()
        .map(|v| v.disabled.iter().cloned().collect())
        .unwrap_or_default();
    names.extend(from_vault.unwrap_or_default());
    names
}

/// State shared by all listeners and the admin service of one gateway.
#[derive(Debug)]
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub metrics: Metrics,
    /// What every upstream offers (virtual servers).
    pub registry: crate::registry::Registry,
    /// Seals gateway session tokens (random per process).
    pub sessions: crate::session::SessionKeys,
    /// Upstream sessions opened for gateway sessions, by (token digest, upstream name). A
    /// store trait: in memory per replica today, shared (Redis) when replicas must agree.
    pub upstream_sessions: Box<dyn crate::store::UpstreamSessionStore>,
    /// Gateway sessions ended by DELETE (bounded; refuses when full). In memory per replica.
    pub revoked: Box<dyn crate::store::RevocationStore>,
    /// Side requests (upstream session setup).
    pub http: HttpClient,
    /// Calls waiting for (or approved by) a human approver; kept across reloads.
    pub approvals: crate::approval::Approvals,
    /// Quota counters and their clock (in memory per replica; survive reloads).
    pub quotas: crate::quota::Quotas,
    /// The audit trail's queue and writer (opened once; a reload may change redaction only).
    pub audit: crate::audit::Audit,
    /// Virtual-server calls in flight, for routing the client's `notifications/cancelled`.
    pub in_flight: crate::vserver::reply::InFlight,
    /// Virtual-server client sessions' resource subscriptions and followed upstream streams
    /// (bounded; `vserver::events`).
    pub events: crate::vserver::events::Events,
    /// Open `subscriptions/listen` streams of modern clients (bounded: one permit each).
    pub server_streams: Arc<tokio::sync::Semaphore>,
    /// Modern clients' calls waiting for their `inputResponses` retry (MRTR, bounded).
    pub parked: crate::proxy::mrtr::ParkedCalls,
    /// Per-principal counts of the three tables above (`limits.max_*_per_principal`); kept
    /// across reloads, like the tables they count.
    pub caps: crate::caps::Counters,
}

impl Shared {
    /// The per-replica stores the decision point consults.
    pub fn stores(&self) -> crate::decision::Stores<'_> {
        crate::decision::Stores {
            approvals: &self.approvals,
            quotas: &self.quotas,
            parked: &self.parked,
        }
    }

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
    /// The kill switch is applied first and on its own: the vault file's disabled list
    /// (from the new configuration's vault, or the running one's if the file does not load)
    /// is read without decrypting anything and stored into [`Runtime::kill`], which every
    /// runtime checks when it uses a secret. So `vault disable` + SIGHUP refuses the
    /// credential at once even when the rest of the reload fails.
    ///
    /// Listener sockets are bound at startup: a file whose listener addresses differ is
    /// refused (use `--upgrade` for that).
    pub fn reload(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let current = self.runtime.load_full();
        let loaded =
            crate::config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
        self.apply_kill_switch(loaded.as_ref().unwrap_or(&current.config));
        let config = loaded?;
        let old: Vec<_> = current.config.listeners.iter().map(|l| l.address).collect();
        let new: Vec<_> = config.listeners.iter().map(|l| l.address).collect();
        if old != new {
            anyhow::bail!(
                "listener addresses changed ({old:?} -> {new:?}); sockets are bound at startup, restart with --upgrade"
            );
        }
        // The admin socket too; its Host/Origin defaults derive from the address, so a
        // changed one would guard a socket that is not the one bound.
        let (old, new) = (
            current.config.admin.as_ref().map(|a| a.address),
            config.admin.as_ref().map(|a| a.address),
        );
        if old != new {
            anyhow::bail!(
                "admin address changed ({old:?} -> {new:?}); it is bound at startup, restart with --upgrade"
            );
        }
        // The audit writer owns its file from startup; only redaction follows a reload.
        let same_sink = match (&current.config.audit, &config.audit) {
            (Some(a), Some(b)) => a.same_sink(b),
            (a, b) => a.is_none() && b.is_none(),
        };
        if !same_sink {
            anyhow::bail!(
                "audit sink settings changed (path, stdout, rotation, queue or on_full); the audit writer is started once, restart with --upgrade (only audit.redact reloads)"
            );
        }
        let runtime = Runtime::new(config, &self.http, current.kill.clone())?;
        self.runtime.store(Arc::new(runtime));
        // Virtual-server policy may have changed what clients can see.
        self.registry.notify_changed();
        Ok(())
    }

    /// Store `config`'s disabled names (its `vault.disabled` and its vault file's list) into
    /// the kill switch. A vault file that cannot be read leaves the switch as it is: an
    /// unreadable file never re-enables a credential.
    fn apply_kill_switch(&self, config: &Config) {
        let from_file = match &config.vault {
            None => None,
            Some(v) => match Vault::read_disabled(&v.path) {
                Ok(names) => Some(names.into_iter().collect()),
                Err(e) => {
                    log::error!(
                        "reload: cannot read the kill switch from {}: {e}; keeping the current list",
                        v.path.display()
                    );
                    return;
                }
            },
        };
        self.runtime
            .load()
            .kill
            .set(disabled_names(config, from_file));
    }

    /// The Prometheus text of `/metrics`, with the gauges read from the state now: sessions
    /// held, and the health of every configured upstream discovery covers.
    pub fn metrics_text(&self) -> Vec<u8> {
        let runtime = self.runtime.load();
        let snapshot = self.registry.snapshot();
        let upstreams = runtime
            .config
            .upstreams
            .iter()
            .filter_map(|u| {
                let t = snapshot.upstreams.get(&u.name)?;
                match t.health {
                    crate::registry::Health::Unknown => None,
                    crate::registry::Health::Up => Some((u.name.as_str(), true, t.tools.len())),
                    crate::registry::Health::Down { .. } => {
                        Some((u.name.as_str(), false, t.tools.len()))
                    }
                }
            })
            .collect();
        self.metrics.set_state(&crate::metrics::StateGauges {
            sessions_open: self.upstream_sessions.held(),
            upstreams,
        });
        self.metrics.render()
    }

    /// `http` is the client `runtime` was built with: the gateway's one side-request client.
    pub fn new(runtime: Runtime, http: HttpClient) -> anyhow::Result<Arc<Shared>> {
        let metrics = Metrics::new()?;
        let audit = match &runtime.config.audit {
            Some(a) => crate::audit::Audit::open(a, metrics.clone())?,
            None => crate::audit::Audit::default(),
        };
        Ok(Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            quotas: crate::quota::Quotas::new(metrics.clone()),
            metrics,
            registry: crate::registry::Registry::new(http.clone()),
            sessions: crate::session::SessionKeys::random()?,
            upstream_sessions: Box::<crate::store::MemoryUpstreamSessions>::default(),
            revoked: Box::<crate::store::MemoryRevocations>::default(),
            http,
            approvals: Default::default(),
            audit,
            in_flight: crate::store::BoundedMap::new(crate::vserver::reply::MAX_IN_FLIGHT),
            events: crate::vserver::events::table(),
            server_streams: Arc::new(tokio::sync::Semaphore::new(
                crate::vserver::listen::MAX_STREAMS,
            )),
            parked: Default::default(),
            caps: Default::default(),
        }))
    }
}
