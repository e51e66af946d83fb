//! Body edits a virtual server makes to a `tools/call`, done by splicing so that every byte
//! the gateway does not set is the client's: numbers are never rounded through an `f64`,
//! key order is kept, and no parser can find a value the gateway did not check.
//!
//! [`super::jsonrpc::replace_tool_name`] restores the upstream's tool name; [`pin_arguments`]
//! adds the arguments the gateway pins. Both take a call from [`super::jsonrpc::parse`], whose
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
}
