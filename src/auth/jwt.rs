//! JWT verification with configured keys.
//!
//! Each key source lists the algorithms it may verify; a token is only tried against keys
//! whose list holds the token's `alg` (and whose `kid` matches when both have one), so
//! `alg: none` and HS/RS confusion cannot verify. Keys from JWKS URLs are fetched by the
//! refresh task ([`JwtVerifier::refresh_stale`]) and on an unknown `kid` (rate-limited);
//! every change of a URL's key set bumps the generation, which invalidates cached tokens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::{AuthMethod, Principal};
use crate::config::{JwtConfig, KeySource};
use crate::http_client::HttpClient;
use crate::vault::KillSwitch;

/// One verification key and what it may verify.
struct KeyEntry {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
    /// Validation for tokens this key verifies (its issuer, the configured audiences).
    issuer: Option<String>,
    /// The vault credential set the key came from (`secret:NAME`): the kill switch can
    /// disable it.
    vault_name: Option<String>,
}

/// A JWKS URL and its current keys.
struct UrlSource {
    url: url::Url,
    algorithms: Vec<Algorithm>,
    issuer: Option<String>,
    refresh_interval: Duration,
    min_refresh_interval: Duration,
    keys: ArcSwap<Vec<KeyEntry>>,
    /// Last fetch attempt and last successful body digest.
    state: tokio::sync::Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
    digest: Option<[u8; 32]>,
}

