//! The record of every state change made through the admin API: who, what, and how it
//! ended. Today it goes to the log (target `mcp_gateway::admin::audit`); the audit log, once
//! it exists, attaches here, so every write handler already reports through [`record`].

use super::auth::AdminActor;

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
pub fn record(actor: &AdminActor, action: &AdminAction, outcome: Result<(), &str>) {
    match outcome {
        Ok(()) => log::info!(target: "mcp_gateway::admin::audit", "{actor}: {action}: done"),
        Err(reason) => {
            log::warn!(target: "mcp_gateway::admin::audit", "{actor}: {action}: failed: {reason}")
        }
    }
}

/// Record a write refused before it could be attempted (no or insufficient credentials, a
/// guard or body rejection), with the caller's address.
pub fn refused(method: &str, path: &str, peer: &str, reason: &str) {
    log::warn!(
        target: "mcp_gateway::admin::audit",
        "refused {method} {path} from {peer}: {reason}"
    );
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
