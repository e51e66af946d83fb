//! The 2026-07-28 ("modern") request envelope: which era a request speaks, and the checks a
//! modern request must pass before anything is done with it.
//!
//! One endpoint serves both eras, selected per request as the spec's backward-compatibility
//! rules say ([`select`]): a request whose `params._meta` carries
//! `io.modelcontextprotocol/protocolVersion` is modern, and so is `server/discover` (the
//! modern probe) and a request whose `MCP-Protocol-Version` header names a modern revision;
//! everything else (`initialize` first) is the handshake era.
//!
//! A modern request has no session to vouch for it, so its metadata headers are required
//! and must say what the body says ([`check`], the spec's validation ladder in its order:
//! headers first, so a client that disagrees with itself is told so, then the revision).
//! Pure functions over the parsed body and the header map, unit-tested here.

use std::borrow::Cow;

use super::capabilities::ClientCaps;
use super::headers::{decode, name, single, Checked};
use super::jsonrpc::RpcCall;
use super::McpMethod;
use crate::error::{clip, Reject};

/// The `_meta` key of a modern request's protocol revision.
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
/// The `_meta` key of a modern request's log level.
pub const LOG_LEVEL_META: &str = "io.modelcontextprotocol/logLevel";
/// The `_meta` key of a modern request's client capabilities.
pub const CLIENT_CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";

/// The era one request speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// Handshake era: `initialize` opens a session, every other message needs it.
    Legacy,
    /// Stateless: the revision from `_meta` (`None`: a `server/discover` or a header-only
    /// claim without one).
    Modern { version: Option<String> },
}

/// What a request's `params._meta` says of the 2026-07-28 envelope, read in one pass over
/// it (every modern request pays this; three separate reads of the revision, the log level
/// and the capabilities cost about three times as much).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Meta<'b> {
    /// `io.modelcontextprotocol/protocolVersion`: the request's revision.
    pub version: Option<Cow<'b, str>>,
    /// `io.modelcontextprotocol/logLevel` when it is a string (the level is checked by whoever
    /// applies it).
    pub log_level: Option<Cow<'b, str>>,
    /// `io.modelcontextprotocol/clientCapabilities`, as far as the gateway relays them.
    pub caps: ClientCaps,
}

/// Read the envelope in `params._meta` of a body already through the strict parse (`call`
/// is its parse, which found `_meta`). No `_meta`, or one that is not an object: nothing
/// (the handshake era). 400 / -32602 when the revision is not a string (a shape defect, not
/// a revision the client asked for); a log level or capabilities of the wrong shape count as
/// absent.
pub fn read_meta<'b>(body: &'b [u8], call: &RpcCall) -> Result<Meta<'b>, Reject> {
    // The strict pass located the members (`call.envelope`): nothing is parsed again but
    // the strings read.
    let spans = &call.envelope;
    let string = |r: &Option<std::ops::Range<usize>>| {
        r.clone().and_then(|r| super::jsonrpc::string_at(body, r))
    };
    let version = match spans.version.clone() {
        None => None,
        Some(r) => Some(super::jsonrpc::string_at(body, r).ok_or_else(|| {
            Reject::InvalidParams(format!(
                "params._meta[{PROTOCOL_VERSION_META:?}] must be a string"
            ))
        })?),
    };
    Ok(Meta {
        version,
        log_level: string(&spans.log_level),
        caps: spans
            .caps
            .clone()
            .and_then(|r| body.get(r))
            .and_then(|c| std::str::from_utf8(c).ok())
            .map_or_else(ClientCaps::default, ClientCaps::of_json),
    })
}

/// The era of a request: modern when its `_meta` names a revision, when it is
/// `server/discover`, or when its `MCP-Protocol-Version` header names a modern revision;
/// the handshake era otherwise.
pub fn select(
    method: McpMethod,
    envelope: Option<Cow<'_, str>>,
    version_header: Option<&[u8]>,
) -> Era {
    let header_modern = version_header
        .and_then(|h| std::str::from_utf8(h).ok())
        .is_some_and(super::revision::is_modern);
    match envelope {
        Some(v) => Era::Modern {
            version: Some(v.into_owned()),
        },
        None if method == McpMethod::ServerDiscover || header_modern => {
            Era::Modern { version: None }
        }
        None => Era::Legacy,
    }
}

/// The ladder a modern request with revision `version` passes: `MCP-Protocol-Version`,
/// `Mcp-Method` and (for `tools/call`, whose body `name` is `name`) `Mcp-Name` present,
/// each once, and equal to the body (400 / -32020 otherwise); then `version` must be one the
/// gateway speaks (400 / -32022 with the supported list).
pub fn check(
    headers: &http::HeaderMap,
    checked: Checked,
    method: &str,
    name: Option<&str>,
    version: &str,
) -> Result<(), Reject> {
    let values = |h: &http::HeaderName| headers.get_all(h).into_iter().map(|v| v.as_bytes());
    let sent = single("MCP-Protocol-Version", values(&name::MCP_PROTOCOL_VERSION))?;
    if sent != Some(version.as_bytes()) {
        return Err(mismatch("MCP-Protocol-Version", sent, version));
    }
    // What `headers::check_request` already found equal (`checked`) is not read again.
    if !checked.method {
        let sent = single("Mcp-Method", values(&name::MCP_METHOD))?;
        if sent.and_then(decode).as_deref() != Some(method) {
            return Err(mismatch("Mcp-Method", sent, method));
        }
    }
    if let Some(name) = name.filter(|_| !checked.tool_name) {
        let sent = single("Mcp-Name", values(&name::MCP_NAME))?;
        if sent.and_then(decode).as_deref() != Some(name) {
            return Err(mismatch("Mcp-Name", sent, name));
        }
    }
    if !super::revision::is_modern(version) {
        return Err(Reject::UnsupportedRevision {
            requested: clip(version),
        });
    }
    Ok(())
}

