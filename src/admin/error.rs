//! Why the admin listener refused a request, and the one place that maps it to an HTTP
//! status, a stable `code` and the JSON body.
//!
//! Separate from [`Reject`] because the admin API is plain HTTP + JSON, not JSON-RPC: its
//! errors carry no JSON-RPC code. The DNS-rebinding guard's rejections are shared and keep
//! their status (421, 403) and message.

use crate::config::AdminPermission;
use crate::error::Reject;

/// A refused admin request. Each variant's doc gives its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// 421 / 403: the `Host` or `Origin` guard (same rules as MCP listeners).
    #[error("{0}")]
    Guard(Reject),
    /// 403: no `admin.auth` section, so `/admin/*` is off.
    #[error("the admin API is off: add an admin.auth section (tokens or jwt) to the configuration; see docs/admin.md")]
    Disabled,
    /// 401: missing, malformed or unknown credentials. `invalid_token` adds
    /// `error="invalid_token"` to the `WWW-Authenticate` challenge.
    #[error("admin credentials required: {reason}")]
    Unauthenticated { reason: String, invalid_token: bool },
    /// 403: authenticated, without the permission the endpoint needs.
    #[error("{who} lacks the admin {} permission this endpoint needs; grant it in admin.auth", permission_name(*.needed))]
    Forbidden {
        who: String,
        needed: AdminPermission,
    },
    /// 404: no such admin path.
    #[error("no admin endpoint at {path}; try /healthz, /readyz, /metrics or /admin/registry")]
    NotFound { path: String },
    /// 405: the path exists, with another method.
    #[error("{method} is not allowed on {path}; use {allow}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: &'static str,
    },
    /// 400: state changes take their arguments in a JSON body, never in the URL.
    #[error(
        "query parameters are not accepted on {path}; send them as a JSON body, e.g. {example}"
    )]
    QueryNotAllowed { path: String, example: &'static str },
    /// 415: a state-changing request whose body is not `application/json` (this also refuses
    /// cross-site HTML form posts, which cannot send that type without a CORS preflight).
    #[error(
        "Content-Type must be application/json, got {got:?}; send a JSON body, e.g. {example}"
    )]
    UnsupportedMediaType { got: String, example: &'static str },
    /// 413: the body is over the admin API's limit.
    #[error("request body exceeds the admin API limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// 400: the body is not the JSON the endpoint takes.
    #[error("invalid request body: {reason}; expected {example}")]
    BadBody {
        reason: String,
        example: &'static str,
    },
    /// 404: the request names something the gateway does not have.
    #[error("{0}")]
    UnknownTarget(String),
}

fn permission_name(p: AdminPermission) -> &'static str {
    match p {
        AdminPermission::Read => "read",
        AdminPermission::Write => "write",
    }
}

impl AdminError {
    /// The HTTP status of the error response.
    pub fn http_status(&self) -> u16 {
        match self {
            AdminError::Guard(r) => r.http_status(),
            AdminError::Disabled | AdminError::Forbidden { .. } => 403,
            AdminError::Unauthenticated { .. } => 401,
            AdminError::NotFound { .. } | AdminError::UnknownTarget(_) => 404,
            AdminError::MethodNotAllowed { .. } => 405,
            AdminError::QueryNotAllowed { .. } | AdminError::BadBody { .. } => 400,
            AdminError::UnsupportedMediaType { .. } => 415,
            AdminError::BodyTooLarge { .. } => 413,
        }
    }

    /// A stable machine-readable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Guard(Reject::HostNotAllowed { .. }) => "host_not_allowed",
            AdminError::Guard(Reject::OriginNotAllowed { .. }) => "origin_not_allowed",
            AdminError::Guard(_) => "refused",
            AdminError::Disabled => "admin_api_disabled",
            AdminError::Unauthenticated { .. } => "unauthenticated",
            AdminError::Forbidden { .. } => "forbidden",
            AdminError::NotFound { .. } | AdminError::UnknownTarget(_) => "not_found",
            AdminError::MethodNotAllowed { .. } => "method_not_allowed",
            AdminError::QueryNotAllowed { .. } => "query_not_allowed",
            AdminError::UnsupportedMediaType { .. } => "unsupported_media_type",
            AdminError::BodyTooLarge { .. } => "body_too_large",
            AdminError::BadBody { .. } => "invalid_body",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750) for 401 and permission 403s.
    pub fn www_authenticate(&self) -> Option<String> {
        const REALM: &str = "Bearer realm=\"mcp-gateway admin\"";
        match self {
            AdminError::Unauthenticated {
                invalid_token: false,
                ..
            } => Some(REALM.into()),
            AdminError::Unauthenticated {
                invalid_token: true,
                ..
            } => Some(format!("{REALM}, error=\"invalid_token\"")),
            AdminError::Forbidden { needed, .. } => Some(format!(
                "{REALM}, error=\"insufficient_scope\", scope=\"admin:{}\"",
                permission_name(*needed)
            )),
            _ => None,
        }
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            AdminError::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }

    /// `{"error": {"code", "message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_challenges() {
        let unauth = AdminError::Unauthenticated {
            reason: "x".into(),
            invalid_token: false,
        };
        assert_eq!(unauth.http_status(), 401);
        assert_eq!(
            unauth.www_authenticate().as_deref(),
            Some("Bearer realm=\"mcp-gateway admin\"")
        );
        let bad = AdminError::Unauthenticated {
            reason: "x".into(),
            invalid_token: true,
        };
        assert!(bad
            .www_authenticate()
            .is_some_and(|c| c.contains("invalid_token")));
        let forbidden = AdminError::Forbidden {
            who: "token ci".into(),
            needed: AdminPermission::Write,
        };
        assert_eq!(forbidden.http_status(), 403);
        assert!(forbidden.to_string().contains("write permission"));
        assert_eq!(AdminError::Disabled.http_status(), 403);
        let host = AdminError::Guard(Reject::HostNotAllowed { host: "x".into() });
        assert_eq!((host.http_status(), host.code()), (421, "host_not_allowed"));
        let media = AdminError::UnsupportedMediaType {
            got: "text/plain".into(),
            example: "{}",
        };
        assert_eq!(media.http_status(), 415);
        assert_eq!(media.body()["error"]["code"], "unsupported_media_type");
    }
}
