//! MCP header names in one place, and the request metadata headers (`Mcp-Method`,
//! `Mcp-Name`, 2026-07-28 revision, SEP-2243) checked against the body and re-encoded when
//! the gateway renames a tool.
//!
//! The headers exist so that load balancers can route without reading the body, which opens
//! the classic split: something routes or authorizes on the header while the server executes
//! the body. The gateway decides on the body (after the strict pass), so a header that says
//! something else is refused before anything is forwarded, whatever revision the client
//! speaks: 400 + `-32020` (HeaderMismatch), as the spec asks of every server that reads the
//! body. Absent headers are not required here yet (legacy clients never send them); full
//! modern-revision handling is a later step.
//!
//! Values that are not header-safe travel as `=?base64?<standard base64 of UTF-8>?=`.

use std::borrow::Cow;

use base64::Engine as _;

use crate::error::{clip, Reject};

/// `Mcp-Session-Id`: a legacy-revision session (both directions).
pub const MCP_SESSION_ID: &str = "mcp-session-id";
/// `MCP-Protocol-Version`: the revision a request speaks.
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// `Mcp-Method`: the body's `method`.
pub const MCP_METHOD: &str = "mcp-method";
/// `Mcp-Name`: `params.name` of `tools/call` (and `prompts/get`), `params.uri` of
/// `resources/read`.
pub const MCP_NAME: &str = "mcp-name";

/// The same names as `HeaderName`s: a lookup by `&str` parses the name first, on every
/// request.
pub(crate) mod name {
    use http::HeaderName;
    pub(crate) const MCP_PROTOCOL_VERSION: HeaderName =
        HeaderName::from_static(super::MCP_PROTOCOL_VERSION);
    pub(crate) const MCP_METHOD: HeaderName = HeaderName::from_static(super::MCP_METHOD);
    pub(crate) const MCP_NAME: HeaderName = HeaderName::from_static(super::MCP_NAME);
}

const SENTINEL_START: &[u8] = b"=?base64?";
const SENTINEL_END: &[u8] = b"?=";

/// Decode a header value: the base64 sentinel form, or the value itself. `None` when it is
/// neither valid UTF-8 nor a valid sentinel (which then cannot match any body value).
pub fn decode(value: &[u8]) -> Option<Cow<'_, str>> {
    if let Some(inner) = value
        .strip_prefix(SENTINEL_START)
        .and_then(|v| v.strip_suffix(SENTINEL_END))
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(inner)
            .ok()?;
        return String::from_utf8(bytes).ok().map(Cow::Owned);
    }
    std::str::from_utf8(value).ok().map(Cow::Borrowed)
}

/// Encode a value for a header: as is when it is visible ASCII without leading or trailing
/// space (and not itself sentinel-shaped), else the base64 sentinel form.
pub fn encode(value: &str) -> String {
    let safe = !value.is_empty()
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.as_bytes().starts_with(SENTINEL_START);
    if safe {
        value.to_string()
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        format!("=?base64?{b64}?=")
    }
}

/// The one value of a metadata header, from all its occurrences: `Ok(None)` when absent, an
/// error when sent more than once (a proxy may forward the first, a server read the last, or
/// join them: there is no single meaning to check).
pub fn single<'a>(
    header: &'static str,
    mut values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<&'a [u8]>, Reject> {
    let first = values.next();
    match values.next() {
        None => Ok(first),
        Some(second) => Err(Reject::HeaderMismatch {
            header,
            header_value: format!(
                "{}, {}",
                clip(&String::from_utf8_lossy(first.unwrap_or_default())),
                clip(&String::from_utf8_lossy(second))
            ),
            body_value: "(sent more than once)".into(),
        }),
    }
}

/// Check a request's metadata headers against its parsed body: each sent at most once
/// ([`single`]), and saying what the body says ([`check`]).
///
/// Runs in `request_filter` right after the body is parsed. Requests without the headers
/// (every legacy client) cost two map lookups.
pub fn check_request(
    headers: &http::HeaderMap,
    call: &super::jsonrpc::RpcCall,
    body: &[u8],
) -> Result<Checked, Reject> {
    let values = |name: &http::HeaderName| headers.get_all(name).into_iter().map(|v| v.as_bytes());
    let method_header = single("Mcp-Method", values(&name::MCP_METHOD))?;
    let name_header = single("Mcp-Name", values(&name::MCP_NAME))?;
    if method_header.is_none() && name_header.is_none() {
        return Ok(Checked::default());
    }
    // Equal bytes, when neither side is encoded (a plain header, a body string without
    // escapes: almost every request), are equal values; anything else is decoded and
    // compared (and a mismatch explained) by `check`.
    let same = |header: Option<&[u8]>, span: Option<std::ops::Range<usize>>| {
        let plain = span.and_then(|s| super::jsonrpc::plain_at(body, s));
        header.is_none_or(|h| !h.starts_with(SENTINEL_START) && Some(h) == plain)
    };
    let tool_sent = name_header.is_some() && call.tool.is_some();
    if !(same(method_header, call.method_name.clone()) && same(name_header, call.tool.clone())) {
        let method = call.method_name(body).unwrap_or_default();
        let tool = call.tool_name(body);
        check(method_header, name_header, &method, tool.as_deref())?;
    }
    Ok(Checked {
        method: method_header.is_some(),
        tool_name: tool_sent,
    })
}

