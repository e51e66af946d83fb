//! Who is calling the admin API, and whether they may do what the endpoint needs.
//!
//! [`authorize`] is the one permission check: every `/admin/*` handler (today the registry
//! report and tool approval; next, approvals of calls and quota resets) declares the
//! [`AdminPermission`] it needs and receives the [`AdminActor`] to log and audit.
//!
//! Credentials are `Authorization: Bearer` values: an admin token (matched by SHA-256, the
//! same way as `auth.api_keys`), or a JWT verified by the gateway's `auth.jwt` verifier for
//! the audience `auth.resource + "/admin"` and granted a permission by `admin.auth.jwt`.
//! A browser cannot send a bearer header, so `Authorization: Basic base64(user:TOKEN)` is
//! the same credential: the password is the token (or JWT), the user name is ignored. The
//! status page's 401 carries a `Basic` challenge so the browser asks for it.

use super::error::AdminError;
use crate::auth::jwt::JwtVerifier;
use crate::auth::{bearer_token, key_digest, looks_like_jwt};
use crate::config::{AdminAuthConfig, AdminPermission};

/// Who made an admin request; logged with every write and handed to the audit sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminActor {
    /// An admin bearer token, by its configured name.
    Token { name: String },
    /// A JWT principal: identity is the (issuer, subject) pair.
    Jwt { issuer: String, subject: String },
}

impl std::fmt::Display for AdminActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminActor::Token { name } => write!(f, "admin token {name:?}"),
            AdminActor::Jwt { issuer, subject } => write!(f, "{subject:?} (issuer {issuer})"),
        }
    }
}

/// Authenticate `authorization` against `admin.auth` and check it holds `needed`.
///
/// `Err` is [`AdminError::Disabled`] (no `admin.auth`), [`AdminError::Unauthenticated`]
/// (401: missing, malformed or unknown credentials) or [`AdminError::Forbidden`] (403).
pub async fn authorize(
    auth: Option<&AdminAuthConfig>,
    verifier: Option<&JwtVerifier>,
    authorization: Option<&str>,
    needed: AdminPermission,
) -> Result<AdminActor, AdminError> {
    let auth = auth.ok_or(AdminError::Disabled)?;
    let Some(value) = authorization else {
        return Err(AdminError::Unauthenticated {
            reason: "no credentials: send Authorization: Bearer <admin token>".into(),
            invalid_token: false,
        });
    };
    let basic;
    let token = match bearer_token(value) {
        Some(t) => t,
        None => {
            let password = basic_password(value).ok_or_else(|| AdminError::Unauthenticated {
                reason: "the Authorization header must be \"Bearer <token>\"".into(),
                invalid_token: true,
            })?;
            basic = password.map_err(|reason| AdminError::Unauthenticated {
                reason,
                invalid_token: true,
            })?;
            basic.as_str()
        }
    };
    let (actor, held) = match (&auth.jwt, verifier) {
        (Some(grants), Some(verifier)) if looks_like_jwt(token) => {
            let principal = verifier
                .verify(token, crate::auth::jwt::Audience::Exact(&grants.audience))
                .await
                .map_err(|reason| AdminError::Unauthenticated {
                    reason,
                    invalid_token: true,
                })?;
            let issuer = principal.issuer.clone();
            let actor = AdminActor::Jwt {
                issuer: issuer.clone(),
                subject: principal.subject.clone(),
            };
            // Another trusted issuer's principal is a valid caller of MCP routes, but its
            // subjects, groups and roles mean nothing for administration.
            let held = if issuer == grants.issuer {
                grants.permissions(&principal.caller())
            } else {
                Vec::new()
            };
            (actor, held)
        }
        _ => {
            let digest = key_digest(token);
            let t = auth
                .tokens
                .iter()
                .find(|t| t.sha256 == digest)
                .ok_or_else(|| AdminError::Unauthenticated {
                    reason: "unknown admin token".into(),
                    invalid_token: true,
                })?;
            (
                AdminActor::Token {
                    name: t.name.clone(),
                },
                vec![t.permission],
            )
        }
    };
    require(&actor, &held, needed)?;
    Ok(actor)
}

/// The password of a `Basic` authorization value (scheme case-insensitive): `None` when the
/// scheme is not Basic, `Err` naming what is wrong with the credentials when it is.
fn basic_password(value: &str) -> Option<Result<String, String>> {
    use base64::Engine as _;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    const HOW: &str = "send Basic base64(any-user:ADMIN_TOKEN)";
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Some(Err(format!(
            "the Basic credentials are not valid base64; {HOW}"
        )));
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Some(Err(format!("the Basic credentials are not UTF-8; {HOW}")));
    };
    Some(match text.split_once(':') {
        None => Err(format!(
            "the Basic credentials have no ':' between user name and password; {HOW}"
        )),
        Some((_, "")) => Err(format!(
            "the Basic password is empty: it must be the admin token; {HOW}"
        )),
        Some((_, password)) => Ok(password.to_string()),
    })
}

