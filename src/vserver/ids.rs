//! Gateway ids for server-to-client requests, and the SSE filter that hands them out.
//!
//! Several upstreams share one client session of a virtual server, and each numbers its own
//! server-to-client requests (`elicitation/create`, `sampling/createMessage`, `roots/list`)
//! from 0 or 1: two of them would collide on the client. So as an upstream's SSE answer to a
//! forwarded call passes, the id of every request in it becomes a *gateway id*, a JSON string
//!
//! ```text
//! "mcpgw.<upstream name>.<base64url of the upstream's raw id JSON>.<seal>"
//! ```
//!
//! and the client's answer (a POSTed JSON-RPC response with that id) is routed back by
//! [`super::reply`] with the upstream's id restored byte for byte (number or string, as
//! sent). Stateless: nothing is remembered per request, so there is no table to bound or
//! expire. The seal is a keyed digest (this process's key, [`crate::digest::keyed`]) of the
//! client session, the upstream and the raw id: only this gateway mints gateway ids. Without
//! it, a hostile upstream A could send a request whose own id already looks like a gateway id
//! for upstream B through one of the gaps below (an event passed on unrewritten), and the
//! user's answer to A's harmless question would reach B's pending one. A client forging ids
//! could only reach its own upstream sessions with its own credential, but is refused too.
//! The upstream sessions are held per replica, so an answer reaching another replica is
//! refused either way. `notifications/cancelled` for such a request (the
//! upstream gave up waiting) gets its `params.requestId` rewritten the same way.
//!
//! [`IdRewriter`] runs in the response body filter, so it is synchronous and bounded: it
//! holds at most one incomplete event, up to [`MAX_EVENT`] bytes. A longer event passes
//! through unrewritten (logged); a client answer to a request in it would then be refused
//! (400), never misrouted.

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};

use crate::mcp::jsonrpc::{self, MessageKind};

/// Prefix of every gateway id.
pub const PREFIX: &str = "mcpgw.";

/// Longest upstream id (raw JSON) that is rewritten: SDKs use small integers or UUIDs
/// (38 bytes quoted); 256 bytes keeps a gateway id under 400 bytes (6 + 32 + 1 + 342 + 2).
pub const MAX_RAW_ID: usize = 256;

/// Most bytes of one SSE event held while waiting for its end (1 MiB): a tool result is
/// usually far smaller, and a server-to-client request smaller still.
pub const MAX_EVENT: usize = 1024 * 1024;

/// The seal of a gateway id: see the module docs.
fn seal(session: crate::digest::Digest, upstream: &str, raw: &[u8]) -> String {
    let d = crate::digest::keyed(&[
        b"gateway-id",
        &session.to_le_bytes(),
        upstream.as_bytes(),
        raw,
    ]);
    format!("{d:032x}")
}

/// The gateway id (a JSON string, quotes included) for `raw`, the upstream's id JSON, on
/// client session `session`; `None` if it is longer than [`MAX_RAW_ID`].
pub fn encode(session: crate::digest::Digest, upstream: &str, raw: &[u8]) -> Option<String> {
    if raw.len() > MAX_RAW_ID {
        return None;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let seal = seal(session, upstream, raw);
    // Upstream names are `[A-Za-z0-9_-]{1,32}`, base64url and hex have no `.` or `"`: no
    // escaping.
    Some(format!("\"{PREFIX}{upstream}.{b64}.{seal}\""))
}

/// Why a client's response id is not a gateway id this server can route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecodable {
    /// Not a string of the form `mcpgw.<upstream>.<base64url>`.
    NotOurs,
    /// The encoded original id is not one JSON string or number.
    BadOriginal,
}

