//! 2026-07-28 ("modern") requests on a virtual server: stateless, no session id, every
//! request carrying its revision in `_meta` and its method (and tool name) in headers that
//! must match the body ([`crate::mcp::envelope`]).
//!
//! | message | answer |
//! |---|---|
//! | `server/discover` | local: the modern revisions, capabilities `tools`, `serverInfo` in `_meta` |
//! | `tools/list` | local, the caller's view of the catalog as for a legacy session, plus `ttlMs`, `cacheScope: "private"`, `resultType` |
//! | `tools/call` | resolved as for a legacy session; to an upstream that speaks 2026-07-28, sent statelessly as the client sent it ([`crate::decision::SessionBinding::Stateless`]); else on the upstream session the gateway holds for this caller ([`super::session::modern_binding`]), and one whose `_meta` declares sampling, elicitation or roots is forwarded by `proxy::mrtr` (upstream requests become an `InputRequiredResult`) |
//! | `prompts/*`, `resources/list`, `resources/read`, `resources/templates/list`, `completion/complete` | as for a legacy session (lists with the cache hints of `tools/list`) |
//! | `subscriptions/listen` | a stream of the opted-in `list_changed` notifications, tagged with the subscription id ([`super::listen`]) |
//! | notifications | 202 |
//! | anything else (`initialize`, `ping`, `logging/setLevel`, ...) | 404 + -32601, the modern status |
//!
//! Nothing here decides a call: `tools/call` leaves as a [`crate::decision::Target`] for
//! [`crate::decision::decide`], exactly like a legacy one.
//!
//! Cache hints: `ttlMs` is `registry.refresh_interval`. The gateway's own view of an upstream
//! can be that old already, so a client that caches for one more interval sees a change at
//! most two intervals late (60 s + 60 s by default); configuration reloads, quarantine and
//! approval change the list at once on the gateway, and reach a caching client within one
//! interval. `cacheScope` is always `"private"`: the list is filtered per principal class.

use crate::error::Reject;
use crate::mcp::jsonrpc::MessageKind;
use crate::mcp::{envelope, McpMethod};
use crate::state::{Runtime, Shared};

use super::{call, items, list, listen, result, session, Answer, Request};

/// Answer one modern request; `version` is its `_meta` revision (`None`: a `server/discover`
/// without the envelope, or a request whose header alone claims the modern revision).
pub(super) async fn handle(
    shared: &Shared,
    runtime: &Runtime,
    req: Request<'_>,
    version: Option<&str>,
    client: crate::decision::ModernClient,
) -> Result<Answer, Reject> {
    let Some(version) = version else {
        // Quirk `discover-without-envelope` (docs/virtual-servers.md, "Both eras"): a
        // `server/discover` without `_meta`, including one sent inside a legacy session.
        // The answer does not depend on the client's revision, so it is answered as is.
        if req.call.method == McpMethod::ServerDiscover && req.call.kind == MessageKind::Request {
            return Ok(discover(shared, runtime, &req));
        }
        return Err(Reject::InvalidParams(format!(
            "a 2026-07-28 request must carry params._meta[{:?}] (and the client's capabilities)",
            envelope::PROTOCOL_VERSION_META
        )));
    };
    // What `headers::check_request` already found equal to the body is not decoded again.
    let method = match req.checked.method {
        true => std::borrow::Cow::Borrowed(""),
        false => req.call.method_name(req.body).unwrap_or_default(),
    };
    let name = match req.call.method {
        McpMethod::ToolsCall if req.checked.tool_name => None,
        McpMethod::ToolsCall => req.call.tool_name(req.body),
        McpMethod::PromptsGet => crate::mcp::rewrite::string_param(req.body, "name")
            .map(|(n, _)| std::borrow::Cow::Owned(n)),
        McpMethod::ResourcesRead => crate::mcp::rewrite::string_param(req.body, "uri")
            .map(|(n, _)| std::borrow::Cow::Owned(n)),
        _ => None,
    };
    envelope::check(req.headers, req.checked, &method, name.as_deref(), version)?;
    if req.call.kind != MessageKind::Request {
        return Ok(Answer::Accepted);
    }
    match req.call.method {
        McpMethod::ServerDiscover => Ok(discover(shared, runtime, &req)),
        McpMethod::ToolsList => list::tools_list(shared, runtime, &req, true).await,
        McpMethod::ToolsCall => {
            let binding = || session::modern_binding(runtime, req.server, req.principal);
            call::resolve(shared, runtime, &req, binding, Some(client))
                .await
                .map(Answer::Forward)
        }
        McpMethod::PromptsList | McpMethod::ResourcesList | McpMethod::ResourcesTemplatesList => {
            let kind = items::list_kind(req.call.method)
                .ok_or_else(|| Reject::Internal("not a list method".into()))?;
            items::list(shared, runtime, &req, kind, true).await
        }
        McpMethod::PromptsGet | McpMethod::ResourcesRead | McpMethod::CompletionComplete => {
            let binding = || session::modern_binding(runtime, req.server, req.principal);
            items::resolve(shared, runtime, &req, binding, Some(client))
                .await
                .map(Answer::Forward)
        }
        McpMethod::SubscriptionsListen => listen::open(&req),
        // `ping` is gone from 2026-07-28 (like `initialize`): a modern client has no
        // session to keep alive, and the conformance suite expects 404 for it.
        _ => Err(Reject::ModernMethodNotFound {
            method: crate::error::clip(&req.call.method_name(req.body).unwrap_or_default()),
        }),
    }
}

/// `registry.refresh_interval` in milliseconds: see the module docs.
fn ttl_ms(runtime: &Runtime) -> u64 {
    u64::try_from(runtime.config.registry.refresh_interval.as_millis()).unwrap_or(u64::MAX)
}

/// `_meta` of a modern result: the virtual server as `serverInfo`.
fn server_info(req: &Request<'_>) -> serde_json::Value {
    serde_json::json!({
        "io.modelcontextprotocol/serverInfo": {
            "name": req.server.name,
            "version": env!("CARGO_PKG_VERSION"),
        }
    })
}

/// The `server/discover` answer: the modern revisions (the handshake ones are reached with
/// `initialize`, not named here: a client picks from this list for its next modern request),
/// the capabilities a virtual server serves to a modern client (`listChanged`: changes are
/// sent on `subscriptions/listen`), and `serverInfo`.
fn discover(shared: &Shared, runtime: &Runtime, req: &Request<'_>) -> Answer {
    let offered = items::offered(runtime, shared, req.index);
    let body = serde_json::json!({
        "supportedVersions": crate::mcp::revision::MODERN,
        "capabilities": items::capabilities(offered, true),
        "instructions": format!("mcp-gateway virtual server {}", req.server.name),
        "ttlMs": ttl_ms(runtime),
        "cacheScope": "private",
        "resultType": "complete",
        "_meta": server_info(req),
    });
    Answer::Reply {
        body: result(req.id_json(), body.to_string().as_bytes()),
        session: None,
    }
}
