//! Body edits a virtual server makes to a `tools/call`, done by splicing so that every byte
//! the gateway does not set is the client's: numbers are never rounded through an `f64`,
//! key order is kept, and no parser can find a value the gateway did not check.
//!
//! [`super::jsonrpc::replace_tool_name`] restores the upstream's tool name; [`pin_arguments`]
//! adds the arguments the gateway pins; [`strip_envelope`] takes a 2026-07-28 client's
//! per-request envelope out of `_meta` for the handshake-era upstream session the gateway
//! holds for it. Both take a call from [`super::jsonrpc::parse`], whose
//! strict pass has refused duplicate keys, so each edited value is the only one there is.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::jsonrpc::{self, RpcCall};
use super::strict;
use crate::error::Reject;

/// Insert `pinned` at the start of `params.arguments` (creating `arguments` when absent).
///
/// Runs in `request_filter` on a virtual server's `tools/call` for a tool with pinned
/// arguments, after the tool name is restored. `Err`: [`Reject::PinnedArgument`] when the
/// client sent a pinned argument (compared as the strict pass compares keys: after unescaping
/// and ignoring case, since a case-insensitive parser would read the client's value), or
/// [`Reject::InvalidParams`] when `arguments` is not an object. The result is parsed again
/// (strictly) so its spans point into the new body.
pub fn pin_arguments(
    body: &[u8],
    pinned: &serde_json::Map<String, serde_json::Value>,
    exposed: &str,
    max_depth: usize,
) -> Result<(Bytes, RpcCall), Reject> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        params: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct Params<'a> {
        #[serde(default, borrow)]
        arguments: Option<&'a RawValue>,
    }
    let bad = |e: serde_json::Error| Reject::InvalidParams(format!("tools/call params: {e}"));
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(bad)?;
    let params: Params<'_> = serde_json::from_str(env.params.get()).map_err(bad)?;

    let mut members = Vec::with_capacity(64);
    for (i, (k, v)) in pinned.iter().enumerate() {
        if i > 0 {
            members.push(b',');
        }
        serde_json::to_writer(&mut members, k).map_err(|e| Reject::Internal(e.to_string()))?;
        members.push(b':');
        serde_json::to_writer(&mut members, v).map_err(|e| Reject::Internal(e.to_string()))?;
    }

    let (at, insert) = match params.arguments {
        Some(args) => {
            let raw = args.get();
            if !raw.starts_with('{') {
                return Err(Reject::InvalidParams(
                    "tools/call arguments must be an object".into(),
                ));
            }
            let sent: HashMap<Cow<'_, str>, serde::de::IgnoredAny> =
                serde_json::from_str(raw).map_err(bad)?;
            for k in pinned.keys() {
                if sent
                    .keys()
                    .any(|c| strict::same_key(c.as_bytes(), k.as_bytes()))
                {
                    return Err(Reject::PinnedArgument {
                        tool: exposed.to_string(),
                        argument: k.clone(),
                    });
                }
            }
            let empty = sent.is_empty();
            let mut ins = members;
            if !empty && !pinned.is_empty() {
                ins.push(b',');
            }
            (jsonrpc::span(body, raw).start + 1, ins)
        }
        None => {
            let raw = env.params.get();
            let empty = raw
                .get(1..)
                .unwrap_or_default()
                .trim_start()
                .starts_with('}');
            let mut ins = b"\"arguments\":{".to_vec();
            ins.extend_from_slice(&members);
            ins.push(b'}');
            if !empty {
                ins.push(b',');
            }
            (jsonrpc::span(body, raw).start + 1, ins)
        }
    };
    let mut out = Vec::with_capacity(body.len() + insert.len());
    out.extend_from_slice(body.get(..at).unwrap_or_default());
    out.extend_from_slice(&insert);
    out.extend_from_slice(body.get(at..).unwrap_or_default());
    let call = jsonrpc::parse(&out, max_depth).map_err(|f| f.reject)?;
    Ok((Bytes::from(out), call))
}

/// The `_meta` keys of the 2026-07-28 per-request envelope. They describe the client to a
/// stateless server; the gateway's handshake-era upstream session already said who speaks
/// (its `initialize`), and an upstream that reads them checks them against the session's
/// `MCP-Protocol-Version` (rmcp 3.11 answers -32020 when they differ).
pub const ENVELOPE_KEYS: [&str; 4] = [
    super::envelope::PROTOCOL_VERSION_META,
    super::envelope::CLIENT_CAPABILITIES_META,
    "io.modelcontextprotocol/clientInfo",
    super::envelope::LOG_LEVEL_META,
];

