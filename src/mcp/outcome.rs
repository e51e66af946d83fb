//! What a `tools/call` ended with, read from the upstream's response body for the audit
//! record: the JSON-RPC error code, or the tool result's `isError`.
//!
//! The body is either one JSON-RPC response (`application/json`) or an SSE stream whose
//! events carry notifications (progress, logs), server-to-client requests and, last, the
//! response. Only members this module names are decoded; everything else is skipped by
//! serde without being built, so reading a 64 KiB result costs one scan.
//! Nothing here is trusted for a decision: the record says what the client was told.

use serde::Deserialize;

/// How the upstream answered a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOutcome {
    /// `error.code` of a JSON-RPC error response.
    pub error_code: Option<i64>,
    /// `result.isError` of a tool result (`false` when the result does not say).
    pub is_error: Option<bool>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<ResultPart>,
    #[serde(default)]
    error: Option<ErrorPart>,
}

#[derive(Deserialize)]
struct ResultPart {
    #[serde(default, rename = "isError")]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct ErrorPart {
    code: i64,
}

/// The outcome of the JSON-RPC response in `body` (`sse`: an event stream), or `None` when
/// it holds no response the gateway can read (cut off, not JSON, only notifications).
pub fn read(body: &[u8], sse: bool) -> Option<CallOutcome> {
    if !sse {
        return one(body);
    }
    // The response is the last event that is a response; earlier ones are notifications
    // or requests. Events are separated by a blank line; `data:` lines of one event join
    // with `\n` (the SSE rule), which JSON treats as whitespace.
    let mut found = None;
    let mut data: Vec<u8> = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if let Some(o) = one(&data) {
                found = Some(o);
            }
            data.clear();
        } else if let Some(rest) = line.strip_prefix(b"data:") {
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
        }
    }
    if let Some(o) = one(&data) {
        found = Some(o);
    }
    found
}

/// One JSON-RPC message: its outcome if it is a response.
fn one(json: &[u8]) -> Option<CallOutcome> {
    if json.is_empty() {
        return None;
    }
    let e: Envelope = serde_json::from_slice(json).ok()?;
    match (e.result, e.error) {
        (_, Some(err)) => Some(CallOutcome {
            error_code: Some(err.code),
            is_error: None,
        }),
        (Some(r), None) => Some(CallOutcome {
            error_code: None,
            is_error: Some(r.is_error.unwrap_or(false)),
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_response_says_its_error_or_is_error() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"5"}]}}"#;
        assert_eq!(read(ok, false).and_then(|o| o.is_error), Some(false));
        let failed = br#"{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}"#;
        assert_eq!(read(failed, false).and_then(|o| o.is_error), Some(true));
        let err = br#"{"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"bad"}}"#;
        assert_eq!(read(err, false).and_then(|o| o.error_code), Some(-32602));
    }

    #[test]
    fn the_last_response_event_of_a_stream_counts() {
        let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n\
id: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\r\ndata: \"result\":{\"isError\":true}}\r\n\r\n";
        assert_eq!(
            read(sse, true),
            Some(CallOutcome {
                error_code: None,
                is_error: Some(true)
            })
        );
        // A stream cut off before its response says nothing.
        let cut = b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"res";
        assert_eq!(read(cut, true), None);
    }

    #[test]
    fn what_is_not_a_response_says_nothing() {
        for body in [
            &b""[..],
            b"not json",
            br#"{"jsonrpc":"2.0","method":"notifications/message"}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"sampling/createMessage","params":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"error":{"message":"no code"}}"#,
            br#"[1,2]"#,
        ] {
            assert_eq!(read(body, false), None, "{}", String::from_utf8_lossy(body));
        }
    }
}
