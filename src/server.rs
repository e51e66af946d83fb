//! Assemble a Pingora [`Server`] from a validated [`Config`]: one proxy service per listener,
//! the admin service, and the shared runtime state. Used by `main` and by the integration
//! tests, which run several gateways in one process.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::ShutdownWatch;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use tokio::sync::Notify;

use crate::admin::AdminApp;
use crate::config::Config;
use crate::proxy::McpGateway;
use crate::state::{Runtime, Shared};

/// Map our `server:` section onto Pingora's `ServerConf`. Our file owns the process.
/// `paths` are the PID file and upgrade socket from [`run_paths`].
pub fn server_conf(config: &Config, paths: RunPaths) -> ServerConf {
    let s = &config.server;
    ServerConf {
        threads: s.threads,
        work_stealing: s.work_stealing,
        grace_period_seconds: Some(s.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout_seconds),
        pid_file: paths.pid_file,
        upgrade_sock: paths.upgrade_sock,
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        error_log: s.error_log.clone(),
        ..ServerConf::default()
    }
}

/// The PID file and upgrade socket the process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPaths {
    pub pid_file: String,
    pub upgrade_sock: String,
}

/// Resolve `server.pid_file` and `server.upgrade_sock`: configured paths as given (warned
/// about when their directory is writable by others), defaults in the private run directory
/// ([`crate::rundir`]), which is created or checked here. Runs at startup, not for `-t`.
pub fn run_paths(server: &crate::config::raw::RawServer) -> anyhow::Result<RunPaths> {
    let mut dir = None;
    let mut resolve = |configured: &Option<String>, field: &str, default: &str| {
        if let Some(p) = configured {
            let parent = std::path::Path::new(p)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if crate::rundir::writable_by_others(parent) {
                log::warn!(
                    "server.{field} {p} is in {}, which other users can write to; they could take the path first. Use a private directory (or leave server.{field} unset)",
                    parent.display()
                );
            }
            return Ok(p.clone());
        }
        let d = match &dir {
            Some(d) => d,
            None => {
                let d = crate::rundir::default_dir();
                crate::rundir::ensure_private(&d)
                    .map_err(|e| anyhow::anyhow!("server.{field} (default): {e}"))?;
                dir.insert(d)
            }
        };
        Ok::<_, anyhow::Error>(d.join(default).to_string_lossy().into_owned())
    };
    Ok(RunPaths {
        pid_file: resolve(&server.pid_file, "pid_file", crate::rundir::PID_FILE)?,
        upgrade_sock: resolve(
            &server.upgrade_sock,
            "upgrade_sock",
            crate::rundir::UPGRADE_SOCK,
        )?,
    })
}

