//! [`Vault`]: the decrypted, in-memory view of a vault file, and the operations that change
//! it (set, remove, rotate the key-encryption key, the kill switch).
//!
//! Every record is decrypted when the vault is opened, so a wrong key or a damaged record
//! fails at startup, naming the record, rather than on the first request that needs it.
//! Alongside each value the vault keeps the record exactly as stored, so saving rewrites
//! untouched records byte for byte and `rotate-key` re-wraps data keys without re-sealing
//! values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::crypto;
use super::file::{StoredRecord, VaultFile};
use super::reference::{record_label, validate_name, validate_owner};
use super::{KeyProvider, Secret, VaultError};

type RecordKey = (String, Option<String>);

struct Entry {
    stored: StoredRecord,
    value: Secret,
}

/// The credential vault, decrypted in memory. `Debug` lists record names and key ids, never
/// values.
#[derive(Default)]
pub struct Vault {
    records: BTreeMap<RecordKey, Entry>,
    disabled: BTreeSet<String>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let records: Vec<String> = self
            .records
            .values()
            .map(|e| format!("{} (key id {})", e.stored.label(), e.stored.key_id))
            .collect();
        f.debug_struct("Vault")
            .field("records", &records)
            .field("disabled", &self.disabled)
            .finish()
    }
}

impl Vault {
    /// An empty vault (what `init` writes).
    pub fn new() -> Vault {
        Vault::default()
    }

    /// Reads `path` and decrypts every record with `kek`. Fails on the first record that
    /// does not open, naming it ([`VaultError::CannotOpen`]), so a wrong key is caught at
    /// startup.
    pub fn open(path: &Path, kek: &dyn KeyProvider) -> Result<Vault, VaultError> {
        let file = VaultFile::load(path)?;
        let mut records = BTreeMap::new();
        for stored in file.records {
            let value = open_record(&stored, kek)?;
            records.insert(
                (stored.name.clone(), stored.owner.clone()),
                Entry { stored, value },
            );
        }
        Ok(Vault {
            records,
            disabled: file.disabled,
        })
    }

    /// The kill-switch list of the vault file at `path`, read without decrypting anything
    /// (so it works even when a record or the key is broken). Used by reload to apply
    /// `vault disable` before, and independently of, rebuilding the runtime.
    pub fn read_disabled(path: &Path) -> Result<BTreeSet<String>, VaultError> {
        Ok(VaultFile::load(path)?.disabled)
    }

    /// The value of record `name` (shared, `owner: None`) or `name/owner` (exact match: no
    /// fallback from a user's record to the shared one). `None` if there is no such record
    /// **or its name is disabled** by the kill switch; [`resolve`](super::resolve) tells the
    /// two apart.
    pub fn get(&self, name: &str, owner: Option<&str>) -> Option<&Secret> {
        if self.is_disabled(name) {
            return None;
        }
        self.records
            .get(&(name.to_string(), owner.map(str::to_string)))
            .map(|e| &e.value)
    }

    /// Whether the credential set `name` (every owner's record) is disabled.
    pub fn is_disabled(&self, name: &str) -> bool {
        self.disabled.contains(name)
    }

    /// Every record as `(name, owner)`, sorted by name, shared record first.
    pub fn names(&self) -> Vec<(String, Option<String>)> {
        self.records.keys().cloned().collect()
    }

    /// Names of the disabled credential sets, sorted.
    pub fn disabled_names(&self) -> Vec<String> {
        self.disabled.iter().cloned().collect()
    }

    /// The key id each record's data key is wrapped with, as `(name, owner, key_id)`.
    pub fn key_ids(&self) -> Vec<(String, Option<String>, String)> {
        self.records
            .values()
            .map(|e| {
                (
                    e.stored.name.clone(),
                    e.stored.owner.clone(),
                    e.stored.key_id.clone(),
                )
            })
            .collect()
    }

    /// Turns the kill switch on for `name` (in memory; [`save`](Self::save) persists it).
    /// Returns `false` if it was already disabled. The name need not have records yet.
    pub fn disable(&mut self, name: &str) -> Result<bool, VaultError> {
        validate_name(name)?;
        Ok(self.disabled.insert(name.to_string()))
    }

    /// Turns the kill switch off for `name`. Returns `false` if it was not disabled.
    pub fn enable(&mut self, name: &str) -> bool {
        self.disabled.remove(name)
    }