/// Remove the [`ENVELOPE_KEYS`] from `params._meta` of a message. Only `_meta` is rebuilt
/// (its other members in their order, each value's bytes as sent); every other byte is the
/// client's. `None` when there is nothing to remove. `call` is `body`'s parse; its spans
/// (id, method, tool name: none inside `_meta`) are moved to the new body, with no second
/// parse (the new body is the strictly parsed one minus some members of one object).
pub fn strip_envelope(body: &[u8], call: &RpcCall) -> Result<Option<(Bytes, RpcCall)>, Reject> {
    // `_meta` was found by the parse that made `call`: no second pass over the body. A body
    // whose `_meta` is not an object has no envelope to strip.
    let bad = |e: serde_json::Error| Reject::InvalidParams(format!("params._meta: {e}"));
    let Some(meta) = call.meta.clone().and_then(|r| body.get(r)) else {
        return Ok(None);
    };
    let Ok(meta) = std::str::from_utf8(meta) else {
        return Ok(None);
    };
    if !meta.starts_with('{') {
        return Ok(None);
    }
    let members: Members<'_> = serde_json::from_str(meta).map_err(bad)?;
    let keep = |k: &str| !ENVELOPE_KEYS.contains(&k);
    if members.0.iter().all(|(k, _)| keep(k)) {
        return Ok(None);
    }
    let mut rebuilt = Vec::with_capacity(meta.len());
    rebuilt.push(b'{');
    for (i, (k, v)) in members.0.iter().filter(|(k, _)| keep(k)).enumerate() {
        if i > 0 {
            rebuilt.push(b',');
        }
        serde_json::to_writer(&mut rebuilt, k).map_err(|e| Reject::Internal(e.to_string()))?;
        rebuilt.push(b':');
        rebuilt.extend_from_slice(v.get().as_bytes());
    }
    rebuilt.push(b'}');
    let at = jsonrpc::span(body, meta);
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(body.get(..at.start).unwrap_or_default());
    out.extend_from_slice(&rebuilt);
    out.extend_from_slice(body.get(at.end..).unwrap_or_default());
    // Spans after `_meta` move by the change in its length (either way: re-encoded kept
    // keys may be shorter or, in principle, longer than sent). No underflow: such a span
    // starts at or after `at.end`, which is at least `old`.
    let (old, new) = (at.len(), rebuilt.len());
    let shift = |r: std::ops::Range<usize>| {
        if r.start >= at.end {
            (r.start + new - old)..(r.end + new - old)
        } else {
            r
        }
    };
    let mut moved = call.shifted(shift);
    moved.meta = Some(at.start..at.start + new);
    // Every member the parse located in `_meta` is an envelope key, removed.
    moved.envelope = jsonrpc::MetaSpans::default();
    Ok(Some((Bytes::from(out), moved)))
}

/// A JSON object's members in document order, values as their raw bytes.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The string `params.<key>` of `body` (decoded) and the span of its raw JSON, for a
/// virtual server renaming a `prompts/get` (`name`) or `resources/read` (`uri`). `None`
/// when absent or not a string. The body passed the strict parse (no duplicate keys), so
/// the member found is the one every upstream parser reads.
pub fn string_param(body: &[u8], key: &str) -> Option<(String, std::ops::Range<usize>)> {
    string_at(body, &[key])
}

/// The string at `params.<path[0]>.<path[1]>…` of `body` and its span, as [`string_param`]
/// (`completion/complete` names its prompt at `params.ref.name`).
pub fn string_at(body: &[u8], path: &[&str]) -> Option<(String, std::ops::Range<usize>)> {
    type Members<'a> = std::collections::BTreeMap<String, &'a RawValue>;
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(default, borrow)]
        params: Option<Members<'a>>,
    }
    let env: Envelope<'_> = serde_json::from_slice(body).ok()?;
    let (last, inner) = path.split_last()?;
    let mut members = env.params?;
    for key in inner {
        let raw = *members.get(*key)?;
        members = serde_json::from_str::<Members<'_>>(raw.get()).ok()?;
    }
    let raw = *members.get(*last)?;
    let text: String = serde_json::from_str(raw.get()).ok()?;
    Some((text, crate::mcp::jsonrpc::span(body, raw.get())))
}