/// Some of `held` grants `needed` ([`AdminPermission::grants`]: `write` and `approve`
/// include `read`), or the 403 naming who lacks what.
pub fn require(
    actor: &AdminActor,
    held: &[AdminPermission],
    needed: AdminPermission,
) -> Result<(), AdminError> {
    if held.iter().any(|h| h.grants(needed)) {
        Ok(())
    } else {
        Err(AdminError::Forbidden {
            who: actor.to_string(),
            needed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdminTokenConfig;

    fn tokens() -> AdminAuthConfig {
        AdminAuthConfig {
            tokens: vec![
                AdminTokenConfig {
                    name: "viewer".into(),
                    sha256: key_digest("read-secret"),
                    permission: AdminPermission::Read,
                },
                AdminTokenConfig {
                    name: "ops".into(),
                    sha256: key_digest("write-secret"),
                    permission: AdminPermission::Write,
                },
            ],
            jwt: None,
        }
    }

    async fn check(
        header: Option<&str>,
        needed: AdminPermission,
    ) -> Result<AdminActor, AdminError> {
        authorize(Some(&tokens()), None, header, needed).await
    }

    #[tokio::test]
    async fn write_includes_read_and_read_is_not_write() {
        use AdminPermission::{Read, Write};
        let ops = AdminActor::Token { name: "ops".into() };
        assert_eq!(
            check(Some("Bearer write-secret"), Write).await,
            Ok(ops.clone())
        );
        assert_eq!(check(Some("Bearer write-secret"), Read).await, Ok(ops));
        assert!(check(Some("bearer read-secret"), Read).await.is_ok());
        let e = check(Some("Bearer read-secret"), Write).await.unwrap_err();
        assert_eq!(e.http_status(), 403);
        assert!(e.to_string().contains("\"viewer\""), "{e}");
    }

    #[test]
    fn write_and_approve_each_include_read_and_not_each_other() {
        use AdminPermission::{Approve, Read, Write};
        let who = AdminActor::Token { name: "t".into() };
        for (held, needed, ok) in [
            (Read, Read, true),
            (Read, Write, false),
            (Read, Approve, false),
            (Write, Read, true),
            (Write, Write, true),
            (Write, Approve, false),
            (Approve, Read, true),
            (Approve, Approve, true),
            (Approve, Write, false),
        ] {
            assert_eq!(
                require(&who, &[held], needed).is_ok(),
                ok,
                "{held:?} {needed:?}"
            );
        }
        assert!(require(&who, &[Write, Approve], Approve).is_ok());
        assert!(require(&who, &[], Read).is_err());
    }

    #[tokio::test]
    async fn missing_malformed_and_unknown_credentials_are_401() {
        for h in [None, Some("Basic abc"), Some("Bearer nope")] {
            let e = check(h, AdminPermission::Read).await.unwrap_err();
            assert_eq!(e.http_status(), 401, "{h:?}");
            assert!(e.www_authenticate().is_some());
        }
    }

    fn basic(user_pass: &str) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[tokio::test]
    async fn basic_credentials_carry_the_token_as_the_password() {
        use AdminPermission::{Read, Write};
        let viewer = AdminActor::Token {
            name: "viewer".into(),
        };
        // Any user name, or none (RFC 7617: the user name ends at the first colon).
        for user in ["admin", ""] {
            let h = basic(&format!("{user}:read-secret"));
            assert_eq!(check(Some(&h), Read).await, Ok(viewer.clone()), "{h}");
        }
        let h = basic("admin:read-secret").replace("Basic", "basic");
        assert!(check(Some(&h), Read).await.is_ok());
        // The same permission check as a bearer token.
        let e = check(Some(&basic("a:read-secret")), Write)
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 403);
        let e = check(Some(&basic("a:nope")), Read).await.unwrap_err();
        assert_eq!(e.http_status(), 401);
        assert!(e.to_string().contains("unknown admin token"), "{e}");
    }

    #[tokio::test]
    async fn malformed_basic_credentials_are_401_saying_what_is_wrong() {
        use base64::Engine as _;
        let not_utf8 = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode([0xff, b':', 0xfe])
        );
        for (h, says) in [
            ("Basic !!not-base64!!".to_string(), "not valid base64"),
            ("Basic".to_string(), "must be \"Bearer <token>\""),
            (basic("read-secret"), "no ':'"),
            (basic("admin:"), "password is empty"),
            (not_utf8, "not UTF-8"),
        ] {
            let e = check(Some(&h), AdminPermission::Read).await.unwrap_err();
            assert_eq!(e.http_status(), 401, "{h}");
            assert!(e.to_string().contains(says), "{h}: {e}");
            assert!(e
                .www_authenticate()
                .is_some_and(|c| c.contains("invalid_token")));
        }
    }

    #[tokio::test]
    async fn without_admin_auth_everything_is_off() {
        let e = authorize(None, None, Some("Bearer x"), AdminPermission::Read)
            .await
            .unwrap_err();
        assert_eq!(e, AdminError::Disabled);
    }
}
