//! The tool-registry endpoints: `GET /admin/registry` (what every upstream offers and what
//! each virtual server exposes) and `POST /admin/registry/approve` (take a tool out of
//! quarantine).

use serde::Deserialize;

use super::audit::{self, AdminAction};
use super::auth::AdminActor;
use super::error::AdminError;
use crate::state::{Runtime, Shared};

/// The body `POST /admin/registry/approve` takes, as shown in its error messages.
pub(super) const APPROVE_EXAMPLE: &str = r#"{"upstream":"NAME","tool":"NAME"}"#;

/// `{"upstream": "U", "tool": "T"}`; unknown or duplicate fields are refused by serde.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveRequest {
    upstream: String,
    tool: String,
}

/// Approve the current definition of the tool named in `body` (it leaves quarantine), then
/// rediscover. Recorded in the audit trail whether it succeeds or not.
pub(super) async fn approve(
    shared: &Shared,
    actor: &AdminActor,
    body: &[u8],
) -> Result<serde_json::Value, AdminError> {
    let req: ApproveRequest = serde_json::from_slice(body).map_err(|e| AdminError::BadBody {
        reason: crate::error::clip(&e.to_string()),
        example: APPROVE_EXAMPLE,
    })?;
    if req.upstream.is_empty() || req.tool.is_empty() {
        return Err(AdminError::BadBody {
            reason: "upstream and tool must not be empty".into(),
            example: APPROVE_EXAMPLE,
        });
    }
    let action = AdminAction::ApproveTool {
        upstream: crate::error::clip(&req.upstream),
        tool: crate::error::clip(&req.tool),
    };
    let rt = shared.runtime.load_full();
    match shared
        .registry
        .approve(&rt.config, &req.upstream, &req.tool)
        .await
    {
        Ok(()) => {
            audit::record(&shared.audit, actor, &action, Ok(())).await;
            let changes = shared
                .registry
                .refresh(&rt.config, &rt.upstreams, &rt.identity)
                .await;
            shared.record_tool_changes(&changes);
            Ok(serde_json::json!({ "approved": format!("{}.{}", req.upstream, req.tool) }))
        }
        Err(e) => {
            let reason = e.to_string();
            audit::record(&shared.audit, actor, &action, Err(&reason)).await;
            Err(AdminError::UnknownTarget(reason))
        }
    }
}

/// Upstreams, their health and tools, and what each virtual server exposes: the registry
/// view, as JSON (through `Value`, so keys keep the sorted order this endpoint always had).
pub(super) fn report(shared: &Shared, rt: &Runtime) -> serde_json::Value {
    let snap = shared.registry.snapshot();
    let view = crate::registry::view::build(&rt.config, &snap, &rt.catalogs);
    // Cannot fail: the view has no maps with non-string keys.
    serde_json::to_value(&view).unwrap_or(serde_json::Value::Null)
}
