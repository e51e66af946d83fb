//! Gateway-owned MCP sessions for virtual servers, as sealed tokens.
//!
//! The `Mcp-Session-Id` the gateway mints on `initialize` is an AES-256-GCM sealed record of
//! the virtual server, the principal it is bound to and an expiry. Nothing is stored: any
//! gateway holding the key can check it, and a tampered, expired or foreign token (another
//! principal, another virtual server) is simply "session not found" (404). Upstream sessions
//! are opened lazily per gateway session and cached locally (`proxy::vserver`), so a replica
//! that sees a session for the first time opens its own.
//!
//! The key is random per process unless configured, so sessions do not survive a restart
//! and need a shared key across replicas (a later config option).

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "g1.";

/// What a session token binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Virtual server name.
    #[serde(rename = "v")]
    pub server: String,
    /// Principal subject (empty for anonymous listeners).
    #[serde(rename = "s")]
    pub subject: String,
    /// Expiry, seconds since the epoch.
    #[serde(rename = "e")]
    pub expires: u64,
}

/// Seals and opens session tokens. Tokens carry the sealing key's id, so a key can be
/// rotated: new tokens use the current key, and tokens sealed with a previous key still open
/// until they expire.
pub struct SessionKeys {
    key: LessSafeKey,
    kid: String,
    previous: Vec<(String, LessSafeKey)>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    /// A fresh random key.
    pub fn random() -> anyhow::Result<SessionKeys> {
        let rng = SystemRandom::new();
        let mut k = [0u8; 32];
        rng.fill(&mut k)
            .map_err(|_| anyhow::anyhow!("no randomness for the session key"))?;
        Self::from_bytes(&k)
    }

    pub fn from_bytes(k: &[u8]) -> anyhow::Result<SessionKeys> {
        Self::with_previous(k, &[])
    }

    /// The current key and keys it replaced (still accepted for opening).
    pub fn with_previous(k: &[u8], previous: &[Vec<u8>]) -> anyhow::Result<SessionKeys> {
        let aead = |k: &[u8]| -> anyhow::Result<(String, LessSafeKey)> {
            let unbound = UnboundKey::new(&AES_256_GCM, k)
                .map_err(|_| anyhow::anyhow!("session key must be 32 bytes"))?;
            Ok((key_id(k), LessSafeKey::new(unbound)))
        };
        let (kid, key) = aead(k)?;
        let previous = previous
            .iter()
            .map(|p| aead(p))
            .collect::<anyhow::Result<_>>()?;
        Ok(SessionKeys {
            key,
            kid,
            previous,
            rng: SystemRandom::new(),
        })
    }

    /// A token for `claims`.
    pub fn seal(&self, claims: &SessionClaims) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut data = serde_json::to_vec(claims).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.kid.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(format!(
            "{PREFIX}{}.{}",
            self.kid,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        ))
    }

    /// The claims of a genuine, unexpired token; `None` for anything else.
    pub fn open(&self, token: &str, now: u64) -> Option<SessionClaims> {
        let (kid, body) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let key = if kid == self.kid {
            &self.key
        } else {
            &self.previous.iter().find(|(k, _)| k == kid)?.1
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .ok()?;
        let claims: SessionClaims = serde_json::from_slice(plain).ok()?;
        (claims.expires > now).then_some(claims)
    }
}

/// First 8 hex characters of the key's SHA-256: names the key without revealing it.
fn key_id(k: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, k).as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            server: "support".into(),
            subject: "alice".into(),
            expires: 2_000,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let k = SessionKeys::random().unwrap();
        let t = k.seal(&claims()).unwrap();
        assert!(t.starts_with("g1.") && t.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(k.open(&t, 1_000), Some(claims()));
        assert_eq!(k.open(&t, 2_000), None, "expired");
    }

    #[test]
    fn tampered_foreign_or_garbage_tokens_do_not_open() {
        let k = SessionKeys::random().unwrap();
        let t = k.seal(&claims()).unwrap();
        let mut bad = t.clone().into_bytes();
        let mid = bad.len() / 2;
        bad[mid] = if bad[mid] == b'A' { b'B' } else { b'A' };
        assert_eq!(k.open(&String::from_utf8(bad).unwrap(), 1_000), None);
        let other = SessionKeys::random().unwrap();
        assert_eq!(other.open(&t, 1_000), None);
        for g in ["", "g1.", "g1.!!!", "x", "g1.AAAA", "g1.00000000.AAAA"] {
            assert_eq!(k.open(g, 1_000), None, "{g}");
        }
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::*;

    #[test]
    fn tokens_of_a_previous_key_still_open_after_rotation() {
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let before = SessionKeys::from_bytes(&old).unwrap();
        let claims = SessionClaims {
            server: "s".into(),
            subject: "a".into(),
            expires: 10,
        };
        let t = before.seal(&claims).unwrap();
        let after = SessionKeys::with_previous(&new, &[old.to_vec()]).unwrap();
        assert_eq!(after.open(&t, 1), Some(claims.clone()));
        let fresh = after.seal(&claims).unwrap();
        assert_ne!(fresh.split('.').nth(1), t.split('.').nth(1), "new key id");
        assert_eq!(
            SessionKeys::from_bytes(&new).unwrap().open(&t, 1),
            None,
            "old key dropped"
        );
    }
}
