//! Identity propagation: what credential an upstream receives for a caller.
//!
//! Chosen per upstream (`upstreams[].auth.mode`). The client's own credentials are always
//! stripped before forwarding (in `proxy::outbound`) unless the mode is `passthrough`; this
//! module produces the header value that replaces them:
//!
//! - `static`: one service credential (vault, env or file), resolved at load.
//! - `per_user`: the caller's own credential from the vault (`NAME/<subject>`, or
//!   `NAME/<issuer>#<subject>` when several JWT issuers are configured), or the configured
//!   fallback, or a clear 403. Never someone else's, nor another issuer's same-named user's.
//! - `signed_identity`: a short-lived EdDSA JWT minted by the gateway (sub, `subject_issuer`,
//!   name, groups, roles, `act` = agent, `aud` = upstream), reused for half its lifetime; the
//!   public keys are served as a JWKS on the admin port.
//! - `token_exchange`: RFC 8693 against the configured token endpoint, the caller's token as
//!   subject token; results cached per (subject, audience, scopes) until they expire. A failed
//!   exchange is an error, never a call without credentials.
//!
//! Runs in `request_filter` after the request is admitted (async: token exchange).

mod per_user;

pub use per_user::VaultWriter;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::HeaderValue;

use crate::auth::Principal;
use crate::config::{Config, PropagationMode, Upstream};
use crate::error::Reject;
use crate::http_client::HttpClient;
use crate::store::BoundedMap;
use crate::vault::{KillSwitch, Vault};

/// Cached derived credentials are bounded per upstream.
const CACHE_MAX: usize = 10_000;

/// Derived credentials (signed or exchanged tokens) by what they were derived from, until
/// they should be replaced. When full, the one closest to replacement goes first.
type CredentialCache = BoundedMap<String, HeaderValue, Instant>;

/// What every upstream's credential source shares, built once per configuration. The
/// sources themselves ([`CredentialSource`]) live with their upstream
/// ([`crate::upstreams::UpstreamRt`]), so a call resolved to an upstream carries its source.
#[derive(Debug)]
pub struct Identity {
    /// `per_user` owners are `ISSUER#SUBJECT` (several JWT issuers), else the bare subject.
    qualified: bool,
    /// Checked on every use: a credential set disabled after this was built is refused.
    kill: Arc<KillSwitch>,
    client: HttpClient,
    /// Public keys of every signing key, for the admin JWKS.
    jwks: serde_json::Value,
}

/// One upstream's credential source and the vault credential sets it was built from.
#[derive(Debug)]
pub struct CredentialSource {
    source: Source,
    /// Every `secret:` name behind `source` (the secret, per-user name, fallback, signing key,
    /// OAuth or token-exchange client secret): if any is disabled, the upstream's credential
    /// is refused.
    vault_names: Vec<String>,
}

#[derive(Debug)]
enum Source {
    None,
    Passthrough,
    Static(HeaderValue),
    PerUser(Box<per_user::PerUser>),
    Signed(Box<Signer>),
    Exchange(Box<Exchange>),
    /// Kill switch: the credential set is disabled.
    Disabled(String),
}

