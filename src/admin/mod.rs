//! The admin (operator) listener: probes and metrics (`/healthz`, `/readyz`, `/metrics`,
//! `/.well-known/jwks.json`) and the `/admin/*` control plane.
//!
//! Served by Pingora's plain HTTP app server on its own address, so scraping and probes never
//! compete with MCP traffic for a listener, and the address can stay private.
//!
//! Every request passes, in order: the DNS-rebinding guard (`Host`, `Origin`: the same checks
//! and config shape as MCP listeners), the route table ([`route`]: each endpoint's method
//! and the [`AdminPermission`] it needs), [`auth::authorize`] unless the path is public, and
//! for state changes the body rules (JSON `POST`, no query string; see [`read_json_body`]).
//! Writes are recorded through [`audit`]. Behaviour and examples: `docs/admin.md`.
//!
//! Layout: `auth` (actor, permission check), `audit` (the write record), `error` (status
//! mapping), `registry` (the registry endpoints), `approvals` (calls waiting for a human),
//! `quotas` (what is left of each limit), `status` (the status page and its JSON).

mod approvals;
pub mod audit;
pub mod auth;
pub mod error;
mod quotas;
mod registry;
pub mod status;

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

pub use auth::AdminActor;
pub use error::AdminError;

use crate::config::{AdminConfig, AdminPermission};
use crate::state::Shared;

/// Largest body a state-changing admin request may carry. The bodies are a few names.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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

/// What the admin listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Healthz,
    Readyz,
    Metrics,
    Jwks,
    Registry,
    Approve,
    /// `GET /admin/approvals`.
    Approvals,
    /// `GET /admin/approvals/{id}`.
    Approval,
    /// `POST /admin/approvals/approve` and `/deny`.
    DecideCall(crate::approval::Verdict),
    Quotas,
    /// `GET /admin/status`: the HTML status page.
    Status,
    /// `GET /admin/status.json`: the same data as JSON.
    StatusJson,
}

impl Endpoint {
    /// The one method it takes.
    fn method(self) -> http::Method {
        match self {
            Endpoint::Approve | Endpoint::DecideCall(_) => http::Method::POST,
            _ => http::Method::GET,
        }
    }

    /// The `Allow` value of its 405.
    fn allow(self) -> &'static str {
        match self {
            Endpoint::Approve | Endpoint::DecideCall(_) => "POST",
            _ => "GET",
        }
    }

    /// The permission it needs when it is not public.
    fn permission(self) -> AdminPermission {
        match self {
            Endpoint::Approve => AdminPermission::Write,
            Endpoint::DecideCall(_) => AdminPermission::Approve,
            _ => AdminPermission::Read,
        }
    }
}

/// The endpoint at `path`, if any.
fn route(path: &str) -> Option<Endpoint> {
    Some(match path {
        "/healthz" => Endpoint::Healthz,
        "/readyz" => Endpoint::Readyz,
        "/metrics" => Endpoint::Metrics,
        "/.well-known/jwks.json" => Endpoint::Jwks,
        "/admin/registry" => Endpoint::Registry,
        "/admin/registry/approve" => Endpoint::Approve,
        "/admin/approvals" => Endpoint::Approvals,
        "/admin/approvals/approve" => Endpoint::DecideCall(crate::approval::Verdict::Approve),
        "/admin/approvals/deny" => Endpoint::DecideCall(crate::approval::Verdict::Deny),
        p if p
            .strip_prefix("/admin/approvals/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')) =>
        {
            Endpoint::Approval
        }
        "/admin/quotas" => Endpoint::Quotas,
        "/admin/status" => Endpoint::Status,
        "/admin/status.json" => Endpoint::StatusJson,
        _ => return None,
    })
}

/// Host and Origin checks: the same guard as MCP listeners.
fn guard(admin: &AdminConfig, req: &pingora::http::RequestHeader) -> Result<(), AdminError> {
    let header =
        |name: http::header::HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
    crate::guard::check_request(
        req.uri.authority().map(|a| a.as_str()),
        header(http::header::HOST),
        header(http::header::ORIGIN),
        &admin.hosts,
        &admin.allowed_origins,
        admin.address,
    )
    .map_err(AdminError::Guard)
}

/// Read a state-changing request's JSON body: no query string (arguments never travel in
/// URLs, where logs and browser history keep them), `Content-Type: application/json` (which
/// a cross-site HTML form cannot send), at most [`MAX_BODY_BYTES`].
async fn read_json_body(
    session: &mut ServerSession,
    example: &'static str,
) -> Result<Vec<u8>, AdminError> {
    let req = session.req_header();
    let path = req.uri.path().to_string();
    if req.uri.query().is_some() {
        return Err(AdminError::QueryNotAllowed { path, example });
    }
    let ct = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(AdminError::UnsupportedMediaType {
            got: if ct.is_empty() {
                "(none)".into()
            } else {
                crate::error::clip(&ct)
            },
            example,
        });
    }
    let declared = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let too_large = AdminError::BodyTooLarge {
        limit: MAX_BODY_BYTES,
    };
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large);
    }
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(AdminError::BadBody {
                    reason: format!("could not read it: {e}"),
                    example,
                })
            }
        }
    }
}

