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
pub fn server_conf(config: &Config) -> ServerConf {
    let s = &config.server;
    ServerConf {
        threads: s.threads,
        work_stealing: s.work_stealing,
        grace_period_seconds: Some(s.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout_seconds),
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        error_log: s.error_log.clone(),
        ..ServerConf::default()
    }
}

/// Build the server. `opt` carries process flags (`--upgrade`, `--daemon`); `None` in tests.
/// With `config_path`, SIGHUP reloads the configuration from it ([`Shared::reload`]).
pub fn build(
    config: Config,
    opt: Option<Opt>,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<(Server, Arc<Shared>)> {
    let conf = server_conf(&config);
    let listeners: Vec<_> = config
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.address))
        .collect();
    let admin = config.admin;
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
    let shared = Shared::new(Runtime::new(config, &http)?, http)?;

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
                                let changes = self.shared.registry.refresh(&rt.config, &rt.identity).await;
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
            let auth = rt
                .identity
                .service_credential(i)
                .and_then(|v| v.to_str().ok().map(str::to_string))
                .map(|v| (u.auth.header.as_str().to_string(), v));
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
                        .ensure_discovered(&rt.config, &rt.identity)
                        .await
                } else {
                    self.shared.registry.refresh(&rt.config, &rt.identity).await
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

/// Run `server` until `handle.shutdown()` is called. Blocks; call it on its own thread.
pub fn run_until_shutdown(server: Server, handle: &ShutdownHandle) {
    server.run(RunArgs {
        shutdown_signal: Box::new(Watch(handle.0.clone())),
    });
}
