//! Syntax of single values that several sections share: names, socket addresses, header
//! names, secret references, SHA-256 hashes and the URLs the gateway itself calls.
//!
//! Each check takes the value (and, where it builds the error, the field path) and says what
//! to write instead; the sections decide which field a value comes from.

use std::net::SocketAddr;

use super::ConfigError;

/// An upstream or virtual-server name: 1 to 32 of `A-Z a-z 0-9 _ -` (names appear in
/// metric labels, exposed tool names and tool patterns, which split at the first `.`).
pub(super) fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A listening address, `IP:PORT` (no host names: binding must not depend on DNS).
pub(super) fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("invalid address {s:?}: expected IP:PORT, e.g. 127.0.0.1:8080"))
}

/// An HTTP header name as configured (`api_key_header`, `strip_headers`, upstream `header`).
pub(super) fn header_name(s: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(s.as_bytes()).map_err(|_| format!("invalid header name {s:?}"))
}

/// Syntax check of a secret reference (`secret:NAME`, `env:NAME`, `file:PATH`). Whether it
/// resolves is checked at startup, not by `-t`.
pub(super) fn secret_ref(path: String, s: Option<String>) -> Result<Option<String>, ConfigError> {
    match s {
        None => Ok(None),
        Some(s) => {
            let ok = ["secret:", "env:", "file:"]
                .iter()
                .any(|p| s.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
            if ok {
                Ok(Some(s))
            } else {
                Err(ConfigError::new(
                    path,
                    "invalid secret reference: use secret:NAME, env:NAME or file:PATH (values are never inlined)",
                ))
            }
        }
    }
}

/// A key's configured SHA-256 (64 hex characters), as API keys and admin tokens give it.
pub(super) fn sha256_hex(at: &str, hex: &str) -> Result<[u8; 32], ConfigError> {
    let mut sha = [0u8; 32];
    let hex = hex.trim();
    let ok = hex.len() == 64
        && (0..32).all(|b| {
            hex.get(2 * b..2 * b + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .map(|v| sha[b] = v)
                .is_some()
        });
    if ok {
        Ok(sha)
    } else {
        Err(ConfigError::new(
            at,
            "expected 64 hex characters: the SHA-256 of the key (printf %s \"$KEY\" | sha256sum)",
        ))
    }
}

/// A URL the gateway itself calls for keys or tokens: no credentials in it, and https unless
/// the host is loopback (a JWKS or token endpoint over plain HTTP lets the network path mint
/// keys or read tokens).
pub(super) fn side_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("invalid URL {s:?}: expected http(s)://host/..."));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the URL are not allowed; use client_id / client_secret".into());
    }
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if u.scheme() != "https" && !loopback {
        return Err(format!(
            "{s:?} must use https (plain http only on loopback)"
        ));
    }
    Ok(u)
}