struct Signer {
    key: jsonwebtoken::EncodingKey,
    /// Several JWT issuers: `sub` is `ISSUER#SUBJECT`.
    qualified: bool,
    kid: String,
    issuer: String,
    audience: String,
    ttl: Duration,
    cache: CredentialCache,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

struct Exchange {
    token_url: url::Url,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: String,
    scopes: Vec<String>,
    cache: CredentialCache,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The header value `<scheme><credential>`, marked sensitive so it is never logged.
fn header_value(scheme: &str, credential: &[u8]) -> Result<HeaderValue, String> {
    let mut v = Vec::with_capacity(scheme.len() + credential.len());
    v.extend_from_slice(scheme.as_bytes());
    v.extend_from_slice(credential);
    let mut hv = HeaderValue::from_bytes(&v)
        .map_err(|_| "the credential contains characters not allowed in a header".to_string())?;
    hv.set_sensitive(true);
    Ok(hv)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Identity {
    /// Build every upstream's source, in the order of `config.upstreams`. `resolve` reads a
    /// secret reference; `vault` is the opened vault (per-user credentials, kill switch);
    /// `writer` saves refreshed OAuth credentials back to it.
    pub fn new(
        config: &Config,
        resolve: &dyn Fn(&str) -> Result<Vec<u8>, String>,
        vault: Option<&Vault>,
        writer: Option<VaultWriter>,
        http: &HttpClient,
        kill: &Arc<KillSwitch>,
    ) -> anyhow::Result<(Identity, Vec<CredentialSource>)> {
        // Several JWT issuers: identities are ISSUER#SUBJECT (per_user owners, signed `sub`).
        let qualified = config
            .auth
            .as_ref()
            .is_some_and(crate::config::AuthConfig::qualified_subjects);
        let issuer = config
            .auth
            .as_ref()
            .map_or_else(|| "mcp-gateway".to_string(), |a| a.resource.clone());
        let mut keys = Vec::new();
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for (i, u) in config.upstreams.iter().enumerate() {
            let at = format!("upstreams[{i}].auth");
            let a = &u.auth;
            let vault_names = vault_names(a);
            let disabled = kill.first_disabled(&vault_names).map(str::to_string);
            let src = match a.mode {
                // A disabled set is not resolved at all (the vault will not release it): the
                // upstream is built refusing, and the reload goes through.
                _ if disabled.is_some() => Source::Disabled(disabled.unwrap_or_default()),
                PropagationMode::None => Source::None,
                PropagationMode::Passthrough => Source::Passthrough,
                PropagationMode::Static => {
                    let r = a.secret.as_deref().unwrap_or_default();
                    let secret = resolve(r).map_err(|e| anyhow::anyhow!("{at}.secret: {e}"))?;
                    Source::Static(
                        header_value(&a.scheme, &secret)
                            .map_err(|e| anyhow::anyhow!("{at}.secret: {e}"))?,
                    )
                }
                PropagationMode::PerUser => {
                    let name = a.credential.clone().unwrap_or_default();
                    let fallback = match &a.fallback {
                        None => None,
                        Some(r) => {
                            let s =
                                resolve(r).map_err(|e| anyhow::anyhow!("{at}.fallback: {e}"))?;
                            Some(
                                header_value(&a.scheme, &s)
                                    .map_err(|e| anyhow::anyhow!("{at}.fallback: {e}"))?,
                            )
                        }
                    };
                    let oauth = match &a.oauth {
                        None => None,
                        Some(o) => {
                            let secret = match &o.client_secret {
                                None => None,
                                Some(r) => Some(
                                    String::from_utf8(resolve(r).map_err(|e| {
                                        anyhow::anyhow!("{at}.oauth.client_secret: {e}")
                                    })?)
                                    .map_err(|_| {
                                        anyhow::anyhow!("{at}.oauth.client_secret: must be UTF-8")
                                    })?,
                                ),
                            };
                            Some((o.clone(), secret))
                        }
                    };
                    Source::PerUser(Box::new(
                        per_user::PerUser::new(
                            name,
                            a.scheme.clone(),
                            fallback,
                            vault,
                            oauth,
                            writer.clone(),
                        )
                        .map_err(|e| anyhow::anyhow!("{at}: {e}"))?,
                    ))
                }
                PropagationMode::SignedIdentity => {
                    let r = a.signing_key.as_deref().unwrap_or_default();
                    let der = resolve(r).map_err(|e| anyhow::anyhow!("{at}.signing_key: {e}"))?;
                    let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "{at}.signing_key: not an Ed25519 PKCS#8 key (create one with `mcp-gateway vault gen-signing-key`)"
                            )
                        })?;
                    use ring::signature::KeyPair as _;
                    let public = pair.public_key().as_ref().to_vec();
                    let digest = ring::digest::digest(&ring::digest::SHA256, &public);
                    let kid: String = digest.as_ref()[..8]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&public);
                    keys.push(serde_json::json!({
                        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x
                    }));
                    Source::Signed(Box::new(Signer {
                        key: jsonwebtoken::EncodingKey::from_ed_der(&der),
                        qualified,
                        kid,
                        issuer: issuer.clone(),
                        audience: a.audience.clone(),
                        ttl: a.ttl,
                        cache: CredentialCache::new(CACHE_MAX),
                    }))
                }
                PropagationMode::TokenExchange => {
                    let client_secret = match &a.client_secret {
                        None => None,
                        Some(r) => {
                            let s = resolve(r)
                                .map_err(|e| anyhow::anyhow!("{at}.client_secret: {e}"))?;
                            Some(String::from_utf8(s).map_err(|_| {
                                anyhow::anyhow!("{at}.client_secret: must be UTF-8 text")
                            })?)
                        }
                    };
                    Source::Exchange(Box::new(Exchange {
                        token_url: a
                            .token_url
                            .clone()
                            .ok_or_else(|| anyhow::anyhow!("{at}.token_url: required"))?,
                        client_id: a.client_id.clone(),
                        client_secret,
                        audience: a.audience.clone(),
                        scopes: a.scopes.clone(),
                        cache: CredentialCache::new(CACHE_MAX),
                    }))
                }
            };
            upstreams.push(CredentialSource {
                source: src,
                vault_names,
            });
        }
        let identity = Identity {
            qualified,
            kill: kill.clone(),
            client: http.clone(),
            jwks: serde_json::json!({ "keys": keys }),
        };
        Ok((identity, upstreams))
    }

    /// The gateway's own credential from an upstream's source (static secret, or the per-user
    /// fallback), for requests made on nobody's behalf such as tool discovery.
    pub fn service_credential(&self, p: &CredentialSource) -> Option<HeaderValue> {
        if self.kill.first_disabled(&p.vault_names).is_some() {
            return None;
        }
        match &p.source {
            Source::Static(v) => Some(v.clone()),
            Source::PerUser(pu) => pu.fallback(),
            _ => None,
        }
    }

    /// JWKS of the gateway's signing keys (served on the admin port).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// The credential header value for a call by `principal` to `upstream`, whose source is
    /// `prop`. `Ok(None)`: send no credential (mode `none`, or `passthrough` which keeps the
    /// client's own). Runs in `request_filter`.
    pub async fn credential(
        &self,
        prop: &CredentialSource,
        upstream: &Upstream,
        principal: Option<&Principal>,
    ) -> Result<Option<HeaderValue>, Reject> {
        let unavailable = |reason: String| Reject::CredentialUnavailable {
            upstream: upstream.name.clone(),
            reason,
        };
        let disabled = |name: &str| {
            unavailable(format!(
                "the credential set {name:?} is disabled by the operator (kill switch)"
            ))
        };
        // Checked on every call, not only at build: the kill switch is updated by a reload
        // before (and even without) a new runtime replacing this one.
        if let Some(name) = self.kill.first_disabled(&prop.vault_names) {
            return Err(disabled(name));
        }
        match &prop.source {
            Source::None => Ok(None),
            // `passthrough` forwards the caller's own token. An API key is a credential for
            // the gateway, never for an upstream: refuse rather than forward it (or call
            // without credentials and relay the upstream's confusing 401).
            Source::Passthrough => match principal {
                Some(p) if p.method == crate::auth::AuthMethod::ApiKey => Err(unavailable(
                    "passthrough forwards the caller's own token, and API keys are never forwarded; call with a JWT from the identity provider".into(),
                )),
                _ => Ok(None),
            },
            Source::Static(v) => Ok(Some(v.clone())),
            Source::Disabled(name) => Err(disabled(name)),
            Source::PerUser(pu) => {
                let p = principal
                    .ok_or_else(|| unavailable("the caller is not authenticated".into()))?;
                let owner = p.identity_key(self.qualified);
                Box::pin(pu.credential(&self.client, &owner, &upstream.name))
                    .await
                    .map(Some)
                    .map_err(unavailable)
            }
            Source::Signed(s) => {
                let p = principal
                    .ok_or_else(|| unavailable("the caller is not authenticated".into()))?;
                s.token(p, &upstream.auth.scheme)
                    .map(Some)
                    .map_err(unavailable)
            }
            Source::Exchange(x) => {
                let p = principal
                    .ok_or_else(|| unavailable("the caller is not authenticated".into()))?;
                Box::pin(x.token(&self.client, p, &upstream.auth.scheme))
                    .await
                    .map(Some)
                    .map_err(|cause| Reject::TokenExchange {
                        upstream: upstream.name.clone(),
                        cause,
                    })
            }
        }
    }
}

