//! Header checks every MCP request passes before its body is read: the DNS-rebinding guard
//! (`Host`, `Origin`) and the streamable-HTTP `Content-Type` / `Accept` rules.
//!
//! Plain functions over header values so they are unit-tested without sockets. They run in
//! `request_filter`, in the order the proxy calls them, and return the [`Reject`] to send.

use crate::config::HostPolicy;
use crate::error::{clip, Reject};

/// The DNS-rebinding guard for a request to a listener bound to `address` (MCP listeners and
/// the admin listener alike): its host, taken from the request target's authority when it
/// has one (absolute form or HTTP/2 `:authority`, which wins over `Host`, RFC 9112 §3.2.2),
/// else from `Host`; then a browser `Origin`. A loopback listener also accepts its own
/// loopback origins (see [`check_origin`]).
pub fn check_request(
    authority: Option<&str>,
    host: Option<&str>,
    origin: Option<&str>,
    hosts: &HostPolicy,
    origins: &[String],
    address: std::net::SocketAddr,
) -> Result<(), Reject> {
    check_host(authority.or(host), hosts)?;
    let own_port = address.ip().is_loopback().then_some(address.port());
    check_origin(origin, origins, own_port)
}

/// Check the `Host` (or HTTP/2 `:authority`) value against the listener's policy.
pub fn check_host(host: Option<&str>, policy: &HostPolicy) -> Result<(), Reject> {
    let HostPolicy::List(allowed) = policy else {
        return Ok(());
    };
    let Some(host) = host else {
        return Err(Reject::HostNotAllowed {
            host: "(missing Host header)".into(),
        });
    };
    let lower = host.to_ascii_lowercase();
    if !well_formed(&lower) {
        return Err(Reject::HostNotAllowed { host: clip(host) });
    }
    let name = host_name(&lower);
    let ok = allowed
        .iter()
        .any(|a| if has_port(a) { *a == lower } else { a == name });
    if ok {
        Ok(())
    } else {
        Err(Reject::HostNotAllowed { host: clip(host) })
    }
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`, nothing else.
fn well_formed(host: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((_, "")) => true,
            Some((_, tail)) => tail.strip_prefix(':').is_some_and(port_ok),
            None => false,
        };
    }
    match host.split_once(':') {
        None => !host.is_empty(),
        Some((name, port)) => !name.is_empty() && port_ok(port),
    }
}

/// `host` without its port; keeps IPv6 brackets.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn has_port(entry: &str) -> bool {
    host_name(entry).len() != entry.len()
}

/// Check a browser `Origin`. No header means a non-browser client, which is accepted.
///
/// `own_loopback_port` is the listener's port when it is bound to a loopback address: then
/// the listener's own origins (`http://localhost:PORT`, `http://127.0.0.1:PORT`,
/// `http://[::1]:PORT`) are accepted besides `allowed`. That origin is the gateway itself,
/// which serves no pages, and a rebinding attack arrives with the attacker's host name in
/// `Origin`, never a loopback one. Another port on loopback is another origin (another local
/// program's pages) and stays refused unless listed.
pub fn check_origin(
    origin: Option<&str>,
    allowed: &[String],
    own_loopback_port: Option<u16>,
) -> Result<(), Reject> {
    let Some(origin) = origin else {
        return Ok(());
    };
    let lower = origin.trim_end_matches('/').to_ascii_lowercase();
    if allowed.contains(&lower) || own_loopback_port.is_some_and(|p| is_loopback_origin(&lower, p))
    {
        Ok(())
    } else {
        Err(Reject::OriginNotAllowed {
            origin: clip(origin),
        })
    }
}

/// `http://` + a loopback name + `port` (explicit, or 80 when omitted). `origin` is
/// lower-cased without a trailing slash.
fn is_loopback_origin(origin: &str, port: u16) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    if !well_formed(authority) {
        return false;
    }
    let name = host_name(authority);
    if !matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        return false;
    }
    match authority[name.len()..].strip_prefix(':') {
        None => port == 80,
        Some(p) => p.parse::<u16>() == Ok(port),
    }
}

