//! The `upstreams` section: the MCP servers behind the gateway, their timeouts, and how each
//! learns who is calling (identity propagation, `upstreams[].auth`).
//!
//! [`PropagationMode`] and [`OnChange`] are read straight from the file and used at run time
//! (by `identity` and the tool registry), so they live here with the validated types;
//! `raw` re-exports them for the serde structs.

use std::time::Duration;

use serde::Deserialize;

use super::raw::{RawUpstream, RawUpstreamAuth};
use super::syntax::{header_name, secret_ref, side_url, valid_name};
use super::ConfigError;

/// A validated upstream MCP server.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub url: url::Url,
    pub tls: bool,
    /// Host name (for DNS and SNI), without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Value for the `Host` header sent upstream (`host[:port]`).
    pub authority: String,
    /// Path and query sent upstream.
    pub path_and_query: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    /// Identity propagation (`mode: none` when not configured).
    pub auth: UpstreamAuth,
    /// Request headers removed before forwarding (beyond client credentials).
    pub strip_headers: Vec<http::HeaderName>,
    pub environment: Option<String>,
    pub on_change: OnChange,
    /// Called statelessly by 2026-07-28 clients when it speaks 2026-07-28 (`stateless`).
    pub stateless: bool,
}

/// Validated identity propagation for one upstream.
#[derive(Debug, Clone)]
pub struct UpstreamAuth {
    pub mode: PropagationMode,
    pub header: http::HeaderName,
    pub scheme: String,
    pub secret: Option<String>,
    pub credential: Option<String>,
    pub fallback: Option<String>,
    pub signing_key: Option<String>,
    pub ttl: Duration,
    pub audience: String,
    pub token_url: Option<url::Url>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// `per_user` OAuth refresh settings.
    pub oauth: Option<OAuthRefresh>,
}

/// Validated per-user OAuth refresh settings.
#[derive(Debug, Clone)]
pub struct OAuthRefresh {
    pub token_url: url::Url,
    pub client_id: String,
    /// Secret reference.
    pub client_secret: Option<String>,
    pub refresh_before: Duration,
}

/// How an upstream learns who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropagationMode {
    /// Send no credentials (client credentials are stripped).
    #[default]
    None,
    /// Forward the client's own `Authorization` (explicit opt-in).
    Passthrough,
    /// One service credential from the vault.
    Static,
    /// The calling user's own credential from the vault (`credential/<subject>`).
    PerUser,
    /// A short-lived JWT minted and signed by the gateway.
    SignedIdentity,
    /// RFC 8693 token exchange of the user's token.
    TokenExchange,
}

impl PropagationMode {
    /// Whether this mode needs an authenticated principal.
    pub fn needs_principal(self) -> bool {
        matches!(
            self,
            PropagationMode::PerUser
                | PropagationMode::SignedIdentity
                | PropagationMode::TokenExchange
        )
    }

    /// The mode as written in the file, for messages and logs.
    pub fn as_label(self) -> &'static str {
        match self {
            PropagationMode::None => "none",
            PropagationMode::Passthrough => "passthrough",
            PropagationMode::Static => "static",
            PropagationMode::PerUser => "per_user",
            PropagationMode::SignedIdentity => "signed_identity",
            PropagationMode::TokenExchange => "token_exchange",
        }
    }
}

/// Reaction to a changed tool definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// Hide the tool and refuse its calls until an operator approves the new definition.
    #[default]
    Quarantine,
    /// Serve it, but log and count the change.
    Alert,
    /// Approve the new definition automatically.
    Accept,
}

/// Validates `upstreams`: at least one, unique valid names, parsed URLs, non-zero timeouts,
/// identity propagation. Errors name `upstreams[i].field`.
pub(super) fn validate(raw: Vec<RawUpstream>) -> Result<Vec<Upstream>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(
            "upstreams",
            "at least one upstream is required",
        ));
    }
    let mut upstreams = Vec::with_capacity(raw.len());
    for (i, u) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("upstreams[{i}].{field}");
        if !valid_name(&u.name) {
            return Err(ConfigError::new(
                at("name"),
                format!("invalid name {:?}: use 1 to 32 of A-Z a-z 0-9 _ -", u.name),
            ));
        }
        if upstreams.iter().any(|p: &Upstream| p.name == u.name) {
            return Err(ConfigError::new(
                at("name"),
                format!("duplicate upstream name {:?}", u.name),
            ));
        }
        let url = parse_url(&u.url).map_err(|m| ConfigError::new(at("url"), m))?;
        for (field, d) in [
            ("connect_timeout", u.connect_timeout),
            ("read_timeout", u.read_timeout),
            ("stream_idle_timeout", u.stream_idle_timeout),
            ("write_timeout", u.write_timeout),
            ("idle_timeout", u.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(at(field), "must be greater than 0"));
            }
        }
        let tls = url.scheme() == "https";
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(), // unreachable: parse_upstream_url requires a host
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let auth = auth(i, u.auth, &url)?;
        let mut strip_headers = Vec::with_capacity(u.strip_headers.len());
        for (k, h) in u.strip_headers.iter().enumerate() {
            strip_headers.push(
                header_name(h).map_err(|m| {
                    ConfigError::new(format!("upstreams[{i}].strip_headers[{k}]"), m)
                })?,
            );
        }
        upstreams.push(Upstream {
            auth,
            strip_headers,
            environment: u.environment,
            on_change: u.on_change,
            stateless: u.stateless,
            name: u.name,
            tls,
            host,
            port,
            authority,
            path_and_query,
            url,
            connect_timeout: u.connect_timeout,
            read_timeout: u.read_timeout,
            stream_idle_timeout: u.stream_idle_timeout,
            write_timeout: u.write_timeout,
            idle_timeout: u.idle_timeout,
        });
    }
    Ok(upstreams)
}

