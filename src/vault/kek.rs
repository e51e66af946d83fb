//! The key-encryption key (KEK): the [`KeyProvider`] trait and the static-key provider.
//!
//! Data keys are wrapped and unwrapped only through [`KeyProvider`], so the KEK can later
//! live in a KMS or HSM (AWS KMS `Encrypt`/`Decrypt`, Vault Transit, a PKCS#11 token) without
//! the vault format or the rest of the gateway changing. Today's provider, [`StaticKek`],
//! holds 32 raw bytes read from an environment variable or a key file.

use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

use super::crypto::{self, KEY_LEN};
use super::{Secret, SecretRef, VaultError};

/// Domain separation for the associated data of a wrapped data key.
const WRAP_AAD_TAG: &[u8] = b"mcp-gateway-vault/v1/kek/";

/// Something that wraps and unwraps data keys with a key-encryption key.
///
/// `wrap` is called once per sealed value (on `set`, and for every record on `rotate-key`);
/// `unwrap_key` once per record when a vault is opened. The wrapped bytes are opaque to the
/// vault: a KMS can return its own ciphertext blob.
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// The id recorded next to every data key this provider wraps. It must change when the
    /// key changes, so records show which key they need.
    fn key_id(&self) -> &str;
    /// Wraps (encrypts) a data key.
    fn wrap(&self, dek: &[u8]) -> Result<Vec<u8>, VaultError>;
    /// Unwraps a data key that was wrapped under the key named `key_id` (a provider holding
    /// several keys picks by id). Fails if the key is not held or the bytes do not open.
    fn unwrap_key(&self, key_id: &str, wrapped: &[u8]) -> Result<Secret, VaultError>;
}

/// A [`KeyProvider`] over 32 raw bytes. Wrapped keys are `nonce (12) || AES-256-GCM
/// ciphertext (32) || tag (16)`, with the key id bound as associated data.
pub struct StaticKek {
    key: Secret,
    key_id: String,
}

impl StaticKek {
    /// A provider over `key`. Its key id is the first 8 hex characters of SHA-256(key).
    pub fn new(key: [u8; KEY_LEN]) -> StaticKek {
        let mut key = key;
        let kek = StaticKek::from_secret_bytes(Secret::new(key.to_vec()));
        key.zeroize();
        kek
    }

    fn from_secret_bytes(key: Secret) -> StaticKek {
        let key_id = crypto::key_id(key.expose());
        StaticKek { key, key_id }
    }

    /// Generates a fresh random key.
    pub fn generate() -> Result<StaticKek, VaultError> {
        crypto::random_key().map(StaticKek::from_secret_bytes)
    }

    /// The key as standard base64: the text `gen-key` prints and `env:`/`file:` hold.
    pub fn to_base64(&self) -> Secret {
        Secret::from(base64::engine::general_purpose::STANDARD.encode(self.key.expose()))
    }

    fn wrap_aad(&self) -> Vec<u8> {
        [WRAP_AAD_TAG, self.key_id.as_bytes()].concat()
    }
}

impl std::fmt::Debug for StaticKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKek")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl KeyProvider for StaticKek {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn wrap(&self, dek: &[u8]) -> Result<Vec<u8>, VaultError> {
        let sealed = crypto::seal(self.key.expose(), &self.wrap_aad(), dek)?;
        Ok([sealed.nonce.as_slice(), &sealed.ciphertext].concat())
    }

    fn unwrap_key(&self, key_id: &str, wrapped: &[u8]) -> Result<Secret, VaultError> {
        if key_id != self.key_id {
            return Err(VaultError::UnknownKeyId {
                key_id: key_id.to_string(),
                held: self.key_id.clone(),
            });
        }
        let nonce_len = ring::aead::NONCE_LEN;
        if wrapped.len() < nonce_len {
            return Err(VaultError::Decrypt);
        }
        let (nonce, ciphertext) = wrapped.split_at(nonce_len);
        crypto::open(self.key.expose(), nonce, &self.wrap_aad(), ciphertext)
    }
}

