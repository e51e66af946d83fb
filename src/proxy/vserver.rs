//! Virtual-server requests, run in `request_filter` after authentication and body parsing.
//!
//! A virtual server is answered by the gateway itself, except `tools/call`:
//!
//! | message | answer |
//! |---|---|
//! | `initialize` | local: capabilities `tools`, a sealed `Mcp-Session-Id` bound to server + caller |
//! | notifications, responses | local 202 |
//! | `ping` | local `{}` |
//! | `tools/list` | local, from the registry catalog, filtered for the caller's class |
//! | `tools/call` | routed by exposed name to the owning upstream with the original name and pinned arguments restored, on an upstream session opened lazily for this gateway session |
//! | anything else | -32601 |
//!
//! Every message but `initialize` needs a valid session of this server and caller (404
//! otherwise, as the spec says for unknown sessions).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::digest::Digest;

use super::ctx::RequestCtx;
use crate::config::VirtualServer;
use crate::error::Reject;
use crate::mcp::jsonrpc::MessageKind;
use crate::mcp::McpMethod;
use crate::registry::catalog::{self, Catalog};
use crate::registry::client::{McpClient, PROTOCOL_VERSION};
use crate::session::SessionClaims;
use crate::state::{Runtime, Shared};

/// Bound on cached upstream sessions.
const MAX_UPSTREAM_SESSIONS: usize = 100_000;

