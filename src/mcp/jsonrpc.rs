//! JSON-RPC 2.0 message parsing, borrowed from the request body.
//!
//! [`parse`] reads one message into [`RpcCall`], which records *where* the id and the tool
//! name sit in the body (byte spans) rather than copying them, so the request path does not
//! allocate for them. Batches (JSON arrays) are refused: MCP removed them in 2025-06-18, and
//! forwarding an unparsed batch would let later policy checks be bypassed.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{strict, McpMethod};
use crate::error::Reject;

/// What kind of JSON-RPC message the body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Has `method` and `id`: the upstream answers it.
    Request,
    /// Has `method`, no `id`: the upstream answers 202.
    Notification,
    /// Has `id` and `result` or `error`: the client answering a server-to-client request.
    Response,
}

/// One parsed JSON-RPC message. Spans index into the body it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcCall {
    pub kind: MessageKind,
    pub method: McpMethod,
    /// Raw JSON string (with quotes) of `method`, for requests and notifications.
    pub method_name: Option<Range<usize>>,
    /// Raw JSON of the id (a string with its quotes, or a number).
    pub id: Option<Range<usize>>,
    /// Raw JSON string (with quotes) of `params.name` for `tools/call`.
    pub tool: Option<Range<usize>>,
    /// Raw JSON of `params._meta` (any request or notification whose params is an object):
    /// where a 2026-07-28 client's envelope is, found in the one parse.
    pub meta: Option<Range<usize>>,
    /// Raw JSON of `params.arguments` of a `tools/call`: what the audit record digests and
    /// shows, without parsing the body again.
    pub arguments: Option<Range<usize>>,
}

impl RpcCall {
    /// The id's raw JSON, given the body the call was parsed from.
    pub fn id_json<'b>(&self, body: &'b [u8]) -> Option<&'b [u8]> {
        self.id.clone().and_then(|r| body.get(r))
    }

    /// The method name as sent, decoded (escapes resolved).
    pub fn method_name<'b>(&self, body: &'b [u8]) -> Option<Cow<'b, str>> {
        string_at(body, self.method_name.clone()?)
    }

    /// `params._meta`'s raw JSON, given the body the call was parsed from.
    pub fn meta_json<'b>(&self, body: &'b [u8]) -> Option<&'b [u8]> {
        self.meta.clone().and_then(|r| body.get(r))
    }

    /// The tool name of a `tools/call`, decoded (escapes resolved).
    pub fn tool_name<'b>(&self, body: &'b [u8]) -> Option<Cow<'b, str>> {
        string_at(body, self.tool.clone()?)
    }
}

/// The JSON string at `span` of `body`, decoded. A string without escapes (a backslash) is
/// its bytes between the quotes, borrowed with no parse: method and tool names almost
/// always are, and they are read on every request (the strict pass has already checked the
/// body is UTF-8 JSON, and `from_utf8` checks again).
fn string_at(body: &[u8], span: Range<usize>) -> Option<Cow<'_, str>> {
    let raw = body.get(span)?;
    if let Some(inner) = raw.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\"")) {
        if !inner.iter().any(|&b| b == b'\\' || b == b'"' || b < 0x20) {
            return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
        }
    }
    serde_json::from_slice::<Cow<'_, str>>(raw).ok()
}

/// The message's members, read in one pass. A member whose name differs from one of these
/// only in case (or by Unicode folding) is refused ([`shadowing`]).
#[derive(Default)]
struct Envelope<'a> {
    jsonrpc: Option<Text<'a>>,
    /// Raw, so `"id": null` (`Some("null")`) is told apart from a missing id; the same for
    /// `method`, `result` and `error`.
    method: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    params: Option<ParamsPeek<'a>>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
    /// A member that passes for one of these ([`shadowing`]): the refusal.
    shadow: Option<String>,
}

/// A JSON string borrowed from the body, or decoded when it has escapes. (serde's own
/// `Cow<str>` always copies: a `String` for every member name of every message.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The members of a message the gateway reads, and of its `params`.
const ENVELOPE_KEYS: [&str; 6] = ["jsonrpc", "method", "id", "params", "result", "error"];
const PARAMS_KEYS: [&str; 3] = ["name", "_meta", "arguments"];

