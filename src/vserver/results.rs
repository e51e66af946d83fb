//! What a virtual server changes in the answers it relays from an upstream, message by
//! message: resource URIs in results, and (2026-07-28 clients) log messages below the level
//! the request asked for.
//!
//! Resource URIs inside results are rewritten to the exposed form
//! (`<scheme>://mcpgw/<upstream>/<rest>`, [`crate::registry::items::expose_uri`]) so the
//! client can read what it was given through the same server:
//!
//! - `resources/read`: `result.contents[].uri`;
//! - `tools/call`: `result.content[]` blocks of `type: resource_link` (`uri`) and
//!   `type: resource` (`resource.uri`);
//! - `prompts/get`: the same blocks as `result.messages[].content`.
//!
//! Cheap by construction: a message is parsed only when its bytes contain `"uri"` (a byte
//! scan first), and then only along those paths, borrowing ([`RawValue`]); the URIs are
//! spliced in and every other byte is the upstream's (no re-encoding, numbers untouched).
//! Bounded: a JSON body is held until it ends, an SSE body one event at a time, each up to
//! [`LIMIT`] (64 KiB, the bound of the gateway's other response copies); past it the rest of
//! the body passes as sent (logged), its URIs unrewritten.
//!
//! Log messages: a 2026-07-28 request asks for `notifications/message` with
//! `_meta["io.modelcontextprotocol/logLevel"]`, that level and above; without it the server
//! MUST NOT send any. The gateway speaks to upstreams in the handshake era, where an upstream
//! sends what its session's level allows, so for a modern client the messages on the call's
//! stream are filtered here: below the asked level (or all, when none was asked) they are
//! dropped. Found by a byte scan for `notifications/message`, then one parse of that event.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::value::RawValue;

/// Most of a body (JSON) or of one event (SSE) held for rewriting.
pub const LIMIT: usize = 64 * 1024;

const MARKER: &[u8] = b"\"uri\"";
const LOG: &[u8] = b"notifications/message";

/// Whether `msg` is a `notifications/message` whose level is below `floor` (an unknown
/// level counts as below: the client asked for the levels it knows).
fn below(msg: &[u8], floor: u8) -> bool {
    #[derive(serde::Deserialize)]
    struct Note<'a> {
        #[serde(borrow)]
        method: Cow<'a, str>,
        #[serde(default, borrow)]
        id: Option<&'a RawValue>,
        #[serde(default, borrow)]
        params: Option<Params<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(default, borrow)]
        level: Option<Cow<'a, str>>,
    }
    let Ok(n) = serde_json::from_slice::<Note<'_>>(msg) else {
        return false;
    };
    if n.method != "notifications/message" || n.id.is_some() {
        return false;
    }
    let level = n.params.and_then(|p| p.level);
    level
        .as_deref()
        .and_then(super::logging::level_index)
        .is_none_or(|i| i < floor)
}

/// The rewriting state of one response body.
#[derive(Debug)]
pub struct ResultRewriter {
    /// The upstream whose URIs are rewritten (`None`: a `names: upstream` server, whose
    /// URIs are the upstreams' own; only log messages are filtered).
    upstream: Option<String>,
    sse: bool,
    buf: Vec<u8>,
    /// Over [`LIMIT`]: the rest passes as it comes.
    passthrough: bool,
    /// A 2026-07-28 client's log floor: log messages below this level index
    /// ([`super::logging::level_index`]; 8 drops them all) are dropped. `None`: all pass.
    log_floor: Option<u8>,
    /// A JSON body's `Content-Length`, when the upstream declared one.
    declared: Option<usize>,
}

impl ResultRewriter {
    pub fn new(upstream: Option<&str>, sse: bool, log_floor: Option<u8>) -> ResultRewriter {
        ResultRewriter {
            upstream: upstream.map(str::to_string),
            sse,
            buf: Vec::new(),
            passthrough: false,
            log_floor,
            declared: None,
        }
    }

