//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): every request belongs to a
//! trace. A valid incoming `traceparent` is continued; an absent or invalid one starts a new
//! trace (never an error: a client's broken tracing must not break its calls). The gateway is
//! one span of the trace: the upstream receives `traceparent` with the same trace id and the
//! gateway's own span id as parent id, and the trace id goes to the logs and the audit record.
//!
//! Only version `00` is accepted, parsed strictly: exactly 55 characters, lowercase hex,
//! trace id and parent id not all zero. A later version is treated as invalid (a new trace),
//! which the spec allows for a participant that does not know it.
//! The ids are fixed-size arrays rendered to hex on demand: no allocation per request.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name: passed on only with the `traceparent` it belongs to.
pub const TRACESTATE: &str = "tracestate";

/// Length of a version-00 `traceparent`: `00-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;
/// `sampled` (bit 0) and Level 2's `random` (bit 1): the only flags defined; others are
/// cleared rather than passed on with a meaning we cannot vouch for.
const KNOWN_FLAGS: u8 = 0b11;
/// Flags of a trace the gateway starts: sampled (the gateway records the request in its
/// logs and audit trail) and random (its trace id comes from a CSPRNG).
const STARTED_FLAGS: u8 = 0b11;

/// A 16-byte trace id; `Display` is its 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span (parent) id; `Display` is its 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanId(pub [u8; 8]);

/// The trace one request belongs to, and the gateway's span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace {
    pub trace_id: TraceId,
    /// The caller's span (the incoming parent id); `None` when the gateway started the trace.
    pub parent: Option<SpanId>,
    /// The gateway's own span: the parent id the upstream sees.
    pub span: SpanId,
    pub flags: u8,
}

impl Trace {
    /// Continue the trace of a valid `traceparent` (the request's only one), else start a
    /// new one.
    pub fn from_headers<'a>(mut traceparent: impl Iterator<Item = &'a [u8]>) -> Trace {
        // Two traceparent headers cannot be told apart: neither is trusted.
        let parsed = match (traceparent.next(), traceparent.next()) {
            (Some(v), None) => parse(v),
            _ => None,
        };
        let span = SpanId(nonzero(
            fresh().to_le_bytes()[..8].try_into().unwrap_or([1; 8]),
        ));
        match parsed {
            Some((trace_id, parent, flags)) => Trace {
                trace_id,
                parent: Some(parent),
                span,
                flags,
            },
            None => Trace {
                trace_id: TraceId(nonzero(fresh().to_le_bytes())),
                parent: None,
                span,
                flags: STARTED_FLAGS,
            },
        }
    }

    /// Whether the incoming `traceparent` was continued (so its `tracestate` may go on).
    pub fn continued(&self) -> bool {
        self.parent.is_some()
    }

    /// The `traceparent` value for the upstream: this trace, the gateway's span as parent.
    pub fn header_value(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..3].copy_from_slice(b"00-");
        hex_into(&self.trace_id.0, &mut out[3..35]);
        out[35] = b'-';
        hex_into(&self.span.0, &mut out[36..52]);
        out[52] = b'-';
        hex_into(&[self.flags], &mut out[53..55]);
        out
    }
}

/// 128 fresh bits: SipHash-1-3 (a PRF) under the process's random key (drawn from
/// `ring::rand` at start, see [`crate::digest`]) of a process-wide counter. Unpredictable
/// without the key, never repeated within a process, independent across processes. A whole
/// trace (ids included) measured 53-60 ns; a `getrandom` system call per request, 355-405 ns.
fn fresh() -> u128 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    crate::digest::keyed(&[b"w3c-trace-context-ids", &n.to_le_bytes()])
}

/// An all-zero id is invalid; a PRF gives one with probability 2^-64 (span) or 2^-128.
fn nonzero<const N: usize>(mut id: [u8; N]) -> [u8; N] {
    if id == [0; N] {
        id[N - 1] = 1;
    }
    id
}

/// Parse a version-00 `traceparent` strictly; `None` when it is not one.
pub fn parse(v: &[u8]) -> Option<(TraceId, SpanId, u8)> {
    if v.len() != LEN || &v[..3] != b"00-" || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let mut trace = [0u8; 16];
    let mut parent = [0u8; 8];
    let mut flags = [0u8; 1];
    unhex_into(&v[3..35], &mut trace)?;
    unhex_into(&v[36..52], &mut parent)?;
    unhex_into(&v[53..55], &mut flags)?;
    if trace == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((TraceId(trace), SpanId(parent), flags[0] & KNOWN_FLAGS))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

/// Lowercase hex only: the spec's HEXDIGLC (uppercase makes the header invalid).
fn unhex_into(hex: &[u8], out: &mut [u8]) -> Option<()> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut buf = [0u8; 32];
    let out = &mut buf[..bytes.len() * 2];
    hex_into(bytes, out);
    // Hex digits are ASCII.
    f.write_str(std::str::from_utf8(out).map_err(|_| fmt::Error)?)
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// A trace id in a log line: its hex, or `-` when the request has none.
#[derive(Debug, Clone, Copy)]
pub struct LogId(pub Option<TraceId>);

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(id) => id.fmt(f),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn trace(headers: &[&str]) -> Trace {
        Trace::from_headers(headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_the_gateway_span_as_parent() {
        let t = trace(&[GOOD]);
        assert_eq!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent.unwrap().to_string(), "00f067aa0ba902b7");
        assert_ne!(t.span, t.parent.unwrap());
        assert!(t.continued());
        let out = t.header_value();
        let out = std::str::from_utf8(&out).unwrap();
        assert!(
            out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{out}"
        );
        assert!(out.ends_with("-01"), "{out}");
        assert_eq!(&out[36..52], t.span.to_string());
        assert!(parse(out.as_bytes()).is_some());
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        let bad = [
            "",
            "garbage",
            // wrong version, and the forbidden ff
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // all-zero trace id / parent id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // uppercase hex, non-hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            // wrong separators, lengths, trailing data on version 00
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
        ];
        for b in bad {
            assert!(parse(b.as_bytes()).is_none(), "{b:?}");
            let t = trace(&[b]);
            assert!(!t.continued(), "{b:?}");
            assert_ne!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(t.flags, STARTED_FLAGS);
        }
        // Two headers: neither is trusted.
        assert!(!trace(&[GOOD, GOOD]).continued());
    }

    #[test]
    fn a_started_trace_has_random_nonzero_ids_and_is_a_valid_header() {
        let (a, b) = (trace(&[]), trace(&[]));
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.trace_id.0, [0; 16]);
        assert_ne!(a.span.0, [0; 8]);
        assert!(a.parent.is_none());
        let h = a.header_value();
        let (id, parent, flags) = parse(&h).unwrap();
        assert_eq!((id, parent, flags), (a.trace_id, a.span, STARTED_FLAGS));
    }

    #[test]
    fn unknown_flags_are_cleared() {
        let t = trace(&["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"]);
        assert_eq!(t.flags, 0b11);
    }
}
