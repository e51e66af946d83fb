//! The `auth` section: how MCP clients authenticate (JWT bearer tokens and API keys) and
//! what the protected-resource metadata advertises.
//!
//! Only references are checked here (secret references, JWKS URLs); keys are fetched and
//! secrets resolved at startup by `crate::auth`.

use std::time::Duration;

use super::raw::{RawAuth, RawClaimPaths, RawJwt};
use super::syntax::{header_name, secret_ref, sha256_hex, side_url};
use super::ConfigError;

/// The issuer of API-key principals: API keys are their own namespace of subjects.
pub const API_KEY_ISSUER: &str = "api-key";

/// Validated client-authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Canonical public URL, without a trailing slash.
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub required_scopes: Vec<String>,
    pub jwt: Option<JwtConfig>,
    pub api_keys: Vec<ApiKeyConfig>,
    pub api_key_header: http::HeaderName,
    pub cache_max_entries: usize,
}

impl AuthConfig {
    /// Whether subjects are only meaningful with their issuer: more than one JWT issuer is
    /// configured. Then `per_user` vault owners and signed identities use `ISSUER#SUBJECT`.
    pub fn qualified_subjects(&self) -> bool {
        self.jwt.as_ref().is_some_and(|j| j.issuers.len() > 1)
    }
}

/// Validated JWT settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuers: Vec<String>,
    /// `None`: each route's canonical URL.
    pub audiences: Option<Vec<String>>,
    pub leeway: Duration,
    pub required_claims: Vec<String>,
    pub keys: Vec<JwtKeyConfig>,
    pub claims: RawClaimPaths,
    /// Issuers whose groups and roles claims are honoured.
    pub group_issuers: Vec<String>,
}

/// Where one JWT verification key (set) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    JwksFile(std::path::PathBuf),
    JwksUrl(url::Url),
    /// HMAC secret, as a secret reference.
    Secret(String),
    /// PEM public key, as a secret reference.
    Pem(String),
}

/// A validated JWT key source and the algorithms it may verify.
#[derive(Debug, Clone)]
pub struct JwtKeyConfig {
    pub source: KeySource,
    pub kid: Option<String>,
    /// The only issuer this key verifies tokens for (`None`: the single configured issuer).
    pub issuer: Option<String>,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub refresh_interval: Duration,
    pub min_refresh_interval: Duration,
}

/// A configured API key: its SHA-256 and the principal it stands for.
#[derive(Debug, Clone)]
pub struct ApiKeyConfig {
    pub sha256: [u8; 32],
    pub subject: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
}

/// Validates the `auth` section: the canonical resource URL, the API-key header, the token
/// cache size, JWT settings and API keys; at least one of the two must be configured.
pub(super) fn validate(a: RawAuth) -> Result<AuthConfig, ConfigError> {
    let resource_url = url::Url::parse(&a.resource).map_err(|e| {
        ConfigError::new(
            "auth.resource",
            format!("invalid URL {:?}: {e}", a.resource),
        )
    })?;
    if !matches!(resource_url.scheme(), "http" | "https") || resource_url.query().is_some() {
        return Err(ConfigError::new(
            "auth.resource",
            format!(
                "invalid URL {:?}: expected http(s)://host[:port][/path]",
                a.resource
            ),
        ));
    }
    let resource = a.resource.trim_end_matches('/').to_string();
    let api_key_header =
        header_name(&a.api_key_header).map_err(|m| ConfigError::new("auth.api_key_header", m))?;
    if a.cache_max_entries == 0 {
        return Err(ConfigError::new(
            "auth.cache_max_entries",
            "must be at least 1",
        ));
    }
    let jwt = match a.jwt {
        None => None,
        Some(j) => Some(jwt(j)?),
    };
    let mut api_keys: Vec<ApiKeyConfig> = Vec::with_capacity(a.api_keys.len());
    for (i, k) in a.api_keys.into_iter().enumerate() {
        let sha = sha256_hex(&format!("auth.api_keys[{i}].sha256"), &k.sha256)?;
        if k.subject.is_empty() {
            return Err(ConfigError::new(
                format!("auth.api_keys[{i}].subject"),
                "must not be empty",
            ));
        }
        if api_keys.iter().any(|p| p.sha256 == sha) {
            return Err(ConfigError::new(
                format!("auth.api_keys[{i}].sha256"),
                "duplicate API key",
            ));
        }
        api_keys.push(ApiKeyConfig {
            sha256: sha,
            subject: k.subject,
            name: k.name,
            groups: k.groups,
            roles: k.roles,
            scopes: k.scopes,
        });
    }
    if jwt.is_none() && api_keys.is_empty() {
        return Err(ConfigError::new(
            "auth",
            "configure jwt and/or api_keys, or set auth: none on the listeners",
        ));
    }
    Ok(AuthConfig {
        resource,
        authorization_servers: a.authorization_servers,
        scopes_supported: a.scopes_supported,
        required_scopes: a.required_scopes,
        jwt,
        api_keys,
        api_key_header,
        cache_max_entries: a.cache_max_entries,
    })
}