/// Validates `upstreams[i].auth`; without one, `mode: none` with the defaults the file
/// would give.
fn auth(i: usize, a: Option<RawUpstreamAuth>, url: &url::Url) -> Result<UpstreamAuth, ConfigError> {
    let at = |f: &str| format!("upstreams[{i}].auth.{f}");
    let Some(a) = a else {
        return Ok(UpstreamAuth {
            mode: PropagationMode::None,
            header: http::header::AUTHORIZATION,
            scheme: "Bearer ".into(),
            secret: None,
            credential: None,
            fallback: None,
            signing_key: None,
            ttl: Duration::from_secs(60),
            audience: url.to_string(),
            token_url: None,
            client_id: None,
            client_secret: None,
            scopes: Vec::new(),
            oauth: None,
        });
    };
    let header = header_name(&a.header).map_err(|m| ConfigError::new(at("header"), m))?;
    let secret = secret_ref(at("secret"), a.secret)?;
    let fallback = secret_ref(at("fallback"), a.fallback)?;
    let signing_key = secret_ref(at("signing_key"), a.signing_key)?;
    let client_secret = secret_ref(at("client_secret"), a.client_secret)?;
    let need = |ok: bool, field: &str, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(ConfigError::new(
                at(field),
                format!("required for mode {what}"),
            ))
        }
    };
    let label = a.mode.as_label();
    match a.mode {
        PropagationMode::Static => need(secret.is_some(), "secret", label)?,
        PropagationMode::PerUser => need(a.credential.is_some(), "credential", label)?,
        PropagationMode::SignedIdentity => need(signing_key.is_some(), "signing_key", label)?,
        PropagationMode::TokenExchange => need(a.token_url.is_some(), "token_url", label)?,
        PropagationMode::None | PropagationMode::Passthrough => {}
    }
    if a.ttl.is_zero() {
        return Err(ConfigError::new(at("ttl"), "must be greater than 0"));
    }
    let token_url = match a.token_url {
        None => None,
        Some(u) => Some(side_url(&u).map_err(|m| ConfigError::new(at("token_url"), m))?),
    };
    let oauth = match a.oauth {
        None => None,
        Some(o) => {
            if a.mode != PropagationMode::PerUser {
                return Err(ConfigError::new(
                    at("oauth"),
                    "only used with mode per_user",
                ));
            }
            let token_url =
                side_url(&o.token_url).map_err(|m| ConfigError::new(at("oauth.token_url"), m))?;
            Some(OAuthRefresh {
                token_url,
                client_id: o.client_id,
                client_secret: secret_ref(at("oauth.client_secret"), o.client_secret)?,
                refresh_before: o.refresh_before,
            })
        }
    };
    if a.credential
        .as_deref()
        .is_some_and(|c| c.is_empty() || c.contains('/'))
    {
        return Err(ConfigError::new(
            at("credential"),
            "a vault name without '/' (the owner is the caller)",
        ));
    }
    Ok(UpstreamAuth {
        mode: a.mode,
        header,
        scheme: a.scheme,
        secret,
        credential: a.credential,
        fallback,
        signing_key,
        ttl: a.ttl,
        audience: a.audience.unwrap_or_else(|| url.to_string()),
        token_url,
        client_id: a.client_id,
        client_secret,
        scopes: a.scopes,
        oauth,
    })
}

fn parse_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("invalid URL {s:?}: scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {s:?}: a host is required"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "invalid URL {s:?}: credentials in the URL are not allowed; configure them as upstream auth"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!("invalid URL {s:?}: a fragment is not allowed"));
    }
    Ok(url)
}
