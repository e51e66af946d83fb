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
    /// The 2026-07-28 envelope's members in `_meta` (when it is an object).
    pub envelope: MetaSpans,
    /// Members few messages have ([`Rare`]), boxed: every request moves its call around a
    /// few times, and three more spans inline were ~700 instructions of copying per call.
    pub rare: Option<Box<Rare>>,
}

/// Raw JSON of the `params` members only some messages have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rare {
    /// `params.requestState` (a 2026-07-28 retry of an `InputRequiredResult`).
    pub request_state: Option<Range<usize>>,
    /// `params.inputResponses` (the same retry's answers).
    pub input_responses: Option<Range<usize>>,
    /// `params.cursor` (a paginated list).
    pub cursor: Option<Range<usize>>,
}

/// Raw JSON of the 2026-07-28 envelope members of `params._meta`, found by the one pass
/// (read by [`super::envelope::read_meta`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaSpans {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub version: Option<Range<usize>>,
    /// `io.modelcontextprotocol/logLevel`.
    pub log_level: Option<Range<usize>>,
    /// `io.modelcontextprotocol/clientCapabilities`.
    pub caps: Option<Range<usize>>,
}

impl RpcCall {
    /// The same call with every span moved by `f` (a splice changed the body around them).
    pub fn shifted(&self, f: impl Fn(Range<usize>) -> Range<usize>) -> RpcCall {
        let m = |r: &Option<Range<usize>>| r.clone().map(&f);
        RpcCall {
            kind: self.kind,
            method: self.method,
            method_name: m(&self.method_name),
            id: m(&self.id),
            tool: m(&self.tool),
            meta: m(&self.meta),
            arguments: m(&self.arguments),
            envelope: MetaSpans {
                version: m(&self.envelope.version),
                log_level: m(&self.envelope.log_level),
                caps: m(&self.envelope.caps),
            },
            rare: self.rare.as_ref().map(|r| {
                Box::new(Rare {
                    request_state: m(&r.request_state),
                    input_responses: m(&r.input_responses),
                    cursor: m(&r.cursor),
                })
            }),
        }
    }

    /// `params.requestState`'s span, when the message has one.
    pub fn request_state(&self) -> Option<Range<usize>> {
        self.rare.as_ref()?.request_state.clone()
    }

    /// `params.inputResponses`'s span, when the message has one.
    pub fn input_responses(&self) -> Option<Range<usize>> {
        self.rare.as_ref()?.input_responses.clone()
    }

    /// `params.cursor`'s span, when the message has one.
    pub fn cursor(&self) -> Option<Range<usize>> {
        self.rare.as_ref()?.cursor.clone()
    }

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
pub(crate) fn string_at(body: &[u8], span: Range<usize>) -> Option<Cow<'_, str>> {
    if let Some(inner) = plain_at(body, span.clone()) {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<Cow<'_, str>>(body.get(span)?).ok()
}

/// The bytes between the quotes of the JSON string at `span` when it has no escapes: then
/// they are the string's value exactly, and can be compared as bytes with no decoding. (In a
/// body through the strict pass, a string without a backslash has no quote or control
/// character inside.)
pub(crate) fn plain_at(body: &[u8], span: Range<usize>) -> Option<&[u8]> {
    let inner = body.get(span)?.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!inner.iter().any(|&b| b == b'\\' || b == b'"' || b < 0x20)).then_some(inner)
}

/// The members of a message the gateway reads (level 0 of [`ENVELOPE`]), by index.
const ENVELOPE_KEYS: [&str; 6] = ["jsonrpc", "method", "id", "params", "result", "error"];
const JSONRPC: usize = 0;
const METHOD: usize = 1;
const ID: usize = 2;
const PARAMS: usize = 3;
const RESULT: usize = 4;
const ERROR: usize = 5;
/// The members of `params` it reads (level 1).
const PARAMS_KEYS: [&str; 6] = [
    "name",
    "_meta",
    "arguments",
    "requestState",
    "inputResponses",
    "cursor",
];
const NAME: usize = 0;
const META: usize = 1;
const ARGUMENTS: usize = 2;
const REQUEST_STATE: usize = 3;
const INPUT_RESPONSES: usize = 4;
const CURSOR: usize = 5;
/// The 2026-07-28 envelope members of `params._meta` (level 2).
const META_KEYS: [&str; 3] = [
    super::envelope::PROTOCOL_VERSION_META,
    super::envelope::LOG_LEVEL_META,
    super::envelope::CLIENT_CAPABILITIES_META,
];