    /// The JSON body's declared length: a chunk that completes it completes the message, so
    /// a body in one chunk passes at once (no copy) instead of waiting for the end of the
    /// body, which Pingora may report in a later, empty call.
    pub fn with_length(mut self, declared: Option<usize>) -> ResultRewriter {
        self.declared = declared;
        self
    }

    /// Take one chunk of the body; returns what to send now (possibly empty).
    pub fn push(&mut self, chunk: Bytes, end: bool) -> Bytes {
        if self.passthrough {
            return chunk;
        }
        if self.sse {
            return self.push_sse(chunk, end);
        }
        let complete = end || self.declared == Some(self.buf.len() + chunk.len());
        if self.buf.is_empty() && complete {
            self.passthrough = true; // the message is out: nothing more to hold
            return self.message(chunk);
        }
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() > LIMIT {
            self.overflow();
            return Bytes::from(std::mem::take(&mut self.buf));
        }
        if complete {
            self.passthrough = true;
            let whole = Bytes::from(std::mem::take(&mut self.buf));
            return self.message(whole);
        }
        Bytes::new()
    }

    fn overflow(&mut self) {
        self.passthrough = true;
        log::debug!(
            "a result of upstream {:?} over {LIMIT} bytes passes with its resource URIs unrewritten",
            self.upstream
        );
    }

    /// A whole JSON message, rewritten when it holds a URI to rewrite.
    fn message(&self, body: Bytes) -> Bytes {
        let Some(upstream) = self.upstream.as_deref().filter(|_| contains(&body, MARKER)) else {
            return body;
        };
        rewrite_message(&body, upstream).map_or(body, Bytes::from)
    }

    fn push_sse(&mut self, chunk: Bytes, end: bool) -> Bytes {
        // Whole events without a URI (or a log message to filter): the chunk as it is.
        if self.buf.is_empty() && chunk.ends_with(b"\n\n") && !self.interesting(&chunk) {
            return chunk;
        }
        self.buf.extend_from_slice(&chunk);
        let mut out = Vec::with_capacity(self.buf.len());
        let mut from = 0;
        while let Some(len) = event_len(&self.buf[from..]) {
            let event = &self.buf[from..from + len];
            match self.event(event) {
                Some(rewritten) => out.extend_from_slice(&rewritten),
                None => out.extend_from_slice(event),
            }
            from += len;
        }
        self.buf.drain(..from);
        if end || self.buf.len() > LIMIT {
            if !end {
                self.overflow();
            }
            out.append(&mut self.buf);
        }
        Bytes::from(out)
    }

    /// Whether `bytes` may hold something to change.
    fn interesting(&self, bytes: &[u8]) -> bool {
        (self.upstream.is_some() && contains(bytes, MARKER))
            || (self.log_floor.is_some() && contains(bytes, LOG))
    }

    /// One SSE event (with its blank line), rewritten when its message holds a URI; empty
    /// when it is a log message below the floor.
    fn event(&self, event: &[u8]) -> Option<Vec<u8>> {
        if !self.interesting(event) {
            return None;
        }
        let lines: Vec<&[u8]> = event
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect();
        let data: Vec<&[u8]> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(b"data:"))
            .map(|d| d.strip_prefix(b" ").unwrap_or(d))
            .collect();
        let json = data.join(&b'\n');
        if let Some(floor) = self.log_floor.filter(|_| contains(&json, LOG)) {
            if below(&json, floor) {
                return Some(Vec::new());
            }
        }
        let rewritten = rewrite_message(&json, self.upstream.as_deref()?)?;
        let mut out = Vec::with_capacity(event.len() + 64);
        let mut wrote = false;
        for l in lines {
            if l.starts_with(b"data:") {
                if !wrote {
                    // One `data:` line per line of the message (the upstream's lines were
                    // joined with `\n`): a raw newline never lands inside a line.
                    super::ids::push_data_lines(&rewritten, &mut out);
                    wrote = true;
                }
                continue;
            }
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        out.push(b'\n');
        Some(out)
    }
}