/// Build the server. `opt` carries process flags (`--upgrade`, `--daemon`); `None` in tests.
/// With `config_path`, SIGHUP reloads the configuration from it ([`Shared::reload`]).
pub fn build(
    config: Config,
    opt: Option<Opt>,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<(Server, Arc<Shared>)> {
    let conf = server_conf(&config, run_paths(&config.server)?);
    let listeners: Vec<_> = config
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.address))
        .collect();
    let admin = config.admin.as_ref().map(|a| a.address);
    if let Some(a) = &config.admin {
        match &a.auth {
            None => log::info!(
                "admin {}: the /admin/* API is off (no admin.auth); serving {}",
                a.address,
                a.public_paths.join(", ")
            ),
            Some(auth) => log::info!(
                "admin {}: /admin/* needs credentials ({} token(s){}); public: {}",
                a.address,
                auth.tokens.len(),
                if auth.jwt.is_some() {
                    ", JWT grants"
                } else {
                    ""
                },
                a.public_paths.join(", ")
            ),
        }
    }
    for l in &config.listeners {
        if !l.auth_required {
            log::warn!(
                "listener {} ({}): AUTHENTICATION IS OFF (auth: none); any client reaching it can call its upstreams",
                l.name,
                l.address
            );
            for v in l
                .virtual_servers
                .iter()
                .filter_map(|&i| config.virtual_servers.get(i))
            {
                log::warn!(
                    "listener {}: virtual server {:?} ({}) is open to anonymous callers (access.anonymous)",
                    l.name,
                    v.name,
                    v.route
                );
            }
        }
    }
    let http = crate::http_client::HttpClient::default();
    // One kill switch for the life of the process: reloads update it, runtimes share it.
    let kill = Arc::new(crate::vault::KillSwitch::new());
    let shared = Shared::new(Runtime::new(config, &http, kill)?, http)?;

    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    for (i, (name, addr)) in listeners.iter().enumerate() {
        let mut svc = pingora::proxy::http_proxy_service_with_name(
            &server.configuration,
            McpGateway::new(shared.clone(), i),
            &format!("mcp listener {name}"),
        );
        svc.add_tcp(&addr.to_string());
        server.add_service(svc);
    }
    if let Some(addr) = admin {
        let mut svc = Service::new(
            "mcp-gateway admin".to_string(),
            HttpServer::new_app(AdminApp::new(shared.clone())),
        );
        svc.add_tcp(&addr.to_string());
        server.add_service(svc);
    }
    if let Some(path) = config_path {
        server.add_service(background_service(
            "config reload (SIGHUP)",
            Reloader {
                shared: shared.clone(),
                path,
            },
        ));
    }
    server.add_service(background_service(
        "upstream tool-list watch",
        UpstreamWatch {
            shared: shared.clone(),
        },
    ));
    server.add_service(background_service(
        "tool registry refresh",
        RegistryRefresh {
            shared: shared.clone(),
        },
    ));
    // Always running (idle without JWKS URLs), so a URL added by a reload is refreshed too.
    server.add_service(background_service(
        "jwks refresh",
        JwksRefresh {
            shared: shared.clone(),
        },
    ));
    Ok((server, shared))
}