impl AdminApp {
    async fn handle(&self, session: &mut ServerSession) -> Result<Response<Vec<u8>>, AdminError> {
        let rt = self.shared.runtime.load_full();
        // The admin service only runs when the section exists; an absent one (a reload that
        // removed it) leaves only the probes, with no guard config to apply.
        let admin = rt.config.admin.as_ref();
        let req = session.req_header();
        if let Some(a) = admin {
            guard(a, req)?;
        }
        let path = req.uri.path();
        let endpoint = route(path).ok_or_else(|| AdminError::NotFound {
            path: crate::error::clip(path),
        })?;
        if req.method != endpoint.method() {
            return Err(AdminError::MethodNotAllowed {
                method: crate::error::clip(req.method.as_str()),
                path: path.to_string(),
                allow: endpoint.allow(),
            });
        }
        let public = admin.is_none_or(|a| a.public_paths.iter().any(|p| p == path));
        if public && !is_api(endpoint) {
            return Ok(self.serve_probe(endpoint, &rt));
        }
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let verifier = rt.auth.as_ref().and_then(|a| a.jwt());
        let actor = auth::authorize(
            admin.and_then(|a| a.auth.as_ref()),
            verifier,
            authorization,
            endpoint.permission(),
        )
        .await?;
        match endpoint {
            Endpoint::Registry => Ok(json(200, &registry::report(&self.shared, &rt))),
            Endpoint::Approve => {
                let body = read_json_body(session, registry::APPROVE_EXAMPLE).await?;
                let done = registry::approve(&self.shared, &actor, &body).await?;
                Ok(json(200, &done))
            }
            Endpoint::Approvals => Ok(json(200, &approvals::list(&self.shared, &rt).await?)),
            Endpoint::Approval => {
                let id = path.trim_start_matches("/admin/approvals/").to_string();
                Ok(json(200, &approvals::get(&self.shared, &rt, &id).await?))
            }
            Endpoint::DecideCall(verdict) => {
                let body = read_json_body(session, approvals::DECIDE_EXAMPLE).await?;
                let done = approvals::decide(&self.shared, &rt, &actor, verdict, &body).await?;
                Ok(json(200, &done))
            }
            Endpoint::Quotas => {
                let query = quotas::parse_query(session.req_header().uri.query())?;
                Ok(json(200, &quotas::report(&self.shared, &rt, &query).await))
            }
            Endpoint::Status => {
                let snapshot = status::build(&self.shared, &rt).await;
                let mut r = reply(200, "text/html; charset=utf-8", status::page(&snapshot));
                // Live figures: never cached by the browser or a proxy.
                r.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("no-store"),
                );
                Ok(r)
            }
            Endpoint::StatusJson => {
                let snapshot = status::build(&self.shared, &rt).await;
                Ok(json(200, &status::json(&snapshot)))
            }
            probe => Ok(self.serve_probe(probe, &rt)),
        }
    }

    /// The probe and metrics endpoints (public by default).
    fn serve_probe(&self, endpoint: Endpoint, rt: &crate::state::Runtime) -> Response<Vec<u8>> {
        match endpoint {
            // Readiness: the admin service runs inside the same server as the proxy services,
            // which Pingora starts together, so answering means the listeners are up and a
            // validated configuration with resolved upstreams is loaded.
            Endpoint::Readyz => json(
                200,
                &serde_json::json!({
                    "status": "ready",
                    "listeners": rt.config.listeners.len(),
                    "upstreams": rt.config.upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
                }),
            ),
            // Public keys of the gateway's identity-signing keys (signed_identity upstreams).
            Endpoint::Jwks => json(200, rt.identity.jwks()),
            Endpoint::Metrics => {
                reply(200, "text/plain; version=0.0.4", self.shared.metrics_text())
            }
            // Liveness: the process answers.
            _ => reply(200, "text/plain", b"ok\n".to_vec()),
        }
    }
}