/// What to do with a virtual-server message.
#[derive(Debug)]
pub(crate) enum Action {
    /// Answer locally with this JSON body (and, for initialize, a new session id).
    Reply {
        body: Bytes,
        session: Option<String>,
    },
    /// Answer 202 with no body.
    Accepted,
    /// Forward to `ctx.upstream` with `ctx.body` (rewritten) on `ctx.upstream_session`.
    Forward,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn result(id: Option<&[u8]>, result: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(48 + result.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.unwrap_or(b"null"));
    out.extend_from_slice(br#","result":"#);
    out.extend_from_slice(result);
    out.push(b'}');
    Bytes::from(out)
}

/// The caller's (issuer, subject), or ("", "") on a listener without authentication.
fn principal_id(ctx: &RequestCtx) -> (&str, &str) {
    ctx.principal
        .as_ref()
        .map_or(("", ""), |p| (p.issuer.as_str(), p.subject.as_str()))
}

/// Check a POSTed message's session and decide how to answer it.
pub(crate) async fn handle(
    shared: &Shared,
    runtime: &Runtime,
    index: usize,
    ctx: &mut RequestCtx,
    session_header: Option<&str>,
) -> Result<Action, Reject> {
    let Some(vs) = runtime.config.virtual_servers.get(index) else {
        return Err(Reject::Internal("virtual server index out of range".into()));
    };
    let Some(call) = ctx.call.clone() else {
        return Err(Reject::Internal("no parsed message".into()));
    };
    if call.method == McpMethod::Initialize {
        let ttl = runtime.config.sessions.ttl.as_secs();
        return initialize(keys(shared, runtime), ttl, vs, ctx);
    }
    let (digest, _) = check_session(shared, runtime, vs, ctx, session_header)?;
    ctx.session_digest = Some(digest);
    if call.kind != MessageKind::Request {
        return Ok(Action::Accepted);
    }
    match call.method {
        McpMethod::Ping => Ok(Action::Reply {
            body: result(ctx.id_json(), b"{}"),
            session: None,
        }),
        McpMethod::ToolsList => {
            let catalog = catalog(shared, runtime, index).await?;
            let class = class(vs, ctx);
            let size = runtime.config.registry.page_size;
            let cursor = list_cursor(&ctx.body);
            // Pages are cached per (caller class, offset, size): a cursor only ever selects
            // within the caller's own list, whatever offset it names.
            let (tools, next) = match (size, cursor) {
                (0, None) => (catalog.tools_json(vs, class), None),
                (0, Some(_)) => return Err(Reject::InvalidCursor),
                (_, c) => {
                    let offset = match c {
                        None => 0,
                        Some(c) => {
                            open_cursor(&c, catalog.generation).ok_or(Reject::InvalidCursor)?
                        }
                    };
                    catalog.tools_page(vs, class, offset, size)
                }
            };
            // Built in one buffer: the list is the bulk of the answer, copied once.
            let id = ctx.id_json().unwrap_or(b"null");
            let mut r = Vec::with_capacity(tools.len() + id.len() + 96);
            r.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
            r.extend_from_slice(id);
            r.extend_from_slice(br#","result":{"tools":"#);
            r.extend_from_slice(&tools);
            if let Some(n) = next {
                r.extend_from_slice(br#","nextCursor":""#);
                r.extend_from_slice(seal_cursor(n, catalog.generation).as_bytes());
                r.push(b'"');
            }
            r.extend_from_slice(b"}}");
            Ok(Action::Reply {
                body: Bytes::from(r),
                session: None,
            })
        }
        McpMethod::ToolsCall => {
            let catalog = catalog(shared, runtime, index).await?;
            let name = call
                .tool_name(&ctx.body)
                .map(|n| n.into_owned())
                .unwrap_or_default();
            let class = class(vs, ctx);
            let entry = catalog
                .lookup(vs, class, &name)
                .ok_or_else(|| Reject::UnknownTool {
                    name: crate::error::clip(&name),
                })?;
            if entry.unavailable {
                return Err(Reject::Upstream {
                    upstream: entry.upstream_name.clone(),
                    cause: "is down (tool discovery failed); try again later".into(),
                    timeout: false,
                });
            }
            // Splices only: the upstream's tool name, then the pinned arguments. Every other
            // byte is the client's (numbers are never rounded).
            let (body, rewritten) =
                crate::mcp::jsonrpc::replace_tool_name(&ctx.body, &call, &entry.tool)?;
            let (body, rewritten) = if entry.pinned.is_empty() {
                (body, rewritten)
            } else {
                let depth = runtime.config.limits.max_json_depth;
                crate::mcp::rewrite::pin_arguments(&body, &entry.pinned, &name, depth)?
            };
            ctx.body = body;
            ctx.body_replaced = true;
            ctx.id = rewritten.id.clone();
            ctx.call = Some(rewritten);
            ctx.upstream = Some(entry.upstream);
            ctx.upstream_tool = Some(entry.tool.clone());
            let hint = |k: &str| entry.definition["annotations"][k].as_bool() == Some(true);
            ctx.tool_retry_safe = hint("readOnlyHint") || hint("idempotentHint");
            Ok(Action::Forward)
        }
        _ => Err(Reject::MethodNotFound {
            method: format!(
                "{} (not served by virtual servers yet)",
                call.method.as_label()
            ),
        }),
    }
}

fn initialize(
    keys: &crate::session::SessionKeys,
    ttl: u64,
    vs: &VirtualServer,
    ctx: &RequestCtx,
) -> Result<Action, Reject> {
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
    let asked = serde_json::from_slice::<Init<'_>>(&ctx.body)
        .ok()
        .and_then(|i| i.params)
        .and_then(|p| p.version)
        .map(|v| v.into_owned());
    let version = match asked.as_deref() {
        Some(v @ ("2025-03-26" | "2025-06-18" | "2025-11-25")) => v.to_string(),
        _ => PROTOCOL_VERSION.to_string(),
    };
    let token = keys
        .seal(&SessionClaims {
            server: vs.name.clone(),
            issuer: principal_id(ctx).0.to_string(),
            subject: principal_id(ctx).1.to_string(),
            expires: now() + ttl,
        })
        .ok_or_else(|| Reject::Internal("could not seal a session".into()))?;
    let body = serde_json::json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": true } },
        "serverInfo": { "name": vs.name, "version": env!("CARGO_PKG_VERSION") },
        "instructions": format!("mcp-gateway virtual server {}", vs.name),
    });
    Ok(Action::Reply {
        body: result(ctx.id_json(), body.to_string().as_bytes()),
        session: Some(token),
    })
}

/// The session keys in force: the configured ones, or the process's random ones.
fn keys<'a>(shared: &'a Shared, runtime: &'a Runtime) -> &'a crate::session::SessionKeys {
    runtime.session_keys().unwrap_or(&shared.sessions)
}

/// Check a request's session: present (400 otherwise), genuine, unexpired, not ended by
/// DELETE, and bound to this virtual server and this caller (404 otherwise). Returns the
/// token's digest (the key of the revocation and upstream-session maps) and its expiry.
pub(crate) fn check_session(
    shared: &Shared,
    runtime: &Runtime,
    vs: &VirtualServer,
    ctx: &RequestCtx,
    session_header: Option<&str>,
) -> Result<(Digest, u64), Reject> {
    let token = session_header.ok_or(Reject::SessionRequired)?;
    let (d, expires) = keys(shared, runtime)
        .verify(token, now(), &vs.name, principal_id(ctx))
        .ok_or(Reject::SessionNotFound)?;
    if shared.revoked.contains(&d) {
        return Err(Reject::SessionNotFound);
    }
    Ok((d, expires))
}

/// The tools/list JSON this caller sees on virtual server `name` right now (after a reload
/// the server is found by name), or `None` if it no longer exists.
async fn current_tools(shared: &Shared, name: &str, ctx: &RequestCtx) -> Option<Bytes> {
    let rt = shared.runtime.load_full();
    let (i, vs) = rt
        .config
        .virtual_servers
        .iter()
        .enumerate()
        .find(|(_, v)| v.name == name)?;
    let cat = catalog(shared, &rt, i).await.ok()?;
    Some(cat.tools_json(vs, class(vs, ctx)))
}

/// Serve the server-to-client SSE stream of a virtual-server session: a
/// `notifications/tools/list_changed` whenever what this caller can see changes (upstream
/// tools rediscovered, a tool quarantined or approved, policy reloaded), and a comment every
/// 15 s so idle proxies keep the connection. Runs in `request_filter` until the client leaves.
pub(crate) async fn serve_stream(
    session: &mut pingora::proxy::Session,
    shared: &Shared,
    server: &str,
    ctx: &RequestCtx,
) -> pingora::Result<()> {
    let mut h = pingora::http::ResponseHeader::build(200, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
    h.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
    h.insert_header("x-accel-buffering", "no")?;
    session.write_response_header(Box::new(h), false).await?;
    let mut changes = shared.registry.subscribe();
    let mut last = current_tools(shared, server, ctx).await;
    const EVENT: &[u8] =
        b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = current_tools(shared, server, ctx).await;
                if now != last {
                    last = now;
                    session.write_response_body(Some(Bytes::from_static(EVENT)), false).await?;
                }
            }
            _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => {
                session.write_response_body(Some(Bytes::from_static(b": keep-alive\n\n")), false).await?;
            }
        }
    }
    session.write_response_body(None, true).await
}

