//! [`SecretRef`]: how configuration points at a secret (`secret:`, `env:`, `file:`), the
//! naming rules for vault records, and [`resolve`], which turns a reference into a value.
//!
//! Configuration never holds a secret value, only one of these references, so a config file
//! can be committed, logged and diffed safely.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{Secret, Vault, VaultError};

const NAME_RULE: &str = "use 1 to 64 characters from A-Z a-z 0-9 . _ -";
const OWNER_RULE: &str = "use 1 to 256 characters, no whitespace or control characters";

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `secret:NAME` (shared) or `secret:NAME/OWNER` (per-user): a record in the vault.
    Vault {
        /// The credential set's name, e.g. `github`.
        name: String,
        /// The user the record belongs to; `None` for the shared record.
        owner: Option<String>,
    },
    /// `env:VAR`: an environment variable, read when resolved.
    Env(String),
    /// `file:PATH`: a file's contents (one trailing newline trimmed), read when resolved.
    File(PathBuf),
}

impl SecretRef {
    /// The vault credential set this reference reads (`secret:NAME[/OWNER]`), which the kill
    /// switch can disable; `None` for `env:` and `file:`.
    pub fn vault_name(&self) -> Option<&str> {
        match self {
            SecretRef::Vault { name, .. } => Some(name),
            SecretRef::Env(_) | SecretRef::File(_) => None,
        }
    }
}

impl FromStr for SecretRef {
    type Err = VaultError;

    /// Parses `secret:NAME`, `secret:NAME/OWNER`, `env:VAR` or `file:PATH`. The error does
    /// not echo the input, which may be a secret pasted inline by mistake.
    fn from_str(s: &str) -> Result<SecretRef, VaultError> {
        if let Some(rest) = s.strip_prefix("secret:") {
            let (name, owner) = match rest.split_once('/') {
                Some((name, owner)) => (name, Some(owner)),
                None => (rest, None),
            };
            validate_name(name)?;
            if let Some(owner) = owner {
                validate_owner(owner)?;
            }
            Ok(SecretRef::Vault {
                name: name.to_string(),
                owner: owner.map(str::to_string),
            })
        } else if let Some(var) = s.strip_prefix("env:") {
            if var.is_empty() || var.contains(['=', '\0']) {
                return Err(VaultError::InvalidRef);
            }
            Ok(SecretRef::Env(var.to_string()))
        } else if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(VaultError::InvalidRef);
            }
            Ok(SecretRef::File(PathBuf::from(path)))
        } else {
            Err(VaultError::InvalidRef)
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Vault { name, owner } => {
                write!(f, "secret:{}", record_label(name, owner.as_deref()))
            }
            SecretRef::Env(var) => write!(f, "env:{var}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// Checks a credential set's name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn validate_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            what: "name",
            value: name.to_string(),
            rule: NAME_RULE,
        })
    }
}

/// Checks an owner (a user id as the identity layer reports it, so `auth0|123` or an email
/// are fine): 1 to 256 characters, no whitespace or control characters.
pub(crate) fn validate_owner(owner: &str) -> Result<(), VaultError> {
    let ok = !owner.is_empty()
        && owner.chars().count() <= 256
        && !owner.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            what: "owner",
            value: owner.to_string(),
            rule: OWNER_RULE,
        })
    }
}

/// `name` or `name/owner`: how records are named in messages and `list`.
pub(crate) fn record_label(name: &str, owner: Option<&str>) -> String {
    match owner {
        Some(owner) => format!("{name}/{owner}"),
        None => name.to_string(),
    }
}

