//! `mcp-gateway vault ...`: the operator's commands for the credential vault.
//!
//! Values are read from stdin, never from argv (argv shows up in `ps` and shell history), and
//! only `get` writes a value, to stdout. Status lines go to stderr so stdout stays pipeable.
//! Commands that decrypt or seal take `--key REF`; `list`, `rm`, `disable` and `enable` only
//! touch the file's plaintext parts and work without the key, so the kill switch can be
//! thrown by whoever can write the file, even if the key is not at hand.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand};
use ring::signature::KeyPair as _;

use super::file::VaultFile;
use super::reference::{record_label, trim_one_newline, validate_name, validate_owner};
use super::{kek_from_ref, KeyProvider as _, Secret, SecretRef, StaticKek, Vault, VaultError};

/// The largest value `set` accepts on stdin.
const MAX_VALUE_BYTES: u64 = 1024 * 1024;

/// `mcp-gateway vault <command>`.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Create an empty vault file (mode 0600); fails if it exists.
    Init {
        #[command(flatten)]
        vault: VaultPath,
    },
    /// Store a secret read from stdin (one trailing newline is trimmed), replacing any old value.
    Set {
        /// Credential set name, e.g. github.
        name: String,
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        vault: VaultPath,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Print a secret's value to stdout.
    Get {
        /// Credential set name.
        name: String,
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        vault: VaultPath,
        #[command(flatten)]
        key: KeyArg,
    },
    /// List records (name/owner, key id, enabled or disabled); never prints values.
    List {
        #[command(flatten)]
        vault: VaultPath,
    },
    /// Remove a record.
    Rm {
        /// Credential set name.
        name: String,
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        vault: VaultPath,
    },
    /// Re-wrap every data key under a new key-encryption key; values are not re-encrypted.
    RotateKey {
        #[command(flatten)]
        vault: VaultPath,
        #[command(flatten)]
        key: KeyArg,
        /// The new key-encryption key: env:VAR or file:PATH holding base64 of 32 bytes.
        #[arg(long = "new-key", value_name = "REF", value_parser = RefParser)]
        new_key: SecretRef,
    },
    /// Kill switch: disable a credential set (every owner's record) by name.
    Disable {
        /// Credential set name.
        name: String,
        #[command(flatten)]
        vault: VaultPath,
    },
    /// Re-enable a disabled credential set.
    Enable {
        /// Credential set name.
        name: String,
        #[command(flatten)]
        vault: VaultPath,
    },
    /// Print a fresh random key-encryption key (base64 of 32 bytes) to stdout.
    GenKey,
    /// Generate an Ed25519 key pair, store the private key (PKCS#8 DER) as a secret and print
    /// the public key (base64url, 32 bytes: a JWK's "x") to stdout.
    GenSigningKey {
        /// Secret name for the private key.
        name: String,
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        vault: VaultPath,
        #[command(flatten)]
        key: KeyArg,
    },
}

/// `--vault PATH`.
#[derive(Debug, Args)]
pub struct VaultPath {
    /// Vault file.
    #[arg(long = "vault", value_name = "PATH")]
    pub vault: PathBuf,
}

/// `--key REF`.
#[derive(Debug, Args)]
pub struct KeyArg {
    /// Key-encryption key: env:VAR or file:PATH holding base64 of 32 bytes.
    #[arg(long = "key", value_name = "REF", value_parser = RefParser)]
    pub key: SecretRef,
}

/// `--owner USER`.
#[derive(Debug, Args)]
pub struct OwnerArg {
    /// The user a per-user record belongs to (record NAME/USER); omit for the shared record.
    #[arg(long = "owner", value_name = "USER")]
    pub owner: Option<String>,
}

/// Parses `--key`/`--new-key` like `SecretRef::from_str`, but unlike clap's default parser
/// it does not echo a rejected value: it may be a key pasted on the command line.
#[derive(Debug, Clone, Copy)]
struct RefParser;

impl clap::builder::TypedValueParser for RefParser {
    type Value = SecretRef;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SecretRef, clap::Error> {
        let flag = arg.map_or_else(|| "the key".to_string(), |a| a.to_string());
        value
            .to_str()
            .ok_or(VaultError::InvalidRef)
            .and_then(str::parse)
            .map_err(|e| {
                clap::Error::raw(
                    clap::error::ErrorKind::ValueValidation,
                    format!("invalid value for {flag}: {e}\n"),
                )
                .with_cmd(cmd)
            })
    }
}

