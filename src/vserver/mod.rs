//! Virtual servers: the gateway answers as one MCP server over many upstreams.
//!
//! Plain inputs and outputs (no Pingora `Session`): [`handle`] takes one POSTed message and
//! returns an [`Answer`]; only `tools/call` leaves as a [`Target`] for
//! [`crate::decision::decide`]. The proxy writes the answer.
//!
//! | message | answer | module |
//! |---|---|---|
//! | `initialize` | local: capabilities `tools` (and `prompts`/`resources` when an upstream has some), a sealed `Mcp-Session-Id` bound to server + caller | [`session`] |
//! | responses, `notifications/cancelled` | to the upstream session they concern ([`Answer::Relay`]) | [`reply`] |
//! | other notifications | local 202 | here |
//! | `ping` | local `{}` | here |
//! | `tools/list` | local, from the registry catalog, filtered for the caller's class | [`list`] |
//! | `tools/call` | resolved by exposed name to a [`Target`] on the owning upstream | [`call`] |
//! | `prompts/list`, `resources/list`, `resources/templates/list` | local, from the catalog's items, filtered for the caller's class | [`items`] |
//! | `prompts/get`, `resources/read`, `completion/complete` | resolved by exposed name or URI to a [`Target`] on the owning upstream | [`items`] |
//! | `resources/subscribe`, `resources/unsubscribe` | as `resources/read`; recorded per session, the upstream's stream followed | [`items`], [`events`] |
//! | `logging/setLevel` | fanned out to the upstreams that declare `logging` | [`logging`] |
//! | anything else | -32601 | here |
//!
//! Every message but `initialize` needs a valid session of this server and caller (404
//! otherwise, as the spec says for unknown sessions). DELETE ends a session and the GET
//! stream reports list changes ([`session::end`], [`list::current_tools`]).
//!
//! That is the handshake era. The same endpoint serves 2026-07-28 requests, selected per
//! request ([`crate::mcp::envelope::select`]: a `_meta` revision or `server/discover`), in
//! [`modern`]: no session, headers checked against the body, the same list and call paths.

mod call;
pub mod events;
pub mod ids;
mod items;
pub mod list;
pub mod listen;
pub mod logging;
mod modern;
pub mod reply;
pub mod results;
pub mod session;

use std::sync::Arc;

use bytes::Bytes;

use crate::auth::Principal;
use crate::config::VirtualServer;
use crate::decision::{SessionBinding, Target};
use crate::error::Reject;
use crate::mcp::envelope::{self, Era};
use crate::mcp::jsonrpc::{MessageKind, RpcCall};
use crate::mcp::McpMethod;
use crate::state::{Runtime, Shared};

/// How a virtual server answers one message.
// One per request, built once and moved once into the request's context: a few hundred
// bytes moved is cheaper than the allocation a boxed `Relay` would cost every call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Answer {
    /// Answer locally with this JSON body (and, for initialize, a new session id).
    Reply {
        body: Bytes,
        session: Option<String>,
    },
    /// Answer 202 with no body.
    Accepted,
    /// Go upstream, once [`crate::decision::decide`] allows it.
    Forward(Target),
    /// Go upstream with `body` (parsed as `call`) in place of the client's: a client's
    /// answer to a server-to-client request (id restored) or a cancellation ([`reply`]).
    Relay {
        target: Target,
        body: Bytes,
        call: RpcCall,
    },
    /// Serve a 2026-07-28 `subscriptions/listen` stream with these frames ([`listen`]).
    Listen(Box<listen::Listen>),
}

/// One POSTed message to a virtual server, parsed and authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub server: &'a Arc<VirtualServer>,
    /// Index of the server in the configuration (keys its catalog).
    pub index: usize,
    pub principal: Option<&'a Principal>,
    pub body: &'a Bytes,
    pub call: &'a RpcCall,
    /// The client's `Mcp-Session-Id`.
    pub session_header: Option<&'a str>,
    /// The request's headers (a modern request's metadata headers are checked against the
    /// body).
    pub headers: &'a http::HeaderMap,
    /// The metadata headers admit already found equal to the body.
    pub checked: crate::mcp::headers::Checked,
}