/// Decode a gateway id (the raw JSON of a response's id) on client session `session` into
/// the upstream's name and its raw original id; a seal that does not match is `NotOurs`. The original must be exactly one JSON string or number (no whitespace
/// around it): it is spliced into the body that goes upstream, so anything else (say
/// `1,"result":{}`) could add members to it.
pub fn decode(
    session: crate::digest::Digest,
    id_json: &[u8],
) -> Result<(String, Vec<u8>), Undecodable> {
    let text: Cow<'_, str> = serde_json::from_slice(id_json).map_err(|_| Undecodable::NotOurs)?;
    let rest = text.strip_prefix(PREFIX).ok_or(Undecodable::NotOurs)?;
    let (upstream, rest) = rest.split_once('.').ok_or(Undecodable::NotOurs)?;
    let (b64, sealed) = rest.split_once('.').ok_or(Undecodable::NotOurs)?;
    if upstream.is_empty() || b64.len() > MAX_RAW_ID * 4 / 3 + 4 {
        return Err(Undecodable::NotOurs);
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| Undecodable::NotOurs)?;
    if sealed != seal(session, upstream, &raw) {
        return Err(Undecodable::NotOurs);
    }
    let ok = matches!(raw.first(), Some(b'"' | b'-' | b'0'..=b'9'))
        && !raw.last().is_some_and(u8::is_ascii_whitespace)
        && serde_json::from_slice::<serde_json::Value>(&raw)
            .is_ok_and(|v| v.is_string() || v.is_number());
    if !ok {
        return Err(Undecodable::BadOriginal);
    }
    Ok((upstream.to_string(), raw))
}

/// The streaming filter over one upstream's SSE answer: see the module docs.
#[derive(Debug)]
pub struct IdRewriter {
    /// The client session the ids are sealed to.
    session: crate::digest::Digest,
    upstream: String,
    max_depth: usize,
    /// The incomplete event so far (empty between events).
    held: BytesMut,
    /// Bytes on the current line (0: at a line start).
    line_len: usize,
    /// The last byte was `\r` (a `\n` right after it ends the same line).
    prev_cr: bool,
    /// The current event outgrew [`MAX_EVENT`]: pass bytes through until it ends.
    skipping: bool,
    /// A 2026-07-28 client's stream ([`IdRewriter::refusing`]): server-to-client requests are
    /// taken out of the stream and kept here until [`IdRewriter::take_refused`], so the
    /// gateway can answer the upstream itself (an error, or the client's `inputResponses`).
    refused: Option<Vec<Refused>>,
    /// A resumed 2026-07-28 call (`proxy::mrtr`): the answer to the upstream request id
    /// `.0` (raw JSON) goes to the client with id `.1`, the retry's.
    respond_as: Option<(Vec<u8>, Vec<u8>)>,
}

/// A server-to-client request taken out of a 2026-07-28 client's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The upstream's raw id JSON.
    pub id: Vec<u8>,
    pub method: String,
    /// The whole JSON-RPC message.
    pub message: Vec<u8>,
}

/// Most server-to-client requests of one stream kept for refusal between two body chunks
/// (an upstream asks one at a time and waits; past this they are still removed, unanswered).
pub const MAX_REFUSED: usize = 16;

impl IdRewriter {
    pub fn new(session: crate::digest::Digest, upstream: &str, max_depth: usize) -> IdRewriter {
        IdRewriter {
            session,
            upstream: upstream.to_string(),
            max_depth,
            held: BytesMut::new(),
            line_len: 0,
            prev_cr: false,
            skipping: false,
            refused: None,
            respond_as: None,
        }
    }

    /// For a 2026-07-28 client, which cannot receive server-to-client requests (they are
    /// `InputRequiredResult`s in its revision): such requests are removed from the stream and
    /// queued for [`IdRewriter::take_refused`] (`proxy::mrtr` turns them into MRTR rounds
    /// where it bridges the call).
    #[must_use]
    pub fn refusing(mut self) -> IdRewriter {
        self.refused = Some(Vec::new());
        self
    }