/// Reloads the configuration on SIGHUP. Pingora itself uses QUIT, TERM and INT.
struct Reloader {
    shared: Arc<Shared>,
    path: std::path::PathBuf,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for SIGHUP, config reload disabled: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    let shared = self.shared.clone();
                    let path = self.path.clone();
                    // Loading resolves DNS and reads files: keep it off the async workers.
                    let result = tokio::task::spawn_blocking(move || shared.reload(&path)).await;
                    match result {
                        Ok(Ok(())) => {
                            log::info!("configuration reloaded from {}", self.path.display());
                            // What virtual servers expose may have changed: rediscover now.
                            let rt = self.shared.runtime.load_full();
                            if !rt.config.virtual_servers.is_empty() {
                                let changes = self.shared.registry.refresh(&rt.config, &rt.upstreams, &rt.identity).await;
                                self.shared.record_tool_changes(&changes);
                            }
                        }
                        Ok(Err(e)) => log::error!("reload failed, keeping the running configuration: {e:#}"),
                        Err(e) => log::error!("reload task failed: {e}"),
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Follows every upstream a virtual server includes on its server-to-client stream, so a
/// `notifications/tools/list_changed` triggers rediscovery at once. Upstreams are taken from
/// the configuration at start (a reload's new upstreams are covered by periodic refresh).
struct UpstreamWatch {
    shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for UpstreamWatch {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let rt = self.shared.runtime.load_full();
        let mut used: Vec<usize> = rt
            .config
            .virtual_servers
            .iter()
            .flat_map(|v| v.upstreams.iter().copied())
            .collect();
        used.sort_unstable();
        used.dedup();
        let stop = Arc::new(tokio::sync::Notify::new());
        let http = self.shared.http.clone();
        let mut tasks = Vec::new();
        for i in used {
            let Some(u) = rt.config.upstreams.get(i) else {
                continue;
            };
            // Asked on every (re)connection, from the runtime current then.
            // Found by name: a reload may have reordered the upstreams.
            let shared = self.shared.clone();
            let name = u.name.clone();
            let auth: crate::registry::watch::CredentialFn = Arc::new(move || {
                let rt = shared.runtime.load();
                let u = rt.upstreams.by_name(&name)?;
                let v = rt.identity.service_credential(&u.credential)?;
                let v = v.to_str().ok()?.to_string();
                Some((u.config.auth.header.as_str().to_string(), v))
            });
            let target = crate::registry::watch::Target {
                name: u.name.clone(),
                url: u.url.clone(),
                auth,
            };
            tasks.push(tokio::spawn(crate::registry::watch::follow(
                http.clone(),
                target,
                self.shared.registry.refresh_now.clone(),
                stop.clone(),
            )));
        }
        let _ = shutdown.changed().await;
        stop.notify_waiters();
        for t in tasks {
            t.abort();
        }
    }
}

/// Discovers upstream tools for virtual servers at start and every `refresh_interval`.
struct RegistryRefresh {
    shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for RegistryRefresh {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut first = true;
        loop {
            let rt = self.shared.runtime.load_full();
            if !rt.config.virtual_servers.is_empty() {
                // At start, first requests may already be discovering: join them rather than
                // list every upstream a second time.
                let changes = if first {
                    self.shared
                        .registry
                        .ensure_discovered(&rt.config, &rt.upstreams, &rt.identity)
                        .await
                } else {
                    self.shared
                        .registry
                        .refresh(&rt.config, &rt.upstreams, &rt.identity)
                        .await
                };
                first = false;
                self.shared.record_tool_changes(&changes);
            }
            let pause = rt.config.registry.refresh_interval;
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shared.registry.refresh_now.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Fetches JWKS URLs at start and whenever their `refresh_interval` has passed.
struct JwksRefresh {
    shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for JwksRefresh {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let rt = self.shared.runtime.load_full();
            if let Some(jwt) = rt.auth.as_ref().and_then(|a| a.jwt()) {
                jwt.refresh_stale().await;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// A shutdown trigger for [`run_until_shutdown`]: `shutdown()` makes the server stop fast.
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.notify_one();
    }
}

struct Watch(Arc<Notify>);

#[async_trait]
impl ShutdownSignalWatch for Watch {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

/// Run `server` until `handle.shutdown()` is called, then flush the audit trail. Blocks;
/// call it on its own thread.
pub fn run_until_shutdown(server: Server, shared: &Shared, handle: &ShutdownHandle) {
    run(
        server,
        shared,
        RunArgs {
            shutdown_signal: Box::new(Watch(handle.0.clone())),
        },
    );
}

/// Run `server` until it is told to stop, then write out the audit trail: every runtime
/// has stopped by then (Pingora's `run` returns after the grace period and the runtimes'
/// shutdown), so no request can still be adding records, and [`crate::audit::Audit::close`]
/// writes and fsyncs what is queued.
pub fn run(server: Server, shared: &Shared, args: RunArgs) {
    server.run(args);
    shared.audit.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_run_paths_are_used_as_given() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pid = t.path().join("gw.pid").display().to_string();
        let sock = t.path().join("gw.sock").display().to_string();
        let server = crate::config::raw::RawServer {
            pid_file: Some(pid.clone()),
            upgrade_sock: Some(sock.clone()),
            ..Default::default()
        };
        let p = run_paths(&server).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p,
            RunPaths {
                pid_file: pid,
                upgrade_sock: sock
            }
        );
    }

    #[test]
    fn default_run_paths_are_in_the_private_run_directory() {
        let server = crate::config::raw::RawServer::default();
        let dir = crate::rundir::default_dir();
        // Creating the default directory needs write access to its parent (e.g. /run as
        // root); where that is missing, the error must name the field and the remedy.
        match run_paths(&server) {
            Ok(p) => {
                assert_eq!(
                    p.pid_file,
                    dir.join("mcp-gateway.pid").display().to_string()
                );
                assert_eq!(
                    p.upgrade_sock,
                    dir.join("upgrade.sock").display().to_string()
                );
            }
            Err(e) => assert!(e.to_string().contains("server.pid_file"), "{e}"),
        }
    }
}
