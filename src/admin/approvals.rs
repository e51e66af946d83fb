//! Calls waiting for a human: `GET /admin/approvals` (pending first, at most
//! [`MAX_LIST`]), `GET /admin/approvals/{id}`, and `POST /admin/approvals/approve` /
//! `deny` with `{"id": "..."}` (the `approve` permission; recorded in the audit trail).
//!
//! An approver cannot decide on a call they asked for themselves: a JWT approver whose
//! issuer and subject are the approval's gets 403 (admin tokens name operators, not
//! callers, so there is nothing to compare them with).

use serde::Deserialize;

use super::audit::{self, AdminAction};
use super::auth::AdminActor;
use super::error::AdminError;
use crate::approval::{valid_id, Approval, DecideError, StoreError, Verdict, MAX_LIST};
use crate::state::{Runtime, Shared};

/// The body approve and deny take, as shown in their error messages.
pub(super) const DECIDE_EXAMPLE: &str = r#"{"id":"APPROVAL_ID"}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideRequest {
    id: String,
}

fn unavailable(e: StoreError) -> AdminError {
    AdminError::StoreUnavailable(e.to_string())
}

fn not_found(id: &str) -> AdminError {
    AdminError::UnknownTarget(format!(
        "no approval {}: it does not exist, expired or was already used",
        crate::error::clip(id)
    ))
}

/// An approval as the admin API shows it: the record plus RFC 3339 times.
fn view(a: &Approval) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "expires".into(),
            crate::approval::rfc3339(a.expires_at).into(),
        );
        o.insert(
            "created".into(),
            crate::approval::rfc3339(a.created_at).into(),
        );
    }
    v
}

pub(super) async fn list(shared: &Shared, rt: &Runtime) -> Result<serde_json::Value, AdminError> {
    let all = shared
        .approvals
        .list(rt, MAX_LIST)
        .await
        .map_err(unavailable)?;
    Ok(serde_json::json!({
        "approvals": all.iter().map(view).collect::<Vec<_>>(),
        "limit": MAX_LIST,
    }))
}

pub(super) async fn get(
    shared: &Shared,
    rt: &Runtime,
    id: &str,
) -> Result<serde_json::Value, AdminError> {
    if !valid_id(id) {
        return Err(not_found(id));
    }
    match shared.approvals.get(rt, id).await.map_err(unavailable)? {
        Some(a) => Ok(view(&a)),
        None => Err(not_found(id)),
    }
}

pub(super) async fn decide(
    shared: &Shared,
    rt: &Runtime,
    actor: &AdminActor,
    verdict: Verdict,
    body: &[u8],
) -> Result<serde_json::Value, AdminError> {
    let req: DecideRequest = serde_json::from_slice(body).map_err(|e| AdminError::BadBody {
        reason: crate::error::clip(&e.to_string()),
        example: DECIDE_EXAMPLE,
    })?;
    let mut action = AdminAction::DecideCall {
        id: crate::error::clip(&req.id),
        approve: verdict == Verdict::Approve,
        call: None,
    };
    let result = decide_inner(shared, rt, actor, verdict, &req.id, &mut action).await;
    match &result {
        Ok(_) => audit::record(&shared.audit, actor, &action, Ok(())).await,
        Err(e) => audit::record(&shared.audit, actor, &action, Err(&e.to_string())).await,
    }
    result
}

async fn decide_inner(
    shared: &Shared,
    rt: &Runtime,
    actor: &AdminActor,
    verdict: Verdict,
    id: &str,
    action: &mut AdminAction,
) -> Result<serde_json::Value, AdminError> {
    if !valid_id(id) {
        return Err(not_found(id));
    }
    let a = shared
        .approvals
        .get(rt, id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| not_found(id))?;
    if let AdminAction::DecideCall { call, .. } = action {
        *call = Some(format!(
            "{}.{} for {:?}{}",
            a.upstream,
            a.tool,
            a.subject,
            a.server
                .as_deref()
                .map(|s| format!(" on virtual server {s:?}"))
                .unwrap_or_default()
        ));
    }
    if let AdminActor::Jwt { issuer, subject } = actor {
        if *issuer == a.issuer && *subject == a.subject {
            return Err(AdminError::SelfApproval {
                who: actor.to_string(),
                id: id.to_string(),
            });
        }
    }
    match shared
        .approvals
        .decide(rt, id, verdict, &actor.to_string())
        .await
    {
        Ok(a) => {
            shared.metrics.approval(match verdict {
                Verdict::Approve => crate::metrics::ApprovalEvent::Approved,
                Verdict::Deny => crate::metrics::ApprovalEvent::Denied,
            });
            Ok(view(&a))
        }
        Err(DecideError::NotFound(_)) => Err(not_found(id)),
        Err(e @ DecideError::AlreadyDecided(_)) => Err(AdminError::AlreadyDecided(e.to_string())),
        Err(DecideError::Store(e)) => Err(unavailable(e)),
    }
}