    /// The server-to-client requests removed since the last call.
    pub fn take_refused(&mut self) -> Vec<Refused> {
        self.refused
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// From now on, the response to upstream request `original` (raw id JSON) goes out with
    /// id `retry` (a resumed 2026-07-28 call answers its retry, not the first request).
    pub fn respond_as(&mut self, original: Vec<u8>, retry: Vec<u8>) {
        self.respond_as = Some((original, retry));
    }

    /// Take one chunk of the stream; returns what to send on now (complete events,
    /// rewritten where needed). At `end` whatever is held goes out as it is.
    pub fn push(&mut self, chunk: &Bytes, end: bool) -> Bytes {
        let mut out = Out {
            chunk,
            upto: 0,
            owned: None,
        };
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            let event_end = match b {
                b'\n' if self.prev_cr => {
                    // The second half of a CRLF: the line ended at the `\r`.
                    self.prev_cr = false;
                    false
                }
                b'\n' | b'\r' => {
                    self.prev_cr = b == b'\r';
                    let blank = self.line_len == 0;
                    self.line_len = 0;
                    blank
                }
                _ => {
                    self.prev_cr = false;
                    self.line_len += 1;
                    false
                }
            };
            if !event_end {
                continue;
            }
            let piece = &chunk[start..=i];
            start = i + 1;
            if self.skipping {
                self.skipping = false;
                out.same(start);
            } else if self.held.is_empty() {
                match self.rewrite_event(piece) {
                    Cow::Borrowed(_) => out.same(start),
                    Cow::Owned(p) => out.other(&p, start),
                }
            } else {
                self.held.extend_from_slice(piece);
                let event = std::mem::take(&mut self.held);
                out.other(&self.rewrite_event(&event), start);
            }
        }
        let mut rest = &chunk[start..];
        if self.held.is_empty() && !self.skipping {
            // Line ends before the next event's first field (the `\n` of a CRLF whose `\r`
            // ended the last event, blank lines) go out now: held back, they would delay
            // the event a client is waiting for until the next one arrives.
            let lead = rest
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            start += lead;
            out.same(start);
            rest = &rest[lead..];
        }
        if self.skipping || end {
            out.insert(&self.held.split());
            out.same(chunk.len());
        } else if self.held.len() + rest.len() > MAX_EVENT {
            log::warn!(
                "an SSE event from upstream {} is over {MAX_EVENT} bytes: passed on without rewriting server-to-client request ids",
                self.upstream
            );
            out.insert(&self.held.split());
            out.same(chunk.len());
            self.skipping = true;
        } else if !rest.is_empty() {
            // An incomplete event waits for its end (not in the output).
            self.held.extend_from_slice(rest);
        }
        out.finish()
    }

