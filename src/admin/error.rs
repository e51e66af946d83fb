//! Why the admin listener refused a request, and the one place that maps it to an HTTP
//! status, a stable `code` and the JSON body.
//!
//! Separate from [`Reject`] because the admin API is plain HTTP + JSON, not JSON-RPC: its
//! errors carry no JSON-RPC code. The DNS-rebinding guard's rejections are shared and keep
//! their status (421, 403) and message.

use http::header::{HeaderName, HeaderValue, ALLOW, WWW_AUTHENTICATE};

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
    /// 403: an approver may not decide on a call they asked for themselves (separation of
    /// duties; same issuer and subject).
    #[error("{who} asked for approval {id} and cannot decide on it: another approver must")]
    SelfApproval { who: String, id: String },
    /// 409: the approval was decided before; the decision stands.
    #[error("{0}")]
    AlreadyDecided(String),
    /// 503: the approval store (Redis) did not answer.
    #[error("the approval store is unavailable: {0}; retry later")]
    StoreUnavailable(String),
    /// 400: a GET's query string is not what the endpoint takes.
    #[error("invalid query: {reason}; expected {example}")]
    BadQuery {
        reason: String,
        example: &'static str,
    },
}

fn permission_name(p: AdminPermission) -> &'static str {
    match p {
        AdminPermission::Read => "read",
        AdminPermission::Write => "write",
        AdminPermission::Approve => "approve",
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
            AdminError::QueryNotAllowed { .. }
            | AdminError::BadBody { .. }
            | AdminError::BadQuery { .. } => 400,
            AdminError::UnsupportedMediaType { .. } => 415,
            AdminError::BodyTooLarge { .. } => 413,
            AdminError::SelfApproval { .. } => 403,
            AdminError::AlreadyDecided(_) => 409,
            AdminError::StoreUnavailable(_) => 503,
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
            AdminError::SelfApproval { .. } => "self_approval",
            AdminError::AlreadyDecided(_) => "already_decided",
            AdminError::StoreUnavailable(_) => "unavailable",
            AdminError::BadQuery { .. } => "invalid_query",
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

    /// Headers the response carries besides `Content-Type` and `Content-Length`: the
    /// [`www_authenticate`](Self::www_authenticate) challenge, `Allow` on a 405, and whatever
    /// a shared guard rejection carries.
    pub fn response_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            // No metadata URL: the admin API is not an RFC 9728 protected resource.
            AdminError::Guard(r) => r.response_headers(|| None),
            AdminError::Unauthenticated { .. } | AdminError::Forbidden { .. } => self
                .www_authenticate()
                .and_then(|c| HeaderValue::from_str(&c).ok())
                .map(|c| (WWW_AUTHENTICATE, c))
                .into_iter()
                .collect(),
            AdminError::MethodNotAllowed { allow, .. } => {
                vec![(ALLOW, HeaderValue::from_static(allow))]
            }
            AdminError::Disabled
            | AdminError::NotFound { .. }
            | AdminError::QueryNotAllowed { .. }
            | AdminError::UnsupportedMediaType { .. }
            | AdminError::BodyTooLarge { .. }
            | AdminError::BadBody { .. }
            | AdminError::UnknownTarget(_)
            | AdminError::SelfApproval { .. }
            | AdminError::AlreadyDecided(_)
            | AdminError::StoreUnavailable(_) => Vec::new(),
            AdminError::BadQuery { .. } => Vec::new(),
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

    /// One value of every variant, two where a field changes the mapping.
    fn every_variant() -> Vec<AdminError> {
        vec![
            AdminError::Guard(Reject::HostNotAllowed { host: "x".into() }),
            AdminError::Guard(Reject::OriginNotAllowed {
                origin: "http://x".into(),
            }),
            AdminError::Disabled,
            AdminError::Unauthenticated {
                reason: "x".into(),
                invalid_token: false,
            },
            AdminError::Unauthenticated {
                reason: "x".into(),
                invalid_token: true,
            },
            AdminError::Forbidden {
                who: "token ci".into(),
                needed: AdminPermission::Read,
            },
            AdminError::Forbidden {
                who: "token ci".into(),
                needed: AdminPermission::Write,
            },
            AdminError::NotFound { path: "/x".into() },
            AdminError::MethodNotAllowed {
                method: "GET".into(),
                path: "/admin/x".into(),
                allow: "POST",
            },
            AdminError::QueryNotAllowed {
                path: "/admin/x".into(),
                example: "{}",
            },
            AdminError::UnsupportedMediaType {
                got: "text/plain".into(),
                example: "{}",
            },
            AdminError::BodyTooLarge { limit: 1 },
            AdminError::BadBody {
                reason: "x".into(),
                example: "{}",
            },
            AdminError::UnknownTarget("x".into()),
            AdminError::Forbidden {
                who: "token ci".into(),
                needed: AdminPermission::Approve,
            },
            AdminError::SelfApproval {
                who: "alice".into(),
                id: "i".into(),
            },
            AdminError::AlreadyDecided("x".into()),
            AdminError::StoreUnavailable("x".into()),
            AdminError::BadQuery {
                reason: "x".into(),
                example: "?subject=alice",
            },
        ]
    }

    /// Status, code and headers, written out per variant. No wildcard arm over `AdminError`:
    /// a new variant does not compile until its mapping is decided here.
    fn expected(e: &AdminError) -> (u16, &'static str, Vec<(&'static str, String)>) {
        const REALM: &str = "Bearer realm=\"mcp-gateway admin\"";
        let www = |v: String| vec![("www-authenticate", v)];
        match e {
            AdminError::Guard(Reject::HostNotAllowed { .. }) => (421, "host_not_allowed", vec![]),
            AdminError::Guard(Reject::OriginNotAllowed { .. }) => {
                (403, "origin_not_allowed", vec![])
            }
            // Only the two guard rejections above reach the admin API; any other keeps the
            // status Reject gives it (its own exhaustive test) under one code.
            AdminError::Guard(r) => (r.http_status(), "refused", vec![]),
            AdminError::Disabled => (403, "admin_api_disabled", vec![]),
            AdminError::Unauthenticated {
                invalid_token: false,
                ..
            } => (401, "unauthenticated", www(REALM.into())),
            AdminError::Unauthenticated {
                invalid_token: true,
                ..
            } => (
                401,
                "unauthenticated",
                www(format!("{REALM}, error=\"invalid_token\"")),
            ),
            AdminError::Forbidden { needed, .. } => (
                403,
                "forbidden",
                www(format!(
                    "{REALM}, error=\"insufficient_scope\", scope=\"admin:{}\"",
                    permission_name(*needed)
                )),
            ),
            AdminError::NotFound { .. } => (404, "not_found", vec![]),
            AdminError::MethodNotAllowed { .. } => {
                (405, "method_not_allowed", vec![("allow", "POST".into())])
            }
            AdminError::QueryNotAllowed { .. } => (400, "query_not_allowed", vec![]),
            AdminError::UnsupportedMediaType { .. } => (415, "unsupported_media_type", vec![]),
            AdminError::BodyTooLarge { .. } => (413, "body_too_large", vec![]),
            AdminError::BadBody { .. } => (400, "invalid_body", vec![]),
            AdminError::UnknownTarget(_) => (404, "not_found", vec![]),
            AdminError::SelfApproval { .. } => (403, "self_approval", vec![]),
            AdminError::AlreadyDecided(_) => (409, "already_decided", vec![]),
            AdminError::StoreUnavailable(_) => (503, "unavailable", vec![]),
            AdminError::BadQuery { .. } => (400, "invalid_query", vec![]),
        }
    }

    #[test]
    fn every_variant_maps_to_its_status_code_and_headers() {
        for e in every_variant() {
            let headers: Vec<(String, String)> = e
                .response_headers()
                .into_iter()
                .map(|(n, v)| {
                    let v = v.to_str().unwrap_or("(not text)").to_string();
                    (n.as_str().to_string(), v)
                })
                .collect();
            let (status, code, want) = expected(&e);
            let want: Vec<(String, String)> =
                want.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
            assert_eq!(
                (e.http_status(), e.code(), headers),
                (status, code, want),
                "{e:?}"
            );
            assert_eq!(e.body()["error"]["code"], code, "{e:?}");
            assert!(!e.to_string().ends_with('.'), "{e}");
        }
    }

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