/// The refusal naming the member `key` passes for: a key the gateway does not read but a parser
/// that matches names case-insensitively (Go's `encoding/json`, .NET's web defaults) would
/// read as one it does. `{"Arguments": {...}}` alone would be a call without arguments here
/// (so argument policy passes) and a call with them there. The strict pass has already
/// refused a key next to such a twin, so this one is alone: it is refused as the message's
/// shape defect it is (after the id is read, so the answer carries it).
fn shadowing(key: &str, known: &[&str]) -> Option<String> {
    let k = known
        .iter()
        .find(|k| **k != key && super::strict::same_key(key.as_bytes(), k.as_bytes()))?;
    Some(format!(
        "member {:?} differs from {k:?} only in letter case; parsers disagree on whether it is {k:?}, so spell it {k:?}",
        crate::error::clip(key)
    ))
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Envelope<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error as _;
                let mut env = Envelope::default();
                // A member twice: an error, so no id is trusted for the answer (this also
                // reads bodies the strict pass refused, to answer with their id).
                let mut seen = [false; ENVELOPE_KEYS.len()];
                while let Some(Text(k)) = m.next_key::<Text<'de>>()? {
                    if let Some(i) = ENVELOPE_KEYS.iter().position(|e| *e == k) {
                        if std::mem::replace(&mut seen[i], true) {
                            return Err(A::Error::duplicate_field(ENVELOPE_KEYS[i]));
                        }
                    }
                    match &*k {
                        "jsonrpc" => env.jsonrpc = m.next_value()?,
                        "method" => env.method = Some(m.next_value()?),
                        "id" => env.id = Some(m.next_value()?),
                        "params" => env.params = m.next_value()?,
                        "result" => env.result = Some(m.next_value()?),
                        "error" => env.error = Some(m.next_value()?),
                        other => {
                            if env.shadow.is_none() {
                                env.shadow = shadowing(other, &ENVELOPE_KEYS);
                            }
                            m.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// What the gateway reads of `params` in the same single pass over the body: whether it is
/// an object and its `name` (raw). Everything else is skipped without being copied, so a
/// large `arguments` value is scanned once.
struct ParamsPeek<'a> {
    is_object: bool,
    name: Option<&'a RawValue>,
    meta: Option<&'a RawValue>,
    arguments: Option<&'a RawValue>,
    /// A member that passes for one of these ([`shadowing`]): the refusal.
    shadow: Option<String>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ParamsPeek<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = ParamsPeek<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let (mut name, mut meta, mut arguments, mut shadow) = (None, None, None, None);
                while let Some(Text(k)) = m.next_key::<Text<'de>>()? {
                    if k == "name" && name.is_none() {
                        name = Some(m.next_value::<&'de RawValue>()?);
                    } else if k == "_meta" && meta.is_none() {
                        meta = Some(m.next_value::<&'de RawValue>()?);
                    } else if k == "arguments" && arguments.is_none() {
                        arguments = Some(m.next_value::<&'de RawValue>()?);
                    } else {
                        if shadow.is_none() {
                            shadow = shadowing(&k, &PARAMS_KEYS);
                        }
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(ParamsPeek {
                    is_object: true,
                    name,
                    meta,
                    arguments,
                    shadow,
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Self::Value, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(ParamsPeek {
                    is_object: false,
                    name: None,
                    meta: None,
                    arguments: None,
                    shadow: None,
                })
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ParamsPeek {
                    is_object: false,
                    name: None,
                    meta: None,
                    arguments: None,
                    shadow: None,
                })
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ParamsPeek {
                    is_object: false,
                    name: None,
                    meta: None,
                    arguments: None,
                    shadow: None,
                })
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ParamsPeek {
                    is_object: false,
                    name: None,
                    meta: None,
                    arguments: None,
                    shadow: None,
                })
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ParamsPeek {
                    is_object: false,
                    name: None,
                    meta: None,
                    arguments: None,
                    shadow: None,
                })
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ParamsPeek {
                    is_object: false,
                    name: None,
                    meta: None,
                    arguments: None,
                    shadow: None,
                })
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ParamsPeek {
                    is_object: false,
                    name: None,
                    meta: None,
                    arguments: None,
                    shadow: None,
                })
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A message that could not be accepted: the rejection, and the span of its id when the
/// body had a usable one (so the error response can carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub reject: Reject,
    pub id: Option<Range<usize>>,
}

impl From<Reject> for ParseFailure {
    fn from(reject: Reject) -> Self {
        ParseFailure { reject, id: None }
    }
}

/// Parse one JSON-RPC message from a request body.
///
/// Runs in `request_filter` after the body is read. The body is first checked by
/// [`strict::check`] (duplicate keys at any depth, nesting beyond `max_depth`, lone
/// surrogates, anything outside RFC 8259), so the spans recorded here are the only
/// occurrences there are: what the gateway decides on is what every upstream parser reads.
///
/// `Err` holds the rejection to send: [`Reject::Parse`] (-32700) for invalid JSON,
/// [`Reject::InvalidRequest`] (-32600) for JSON that is not an acceptable JSON-RPC message or
/// that parsers would read differently, [`Reject::InvalidParams`] (-32602) for a `tools/call`
/// without a string `params.name`.
pub fn parse(body: &[u8], max_depth: usize) -> Result<RpcCall, ParseFailure> {
    let mut id = None;
    if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(ParseFailure {
            reject: Reject::InvalidRequest("empty body: expected a JSON-RPC message".into()),
            id,
        });
    }
    if let Err(reject) = strict::check(body, max_depth) {
        // Answer with the request's id when one can still be read unambiguously: the
        // envelope's derive refuses duplicate envelope keys, so a duplicated `id` gives none.
        if !matches!(reject, Reject::Parse(_)) {
            let _ = parse_inner(body, &mut id);
        }
        return Err(ParseFailure { reject, id });
    }
    parse_inner(body, &mut id).map_err(|reject| ParseFailure { reject, id })
}

fn parse_inner(body: &[u8], id_out: &mut Option<Range<usize>>) -> Result<RpcCall, Reject> {
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    match first {
        None => {
            return Err(Reject::InvalidRequest(
                "empty body: expected a JSON-RPC message".into(),
            ))
        }
        Some(b'{') => {}
        Some(b'[') => {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(e) => Err(Reject::Parse(e.to_string())),
                Ok(_) => Err(Reject::InvalidRequest(
                    "JSON-RPC batches are not supported (MCP removed them in 2025-06-18); send one message per request".into(),
                )),
            };
        }
        Some(_) => {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(e) => Err(Reject::Parse(e.to_string())),
                Ok(_) => Err(Reject::InvalidRequest(
                    "expected a JSON-RPC message object".into(),
                )),
            };
        }
    }
    let mut env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            Reject::Parse(e.to_string())
        } else {
            Reject::InvalidRequest(e.to_string())
        }
    })?;
    if let Some(id) = env.id {
        if matches!(id.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9')) {
            *id_out = Some(span(body, id.get()));
        }
    }
    if let Some(why) = env
        .shadow
        .take()
        .or_else(|| env.params.as_mut().and_then(|p| p.shadow.take()))
    {
        return Err(Reject::InvalidRequest(why));
    }
    if env.jsonrpc.as_ref().map(|t| &*t.0) != Some("2.0") {
        return Err(Reject::InvalidRequest("\"jsonrpc\" must be \"2.0\"".into()));
    }
    if let Some(id) = env.id {
        let s = id.get().as_bytes();
        let ok = matches!(s.first(), Some(b'"' | b'-' | b'0'..=b'9'));
        if !ok {
            return Err(Reject::InvalidRequest(
                "\"id\" must be a string or a number".into(),
            ));
        }
    }
    let id = env.id.map(|raw| span(body, raw.get()));
    match (env.method, env.id) {
        (Some(raw_method), id_present) => {
            let method = serde_json::from_str::<Cow<'_, str>>(raw_method.get())
                .map_err(|_| Reject::InvalidRequest("\"method\" must be a string".into()))?;
            if env.result.is_some() || env.error.is_some() {
                return Err(Reject::InvalidRequest(
                    "a message cannot have both \"method\" and \"result\"/\"error\"".into(),
                ));
            }
            let kind = if id_present.is_some() {
                MessageKind::Request
            } else {
                MessageKind::Notification
            };
            let method_kind = McpMethod::from_name(&method);
            let tool = if method_kind == McpMethod::ToolsCall && kind == MessageKind::Request {
                Some(tool_span(body, env.params.as_ref())?)
            } else {
                None
            };
            let meta = env
                .params
                .as_ref()
                .and_then(|p| p.meta)
                .map(|m| span(body, m.get()));
            let arguments = if tool.is_some() {
                env.params
                    .as_ref()
                    .and_then(|p| p.arguments)
                    .map(|a| span(body, a.get()))
            } else {
                None
            };
            Ok(RpcCall {
                kind,
                method: method_kind,
                method_name: Some(span(body, raw_method.get())),
                id,
                tool,
                meta,
                arguments,
            })
        }
        (None, Some(_)) => {
            if env.result.is_some() == env.error.is_some() {
                return Err(Reject::InvalidRequest(
                    "a response needs exactly one of \"result\" or \"error\"".into(),
                ));
            }
            Ok(RpcCall {
                kind: MessageKind::Response,
                method: McpMethod::Response,
                method_name: None,
                id,
                tool: None,
                meta: None,
                arguments: None,
            })
        }
        (None, None) => Err(Reject::InvalidRequest(
            "missing \"method\": not a JSON-RPC request or notification".into(),
        )),
    }
}