    /// One complete event, with the id of a server-to-client request (or the `requestId`
    /// of a cancellation) replaced by a gateway id.
    fn rewrite_event<'e>(&mut self, event: &'e [u8]) -> Cow<'e, [u8]> {
        // Only messages with a `method` are rewritten; the call's result (usually the bulk
        // of the stream) is skipped without a parse. The key must be spelled plainly: an
        // escaped spelling passes unrewritten, so the client's answer is refused, not lost.
        // A resumed call's answer gets the retry's id, whatever bytes its result holds (a
        // result may well contain `"method"`): checked first, only while resuming.
        if self.respond_as.is_some() {
            if let Some(new) = self.answer_as_retry(event) {
                return Cow::Owned(new);
            }
        }
        if !contains(event, b"\"method\"") {
            return Cow::Borrowed(event);
        }
        let lines = data_lines(event);
        if self.refused.is_some() && self.refuse(event, &lines) {
            return Cow::Owned(Vec::new());
        }
        match lines.as_slice() {
            [] => Cow::Borrowed(event),
            [one] => match self.rewrite_message(&event[one.clone()]) {
                Some(new) => {
                    let mut out = Vec::with_capacity(event.len() + 64);
                    out.extend_from_slice(&event[..one.start]);
                    out.extend_from_slice(&new);
                    out.extend_from_slice(&event[one.end..]);
                    Cow::Owned(out)
                }
                None => Cow::Borrowed(event),
            },
            [first, ..] => {
                // Several `data:` lines: the message is their values joined by `\n`.
                let mut joined = Vec::new();
                for (n, r) in lines.iter().enumerate() {
                    if n > 0 {
                        joined.push(b'\n');
                    }
                    joined.extend_from_slice(&event[r.clone()]);
                }
                let Some(new) = self.rewrite_message(&joined) else {
                    return Cow::Borrowed(event);
                };
                // The first data line carries the whole message (JSON has no raw newline
                // inside a string, so the joining `\n`s were whitespace); the others go.
                let mut out = Vec::with_capacity(event.len() + 64);
                out.extend_from_slice(&event[..first.start]);
                for (n, part) in new.split(|&b| b == b'\n').enumerate() {
                    if n > 0 {
                        out.extend_from_slice(b"\ndata: ");
                    }
                    out.extend_from_slice(part);
                }
                let mut pos = first.end;
                for r in &lines[1..] {
                    // Keep what lies between data lines (other fields), drop the data line
                    // itself together with the terminator before it.
                    let line_start = line_start_before(event, r.start);
                    out.extend_from_slice(&event[pos..line_start]);
                    pos = r.end;
                }
                out.extend_from_slice(&event[pos..]);
                Cow::Owned(out)
            }
        }
    }

    /// In refusing mode: whether the event is a server-to-client request (then queued).
    fn refuse(&mut self, event: &[u8], lines: &[Range<usize>]) -> bool {
        let joined = joined_data(event, lines);
        let Ok(call) = jsonrpc::parse(&joined, self.max_depth) else {
            return false;
        };
        if call.kind != MessageKind::Request {
            return false;
        }
        let raw = call
            .id
            .clone()
            .and_then(|r| joined.get(r))
            .map(<[u8]>::to_vec);
        let method = call.method_name(&joined).unwrap_or_default().into_owned();
        if let (Some(id), Some(queue)) = (raw, self.refused.as_mut()) {
            if queue.len() < MAX_REFUSED {
                queue.push(Refused {
                    id,
                    method,
                    message: joined,
                });
            }
        }
        true
    }

    /// A resumed call's answer event with its id replaced by the retry's (`None`: not it).
    fn answer_as_retry(&self, event: &[u8]) -> Option<Vec<u8>> {
        let (original, retry) = self.respond_as.as_ref()?;
        let joined = joined_data(event, &data_lines(event));
        let call = jsonrpc::parse(&joined, self.max_depth).ok()?;
        if call.kind != MessageKind::Response {
            return None;
        }
        let span = call.id.clone()?;
        if joined.get(span.clone())? != original.as_slice() {
            return None;
        }
        let mut message = Vec::with_capacity(joined.len() + retry.len());
        message.extend_from_slice(&joined[..span.start]);
        message.extend_from_slice(retry);
        message.extend_from_slice(&joined[span.end..]);
        let mut out = Vec::with_capacity(message.len() + 24);
        out.extend_from_slice(b"event: message\n");
        push_data_lines(&message, &mut out);
        out.push(b'\n');
        Some(out)
    }

    /// The message with its id (request) or `params.requestId` (cancellation) replaced,
    /// or `None` when there is nothing to replace.
    fn rewrite_message(&self, data: &[u8]) -> Option<Vec<u8>> {
        let call = jsonrpc::parse(data, self.max_depth).ok()?;
        let span = match call.kind {
            MessageKind::Request => call.id.clone()?,
            MessageKind::Notification
                if call.method_name(data).as_deref() == Some("notifications/cancelled") =>
            {
                request_id_span(data)?
            }
            _ => return None,
        };
        let raw = data.get(span.clone())?;
        let Some(id) = encode(self.session, &self.upstream, raw) else {
            log::warn!(
                "a server-to-client request id from upstream {} is over {MAX_RAW_ID} bytes: passed on unrewritten",
                self.upstream
            );
            return None;
        };
        let mut out = Vec::with_capacity(data.len() + id.len());
        out.extend_from_slice(&data[..span.start]);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&data[span.end..]);
        Some(out)
    }
}

