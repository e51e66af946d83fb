//! The credential vault: where the gateway's outbound credentials (upstream API tokens,
//! per-user tokens, its own signing keys) live, encrypted at rest.
//!
//! Configuration never holds a secret, only a [`SecretRef`]: `secret:NAME[/OWNER]` (a record
//! in the vault), `env:VAR` or `file:PATH`. The vault file uses envelope encryption: each
//! value is sealed with its own random data key (AES-256-GCM), the data key is wrapped by a
//! key-encryption key from a [`KeyProvider`] ([`StaticKek`] today, a KMS later), and the
//! record's name and owner are bound as associated data. A kill switch disables a whole
//! credential set by name; [`KillSwitch`] carries it to every place a secret is used. Values live in [`Secret`], which never prints itself.
//!
//! What this module does not do: decide which credential a request gets (that is the
//! identity/proxy layer's job), or reload itself (callers re-[`open`](Vault::open)).
//! File format and crypto details: `docs/vault.md`.
//!
//! Layout: `secret` (the value type), `error`, `reference` (refs, naming rules,
//! [`resolve`]), `crypto` (AES-GCM, nonces, AAD), `kek` (key providers), `file` (on-disk
//! shape, atomic writes), `store` ([`Vault`]), `cli` (`mcp-gateway vault ...`).

pub mod cli;
mod crypto;
mod error;
mod file;
mod kek;
mod kill;
mod reference;
mod secret;
mod store;
#[cfg(test)]
mod tests;

pub use error::VaultError;
pub use kek::{kek_from_ref, KeyProvider, StaticKek};
pub use kill::KillSwitch;
pub use reference::{resolve, SecretRef};
pub use secret::Secret;
pub use store::Vault;