    /// Stores `value` as `name` or `name/owner`, replacing any previous value: a fresh random
    /// data key seals it (AES-256-GCM, random nonce, name and owner as associated data) and
    /// `kek` wraps the data key.
    pub fn set(
        &mut self,
        name: &str,
        owner: Option<&str>,
        value: Secret,
        kek: &dyn KeyProvider,
    ) -> Result<(), VaultError> {
        validate_name(name)?;
        if let Some(owner) = owner {
            validate_owner(owner)?;
        }
        let dek = crypto::random_key()?;
        let sealed = crypto::seal(
            dek.expose(),
            &crypto::value_aad(name, owner),
            value.expose(),
        )?;
        let wrapped = kek.wrap(dek.expose())?;
        let stored = StoredRecord {
            name: name.to_string(),
            owner: owner.map(str::to_string),
            key_id: kek.key_id().to_string(),
            wrapped_key: B64.encode(wrapped),
            nonce: B64.encode(sealed.nonce),
            ciphertext: B64.encode(sealed.ciphertext),
        };
        self.records.insert(
            (name.to_string(), owner.map(str::to_string)),
            Entry { stored, value },
        );
        Ok(())
    }

    /// Removes a record. Returns `false` if there was none.
    pub fn remove(&mut self, name: &str, owner: Option<&str>) -> bool {
        self.records
            .remove(&(name.to_string(), owner.map(str::to_string)))
            .is_some()
    }

    /// Re-wraps every record's data key from `old` to `new`; values and their ciphertexts
    /// are not touched. All-or-nothing: on any error the vault is unchanged. Each re-wrapped
    /// record is opened with `new` before anything is replaced. Returns the record count.
    pub fn rotate_key(
        &mut self,
        old: &dyn KeyProvider,
        new: &dyn KeyProvider,
    ) -> Result<usize, VaultError> {
        let mut rewrapped = Vec::with_capacity(self.records.len());
        for (key, entry) in &self.records {
            let stored = &entry.stored;
            let dek = unwrap_dek(stored, old)?;
            let mut next = stored.clone();
            next.wrapped_key = B64.encode(new.wrap(dek.expose())?);
            next.key_id = new.key_id().to_string();
            let check = open_record(&next, new)?;
            if check.expose() != entry.value.expose() {
                return Err(VaultError::CannotOpen {
                    record: next.label(),
                    key_id: next.key_id,
                });
            }
            rewrapped.push((key.clone(), next));
        }
        let count = rewrapped.len();
        for (key, next) in rewrapped {
            if let Some(entry) = self.records.get_mut(&key) {
                entry.stored = next;
            }
        }
        Ok(count)
    }

    /// Writes the vault to `path` atomically, mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), VaultError> {
        let mut file = VaultFile::empty();
        file.disabled = self.disabled.clone();
        file.records = self.records.values().map(|e| e.stored.clone()).collect();
        file.save(path)
    }

    #[cfg(test)]
    pub(crate) fn stored(&self, name: &str, owner: Option<&str>) -> Option<&StoredRecord> {
        self.records
            .get(&(name.to_string(), owner.map(str::to_string)))
            .map(|e| &e.stored)
    }
}

fn cannot_open(stored: &StoredRecord) -> VaultError {
    VaultError::CannotOpen {
        record: record_label(&stored.name, stored.owner.as_deref()),
        key_id: stored.key_id.clone(),
    }
}

/// Unwraps a record's data key. Any failure other than the provider itself failing (a KMS
/// being unreachable, say) is reported as [`VaultError::CannotOpen`] naming the record.
fn unwrap_dek(stored: &StoredRecord, kek: &dyn KeyProvider) -> Result<Secret, VaultError> {
    let wrapped = B64
        .decode(&stored.wrapped_key)
        .map_err(|_| cannot_open(stored))?;
    kek.unwrap_key(&stored.key_id, &wrapped)
        .map_err(|e| match e {
            VaultError::Provider(_) | VaultError::Random => e,
            _ => cannot_open(stored),
        })
}

/// Unwraps the data key and opens the value, checking name and owner through the AAD.
fn open_record(stored: &StoredRecord, kek: &dyn KeyProvider) -> Result<Secret, VaultError> {
    let dek = unwrap_dek(stored, kek)?;
    let nonce = B64.decode(&stored.nonce).map_err(|_| cannot_open(stored))?;
    let ciphertext = B64
        .decode(&stored.ciphertext)
        .map_err(|_| cannot_open(stored))?;
    let aad = crypto::value_aad(&stored.name, stored.owner.as_deref());
    crypto::open(dek.expose(), &nonce, &aad, &ciphertext).map_err(|_| cannot_open(stored))
}