/// What the strict pass locates of a message, so the body is read once ([`strict::outline`]).
/// A member that passes for an envelope or `params` member only by letter case (or Unicode
/// folding) is refused: `{"Arguments": {...}}` alone would be a call without arguments here
/// (so argument policy passes) and a call with them to Go's `encoding/json` or .NET's web
/// defaults, which match names case-insensitively. (A twin next to it is a refused duplicate
/// already.) Members of `_meta` are only located.
static ENVELOPE: strict::Schema = strict::Schema {
    keys: &ENVELOPE_KEYS,
    child: Some((PARAMS, &PARAMS_SCHEMA)),
    shadows: true,
    memo: false,
};
static PARAMS_SCHEMA: strict::Schema = strict::Schema {
    keys: &PARAMS_KEYS,
    child: Some((META, &META_SCHEMA)),
    shadows: true,
    memo: false,
};
static META_SCHEMA: strict::Schema = strict::Schema {
    keys: &META_KEYS,
    child: None,
    shadows: false,
    // The same envelope on every request of a client: remembered ([`strict::Schema::memo`]).
    memo: true,
};

/// A JSON string borrowed from the body, or decoded when it has escapes. (serde's own
/// `Cow<str>` always copies: a `String` for every member name.)
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

/// The id of a body the strict pass refused (the answer carries it when it can): read by
/// serde, which goes on past whatever the strict pass stopped at. A second `id`, also one
/// in another letter case, gives none (which one would be trusted?).
struct RefusedId<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for RefusedId<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RefusedId<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error as _;
                let mut id = None;
                while let Some(Text(k)) = m.next_key::<Text<'de>>()? {
                    if k == "id" {
                        if id.is_some() {
                            return Err(A::Error::duplicate_field("id"));
                        }
                        id = Some(m.next_value::<&'de RawValue>()?);
                    } else if strict::same_key(k.as_bytes(), b"id") {
                        // `ID`: Go would answer with that one.
                        return Err(A::Error::duplicate_field("id"));
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(RefusedId(id))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A usable id (a string or a number) at `raw`.
fn usable_id(body: &[u8], raw: Range<usize>) -> Option<Range<usize>> {
    body.get(raw.clone())
        .and_then(|b| b.first())
        .filter(|b| matches!(b, b'"' | b'-' | b'0'..=b'9'))
        .map(|_| raw)
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
    if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(ParseFailure {
            reject: Reject::InvalidRequest("empty body: expected a JSON-RPC message".into()),
            id: None,
        });
    }
    let outline = match strict::outline(body, max_depth, Some(&ENVELOPE)) {
        Ok(outline) => outline,
        Err(reject) => {
            // Answer with the request's id when one can still be read unambiguously.
            let id = match reject {
                Reject::Parse(_) => None,
                _ => serde_json::from_slice::<RefusedId<'_>>(body)
                    .ok()
                    .and_then(|r| r.0)
                    .and_then(|raw| usable_id(body, span(body, raw.get()))),
            };
            return Err(ParseFailure { reject, id });
        }
    };
    let [envelope, params, meta] = &outline.spans;
    let id = envelope[ID].clone().and_then(|raw| usable_id(body, raw));
    let fail = |reject| ParseFailure {
        reject,
        id: id.clone(),
    };
    // The strict pass found one JSON value; what it is decides the rest.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') => return Err(fail(Reject::InvalidRequest(
            "JSON-RPC batches are not supported (MCP removed them in 2025-06-18); send one message per request".into(),
        ))),
        _ => {
            return Err(fail(Reject::InvalidRequest(
                "expected a JSON-RPC message object".into(),
            )))
        }
    }
    if let Some((sent, known)) = &outline.shadow {
        return Err(fail(Reject::InvalidRequest(format!(
            "member {:?} differs from {known:?} only in letter case; parsers disagree on whether it is {known:?}, so spell it {known:?}",
            crate::error::clip(sent)
        ))));
    }
    let jsonrpc = envelope[JSONRPC].clone();
    let two = |r: Range<usize>| {
        body.get(r.clone()) == Some(&b"\"2.0\""[..]) || string_at(body, r).as_deref() == Some("2.0")
    };
    if !jsonrpc.is_some_and(two) {
        return Err(fail(Reject::InvalidRequest(
            "\"jsonrpc\" must be \"2.0\"".into(),
        )));
    }
    if envelope[ID].is_some() && id.is_none() {
        return Err(fail(Reject::InvalidRequest(
            "\"id\" must be a string or a number".into(),
        )));
    }
    let (has_result, has_error) = (envelope[RESULT].is_some(), envelope[ERROR].is_some());
    let Some(method_span) = envelope[METHOD].clone() else {
        return match (&id, has_result == has_error) {
            (None, _) => Err(fail(Reject::InvalidRequest(
                "missing \"method\": not a JSON-RPC request or notification".into(),
            ))),
            (Some(_), true) => Err(fail(Reject::InvalidRequest(
                "a response needs exactly one of \"result\" or \"error\"".into(),
            ))),
            (Some(_), false) => Ok(RpcCall {
                kind: MessageKind::Response,
                method: McpMethod::Response,
                method_name: None,
                id,
                tool: None,
                meta: None,
                arguments: None,
                envelope: MetaSpans::default(),
                rare: None,
            }),
        };
    };
    let Some(method) = string_at(body, method_span.clone()) else {
        return Err(fail(Reject::InvalidRequest(
            "\"method\" must be a string".into(),
        )));
    };
    if has_result || has_error {
        return Err(fail(Reject::InvalidRequest(
            "a message cannot have both \"method\" and \"result\"/\"error\"".into(),
        )));
    }
    let kind = if id.is_some() {
        MessageKind::Request
    } else {
        MessageKind::Notification
    };
    let method_kind = McpMethod::from_name(&method);
    // `params` is an object exactly when level 1 located anything or it is `{}`.
    let params_object = envelope[PARAMS]
        .clone()
        .and_then(|r| body.get(r.start))
        .is_some_and(|b| *b == b'{');
    let tool = if method_kind == McpMethod::ToolsCall && kind == MessageKind::Request {
        if envelope[PARAMS].is_some() && !params_object {
            return Err(fail(Reject::InvalidParams(
                "tools/call params must be an object".into(),
            )));
        }
        let Some(name) = params[NAME].clone() else {
            return Err(fail(Reject::InvalidParams(
                "tools/call needs params.name, the tool to call".into(),
            )));
        };
        if body.get(name.start) != Some(&b'"') {
            return Err(fail(Reject::InvalidParams(
                "tools/call params.name must be a string".into(),
            )));
        }
        Some(name)
    } else {
        None
    };
    let [version, log_level, caps, ..] = meta.clone();
    Ok(RpcCall {
        kind,
        method: method_kind,
        method_name: Some(method_span),
        id,
        arguments: tool.as_ref().and(params[ARGUMENTS].clone()),
        tool,
        meta: params[META].clone(),
        envelope: MetaSpans {
            version,
            log_level,
            caps,
        },
        rare: (params[REQUEST_STATE].is_some()
            || params[INPUT_RESPONSES].is_some()
            || params[CURSOR].is_some())
        .then(|| {
            Box::new(Rare {
                request_state: params[REQUEST_STATE].clone(),
                input_responses: params[INPUT_RESPONSES].clone(),
                cursor: params[CURSOR].clone(),
            })
        }),
    })
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
    let mut moved = call.shifted(shift);
    moved.tool = Some(span.start..span.start + name.len());
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
        // A duplicated id, also in another letter case (Go reads the last): no id is
        // trusted for the answer. Another duplicated member keeps it.
        for b in [
            &br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}"#,
        ] {
            let f = parse(b, 64).unwrap_err();
            assert_eq!(f.reject.jsonrpc_code(), INVALID_REQUEST);
            assert_eq!(f.id, None);
        }
        let b = br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"x"}"#;
        assert_eq!(parse(b, 64).unwrap_err().id.map(|r| &b[r]), Some(&b"1"[..]));
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
