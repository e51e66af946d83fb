//! Vault-level tests: sealing, AAD binding, wrong keys, rotation, the kill switch.

use std::path::{Path, PathBuf};

use super::file::VaultFile;
use super::*;

fn kek() -> StaticKek {
    StaticKek::generate().unwrap()
}

fn secret(s: &str) -> Secret {
    Secret::from(s.to_string())
}

/// A vault with `github` (shared), `github/alice`, `slack/bob`, saved in a temp dir.
fn sample(kek: &StaticKek) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.json");
    let mut v = Vault::new();
    v.set("github", None, secret("gh-shared-token"), kek)
        .unwrap();
    v.set("github", Some("alice"), secret("gh-alice-token"), kek)
        .unwrap();
    v.set("slack", Some("bob"), secret("xoxb-bob"), kek)
        .unwrap();
    v.save(&path).unwrap();
    (dir, path)
}

fn edit_file(path: &Path, f: impl FnOnce(&mut VaultFile)) {
    let mut file = VaultFile::load(path).unwrap();
    f(&mut file);
    file.save(path).unwrap();
}

#[test]
fn set_save_open_round_trip() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let v = Vault::open(&path, &k).unwrap();
    assert_eq!(v.get("github", None).unwrap().expose(), b"gh-shared-token");
    assert_eq!(
        v.get("github", Some("alice")).unwrap().expose(),
        b"gh-alice-token"
    );
    assert_eq!(v.get("slack", Some("bob")).unwrap().expose(), b"xoxb-bob");
    assert!(v.get("slack", None).is_none(), "no fallback to shared");
    assert!(v.get("github", Some("bob")).is_none());
    assert_eq!(
        v.names(),
        vec![
            ("github".to_string(), None),
            ("github".to_string(), Some("alice".to_string())),
            ("slack".to_string(), Some("bob".to_string())),
        ]
    );
    // The file holds no plaintext.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("token") && !text.contains("xoxb"), "{text}");
    assert!(text.contains(k.key_id()));
}

#[test]
fn debug_shows_names_not_values() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let v = Vault::open(&path, &k).unwrap();
    let shown = format!("{v:?} {:?}", v.get("github", None));
    assert!(shown.contains("github/alice"), "{shown}");
    assert!(
        !shown.contains("token") && !shown.contains("xoxb"),
        "{shown}"
    );
}

#[test]
fn ciphertext_moved_to_another_name_or_owner_fails_to_open() {
    let k = kek();
    // (from, to): the whole record (wrapped key, nonce, ciphertext) renamed.
    let moves: [(Option<&str>, &str, Option<&str>, &str); 3] = [
        (Some("alice"), "github", Some("mallory"), "github/mallory"),
        (Some("alice"), "github", None, "github"),
        (Some("bob"), "github", Some("bob"), "github/bob"),
    ];
    for (from_owner, to_name, to_owner, label) in moves {
        let (_dir, path) = sample(&k);
        edit_file(&path, |f| {
            let src = f
                .records
                .iter()
                .find(|r| r.owner.as_deref() == from_owner)
                .cloned()
                .unwrap();
            f.records
                .retain(|r| !(r.name == to_name && r.owner.as_deref() == to_owner));
            let mut moved = src;
            moved.name = to_name.to_string();
            moved.owner = to_owner.map(str::to_string);
            f.records.push(moved);
        });
        let err = Vault::open(&path, &k).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot open vault record {label}: wrong key-encryption key or corrupted \
                 record (key id {})",
                k.key_id()
            )
        );
    }
}

#[test]
fn swapped_value_ciphertext_fails_to_open() {
    // Only the value parts swapped between two records: each data key no longer matches.
    let k = kek();
    let (_dir, path) = sample(&k);
    edit_file(&path, |f| {
        let (a, b) = (f.records[0].clone(), f.records[1].clone());
        f.records[0].nonce = b.nonce;
        f.records[0].ciphertext = b.ciphertext;
        f.records[1].nonce = a.nonce;
        f.records[1].ciphertext = a.ciphertext;
    });
    assert!(matches!(
        Vault::open(&path, &k),
        Err(VaultError::CannotOpen { .. })
    ));
}

#[test]
fn wrong_kek_fails_with_the_clear_message() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let err = Vault::open(&path, &kek()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot open vault record github: wrong key-encryption key or corrupted record \
             (key id {})",
            k.key_id()
        )
    );
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains("token"), "{msg}");
}

#[test]
fn corrupted_record_names_it() {
    let k = kek();
    let (_dir, path) = sample(&k);
    edit_file(&path, |f| {
        let r = f.records.iter_mut().find(|r| r.owner.is_some()).unwrap();
        r.ciphertext = format!("AAAA{}", &r.ciphertext[4..]);
    });
    let err = Vault::open(&path, &k).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot open vault record github/alice: "),
        "{err}"
    );
    edit_file(&path, |f| f.records[0].wrapped_key = "not base64!".into());
    let err = Vault::open(&path, &k).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot open vault record github: "),
        "{err}"
    );
}

