//! `Mcp-Param-*` request headers (2026-07-28): a tool's `inputSchema` marks arguments with
//! `x-mcp-header: "<Token>"`, and a client mirrors each such argument's value in
//! `Mcp-Param-<Token>`, so that load balancers can route on it without reading the body.
//!
//! The headers are the classic split again (something routes on a header while the server
//! runs the body), and the gateway decides on the body. So for a 2026-07-28 `tools/call` on
//! a virtual server:
//!
//! - each header the client sent must say what the body says ([`check_sent`]: 400 / -32020
//!   otherwise, as the spec asks of any server that reads the body), and one for an
//!   argument the body does not carry is refused the same way;
//! - the headers that go upstream are never the client's: they are built from the decided
//!   arguments ([`build`]), the gateway's pinned ones included (a client cannot know those,
//!   and a 2026-07-28 upstream refuses a body value without its header). A header naming no
//!   annotated argument is dropped.
//!
//! Values render as the Python SDK does (`true`/`false`, numbers as written, strings as
//! they are), then [`super::headers::encode`] (the base64 sentinel where not header-safe).
//! Objects, arrays and `null` have no header. Rendered from the decided bytes themselves, so
//! a number is never rounded on its way into a header.

use std::borrow::Cow;
use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{clip, Reject};

/// Prefix of the headers, lower-case as `http` keeps names.
pub const PREFIX: &str = "mcp-param-";

/// Deepest nesting of `properties` searched for annotations (a loop guard; MCP tools nest a
/// level or two).
const MAX_DEPTH: usize = 8;

/// One annotated argument of a tool: where it sits in `arguments` and its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// Property names from `arguments` down to the value.
    pub path: Vec<String>,
    /// `mcp-param-<token>`.
    pub name: HeaderName,
    /// The gateway pins this argument: the client never sends it, nor its header.
    pub pinned: bool,
}

/// The annotated arguments of `input_schema` (the upstream's own schema), `pinned` naming
/// the top-level arguments the gateway sets. A token that makes no header name is skipped
/// (a conforming client drops such a tool).
pub fn annotated(
    input_schema: &Value,
    pinned: &serde_json::Map<String, Value>,
) -> Vec<ParamHeader> {
    let mut out = Vec::new();
    walk(input_schema, &mut Vec::new(), pinned, &mut out);
    out
}

fn walk(
    schema: &Value,
    path: &mut Vec<String>,
    pinned: &serde_json::Map<String, Value>,
    out: &mut Vec<ParamHeader>,
) {
    if path.len() >= MAX_DEPTH {
        return;
    }
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, prop) in props {
        path.push(key.clone());
        if let Some(token) = prop.get("x-mcp-header").and_then(Value::as_str) {
            let name = format!("{PREFIX}{}", token.to_ascii_lowercase());
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                out.push(ParamHeader {
                    path: path.clone(),
                    name,
                    pinned: path.first().is_some_and(|k| pinned.contains_key(k)),
                });
            }
        }
        walk(prop, path, pinned, out);
        path.pop();
    }
}

/// The header text of an argument's raw JSON: a string decoded, `true`/`false`, a number
/// as written (never through an `f64`: `1e+22` and a 30-digit integer stay as sent); `None`
/// for objects, arrays and `null`.
fn render(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(text).ok(),
        b't' | b'f' | b'-' | b'0'..=b'9' => Some(text.to_string()),
        _ => None,
    }
}

/// The raw value at `path` in the raw `arguments` object (keys as the strict pass left them:
/// unique, so the one found is the one every parser reads).
fn value_at<'v>(arguments: &'v RawValue, path: &[String]) -> Option<&'v RawValue> {
    path.iter().try_fold(arguments, |node, key| {
        let members: HashMap<Cow<'v, str>, &'v RawValue> = serde_json::from_str(node.get()).ok()?;
        members.get(key.as_str()).copied()
    })
}

