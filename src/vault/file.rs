//! The vault file on disk: its serde shape, loading with format checks, and atomic writes.
//!
//! This layer never decrypts anything. It exists on its own so that the keyless commands
//! (`list`, `rm`, `disable`, `enable`) can work on the file without the key-encryption key,
//! and so that records not touched by a command are written back byte for byte.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crypto;
use super::reference::{record_label, validate_name, validate_owner};
use super::VaultError;

/// The `format` field every vault file carries.
pub(crate) const FORMAT: &str = "mcp-gateway-vault";
/// The only format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;

/// The whole file (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VaultFile {
    pub(crate) format: String,
    pub(crate) version: u32,
    /// Names of disabled credential sets (the kill switch), sorted.
    #[serde(default)]
    pub(crate) disabled: BTreeSet<String>,
    /// Sealed records, sorted by name then owner (shared record first).
    #[serde(default)]
    pub(crate) records: Vec<StoredRecord>,
}

/// One sealed secret. Binary fields are standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredRecord {
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
    /// Id of the key-encryption key that wrapped `wrapped_key`.
    pub(crate) key_id: String,
    /// The data key, wrapped by the key provider (opaque to the vault).
    pub(crate) wrapped_key: String,
    /// The 96-bit nonce the value was sealed with.
    pub(crate) nonce: String,
    /// AES-256-GCM(data key, nonce, value, aad = name + owner), tag appended.
    pub(crate) ciphertext: String,
}

impl StoredRecord {
    /// `name` or `name/owner`.
    pub(crate) fn label(&self) -> String {
        record_label(&self.name, self.owner.as_deref())
    }

    fn sort_key(&self) -> (&str, Option<&str>) {
        (&self.name, self.owner.as_deref())
    }
}

impl VaultFile {
    /// An empty vault.
    pub(crate) fn empty() -> VaultFile {
        VaultFile {
            format: FORMAT.to_string(),
            version: VERSION,
            disabled: BTreeSet::new(),
            records: Vec::new(),
        }
    }

    /// Reads and checks `path`: format marker, version, names, no duplicate records.
    pub(crate) fn load(path: &Path) -> Result<VaultFile, VaultError> {
        let text = match fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VaultError::NoVaultFile {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(VaultError::Read {
                    what: "vault file",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let malformed = |message: String| VaultError::Malformed {
            path: path.to_path_buf(),
            message,
        };
        let file: VaultFile =
            serde_json::from_slice(&text).map_err(|e| malformed(e.to_string()))?;
        if file.format != FORMAT {
            return Err(malformed(format!(
                "format is {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        if file.version != VERSION {
            return Err(malformed(format!(
                "format version {} is not supported (this build reads version {VERSION})",
                file.version
            )));
        }
        for name in &file.disabled {
            validate_name(name).map_err(|e| malformed(format!("disabled: {e}")))?;
        }
        let mut seen = BTreeSet::new();
        for r in &file.records {
            validate_name(&r.name).map_err(|e| malformed(format!("records: {e}")))?;
            if let Some(owner) = &r.owner {
                validate_owner(owner).map_err(|e| malformed(format!("records: {e}")))?;
            }
            if !seen.insert(r.sort_key()) {
                return Err(malformed(format!("record {} appears twice", r.label())));
            }
        }
        Ok(file)
    }

    /// Writes the file atomically (temp file in the same directory, then rename), mode 0600.
    /// Records are sorted first so the file is stable under diff.
    pub(crate) fn save(&self, path: &Path) -> Result<(), VaultError> {
        let mut file = self.clone();
        file.records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let mut json = serde_json::to_vec_pretty(&file).map_err(|e| VaultError::Write {
            path: path.to_path_buf(),
            source: io::Error::other(e),
        })?;
        json.push(b'\n');
        write_atomic(path, &json, false)
    }

    /// Writes a new, empty vault; fails if `path` exists.
    pub(crate) fn create(path: &Path) -> Result<(), VaultError> {
        let mut json =
            serde_json::to_vec_pretty(&VaultFile::empty()).map_err(|e| VaultError::Write {
                path: path.to_path_buf(),
                source: io::Error::other(e),
            })?;
        json.push(b'\n');
        write_atomic(path, &json, true)
    }
}

/// Writes `bytes` to `path` through a temp file in the same directory and a rename, so a
/// reader sees the old file or the new one, never half of one. The temp file is created
/// with mode 0600 (before any byte is written) and fsynced; so is the directory after the
/// rename. With `exclusive`, fails if `path` already exists.
fn write_atomic(path: &Path, bytes: &[u8], exclusive: bool) -> Result<(), VaultError> {
    let write_err = |source: io::Error| VaultError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err(io::Error::other("the path has no file name")))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut suffix = [0u8; 8];
    crypto::fill_random(&mut suffix)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        crate::digest::hex(&suffix)
    ));

    let result = (|| -> io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if exclusive {
            // hard_link fails if the target exists, unlike rename.
            fs::hard_link(&tmp, path)?;
            fs::remove_file(&tmp)?;
        } else {
            fs::rename(&tmp, path)?;
        }
        #[cfg(unix)]
        fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            if exclusive && e.kind() == io::ErrorKind::AlreadyExists {
                return Err(VaultError::VaultExists {
                    path: path.to_path_buf(),
                });
            }
            Err(write_err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_exclusive_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        VaultFile::create(&path).unwrap();
        let err = VaultFile::create(&path).unwrap_err();
        assert!(matches!(err, VaultError::VaultExists { .. }), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let file = VaultFile::load(&path).unwrap();
        assert!(file.records.is_empty());
        file.save(&path).unwrap();
        // No temp files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn load_rejects_bad_files_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        let err = VaultFile::load(&path).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");

        let cases = [
            ("{", "is not a valid vault"),
            (r#"{"format":"x","version":1}"#, "format is \"x\""),
            (r#"{"format":"mcp-gateway-vault","version":2}"#, "version 2"),
            (
                r#"{"format":"mcp-gateway-vault","version":1,"extra":1}"#,
                "unknown field",
            ),
            (
                r#"{"format":"mcp-gateway-vault","version":1,"disabled":["bad name"]}"#,
                "invalid secret name",
            ),
        ];
        for (text, expect) in cases {
            fs::write(&path, text).unwrap();
            let err = VaultFile::load(&path).unwrap_err().to_string();
            assert!(err.contains(expect), "{text}: {err}");
        }
        let rec = r#"{"name":"a","key_id":"k","wrapped_key":"","nonce":"","ciphertext":""}"#;
        fs::write(
            &path,
            format!(r#"{{"format":"mcp-gateway-vault","version":1,"records":[{rec},{rec}]}}"#),
        )
        .unwrap();
        let err = VaultFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("record a appears twice"), "{err}");
    }
}