/// Check the session of a DELETE and forget its upstream sessions.
pub(crate) fn end_session(
    shared: &Shared,
    runtime: &Runtime,
    vs: &VirtualServer,
    ctx: &RequestCtx,
    session_header: Option<&str>,
) -> Result<Vec<(String, String)>, Reject> {
    let (d, expires) = check_session(shared, runtime, vs, ctx, session_header)?;
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
    let mut ended = Vec::new();
    if let Ok(mut m) = shared.upstream_sessions.lock() {
        m.retain(|(k, name), sid| {
            if *k == d {
                if let Some(sid) = sid {
                    ended.push((name.clone(), sid.clone()));
                }
                false
            } else {
                true
            }
        });
    }
    Ok(ended)
}

/// DELETE the upstream sessions a gateway session had opened (best effort).
pub(crate) async fn close_upstream_sessions(
    shared: &Shared,
    runtime: &Runtime,
    ctx: &RequestCtx,
    ended: Vec<(String, String)>,
) {
    for (name, sid) in ended {
        let Some((i, u)) = runtime
            .config
            .upstreams
            .iter()
            .enumerate()
            .find(|(_, u)| u.name == name)
        else {
            continue;
        };
        // The caller's credential, as the session was opened with it.
        let cred = runtime
            .identity
            .credential(i, u, ctx.principal.as_deref())
            .await
            .ok()
            .flatten();
        let client = McpClient {
            http: &shared.http,
            url: &u.url,
            auth: cred
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|v| (u.auth.header.as_str(), v)),
            timeout: u.read_timeout,
        };
        client
            .close(&crate::registry::client::UpstreamSession { id: Some(sid) })
            .await;
    }
}

fn class(vs: &VirtualServer, ctx: &RequestCtx) -> u64 {
    match &ctx.principal {
        Some(p) => catalog::class_of(vs, &p.caller()),
        None => catalog::class_of(vs, &crate::config::Caller::ANONYMOUS),
    }
}

