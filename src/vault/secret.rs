//! [`Secret`]: the one type that holds a credential's bytes.
//!
//! It exists so that a secret cannot leak by accident: `Debug` and `Display` print
//! `<redacted>`, the bytes are zeroized when the last copy is dropped, and reading the value
//! takes an explicit, greppable [`Secret::expose`]. It does not protect against a process
//! that reads its own memory, and it cannot scrub copies a caller makes of the exposed bytes.

use std::fmt;

use zeroize::Zeroizing;

/// A credential value (API token, private key, password). Redacted in `Debug`/`Display`,
/// zeroized on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps `bytes`; they are zeroized when this `Secret` (and every clone) is dropped.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// The raw bytes. Use them right away; do not log or store them elsewhere.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text, or `None` if they are not UTF-8 (a DER private key, say).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::from("ghp_supersecretvalue".to_string());
        let shown = format!("{s:?} {s} {s:#?} {:?}", Some(s.clone()));
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(s.expose(), b"ghp_supersecretvalue");
        assert_eq!(s.expose_str(), Some("ghp_supersecretvalue"));
        assert_eq!(s.len(), 20);
    }

    #[test]
    fn non_utf8_has_no_str_view() {
        let s = Secret::new(vec![0xff, 0x00]);
        assert_eq!(s.expose_str(), None);
        assert!(!s.is_empty());
    }
}
