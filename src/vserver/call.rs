//! `tools/call` on a virtual server: the exposed name resolved to the owning upstream and
//! catalog entry. Resolving decides nothing (visibility, availability and the rewrite of the
//! body are steps of [`crate::decision::decide`]); an unknown name is refused here with the
//! same answer decide gives a hidden one.

use crate::decision::{Exchange, RetrySafety, SessionBinding, Target, ToolTarget};
use crate::error::Reject;
use crate::state::{Runtime, Shared};

use super::{list, Request};

/// The target of a `tools/call`, on the upstream sessions the gateway holds under `session()`
/// (a legacy client's session, or a modern caller's [`super::session::modern_binding`]), or
/// with no session when a 2026-07-28 client calls a tool of a 2026-07-28 upstream.
pub(super) async fn resolve(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    session: impl FnOnce() -> SessionBinding,
    modern_client: Option<crate::decision::ModernClient>,
) -> Result<Target, Reject> {
    let catalog = list::catalog(shared, runtime, req.index).await?;
    let name = req.call.tool_name(req.body).unwrap_or_default();
    let Some((position, entry)) = catalog.resolve(&name) else {
        return Err(Reject::UnknownTool {
            name: crate::error::clip(&name),
        });
    };
    let upstream = runtime
        .upstreams
        .get(entry.upstream)
        .ok_or_else(|| Reject::Internal("catalog entry names an unknown upstream".into()))?
        .clone();
    let retry = RetrySafety::of(&entry.definition);
    let session =
        super::session::binding(&catalog, entry.upstream, modern_client.is_some(), session);
    Ok(Target {
        upstream,
        exchange: Exchange::Message,
        tool: Some(ToolTarget {
            server: req.server.clone(),
            class: list::class(req.server, req.principal),
            retry,
            modern_client,
            position,
            catalog,
        }),
        session,
        item: None,
    })
}
