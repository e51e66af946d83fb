//! `tools/list` on a virtual server: the caller's view of the registry catalog, paged with
//! sealed cursors, and the same view for the GET stream's change notifications.

use std::sync::Arc;

use bytes::Bytes;

use crate::auth::Principal;
use crate::config::VirtualServer;
use crate::error::Reject;
use crate::registry::catalog::{self, Catalog};
use crate::state::{Runtime, Shared};

use super::{Answer, Request};

/// Answer a `tools/list` from the catalog. `modern`: a 2026-07-28 request, whose result also
/// carries the catalog's `modern_tail` (cache hints, `resultType`, `_meta`, built once).
pub(super) async fn tools_list(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    modern: bool,
) -> Result<Answer, Reject> {
    let vs = req.server.as_ref();
    let catalog = catalog(shared, runtime, req.index).await?;
    let class = class(vs, req.principal);
    let size = runtime.config.registry.page_size;
    let cursor = req
        .call
        .cursor()
        .and_then(|r| crate::mcp::jsonrpc::string_at(req.body, r))
        .map(|c| c.into_owned());
    // Pages are cached per (caller class, offset, size): a cursor only ever selects within
    // the caller's own list, whatever offset it names.
    let (tools, next) = match (size, cursor) {
        (0, None) => (catalog.tools_json(vs, class), None),
        (0, Some(_)) => return Err(Reject::InvalidCursor),
        (_, c) => {
            let offset = match c {
                None => 0,
                Some(c) => open_cursor(&c, catalog.generation).ok_or(Reject::InvalidCursor)?,
            };
            catalog.tools_page(vs, class, offset, size)
        }
    };
    // Built in one buffer: the list is the bulk of the answer, copied once.
    let id = req.id_json().unwrap_or(b"null");
    let tail: &[u8] = if modern { &catalog.modern_tail } else { &[] };
    let mut r = Vec::with_capacity(tools.len() + id.len() + tail.len() + 96);
    r.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    r.extend_from_slice(id);
    r.extend_from_slice(br#","result":{"tools":"#);
    r.extend_from_slice(&tools);
    if let Some(n) = next {
        r.extend_from_slice(br#","nextCursor":""#);
        r.extend_from_slice(seal_cursor(n, catalog.generation).as_bytes());
        r.push(b'"');
    }
    r.extend_from_slice(tail);
    r.extend_from_slice(b"}}");
    Ok(Answer::Reply {
        body: Bytes::from(r),
        session: None,
    })
}

/// The tools/list JSON `principal` sees on virtual server `name` right now (after a reload
/// the server is found by name), or `None` if it no longer exists. The GET stream compares
/// successive values to decide when to send `notifications/tools/list_changed`.
pub async fn current_tools(
    shared: &Shared,
    name: &str,
    principal: Option<&Principal>,
) -> Option<Bytes> {
    let rt = shared.runtime.load_full();
    let (i, vs) = rt
        .config
        .virtual_servers
        .iter()
        .enumerate()
        .find(|(_, v)| v.name == name)?;
    let cat = catalog(shared, &rt, i).await.ok()?;
    Some(cat.tools_json(vs, class(vs, principal)))
}

/// The prompts and the resources (with templates) `principal` sees on virtual server `name`
/// right now, as JSON: the GET stream compares successive values to send
/// `notifications/prompts/list_changed` and `notifications/resources/list_changed`.
pub async fn current_items(
    shared: &Shared,
    name: &str,
    principal: Option<&Principal>,
) -> Option<(Bytes, Bytes)> {
    use crate::registry::items::Kind;
    let rt = shared.runtime.load_full();
    let (i, vs) = rt
        .config
        .virtual_servers
        .iter()
        .enumerate()
        .find(|(_, v)| v.name == name)?;
    let cat = catalog(shared, &rt, i).await.ok()?;
    let class = class(vs, principal);
    let mut resources = cat.items.list_json(vs, class, Kind::Resource).to_vec();
    resources.extend_from_slice(&cat.items.list_json(vs, class, Kind::Template));
    Some((
        cat.items.list_json(vs, class, Kind::Prompt),
        Bytes::from(resources),
    ))
}

/// The caller's principal class on `vs` (the set of its rules that apply).
pub(super) fn class(vs: &VirtualServer, principal: Option<&Principal>) -> u64 {
    match principal {
        Some(p) => catalog::class_of(vs, &p.caller()),
        None => catalog::class_of(vs, &crate::config::Caller::ANONYMOUS),
    }
}

/// The catalog of virtual server `index`, discovering first if nothing was discovered yet.
pub(super) async fn catalog(
    shared: &Shared,
    runtime: &Runtime,
    index: usize,
) -> Result<Arc<Catalog>, Reject> {
    let mut snapshot = shared.registry.snapshot();
    if snapshot.generation == 0 {
        // Nothing discovered yet (the refresh task may still be starting): discover now.
        // Single-flight: the requests waiting behind a running discovery take its result
        // instead of each listing every upstream again.
        let changes = Box::pin(shared.registry.ensure_discovered(
            &runtime.config,
            &runtime.upstreams,
            &runtime.identity,
        ))
        .await;
        shared.record_tool_changes(&changes);
        snapshot = shared.registry.snapshot();
    }
    runtime
        .catalogs
        .get(&runtime.config, index, &snapshot)
        .ok_or_else(|| Reject::Internal("no catalog".into()))
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

#[cfg(test)]
mod tests {
    use super::{open_cursor, seal_cursor};

    #[test]
    fn list_cursor_is_found_spelled_out_or_escaped_and_absent_otherwise() {
        let c = |b: &str| {
            let call = crate::mcp::jsonrpc::parse(b.as_bytes(), 64).unwrap();
            call.cursor()
                .and_then(|r| crate::mcp::jsonrpc::string_at(b.as_bytes(), r))
                .map(|c| c.into_owned())
        };
        assert_eq!(c(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#), None);
        assert_eq!(
            c(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"abc"}}"#),
            Some("abc".into())
        );
        assert_eq!(
            c(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"\u0063ursor":"x"}}"#),
            Some("x".into())
        );
        assert_eq!(
            c(r#"{"jsonrpc":"2.0","id":"\"","method":"tools/list","params":{}}"#),
            None
        );
    }

    #[test]
    fn a_cursor_opens_only_at_the_generation_it_was_sealed_for() {
        let c = seal_cursor(40, 7);
        assert_eq!(open_cursor(&c, 7), Some(40));
        assert_eq!(open_cursor(&c, 8), None);
        assert_eq!(open_cursor("not base64!", 7), None);
    }
}
