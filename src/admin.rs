//! The admin (operator) listener: `/healthz`, `/readyz` and `/metrics`.
//!
//! Served by Pingora's plain HTTP app server on its own address, so scraping and probes never
//! compete with MCP traffic for a listener, and the address can stay private.

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::state::Shared;

/// Routes of the admin listener.
#[derive(Debug)]
pub struct AdminApp {
    shared: Arc<Shared>,
}

impl AdminApp {
    pub fn new(shared: Arc<Shared>) -> AdminApp {
        AdminApp { shared }
    }
}

impl AdminApp {
    /// `POST /admin/registry/approve?upstream=U&tool=T`: approve the tool's current
    /// definition (it leaves quarantine), then rediscover.
    async fn approve(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.method != http::Method::POST {
            return reply(405, "text/plain", b"use POST\n".to_vec());
        }
        let q: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let (Some(upstream), Some(tool)) = (q.get("upstream"), q.get("tool")) else {
            return reply(
                400,
                "text/plain",
                b"need ?upstream=NAME&tool=NAME\n".to_vec(),
            );
        };
        let rt = self.shared.runtime.load_full();
        match self
            .shared
            .registry
            .approve(&rt.config, upstream, tool)
            .await
        {
            Ok(()) => {
                let changes = self.shared.registry.refresh(&rt.config, &rt.identity).await;
                self.shared.record_tool_changes(&changes);
                let body = serde_json::json!({ "approved": format!("{upstream}.{tool}") });
                reply(200, "application/json", body.to_string().into_bytes())
            }
            Err(e) => reply(404, "text/plain", format!("{e}\n").into_bytes()),
        }
    }
}

fn registry_report(shared: &Shared, rt: &crate::state::Runtime) -> serde_json::Value {
    use crate::registry::Health;
    let snap = shared.registry.snapshot();
    let upstreams: Vec<_> = rt
        .config
        .upstreams
        .iter()
        .map(|u| {
            let t = snap.upstreams.get(&u.name);
            let (health, error) = match t.map(|t| &t.health) {
                Some(Health::Up) => ("up", None),
                Some(Health::Down { error }) => ("down", Some(error.clone())),
                _ => ("unknown", None),
            };
            let tools: Vec<&str> = t
                .map(|t| {
                    t.tools
                        .iter()
                        .filter_map(|d| d.get("name").and_then(|n| n.as_str()))
                        .collect()
                })
                .unwrap_or_default();
            let quarantined: Vec<&str> = t
                .map(|t| t.quarantined.iter().map(String::as_str).collect())
                .unwrap_or_default();
            serde_json::json!({
                "name": u.name, "environment": u.environment, "health": health,
                "error": error, "tools": tools, "quarantined": quarantined,
            })
        })
        .collect();
    let servers: Vec<_> = rt
        .config
        .virtual_servers
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let cat = rt.catalogs.get(&rt.config, i, &snap);
            let tools: Vec<_> = cat
                .iter()
                .flat_map(|c| c.entries.iter())
                .map(|e| {
                    serde_json::json!({
                        "exposed": e.exposed, "upstream": e.upstream_name, "tool": e.tool,
                        "unavailable": e.unavailable,
                    })
                })
                .collect();
            let collisions: Vec<String> = cat
                .iter()
                .flat_map(|c| c.collisions.iter())
                .map(|c| c.to_string())
                .collect();
            serde_json::json!({
                "name": v.name, "route": v.route, "environment": v.environment,
                "tools": tools, "collisions": collisions,
            })
        })
        .collect();
    serde_json::json!({
        "generation": snap.generation,
        "upstreams": upstreams,
        "virtual_servers": servers,
    })
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = r.body().len();
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    r
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if session.req_header().uri.path() == "/admin/registry/approve" {
            return self.approve(session).await;
        }
        match session.req_header().uri.path() {
            // Liveness: the process answers.
            "/healthz" => reply(200, "text/plain", b"ok\n".to_vec()),
            // Readiness: the admin service runs inside the same server as the proxy services,
            // which Pingora starts together, so answering means the listeners are up and a
            // validated configuration with resolved upstreams is loaded.
            "/readyz" => {
                let rt = self.shared.runtime.load();
                let body = serde_json::json!({
                    "status": "ready",
                    "listeners": rt.config.listeners.len(),
                    "upstreams": rt.config.upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
                });
                reply(200, "application/json", body.to_string().into_bytes())
            }
            // Public keys of the gateway's identity-signing keys (signed_identity upstreams).
            "/.well-known/jwks.json" => {
                let rt = self.shared.runtime.load();
                reply(
                    200,
                    "application/json",
                    rt.identity.jwks().to_string().into_bytes(),
                )
            }
            // Upstreams, their health and tools, and what each virtual server exposes.
            "/admin/registry" => {
                let rt = self.shared.runtime.load_full();
                let body = registry_report(&self.shared, &rt);
                reply(200, "application/json", body.to_string().into_bytes())
            }
            "/metrics" => reply(
                200,
                "text/plain; version=0.0.4",
                self.shared.metrics.render(),
            ),
            _ => reply(
                404,
                "text/plain",
                b"not found; try /healthz, /readyz or /metrics\n".to_vec(),
            ),
        }
    }
}