#[test]
fn rotate_key_rewraps_without_touching_values() {
    let old = kek();
    let new = kek();
    let (_dir, path) = sample(&old);
    let before = VaultFile::load(&path).unwrap();

    let mut v = Vault::open(&path, &old).unwrap();
    assert_eq!(v.rotate_key(&old, &new).unwrap(), 3);
    v.save(&path).unwrap();

    let after = VaultFile::load(&path).unwrap();
    assert_eq!(before.records.len(), after.records.len());
    for (b, a) in before.records.iter().zip(&after.records) {
        assert_eq!(b.label(), a.label());
        assert_eq!(
            b.ciphertext, a.ciphertext,
            "value ciphertext must not change"
        );
        assert_eq!(b.nonce, a.nonce);
        assert_ne!(b.wrapped_key, a.wrapped_key);
        assert_eq!(b.key_id, old.key_id());
        assert_eq!(a.key_id, new.key_id());
    }
    let v = Vault::open(&path, &new).unwrap();
    assert_eq!(
        v.get("github", Some("alice")).unwrap().expose(),
        b"gh-alice-token"
    );
    let err = Vault::open(&path, &old).unwrap_err().to_string();
    assert!(
        err.contains("wrong key-encryption key") && err.contains(new.key_id()),
        "{err}"
    );
}

#[test]
fn rotate_key_with_wrong_old_key_changes_nothing() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let mut v = Vault::open(&path, &k).unwrap();
    let before = v.stored("github", None).cloned().unwrap();
    assert!(matches!(
        v.rotate_key(&kek(), &kek()),
        Err(VaultError::CannotOpen { .. })
    ));
    assert_eq!(v.stored("github", None), Some(&before));
}

#[test]
fn set_replaces_and_untouched_records_stay_byte_identical() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let before = VaultFile::load(&path).unwrap();
    let mut v = Vault::open(&path, &k).unwrap();
    v.set("github", None, secret("rotated"), &k).unwrap();
    v.save(&path).unwrap();
    let after = VaultFile::load(&path).unwrap();
    assert_ne!(before.records[0], after.records[0]);
    assert_eq!(before.records[1..], after.records[1..]);
    let v = Vault::open(&path, &k).unwrap();
    assert_eq!(v.get("github", None).unwrap().expose(), b"rotated");
}

#[test]
fn set_validates_names() {
    let k = kek();
    let mut v = Vault::new();
    assert!(v.set("bad name", None, secret("x"), &k).is_err());
    assert!(v.set("ok", Some("has space"), secret("x"), &k).is_err());
    assert!(v.set("ok", Some("auth0|123"), secret("x"), &k).is_ok());
}

#[test]
fn remove_record() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let mut v = Vault::open(&path, &k).unwrap();
    assert!(v.remove("github", Some("alice")));
    assert!(!v.remove("github", Some("alice")));
    assert_eq!(v.names().len(), 2);
}

#[test]
fn kill_switch_disables_every_owner_and_persists() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let mut v = Vault::open(&path, &k).unwrap();
    assert!(!v.is_disabled("github"));
    assert!(v.disable("github").unwrap());
    assert!(!v.disable("github").unwrap());
    assert!(v.disable("not a name").is_err());
    assert!(v.get("github", None).is_none());
    assert!(v.get("github", Some("alice")).is_none());
    assert!(v.get("slack", Some("bob")).is_some());
    v.save(&path).unwrap();

    let v = Vault::open(&path, &k).unwrap();
    assert!(v.is_disabled("github"));
    assert_eq!(v.disabled_names(), vec!["github".to_string()]);
    let err = resolve(&"secret:github/alice".parse().unwrap(), Some(&v)).unwrap_err();
    assert!(matches!(err, VaultError::Disabled { .. }), "{err}");
    assert!(
        err.to_string().starts_with("secret github is disabled"),
        "{err}"
    );
    assert!(resolve(&"secret:slack/bob".parse().unwrap(), Some(&v)).is_ok());

    let mut v = v;
    assert!(v.enable("github"));
    assert!(!v.enable("github"));
    assert_eq!(
        resolve(&"secret:github/alice".parse().unwrap(), Some(&v))
            .unwrap()
            .expose(),
        b"gh-alice-token"
    );
}

#[test]
fn resolve_from_vault_reports_missing_records() {
    let k = kek();
    let (_dir, path) = sample(&k);
    let v = Vault::open(&path, &k).unwrap();
    let err = resolve(&"secret:github/carol".parse().unwrap(), Some(&v)).unwrap_err();
    assert_eq!(err.to_string(), "no secret github/carol in the vault");
}

#[test]
fn empty_vault_opens_with_any_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.json");
    VaultFile::create(&path).unwrap();
    let v = Vault::open(&path, &kek()).unwrap();
    assert!(v.names().is_empty());
}