/// Length of the first complete event in `buf` (through its blank line), if there is one.
fn event_len(buf: &[u8]) -> Option<usize> {
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    let crlf = find(buf, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

type Members<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

fn members(raw: &RawValue) -> Option<Members<'_>> {
    serde_json::from_str(raw.get()).ok()
}

fn elements(raw: &RawValue) -> Vec<&RawValue> {
    serde_json::from_str(raw.get()).unwrap_or_default()
}

/// `msg` (one JSON-RPC message) with the URIs of its result in the exposed form of
/// `upstream`'s; `None` when it has none (or is no result).
pub fn rewrite_message(msg: &[u8], upstream: &str) -> Option<Vec<u8>> {
    let top: Members<'_> = serde_json::from_slice(msg).ok()?;
    let result = members(top.get("result")?)?;
    let mut found: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut uri_of = |raw: &RawValue| {
        if let Some(u) = members(raw).and_then(|m| m.get("uri").copied()) {
            if let Ok(own) = serde_json::from_str::<String>(u.get()) {
                found.push((crate::mcp::jsonrpc::span(msg, u.get()), own));
            }
        }
    };
    let block = |raw: &RawValue, uri_of: &mut dyn FnMut(&RawValue)| {
        let Some(m) = members(raw) else { return };
        let kind = m
            .get("type")
            .and_then(|t| serde_json::from_str::<Cow<'_, str>>(t.get()).ok());
        match kind.as_deref() {
            Some("resource_link") => uri_of(raw),
            Some("resource") => {
                if let Some(r) = m.get("resource") {
                    uri_of(r);
                }
            }
            _ => {}
        }
    };
    if let Some(c) = result.get("contents") {
        for item in elements(c) {
            uri_of(item);
        }
    }
    if let Some(c) = result.get("content") {
        for item in elements(c) {
            block(item, &mut uri_of);
        }
    }
    if let Some(ms) = result.get("messages") {
        for m in elements(ms) {
            let Some(content) = members(m).and_then(|m| m.get("content").copied()) else {
                continue;
            };
            if content.get().trim_start().starts_with('[') {
                for item in elements(content) {
                    block(item, &mut uri_of);
                }
            } else {
                block(content, &mut uri_of);
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    found.sort_by_key(|(span, _)| span.start);
    let mut out = Vec::with_capacity(msg.len() + found.len() * (upstream.len() + 16));
    let mut at = 0;
    let mut changed = false;
    for (span, own) in found {
        // Called for `names: prefixed` servers only (the separator names tools, not URIs).
        let prefixed = crate::registry::naming::Style::Prefixed("");
        let Some(exposed) = crate::registry::items::expose_uri(prefixed, upstream, &own) else {
            continue; // no scheme: not a URI the server could serve back
        };
        if span.start < at || span.end > msg.len() {
            continue;
        }
        out.extend_from_slice(&msg[at..span.start]);
        out.extend_from_slice(serde_json::to_string(&exposed).ok()?.as_bytes());
        at = span.end;
        changed = true;
    }
    out.extend_from_slice(&msg[at..]);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn read_contents_links_and_embedded_resources_are_exposed_other_bytes_kept() {
        let read = br#"{"jsonrpc":"2.0","id":1e400,"result":{"contents":[{"uri":"file:///docs/a.md","text":"x \"uri\""},{"uri":"notes://7","blob":"AA=="}]}}"#;
        let out = rewrite_message(read, "docs").unwrap();
        assert_eq!(
            text(&out),
            r#"{"jsonrpc":"2.0","id":1e400,"result":{"contents":[{"uri":"file://mcpgw/docs////docs/a.md","text":"x \"uri\""},{"uri":"notes://mcpgw/docs///7","blob":"AA=="}]}}"#
        );
        let call = br#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"see","uri":"not:me"},{"type":"resource_link","uri":"ui://w/v.html","name":"v"},{"type":"resource","resource":{"uri":"secret://k","text":"s"}}],"isError":false}}"#;
        let out = text(&rewrite_message(call, "apps").unwrap()).to_string();
        assert!(
            out.contains(r#""uri":"not:me""#),
            "a text block is not a link: {out}"
        );
        assert!(
            out.contains(r#""uri":"ui://mcpgw/apps///w/v.html""#),
            "{out}"
        );
        assert!(out.contains(r#""uri":"secret://mcpgw/apps///k""#), "{out}");
        let prompt = br#"{"jsonrpc":"2.0","id":3,"result":{"messages":[{"role":"user","content":{"type":"resource","resource":{"uri":"file:///x","text":""}}}]}}"#;
        let out = text(&rewrite_message(prompt, "d").unwrap()).to_string();
        assert!(out.contains(r#""uri":"file://mcpgw/d////x""#), "{out}");
    }

    #[test]
    fn messages_without_uris_or_results_are_left_alone() {
        assert!(
            rewrite_message(br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#, "d").is_none()
        );
        assert!(rewrite_message(br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///x"}}"#, "d").is_none());
        assert!(rewrite_message(
            br#"{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"no scheme"}]}}"#,
            "d"
        )
        .is_none());
    }

    #[test]
    fn sse_events_are_rewritten_one_by_one_across_chunks() {
        let mut r = ResultRewriter::new(Some("docs"), true, None);
        let plain = Bytes::from_static(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n");
        let out = r.push(plain.clone(), false);
        assert_eq!(out.as_ptr(), plain.as_ptr(), "passed without a copy");
        let a = r.push(Bytes::from_static(b"event: message\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"contents\":[{\"ur"), false);
        assert!(a.is_empty());
        let b = r.push(Bytes::from_static(b"i\":\"file:///a\"}]}}\n\n"), true);
        assert_eq!(
            text(&b),
            "event: message\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"contents\":[{\"uri\":\"file://mcpgw/docs////a\"}]}}\n\n"
        );
        // A message on several `data:` lines stays on several: no raw newline in a line.
        let mut r = ResultRewriter::new(Some("docs"), true, None);
        let out = r.push(
            Bytes::from_static(b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"contents\":[{\"uri\":\"file:///a\"}]}}\n\n"),
            true,
        );
        assert_eq!(
            text(&out),
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"contents\":[{\"uri\":\"file://mcpgw/docs////a\"}]}}\n\n"
        );
    }

    #[test]
    fn a_modern_clients_log_messages_below_its_level_are_dropped() {
        let events = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"quiet\"}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"warning\",\"data\":\"loud\"}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        let run = |floor| {
            let mut r = ResultRewriter::new(Some("d"), true, floor);
            text(&r.push(Bytes::from(events), true)).to_string()
        };
        let warning = run(Some(3));
        assert!(
            !warning.contains("quiet") && warning.contains("loud"),
            "{warning}"
        );
        assert!(warning.contains(r#""result":{}"#), "{warning}");
        let none = run(Some(8));
        assert!(!none.contains("quiet") && !none.contains("loud"), "{none}");
        assert!(none.contains(r#""result":{}"#), "{none}");
        assert_eq!(run(None), events, "a legacy client gets every message");
    }

    #[test]
    fn json_bodies_are_held_to_the_limit_then_passed() {
        let mut r = ResultRewriter::new(Some("docs"), false, None);
        assert!(r
            .push(
                Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"#),
                false
            )
            .is_empty());
        let out = r.push(Bytes::from_static(br#""file:///a"}]}}"#), true);
        assert!(text(&out).contains("file://mcpgw/docs////a"));
        let mut big = ResultRewriter::new(Some("docs"), false, None);
        let chunk = Bytes::from(vec![b' '; LIMIT + 1]);
        assert_eq!(big.push(chunk, false).len(), LIMIT + 1);
        let rest = Bytes::from_static(b"{}");
        assert_eq!(big.push(rest.clone(), true), rest);
        // A declared length: the chunk that completes it is the message, passed without a
        // copy when it holds no URI; the end of the body comes later, empty.
        let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let mut one = ResultRewriter::new(Some("docs"), false, None).with_length(Some(body.len()));
        let out = one.push(body.clone(), false);
        assert_eq!(out.as_ptr(), body.as_ptr());
        assert!(one.push(Bytes::new(), true).is_empty());
    }
}
