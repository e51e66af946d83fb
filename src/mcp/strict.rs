//! Strict JSON: a request body the gateway interprets must mean one thing to every parser.
//!
//! The gateway decides on its own reading of a body (tool name, arguments, id) and then
//! forwards the client's bytes. If another parser reads those bytes differently, the upstream
//! executes something the gateway never authorized. The classic case is a duplicate key:
//! serde's borrowed visitor keeps the first `params.name`, while Python (`json`, pydantic),
//! Node (`JSON.parse`) and Go keep the last, so `{"name":"allowed",…,"name":"hidden"}` was
//! authorized as one tool and run as another. [`check`] closes every such gap we know of by
//! refusing, before anything else reads the body, what parsers disagree on:
//!
//! | input | parsers disagree how | answer |
//! |---|---|---|
//! | duplicate key at any depth, also equal only after unescaping (`"n\u0061me"`) | first-wins vs last-wins vs error | 400, -32600, names the JSON path |
//! | nesting deeper than `limits.max_json_depth` | recursion limits differ (Python ~1000, serde 128); unbounded recursion overflows a stack | 400, -32600 |
//! | lone UTF-16 surrogate escape (`"\ud800"`) | Python/Node keep it, serde and Go refuse or replace it | 400, -32600 |
//! | UTF-8 byte order mark | Python's `json.loads(bytes)` strips it, serde refuses | 400, -32700 |
//! | invalid UTF-8 | replaced, refused, or kept as bytes | 400, -32700 |
//! | bytes after the value | some parsers stop at the value's end | 400, -32700 |
//! | `NaN`, `Infinity` | Python accepts them, JSON does not | 400, -32700 |
//! | anything else outside RFC 8259 (control characters in strings, `01`, `1.`, `'x'`, …) | lenient parsers accept some | 400, -32700 |
//!
//! Numbers are checked for grammar only: the gateway forwards the client's bytes, so
//! `123456789012345678901234567890` and `1e400` reach the upstream exactly as sent, never
//! rounded through an `f64` here.
//!
//! The scan is iterative (an explicit stack bounded by the depth limit), so no input can
//! overflow a worker's stack, and allocation-free for bodies whose keys have no escapes and
//! whose objects have at most [`LINEAR_KEYS`] keys; a larger object switches to a hash set, so
//! an object with 100,000 keys costs linear time, not quadratic.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::ops::Range;

use smallvec::SmallVec;

use crate::error::Reject;

/// Objects with at most this many keys are checked for duplicates by comparing against each
/// earlier key (no allocation); larger ones by a hash set.
pub const LINEAR_KEYS: usize = 16;

/// Longest JSON path quoted in an error message; a path is client data, so it is clipped.
const MAX_PATH_CHARS: usize = 160;

/// Check that `body` is one JSON value that every conforming parser reads the same way.
///
/// Runs in `request_filter` on every POST body, before the JSON-RPC envelope is read. `Err`
/// is the rejection to send: [`Reject::Parse`] (-32700) for what is not JSON, and
/// [`Reject::InvalidRequest`] (-32600) for JSON that parsers would read differently (duplicate
/// keys, lone surrogates) or that is nested deeper than `max_depth`.
pub fn check(body: &[u8], max_depth: usize) -> Result<(), Reject> {
    outline(body, max_depth, None).map(drop)
}

/// The most members one [`Schema`] level locates.
pub const MAX_WATCHED: usize = 6;
/// The most nested levels a [`Schema`] has.
pub const MAX_LEVELS: usize = 3;

/// Members whose values a caller wants located by the strict pass itself, so the body is
/// read once, not once to check and again to find them: a JSON-RPC envelope reads a few
/// members at fixed paths (`id`, `params.name`, `params._meta.…`).
#[derive(Debug)]
pub struct Schema {
    /// Member names located in this object, as decoded (`"n\u0061me"` is `name`); at most
    /// [`MAX_WATCHED`].
    pub keys: &'static [&'static str],
    /// The member (index into `keys`) whose value, when an object, is located by the next
    /// level; at most [`MAX_LEVELS`] levels in all.
    pub child: Option<(usize, &'static Schema)>,
    /// Report a member that differs from one of `keys` only in case or [folding](fold)
    /// ([`Outline::shadow`]).
    pub shadows: bool,
    /// Remember this level's object once checked, so the same bytes next time are found by
    /// one comparison instead of a scan ([`Memo`]). Only for a last level without `shadows`
    /// (nothing is located below it, nothing reported from inside it).
    pub memo: bool,
}

