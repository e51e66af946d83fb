//! Gateway sessions of virtual servers, and the upstream sessions opened for them.
//!
//! A gateway session is a sealed token (`crate::session`) bound to the server, the caller's
//! issuer and subject, and an expiry; DELETE revokes it on this replica. Each gateway session
//! gets its own session on every upstream it calls, opened lazily with the caller's
//! credential and cached by (token digest, upstream name).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::Principal;
use crate::config::VirtualServer;
use crate::decision::SessionBinding;
use crate::digest::Digest;
use crate::error::Reject;
use crate::mcp::capabilities::ClientCaps;
use crate::registry::client::McpClient;
use crate::session::{SessionClaims, SessionKeys};
use crate::state::{Runtime, Shared};
use crate::upstreams::UpstreamRt;

use super::{principal_id, result, Answer, Request};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The session keys in force: the configured ones, or the process's random ones.
fn keys<'a>(shared: &'a Shared, runtime: &'a Runtime) -> &'a SessionKeys {
    runtime.session_keys().unwrap_or(&shared.sessions)
}

/// Answer `initialize`: the negotiated revision, the server's capabilities and a new sealed
/// session bound to this server and caller.
pub(super) fn initialize(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    offered: super::items::Offered,
) -> Result<Answer, Reject> {
    #[derive(serde::Deserialize)]
    struct Init<'a> {
        #[serde(default, borrow)]
        params: Option<InitParams<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct InitParams<'a> {
        #[serde(default, rename = "protocolVersion", borrow)]
        version: Option<std::borrow::Cow<'a, str>>,
    }
    let asked = serde_json::from_slice::<Init<'_>>(req.body)
        .ok()
        .and_then(|i| i.params)
        .and_then(|p| p.version);
    let version = crate::mcp::revision::negotiate(asked.as_deref());
    let vs = req.server;
    let (issuer, subject) = req.principal_id();
    let ttl = runtime.config.sessions.ttl.as_secs();
    let token = keys(shared, runtime)
        .seal(&SessionClaims {
            server: vs.name.clone(),
            issuer: issuer.to_string(),
            subject: subject.to_string(),
            expires: now() + ttl,
            caps: crate::mcp::capabilities::ClientCaps::of_initialize(req.body).0,
        })
        .ok_or_else(|| Reject::Internal("could not seal a session".into()))?;
    let body = serde_json::json!({
        "protocolVersion": version,
        "capabilities": super::items::capabilities(offered, true),
        "serverInfo": { "name": vs.name, "version": env!("CARGO_PKG_VERSION") },
        "instructions": format!("mcp-gateway virtual server {}", vs.name),
    });
    Ok(Answer::Reply {
        body: result(req.id_json(), body.to_string().as_bytes()),
        session: Some(token),
    })
}

/// Check a request's session: present (400 otherwise), genuine, unexpired, not ended by
/// DELETE, and bound to this virtual server and this caller (404 otherwise). Returns the
/// token's digest (the key of the revocation and upstream-session maps) and its expiry.
pub fn check(
    shared: &Shared,
    runtime: &Runtime,
    vs: &VirtualServer,
    principal: Option<&Principal>,
    session_header: Option<&str>,
) -> Result<(Digest, u64), Reject> {
    let token = session_header.ok_or(Reject::SessionRequired)?;
    let (d, expires) = keys(shared, runtime)
        .verify(token, now(), &vs.name, principal_id(principal))
        .ok_or(Reject::SessionNotFound)?;
    if shared.revoked.contains(&d) {
        return Err(Reject::SessionNotFound);
    }
    Ok((d, expires))
}

/// End the session of a DELETE: check it, revoke it, and forget its upstream sessions
/// (returned as (upstream name, session id) for [`close_upstream_sessions`]).
pub fn end(
    shared: &Shared,
    runtime: &Runtime,
    vs: &VirtualServer,
    principal: Option<&Principal>,
    session_header: Option<&str>,
) -> Result<Vec<(String, String)>, Reject> {
    let (d, expires) = check(shared, runtime, vs, principal, session_header)?;
    // Stateless tokens stay genuine until they expire: remember the ended ones (bounded,
    // per replica) so they get 404 from now on. A full table refuses the DELETE (503) and
    // the upstream sessions stay open: the session is not ended, and the client is told so.
    if let Err(full) = shared.revoked.revoke(d, expires, now()) {
        shared.metrics.session_revocation_full();
        log::warn!(
            "session revocation table full ({} live entries): DELETE refused; the sessions expire after sessions.ttl",
            full.capacity
        );
        return Err(Reject::SessionRevocationsFull {
            capacity: full.capacity,
        });
    }
    super::events::end(shared, d);
    Ok(shared.upstream_sessions.take_all(&d))
}