/// What [`check_request`] found equal to the body, so the 2026-07-28 ladder
/// ([`super::envelope::check`]) need not compare it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// `Mcp-Method` was sent once and names the body's method.
    pub method: bool,
    /// `Mcp-Name` was sent once and names the body's `tools/call` tool.
    pub tool_name: bool,
}

/// Check the metadata headers a request carries against its parsed body.
///
/// Runs in `request_filter` right after the body is parsed. `name` is the body's
/// `params.name` of a `tools/call` (`None` for other methods: their `Mcp-Name` is checked by
/// the upstream, since the gateway decides nothing on it). `Err` is a 400 / -32020 naming the
/// header and both values.
pub fn check(
    method_header: Option<&[u8]>,
    name_header: Option<&[u8]>,
    method: &str,
    name: Option<&str>,
) -> Result<(), Reject> {
    if let Some(h) = method_header {
        if decode(h).as_deref() != Some(method) {
            return Err(mismatch("Mcp-Method", h, method));
        }
    }
    if let (Some(h), Some(name)) = (name_header, name) {
        if decode(h).as_deref() != Some(name) {
            return Err(mismatch("Mcp-Name", h, name));
        }
    }
    Ok(())
}

fn mismatch(header: &'static str, got: &[u8], body: &str) -> Reject {
    Reject::HeaderMismatch {
        header,
        header_value: clip(&String::from_utf8_lossy(got)),
        body_value: clip(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HEADER_MISMATCH;

    #[test]
    fn sentinel_round_trip() {
        for v in [
            "echo",
            "crm__get_customer",
            "naïve tool",
            " pad",
            "=?base64?x?=",
            "",
        ] {
            assert_eq!(decode(encode(v).as_bytes()).as_deref(), Some(v), "{v}");
        }
        assert_eq!(encode("echo"), "echo");
        assert_eq!(encode("naïve"), "=?base64?bmHDr3Zl?=");
        assert_eq!(decode(b"=?base64?!!?="), None);
        assert_eq!(decode(b"\xff"), None);
    }

    #[test]
    fn a_repeated_header_has_no_single_meaning() {
        let one: [&[u8]; 1] = [b"a"];
        assert_eq!(single("Mcp-Name", one.into_iter()), Ok(Some(&b"a"[..])));
        assert_eq!(single("Mcp-Name", std::iter::empty()), Ok(None));
        let two: [&[u8]; 2] = [b"a", b"a"];
        let e = single("Mcp-Name", two.into_iter()).unwrap_err();
        assert_eq!(e.jsonrpc_code(), HEADER_MISMATCH);
        assert!(e.to_string().contains("more than once"), "{e}");
    }

    #[test]
    fn headers_must_match_the_body() {
        assert!(check(None, None, "tools/call", Some("a")).is_ok());
        assert!(check(Some(b"tools/call"), Some(b"a"), "tools/call", Some("a")).is_ok());
        assert!(check(
            Some(b"=?base64?dG9vbHMvY2FsbA==?="),
            None,
            "tools/call",
            None
        )
        .is_ok());
        // Other methods' Mcp-Name is the upstream's to check.
        assert!(check(None, Some(b"x"), "prompts/get", None).is_ok());
        let e = check(Some(b"tools/list"), None, "tools/call", Some("a")).unwrap_err();
        assert_eq!((e.http_status(), e.jsonrpc_code()), (400, HEADER_MISMATCH));
        assert!(e.to_string().contains("Mcp-Method"), "{e}");
        let e = check(
            Some(b"tools/call"),
            Some(b"delete"),
            "tools/call",
            Some("get"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("Mcp-Name"), "{e}");
        assert!(e.to_string().contains("\"delete\""), "{e}");
        // Case matters in values.
        assert!(check(Some(b"Tools/Call"), None, "tools/call", None).is_err());
    }
}
