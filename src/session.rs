//! Gateway-owned MCP sessions for virtual servers, as sealed tokens.
//!
//! The `Mcp-Session-Id` the gateway mints on `initialize` is an AES-256-GCM sealed record of
//! the virtual server, the principal it is bound to and an expiry. Nothing is stored: any
//! gateway holding the key can check it, and a tampered, expired or foreign token (another
//! principal, another virtual server) is simply "session not found" (404). Upstream sessions
//! are opened lazily per gateway session and cached locally (`proxy::vserver`), so a replica
//! that sees a session for the first time opens its own.
//!
//! The key is random per process unless configured (`sessions.key`, shared by replicas).
//!
//! The one thing kept per replica is [`Revocations`]: sessions ended by DELETE, remembered
//! until their tokens expire, in a bounded table that refuses (rather than forgets) when full.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::digest::Digest;

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
    /// keys, so a reload that drops a key also drops what it vouched for.
    opened: Mutex<HashMap<Digest, SessionClaims>>,
}

/// Bound of the opened-token cache (about 150 bytes an entry).
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
            opened: Mutex::new(HashMap::new()),
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
        if let Ok(cache) = self.opened.lock() {
            if let Some(c) = cache.get(&d) {
                return (c.expires > now && bound(c)).then_some((d, c.expires));
            }
        }
        let claims = self.open(token, now)?;
        let answer = bound(&claims).then_some((d, claims.expires));
        if let Ok(mut cache) = self.opened.lock() {
            if cache.len() >= MAX_OPENED {
                cache.retain(|_, c| c.expires > now);
                if cache.len() >= MAX_OPENED {
                    cache.clear();
                }
            }
            cache.insert(d, claims);
        }
        answer
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

/// Gateway sessions ended by DELETE on this replica, until their tokens expire.
///
/// A sealed token stays genuine until its expiry, so ending a session means remembering it.
/// The table is bounded. When it is full, expired entries are dropped first (an expired token
/// no longer opens, so its entry protects nothing); when it is still full, [`Self::revoke`]
/// fails and the caller must refuse the DELETE: reporting a session ended while its token
/// still works would be a silent fail-open.
#[derive(Debug)]
pub struct Revocations {
    ended: Mutex<Ended>,
    capacity: usize,
}

/// The table and the earliest expiry in it, so a full table of live entries is refused
/// without scanning it (a client filling it must not make every later DELETE cost 100,000
/// steps under the lock every virtual-server request takes).
#[derive(Debug)]
struct Ended {
    /// Token digest -> expiry (seconds since the epoch).
    by_digest: HashMap<Digest, u64>,
    /// No entry expires before this (`u64::MAX` when empty).
    earliest: u64,
}

/// Bound of the revocation table (about 50 bytes an entry).
pub const MAX_REVOKED: usize = 100_000;

/// [`Revocations::revoke`] found the table full of unexpired entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationsFull {
    pub capacity: usize,
}

impl Default for Revocations {
    fn default() -> Self {
        Self::with_capacity(MAX_REVOKED)
    }
}

impl Revocations {
    pub fn with_capacity(capacity: usize) -> Self {
        Revocations {
            ended: Mutex::new(Ended {
                by_digest: HashMap::new(),
                earliest: u64::MAX,
            }),
            capacity,
        }
    }

    /// The table, also after a panic elsewhere poisoned the lock: entries are plain values,
    /// and answering "not revoked" because of a poisoned lock would fail open.
    fn table(&self) -> std::sync::MutexGuard<'_, Ended> {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the session with token digest `d` was ended here.
    pub fn contains(&self, d: &Digest) -> bool {
        self.table().by_digest.contains_key(d)
    }

    /// Remember that the session `d`, whose token expires at `expires`, has ended. `Err`
    /// when the table holds `capacity` unexpired entries: the session was not ended.
    pub fn revoke(&self, d: Digest, expires: u64, now: u64) -> Result<(), RevocationsFull> {
        let mut t = self.table();
        if t.by_digest.len() >= self.capacity && !t.by_digest.contains_key(&d) {
            // Prune only when something has expired: otherwise refusing is O(1).
            if t.earliest <= now {
                t.by_digest.retain(|_, exp| *exp > now);
                t.earliest = t.by_digest.values().copied().min().unwrap_or(u64::MAX);
            }
            if t.by_digest.len() >= self.capacity {
                return Err(RevocationsFull {
                    capacity: self.capacity,
                });
            }
        }
        t.by_digest.insert(d, expires);
        t.earliest = t.earliest.min(expires);
        Ok(())
    }

    /// Entries held (expired ones included until the next prune).
    pub fn len(&self) -> usize {
        self.table().by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
mod revocation_tests {
    use super::*;

    fn digest(n: u32) -> Digest {
        crate::digest::keyed(&[n.to_be_bytes().as_slice()])
    }

    #[test]
    fn revoked_sessions_are_remembered() {
        let r = Revocations::with_capacity(4);
        assert!(!r.contains(&digest(1)));
        r.revoke(digest(1), 100, 10).unwrap();
        assert!(r.contains(&digest(1)));
        assert!(!r.contains(&digest(2)));
    }

    #[test]
    fn a_full_table_drops_expired_entries_before_taking_a_new_one() {
        let r = Revocations::with_capacity(3);
        r.revoke(digest(1), 50, 10).unwrap(); // expires at 50
        r.revoke(digest(2), 500, 10).unwrap();
        r.revoke(digest(3), 60, 10).unwrap(); // expires at 60
        assert_eq!(r.len(), 3);
        // At 100 both short-lived tokens are dead: pruned, and the new one fits.
        r.revoke(digest(4), 500, 100).unwrap();
        assert_eq!(r.len(), 2);
        assert!(!r.contains(&digest(1)) && !r.contains(&digest(3)));
        assert!(r.contains(&digest(2)) && r.contains(&digest(4)));
    }

    #[test]
    fn a_table_full_of_live_entries_refuses_and_keeps_what_it_has() {
        let r = Revocations::with_capacity(2);
        r.revoke(digest(1), 500, 10).unwrap();
        r.revoke(digest(2), 500, 10).unwrap();
        assert_eq!(
            r.revoke(digest(3), 500, 100),
            Err(RevocationsFull { capacity: 2 })
        );
        assert!(
            !r.contains(&digest(3)),
            "not recorded, so not reported ended"
        );
        assert!(
            r.contains(&digest(1)) && r.contains(&digest(2)),
            "nothing evicted"
        );
        // Revoking one already held needs no room.
        r.revoke(digest(1), 500, 100).unwrap();
        // Once entries expire there is room again.
        r.revoke(digest(3), 900, 500).unwrap();
        assert_eq!(r.len(), 1);
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