/// Objects remembered per worker thread ([`Memo`]).
const MEMO_ENTRIES: usize = 4;
/// The largest object remembered: a 2026-07-28 envelope is 150-400 bytes.
const MEMO_MAX_BYTES: usize = 1024;

/// An object the strict pass checked before, and what it located in it: a client sends the
/// same 2026-07-28 `_meta` envelope (revision, client info, capabilities) on every request,
/// and its scan was most of what a modern request costs over a handshake-era one (about
/// 4,500 of 6,000 instructions). A JSON object ends at its own closing brace, so a body
/// holding these exact bytes where such an object starts holds this object, with the same
/// verdict: duplicates and escapes are inside it, and its nesting is checked at the same
/// depth against the same limit (`depth`, `max_depth`). A body that differs in one byte is
/// scanned as always.
struct Memo {
    bytes: Box<[u8]>,
    /// The schema level it was located under: another schema's spans are not this one's.
    schema: &'static Schema,
    depth: usize,
    max_depth: usize,
    /// The located members, relative to the object's first byte.
    spans: [Option<Range<usize>>; MAX_WATCHED],
}

thread_local! {
    static MEMOS: std::cell::RefCell<(usize, [Option<Memo>; MEMO_ENTRIES])> =
        const { std::cell::RefCell::new((0, [None, None, None, None])) };
}

/// Where a [`Schema`]'s members are: the raw JSON of each value, by level and key index.
/// Level 0 is the top-level object; level `n + 1` the object under level `n`'s child.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outline {
    pub spans: [[Option<Range<usize>>; MAX_WATCHED]; MAX_LEVELS],
    /// The first member, in a level with `shadows`, that a case-insensitive parser (Go's
    /// `encoding/json`, .NET's web defaults) would read as one of its keys: the key as sent
    /// (decoded, lossy) and the key it passes for. Alone, since a twin next to it is a
    /// refused duplicate already.
    pub shadow: Option<(String, &'static str)>,
}

/// [`check`], and locate `schema`'s members in the same pass.
pub fn outline(
    body: &[u8],
    max_depth: usize,
    schema: Option<&'static Schema>,
) -> Result<Outline, Reject> {
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(Reject::Parse(
            "the body starts with a UTF-8 byte order mark; send JSON without one (RFC 8259 §8.1)"
                .into(),
        ));
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(Reject::Parse(format!(
            "the body is not valid UTF-8 (at byte {}); JSON must be UTF-8 (RFC 8259 §8.1)",
            e.valid_up_to()
        )));
    }
    let mut levels = [None; MAX_LEVELS];
    let mut next = schema;
    for level in &mut levels {
        *level = next;
        next = next.and_then(|s| s.child).map(|(_, c)| c);
    }
    Scanner {
        body,
        pos: 0,
        max_depth,
        stack: SmallVec::new(),
        keys: SmallVec::new(),
        levels,
        outline: Outline::default(),
    }
    .run()
}

/// A member being located: its level, its index in that level's keys, where its value starts.
#[derive(Clone, Copy)]
struct Located {
    level: u8,
    slot: u8,
    start: usize,
}

/// One open container on the scan stack.
enum Frame<'b> {
    Object {
        /// Where this object's keys start in [`Scanner::keys`] (while it has at most
        /// [`LINEAR_KEYS`]; then they move to `set`).
        keys_start: usize,
        /// Every key so far, [folded](fold), once the object has more than [`LINEAR_KEYS`].
        set: Option<HashSet<Cow<'b, [u8]>>>,
        /// The key whose value is being read, as sent (decoded): the JSON path of an error.
        current: Cow<'b, [u8]>,
        /// This object's [`Schema`] level, when it is one.
        level: Option<u8>,
        /// The index of `current` in that level's keys, when it is one of them.
        slot: Option<u8>,
        /// This object as the value of a located member: recorded when it closes.
        located: Option<Located>,
    },
    Array {
        index: usize,
        located: Option<Located>,
    },
}