/// POST: the body must be JSON and the client must accept both JSON and SSE answers
/// (streamable HTTP lets the server choose either).
pub fn check_post_headers(content_type: Option<&str>, accept: Option<&str>) -> Result<(), Reject> {
    let ct = content_type.unwrap_or("");
    if !media_type(ct).eq_ignore_ascii_case("application/json") || !utf8_charset(ct) {
        return Err(Reject::UnsupportedContentType {
            got: if ct.is_empty() {
                "(none)".into()
            } else {
                clip(ct)
            },
        });
    }
    let accept = accept.unwrap_or("");
    // What MCP clients send, checked without splitting (the general parse costs ~2,500
    // instructions a request).
    let usual = matches!(
        accept,
        "application/json, text/event-stream" | "text/event-stream, application/json"
    );
    if !(usual
        || (accepts(accept, "application", "json") && accepts(accept, "text", "event-stream")))
    {
        return Err(Reject::NotAcceptable(
            "Accept must list both application/json and text/event-stream (MCP streamable HTTP)",
        ));
    }
    Ok(())
}

/// GET and DELETE requests carry no body (streamable HTTP gives them none): one that declares
/// a body is refused, since the gateway reads and checks bodies of POSTs only.
pub fn check_no_body(content_length: Option<&str>, transfer_encoding: bool) -> Result<(), Reject> {
    if transfer_encoding || content_length.is_some_and(|n| n.trim() != "0") {
        return Err(Reject::InvalidRequest(
            "GET and DELETE requests carry no body in MCP streamable HTTP; send it without one"
                .into(),
        ));
    }
    Ok(())
}

/// GET opens the server-to-client SSE stream, so the client must accept `text/event-stream`.
pub fn check_get_headers(accept: Option<&str>) -> Result<(), Reject> {
    if accepts(accept.unwrap_or(""), "text", "event-stream") {
        Ok(())
    } else {
        Err(Reject::NotAcceptable(
            "Accept must list text/event-stream to open the server-to-client stream",
        ))
    }
}

/// The `charset` parameter, if any, names UTF-8, once. JSON is UTF-8 (RFC 8259 §8.1), and
/// the body is checked as UTF-8; an upstream that honours `charset=utf-7` (Node's raw-body
/// and iconv-lite do) would decode other keys than the gateway checked (`"n+AGE-me"` becomes
/// `"name"`).
fn utf8_charset(content_type: &str) -> bool {
    let mut charsets = content_type.split(';').skip(1).filter_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    });
    match (charsets.next(), charsets.next()) {
        (None, _) => true,
        (Some(v), None) => v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8"),
        (Some(_), Some(_)) => false,
    }
}

/// A POST body must reach the upstream as the bytes the gateway checked: one `Content-Type`
/// (two could be read either way) and no `Content-Encoding` (a compressed body cannot be
/// checked, and some servers inflate encodings, such as br, that have no magic bytes).
pub fn check_body_representation<'a>(
    content_types: usize,
    mut content_encodings: impl Iterator<Item = &'a str>,
) -> Result<(), Reject> {
    if content_types > 1 {
        return Err(Reject::UnsupportedContentType {
            got: "(more than one Content-Type header)".into(),
        });
    }
    match content_encodings.find(|e| !matches!(e.trim(), "" | "identity" | "IDENTITY")) {
        None => Ok(()),
        Some(e) => Err(Reject::UnsupportedContentEncoding { got: clip(e) }),
    }
}

fn media_type(v: &str) -> &str {
    v.split(';').next().unwrap_or("").trim()
}

