//! Prompts and resources on a virtual server: `prompts/list`, `resources/list` and
//! `resources/templates/list` answered from the catalog (filtered for the caller), and
//! `prompts/get` / `resources/read` / `completion/complete` resolved by exposed name or URI
//! to a [`Target`] on the owning upstream. Resolving decides nothing: visibility, availability and the rename to
//! the upstream's own name or URI are steps of [`crate::decision::decide`].

use bytes::Bytes;

use crate::decision::{Exchange, ItemTarget, SessionBinding, Target};
use crate::error::Reject;
use crate::mcp::McpMethod;
use crate::registry::items::{self, Kind};
use crate::state::{Runtime, Shared};

use super::{list, Answer, Request};

/// The kind a list method lists, if it is one of these.
pub(super) fn list_kind(method: McpMethod) -> Option<Kind> {
    match method {
        McpMethod::PromptsList => Some(Kind::Prompt),
        McpMethod::ResourcesList => Some(Kind::Resource),
        McpMethod::ResourcesTemplatesList => Some(Kind::Template),
        _ => None,
    }
}

/// Answer a list of `kind` from the catalog. Not paged: the whole visible list is one
/// answer, so a cursor (never issued) is refused. `modern` as for `tools/list`.
pub(super) async fn list(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    kind: Kind,
    modern: bool,
) -> Result<Answer, Reject> {
    if crate::mcp::rewrite::string_param(req.body, "cursor").is_some() {
        return Err(Reject::InvalidCursor);
    }
    let catalog = list::catalog(shared, runtime, req.index).await?;
    let class = list::class(req.server, req.principal);
    let array = catalog.items.list_json(req.server, class, kind);
    let id = req.id_json().unwrap_or(b"null");
    let tail: &[u8] = if modern { &catalog.modern_tail } else { &[] };
    let mut r = Vec::with_capacity(array.len() + id.len() + tail.len() + 64);
    r.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    r.extend_from_slice(id);
    r.extend_from_slice(br#","result":{""#);
    r.extend_from_slice(items::list_key(kind).as_bytes());
    r.extend_from_slice(br#"":"#);
    r.extend_from_slice(&array);
    r.extend_from_slice(tail);
    r.extend_from_slice(b"}}");
    Ok(Answer::Reply {
        body: Bytes::from(r),
        session: None,
    })
}

/// Whether the server offers (prompts, resources): some upstream of it has one. What its
/// `initialize` and `server/discover` answers declare. From the catalog as it is: these
/// answers never wait for a discovery (an `initialize` held behind a slow upstream's
/// `tools/list` would time the client out). Before the first discovery ends nothing is known,
/// and both are declared: an empty list costs a client one round trip, a missing capability
/// hides the methods for the whole session.
pub(super) fn offered(runtime: &Runtime, shared: &Shared, index: usize) -> Offered {
    let snapshot = shared.registry.snapshot();
    if snapshot.generation == 0 {
        return Offered {
            prompts: true,
            resources: true,
            completions: true,
            logging: true,
            subscribe: true,
        };
    }
    match runtime.catalogs.get(&runtime.config, index, &snapshot) {
        Some(c) => Offered {
            prompts: c.items.has(Kind::Prompt),
            resources: c.items.has(Kind::Resource) || c.items.has(Kind::Template),
            completions: c.items.completions,
            logging: c.items.logging,
            subscribe: c.items.subscribe,
        },
        None => Offered::default(),
    }
}

/// The capabilities besides `tools` a virtual server declares.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Offered {
    pub prompts: bool,
    pub resources: bool,
    pub completions: bool,
    /// Some upstream declares `logging`: `logging/setLevel` is fanned out to those
    /// (handshake era; 2026-07-28 asks per request, see [`super::logging`]).
    pub logging: bool,
    /// Some upstream answers `resources/subscribe` (handshake era: 2026-07-28 replaced it
    /// with `subscriptions/listen`).
    pub subscribe: bool,
}

/// The capabilities object a virtual server declares.
/// `list_changed`: the client has a stream for change notifications (a legacy session's GET).
pub(super) fn capabilities(offered: Offered, list_changed: bool) -> serde_json::Value {
    let list = || {
        if list_changed {
            serde_json::json!({ "listChanged": true })
        } else {
            serde_json::json!({})
        }
    };
    let mut caps = serde_json::json!({ "tools": list() });
    if offered.prompts {
        caps["prompts"] = list();
    }
    if offered.resources {
        caps["resources"] = list();
        if offered.subscribe && list_changed {
            caps["resources"]["subscribe"] = serde_json::Value::Bool(true);
        }
    }
    if offered.completions {
        caps["completions"] = serde_json::json!({});
    }
    // Legacy sessions set the level with `logging/setLevel` (fanned out); a 2026-07-28
    // client asks per request (`_meta` logLevel, applied on the way back: `results`).
    if offered.logging {
        caps["logging"] = serde_json::json!({});
    }
    caps
}

/// The target of a `prompts/get` (by exposed name), `resources/read` (by exposed URI) or
/// `completion/complete` (by the exposed prompt name or resource template its `ref` names).
pub(super) async fn resolve(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    session: impl FnOnce() -> SessionBinding,
    modern_client: Option<crate::decision::ModernClient>,
) -> Result<Target, Reject> {
    use crate::mcp::rewrite::string_at;
    let (kind, path): (Kind, &[&str]) = match req.call.method {
        McpMethod::PromptsGet => (Kind::Prompt, &["name"]),
        McpMethod::CompletionComplete => {
            match string_at(req.body, &["ref", "type"]).map(|(t, _)| t).as_deref() {
                Some("ref/prompt") => (Kind::Prompt, &["ref", "name"]),
                Some("ref/resource") => (Kind::Template, &["ref", "uri"]),
                _ => {
                    return Err(Reject::InvalidParams(
                        "completion/complete needs params.ref of type ref/prompt (with name) or ref/resource (with uri)".into(),
                    ))
                }
            }
        }
        _ => (Kind::Resource, &["uri"]),
    };
    let Some((exposed, span)) = string_at(req.body, path) else {
        return Err(Reject::InvalidParams(format!(
            "{} needs params.{}, a string",
            req.call.method.as_label(),
            path.join(".")
        )));
    };
    let catalog = list::catalog(shared, runtime, req.index).await?;
    // A listed item; for a resource, also a URI of this server's form that the list never
    // showed (a template the client expanded): the patterns decide it on the URI it names.
    let found = match catalog.items.resolve(kind, &exposed) {
        Some((_, e)) => Some((
            e.upstream,
            e.upstream_name.clone(),
            e.own.clone(),
            e.unavailable,
        )),
        None if kind != Kind::Prompt => catalog
            .items
            .owner_of_uri(&runtime.config, req.server, &exposed)
            .map(|(i, name, own)| {
                let down = catalog
                    .items
                    .entries
                    .iter()
                    .any(|e| e.upstream == i && e.unavailable);
                (i, name.to_string(), own, down)
            }),
        None => None,
    };
    let Some((upstream, upstream_name, own, unavailable)) = found else {
        return Err(items::unknown(kind, &exposed));
    };
    let session = super::session::binding(&catalog, upstream, modern_client.is_some(), session);
    let upstream = runtime
        .upstreams
        .get(upstream)
        .ok_or_else(|| Reject::Internal("catalog item names an unknown upstream".into()))?
        .clone();
    let held = match session {
        SessionBinding::Gateway { digest, .. }
            if req.call.method == McpMethod::ResourcesUnsubscribe =>
        {
            super::events::holds(shared, digest, &upstream_name, &own)
        }
        _ => false,
    };
    Ok(Target {
        upstream,
        exchange: Exchange::Message,
        tool: None,
        session,
        item: Some(ItemTarget {
            server: req.server.clone(),
            class: list::class(req.server, req.principal),
            kind,
            upstream_name,
            own,
            exposed,
            span,
            unavailable,
            modern_client,
            held,
        }),
    })
}
