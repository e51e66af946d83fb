//! The hash chain that makes the trail tamper-evident.
//!
//! A sealed line is the record's JSON with `"prev":"<P>"` appended (P: the previous
//! record's hash, [`GENESIS`] for the first record ever), hashed with SHA-256 as those exact
//! bytes, then `"hash":"<H>"` appended:
//!
//! ```text
//! {"time":...,"prev":"P","hash":"H"}     H = sha256({"time":...,"prev":"P"})
//! ```
//!
//! Verification works on the bytes, not on a re-serialization (no canonical-JSON ambiguity):
//! strip the fixed-size `,"hash":"<64 hex>"` suffix, hash, compare, and check `prev` against
//! the hash of the line before. The chain continues across rotation (a new file's first
//! record carries the last hash of the previous file), so files are verified in order,
//! oldest first. Editing, removing, inserting or reordering a record breaks the chain at
//! that record; truncating the newest records or deleting the oldest files does not (keep
//! the last hash elsewhere if that matters: docs/audit.md).

use std::path::{Path, PathBuf};

use crate::digest::hex;

/// `prev` of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_SUFFIX_START: &[u8] = b",\"hash\":\"";
/// `,"hash":"` + 64 hex + `"}`.
const HASH_SUFFIX_LEN: usize = HASH_SUFFIX_START.len() + 64 + 2;

/// Chains records: holds the last hash.
#[derive(Debug, Clone)]
pub(super) struct Chain {
    prev: String,
}

impl Chain {
    pub(super) fn starting_at(prev: String) -> Chain {
        Chain { prev }
    }

    /// Seal the record at `out[start..]` (one JSON object): append `prev` inside it, hash,
    /// append `hash` and the newline.
    pub(super) fn seal(&mut self, out: &mut Vec<u8>, start: usize) {
        // Every record is a non-empty object; its `}` is replaced.
        if out.last() == Some(&b'}') && out.len() > start {
            out.pop();
        }
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(self.prev.as_bytes());
        out.extend_from_slice(b"\"}");
        let digest = ring::digest::digest(&ring::digest::SHA256, &out[start..]);
        let hash = hex(digest.as_ref());
        out.pop();
        out.extend_from_slice(HASH_SUFFIX_START);
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(b"\"}\n");
        self.prev = hash;
    }
}

/// Check one line: its own hash, and its `prev` against `expected` (`None`: accept any, the
/// first line verified). Returns the line's hash.
pub(super) fn check_line(line: &[u8], expected: Option<&str>) -> Result<String, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() < HASH_SUFFIX_LEN + 2 {
        return Err("not an audit record (too short; a torn write?)".into());
    }
    let (body, suffix) = line.split_at(line.len() - HASH_SUFFIX_LEN);
    let hash = suffix
        .strip_prefix(HASH_SUFFIX_START)
        .and_then(|s| s.strip_suffix(b"\"}"))
        .filter(|h| {
            h.iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .ok_or("does not end with its \"hash\" field (edited or torn)")?;
    let mut sealed = Vec::with_capacity(body.len() + 1);
    sealed.extend_from_slice(body);
    sealed.push(b'}');
    let actual = hex(ring::digest::digest(&ring::digest::SHA256, &sealed).as_ref());
    if actual.as_bytes() != hash {
        return Err("its hash does not match its content (the record was edited)".into());
    }
    #[derive(serde::Deserialize)]
    struct Prev {
        prev: String,
    }
    let prev: Prev = serde_json::from_slice(&sealed)
        .map_err(|e| format!("not a JSON record with a \"prev\" field: {e}"))?;
    if let Some(expected) = expected {
        if prev.prev != expected {
            return Err(format!(
                "its prev {} is not the hash of the record before it ({expected}): a record was removed, inserted or reordered, or the files are not given oldest first",
                prev.prev
            ));
        }
    }
    Ok(actual)
}

/// The last hash in `text` (a file's contents): the hash of its last complete, valid line.
pub(super) fn last_hash(text: &[u8]) -> Option<String> {
    text.split(|&b| b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
        .find_map(|l| check_line(l, None).ok())
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub why: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.why)
    }
}

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: usize,
    /// `prev` of the first record: [`GENESIS`], or the hash it continues from (older files
    /// not given, or deleted by retention).
    pub starts_at: String,
    /// Hash of the last record (keep it elsewhere to detect truncation later).
    pub last: String,
}

