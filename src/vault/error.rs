//! [`VaultError`]: every way reading a secret reference, the key-encryption key or the vault
//! file can fail.
//!
//! Messages name the file, variable, record or key id involved, so an operator can act on
//! them, and never include a secret value. A malformed reference is not echoed either: a
//! value that fails to parse as a reference may be a secret someone pasted inline.

use std::io;
use std::path::PathBuf;

/// A vault, secret-reference or key-encryption-key failure. No variant carries secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A string is not `secret:NAME[/OWNER]`, `env:VAR` or `file:PATH`.
    #[error(
        "invalid secret reference: expected secret:NAME, secret:NAME/OWNER, env:VAR or \
         file:PATH (secret values are never written inline)"
    )]
    InvalidRef,
    /// A secret name or owner breaks the naming rules.
    #[error("invalid secret {what} {value:?}: {rule}")]
    InvalidName {
        /// `"name"` or `"owner"`.
        what: &'static str,
        /// The offending name (names are not secret).
        value: String,
        /// What is allowed.
        rule: &'static str,
    },
    /// `env:VAR` names a variable that is not set.
    #[error("environment variable {var} is not set")]
    EnvNotSet {
        /// The variable.
        var: String,
    },
    /// `env:VAR` names a variable whose value is not UTF-8.
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable.
        var: String,
    },
    /// A referenced secret (env variable or file) is empty.
    #[error("{origin} is empty")]
    Empty {
        /// Where the value came from, e.g. `environment variable X`.
        origin: String,
    },
    /// A file (secret, key or vault) cannot be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// `"secret file"`, `"key-encryption key file"` or `"vault file"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// `--key` / the KEK reference points into the vault itself.
    #[error("the key-encryption key must come from env:VAR or file:PATH, not from the vault")]
    KekFromVault,
    /// The KEK text is not base64 of exactly 32 bytes.
    #[error(
        "the key-encryption key in {origin} must be base64 of 32 bytes \
         (make one with `mcp-gateway vault gen-key`)"
    )]
    MalformedKek {
        /// `env:VAR` or `file:PATH`.
        origin: String,
    },
    /// The vault file does not exist.
    #[error("vault file {} does not exist (create it with `mcp-gateway vault init`)", path.display())]
    NoVaultFile {
        /// The file.
        path: PathBuf,
    },
    /// `init` on an existing file.
    #[error("vault file {} already exists; not overwriting it", path.display())]
    VaultExists {
        /// The file.
        path: PathBuf,
    },
    /// Writing the vault file failed; the previous file, if any, is unchanged.
    #[error("cannot write vault file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The vault file is not valid JSON in the vault format, or breaks its rules.
    #[error("vault file {} is not a valid vault: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a secret: the file holds only ciphertext).
        message: String,
    },
    /// A record cannot be decrypted: the KEK is wrong, or the record was altered, copied to
    /// another name or owner, or truncated.
    #[error(
        "cannot open vault record {record}: wrong key-encryption key or corrupted record \
         (key id {key_id})"
    )]
    CannotOpen {
        /// `name` or `name/owner`.
        record: String,
        /// The record's key id.
        key_id: String,
    },
    /// A key provider was asked to unwrap a key it does not hold.
    #[error("key id {key_id} is not held by this key provider (it holds {held})")]
    UnknownKeyId {
        /// The key id asked for.
        key_id: String,
        /// The key id(s) the provider holds.
        held: String,
    },
    /// AES-256-GCM refused to open a ciphertext (wrong key, or altered data).
    #[error("decryption failed: wrong key or altered data")]
    Decrypt,
    /// AES-256-GCM refused to seal (cannot happen with valid key sizes).
    #[error("encryption failed")]
    Encrypt,
    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system")]
    Random,
    /// A key provider (a KMS, say) failed; the message is the provider's.
    #[error("key provider failed: {0}")]
    Provider(String),
    /// A `secret:` reference is used but no vault is configured.
    #[error("secret:{record} is referenced but no vault is configured")]
    NoVault {
        /// `name` or `name/owner`.
        record: String,
    },
    /// No such record in the vault.
    #[error("no secret {record} in the vault")]
    NotFound {
        /// `name` or `name/owner`.
        record: String,
    },
    /// The credential set is disabled by the kill switch.
    #[error("secret {name} is disabled by the vault kill switch (re-enable it with `mcp-gateway vault enable {name}`)")]
    Disabled {
        /// The credential set's name.
        name: String,
    },
}
