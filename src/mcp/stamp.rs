//! `resultType: "complete"` on results relayed from a handshake-era upstream to a 2026-07-28
//! client.
//!
//! A modern result must carry `resultType` (2026-07-28 schema; the official Python SDK
//! refuses a `tools/call` result without it), and a handshake-era upstream never writes one.
//! The gateway holds such upstreams' sessions for modern clients, so it adds the member to
//! the `result` object of each JSON-RPC response it relays to one, as the response streams:
//! nothing is buffered, and a chunk without an insertion passes as it is (zero copy).
//!
//! [`ResultStamp`] is a small streaming JSON lexer (string, escape and depth state; the keys
//! at depth 1 and 2), run over a JSON body or over the `data:` lines of an SSE body (one
//! message per event). It inserts before the `}` that closes a top-level `result` object
//! that has no `resultType` of its own. Requests and notifications on the stream have no
//! top-level `result` and are left alone; so is an error response.
//!
//! A JSON body with a `Content-Length` keeps it ([`ResultStamp::with_length`]): the length
//! grows by the longest insertion, and the end of the body is padded with spaces for what
//! was not inserted (whitespace after a JSON value is part of the JSON text, RFC 8259 §2).
//! Switching such an answer to chunked framing instead cost a second write per response.

/// The member added to a result object.
const MEMBER: &[u8] = br#""resultType":"complete""#;

/// Keys longer than this are neither `result` nor `resultType`: not kept.
const KEY_CAP: usize = 16;

/// The stamping state of one response body.
#[derive(Debug, Default)]
pub struct ResultStamp {
    sse: bool,
    line: Line,
    json: Lexer,
    /// Bytes promised beyond the upstream's `Content-Length` and not inserted yet.
    owed: usize,
    /// The body's length is declared: insert only what `owed` still covers (a body with a
    /// second top-level `result`, a duplicate key, is left unstamped there rather than
    /// grown past the length the client was promised).
    bounded: bool,
}

/// What a JSON body with a `Content-Length` grows by: the member with its comma.
pub const GROWTH: usize = MEMBER.len() + 1;

/// Where an SSE body is in its current line.
#[derive(Debug, Default)]
enum Line {
    /// At the start of a line, collecting its first bytes to learn its field.
    #[default]
    Start,
    Prefix(u8, [u8; 5]),
    /// In a `data:` line: its bytes are JSON.
    Data,
    /// In any other line (`event:`, `id:`, a comment).
    Other,
}

#[derive(Debug, Default)]
struct Lexer {
    depth: usize,
    in_string: bool,
    escape: bool,
    /// The next string at depth 1 (or 2 inside `result`) is a key.
    expect_key: bool,
    /// Capturing a key's bytes (`None`: not a key, or longer than [`KEY_CAP`]).
    key: Option<Vec<u8>>,
    key_depth: usize,
    /// The last key at depth 1 was `result`.
    last_is_result: bool,
    /// Inside the top-level `result` object.
    in_result: bool,
    result_nonempty: bool,
    result_has_type: bool,
}

impl ResultStamp {
    /// A stamp for a body of this kind (`sse`: `text/event-stream`, else one JSON message).
    pub fn new(sse: bool) -> ResultStamp {
        ResultStamp {
            sse,
            ..ResultStamp::default()
        }
    }

    /// A stamp for a JSON body whose `Content-Length` was raised by [`GROWTH`]: the
    /// bytes not inserted are owed, and paid as trailing spaces by [`ResultStamp::finish`].
    pub fn with_length() -> ResultStamp {
        ResultStamp {
            owed: GROWTH,
            bounded: true,
            ..ResultStamp::default()
        }
    }

    /// The spaces still owed at the end of the body (`None`: nothing owed).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let owed = std::mem::take(&mut self.owed);
        (owed > 0).then(|| vec![b' '; owed])
    }

    /// Process the next chunk: `Some(bytes)` when something was inserted in it (send those
    /// instead), `None` to send the chunk unchanged.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let mut inserts: Vec<(usize, bool)> = Vec::new();
        for (i, &b) in chunk.iter().enumerate() {
            if self.sse && !self.sse_byte(b) {
                continue;
            }
            if let Some(comma) = self.json.byte(b) {
                inserts.push((i, comma));
            }
        }
        if inserts.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(chunk.len() + inserts.len() * (MEMBER.len() + 1));
        let mut from = 0;
        for (at, comma) in inserts {
            let need = MEMBER.len() + usize::from(comma);
            if self.bounded && need > self.owed {
                continue;
            }
            out.extend_from_slice(chunk.get(from..at).unwrap_or_default());
            if comma {
                out.push(b',');
            }
            out.extend_from_slice(MEMBER);
            self.owed = self.owed.saturating_sub(MEMBER.len() + usize::from(comma));
            from = at;
        }
        out.extend_from_slice(chunk.get(from..).unwrap_or_default());
        Some(out)
    }

    /// Track the SSE line structure; whether `b` is a byte of a `data:` line's JSON.
    fn sse_byte(&mut self, b: u8) -> bool {
        if b == b'\n' {
            if matches!(self.line, Line::Start) {
                // A blank line ends the event: the next message starts afresh.
                self.json = Lexer::default();
            }
            let was_data = matches!(self.line, Line::Data);
            self.line = Line::Start;
            // A newline inside a multi-line `data:` is JSON whitespace.
            return was_data;
        }
        match &mut self.line {
            Line::Data => true,
            Line::Other => false,
            Line::Start => {
                if b == b'\r' {
                    return false;
                }
                let mut p = [0u8; 5];
                p[0] = b;
                self.line = Line::Prefix(1, p);
                false
            }
            Line::Prefix(n, p) => {
                if let Some(slot) = p.get_mut(usize::from(*n)) {
                    *slot = b;
                }
                *n += 1;
                if usize::from(*n) == p.len() {
                    self.line = if p == b"data:" {
                        Line::Data
                    } else {
                        Line::Other
                    };
                }
                false
            }
        }
    }
}

