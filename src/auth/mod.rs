//! Client authentication: who is calling.
//!
//! [`Authenticator::authenticate`] runs in `request_filter` before the body is read, so an
//! unauthenticated client can't make the gateway buffer anything. It takes plain header
//! values and returns a [`Principal`] or the [`Reject`] to answer with (401 with
//! `WWW-Authenticate`, or 403 `insufficient_scope`).
//!
//! - JWT bearer tokens ([`jwt`]): keys from JWKS files, JWKS URLs (refreshed), HMAC secrets
//!   or PEM keys; the algorithms each key may verify come from config.
//! - API keys: only their SHA-256 is configured; presented as `Authorization: Bearer KEY` or
//!   in the API-key header (which lets an agent key travel next to a user's JWT).
//! - Verified tokens are cached ([`cache`]) by a hash of the token until they expire, so a
//!   repeat request costs no signature check.

pub mod cache;
pub mod jwt;
pub mod metadata;

use std::collections::HashMap;
use std::sync::Arc;

pub use crate::config::API_KEY_ISSUER;
use crate::config::{AuthConfig, Caller};
use crate::error::Reject;
use crate::metrics::AuthFailure;

/// Who is calling, as far as the gateway is concerned.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who vouches for `subject`: the JWT's `iss`, or [`API_KEY_ISSUER`] for an API key.
    /// Identity is the pair (issuer, subject): issuer B's `alice` is not issuer A's.
    pub issuer: String,
    /// Stable subject (JWT `sub`, or the API key's configured subject).
    pub subject: String,
    pub name: Option<String>,
    /// Teams / groups.
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// The agent acting for the subject: the `act` claim, or an API key presented with a JWT.
    pub agent: Option<String>,
    pub method: AuthMethod,
    /// JWT `exp` (seconds since the epoch), if any.
    pub expires_at: Option<u64>,
    /// The user's bearer token, kept for token exchange. Never printed.
    pub token: Option<Arc<str>>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("name", &self.name)
            .field("groups", &self.groups)
            .field("roles", &self.roles)
            .field("scopes", &self.scopes)
            .field("agent", &self.agent)
            .field("method", &self.method)
            .field("expires_at", &self.expires_at)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Principal {
    /// What access lists and rules match against.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            issuer: &self.issuer,
            subject: &self.subject,
            groups: &self.groups,
            roles: &self.roles,
            agent: self.agent.as_deref(),
        }
    }

    /// The principal's identity as one string: `ISSUER#SUBJECT` when `qualified` (several
    /// JWT issuers: see [`AuthConfig::qualified_subjects`]), else the bare subject. Used
    /// where identity must be a single string: `per_user` vault owners, signed identities.
    pub fn identity_key(&self, qualified: bool) -> std::borrow::Cow<'_, str> {
        if qualified {
            std::borrow::Cow::Owned(format!("{}#{}", self.issuer, self.subject))
        } else {
            std::borrow::Cow::Borrowed(&self.subject)
        }
    }
}

/// How the principal authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
}

/// The values `authenticate` looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The configured API-key header.
    pub api_key: Option<&'a str>,
}

/// Everything needed to authenticate requests, built once per configuration.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthConfig,
    jwt: Option<jwt::JwtVerifier>,
    api_keys: HashMap<[u8; 32], Arc<Principal>>,
    cache: cache::TokenCache,
}