fn accepts(accept: &str, ty: &str, sub: &str) -> bool {
    accept.split(',').any(|range| {
        let m = media_type(range);
        let (t, s) = m.split_once('/').unwrap_or((m, ""));
        (t == "*" && s == "*")
            || (t.eq_ignore_ascii_case(ty) && (s == "*" || s.eq_ignore_ascii_case(sub)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> HostPolicy {
        HostPolicy::List(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
    }

    #[test]
    fn loopback_names_pass_on_any_port() {
        for h in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:1",
            "[::1]:443",
            "[::1]",
        ] {
            assert!(check_host(Some(h), &loopback()).is_ok(), "{h}");
        }
    }

    #[test]
    fn foreign_or_missing_host_is_rejected_with_421() {
        for h in [
            Some("evil.example.com"),
            Some("evil.example.com:8080"),
            Some("localhost.evil:1"),
            Some("[::1]evil"),
            Some("[::1]:80x"),
            Some("localhost:"),
            Some("localhost:1:2"),
            None,
        ] {
            let e = check_host(h, &loopback()).unwrap_err();
            assert_eq!(e.http_status(), 421, "{h:?}");
        }
    }

    #[test]
    fn entries_with_a_port_match_only_that_port() {
        let p = HostPolicy::List(vec!["mcp.example.com:8443".into()]);
        assert!(check_host(Some("mcp.example.com:8443"), &p).is_ok());
        assert!(check_host(Some("mcp.example.com:80"), &p).is_err());
        assert!(check_host(Some("mcp.example.com"), &p).is_err());
        assert!(check_host(Some("anything"), &HostPolicy::Any).is_ok());
    }

    #[test]
    fn origin_absent_passes_listed_passes_other_is_403() {
        let allowed = vec!["http://localhost:6274".to_string()];
        assert!(check_origin(None, &allowed, None).is_ok());
        assert!(check_origin(Some("http://LOCALHOST:6274"), &allowed, None).is_ok());
        let e = check_origin(Some("http://evil.example.com"), &allowed, None).unwrap_err();
        assert_eq!(e.http_status(), 403);
        assert!(check_origin(Some("null"), &allowed, None).is_err());
    }

    #[test]
    fn a_loopback_listener_accepts_its_own_loopback_origins() {
        for o in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://LocalHost:8080/",
            "http://[::1]:8080",
        ] {
            assert!(check_origin(Some(o), &[], Some(8080)).is_ok(), "{o}");
        }
        // Port 80 is the default of http:// origins.
        assert!(check_origin(Some("http://localhost"), &[], Some(80)).is_ok());
        // Configured origins still apply next to the own ones.
        let allowed = vec!["http://localhost:6274".to_string()];
        assert!(check_origin(Some("http://localhost:6274"), &allowed, Some(8080)).is_ok());
    }

    #[test]
    fn foreign_origins_stay_refused_on_a_loopback_listener() {
        for o in [
            "http://evil.example.com",
            "http://evil.example.com:8080",
            "http://localhost.evil.example.com:8080",
            "http://127.0.0.1:8081",  // another local program's pages
            "http://localhost",       // port 80, not ours
            "https://localhost:8080", // another scheme is another origin
            "http://127.0.0.2:8080",
            "http://[::1]evil:8080",
            "http://localhost:8080@evil.example.com",
            "http://localhost:8080/path",
            "null",
        ] {
            let e = check_origin(Some(o), &[], Some(8080)).unwrap_err();
            assert_eq!(e.http_status(), 403, "{o}");
        }
        // A listener that is not on loopback has no own origin accepted by default.
        assert!(check_origin(Some("http://127.0.0.1:8080"), &[], None).is_err());
    }

    #[test]
    fn post_needs_json_body_and_both_accept_types() {
        let both = Some("application/json, text/event-stream");
        assert!(check_post_headers(Some("application/json"), both).is_ok());
        assert!(check_post_headers(Some("Application/JSON; charset=utf-8"), both).is_ok());
        assert!(check_post_headers(Some("application/json;charset=\"UTF-8\""), both).is_ok());
        for bad in [
            "application/json; charset=utf-7",
            "application/json; charset=utf-16",
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf-8; charset=utf-7",
        ] {
            let e = check_post_headers(Some(bad), both).unwrap_err();
            assert_eq!(e.http_status(), 400, "{bad}");
            assert!(e.to_string().contains("utf-8"), "{e}");
        }
        assert!(check_no_body(None, false).is_ok());
        assert!(check_no_body(Some("0"), false).is_ok());
        assert!(check_no_body(Some("12"), false).is_err());
        assert!(check_no_body(None, true).is_err());
        assert!(check_body_representation(1, std::iter::empty()).is_ok());
        assert!(check_body_representation(1, ["identity"].into_iter()).is_ok());
        assert!(check_body_representation(2, std::iter::empty()).is_err());
        for enc in [&["gzip"][..], &["br"], &["identity", "deflate"]] {
            let e = check_body_representation(1, enc.iter().copied()).unwrap_err();
            assert_eq!(e.http_status(), 415, "{enc:?}");
        }
        assert!(check_post_headers(Some("application/json"), Some("*/*")).is_ok());
        assert_eq!(
            check_post_headers(Some("text/plain"), both)
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(
            check_post_headers(None, both).unwrap_err().http_status(),
            400
        );
        for a in [
            None,
            Some("application/json"),
            Some("text/event-stream"),
            Some("text/html"),
        ] {
            assert_eq!(
                check_post_headers(Some("application/json"), a)
                    .unwrap_err()
                    .http_status(),
                406,
                "{a:?}"
            );
        }
    }

    #[test]
    fn get_needs_event_stream() {
        assert!(check_get_headers(Some("text/event-stream")).is_ok());
        assert!(check_get_headers(Some("*/*")).is_ok());
        assert_eq!(
            check_get_headers(Some("application/json"))
                .unwrap_err()
                .http_status(),
            406
        );
        assert_eq!(check_get_headers(None).unwrap_err().http_status(), 406);
    }
}