/// `/admin/*`: never public, whatever `public_paths` says (config refuses listing them).
fn is_api(e: Endpoint) -> bool {
    matches!(
        e,
        Endpoint::Registry
            | Endpoint::Approve
            | Endpoint::Approvals
            | Endpoint::Approval
            | Endpoint::DecideCall(_)
            | Endpoint::Quotas
            | Endpoint::Status
            | Endpoint::StatusJson
    )
}

/// The challenge that makes a browser ask for credentials, sent besides the Bearer one on
/// the status page's 401s (a browser cannot send a bearer token; it answers this with
/// `Basic base64(user:password)`, the password being the admin token: see [`auth`]).
const BASIC_CHALLENGE: &str = "Basic realm=\"mcp-gateway admin\", charset=\"UTF-8\"";

/// Endpoints a person opens in a browser.
fn for_browsers(e: Endpoint) -> bool {
    matches!(e, Endpoint::Status | Endpoint::StatusJson)
}

fn json(status: u16, body: &serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", body.to_string().into_bytes())
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = r.body().len();
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    r
}

fn error_response(e: &AdminError) -> Response<Vec<u8>> {
    let mut r = json(e.http_status(), &e.body());
    r.headers_mut().extend(e.response_headers());
    r
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match self.handle(session).await {
            Ok(r) => r,
            Err(e) => {
                let req = session.req_header();
                if req.method != http::Method::GET {
                    let peer = session
                        .client_addr()
                        .map_or_else(|| "unknown".to_string(), |a| a.to_string());
                    let (method, path) = (
                        crate::error::clip(req.method.as_str()),
                        crate::error::clip(req.uri.path()),
                    );
                    audit::refused(
                        &self.shared.audit,
                        &method,
                        &path,
                        &peer,
                        &e.to_string(),
                        e.http_status(),
                    )
                    .await;
                }
                let mut r = error_response(&e);
                if e.http_status() == 401 && route(req.uri.path()).is_some_and(for_browsers) {
                    r.headers_mut().append(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static(BASIC_CHALLENGE),
                    );
                }
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_endpoint_needs_a_permission_and_writes_are_posts() {
        for p in crate::config::PUBLIC_PATHS {
            let e = route(p).unwrap();
            assert!(!is_api(e), "{p}");
            assert_eq!(e.method(), http::Method::GET);
        }
        let approve = route("/admin/registry/approve").unwrap();
        assert_eq!(approve.method(), http::Method::POST);
        assert_eq!(approve.permission(), AdminPermission::Write);
        let registry = route("/admin/registry").unwrap();
        assert!(is_api(registry));
        assert_eq!(registry.permission(), AdminPermission::Read);
        assert_eq!(route("/admin/nope"), None);
        for p in ["/admin/approvals/approve", "/admin/approvals/deny"] {
            let e = route(p).unwrap();
            assert!(is_api(e));
            assert_eq!(e.method(), http::Method::POST);
            assert_eq!(
                e.permission(),
                AdminPermission::Approve,
                "write is not approve"
            );
        }
        for p in ["/admin/approvals", "/admin/approvals/abc"] {
            let e = route(p).unwrap();
            assert!(is_api(e));
            assert_eq!(e.permission(), AdminPermission::Read);
        }
        assert_eq!(route("/admin/approvals/a/b"), None);
        for p in ["/admin/status", "/admin/status.json"] {
            let e = route(p).unwrap();
            assert!(is_api(e) && for_browsers(e), "{p}");
            assert_eq!(e.method(), http::Method::GET);
            assert_eq!(e.permission(), AdminPermission::Read);
        }
    }
}