/// The `Mcp-Param-*` headers of the decided arguments (`arguments`: their raw JSON), one per
/// annotated argument that has a value with a header rendering. A tool whose schema gives
/// two arguments one header name (tokens equal but for case) is refused: a router would
/// read one value and the server run the other.
pub fn build(
    params: &[ParamHeader],
    arguments: Option<&RawValue>,
) -> Result<Vec<(HeaderName, HeaderValue)>, Reject> {
    if let Some((_, p)) = params
        .iter()
        .enumerate()
        .find(|(i, p)| params[..*i].iter().any(|q| q.name == p.name))
    {
        return Err(Reject::InvalidParams(format!(
            "this tool's input schema marks two arguments with x-mcp-header {}: the header could not say which one it mirrors, so 2026-07-28 calls of it are refused; ask its operator to fix the schema",
            p.name
        )));
    }
    let mut out = Vec::with_capacity(params.len());
    for p in params {
        let Some(text) = arguments
            .and_then(|a| value_at(a, &p.path))
            .and_then(render)
        else {
            continue;
        };
        let value = HeaderValue::from_str(&super::headers::encode(&text))
            .map_err(|_| Reject::Internal("encoded argument is not a valid header value".into()))?;
        out.push((p.name.clone(), value));
    }
    Ok(out)
}