/// Loads a [`StaticKek`] from `env:VAR` or `file:PATH`, which must hold the standard base64
/// of 32 bytes (surrounding whitespace is ignored). `secret:` references are refused: the
/// vault cannot hold its own key.
pub fn kek_from_ref(r: &SecretRef) -> Result<StaticKek, VaultError> {
    let text: Zeroizing<String> = match r {
        SecretRef::Vault { .. } => return Err(VaultError::KekFromVault),
        SecretRef::Env(var) => Zeroizing::new(std::env::var(var).map_err(|e| match e {
            std::env::VarError::NotPresent => VaultError::EnvNotSet { var: var.clone() },
            std::env::VarError::NotUnicode(_) => VaultError::EnvNotUnicode { var: var.clone() },
        })?),
        SecretRef::File(path) => {
            let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| VaultError::Read {
                what: "key-encryption key file",
                path: path.clone(),
                source,
            })?);
            Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let malformed = || VaultError::MalformedKek {
        origin: r.to_string(),
    };
    let key = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| malformed())?,
    );
    if key.len() != KEY_LEN {
        return Err(malformed());
    }
    Ok(StaticKek::from_secret_bytes(Secret::new(key.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip() {
        let kek = StaticKek::generate().unwrap();
        let dek = crypto::random_key().unwrap();
        let wrapped = kek.wrap(dek.expose()).unwrap();
        assert_eq!(wrapped.len(), 12 + 32 + 16);
        let back = kek.unwrap_key(kek.key_id(), &wrapped).unwrap();
        assert_eq!(back.expose(), dek.expose());
    }

    #[test]
    fn unwrap_refuses_other_key_ids_and_other_keys() {
        let kek = StaticKek::generate().unwrap();
        let other = StaticKek::generate().unwrap();
        let wrapped = kek.wrap(&[7u8; 32]).unwrap();
        let err = other.unwrap_key(kek.key_id(), &wrapped).unwrap_err();
        assert!(err.to_string().contains(kek.key_id()), "{err}");
        // Same id claimed, different key: the tag check fails.
        assert!(matches!(
            other.unwrap_key(other.key_id(), &wrapped),
            Err(VaultError::Decrypt)
        ));
        assert!(kek.unwrap_key(kek.key_id(), &wrapped[..5]).is_err());
    }

    #[test]
    fn key_id_is_sha256_prefix_and_debug_hides_key() {
        let kek = StaticKek::new([0u8; 32]);
        assert_eq!(kek.key_id(), "66687aad");
        let shown = format!("{kek:?}");
        assert!(shown.contains("66687aad"));
        assert!(!shown.contains("AAAA"), "{shown}");
    }

    #[test]
    fn kek_from_file_ref() {
        let dir = tempfile::tempdir().unwrap();
        let kek = StaticKek::generate().unwrap();
        let path = dir.path().join("kek");
        let mut text = kek.to_base64().expose().to_vec();
        text.push(b'\n');
        std::fs::write(&path, text).unwrap();
        let loaded = kek_from_ref(&SecretRef::File(path.clone())).unwrap();
        assert_eq!(loaded.key_id(), kek.key_id());

        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        let err = kek_from_ref(&SecretRef::File(path.clone())).unwrap_err();
        assert!(
            err.to_string().contains("must be base64 of 32 bytes"),
            "{err}"
        );
        std::fs::write(&path, "not base64 !!").unwrap();
        assert!(kek_from_ref(&SecretRef::File(path)).is_err());
    }

    #[test]
    fn kek_ref_errors_name_the_source() {
        let err = kek_from_ref(&SecretRef::Env(
            "MCP_GATEWAY_TEST_SURELY_UNSET_VAR".to_string(),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable MCP_GATEWAY_TEST_SURELY_UNSET_VAR is not set"
        );
        let err = kek_from_ref(&SecretRef::File("/nonexistent/kek".into())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read key-encryption key file /nonexistent/kek: "),
            "{err}"
        );
        let err = kek_from_ref(&SecretRef::Vault {
            name: "kek".into(),
            owner: None,
        })
        .unwrap_err();
        assert!(matches!(err, VaultError::KekFromVault));
    }
}