async fn catalog(
    shared: &Shared,
    runtime: &Runtime,
    index: usize,
) -> Result<std::sync::Arc<Catalog>, Reject> {
    let mut snapshot = shared.registry.snapshot();
    if snapshot.generation == 0 {
        // Nothing discovered yet (the refresh task may still be starting): discover now.
        // Single-flight: the requests waiting behind a running discovery take its result
        // instead of each listing every upstream again.
        let changes = Box::pin(
            shared
                .registry
                .ensure_discovered(&runtime.config, &runtime.identity),
        )
        .await;
        shared.record_tool_changes(&changes);
        snapshot = shared.registry.snapshot();
    }
    runtime
        .catalogs
        .get(&runtime.config, index, &snapshot)
        .ok_or_else(|| Reject::Internal("no catalog".into()))
}

/// `params.cursor` of a `tools/list`, if any.
fn list_cursor(body: &[u8]) -> Option<String> {
    // Most lists carry no cursor: skip the parse when the key cannot be there (spelled out,
    // or hidden behind an escape).
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if !has(b"\"cursor\"") && !body.contains(&b'\\') {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct L {
        #[serde(default)]
        params: Option<P>,
    }
    #[derive(serde::Deserialize)]
    struct P {
        #[serde(default)]
        cursor: Option<String>,
    }
    serde_json::from_slice::<L>(body).ok()?.params?.cursor
}

/// Opaque cursor: the offset, bound to the registry generation it was computed for.
fn seal_cursor(offset: usize, generation: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{generation}:{offset}"))
}

fn open_cursor(c: &str, generation: u64) -> Option<usize> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (g, o) = text.split_once(':')?;
    (g.parse::<u64>().ok()? == generation).then_some(())?;
    o.parse().ok()
}

/// The upstream session for this gateway session and upstream, opened on first use with the
/// credential the call carries.
pub(crate) async fn upstream_session(
    shared: &Shared,
    runtime: &Runtime,
    ctx: &RequestCtx,
) -> Result<Option<String>, Reject> {
    let (Some(d), Some(i)) = (ctx.session_digest, ctx.upstream) else {
        return Ok(None);
    };
    let Some(u) = runtime.config.upstreams.get(i) else {
        return Err(Reject::Internal("upstream index out of range".into()));
    };
    // Keyed by upstream name: a reload that reorders upstreams never mixes sessions up.
    let key = (d, u.name.clone());
    if let Some(id) = shared
        .upstream_sessions
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned())
    {
        return Ok(id);
    }
    let cred = ctx.credential.as_ref().and_then(|v| v.to_str().ok());
    let client = McpClient {
        http: &shared.http,
        url: &u.url,
        auth: cred.map(|c| (u.auth.header.as_str(), c)),
        timeout: u.read_timeout,
    };
    // Boxed: the first call of a session only; see `upstream_request_filter`.
    let s = Box::pin(client.initialize())
        .await
        .map_err(|cause| Reject::Upstream {
            upstream: u.name.clone(),
            cause: format!("could not open a session: {cause}"),
            timeout: false,
        })?;
    // Stateless upstreams (no session id) are cached too, so they are initialized once.
    if let Ok(mut m) = shared.upstream_sessions.lock() {
        if m.len() >= MAX_UPSTREAM_SESSIONS {
            // Bounded: drop one entry (its upstream session idles out upstream).
            if let Some(k) = m.keys().next().cloned() {
                m.remove(&k);
            }
        }
        m.insert(key, s.id.clone());
    }
    Ok(s.id)
}

/// Forget a cached upstream session the upstream no longer knows (it answered 404).
pub(crate) fn forget_upstream_session(shared: &Shared, ctx: &RequestCtx) {
    if let (Some(d), Ok(mut m)) = (ctx.session_digest, shared.upstream_sessions.lock()) {
        m.remove(&(d, ctx.upstream_name().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::list_cursor;

    #[test]
    fn list_cursor_is_found_spelled_out_or_escaped_and_absent_otherwise() {
        let c = |b: &str| list_cursor(b.as_bytes());
        assert_eq!(c(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#), None);
        assert_eq!(
            c(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"abc"}}"#),
            Some("abc".into())
        );
        assert_eq!(
            c(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"\u0063ursor":"x"}}"#),
            Some("x".into())
        );
        assert_eq!(c(r#"{"id":"\"","method":"tools/list","params":{}}"#), None);
    }
}