/// Check the client's `Mcp-Param-*` headers against `built` (from the decided arguments):
/// each annotated one it sent at most once, equal to the body's value after decoding, and
/// only where the body carries the argument. Headers naming no annotated argument are not
/// checked (they are dropped on the way up).
pub fn check_sent(
    sent: &HeaderMap,
    params: &[ParamHeader],
    built: &[(HeaderName, HeaderValue)],
) -> Result<(), Reject> {
    for p in params.iter().filter(|p| !p.pinned) {
        let mut values = sent.get_all(&p.name).iter();
        let Some(got) = values.next() else {
            continue; // not sent: the gateway sends it
        };
        let shown = || clip(&String::from_utf8_lossy(got.as_bytes()));
        if values.next().is_some() {
            return Err(Reject::HeaderMismatch {
                header: "Mcp-Param-*",
                header_value: format!("{}: {}", p.name, shown()),
                body_value: "(sent more than once)".into(),
            });
        }
        let expected = built.iter().find(|(n, _)| *n == p.name).map(|(_, v)| v);
        let decode = |v: &HeaderValue| super::headers::decode(v.as_bytes()).map(|d| d.into_owned());
        let agrees = expected.is_some_and(|e| decode(e).is_some() && decode(e) == decode(got));
        if !agrees {
            return Err(Reject::HeaderMismatch {
                header: "Mcp-Param-*",
                header_value: format!("{}: {}", p.name, shown()),
                body_value: format!(
                    "arguments.{}: {}",
                    p.path.join("."),
                    expected
                        .and_then(decode)
                        .map_or_else(|| "(absent)".to_string(), |v| clip(&v))
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type":"object","properties":{
            "region": {"type":"string","x-mcp-header":"Region"},
            "limit": {"type":"integer","x-mcp-header":"Limit"},
            "tenant": {"type":"string","x-mcp-header":"Tenant"},
            "filter": {"type":"object","properties":{"kind":{"type":"string","x-mcp-header":"Kind"}}},
            "bad": {"type":"string","x-mcp-header":"no spaces allowed"},
            "plain": {"type":"string"}
        }})
    }

    fn pinned() -> serde_json::Map<String, Value> {
        json!({"tenant": "acme"})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn annotations_are_found_at_any_depth_and_bad_tokens_skipped() {
        let p = annotated(&schema(), &pinned());
        let names: Vec<(&str, bool)> = p.iter().map(|p| (p.name.as_str(), p.pinned)).collect();
        assert_eq!(
            names,
            [
                ("mcp-param-kind", false),
                ("mcp-param-limit", false),
                ("mcp-param-region", false),
                ("mcp-param-tenant", true)
            ]
        );
        assert_eq!(p[0].path, ["filter", "kind"]);
    }

    #[test]
    fn headers_are_built_from_the_decided_arguments_and_checked_against_the_sent_ones() {
        let p = annotated(&schema(), &pinned());
        let args = raw(r#"{"region":"eu west","limit":5,"tenant":"acme","filter":{"kind":"a"}}"#);
        let built = build(&p, Some(&args)).unwrap();
        let get = |n: &str| built.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("mcp-param-limit").unwrap(), "5");
        assert_eq!(get("mcp-param-kind").unwrap(), "a");
        assert_eq!(get("mcp-param-tenant").unwrap(), "acme", "pinned ones too");
        // Not header-safe (a space is, a leading one is not): as is here.
        assert_eq!(get("mcp-param-region").unwrap(), "eu west");

        let mut sent = HeaderMap::new();
        assert!(check_sent(&sent, &p, &built).is_ok(), "none sent: fine");
        sent.insert("mcp-param-limit", HeaderValue::from_static("5"));
        sent.insert("mcp-param-tenant", HeaderValue::from_static("evil"));
        assert!(
            check_sent(&sent, &p, &built).is_ok(),
            "a pinned argument's header is the gateway's (the client's is dropped)"
        );
        sent.insert("mcp-param-region", HeaderValue::from_static("us"));
        let e = check_sent(&sent, &p, &built).unwrap_err();
        assert_eq!((e.http_status(), e.jsonrpc_code()), (400, -32020));
        assert!(e.to_string().contains("mcp-param-region"), "{e}");
        // The sentinel form of the same value agrees.
        sent.insert(
            "mcp-param-region",
            HeaderValue::from_static("=?base64?ZXUgd2VzdA==?="),
        );
        assert!(check_sent(&sent, &p, &built).is_ok());
        // A header for an argument the body does not carry.
        let without = build(&p, Some(&raw(r#"{"limit":5}"#))).unwrap();
        assert!(check_sent(&sent, &p, &without).is_err());
        // Sent twice.
        let mut twice = HeaderMap::new();
        twice.append("mcp-param-limit", HeaderValue::from_static("5"));
        twice.append("mcp-param-limit", HeaderValue::from_static("5"));
        assert!(check_sent(&twice, &p, &built).is_err());
    }

    #[test]
    fn objects_arrays_and_null_have_no_header() {
        let p = annotated(
            &json!({"properties":{"a":{"x-mcp-header":"A"},"b":{"x-mcp-header":"B"},"c":{"x-mcp-header":"C"},"d":{"x-mcp-header":"D"}}}),
            &serde_json::Map::new(),
        );
        let built = build(&p, Some(&raw(r#"{"a":null,"b":[1],"c":{"x":1},"d":true}"#))).unwrap();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].1, "true");
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn numbers_render_as_written_and_one_header_for_two_arguments_is_refused() {
        let p = annotated(
            &json!({"properties":{"n":{"x-mcp-header":"N"},"m":{"x-mcp-header":"M"}}}),
            &serde_json::Map::new(),
        );
        let built = build(
            &p,
            Some(&raw(r#"{"n":1e+22,"m":123456789012345678901234567890}"#)),
        )
        .unwrap();
        let get = |n: &str| built.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("mcp-param-n").unwrap(), "1e+22");
        assert_eq!(
            get("mcp-param-m").unwrap(),
            "123456789012345678901234567890"
        );
        let twice = annotated(
            &json!({"properties":{"a":{"x-mcp-header":"Tenant"},"b":{"x-mcp-header":"tenant"}}}),
            &serde_json::Map::new(),
        );
        let e = build(&twice, Some(&raw(r#"{"a":"x","b":"y"}"#))).unwrap_err();
        assert!(e.to_string().contains("mcp-param-tenant"), "{e}");
    }
}