/// Which `aud` a token must carry.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// An MCP endpoint: `auth.jwt.audiences` when configured, else the endpoint's resource
    /// URL.
    Route(Option<&'a str>),
    /// Exactly this audience, whatever `auth.jwt.audiences` says: the admin API, so that no
    /// token minted for an MCP endpoint is an admin credential.
    Exact(&'a str),
}

/// Verifies JWTs against the configured keys.
pub struct JwtVerifier {
    config: JwtConfig,
    static_keys: Vec<KeyEntry>,
    urls: Vec<UrlSource>,
    generation: AtomicU64,
    client: HttpClient,
    kill: Arc<KillSwitch>,
    /// Keys left out because the kill switch disabled them at load: (kid, algorithms), so a
    /// token they would have verified is told why it is refused.
    disabled: Vec<(Option<String>, Vec<Algorithm>)>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("static_keys", &self.static_keys.len())
            .field(
                "jwks_urls",
                &self.urls.iter().map(|u| u.url.as_str()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Load static keys (JWKS files, secrets, PEMs). JWKS URLs start empty and are fetched by
    /// the refresh task or on first use. A `secret:` key whose name `kill` disables is left
    /// out (not an error, so `vault disable` never fails a reload), and a key disabled later
    /// is skipped at verification.
    pub fn new(
        config: &JwtConfig,
        resolve: &dyn Fn(&str) -> Result<Vec<u8>, String>,
        http: &HttpClient,
        kill: &Arc<KillSwitch>,
    ) -> anyhow::Result<JwtVerifier> {
        let mut static_keys = Vec::new();
        let mut urls = Vec::new();
        let mut disabled = Vec::new();
        for (i, k) in config.keys.iter().enumerate() {
            let at = format!("auth.jwt.keys[{i}]");
            match &k.source {
                KeySource::JwksFile(path) => {
                    let text = std::fs::read(path).map_err(|e| {
                        anyhow::anyhow!("{at}.jwks_file: cannot read {}: {e}", path.display())
                    })?;
                    let set: JwkSet = serde_json::from_slice(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "{at}.jwks_file: {} is not a JWKS document: {e}",
                            path.display()
                        )
                    })?;
                    let entries = entries_from_jwks(&set, &k.algorithms, &k.issuer);
                    if entries.is_empty() {
                        anyhow::bail!(
                            "{at}.jwks_file: {} has no usable key for {:?}",
                            path.display(),
                            k.algorithms
                        );
                    }
                    static_keys.extend(entries);
                }
                KeySource::JwksUrl(url) => urls.push(UrlSource {
                    url: url.clone(),
                    algorithms: k.algorithms.clone(),
                    issuer: k.issuer.clone(),
                    refresh_interval: k.refresh_interval,
                    min_refresh_interval: k.min_refresh_interval,
                    keys: ArcSwap::from_pointee(Vec::new()),
                    state: tokio::sync::Mutex::new(FetchState::default()),
                }),
                KeySource::Secret(r) | KeySource::Pem(r)
                    if crate::state::vault_name(r).is_some_and(|n| kill.is_disabled(&n)) =>
                {
                    log::warn!(
                        "{at}: its credential set is disabled (kill switch); key not loaded"
                    );
                    disabled.push((k.kid.clone(), k.algorithms.clone()));
                }
                KeySource::Secret(r) => {
                    let secret = resolve(r).map_err(|e| anyhow::anyhow!("{at}.secret: {e}"))?;
                    static_keys.push(KeyEntry {
                        kid: k.kid.clone(),
                        algorithms: k.algorithms.clone(),
                        key: DecodingKey::from_secret(&secret),
                        issuer: k.issuer.clone(),
                        vault_name: crate::state::vault_name(r),
                    });
                }
                KeySource::Pem(r) => {
                    let pem = resolve(r).map_err(|e| anyhow::anyhow!("{at}.pem: {e}"))?;
                    let key = pem_key(&pem, &k.algorithms)
                        .map_err(|e| anyhow::anyhow!("{at}.pem: {e}"))?;
                    static_keys.push(KeyEntry {
                        kid: k.kid.clone(),
                        algorithms: k.algorithms.clone(),
                        key,
                        issuer: k.issuer.clone(),
                        vault_name: crate::state::vault_name(r),
                    });
                }
            }
        }
        Ok(JwtVerifier {
            config: config.clone(),
            static_keys,
            urls,
            generation: AtomicU64::new(0),
            client: http.clone(),
            kill: kill.clone(),
            disabled,
        })
    }

    /// Changes whenever a JWKS URL's key set or the kill switch changes: a token verified by
    /// a key that was since disabled must not be served from the cache.
    pub fn generation(&self) -> u64 {
        self.generation
            .load(Ordering::Acquire)
            .wrapping_add(self.kill.generation().rotate_left(32))
    }

    /// Verify `token` for `audience`; `Err` is the reason, in words for the 401 body.
    pub async fn verify(&self, token: &str, audience: Audience<'_>) -> Result<Principal, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("malformed token: {}", describe(&e)))?;
        let mut tried_refresh = false;
        loop {
            match self.try_keys(token, &header, audience) {
                Tried::NoKey if !tried_refresh && !self.urls.is_empty() => {
                    tried_refresh = true;
                    self.refresh(true).await;
                }
                Tried::NoKey
                    if self.disabled.iter().any(|(kid, algs)| {
                        algs.contains(&header.alg) && (kid.is_none() || *kid == header.kid)
                    }) =>
                {
                    return Err(
                        "the key for this token is disabled by the operator (kill switch)".into(),
                    )
                }
                Tried::NoKey => {
                    return Err(match &header.kid {
                        Some(kid) => {
                            format!("no key with kid {kid:?} accepts alg {:?}", header.alg)
                        }
                        None => format!("no configured key accepts alg {:?}", header.alg),
                    })
                }
                Tried::Failed(e) => return Err(e),
                Tried::Ok(claims) => return self.principal(claims, token),
            }
        }
    }

    fn try_keys(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        audience: Audience<'_>,
    ) -> Tried {
        let url_keys: Vec<Arc<Vec<KeyEntry>>> =
            self.urls.iter().map(|u| u.keys.load_full()).collect();
        let candidates = self
            .static_keys
            .iter()
            .chain(url_keys.iter().flat_map(|v| v.iter()))
            .filter(|k| k.algorithms.contains(&header.alg))
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            });
        let mut killed = false;
        let candidates = candidates.filter(|k| {
            let off = k
                .vault_name
                .as_deref()
                .is_some_and(|n| self.kill.is_disabled(n));
            killed |= off;
            !off
        });
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.set_issuer(&self.config.issuers);
        match (audience, &self.config.audiences) {
            (Audience::Exact(a), _) => validation.set_audience(&[a]),
            (Audience::Route(_), Some(a)) => validation.set_audience(a),
            (Audience::Route(r), None) => validation.set_audience(&[r.unwrap_or("")]),
        }
        let mut required: Vec<&str> = vec!["exp", "iss", "aud"];
        required.extend(self.config.required_claims.iter().map(String::as_str));
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;

        let mut last_err = None;
        let mut any = false;
        for k in candidates {
            any = true;
            // A key bound to one issuer only verifies that issuer's tokens.
            let bound;
            let v = match &k.issuer {
                Some(iss) => {
                    let mut b = validation.clone();
                    b.set_issuer(&[iss]);
                    bound = b;
                    &bound
                }
                None => &validation,
            };
            match jsonwebtoken::decode::<Value>(token, &k.key, v) {
                Ok(data) => {
                    for claim in &self.config.required_claims {
                        if lookup(&data.claims, claim).is_none() {
                            return Tried::Failed(format!("token lacks required claim {claim:?}"));
                        }
                    }
                    return Tried::Ok(data.claims);
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        // Wrong key for this token: try the next candidate.
                        ErrorKind::InvalidSignature
                        | ErrorKind::InvalidKeyFormat
                        | ErrorKind::InvalidAlgorithm => last_err = Some(e),
                        _ => return Tried::Failed(describe(&e)),
                    }
                }
            }
        }
        match (any, last_err) {
            (false, _) if killed => Tried::Failed(
                "the key for this token is disabled by the operator (kill switch)".into(),
            ),
            (false, _) => Tried::NoKey,
            (true, Some(e)) => Tried::Failed(describe(&e)),
            (true, None) => Tried::NoKey,
        }
    }

    fn principal(&self, claims: Value, token: &str) -> Result<Principal, String> {
        let paths = &self.config.claims;
        let subject = lookup(&claims, &paths.subject)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("token has no {:?} claim (the subject)", paths.subject))?
            .to_string();
        // Verification checked `iss` against the configured issuers (and the key's own).
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or("token has no \"iss\" claim")?
            .to_string();
        // Groups and roles count only from issuers trusted to assign them.
        let trusted = self.config.group_issuers.contains(&issuer);
        let strings = |list: &[String], split_spaces: bool| -> Vec<String> {
            let mut out = Vec::new();
            for p in list {
                match lookup(&claims, p) {
                    Some(Value::String(s)) if split_spaces => {
                        out.extend(s.split_whitespace().map(str::to_string))
                    }
                    Some(Value::String(s)) => out.push(s.clone()),
                    Some(Value::Array(a)) => {
                        out.extend(a.iter().filter_map(Value::as_str).map(str::to_string))
                    }
                    _ => {}
                }
            }
            out.sort();
            out.dedup();
            out
        };
        Ok(Principal {
            name: lookup(&claims, &paths.name)
                .and_then(Value::as_str)
                .map(str::to_string),
            groups: if trusted {
                strings(&paths.groups, false)
            } else {
                Vec::new()
            },
            roles: if trusted {
                strings(&paths.roles, false)
            } else {
                Vec::new()
            },
            scopes: strings(&paths.scopes, true),
            agent: lookup(&claims, &paths.agent)
                .and_then(Value::as_str)
                .map(str::to_string),
            method: AuthMethod::Jwt,
            expires_at: claims.get("exp").and_then(Value::as_u64),
            token: Some(Arc::from(token)),
            issuer,
            subject,
        })
    }

    /// Fetch every JWKS URL whose keys are older than its `refresh_interval` (or never
    /// fetched). Called periodically by the refresh task.
    pub async fn refresh_stale(&self) {
        for u in &self.urls {
            let due = {
                let st = u.state.lock().await;
                st.last_success
                    .is_none_or(|t| t.elapsed() >= u.refresh_interval)
                    && st
                        .last_attempt
                        .is_none_or(|t| t.elapsed() >= u.min_refresh_interval)
            };
            if due {
                self.fetch(u).await;
            }
        }
    }

    /// Re-fetch every JWKS URL now, at most once per `min_refresh_interval` each.
    async fn refresh(&self, _unknown_kid: bool) {
        for u in &self.urls {
            let allowed = {
                let st = u.state.lock().await;
                st.last_attempt
                    .is_none_or(|t| t.elapsed() >= u.min_refresh_interval)
            };
            if allowed {
                self.fetch(u).await;
            }
        }
    }

    async fn fetch(&self, u: &UrlSource) {
        let mut st = u.state.lock().await;
        st.last_attempt = Some(Instant::now());
        let resp = self
            .client
            .send(
                "GET",
                &u.url,
                &[("accept", "application/json")],
                None,
                Duration::from_secs(5),
            )
            .await;
        let body = match resp {
            Ok(r) if r.status == 200 => r.body,
            Ok(r) => {
                log::warn!(
                    "JWKS {}: HTTP {}; keeping the previous keys",
                    u.url,
                    r.status
                );
                return;
            }
            Err(e) => {
                log::warn!("JWKS {}: {e}; keeping the previous keys", u.url);
                return;
            }
        };
        let set: JwkSet = match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => {
                log::warn!(
                    "JWKS {}: not a JWKS document ({e}); keeping the previous keys",
                    u.url
                );
                return;
            }
        };
        st.last_success = Some(Instant::now());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
        if st.digest != Some(digest) {
            st.digest = Some(digest);
            let entries = entries_from_jwks(&set, &u.algorithms, &u.issuer);
            log::info!("JWKS {}: {} usable keys", u.url, entries.len());
            u.keys.store(Arc::new(entries));
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

enum Tried {
    Ok(Value),
    NoKey,
    Failed(String),
}

/// Keys of a JWKS usable with `allowed` algorithms. A key that names its `alg` is only used
/// for that algorithm (and only if it is allowed).
fn entries_from_jwks(
    set: &JwkSet,
    allowed: &[Algorithm],
    issuer: &Option<String>,
) -> Vec<KeyEntry> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            let algorithms: Vec<Algorithm> = match &jwk.common.key_algorithm {
                Some(ka) => {
                    let name = serde_json::to_value(ka).ok()?;
                    let alg: Algorithm = name.as_str()?.parse().ok()?;
                    allowed.iter().copied().filter(|a| *a == alg).collect()
                }
                None => allowed.to_vec(),
            };
            (!algorithms.is_empty()).then(|| KeyEntry {
                kid: jwk.common.key_id.clone(),
                algorithms,
                key,
                issuer: issuer.clone(),
                vault_name: None,
            })
        })
        .collect()
}