/// `body` with the raw JSON at `span` (a string member, see [`string_param`]) replaced by
/// `value`; `call`'s spans moved to the new body. Every other byte is the client's.
pub fn replace_string_param(
    body: &[u8],
    call: &RpcCall,
    span: std::ops::Range<usize>,
    value: &str,
) -> Result<(Bytes, RpcCall), Reject> {
    // The splice of `replace_tool_name`, on this span instead of a tool name's.
    let at = RpcCall {
        tool: Some(span),
        ..call.clone()
    };
    let (out, mut moved) = crate::mcp::jsonrpc::replace_tool_name(body, &at, value)?;
    moved.tool = None;
    Ok((out, moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pin(body: &str, pinned: serde_json::Value) -> Result<String, Reject> {
        let map = pinned.as_object().cloned().unwrap_or_default();
        pin_arguments(body.as_bytes(), &map, "crm_sum", 64)
            .map(|(b, _)| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn pinned_members_are_spliced_and_every_other_byte_kept() {
        let out = pin(
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/call","params":{"name":"add","arguments":{"a":1e400,"z":0.10000000000000000000001}}}"#,
            json!({"b": 10, "tenant": "acme"}),
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/call","params":{"name":"add","arguments":{"b":10,"tenant":"acme","a":1e400,"z":0.10000000000000000000001}}}"#
        );
        // Empty arguments, and none at all (with and without other params).
        let out = pin(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments": { } }}"#,
            json!({"b": 10}),
        )
        .unwrap();
        assert!(out.contains(r#""arguments": {"b":10 } }"#), "{out}");
        let out = pin(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}"#,
            json!({"b": 10}),
        )
        .unwrap();
        assert!(
            out.contains(r#""params":{"arguments":{"b":10},"name":"add"}"#),
            "{out}"
        );
    }

    #[test]
    fn the_envelope_leaves_meta_and_every_other_byte_stays() {
        let strip = |b: &str| {
            let call = jsonrpc::parse(b.as_bytes(), 64).unwrap();
            strip_envelope(b.as_bytes(), &call)
                .unwrap()
                .map(|(b, moved)| {
                    // The moved spans are what a fresh parse finds.
                    assert_eq!(moved, jsonrpc::parse(&b, 64).unwrap());
                    String::from_utf8(b.to_vec()).unwrap()
                })
        };
        let out = strip(
            r#"{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":12345678901234567890123,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/client\u0049nfo":{"name":"c"},"x":{"y":0.1000000000000000000001}},"arguments":{"a":1}}}"#,
        );
        assert_eq!(
            out.as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":12345678901234567890123,"x":{"y":0.1000000000000000000001}},"arguments":{"a":1}}}"#
            )
        );
        let out = strip(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        assert_eq!(
            out.as_deref(),
            Some(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{}}}"#)
        );
        // Nothing to remove: no rewrite at all.
        for b in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","_meta":{"progressToken":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ] {
            assert_eq!(strip(b), None, "{b}");
        }
    }

    #[test]
    fn a_client_value_for_a_pinned_argument_is_refused_in_any_case() {
        for args in [r#"{"b":1}"#, r#"{"B":1}"#, r#"{"\u0062":1}"#] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"add","arguments":{args}}}}}"#
            );
            let e = pin(&body, json!({"b": 10})).unwrap_err();
            assert!(matches!(e, Reject::PinnedArgument { .. }), "{args}: {e}");
        }
        let e = pin(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":[1]}}"#,
            json!({"b": 10}),
        )
        .unwrap_err();
        assert!(matches!(e, Reject::InvalidParams(_)), "{e}");
    }

    #[test]
    fn a_string_param_is_replaced_in_place_and_spans_move() {
        let body = br#"{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"ui:\/\/mcpgw/a///x?q=1%20"},"id":7}"#;
        let call = jsonrpc::parse(body, 64).unwrap();
        let (uri, span) = string_param(body, "uri").unwrap();
        assert_eq!(uri, "ui://mcpgw/a///x?q=1%20", "escapes decoded");
        let (out, moved) = replace_string_param(body, &call, span, "ui://x?q=1%20").unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"ui://x?q=1%20"},"id":7}"#
        );
        assert_eq!(moved.id_json(&out), Some(&b"7"[..]));
        assert_eq!(moved.tool, None);
        assert_eq!(string_param(body, "name"), None);
        assert_eq!(string_param(br#"{"params":{"uri":3}}"#, "uri"), None);
        let nested = br#"{"params":{"ref":{"type":"ref/prompt","name":"a__b"}}}"#;
        let (name, span) = string_at(nested, &["ref", "name"]).unwrap();
        assert_eq!((name.as_str(), &nested[span]), ("a__b", &br#""a__b""#[..]));
        assert_eq!(string_at(nested, &["ref", "uri"]), None);
        assert_eq!(string_at(nested, &["name"]), None);
    }
}
