//! The record of every state change made through the admin API: who, what, and how it
//! ended. It goes to the log (target `mcp_gateway::admin::audit`) and, when the audit trail
//! is on, into the same chained trail as MCP requests ([`crate::audit::AdminRecord`]).

use super::auth::AdminActor;
use crate::audit::{AdminRecord, Audit, Principal};

/// One state change requested through the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// `POST /admin/registry/approve`: approve a tool's current definition.
    ApproveTool { upstream: String, tool: String },
    /// `POST /admin/approvals/approve|deny`: decide on a call waiting for a human.
    DecideCall {
        id: String,
        approve: bool,
        /// `upstream.tool` and who asked, when the approval was found.
        call: Option<String>,
    },
}

impl std::fmt::Display for AdminAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAction::ApproveTool { upstream, tool } => {
                write!(f, "approve tool {tool:?} of upstream {upstream:?}")
            }
            AdminAction::DecideCall { id, approve, call } => {
                let verb = if *approve { "approve" } else { "deny" };
                write!(f, "{verb} call approval {id:?}")?;
                match call {
                    Some(c) => write!(f, " ({c})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Record a write: `Ok` once it took effect, `Err` with the reason it did not.
pub async fn record(
    trail: &Audit,
    actor: &AdminActor,
    action: &AdminAction,
    outcome: Result<(), &str>,
) {
    match outcome {
        Ok(()) => log::info!(target: "mcp_gateway::admin::audit", "{actor}: {action}: done"),
        Err(reason) => {
            log::warn!(target: "mcp_gateway::admin::audit", "{actor}: {action}: failed: {reason}")
        }
    }
    if trail.enabled() {
        let who = match actor {
            AdminActor::Token { name } => Principal {
                issuer: "admin-token".into(),
                subject: name.clone(),
            },
            AdminActor::Jwt { issuer, subject } => Principal {
                issuer: issuer.clone(),
                subject: subject.clone(),
            },
        };
        trail
            .submit(AdminRecord::new(
                Some(who),
                action.to_string(),
                outcome,
                None,
            ))
            .await;
    }
}

/// Record a write refused before it could be attempted (no or insufficient credentials, a
/// guard or body rejection), with the caller's address and the status answered.
pub async fn refused(
    trail: &Audit,
    method: &str,
    path: &str,
    peer: &str,
    reason: &str,
    status: u16,
) {
    log::warn!(
        target: "mcp_gateway::admin::audit",
        "refused {method} {path} from {peer}: {reason}"
    );
    if trail.enabled() {
        let action = format!("{method} {path} from {peer}");
        trail
            .submit(AdminRecord::new(None, action, Err(reason), Some(status)))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_names_who_and_what_with_client_strings_escaped() {
        let action = AdminAction::ApproveTool {
            upstream: "crm".into(),
            tool: "look\nup".into(),
        };
        assert_eq!(
            action.to_string(),
            r#"approve tool "look\nup" of upstream "crm""#
        );
        let jwt = AdminActor::Jwt {
            issuer: "https://idp".into(),
            subject: "alice".into(),
        };
        assert_eq!(jwt.to_string(), r#""alice" (issuer https://idp)"#);
        let token = AdminActor::Token { name: "ops".into() };
        assert_eq!(token.to_string(), r#"admin token "ops""#);
    }
}
