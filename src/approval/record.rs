//! [`Approval`]: one request for a human's approval of one exact call, as the stores keep
//! it and the admin API shows it.

use serde::{Deserialize, Serialize};

/// Largest argument preview kept with an approval, in bytes: enough for an approver to see
/// what the call does, bounded so a huge call does not fill the store (the binding covers
/// the full arguments whatever the preview shows).
pub const MAX_PREVIEW_BYTES: usize = 2048;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for an approver.
    Pending,
    /// Approved: the next identical call goes through (once).
    Approved,
    /// Denied: identical calls are refused until it expires.
    Denied,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
        }
    }
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

/// One approval. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// 128 random bits, base64url: unguessable, so knowing an id grants nothing.
    pub id: String,
    pub state: State,
    pub created_at: u64,
    /// After this the approval is gone: a pending one was never decided, an approved one
    /// was never used.
    pub expires_at: u64,
    /// Who asked: the caller's issuer and subject (empty for an anonymous caller), and the
    /// agent acting for them.
    pub issuer: String,
    pub subject: String,
    #[serde(default)]
    pub agent: Option<String>,
    /// The virtual server the call came through; `None` on a plain route.
    #[serde(default)]
    pub server: Option<String>,
    pub upstream: String,
    /// The upstream's own name of the tool.
    pub tool: String,
    /// The canonical arguments, cut at [`MAX_PREVIEW_BYTES`].
    pub arguments: String,
    pub arguments_truncated: bool,
    /// SHA-256 (hex) of the full canonical arguments.
    pub arguments_sha256: String,
    /// [`Binding`] in hex.
    pub binding: String,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<u64>,
}

impl Approval {
    /// Whether it still counts at `now`.
    pub fn live(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

/// A fresh approval id: 128 bits from the system CSPRNG, base64url without padding (22
/// characters).
pub(super) fn new_id() -> Result<String, String> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random source failed".to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `id` has the shape [`new_id`] makes (so a path or body value that cannot be an
/// id is refused before any store lookup, and ids are safe in keys and URLs).
pub fn valid_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `canonical` cut at [`MAX_PREVIEW_BYTES`] on a character boundary, and whether it was cut.
pub(super) fn preview(canonical: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(canonical);
    if text.len() <= MAX_PREVIEW_BYTES {
        return (text.into_owned(), false);
    }
    let mut end = MAX_PREVIEW_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_url_safe_characters_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(valid_id(&a) && valid_id(&b), "{a} {b}");
        assert_ne!(a, b);
        for bad in [
            "",
            "short",
            "a/bcdefghijklmnopqrstu",
            "abcdefghijklmnopqrstuvw",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_preview_is_bounded_on_a_char_boundary() {
        let (p, cut) = preview(br#"{"a":1}"#);
        assert_eq!((p.as_str(), cut), (r#"{"a":1}"#, false));
        let long = "é".repeat(MAX_PREVIEW_BYTES);
        let (p, cut) = preview(long.as_bytes());
        assert!(cut && p.len() <= MAX_PREVIEW_BYTES && p.len() >= MAX_PREVIEW_BYTES - 1);
    }
}