/// DELETE the upstream sessions a gateway session had opened (best effort), each with the
/// caller's credential, as it was opened with it.
pub async fn close_upstream_sessions(
    shared: &Shared,
    runtime: &Runtime,
    principal: Option<&Principal>,
    ended: Vec<(String, String)>,
) {
    for (name, sid) in ended {
        let Some(u) = runtime.upstreams.by_name(&name) else {
            continue;
        };
        let cred = runtime
            .identity
            .credential(&u.credential, &u.config, principal)
            .await
            .ok()
            .flatten();
        let client = McpClient {
            http: &shared.http,
            url: &u.config.url,
            auth: cred
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|v| (u.config.auth.header.as_str(), v)),
            timeout: u.config.read_timeout,
        };
        client
            .close(&crate::registry::client::UpstreamSession {
                id: Some(sid),
                capabilities: serde_json::Value::Null,
            })
            .await;
    }
}

/// The relayable capabilities the client of gateway session `session` declared.
pub fn client_caps(shared: &Shared, runtime: &Runtime, session: Digest) -> ClientCaps {
    ClientCaps(
        keys(shared, runtime)
            .client_caps(&session, now())
            .unwrap_or(0),
    )
}

/// The upstream session for gateway session `session` (valid until `expires`) on
/// `upstream`, opened on first use with `credential` (the one the call carries) declaring
/// `caps` (the client's). `None`: a stateless upstream.
pub async fn upstream_session(
    shared: &Shared,
    session: Digest,
    expires: u64,
    upstream: &UpstreamRt,
    credential: Option<&http::HeaderValue>,
    caps: ClientCaps,
) -> Result<Option<String>, Reject> {
    let u = &upstream.config;
    // Keyed by upstream name: a reload that reorders upstreams never mixes sessions up.
    if let Some(id) = shared.upstream_sessions.get(&session, &u.name, now()) {
        return Ok(id);
    }
    let cred = credential.and_then(|v| v.to_str().ok());
    let client = McpClient {
        http: &shared.http,
        url: &u.url,
        auth: cred.map(|c| (u.auth.header.as_str(), c)),
        timeout: u.read_timeout,
    };
    // Boxed: the first call of a session only; see `upstream_request_filter`.
    let s = Box::pin(client.initialize_as(caps))
        .await
        .map_err(|cause| Reject::Upstream {
            upstream: u.name.clone(),
            cause: format!("could not open a session: {cause}"),
            timeout: false,
        })?;
    // Stateless upstreams (no session id) are remembered too, so they are initialized once.
    shared
        .upstream_sessions
        .insert(session, expires, &u.name, s.id.clone(), now());
    Ok(s.id)
}

/// Where a modern (sessionless) caller's calls go: under a key of its own, (virtual server,
/// issuer, subject), the gateway holds one upstream session per upstream for it, opened on
/// the first call as for a legacy session, healed the same way when an upstream loses it
/// (`proxy::heal`), and reopened after `sessions.ttl` (the old one idles out upstream).
/// Anonymous callers of an `anonymous` server share one: nothing tells them apart.
pub(super) fn modern_binding(
    runtime: &Runtime,
    vs: &VirtualServer,
    principal: Option<&Principal>,
) -> SessionBinding {
    let (issuer, subject) = principal_id(principal);
    let digest = crate::digest::keyed(&[
        b"modern",
        vs.name.as_bytes(),
        issuer.as_bytes(),
        subject.as_bytes(),
    ]);
    SessionBinding::Gateway {
        digest,
        expires: now() + runtime.config.sessions.ttl.as_secs(),
    }
}

/// The binding of a request to upstream `upstream` (an index into the configuration's): none
/// for a 2026-07-28 client when the upstream serves 2026-07-28 too (the request goes as
/// sent, nothing is held or translated), else `held()` (a legacy client's session, or a
/// modern caller's [`modern_binding`], computed only then).
pub(super) fn binding(
    catalog: &crate::registry::catalog::Catalog,
    upstream: usize,
    modern_client: bool,
    held: impl FnOnce() -> SessionBinding,
) -> SessionBinding {
    if modern_client && catalog.speaks_modern(upstream) {
        SessionBinding::Stateless
    } else {
        held()
    }
}

/// Forget a cached upstream session the upstream no longer knows (it answered 404).
pub fn forget_upstream_session(shared: &Shared, session: Digest, upstream: &str) {
    shared.upstream_sessions.remove(&session, upstream);
}