struct Scanner<'b> {
    body: &'b [u8],
    pos: usize,
    max_depth: usize,
    /// Inline for the depth of ordinary messages (no allocation per request).
    stack: SmallVec<[Frame<'b>; 8]>,
    /// Decoded keys of every open object, innermost last. The last key of each object is the
    /// one whose value is being read (the JSON path of an error).
    keys: SmallVec<[(Cow<'b, [u8]>, bool); 16]>,
    /// The [`Schema`] by level (`None` past its last level, or without one).
    levels: [Option<&'static Schema>; MAX_LEVELS],
    outline: Outline,
}

/// What a failed step reports before the path is attached.
enum Fail {
    /// Not JSON: what was expected, at `pos`.
    Syntax(&'static str),
    /// Not JSON where a key belongs: reported at the object, not at its previous key.
    KeySyntax(&'static str),
    NotJson(&'static str),
    LoneSurrogate,
    Duplicate(Vec<u8>),
    NulInKey(Vec<u8>),
    TooDeep,
}

impl<'b> Scanner<'b> {
    fn run(mut self) -> Result<Outline, Reject> {
        match self.scan() {
            Ok(()) => Ok(self.outline),
            Err(f) => Err(self.reject(f)),
        }
    }

    /// The scan loop: an explicit stack instead of recursion, so nesting costs heap (bounded
    /// by `max_depth`), never worker stack.
    fn scan(&mut self) -> Result<(), Fail> {
        let mut want_value = true;
        loop {
            if want_value {
                want_value = false;
                if self.begin_value()? {
                    // A non-empty container was opened: read its first member.
                    if matches!(self.stack.last(), Some(Frame::Object { .. })) {
                        self.key()?;
                    }
                    want_value = true;
                    continue;
                }
            }
            self.skip_ws();
            let b = self.peek();
            let Some(top) = self.stack.last_mut() else {
                return if self.pos == self.body.len() {
                    Ok(())
                } else {
                    Err(Fail::Syntax("the end of the body after the JSON value"))
                };
            };
            match top {
                Frame::Array { index, .. } => match b {
                    Some(b',') => {
                        *index += 1;
                        self.pos += 1;
                        want_value = true;
                    }
                    Some(b']') => {
                        self.pos += 1;
                        let located = match self.stack.pop() {
                            Some(Frame::Array { located, .. }) => located,
                            _ => None,
                        };
                        self.record(located);
                    }
                    _ => return Err(Fail::Syntax("',' or ']'")),
                },
                Frame::Object { keys_start, .. } => match b {
                    Some(b',') => {
                        self.pos += 1;
                        self.key()?;
                        want_value = true;
                    }
                    Some(b'}') => {
                        let start = *keys_start;
                        self.pos += 1;
                        let (located, level) = match self.stack.pop() {
                            Some(Frame::Object { located, level, .. }) => (located, level),
                            _ => (None, None),
                        };
                        self.keys.truncate(start);
                        self.record(located);
                        self.memo_store(level, located);
                    }
                    _ => return Err(Fail::Syntax("',' or '}'")),
                },
            }
        }
    }

    /// Read a scalar or an empty container whole (`Ok(false)`), or open a non-empty
    /// container (`Ok(true)`): the scan loop reads its members.
    fn begin_value(&mut self) -> Result<bool, Fail> {
        self.skip_ws();
        // The value of a located member (or the top-level value, level 0's object).
        let start = self.pos;
        let (located, level) = match self.stack.last() {
            Some(Frame::Object {
                level: Some(level),
                slot: Some(slot),
                ..
            }) => {
                let child = self.levels[usize::from(*level)]
                    .and_then(|s| s.child)
                    .filter(|(c, _)| *c == usize::from(*slot))
                    .map(|_| level + 1)
                    .filter(|l| usize::from(*l) < MAX_LEVELS);
                let located = Located {
                    level: *level,
                    slot: *slot,
                    start,
                };
                (Some(located), child)
            }
            Some(_) => (None, None),
            None => (None, self.levels[0].map(|_| 0)),
        };
        let opened = match self.peek() {
            Some(open @ (b'{' | b'[')) => {
                if self.stack.len() >= self.max_depth {
                    return Err(Fail::TooDeep);
                }
                if open == b'{' && self.memo_hit(level) {
                    self.record(located);
                    return Ok(false);
                }
                self.pos += 1;
                self.skip_ws();
                let close = if open == b'{' { b'}' } else { b']' };
                if self.peek() == Some(close) {
                    self.pos += 1;
                    false
                } else {
                    self.stack.push(if open == b'{' {
                        Frame::Object {
                            keys_start: self.keys.len(),
                            set: None,
                            current: Cow::Borrowed(&[]),
                            level,
                            slot: None,
                            located,
                        }
                    } else {
                        Frame::Array { index: 0, located }
                    });
                    return Ok(true);
                }
            }
            Some(b'"') => self.string(None).map(|()| false)?,
            Some(b'-' | b'0'..=b'9') => self.number().map(|()| false)?,
            Some(b't') => self.literal(b"true").map(|()| false)?,
            Some(b'f') => self.literal(b"false").map(|()| false)?,
            Some(b'n') => self.literal(b"null").map(|()| false)?,
            Some(b'N' | b'I') => {
                return Err(Fail::NotJson(
                    "NaN and Infinity are not JSON numbers; send a string or null",
                ))
            }
            Some(_) => return Err(Fail::Syntax("a JSON value")),
            None => return Err(Fail::Syntax("a JSON value, found the end of the body")),
        };
        self.record(located);
        Ok(opened)
    }

    /// The schema of `level` when it is remembered ([`Schema::memo`]).
    fn memo_level(&self, level: Option<u8>) -> Option<(usize, &'static Schema)> {
        let l = usize::from(level?);
        self.levels
            .get(l)
            .copied()
            .flatten()
            .filter(|s| s.memo && s.child.is_none() && !s.shadows)
            .map(|s| (l, s))
    }

    /// At the `{` of an object of `level`: when its bytes are a remembered object's, skip
    /// them and take what was located in it.
    fn memo_hit(&mut self, level: Option<u8>) -> bool {
        let Some((l, schema)) = self.memo_level(level) else {
            return false;
        };
        let (start, depth, max_depth) = (self.pos, self.stack.len(), self.max_depth);
        let rest = self.body.get(start..).unwrap_or_default();
        let found = MEMOS.with(|m| {
            let m = m.borrow();
            m.1.iter().flatten().find_map(|e| {
                (std::ptr::eq(e.schema, schema)
                    && e.depth == depth
                    && e.max_depth == max_depth
                    && rest.starts_with(&e.bytes))
                .then(|| (e.bytes.len(), e.spans.clone()))
            })
        });
        let Some((len, spans)) = found else {
            return false;
        };
        self.pos = start + len;
        if let Some(out) = self.outline.spans.get_mut(l) {
            for (o, r) in out.iter_mut().zip(spans) {
                *o = r.map(|r| r.start + start..r.end + start);
            }
        }
        true
    }

    /// An object of `level` closed at `pos`: remember it (see [`Memo`]).
    fn memo_store(&self, level: Option<u8>, located: Option<Located>) {
        let (Some((l, schema)), Some(at)) = (self.memo_level(level), located) else {
            return;
        };
        let Some(bytes) = self.body.get(at.start..self.pos) else {
            return;
        };
        if bytes.len() > MEMO_MAX_BYTES {
            return;
        }
        let mut spans: [Option<Range<usize>>; MAX_WATCHED] = Default::default();
        if let Some(found) = self.outline.spans.get(l) {
            for (o, r) in spans.iter_mut().zip(found) {
                *o = r.clone().map(|r| r.start - at.start..r.end - at.start);
            }
        }
        let memo = Memo {
            bytes: bytes.into(),
            schema,
            depth: self.stack.len(),
            max_depth: self.max_depth,
            spans,
        };
        MEMOS.with(|m| {
            let mut m = m.borrow_mut();
            let next = m.0;
            m.0 = (next + 1) % MEMO_ENTRIES;
            if let Some(slot) = m.1.get_mut(next) {
                *slot = Some(memo);
            }
        });
    }

    /// A located member's value ends at `pos`.
    fn record(&mut self, located: Option<Located>) {
        if let Some(l) = located {
            if let Some(span) = self
                .outline
                .spans
                .get_mut(usize::from(l.level))
                .and_then(|level| level.get_mut(usize::from(l.slot)))
            {
                *span = Some(l.start..self.pos);
            }
        }
    }

    /// Read `"key" :` inside the innermost object and refuse a key it already has, also one
    /// equal only after unescaping or [folding](fold), and a key containing U+0000.
    fn key(&mut self) -> Result<(), Fail> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(Fail::KeySyntax("a string key"));
        }
        let mut decoded = Cow::Borrowed(&b""[..]);
        self.string(Some(&mut decoded))?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(Fail::KeySyntax("':' after the key"));
        }
        self.pos += 1;
        // Only an escape (`\u0000`) can put a NUL in a key: a raw one is refused as a
        // control character, so a borrowed (escape-free) key needs no scan.
        if matches!(decoded, Cow::Owned(_)) && decoded.contains(&0) {
            // Some parsers drop a trailing NUL from a key or stop at one.
            return Err(Fail::NulInKey(decoded.into_owned()));
        }
        let Some(Frame::Object {
            keys_start,
            set,
            current,
            level,
            slot,
            ..
        }) = self.stack.last_mut()
        else {
            return Err(Fail::Syntax("a key outside an object"));
        };
        *slot = None;
        if let Some(schema) = level.and_then(|l| self.levels[usize::from(l)]) {
            match schema.keys.iter().position(|k| k.as_bytes() == &*decoded) {
                Some(i) => *slot = u8::try_from(i).ok(),
                None if schema.shadows && self.outline.shadow.is_none() => {
                    if let Some(k) = schema.keys.iter().find(|k| fold_eq(k.as_bytes(), &decoded)) {
                        self.outline.shadow =
                            Some((String::from_utf8_lossy(&decoded).into_owned(), k));
                    }
                }
                None => {}
            }
        }
        let duplicate = match set {
            Some(set) => !set.insert(fold(&decoded)),
            None => {
                let earlier = self.keys.get(*keys_start..).unwrap_or_default();
                // Whether each key is ASCII is found once, not at every comparison: two
                // ASCII keys of different lengths are never the same (most pairs), and the
                // envelope's 40-byte keys were scanned again for each earlier key.
                let ascii = decoded.is_ascii();
                let dup = earlier.iter().any(|(k, k_ascii)| {
                    if ascii && *k_ascii {
                        k.len() == decoded.len() && k.eq_ignore_ascii_case(&decoded)
                    } else {
                        fold_eq(k, &decoded)
                    }
                });
                if !dup && earlier.len() >= LINEAR_KEYS {
                    // Move this object's keys into a set: linear time from here on.
                    let mut all: HashSet<Cow<'b, [u8]>> =
                        earlier.iter().map(|(k, _)| fold(k)).collect();
                    all.insert(fold(&decoded));
                    self.keys.truncate(*keys_start);
                    *set = Some(all);
                } else if !dup {
                    self.keys.push((decoded.clone(), ascii));
                }
                dup
            }
        };
        if duplicate {
            return Err(Fail::Duplicate(decoded.into_owned()));
        }
        *current = decoded;
        Ok(())
    }

    /// Read a string starting at its opening quote. With `decoded`, also store its decoded
    /// bytes there (borrowed from the body when it has no escapes).
    fn string(&mut self, mut decoded: Option<&mut Cow<'b, [u8]>>) -> Result<(), Fail> {
        let body = self.body;
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        let mut run = start; // start of the unescaped run not yet copied into `owned`
        loop {
            // Plain bytes: the body is valid UTF-8 (checked up front), so only the quote, the
            // backslash and control characters matter here. Eight at a time while a word has
            // none of them (string content is most of a large body); the word that has one
            // says which byte it is (its lowest flag is exact), so only a tail shorter than
            // a word goes byte by byte (a key like `"jsonrpc"` cost ~45 instructions more
            // that way).
            let mut stopped = false;
            while let Some(word) = body
                .get(self.pos..self.pos + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
            {
                let flags = special(u64::from_le_bytes(word));
                if flags != 0 {
                    self.pos += (flags.trailing_zeros() / 8) as usize;
                    stopped = true;
                    break;
                }
                self.pos += 8;
            }
            while let Some(&b) = body.get(self.pos).filter(|_| !stopped) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            match body.get(self.pos) {
                None => return Err(Fail::Syntax("'\"' to close the string")),
                Some(b'"') => {
                    if let Some(d) = decoded.as_deref_mut() {
                        *d = match owned {
                            Some(mut o) => {
                                o.extend_from_slice(&body[run..self.pos]);
                                Cow::Owned(o)
                            }
                            None => Cow::Borrowed(&body[start..self.pos]),
                        };
                    }
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let out = decoded.is_some().then(|| {
                        let o = owned.get_or_insert_with(Vec::new);
                        o.extend_from_slice(&body[run..self.pos]);
                        o
                    });
                    self.escape(out)?;
                    run = self.pos;
                }
                Some(_) => {
                    return Err(Fail::NotJson(
                        "a control character (below U+0020) inside a string must be escaped",
                    ))
                }
            }
        }
    }

    /// Read one escape sequence at the backslash; append what it stands for to `out`.
    fn escape(&mut self, out: Option<&mut Vec<u8>>) -> Result<(), Fail> {
        let c = self.body.get(self.pos + 1).copied();
        self.pos += 2;
        let ch = match c {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self.hex4()?;
                let cp = match hi {
                    0xD800..=0xDBFF => {
                        if self.body.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(Fail::LoneSurrogate);
                        }
                        self.pos += 2;
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(Fail::LoneSurrogate);
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Fail::LoneSurrogate),
                    _ => hi,
                };
                char::from_u32(cp).ok_or(Fail::LoneSurrogate)?
            }
            _ => {
                return Err(Fail::Syntax(
                    "a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                ))
            }
        };
        if let Some(out) = out {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, Fail> {
        let digits = self
            .body
            .get(self.pos..self.pos + 4)
            .ok_or(Fail::Syntax("four hex digits after \\u"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or(Fail::Syntax("four hex digits after \\u"))?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }

    /// RFC 8259 number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    /// No range check: the bytes are forwarded as sent.
    fn number(&mut self) -> Result<(), Fail> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            Some(b'I') => {
                return Err(Fail::NotJson(
                    "NaN and Infinity are not JSON numbers; send a string or null",
                ))
            }
            _ => return Err(Fail::Syntax("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Fail::Syntax("a digit after the decimal point"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Fail::Syntax("a digit in the exponent"));
            }
            self.digits();
        }
        // `01` or `1x`: the number must end at a delimiter.
        match self.peek() {
            None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') => Ok(()),
            Some(_) => Err(Fail::Syntax(
                "',' or the end of the container after a number",
            )),
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Fail> {
        if self.body.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Fail::Syntax("true, false or null"))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    /// JSON whitespace is exactly space, tab, LF and CR (not form feed or NBSP).
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    // === errors ===

    fn reject(&self, fail: Fail) -> Reject {
        let at = self.pos;
        match fail {
            Fail::Syntax(expected) => Reject::Parse(format!(
                "invalid JSON at byte {at} (in {}): expected {expected}",
                self.path(true)
            )),
            Fail::KeySyntax(expected) => Reject::Parse(format!(
                "invalid JSON at byte {at} (in {}): expected {expected}",
                self.path(false)
            )),
            Fail::NotJson(why) => {
                Reject::Parse(format!("invalid JSON at byte {at} (in {}): {why}", self.path(true)))
            }
            Fail::LoneSurrogate => Reject::InvalidRequest(format!(
                "a string in {} has a lone UTF-16 surrogate escape (byte {at}); parsers disagree on \
                 such strings, so send valid Unicode",
                self.path(true)
            )),
            Fail::Duplicate(key) => {
                let mut path = self.path(false);
                push_key(&mut path, &key);
                Reject::InvalidRequest(format!(
                    "duplicate key {path}: every object key must be unique, also after \
                     unescaping and ignoring case (parsers disagree on which duplicate wins, and \
                     Go matches keys case-insensitively)"
                ))
            }
            Fail::NulInKey(key) => {
                let mut path = self.path(false);
                push_key(&mut path, &key);
                Reject::InvalidRequest(format!(
                    "key {path} contains U+0000; parsers disagree on such keys, so leave it out"
                ))
            }
            Fail::TooDeep => Reject::InvalidRequest(format!(
                "JSON nested deeper than {} levels in {} (limits.max_json_depth); flatten the \
                 value or raise the limit",
                self.max_depth,
                self.path(true)
            )),
        }
    }

    /// The JSON path of the value being read: `$.params.arguments.items[2]`.
    /// With `innermost_key` false, the path of the innermost open container itself.
    fn path(&self, innermost_key: bool) -> String {
        let mut out = String::from("$");
        let depth = self.stack.len();
        for (i, frame) in self.stack.iter().enumerate() {
            if i + 1 == depth && !innermost_key {
                break;
            }
            match frame {
                Frame::Object { current, .. } => push_key(&mut out, current),
                Frame::Array { index, .. } => {
                    let _ = write!(out, "[{index}]");
                }
            }
            if out.len() > MAX_PATH_CHARS {
                out.truncate(floor_char_boundary(&out, MAX_PATH_CHARS));
                out.push('…');
                break;
            }
        }
        out
    }
}

/// The form under which two keys count as the same. Go's `encoding/json` (mcp-go, the Go
/// SDK) matches object keys to fields case-insensitively, with Unicode simple folding
/// (`ſ` = `s`, `K` = `k`), and keeps the last match: `{"name":"a","NAME":"b"}` runs `b` there.
/// Lowercase, uppercase, lowercase again maps every such family to one form; where it merges
/// more than Go does (`ß` and `ss`), the gateway only refuses more. ASCII keys that are
/// already lowercase, the common case, are returned without copying.
fn fold<'k>(key: &Cow<'k, [u8]>) -> Cow<'k, [u8]> {
    if key.iter().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return key.clone();
    }
    if key.is_ascii() {
        return Cow::Owned(key.to_ascii_lowercase());
    }
    let text = String::from_utf8_lossy(key);
    let folded: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect();
    Cow::Owned(folded.into_bytes())
}

/// Whether two decoded keys count as the same key (see [`fold`]): what the strict pass
/// refuses as a duplicate, for callers that add keys to a checked body.
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    fold_eq(a, b)
}

/// `fold(a) == fold(b)` without copying when both are ASCII.
fn fold_eq(a: &[u8], b: &[u8]) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        fold(&Cow::Borrowed(a)) == fold(&Cow::Borrowed(b))
    }
}

/// Whether any byte of `w` is `"`, `\\` or below 0x20.
#[cfg(test)]
fn has_special(w: u64) -> bool {
    special(w) != 0
}

/// The high bit of each byte of `w` (little-endian) that is `"`, `\\` or below 0x20, and
/// possibly of bytes after the first such one (SWAR: a borrow only runs upwards from a byte
/// that is flagged itself), so the lowest flag is exactly the first such byte.
fn special(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_byte(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    quote | backslash | control
}

/// Append `.key`, or `["key"]` when the key is not a plain identifier.
fn push_key(out: &mut String, key: &[u8]) {
    let text = String::from_utf8_lossy(key);
    let plain = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        out.push('.');
        out.push_str(&text);
    } else {
        let clipped: String = text.chars().take(64).collect();
        out.push('[');
        // Serializing a str cannot fail; it escapes quotes and control characters.
        out.push_str(&serde_json::to_string(&clipped).unwrap_or_default());
        out.push(']');
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
#[path = "strict_tests.rs"]
mod tests;