impl Authenticator {
    /// Build from config. `resolve` turns a secret reference into its value (vault, env, file);
    /// `kill` disables JWT keys read from the vault (see [`jwt::JwtVerifier::new`]).
    pub fn new(
        config: &AuthConfig,
        resolve: &dyn Fn(&str) -> Result<Vec<u8>, String>,
        http: &crate::http_client::HttpClient,
        kill: &Arc<crate::vault::KillSwitch>,
    ) -> anyhow::Result<Authenticator> {
        let jwt = match &config.jwt {
            Some(j) => Some(jwt::JwtVerifier::new(j, resolve, http, kill)?),
            None => None,
        };
        let api_keys = config
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.sha256,
                    Arc::new(Principal {
                        issuer: API_KEY_ISSUER.to_string(),
                        subject: k.subject.clone(),
                        name: k.name.clone(),
                        groups: k.groups.clone(),
                        roles: k.roles.clone(),
                        scopes: k.scopes.clone(),
                        agent: None,
                        method: AuthMethod::ApiKey,
                        expires_at: None,
                        token: None,
                    }),
                )
            })
            .collect();
        Ok(Authenticator {
            config: config.clone(),
            jwt,
            api_keys,
            cache: cache::TokenCache::new(config.cache_max_entries),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Verified-token cache (hits, misses) since start.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
    }

    /// The JWT verifier, for the JWKS refresh task.
    pub fn jwt(&self) -> Option<&jwt::JwtVerifier> {
        self.jwt.as_ref()
    }

    /// Authenticate a request to the MCP endpoint whose canonical URL is `resource` (the JWT
    /// audience by default). Runs in `request_filter`, before the body is read.
    ///
    /// `Ok` is the caller; `Err` is [`Reject::Unauthenticated`] (401) or
    /// [`Reject::InsufficientScope`] (403).
    pub async fn authenticate(
        &self,
        creds: Credentials<'_>,
        resource: Option<&str>,
    ) -> Result<Arc<Principal>, Reject> {
        let bearer = match creds.authorization {
            None => None,
            Some(v) => Some(bearer_token(v).ok_or_else(|| Reject::Unauthenticated {
                reason: "the Authorization header must be \"Bearer <token>\"".into(),
                invalid_token: true,
            })?),
        };
        let api_key = creds.api_key.map(str::trim).filter(|k| !k.is_empty());
        let principal = match (bearer, api_key) {
            (None, None) => {
                return Err(Reject::Unauthenticated {
                    reason: "no credentials: send Authorization: Bearer <token>".into(),
                    invalid_token: false,
                })
            }
            (Some(t), agent_key) if looks_like_jwt(t) => {
                let user = self.verify_jwt(t, resource).await?;
                match agent_key {
                    None => user,
                    Some(k) => {
                        let agent = self.api_key(k)?;
                        let mut p = (*user).clone();
                        p.agent = Some(agent.subject.clone());
                        Arc::new(p)
                    }
                }
            }
            (Some(t), None) => self.api_key(t)?,
            (Some(_), Some(_)) => {
                return Err(Reject::Unauthenticated {
                    reason: "two API keys presented; send one".into(),
                    invalid_token: true,
                })
            }
            (None, Some(k)) => self.api_key(k)?,
        };
        let missing: Vec<&str> = self
            .config
            .required_scopes
            .iter()
            .filter(|s| !principal.scopes.iter().any(|h| h == *s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Reject::InsufficientScope {
                scopes: self.config.required_scopes.join(" "),
                missing: missing.join(" "),
            });
        }
        Ok(principal)
    }

    fn api_key(&self, key: &str) -> Result<Arc<Principal>, Reject> {
        self.api_keys
            .get(&key_digest(key))
            .cloned()
            .ok_or_else(|| Reject::Unauthenticated {
                reason: UNKNOWN_API_KEY.into(),
                invalid_token: true,
            })
    }

    async fn verify_jwt(
        &self,
        token: &str,
        resource: Option<&str>,
    ) -> Result<Arc<Principal>, Reject> {
        let Some(jwt) = &self.jwt else {
            return Err(Reject::Unauthenticated {
                reason: "JWT bearer tokens are not accepted here; use an API key".into(),
                invalid_token: true,
            });
        };
        let audience_key = resource.unwrap_or("");
        let key = cache::cache_key(audience_key, token);
        let generation = jwt.generation();
        if let Some(p) = self.cache.get(&key, generation) {
            return Ok(p);
        }
        // Boxed: a miss may fetch keys; inline, that future would be copied on every request
        // (see docs/architecture.md, "Keep rare paths out of the hot future").
        let principal = Box::pin(jwt.verify(token, jwt::Audience::Route(resource)))
            .await
            .map_err(|reason| Reject::Unauthenticated {
                reason,
                invalid_token: true,
            })?;
        let principal = Arc::new(principal);
        if let Some(exp) = principal.expires_at {
            self.cache.insert(key, principal.clone(), exp, generation);
        }
        Ok(principal)
    }
}