/// Validates `auth.jwt`: issuers (and whose groups to trust), audiences, and each key
/// source with the algorithms it may verify.
fn jwt(j: RawJwt) -> Result<JwtConfig, ConfigError> {
    use jsonwebtoken::Algorithm;
    if j.issuers.is_empty() {
        return Err(ConfigError::new(
            "auth.jwt.issuers",
            "at least one issuer is required",
        ));
    }
    // `#` separates issuer and subject in ISSUER#SUBJECT (and OIDC issuers have no fragment);
    // `api-key` is the API keys' own namespace.
    if let Some((n, iss)) = j
        .issuers
        .iter()
        .enumerate()
        .find(|(_, i)| i.is_empty() || i.contains('#') || *i == API_KEY_ISSUER)
    {
        return Err(ConfigError::new(
            format!("auth.jwt.issuers[{n}]"),
            format!("{iss:?}: an issuer must be non-empty, contain no '#' and not be {API_KEY_ISSUER:?}"),
        ));
    }
    let group_issuers = match j.group_issuers {
        Some(list) => {
            if let Some((n, iss)) = list.iter().enumerate().find(|(_, g)| !j.issuers.contains(g)) {
                return Err(ConfigError::new(
                    format!("auth.jwt.group_issuers[{n}]"),
                    format!("{iss:?} is not one of auth.jwt.issuers"),
                ));
            }
            list
        }
        None if j.issuers.len() == 1 => j.issuers.clone(),
        None => {
            return Err(ConfigError::new(
                "auth.jwt.group_issuers",
                "required when auth.jwt.issuers lists more than one issuer: list the issuers whose groups and roles claims the gateway should trust ([] for none)",
            ))
        }
    };
    if j.audiences.as_ref().is_some_and(Vec::is_empty) {
        return Err(ConfigError::new(
            "auth.jwt.audiences",
            "empty list; omit it to use each route's canonical URL",
        ));
    }
    if j.keys.is_empty() {
        return Err(ConfigError::new(
            "auth.jwt.keys",
            "at least one key source is required",
        ));
    }
    let mut keys = Vec::with_capacity(j.keys.len());
    for (i, k) in j.keys.into_iter().enumerate() {
        let at = |f: &str| format!("auth.jwt.keys[{i}].{f}");
        let given = [
            k.jwks_file.is_some(),
            k.jwks_url.is_some(),
            k.secret.is_some(),
            k.pem.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(ConfigError::new(
                format!("auth.jwt.keys[{i}]"),
                "set exactly one of jwks_file, jwks_url, secret, pem",
            ));
        }
        if k.algorithms.is_empty() {
            return Err(ConfigError::new(
                at("algorithms"),
                "list the algorithms this key may verify, e.g. [RS256]",
            ));
        }
        let mut algorithms = Vec::with_capacity(k.algorithms.len());
        for a in &k.algorithms {
            let alg: Algorithm = a.parse().map_err(|_| {
                ConfigError::new(
                    at("algorithms"),
                    format!("unknown algorithm {a:?} (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA)"),
                )
            })?;
            algorithms.push(alg);
        }
        let hmac =
            |a: &Algorithm| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
        let is_secret = k.secret.is_some();
        if algorithms.iter().any(|a| hmac(a) != is_secret) {
            return Err(ConfigError::new(
                at("algorithms"),
                "HS* algorithms go only with a `secret` key, and a `secret` key only with HS* (no HS/RS confusion)",
            ));
        }
        let source = if let Some(f) = k.jwks_file {
            KeySource::JwksFile(f.into())
        } else if let Some(u) = k.jwks_url {
            let url = side_url(&u).map_err(|m| ConfigError::new(at("jwks_url"), m))?;
            KeySource::JwksUrl(url)
        } else if let Some(sref) = secret_ref(at("secret"), k.secret)? {
            KeySource::Secret(sref)
        } else if let Some(pref) = secret_ref(at("pem"), k.pem)? {
            KeySource::Pem(pref)
        } else {
            return Err(ConfigError::new(
                format!("auth.jwt.keys[{i}]"),
                "no key source",
            ));
        };
        if k.refresh_interval.is_zero() || k.min_refresh_interval.is_zero() {
            return Err(ConfigError::new(
                at("refresh_interval"),
                "must be greater than 0",
            ));
        }
        match &k.issuer {
            Some(iss) if !j.issuers.contains(iss) => {
                return Err(ConfigError::new(
                    at("issuer"),
                    format!("{iss:?} is not one of auth.jwt.issuers"),
                ))
            }
            None if j.issuers.len() > 1 => {
                return Err(ConfigError::new(
                    at("issuer"),
                    "required when auth.jwt.issuers lists more than one issuer (a key verifies one issuer's tokens)",
                ))
            }
            _ => {}
        }
        keys.push(JwtKeyConfig {
            source,
            issuer: k.issuer,
            kid: k.kid,
            algorithms,
            refresh_interval: k.refresh_interval,
            min_refresh_interval: k.min_refresh_interval,
        });
    }
    Ok(JwtConfig {
        issuers: j.issuers,
        audiences: j.audiences,
        leeway: j.leeway,
        required_claims: j.required_claims,
        keys,
        claims: j.claims,
        group_issuers,
    })
}