/// Runs one vault command. Errors are for `main` to print as one line and exit 1.
pub fn run(cmd: VaultCommand) -> anyhow::Result<()> {
    match cmd {
        VaultCommand::Init { vault } => {
            VaultFile::create(&vault.vault)?;
            status(format_args!(
                "created empty vault {}",
                vault.vault.display()
            ));
        }
        VaultCommand::Set {
            name,
            owner,
            vault,
            key,
        } => {
            let owner = owner.owner.as_deref();
            let kek = kek_from_ref(&key.key)?;
            let mut v = Vault::open(&vault.vault, &kek)?;
            // Check the names before waiting on stdin.
            validate_name(&name)?;
            if let Some(owner) = owner {
                validate_owner(owner)?;
            }
            let value = read_value_from_stdin()?;
            v.set(&name, owner, value, &kek)?;
            v.save(&vault.vault)?;
            status(format_args!(
                "stored {} in {} (key id {})",
                record_label(&name, owner),
                vault.vault.display(),
                kek.key_id()
            ));
        }
        VaultCommand::Get {
            name,
            owner,
            vault,
            key,
        } => {
            let kek = kek_from_ref(&key.key)?;
            let v = Vault::open(&vault.vault, &kek)?;
            let reference = SecretRef::Vault {
                name,
                owner: owner.owner,
            };
            let value = super::resolve(&reference, Some(&v))?;
            let mut out = std::io::stdout().lock();
            out.write_all(value.expose())
                .and_then(|()| {
                    if std::io::stdout().is_terminal() {
                        out.write_all(b"\n")?;
                    }
                    out.flush()
                })
                .context("cannot write to stdout")?;
        }
        VaultCommand::List { vault } => list(&vault.vault)?,
        VaultCommand::Rm { name, owner, vault } => {
            let mut file = VaultFile::load(&vault.vault)?;
            let owner = owner.owner;
            let before = file.records.len();
            file.records
                .retain(|r| !(r.name == name && r.owner == owner));
            let label = record_label(&name, owner.as_deref());
            if file.records.len() == before {
                return Err(VaultError::NotFound { record: label }.into());
            }
            file.save(&vault.vault)?;
            status(format_args!("removed {label}"));
        }
        VaultCommand::RotateKey {
            vault,
            key,
            new_key,
        } => {
            let old = kek_from_ref(&key.key)?;
            let new = kek_from_ref(&new_key)?;
            let mut v = Vault::open(&vault.vault, &old)?;
            let count = v.rotate_key(&old, &new)?;
            v.save(&vault.vault)?;
            status(format_args!(
                "re-wrapped {}: key id {} -> {}",
                plural(count, "data key"),
                old.key_id(),
                new.key_id()
            ));
        }
        VaultCommand::Disable { name, vault } => {
            validate_name(&name)?;
            let mut file = VaultFile::load(&vault.vault)?;
            let changed = file.disabled.insert(name.clone());
            let count = file.records.iter().filter(|r| r.name == name).count();
            if changed {
                file.save(&vault.vault)?;
            }
            let already = if changed { "" } else { " (already disabled)" };
            status(format_args!(
                "disabled {name} ({}){already}",
                plural(count, "record")
            ));
        }
        VaultCommand::Enable { name, vault } => {
            validate_name(&name)?;
            let mut file = VaultFile::load(&vault.vault)?;
            if file.disabled.remove(&name) {
                file.save(&vault.vault)?;
                status(format_args!("enabled {name}"));
            } else {
                status(format_args!("{name} was not disabled"));
            }
        }
        VaultCommand::GenKey => {
            let kek = StaticKek::generate()?;
            let mut out = std::io::stdout().lock();
            out.write_all(kek.to_base64().expose())
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .context("cannot write to stdout")?;
            status(format_args!("key id {}", kek.key_id()));
        }
        VaultCommand::GenSigningKey {
            name,
            owner,
            vault,
            key,
        } => {
            let owner = owner.owner.as_deref();
            let kek = kek_from_ref(&key.key)?;
            let mut v = Vault::open(&vault.vault, &kek)?;
            let (private, public) = generate_ed25519()?;
            v.set(&name, owner, private, &kek)?;
            v.save(&vault.vault)?;
            println!(
                "{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public)
            );
            status(format_args!(
                "stored Ed25519 private key (PKCS#8 DER) as {}; public key (base64url) on stdout",
                record_label(&name, owner)
            ));
        }
    }
    Ok(())
}

/// `1 record`, `2 records`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn status(msg: std::fmt::Arguments<'_>) {
    eprintln!("{msg}");
}

/// `list`: one line per record, `NAME[/OWNER]<TAB>key-id K<TAB>enabled|disabled`, then
/// disabled names that have no records.
fn list(path: &Path) -> Result<(), VaultError> {
    let mut file = VaultFile::load(path)?;
    file.records
        .sort_by(|a, b| (&a.name, &a.owner).cmp(&(&b.name, &b.owner)));
    let mut lines = String::new();
    for r in &file.records {
        let state = if file.disabled.contains(&r.name) {
            "disabled"
        } else {
            "enabled"
        };
        lines.push_str(&format!("{}\tkey-id {}\t{state}\n", r.label(), r.key_id));
    }
    for name in &file.disabled {
        if !file.records.iter().any(|r| &r.name == name) {
            lines.push_str(&format!("{name}\t(no records)\tdisabled\n"));
        }
    }
    print!("{lines}");
    Ok(())
}

/// Reads the value for `set` from stdin, up to 1 MiB, trimming one trailing newline.
fn read_value_from_stdin() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        status(format_args!(
            "reading the value from stdin (it will be visible; end with Ctrl-D)"
        ));
    }
    // Zeroizing: the bytes are wiped on every early return below.
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(8 * 1024));
    stdin
        .lock()
        .take(MAX_VALUE_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the value from stdin")?;
    if bytes.len() as u64 > MAX_VALUE_BYTES {
        anyhow::bail!("the value on stdin is larger than {MAX_VALUE_BYTES} bytes");
    }
    trim_one_newline(&mut bytes);
    if bytes.is_empty() {
        anyhow::bail!("no value on stdin; nothing stored");
    }
    Ok(Secret::new(std::mem::take(&mut *bytes)))
}

/// A fresh Ed25519 key pair: (PKCS#8 v2 DER private key, raw 32-byte public key).
fn generate_ed25519() -> anyhow::Result<(Secret, Vec<u8>)> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| VaultError::Random)?;
    let private = Secret::new(pkcs8.as_ref().to_vec());
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(private.expose())
        .map_err(|e| anyhow::anyhow!("generated Ed25519 key does not load: {e}"))?;
    Ok((private, pair.public_key().as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_signing_key_signs_jwts_that_verify() {
        let (private, public) = generate_ed25519().unwrap();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        let claims = serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64});
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(private.expose()),
        )
        .unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&public);
        let key = jsonwebtoken::DecodingKey::from_ed_components(&x).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "alice");
    }
}