impl Lexer {
    /// One byte of JSON; `Some(comma)` when the member goes in before this byte (with a
    /// leading comma when the result object already has members).
    fn byte(&mut self, b: u8) -> Option<bool> {
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                self.end_key();
                return None;
            }
            if let Some(k) = &mut self.key {
                if k.len() < KEY_CAP {
                    k.push(b);
                } else {
                    self.key = None;
                }
            }
            return None;
        }
        if self.in_result && self.depth == 2 && !b.is_ascii_whitespace() && b != b'}' {
            self.result_nonempty = true;
        }
        match b {
            b'"' => {
                self.in_string = true;
                let key_here =
                    self.expect_key && (self.depth == 1 || (self.in_result && self.depth == 2));
                if key_here {
                    self.key = Some(Vec::new());
                    self.key_depth = self.depth;
                    self.expect_key = false;
                }
            }
            b'{' => {
                self.depth += 1;
                if self.depth == 1 {
                    self.expect_key = true;
                } else if self.depth == 2 && self.last_is_result {
                    self.in_result = true;
                    self.result_nonempty = false;
                    self.result_has_type = false;
                    self.expect_key = true;
                }
            }
            b'[' => self.depth += 1,
            b'}' => {
                let stamp = self.in_result && self.depth == 2;
                self.depth = self.depth.saturating_sub(1);
                if stamp {
                    self.in_result = false;
                    self.last_is_result = false;
                    if !self.result_has_type {
                        return Some(self.result_nonempty);
                    }
                }
            }
            b']' => self.depth = self.depth.saturating_sub(1),
            b',' if self.depth == 1 || (self.in_result && self.depth == 2) => {
                self.expect_key = true;
            }
            _ => {}
        }
        None
    }

    fn end_key(&mut self) {
        let Some(k) = self.key.take() else {
            return;
        };
        if self.key_depth == 1 {
            self.last_is_result = k == b"result";
        } else if k == b"resultType" {
            self.result_has_type = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `body` in chunks of `size`, returning what the client receives.
    fn run(sse: bool, body: &str, size: usize) -> String {
        let mut s = ResultStamp::new(sse);
        let mut out = Vec::new();
        for chunk in body.as_bytes().chunks(size) {
            match s.feed(chunk) {
                Some(b) => out.extend_from_slice(&b),
                None => out.extend_from_slice(chunk),
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_json_result_gets_result_type_at_any_chunking() {
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a \"result\":{} }"}],"structuredContent":{"result":{"x":1}},"isError":false}}"#;
        let want = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a \"result\":{} }"}],"structuredContent":{"result":{"x":1}},"isError":false,"resultType":"complete"}}"#;
        for size in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(run(false, body, size), want, "chunks of {size}");
        }
        let v: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(v["result"]["resultType"], "complete");
    }

    #[test]
    fn empty_results_errors_and_stamped_results() {
        assert_eq!(
            run(false, r#"{"jsonrpc":"2.0","id":1,"result": { } }"#, 5),
            r#"{"jsonrpc":"2.0","id":1,"result": { "resultType":"complete"} }"#
        );
        let error = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"result"}}"#;
        assert_eq!(run(false, error, 3), error);
        let already = r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required"}}"#;
        assert_eq!(run(false, already, 4), already);
        // `result` as a value, not a key, at depth 1.
        let value = r#"{"jsonrpc":"2.0","method":"result","params":{"a":{}}}"#;
        assert_eq!(run(false, value, 4), value);
    }

    #[test]
    fn a_length_framed_body_grows_by_exactly_the_promised_bytes() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#,
            // A duplicate top-level `result`: one insertion fits the promise, never two.
            r#"{"jsonrpc":"2.0","id":1,"result":{"a":1},"result":{"b":2}}"#,
        ] {
            let mut s = ResultStamp::with_length();
            let mut out = Vec::new();
            for chunk in body.as_bytes().chunks(4) {
                match s.feed(chunk) {
                    Some(b) => out.extend_from_slice(&b),
                    None => out.extend_from_slice(chunk),
                }
            }
            out.extend(s.finish().unwrap_or_default());
            assert_eq!(out.len(), body.len() + GROWTH, "{body}");
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            if body.matches(r#""result""#).count() == 1 {
                assert_eq!(
                    v["result"].is_object(),
                    v["result"]["resultType"] == "complete"
                );
            }
            assert_eq!(s.finish(), None, "paid once");
        }
    }

    #[test]
    fn sse_events_are_stamped_one_message_each() {
        let body = "id: 0\ndata:\n\nevent: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[]}}\r\n\r\n";
        let want = "id: 0\ndata:\n\nevent: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[],\"resultType\":\"complete\"}}\r\n\r\n";
        for size in [1, 2, 5, 13, 4096] {
            assert_eq!(run(true, body, size), want, "chunks of {size}");
        }
        // `data:` in a comment or an `event:` line is not JSON.
        let odd = ": data: {\"result\":{}}\nevent: {\"result\":{}}\n\n";
        assert_eq!(run(true, odd, 3), odd);
    }
}