fn tool_span(body: &[u8], params: Option<&ParamsPeek<'_>>) -> Result<Range<usize>, Reject> {
    let missing = || Reject::InvalidParams("tools/call needs params.name, the tool to call".into());
    let p = params.ok_or_else(missing)?;
    if !p.is_object {
        return Err(Reject::InvalidParams(
            "tools/call params must be an object".into(),
        ));
    }
    let name = p.name.ok_or_else(missing)?;
    if !name.get().starts_with('"') {
        return Err(Reject::InvalidParams(
            "tools/call params.name must be a string".into(),
        ));
    }
    Ok(span(body, name.get()))
}

/// Byte range of `part` inside `body`. `part` must be a sub-slice of `body` (borrowed parse).
pub(crate) fn span(body: &[u8], part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let end = (start + part.len()).min(body.len());
    start.min(end)..end
}

/// Serialize a JSON-RPC error response. `id` is the raw JSON of the request id (as recorded by
/// [`parse`]); `None` writes `"id":null`, as JSON-RPC requires when the id is unknown.
pub fn error_response(
    id: Option<&[u8]>,
    code: i32,
    message: &str,
    data: Option<&serde_json::Value>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + message.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.unwrap_or(b"null"));
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(br#","message":"#);
    // Serializing a str or a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, message);
    if let Some(data) = data {
        out.extend_from_slice(br#","data":"#);
        let _ = serde_json::to_writer(&mut out, data);
    }
    out.extend_from_slice(b"}}");
    out
}

/// A `tools/call` with `params.name` replaced by `tool` (a virtual server restoring the
/// upstream's own name): the body is copied once with
/// `params.name` replaced, every other byte (numbers, key order, arguments) kept as the client
/// sent it, and the parsed spans are moved instead of parsing again. `call` must come from
/// [`parse`], whose strict pass refused duplicate keys at every depth: that is what makes
/// the span the one `name` an upstream will read (a last-wins parser would otherwise run a
/// later `name` the gateway never checked).
pub fn replace_tool_name(
    body: &[u8],
    call: &RpcCall,
    tool: &str,
) -> Result<(bytes::Bytes, RpcCall), Reject> {
    let Some(span) = call.tool.clone().filter(|r| r.end <= body.len()) else {
        return Err(Reject::InvalidParams(
            "tools/call params.name must be a string".into(),
        ));
    };
    let name = serde_json::to_vec(tool).map_err(|e| Reject::Internal(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + name.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(&name);
    out.extend_from_slice(&body[span.end..]);
    // Spans after the name move by the change in length; one around it (`_meta`, when the
    // replaced string is inside it) grows or shrinks at its end. JSON values nest or are
    // disjoint, so there is no other case. No underflow: a moved end is at least span.end.
    let shift = |r: std::ops::Range<usize>| {
        if r.start >= span.end {
            (r.start + name.len() - span.len())..(r.end + name.len() - span.len())
        } else if r.end >= span.end {
            r.start..(r.end + name.len() - span.len())
        } else {
            r
        }
    };
    let mut moved = call.clone();
    moved.id = call.id.clone().map(shift);
    moved.method_name = call.method_name.clone().map(shift);
    moved.tool = Some(span.start..span.start + name.len());
    moved.meta = call.meta.clone().map(shift);
    moved.arguments = call.arguments.clone().map(shift);
    Ok((bytes::Bytes::from(out), moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};

    fn code(body: &str) -> i32 {
        parse(body.as_bytes(), 64)
            .unwrap_err()
            .reject
            .jsonrpc_code()
    }

    #[test]
    fn failures_keep_a_usable_id() {
        let b = br#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#;
        let f = parse(b, 64).unwrap_err();
        assert_eq!(f.id.map(|r| &b[r]), Some(&br#""x""#[..]));
        let b = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{}}"#;
        let f = parse(b, 64).unwrap_err();
        assert_eq!(f.id.map(|r| &b[r]), Some(&b"9"[..]));
        assert_eq!(parse(b"{", 64).unwrap_err().id, None);
    }

    #[test]
    fn duplicate_keys_are_refused_before_the_envelope_is_read() {
        // The critical case: a last-wins upstream would run the second name.
        let b = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","arguments":{},"name":"b"}}"#;
        let f = parse(b, 64).unwrap_err();
        assert_eq!(f.reject.jsonrpc_code(), INVALID_REQUEST);
        assert!(
            f.reject.to_string().contains("$.params.name"),
            "{}",
            f.reject
        );
        assert_eq!(
            f.id.map(|r| &b[r]),
            Some(&b"2"[..]),
            "the answer keeps the id"
        );
        // A duplicated id: no id is trusted for the answer.
        let b = br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#;
        let f = parse(b, 64).unwrap_err();
        assert_eq!(f.reject.jsonrpc_code(), INVALID_REQUEST);
        assert_eq!(f.id, None);
        // Too deep, with the id kept.
        let b = br#"{"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"x","arguments":{"a":[[[[]]]]}}}"#;
        let f = parse(b, 5).unwrap_err();
        assert!(f.reject.to_string().contains("nested deeper than 5"));
        assert_eq!(f.id.map(|r| &b[r]), Some(&br#""d""#[..]));
    }

    /// A member that only a case-insensitive parser (Go, .NET) reads as one the gateway
    /// reads: `Arguments` would be arguments there and none here (argument policy passes).
    /// Refused, with the id kept for the answer; other unknown members pass.
    #[test]
    fn members_that_pass_for_read_ones_only_by_case_are_refused() {
        for (b, named) in [
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","Arguments":{"path":"/etc"}}}"#,
                "\"Arguments\"",
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"NAME":"x"}}"#,
                "\"NAME\"",
            ),
            // Unicode folding: the long s (U+017F) folds to "s", as Go's EqualFold has it.
            (
                "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"argument\u{17f}\":{}}}",
                "argument",
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"Method":"tools/call","params":{"name":"x"}}"#,
                "\"Method\"",
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","Params":{}}"#,
                "\"Params\"",
            ),
        ] {
            let f = parse(b.as_bytes(), 64).unwrap_err();
            assert_eq!(f.reject.jsonrpc_code(), INVALID_REQUEST, "{b}");
            let msg = f.reject.to_string();
            assert!(msg.contains(named) && msg.contains("letter case"), "{b}: {msg}");
            assert_eq!(f.id.map(|r| &b.as_bytes()[r]), Some(&b"7"[..]), "{b}");
        }
        // Members the gateway does not read and nothing mistakes for one: as before.
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","x":1,"params":{"name":"a","arguments":{},"task":{}}}"#;
        assert!(parse(ok, 64).is_ok());
    }

    #[test]
    fn big_numbers_are_kept_byte_for_byte() {
        let b = br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/call","params":{"name":"x","arguments":{"n":1e400,"m":-0.10000000000000000000000001}}}"#;
        let c = parse(b, 64).unwrap();
        assert_eq!(c.id_json(b), Some(&b"123456789012345678901234567890"[..]));
    }

    #[test]
    fn request_with_numeric_id() {
        let b = br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
        let c = parse(b, 64).unwrap();
        assert_eq!(c.kind, MessageKind::Request);
        assert_eq!(c.method, McpMethod::ToolsList);
        assert_eq!(c.id_json(b), Some(&b"7"[..]));
        assert_eq!(c.tool, None);
    }

    #[test]
    fn tools_call_records_id_and_tool_name_spans() {
        let b = br#" {"method":"tools/call","params":{"arguments":{"x":1},"name":"ec\"ho"},"id":"a-1","jsonrpc":"2.0"}"#;
        let c = parse(b, 64).unwrap();
        assert_eq!(c.method, McpMethod::ToolsCall);
        assert_eq!(c.id_json(b), Some(&br#""a-1""#[..]));
        assert_eq!(c.tool_name(b).as_deref(), Some("ec\"ho"));
    }

    #[test]
    fn notification_and_response() {
        let n = parse(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            64,
        )
        .unwrap();
        assert_eq!(n.kind, MessageKind::Notification);
        assert_eq!(n.method, McpMethod::Notification);
        let r = parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#, 64).unwrap();
        assert_eq!(r.kind, MessageKind::Response);
        let e = parse(
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"x"}}"#,
            64,
        )
        .unwrap();
        assert_eq!(e.kind, MessageKind::Response);
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        assert_eq!(code("{"), PARSE_ERROR);
        assert_eq!(code(r#"{"jsonrpc":"2.0","method":"x",}"#), PARSE_ERROR);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","method":"x"} trailing"#),
            PARSE_ERROR
        );
        assert_eq!(code("[1,"), PARSE_ERROR);
        assert_eq!(code("nope"), PARSE_ERROR);
    }

    #[test]
    fn valid_json_that_is_not_json_rpc_is_invalid_request() {
        for b in [
            "",
            "  ",
            "[]",
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            "42",
            r#""str""#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
        ] {
            assert_eq!(code(b), INVALID_REQUEST, "{b}");
        }
    }

    #[test]
    fn tools_call_without_a_string_name_is_invalid_params() {
        for b in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
        ] {
            assert_eq!(code(b), INVALID_PARAMS, "{b}");
        }
    }

    #[test]
    fn error_response_keeps_the_id_and_escapes_the_message() {
        let b = error_response(Some(br#""a\"1""#), -32600, "bad \"x\"\n", None);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["id"], "a\"1");
        assert_eq!(v["error"]["code"], -32600);
        assert_eq!(v["error"]["message"], "bad \"x\"\n");
        let b = error_response(None, -32700, "m", Some(&serde_json::json!({"k": 1})));
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(v["id"].is_null());
        assert_eq!(v["error"]["data"]["k"], 1);
    }

    #[test]
    fn unknown_methods_are_other_and_forwarded() {
        let c = parse(br#"{"jsonrpc":"2.0","id":1,"method":"x/y"}"#, 64).unwrap();
        assert_eq!(c.method, McpMethod::Other);
    }
}

#[cfg(test)]
mod replace_tests {
    use super::*;

    fn splice(body: &str, tool: &str) -> (String, Option<String>, Option<String>) {
        let call = parse(body.as_bytes(), 64).unwrap();
        let (out, moved) = replace_tool_name(body.as_bytes(), &call, tool).unwrap();
        let id = moved
            .id_json(&out)
            .map(|b| String::from_utf8(b.to_vec()).unwrap());
        let name = moved.tool_name(&out).map(|n| n.into_owned());
        (String::from_utf8(out.to_vec()).unwrap(), id, name)
    }

    #[test]
    fn splice_replaces_only_the_name_and_moves_later_spans() {
        // id after params: its span shifts by the length difference.
        let (out, id, name) = splice(
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"crm__get","arguments":{"n":123456789012345678901234567890,"x":1.000000000000000000001}},"id":"req-7"}"#,
            "get_customer",
        );
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get_customer","arguments":{"n":123456789012345678901234567890,"x":1.000000000000000000001}},"id":"req-7"}"#
        );
        assert_eq!(id.as_deref(), Some(r#""req-7""#));
        assert_eq!(name.as_deref(), Some("get_customer"));
        // id before params: unchanged span; escapes in both names handled.
        let (out, id, name) = splice(
            r#"{"id":42,"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{},"name":"a\u005fb"}}"#,
            r#"q"t"#,
        );
        assert_eq!(
            out,
            r#"{"id":42,"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{},"name":"q\"t"}}"#
        );
        assert_eq!(id.as_deref(), Some("42"));
        assert_eq!(name.as_deref(), Some(r#"q"t"#));
    }

    #[test]
    fn moved_spans_equal_a_fresh_parse_of_the_new_body_meta_included() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__b","_meta":{"k":"v"},"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"_meta":{"k":1},"name":"a__b"},"id":"x"}"#,
        ] {
            let call = parse(body.as_bytes(), 64).unwrap();
            assert!(call.meta.is_some());
            let (out, moved) =
                replace_tool_name(body.as_bytes(), &call, "a_much_longer_name").unwrap();
            assert_eq!(moved, parse(&out, 64).unwrap(), "{body}");
        }
        // A string replaced inside `_meta`: the span around it grows.
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"k":"v"},"cursor":"c"}}"#;
        let call = parse(body, 64).unwrap();
        let inner = crate::mcp::rewrite::string_at(body, &["_meta", "k"]).unwrap();
        let (out, moved) =
            crate::mcp::rewrite::replace_string_param(body, &call, inner.1, "longer").unwrap();
        assert_eq!(moved, parse(&out, 64).unwrap());
    }
}