fn pem_key(pem: &[u8], algs: &[Algorithm]) -> Result<DecodingKey, String> {
    use Algorithm::*;
    let alg = algs.first().ok_or("no algorithm")?;
    let r = match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => DecodingKey::from_rsa_pem(pem),
        ES256 | ES384 => DecodingKey::from_ec_pem(pem),
        EdDSA => DecodingKey::from_ed_pem(pem),
        HS256 | HS384 | HS512 => return Err("HMAC keys use `secret`, not `pem`".into()),
        other => return Err(format!("algorithm {other:?} is not supported for PEM keys")),
    };
    r.map_err(|e| format!("not a PEM public key for {alg:?}: {e}"))
}

/// Value at a dotted path (`realm_access.roles`).
fn lookup<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(claims, |v, seg| v.get(seg))
}

/// Human wording for a jsonwebtoken error.
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "token expired".into(),
        ImmatureSignature => "token not yet valid (nbf)".into(),
        InvalidIssuer => "token issuer (iss) is not accepted".into(),
        InvalidAudience => "token audience (aud) does not name this MCP endpoint".into(),
        InvalidSignature => "token signature is invalid".into(),
        InvalidAlgorithm => "token algorithm does not match its key".into(),
        MissingRequiredClaim(c) => format!("token lacks required claim {c:?}"),
        InvalidToken | Base64(_) | Json(_) | Utf8(_) => "malformed token".into(),
        other => format!("invalid token ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_lookup() {
        let v = serde_json::json!({"realm_access": {"roles": ["a"]}, "sub": "x"});
        assert_eq!(
            lookup(&v, "realm_access.roles"),
            Some(&serde_json::json!(["a"]))
        );
        assert_eq!(lookup(&v, "sub").and_then(Value::as_str), Some("x"));
        assert!(lookup(&v, "nope.x").is_none());
    }
}