fn mismatch(header: &'static str, sent: Option<&[u8]>, body: &str) -> Reject {
    let sent = sent.map_or(Cow::Borrowed("(absent)"), String::from_utf8_lossy);
    Reject::HeaderMismatch {
        header,
        header_value: clip(&sent),
        body_value: clip(body),
    }
}

/// The members a 2026-07-28 list result adds after its own (leading comma included): the
/// cache hints (`ttlMs`, and `cacheScope: "private"`: lists are filtered per caller),
/// `resultType`, and the server's `serverInfo` in `_meta`. Built once per catalog (it depends
/// only on the configuration), not per list request.
pub fn list_tail(ttl_ms: u64, server: &str) -> Vec<u8> {
    let meta = serde_json::json!({
        "io.modelcontextprotocol/serverInfo": {
            "name": server,
            "version": env!("CARGO_PKG_VERSION"),
        }
    });
    format!(r#","ttlMs":{ttl_ms},"cacheScope":"private","resultType":"complete","_meta":{meta}"#)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{HEADER_MISMATCH, INVALID_PARAMS, UNSUPPORTED_PROTOCOL_VERSION};

    fn body(meta: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{meta}}}}}"#)
    }

    #[test]
    fn the_revision_is_read_from_meta() {
        let v = |b: &str| {
            let call = crate::mcp::jsonrpc::parse(b.as_bytes(), 64).map_err(|f| f.reject)?;
            read_meta(b.as_bytes(), &call).map(|m| m.version.map(Cow::into_owned))
        };
        assert_eq!(
            v(&body(
                r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#
            )),
            Ok(Some("2026-07-28".into()))
        );
        // Escaped key: the same key for every JSON reader.
        assert_eq!(
            v(&body(
                r#"{"io.modelcontextprotocol/protocol\u0056ersion":"x"}"#
            )),
            Ok(Some("x".into()))
        );
        assert_eq!(v(&body(r#"{"progressToken":1}"#)), Ok(None));
        assert_eq!(
            v(
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#
            ),
            Ok(None),
            "initialize's own protocolVersion is not the envelope"
        );
        let e = v(&body(r#"{"io.modelcontextprotocol/protocolVersion":7}"#)).unwrap_err();
        assert_eq!((e.http_status(), e.jsonrpc_code()), (400, INVALID_PARAMS));
    }

    #[test]
    fn the_era_is_selected_per_request() {
        use McpMethod::*;
        assert_eq!(select(Initialize, None, None), Era::Legacy);
        assert_eq!(select(ToolsList, None, Some(b"2025-06-18")), Era::Legacy);
        assert_eq!(
            select(ToolsList, Some("2026-07-28".into()), None),
            Era::Modern {
                version: Some("2026-07-28".into())
            }
        );
        assert_eq!(
            select(ServerDiscover, None, None),
            Era::Modern { version: None }
        );
        assert_eq!(
            select(ToolsCall, None, Some(b"2026-07-28")),
            Era::Modern { version: None }
        );
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_modern_request_needs_headers_that_match_its_body() {
        let ok = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ]);
        assert_eq!(
            check(
                &ok,
                Checked::default(),
                "tools/call",
                Some("echo"),
                "2026-07-28"
            ),
            Ok(())
        );
        let code = |h: &http::HeaderMap, name: Option<&str>, v: &str| {
            let e = check(h, Checked::default(), "tools/call", name, v).unwrap_err();
            (e.http_status(), e.jsonrpc_code(), e.to_string())
        };
        // Each header absent or different: 400 / -32020 naming it.
        for (drop, named) in [
            ("mcp-protocol-version", "MCP-Protocol-Version"),
            ("mcp-method", "Mcp-Method"),
            ("mcp-name", "Mcp-Name"),
        ] {
            let mut h = ok.clone();
            h.remove(drop);
            let (s, c, m) = code(&h, Some("echo"), "2026-07-28");
            assert_eq!((s, c), (400, HEADER_MISMATCH), "{drop}");
            assert!(m.contains(named) && m.contains("(absent)"), "{m}");
        }
        let (_, c, m) = code(&ok, Some("delete"), "2026-07-28");
        assert_eq!(c, HEADER_MISMATCH);
        assert!(m.contains("Mcp-Name"), "{m}");
        // Headers are checked before the revision (the client disagreeing with itself is
        // told so first); a matching unknown revision is -32022.
        let (_, c, _) = code(&ok, Some("echo"), "2099-01-01");
        assert_eq!(c, HEADER_MISMATCH);
        let h = headers(&[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ]);
        let (s, c, _) = code(&h, Some("echo"), "2099-01-01");
        assert_eq!((s, c), (400, UNSUPPORTED_PROTOCOL_VERSION));
        // A method without a name needs no Mcp-Name.
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
        ]);
        assert_eq!(
            check(&h, Checked::default(), "tools/list", None, "2026-07-28"),
            Ok(())
        );
    }
}