/// Resolves a reference to its value now.
///
/// `env:` and `file:` are read on every call (a file's one trailing `\n` or `\r\n` is
/// trimmed); an unset variable, unreadable file or empty value is an error naming it.
/// `secret:` is looked up in `vault`: an error if no vault is configured, the record is
/// missing, or its name is disabled by the kill switch.
pub fn resolve(r: &SecretRef, vault: Option<&Vault>) -> Result<Secret, VaultError> {
    match r {
        SecretRef::Vault { name, owner } => {
            let record = record_label(name, owner.as_deref());
            let vault = vault.ok_or(VaultError::NoVault {
                record: record.clone(),
            })?;
            if vault.is_disabled(name) {
                return Err(VaultError::Disabled { name: name.clone() });
            }
            vault
                .get(name, owner.as_deref())
                .cloned()
                .ok_or(VaultError::NotFound { record })
        }
        SecretRef::Env(var) => {
            let value = std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => VaultError::EnvNotSet { var: var.clone() },
                std::env::VarError::NotUnicode(_) => VaultError::EnvNotUnicode { var: var.clone() },
            })?;
            if value.is_empty() {
                return Err(VaultError::Empty {
                    origin: format!("environment variable {var}"),
                });
            }
            Ok(Secret::from(value))
        }
        SecretRef::File(path) => {
            let mut bytes = std::fs::read(path).map_err(|source| VaultError::Read {
                what: "secret file",
                path: path.clone(),
                source,
            })?;
            trim_one_newline(&mut bytes);
            let secret = Secret::new(bytes);
            if secret.is_empty() {
                return Err(VaultError::Empty {
                    origin: format!("secret file {}", path.display()),
                });
            }
            Ok(secret)
        }
    }
}

/// Drops one trailing `\n` or `\r\n`, in place (no copy of the value is made).
pub(crate) fn trim_one_newline(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SecretRef, VaultError> {
        s.parse()
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse("secret:github").unwrap(),
            SecretRef::Vault {
                name: "github".into(),
                owner: None
            }
        );
        assert_eq!(
            parse("secret:github/alice").unwrap(),
            SecretRef::Vault {
                name: "github".into(),
                owner: Some("alice".into())
            }
        );
        assert_eq!(
            parse("secret:github/auth0|42").unwrap(),
            SecretRef::Vault {
                name: "github".into(),
                owner: Some("auth0|42".into())
            }
        );
        assert_eq!(
            parse("env:GH_TOKEN").unwrap(),
            SecretRef::Env("GH_TOKEN".into())
        );
        assert_eq!(
            parse("file:/run/secrets/gh").unwrap(),
            SecretRef::File("/run/secrets/gh".into())
        );
        for s in ["secret:github/alice", "env:X", "file:/p", "secret:a.b_c-d"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_forms_without_echoing_them() {
        for s in ["ghp_inlinevalue123", "Secret:github", "vault:github", ""] {
            let msg = parse(s).unwrap_err().to_string();
            assert!(
                msg.contains("expected secret:NAME, secret:NAME/OWNER, env:VAR or file:PATH"),
                "{s:?}: {msg}"
            );
            assert!(s.is_empty() || !msg.contains(s), "{s:?} echoed: {msg}");
        }
        for s in ["env:", "file:", "env:A=B"] {
            assert!(matches!(parse(s), Err(VaultError::InvalidRef)), "{s:?}");
        }
        for (s, what) in [
            ("secret:", "name"),
            ("secret:git hub", "name"),
            ("secret:github/", "owner"),
            ("secret:github/al ice", "owner"),
        ] {
            let msg = parse(s).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("invalid secret {what} ")),
                "{s:?}: {msg}"
            );
        }
        assert!(parse(&format!("secret:{}", "a".repeat(65))).is_err());
        assert!(parse(&format!("secret:{}", "a".repeat(64))).is_ok());
    }

    #[test]
    fn resolves_files_trimming_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "abc\r\n\n").unwrap();
        let s = resolve(&SecretRef::File(path.clone()), None).unwrap();
        assert_eq!(s.expose(), b"abc\r\n");
        std::fs::write(&path, "abc\r\n").unwrap();
        let s = resolve(&SecretRef::File(path.clone()), None).unwrap();
        assert_eq!(s.expose(), b"abc");
        std::fs::write(&path, "\n").unwrap();
        let err = resolve(&SecretRef::File(path), None).unwrap_err();
        assert!(err.to_string().ends_with("is empty"), "{err}");
    }

    #[test]
    fn resolve_errors_name_the_source() {
        let err = resolve(&SecretRef::Env("MCP_GATEWAY_TEST_UNSET_X".into()), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable MCP_GATEWAY_TEST_UNSET_X is not set"
        );
        // PATH is set in any test environment.
        assert!(resolve(&SecretRef::Env("PATH".into()), None).is_ok());
        let err = resolve(&parse("secret:github/alice").unwrap(), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret:github/alice is referenced but no vault is configured"
        );
    }
}