/// The reason of a refused API key (also how [`failure_reason`] tells it from a bad JWT
/// when a user's JWT came with an agent key).
const UNKNOWN_API_KEY: &str = "unknown API key";

/// The bounded metric reason of a refusal [`Authenticator::authenticate`] returned for
/// `creds`, following the same cases it does.
pub fn failure_reason(creds: &Credentials<'_>, reject: &Reject) -> AuthFailure {
    match reject {
        Reject::InsufficientScope { .. } => return AuthFailure::InsufficientScope,
        Reject::Unauthenticated { reason, .. } if reason == UNKNOWN_API_KEY => {
            return AuthFailure::UnknownApiKey
        }
        _ => {}
    }
    let api_key = creds.api_key.map(str::trim).filter(|k| !k.is_empty());
    match (creds.authorization, api_key) {
        (None, None) => AuthFailure::Missing,
        (Some(v), _) if bearer_token(v).is_none() => AuthFailure::Malformed,
        (Some(v), Some(_)) if bearer_token(v).is_some_and(|t| !looks_like_jwt(t)) => {
            AuthFailure::Malformed
        }
        _ => AuthFailure::InvalidToken,
    }
}

/// The SHA-256 of a presented key, as configured for API keys and admin tokens.
pub fn key_digest(key: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut h = [0u8; 32];
    h.copy_from_slice(digest.as_ref());
    h
}

/// The token of a `Bearer` authorization value (scheme case-insensitive).
pub fn bearer_token(v: &str) -> Option<&str> {
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Three base64url segments: a JWS compact serialization.
pub fn looks_like_jwt(t: &str) -> bool {
    t.split('.').count() == 3 && t.starts_with("ey")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_are_a_closed_set_following_authenticate() {
        let unauth = |reason: &str| Reject::Unauthenticated {
            reason: reason.into(),
            invalid_token: true,
        };
        let creds = |authorization, api_key| Credentials {
            authorization,
            api_key,
        };
        let jwt = "Bearer eyJ.a.b";
        let cases = [
            (
                creds(None, None),
                unauth("no credentials"),
                AuthFailure::Missing,
            ),
            (creds(None, Some("  ")), unauth("x"), AuthFailure::Missing),
            (
                creds(Some("Basic x"), None),
                unauth("x"),
                AuthFailure::Malformed,
            ),
            (
                creds(Some("Bearer k1"), Some("k2")),
                unauth("two"),
                AuthFailure::Malformed,
            ),
            (
                creds(Some("Bearer k"), None),
                unauth(UNKNOWN_API_KEY),
                AuthFailure::UnknownApiKey,
            ),
            (
                creds(Some(jwt), Some("k")),
                unauth(UNKNOWN_API_KEY),
                AuthFailure::UnknownApiKey,
            ),
            (
                creds(Some(jwt), None),
                unauth("expired"),
                AuthFailure::InvalidToken,
            ),
            (
                creds(Some("Bearer k"), None),
                Reject::InsufficientScope {
                    scopes: "a".into(),
                    missing: "a".into(),
                },
                AuthFailure::InsufficientScope,
            ),
        ];
        for (c, r, want) in cases {
            assert_eq!(failure_reason(&c, &r), want, "{c:?} {r:?}");
        }
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer  "), None);
    }

    #[test]
    fn principal_debug_redacts_the_token() {
        let p = Principal {
            issuer: "https://idp.test".into(),
            subject: "alice".into(),
            name: None,
            groups: vec![],
            roles: vec![],
            scopes: vec![],
            agent: None,
            method: AuthMethod::Jwt,
            expires_at: None,
            token: Some(Arc::from("eyJsecret.token.value")),
        };
        let d = format!("{p:?}");
        assert!(d.contains("alice") && !d.contains("eyJsecret"));
    }
}