impl Request<'_> {
    /// Raw JSON of the message's id, if it has one.
    fn id_json(&self) -> Option<&[u8]> {
        self.call.id.clone().and_then(|r| self.body.get(r))
    }

    /// The caller's (issuer, subject), or ("", "") on a listener without authentication.
    fn principal_id(&self) -> (&str, &str) {
        principal_id(self.principal)
    }
}

/// The caller's (issuer, subject), or ("", "") without authentication.
fn principal_id(principal: Option<&Principal>) -> (&str, &str) {
    principal.map_or(("", ""), |p| (p.issuer.as_str(), p.subject.as_str()))
}

/// Select the request's era, check its session (legacy) or envelope (modern), and decide
/// how to answer it.
pub async fn handle(
    shared: &Shared,
    runtime: &Runtime,
    req: Request<'_>,
) -> Result<Answer, Reject> {
    let version_header = req
        .headers
        .get(&crate::mcp::headers::name::MCP_PROTOCOL_VERSION)
        .map(http::HeaderValue::as_bytes);
    let meta = envelope::read_meta(req.body, req.call)?;
    let client = crate::decision::ModernClient {
        caps: meta.caps,
        log_floor: logging::floor(meta.log_level.as_deref()),
    };
    match envelope::select(req.call.method, meta.version, version_header) {
        Era::Legacy => legacy(shared, runtime, req).await,
        Era::Modern { version } => {
            modern::handle(shared, runtime, req, version.as_deref(), client).await
        }
    }
}

/// A handshake-era message: `initialize`, or one on a session.
async fn legacy(shared: &Shared, runtime: &Runtime, req: Request<'_>) -> Result<Answer, Reject> {
    if req.call.method == McpMethod::Initialize {
        let offered = items::offered(runtime, shared, req.index);
        return session::initialize(shared, runtime, &req, offered);
    }
    let (digest, expires) = session::check(
        shared,
        runtime,
        req.server,
        req.principal,
        req.session_header,
    )?;
    if req.call.kind != MessageKind::Request {
        return reply::route(shared, runtime, &req, digest, expires);
    }
    match req.call.method {
        McpMethod::Ping => Ok(Answer::Reply {
            body: result(req.id_json(), b"{}"),
            session: None,
        }),
        McpMethod::ToolsList => list::tools_list(shared, runtime, &req, false).await,
        McpMethod::ToolsCall => call::resolve(
            shared,
            runtime,
            &req,
            || SessionBinding::Gateway { digest, expires },
            None,
        )
        .await
        .map(Answer::Forward),
        McpMethod::PromptsList | McpMethod::ResourcesList | McpMethod::ResourcesTemplatesList => {
            let kind = items::list_kind(req.call.method)
                .ok_or_else(|| Reject::Internal("not a list method".into()))?;
            items::list(shared, runtime, &req, kind, false).await
        }
        // A subscription is resolved as `resources/read` is (the same visibility, the
        // upstream's own URI) and recorded once decided (`events::subscription`, from admit).
        McpMethod::PromptsGet
        | McpMethod::ResourcesRead
        | McpMethod::CompletionComplete
        | McpMethod::ResourcesSubscribe
        | McpMethod::ResourcesUnsubscribe => items::resolve(
            shared,
            runtime,
            &req,
            || SessionBinding::Gateway { digest, expires },
            None,
        )
        .await
        .map(Answer::Forward),
        McpMethod::LoggingSetLevel => {
            logging::set_level(shared, runtime, &req, digest, expires).await
        }
        _ => Err(Reject::MethodNotFound {
            method: format!(
                "{} (not served by virtual servers yet)",
                req.call.method.as_label()
            ),
        }),
    }
}

/// A JSON-RPC result with the raw `result` JSON.
fn result(id: Option<&[u8]>, result: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(48 + result.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.unwrap_or(b"null"));
    out.extend_from_slice(br#","result":"#);
    out.extend_from_slice(result);
    out.push(b'}');
    Bytes::from(out)
}