/// Verify `files` in the order given (oldest first). `Err`: the first broken record, or a
/// file that cannot be read (reported at line 0).
pub fn verify(files: &[PathBuf]) -> Result<Verified, Break> {
    let mut prev: Option<String> = None;
    let mut starts_at = None;
    let mut records = 0;
    for file in files {
        let text = std::fs::read(file).map_err(|e| Break {
            file: file.clone(),
            line: 0,
            why: format!("cannot read: {e}"),
        })?;
        verify_text(file, &text, &mut prev, &mut starts_at, &mut records)?;
    }
    Ok(Verified {
        records,
        starts_at: starts_at.unwrap_or_else(|| GENESIS.to_string()),
        last: prev.unwrap_or_else(|| GENESIS.to_string()),
    })
}

fn verify_text(
    file: &Path,
    text: &[u8],
    prev: &mut Option<String>,
    starts_at: &mut Option<String>,
    records: &mut usize,
) -> Result<(), Break> {
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let broke = |why: String| Break {
            file: file.to_path_buf(),
            line: i + 1,
            why,
        };
        let hash = check_line(line, prev.as_deref()).map_err(broke)?;
        if starts_at.is_none() {
            // The first record: remember what it continues from.
            #[derive(serde::Deserialize)]
            struct Prev {
                prev: String,
            }
            let body = &line[..line.len() - HASH_SUFFIX_LEN];
            let mut sealed = body.to_vec();
            sealed.push(b'}');
            *starts_at = serde_json::from_slice::<Prev>(&sealed).ok().map(|p| p.prev);
        }
        *prev = Some(hash);
        *records += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(n: usize) -> Vec<u8> {
        let mut c = Chain::starting_at(GENESIS.into());
        let mut out = Vec::new();
        for i in 0..n {
            let start = out.len();
            out.extend_from_slice(format!(r#"{{"n":{i},"s":"a\"b"}}"#).as_bytes());
            c.seal(&mut out, start);
        }
        out
    }

    fn check(text: &[u8]) -> Result<usize, (usize, String)> {
        let (mut prev, mut start, mut n) = (None, None, 0);
        verify_text(Path::new("f"), text, &mut prev, &mut start, &mut n)
            .map(|()| n)
            .map_err(|b| (b.line, b.why))
    }

    #[test]
    fn an_intact_chain_verifies_and_each_line_is_json() {
        let text = chain_of(5);
        assert_eq!(check(&text), Ok(5));
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(v["hash"].as_str().map(str::len), Some(64));
        }
        assert_eq!(
            last_hash(&text),
            check_line(text.split(|&b| b == b'\n').nth(4).unwrap(), None).ok()
        );
    }

    #[test]
    fn an_edit_a_removal_or_a_swap_names_the_record() {
        let text = String::from_utf8(chain_of(4)).unwrap();
        let edited = text.replacen(r#""n":2"#, r#""n":7"#, 1);
        let (line, why) = check(edited.as_bytes()).unwrap_err();
        assert_eq!(line, 3);
        assert!(why.contains("edited"), "{why}");
        let lines: Vec<&str> = text.lines().collect();
        let removed = [lines[0], lines[2], lines[3]].join("\n");
        let (line, why) = check(removed.as_bytes()).unwrap_err();
        assert_eq!(line, 2);
        assert!(why.contains("prev"), "{why}");
        let swapped = [lines[0], lines[2], lines[1], lines[3]].join("\n");
        assert_eq!(check(swapped.as_bytes()).unwrap_err().0, 2);
        let torn = format!("{}\n{}", lines[0], &lines[1][..20]);
        assert_eq!(check(torn.as_bytes()).unwrap_err().0, 2);
    }

    #[test]
    fn the_chain_continues_across_files() {
        let mut c = Chain::starting_at(GENESIS.into());
        let (mut a, mut b) = (br#"{"n":1}"#.to_vec(), br#"{"n":2}"#.to_vec());
        c.seal(&mut a, 0);
        c.seal(&mut b, 0);
        let (mut prev, mut start, mut n) = (None, None, 0);
        verify_text(Path::new("a"), &a, &mut prev, &mut start, &mut n).unwrap();
        verify_text(Path::new("b"), &b, &mut prev, &mut start, &mut n).unwrap();
        assert_eq!(start.as_deref(), Some(GENESIS));
        // Out of order: the break is at b's first line.
        let (mut prev, mut start, mut n) = (None, None, 0);
        verify_text(Path::new("b"), &b, &mut prev, &mut start, &mut n).unwrap();
        let e = verify_text(Path::new("a"), &a, &mut prev, &mut start, &mut n).unwrap_err();
        assert_eq!((e.file.as_path(), e.line), (Path::new("a"), 1));
    }
}
