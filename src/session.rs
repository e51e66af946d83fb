//! Gateway-owned MCP sessions for virtual servers, as sealed tokens.
//!
//! The `Mcp-Session-Id` the gateway mints on `initialize` is an AES-256-GCM sealed record of
//! the virtual server, the principal it is bound to and an expiry. Nothing is stored: any
//! gateway holding the key can check it, and a tampered, expired or foreign token (another
//! principal, another virtual server) is simply "session not found" (404). Upstream sessions
//! are opened lazily per gateway session and kept per replica (`vserver::session`, in a
//! `store::UpstreamSessionStore`), so a replica that sees a session for the first time opens
//! its own.
//!
//! The key is random per process unless configured (`sessions.key`, shared by replicas).
//!
//! The one thing kept per replica is [`Revocations`]: sessions ended by DELETE, remembered
//! until their tokens expire, in a bounded table that refuses (rather than forgets) when full.
//! It lives in [`crate::store`] (behind [`RevocationStore`]) and is re-exported here under the
//! name the runtime state uses.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::BoundedMap;
pub use crate::store::{
    MemoryRevocations as Revocations, RevocationStore, RevocationsFull, MAX_REVOKED,
};

const PREFIX: &str = "g1.";

/// What a session token binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Virtual server name.
    #[serde(rename = "v")]
    pub server: String,
    /// Issuer of the principal's subject (JWT `iss`, or `api-key`; empty for anonymous
    /// listeners). A session is bound to (issuer, subject): issuer B's `alice` cannot use a
    /// session issuer A's `alice` opened. Tokens sealed before this field existed carry none
    /// and only open for anonymous callers.
    #[serde(rename = "i", default)]
    pub issuer: String,
    /// Principal subject (empty for anonymous listeners).
    #[serde(rename = "s")]
    pub subject: String,
    /// Expiry, seconds since the epoch.
    #[serde(rename = "e")]
    pub expires: u64,
    /// The client capabilities declared at `initialize` that the gateway relays
    /// ([`crate::mcp::capabilities::ClientCaps`]): its upstream sessions declare them too.
    /// Absent (older tokens, or none declared): none.
    #[serde(rename = "c", default, skip_serializing_if = "is_zero")]
    pub caps: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Seals and opens session tokens. Tokens carry the sealing key's id, so a key can be
/// rotated: new tokens use the current key, and tokens sealed with a previous key still open
/// until they expire.
pub struct SessionKeys {
    key: LessSafeKey,
    kid: String,
    previous: Vec<(String, LessSafeKey)>,
    rng: SystemRandom,
    /// Tokens already opened, by keyed digest: a session's later requests skip base64,
    /// AES-GCM and JSON (about 5,000 instructions each). Bounded; lives and dies with these
    /// keys, so a reload that drops a key also drops what it vouched for. An entry lives
    /// until its token expires; when full, the one closest to expiry goes.
    opened: BoundedMap<Digest, SessionClaims>,
}

/// Bound of the opened-token cache (about 200 bytes an entry with its expiry index).
const MAX_OPENED: usize = 100_000;

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
            opened: BoundedMap::new(MAX_OPENED),
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

    /// Check that `token` is genuine, unexpired and bound to `server` and the principal
    /// (`issuer`, `subject`); returns its digest and expiry. Served from the opened-token
    /// cache after the first time.
    pub fn verify(
        &self,
        token: &str,
        now: u64,
        server: &str,
        (issuer, subject): (&str, &str),
    ) -> Option<(Digest, u64)> {
        let d = crate::digest::keyed(&[token.as_bytes()]);
        let bound =
            |c: &SessionClaims| c.server == server && c.issuer == issuer && c.subject == subject;
        // An expired entry is a miss, and its token then fails to open below: same answer.
        if let Some(hit) = self
            .opened
            .read(&d, now, |c| bound(c).then_some((d, c.expires)))
        {
            return hit;
        }
        let claims = self.open(token, now)?;
        let answer = bound(&claims).then_some((d, claims.expires));
        let expires = claims.expires;
        self.opened.insert(d, claims, expires, now);
        answer
    }

    /// The client capabilities sealed in the token of digest `d`, if [`Self::verify`] opened
    /// it (every request checks its session first; an entry evicted since reads as none).
    pub fn client_caps(&self, d: &Digest, now: u64) -> Option<u8> {
        self.opened.read(d, now, |c| c.caps)
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
            issuer: "https://idp-a".into(),
            subject: "alice".into(),
            expires: 2_000,
            caps: 0,
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

    const A: &str = "https://idp-a";

    #[test]
    fn verify_checks_binding_and_expiry_on_cached_tokens_too() {
        let k = SessionKeys::random().unwrap();
        let t = k.seal(&claims()).unwrap();
        // First call opens the token, the rest are served from the cache: same answers.
        for _ in 0..2 {
            let (d, exp) = k.verify(&t, 1_000, "support", (A, "alice")).unwrap();
            assert_eq!(exp, 2_000);
            assert_eq!(d, crate::digest::keyed(&[t.as_bytes()]));
            assert_eq!(k.verify(&t, 1_000, "other-server", (A, "alice")), None);
            assert_eq!(k.verify(&t, 1_000, "support", (A, "mallory")), None);
            assert_eq!(
                k.verify(&t, 1_000, "support", ("https://idp-b", "alice")),
                None,
                "another issuer's alice"
            );
            assert_eq!(k.verify(&t, 1_000, "support", ("", "alice")), None);
            assert_eq!(
                k.verify(&t, 2_000, "support", (A, "alice")),
                None,
                "expired"
            );
        }
        // A bad token is never cached as good, and another key's cache is its own.
        assert_eq!(
            k.verify("g1.00000000.AAAA", 1_000, "support", (A, "alice")),
            None
        );
        let other = SessionKeys::random().unwrap();
        assert_eq!(other.verify(&t, 1_000, "support", (A, "alice")), None);
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
            issuer: String::new(),
            subject: "a".into(),
            expires: 10,
            caps: 0,
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