/// An event's message: the values of its `data:` lines joined by `\n`.
/// `message` as the `data:` lines of an SSE event: one per line of it, so a message that
/// came on several `data:` lines (joined with `\n`) never puts a raw newline inside one.
pub(crate) fn push_data_lines(message: &[u8], out: &mut Vec<u8>) {
    for line in message.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
}

fn joined_data(event: &[u8], lines: &[Range<usize>]) -> Vec<u8> {
    let mut joined = Vec::new();
    for (n, r) in lines.iter().enumerate() {
        if n > 0 {
            joined.push(b'\n');
        }
        joined.extend_from_slice(&event[r.clone()]);
    }
    joined
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Spans of the values of an event's `data:` lines (after `data:` and one optional space).
fn data_lines(event: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i <= event.len() {
        let at_end = i == event.len();
        if at_end || matches!(event[i], b'\n' | b'\r') {
            let line = &event[start..i];
            if let Some(v) = line.strip_prefix(b"data:") {
                let skip = usize::from(v.first() == Some(&b' '));
                out.push(start + 5 + skip..i);
            }
            if !at_end && event[i] == b'\r' && event.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    out
}

/// Where the line holding `pos` starts, minus the terminator before it.
fn line_start_before(event: &[u8], pos: usize) -> usize {
    let mut s = pos;
    while s > 0 && !matches!(event[s - 1], b'\n' | b'\r') {
        s -= 1;
    }
    // Step back over the terminator ending the previous line (`\n`, `\r` or `\r\n`).
    if s > 0 && event[s - 1] == b'\n' {
        s -= 1;
        if s > 0 && event[s - 1] == b'\r' {
            s -= 1;
        }
    } else {
        s = s.saturating_sub(1);
    }
    s
}

/// The span of `params.requestId` in a (strictly parsed) notification.
pub(super) fn request_id_span(data: &[u8]) -> Option<Range<usize>> {
    #[derive(serde::Deserialize)]
    struct N<'a> {
        #[serde(borrow)]
        params: Option<P<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(rename = "requestId", borrow)]
        request_id: Option<&'a serde_json::value::RawValue>,
    }
    let raw = serde_json::from_slice::<N<'_>>(data)
        .ok()?
        .params?
        .request_id?
        .get();
    if !matches!(raw.as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9')) {
        return None;
    }
    let start = (raw.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    Some(start..start + raw.len())
}

/// The output of [`IdRewriter::push`], built lazily: while every piece passes unchanged it is
/// a prefix of the chunk (a `Bytes::slice`, no copy); the first rewritten or held piece
/// copies that prefix once and the rest is appended.
struct Out<'c> {
    chunk: &'c Bytes,
    /// How far into the chunk the output has got.
    upto: usize,
    owned: Option<BytesMut>,
}

impl Out<'_> {
    /// The chunk's bytes up to `end` go out as they came.
    fn same(&mut self, end: usize) {
        if let Some(o) = &mut self.owned {
            o.extend_from_slice(self.chunk.get(self.upto..end).unwrap_or_default());
        }
        self.upto = end;
    }

    /// `bytes` go out in place of the chunk's bytes up to `end`.
    fn other(&mut self, bytes: &[u8], end: usize) {
        let prefix = self.chunk.get(..self.upto).unwrap_or_default();
        self.owned
            .get_or_insert_with(|| BytesMut::from(prefix))
            .extend_from_slice(bytes);
        self.upto = end;
    }

    /// `bytes` go out here, in addition to the chunk's.
    fn insert(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let prefix = self.chunk.get(..self.upto).unwrap_or_default();
        self.owned
            .get_or_insert_with(|| BytesMut::from(prefix))
            .extend_from_slice(bytes);
    }

    fn finish(self) -> Bytes {
        match self.owned {
            Some(o) => o.freeze(),
            None => self.chunk.slice(..self.upto),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client session the tests' ids are sealed to.
    const S: crate::digest::Digest = 7;

    fn id_of(upstream: &str, raw: &str) -> String {
        encode(S, upstream, raw.as_bytes()).unwrap()
    }

    #[test]
    fn a_resumed_calls_answer_takes_the_retrys_id_whatever_its_result_holds() {
        let mut ids = IdRewriter::new(7, "docs", 64);
        ids.respond_as(b"1".to_vec(), b"\"retry-2\"".to_vec());
        // A result mentioning "method" (a tool's structured output) is still the answer,
        // and a message on two data lines stays on two lines.
        let event = Bytes::from_static(
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"structuredContent\":{\"method\":\"GET\"}}}\n\n",
        );
        let out = ids.push(&event, true);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"retry-2\",\ndata: \"result\":{\"structuredContent\":{\"method\":\"GET\"}}}\n\n"
        );
        // A server-to-client request with the same id value is not the answer.
        let request = Bytes::from_static(
            b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}\n\n",
        );
        let out = ids.push(&request, true);
        assert!(!std::str::from_utf8(&out).unwrap().contains("retry-2"));
    }

    #[test]
    fn a_gateway_id_gives_back_the_original_byte_for_byte() {
        for raw in ["0", "1.50", "-7", "\"abc\"", "\"\\u0041\"", "1e3"] {
            let id = id_of("crm", raw);
            assert!(id.starts_with("\"mcpgw.crm."), "{id}");
            assert_eq!(
                decode(S, id.as_bytes()),
                Ok(("crm".to_string(), raw.as_bytes().to_vec()))
            );
        }
        assert_eq!(encode(S, "crm", &[b'1'; MAX_RAW_ID + 1]), None);
    }

    #[test]
    fn only_this_gateway_mints_ids_for_this_session() {
        let id = id_of("crm", "5");
        // Another client session, another upstream's label, a changed seal: not ours.
        assert_eq!(decode(S + 1, id.as_bytes()), Err(Undecodable::NotOurs));
        let relabelled = id.replace("mcpgw.crm.", "mcpgw.billing.");
        assert_eq!(decode(S, relabelled.as_bytes()), Err(Undecodable::NotOurs));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("5");
        let unsealed = format!("\"mcpgw.crm.{b64}\"");
        assert_eq!(decode(S, unsealed.as_bytes()), Err(Undecodable::NotOurs));
        let wrong = format!("\"mcpgw.crm.{b64}.{}\"", "0".repeat(32));
        assert_eq!(decode(S, wrong.as_bytes()), Err(Undecodable::NotOurs));
    }

    #[test]
    fn only_a_single_string_or_number_decodes() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let forged = |s: &str| format!("\"mcpgw.crm.{}.{}\"", b64(s), seal(S, "crm", s.as_bytes()));
        for bad in [
            r#"1,"result":{}"#,
            "{}",
            "null",
            "true",
            " 1",
            "1 ",
            "[1]",
            "",
        ] {
            assert_eq!(
                decode(S, forged(bad).as_bytes()),
                Err(Undecodable::BadOriginal),
                "{bad}"
            );
        }
        for bad in [
            "1",
            "\"1\"",
            "\"other.crm.MQ\"",
            "\"mcpgw.crm\"",
            "\"mcpgw..MQ\"",
            "\"mcpgw.crm.!!\"",
        ] {
            assert_eq!(
                decode(S, bad.as_bytes()),
                Err(Undecodable::NotOurs),
                "{bad}"
            );
        }
    }

    fn run(chunks: &[&str]) -> String {
        let mut r = IdRewriter::new(S, "crm", 64);
        let mut out = Vec::new();
        for (n, c) in chunks.iter().enumerate() {
            let b = r.push(&Bytes::copy_from_slice(c.as_bytes()), n + 1 == chunks.len());
            out.extend_from_slice(&b);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn requests_are_rewritten_and_everything_else_passes_as_sent() {
        let req = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"elicitation/create\",\"params\":{}}\n\n";
        let note = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n";
        let result = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"method\":1}}\r\n\r\n";
        let out = run(&[req, note, result]);
        let gid = id_of("crm", "0");
        assert_eq!(
            out,
            format!(
                "{}{note}{result}",
                req.replace("\"id\":0", &format!("\"id\":{gid}"))
            )
        );
    }

    #[test]
    fn events_split_anywhere_across_chunks_are_rewritten_the_same() {
        let stream = "id: a\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"roots/list\"}\r\n\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":\"x\"}}\r\r";
        let whole = run(&[stream]);
        let gid = id_of("crm", "\"x\"");
        assert_eq!(whole.matches(&gid).count(), 2, "{whole}");
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(run(&[a, b]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_message_on_several_data_lines_is_rewritten_too() {
        let stream = "data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":3,\"method\":\"sampling/createMessage\"}\nid: 9\n\n";
        let out = run(&[stream]);
        let gid = id_of("crm", "3");
        assert_eq!(
            out,
            format!("data: {{\"jsonrpc\":\"2.0\",\ndata: \"id\":{gid},\"method\":\"sampling/createMessage\"}}\nid: 9\n\n")
        );
    }

    #[test]
    fn an_oversized_event_passes_through_whole_and_the_next_one_is_rewritten() {
        let big = format!(
            "data: {{\"method\":\"x\",\"pad\":\"{}\"}}\n\n",
            "a".repeat(MAX_EVENT)
        );
        let req = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}\n\n";
        // Held, then over the cap (passed on, skipping), then its end and the next event.
        let (a, rest) = big.split_at(10);
        let (b, end) = rest.split_at(rest.len() - 2);
        let c = format!("{end}{req}");
        let out = run(&[a, b, &c]);
        assert!(out.starts_with(&big));
        assert_eq!(
            out.len(),
            big.len() + req.len() + id_of("crm", "1").len() - 1
        );
    }

    #[test]
    fn nothing_of_a_finished_crlf_event_is_held_back() {
        let mut r = IdRewriter::new(S, "crm", 64);
        let ev = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}\r\n\r\n";
        let out = r.push(&Bytes::copy_from_slice(ev.as_bytes()), false);
        assert!(out.ends_with(b"}\r\n\r\n"), "{out:?}");
        assert!(r.held.is_empty());
    }

    #[test]
    fn a_chunk_of_whole_events_without_requests_is_not_copied() {
        let mut r = IdRewriter::new(S, "crm", 64);
        let chunk = Bytes::from_static(b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n");
        let out = r.push(&chunk, false);
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        // Whole events then the start of the next: the whole ones go out as a slice of the
        // chunk (no copy), the start is held for its end.
        let mut r = IdRewriter::new(S, "crm", 64);
        let chunk = Bytes::from_static(
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jso",
        );
        let out = r.push(&chunk, false);
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert_eq!(&out[..], &chunk[..chunk.len() - b"data: {\"jso".len()]);
        let rest = r.push(
            &Bytes::from_static(b"nrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"),
            false,
        );
        assert_eq!(
            &rest[..],
            &b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"[..]
        );
    }

    #[test]
    fn a_refusing_rewriter_takes_requests_out_and_queues_them() {
        let mut r = IdRewriter::new(S, "up", 64).refusing();
        let ask = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"elicitation/create\",\"params\":{}}\n\n";
        let progress = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n";
        let result = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        let out = r.push(&Bytes::from(format!("{progress}{ask}{result}")), false);
        assert_eq!(out, Bytes::from(format!("{progress}{result}")));
        let refused = r.take_refused();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].id, b"7");
        assert_eq!(refused[0].method, "elicitation/create");
        assert!(refused[0].message.starts_with(b"{\"jsonrpc\""));
        assert!(r.take_refused().is_empty());
        // Without `refusing`, the request passes with a gateway id.
        let mut plain = IdRewriter::new(S, "up", 64);
        let out = plain.push(&Bytes::from(ask), false);
        assert!(String::from_utf8_lossy(&out).contains(PREFIX));
        assert!(plain.take_refused().is_empty());
    }
}
