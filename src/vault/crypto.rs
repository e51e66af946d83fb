//! AES-256-GCM sealing, random bytes, key ids and the associated-data layout.
//!
//! All of the vault's cryptography goes through these few functions (ring underneath), so the
//! nonce rule lives in one place: every seal draws a fresh random 96-bit nonce from the OS.
//! Data keys are used for one value each, and key-encryption keys wrap far fewer than the
//! 2^32 messages that random nonces allow per key.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{Secret, VaultError};

/// Key length for AES-256 (data keys and key-encryption keys).
pub(crate) const KEY_LEN: usize = 32;

/// Domain separation for a value's associated data.
const VALUE_AAD_TAG: &[u8] = b"mcp-gateway-vault/v1/value";

/// A fresh random nonce and the ciphertext (with its 16-byte tag appended).
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) ciphertext: Vec<u8>,
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), VaultError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| VaultError::Random)
}

/// A fresh random 32-byte key.
pub(crate) fn random_key() -> Result<Secret, VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(key.as_mut())?;
    Ok(Secret::new(key.to_vec()))
}

fn aead_key(key: &[u8]) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::Encrypt)
}

/// Seals `plaintext` under `key` (32 bytes) with a fresh random nonce, binding `aad`.
pub(crate) fn seal(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Sealed, VaultError> {
    let key = aead_key(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut in_out = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut in_out,
    )
    .map_err(|_| VaultError::Encrypt)?;
    Ok(Sealed {
        nonce,
        ciphertext: in_out,
    })
}

/// Opens `ciphertext` (tag appended) under `key`, checking `aad`. Fails with
/// [`VaultError::Decrypt`] on a wrong key, wrong associated data or altered bytes.
pub(crate) fn open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Secret, VaultError> {
    let key = aead_key(key).map_err(|_| VaultError::Decrypt)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Decrypt)?;
    let mut in_out = Zeroizing::new(ciphertext.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), in_out.as_mut())
        .map_err(|_| VaultError::Decrypt)?
        .len();
    let mut plain = std::mem::take(&mut *in_out);
    plain.truncate(len);
    Ok(Secret::new(plain))
}

/// The associated data bound to a value's ciphertext: a domain tag, then the name and the
/// owner, each length-prefixed (u32, big-endian); the owner is preceded by a presence byte
/// (0 shared, 1 per-user). Copying a ciphertext to another name or owner therefore fails to
/// open. The key id is deliberately not bound, so `rotate-key` never touches values.
pub(crate) fn value_aad(name: &str, owner: Option<&str>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(VALUE_AAD_TAG.len() + 9 + name.len() + 64);
    aad.extend_from_slice(VALUE_AAD_TAG);
    push_len_prefixed(&mut aad, name.as_bytes());
    match owner {
        None => aad.push(0),
        Some(owner) => {
            aad.push(1);
            push_len_prefixed(&mut aad, owner.as_bytes());
        }
    }
    aad
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Names are validated to at most a few hundred bytes, so the length always fits.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Key id of a raw key: the first 8 hex characters of its SHA-256. Identifies which key
/// wrapped a record without revealing the key.
pub(crate) fn key_id(key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    crate::digest::hex(&digest.as_ref()[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let key = random_key().unwrap();
        let a = seal(key.expose(), b"aad", b"hello").unwrap();
        let b = seal(key.expose(), b"aad", b"hello").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(a.ciphertext.len(), 5 + 16);
        let plain = open(key.expose(), &a.nonce, b"aad", &a.ciphertext).unwrap();
        assert_eq!(plain.expose(), b"hello");
    }

    #[test]
    fn open_fails_on_wrong_key_aad_or_bytes() {
        let key = random_key().unwrap();
        let other = random_key().unwrap();
        let s = seal(key.expose(), b"aad", b"hello").unwrap();
        assert!(open(other.expose(), &s.nonce, b"aad", &s.ciphertext).is_err());
        assert!(open(key.expose(), &s.nonce, b"aaD", &s.ciphertext).is_err());
        let mut flipped = s.ciphertext.clone();
        flipped[0] ^= 1;
        assert!(open(key.expose(), &s.nonce, b"aad", &flipped).is_err());
        assert!(open(key.expose(), &s.nonce[..11], b"aad", &s.ciphertext).is_err());
    }

    #[test]
    fn value_aad_is_unambiguous() {
        assert_ne!(value_aad("github", None), value_aad("github", Some("")));
        assert_ne!(value_aad("ab", Some("c")), value_aad("a", Some("bc")));
        assert_ne!(
            value_aad("github", Some("alice")),
            value_aad("github", None)
        );
    }

    #[test]
    fn key_id_is_eight_hex_chars() {
        let id = key_id(&[0u8; 32]);
        assert_eq!(id.len(), 8);
        // SHA-256 of 32 zero bytes starts 66687aad.
        assert_eq!(id, "66687aad");
    }
}