/// The vault credential sets an upstream's `auth` reads. `per_user.credential` is a vault
/// name itself; the other fields are references, of which only `secret:` ones count.
fn vault_names(a: &crate::config::UpstreamAuth) -> Vec<String> {
    let refs = [
        a.secret.as_deref(),
        a.fallback.as_deref(),
        a.signing_key.as_deref(),
        a.client_secret.as_deref(),
        a.oauth.as_ref().and_then(|o| o.client_secret.as_deref()),
    ];
    let mut names: Vec<String> = refs
        .into_iter()
        .flatten()
        .filter_map(crate::state::vault_name)
        .collect();
    if a.mode == PropagationMode::PerUser {
        names.extend(a.credential.clone());
    }
    names.sort();
    names.dedup();
    names
}

impl Signer {
    fn token(&self, p: &Principal, scheme: &str) -> Result<HeaderValue, String> {
        // Everything that goes into the token is part of the key: a change of groups or
        // roles (or a different principal with the same subject) never reuses a token.
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}",
            p.issuer,
            p.subject,
            p.agent.as_deref().unwrap_or(""),
            p.name.as_deref().unwrap_or(""),
            p.groups.join(","),
            p.roles.join(","),
            p.method,
        );
        if let Some(v) = self.cache.get(&key, Instant::now()) {
            return Ok(v);
        }
        let now = unix_now();
        // `sub` is ISSUER#SUBJECT when several issuers are configured, so an upstream keyed by
        // `sub` alone cannot mistake issuer B's alice for issuer A's; `subject_issuer` always
        // says who vouched for the subject.
        let mut claims = serde_json::json!({
            "iss": self.issuer,
            "sub": p.identity_key(self.qualified),
            "subject_issuer": p.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl.as_secs().max(1),
            "groups": p.groups,
            "roles": p.roles,
        });
        if let Some(n) = &p.name {
            claims["name"] = serde_json::Value::from(n.as_str());
        }
        if let Some(a) = &p.agent {
            claims["act"] = serde_json::json!({ "sub": a });
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let jwt = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("signing the identity token failed: {e}"))?;
        let v = header_value(scheme, jwt.as_bytes())?;
        // Reuse for half the lifetime so the upstream always gets a comfortably valid token.
        let at = Instant::now();
        self.cache.insert(key, v.clone(), at + self.ttl / 2, at);
        Ok(v)
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Exchange {
    async fn token(
        &self,
        client: &HttpClient,
        p: &Principal,
        scheme: &str,
    ) -> Result<HeaderValue, String> {
        let Some(subject_token) = p.token.as_deref() else {
            return Err("the caller authenticated without a token to exchange (API key); a user JWT is needed".into());
        };
        // Keyed by the subject token itself: a different (narrower, other agent's) token never
        // reuses another token's exchange result.
        let token_hash = ring::digest::digest(&ring::digest::SHA256, subject_token.as_bytes());
        let key = format!(
            "{:02x?}\u{0}{}\u{0}{}",
            token_hash.as_ref(),
            self.audience,
            self.scopes.join(" ")
        );
        if let Some(v) = self.cache.get(&key, Instant::now()) {
            return Ok(v);
        }
        // Build the form synchronously: the serializer is not Send.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair(
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            )
            .append_pair("subject_token", subject_token)
            .append_pair(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            )
            .append_pair(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            )
            .append_pair("audience", &self.audience);
            if !self.scopes.is_empty() {
                form.append_pair("scope", &self.scopes.join(" "));
            }
            if let (Some(id), None) = (&self.client_id, &self.client_secret) {
                form.append_pair("client_id", id);
            }
            bytes::Bytes::from(form.finish())
        };
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ];
        let basic = match (&self.client_id, &self.client_secret) {
            (Some(id), Some(secret)) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            ),
            _ => String::new(),
        };
        if !basic.is_empty() {
            headers.push(("authorization", &basic));
        }
        let resp = client
            .send(
                "POST",
                &self.token_url,
                &headers,
                Some(body),
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        if resp.status != 200 {
            // The endpoint's body may describe the user's token: log it, don't return it.
            let snippet = String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]);
            log::warn!(
                "token exchange at {}{} answered HTTP {}: {}",
                self.token_url.host_str().unwrap_or(""),
                self.token_url.path(),
                resp.status,
                snippet.trim()
            );
            return Err(format!("token endpoint answered HTTP {}", resp.status));
        }
        let t: TokenResponse = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("token endpoint sent an unusable response: {e}"))?;
        let v = header_value(scheme, t.access_token.as_bytes())?;
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(60).saturating_sub(10).max(1));
        let now = Instant::now();
        self.cache.insert(key, v.clone(), now + lifetime, now);
        Ok(v)
    }
}

/// Shared so callers can hold one across awaits.
pub type SharedIdentity = Arc<Identity>;
