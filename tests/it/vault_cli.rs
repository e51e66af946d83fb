//! The built binary's `vault` commands end to end in a temp dir: gen-key, init, set (value
//! on stdin), list, get, rotate-key, the kill switch, rm, gen-signing-key, and the error
//! messages an operator sees. Keys are passed as `file:` refs, plus one `env:` ref set on the
//! child process only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-gateway");

/// Runs `mcp-gateway vault ARGS`, feeding `stdin` if given.
fn vault(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .arg("vault")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mcp-gateway");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // The command may fail (and exit) before reading stdin; that is not a test error.
        if let Err(e) = pipe.write_all(input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    child.wait_with_output().expect("wait for mcp-gateway")
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `gen-key` into a file; returns (`file:PATH` ref, key id from stderr).
fn gen_key(dir: &Path, name: &str) -> (String, String) {
    let out = ok(vault(&["gen-key"], None));
    let key = stdout(&out);
    let raw = base64_decode_len(key.trim());
    assert_eq!(raw, 32, "gen-key prints base64 of 32 bytes: {key:?}");
    let path = dir.join(name);
    std::fs::write(&path, &key).expect("write key file");
    let key_id = stderr(&out)
        .trim()
        .strip_prefix("key id ")
        .expect("key id on stderr")
        .to_string();
    (format!("file:{}", path.display()), key_id)
}

/// Length of standard base64 with padding, decoded (enough to check 32 bytes: 44 chars, one `=`).
fn base64_decode_len(s: &str) -> usize {
    assert!(s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')));
    s.len() / 4 * 3 - s.bytes().rev().take_while(|&b| b == b'=').count()
}

struct Setup {
    _dir: tempfile::TempDir,
    vault: PathBuf,
    key: String,
    key_id: String,
    dir: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, key_id) = gen_key(dir.path(), "kek");
        let vault = dir.path().join("vault.json");
        let out = ok(vault_cmd(&["init"], &vault, None, None));
        assert!(stderr(&out).contains("created empty vault"));
        Setup {
            dir: dir.path().to_path_buf(),
            _dir: dir,
            vault,
            key,
            key_id,
        }
    }

    fn v(&self) -> &str {
        self.vault.to_str().expect("utf-8 path")
    }
}

fn vault_cmd(args: &[&str], path: &Path, key: Option<&str>, stdin: Option<&[u8]>) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let p = path.to_str().expect("utf-8 path");
    all.extend(["--vault", p]);
    if let Some(k) = key {
        all.extend(["--key", k]);
    }
    vault(&all, stdin)
}

#[test]
fn full_lifecycle() {
    let s = Setup::new();
    let (v, key) = (s.v(), s.key.as_str());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.vault)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = vault(&["init", "--vault", v], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    // set: values on stdin, one trailing newline trimmed.
    let out = ok(vault(
        &["set", "github", "--vault", v, "--key", key],
        Some(b"ghp_shared_value\n"),
    ));
    assert!(stderr(&out).contains(&format!("stored github in {v} (key id {})", s.key_id)));
    ok(vault(
        &[
            "set", "github", "--owner", "alice", "--vault", v, "--key", key,
        ],
        Some(b"ghp_alice_value\n"),
    ));
    ok(vault(
        &["set", "slack", "--owner", "bob", "--vault", v, "--key", key],
        Some(b"xoxb_bob_value"),
    ));
    let text = std::fs::read_to_string(&s.vault).expect("read vault");
    assert!(
        !text.contains("_value"),
        "plaintext in the vault file: {text}"
    );

    // list: names, key ids, state; never values.
    let out = ok(vault(&["list", "--vault", v], None));
    let listing = stdout(&out);
    assert_eq!(
        listing,
        format!(
            "github\tkey-id {k}\tenabled\ngithub/alice\tkey-id {k}\tenabled\n\
             slack/bob\tkey-id {k}\tenabled\n",
            k = s.key_id
        )
    );
    assert!(!listing.contains("_value") && !stderr(&out).contains("_value"));

    // get prints exactly the value.
    let out = ok(vault(
        &[
            "get", "github", "--owner", "alice", "--vault", v, "--key", key,
        ],
        None,
    ));
    assert_eq!(stdout(&out), "ghp_alice_value");
    let out = ok(vault(&["get", "github", "--vault", v, "--key", key], None));
    assert_eq!(stdout(&out), "ghp_shared_value");

    // An env: ref set on the child process works too.
    let key_text = std::fs::read_to_string(s.dir.join("kek")).expect("read kek");
    let out = Command::new(BIN)
        .args(["vault", "get", "slack", "--owner", "bob", "--vault", v])
        .args(["--key", "env:MCP_GATEWAY_TEST_KEK"])
        .env("MCP_GATEWAY_TEST_KEK", key_text.trim())
        .output()
        .expect("run");
    assert_eq!(stdout(&ok(out)), "xoxb_bob_value");

    // rotate-key: the new key works, the old one fails clearly; values unchanged.
    let before = std::fs::read_to_string(&s.vault).expect("read vault");
    let (new_key, new_id) = gen_key(&s.dir, "kek2");
    assert_ne!(new_id, s.key_id);
    let out = ok(vault(
        &[
            "rotate-key",
            "--vault",
            v,
            "--key",
            key,
            "--new-key",
            &new_key,
        ],
        None,
    ));
    assert!(
        stderr(&out).contains(&format!(
            "re-wrapped 3 data keys: key id {} -> {new_id}",
            s.key_id
        )),
        "{}",
        stderr(&out)
    );
    let after = std::fs::read_to_string(&s.vault).expect("read vault");
    assert_eq!(ciphertexts(&before), ciphertexts(&after));
    let out = ok(vault(
        &[
            "get", "github", "--owner", "alice", "--vault", v, "--key", &new_key,
        ],
        None,
    ));
    assert_eq!(stdout(&out), "ghp_alice_value");
    let out = vault(
        &[
            "get", "github", "--owner", "alice", "--vault", v, "--key", key,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: cannot open vault record github: wrong key-encryption key or corrupted \
             record (key id {new_id})"
        )
    );
    assert!(stdout(&out).is_empty());

    // Kill switch: every owner of `github` is off; `slack` is not; no key needed.
    let out = ok(vault(&["disable", "github", "--vault", v], None));
    assert!(
        stderr(&out).contains("disabled github (2 records)"),
        "{}",
        stderr(&out)
    );
    let listing = stdout(&ok(vault(&["list", "--vault", v], None)));
    assert!(listing.contains("github/alice\tkey-id"), "{listing}");
    assert_eq!(listing.matches("\tdisabled\n").count(), 2, "{listing}");
    let out = vault(
        &[
            "get", "github", "--owner", "alice", "--vault", v, "--key", &new_key,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("secret github is disabled by the vault kill switch"),
        "{}",
        stderr(&out)
    );
    ok(vault(
        &[
            "get", "slack", "--owner", "bob", "--vault", v, "--key", &new_key,
        ],
        None,
    ));
    ok(vault(&["enable", "github", "--vault", v], None));
    let out = ok(vault(
        &["get", "github", "--vault", v, "--key", &new_key],
        None,
    ));
    assert_eq!(stdout(&out), "ghp_shared_value");

    // rm
    ok(vault(
        &["rm", "github", "--owner", "alice", "--vault", v],
        None,
    ));
    let out = vault(&["rm", "github", "--owner", "alice", "--vault", v], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no secret github/alice in the vault"));
    let listing = stdout(&ok(vault(&["list", "--vault", v], None)));
    assert!(!listing.contains("github/alice"), "{listing}");
    assert_eq!(listing.lines().count(), 2, "{listing}");

    // No temp files left next to the vault.
    let names: Vec<_> = std::fs::read_dir(&s.dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

/// The `nonce` and `ciphertext` lines of a vault file, in order.
fn ciphertexts(vault_json: &str) -> Vec<String> {
    vault_json
        .lines()
        .filter(|l| l.contains("\"ciphertext\"") || l.contains("\"nonce\""))
        .map(str::to_string)
        .collect()
}

#[test]
fn key_reference_errors_are_clear() {
    let s = Setup::new();
    let v = s.v();
    let out = Command::new(BIN)
        .args(["vault", "get", "github", "--vault", v])
        .args(["--key", "env:MCP_GATEWAY_TEST_UNSET_KEK"])
        .env_remove("MCP_GATEWAY_TEST_UNSET_KEK")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: environment variable MCP_GATEWAY_TEST_UNSET_KEK is not set"
    );

    let bad = s.dir.join("bad-kek");
    std::fs::write(&bad, "dG9vIHNob3J0\n").expect("write");
    let out = vault(
        &[
            "get",
            "github",
            "--vault",
            v,
            "--key",
            &format!("file:{}", bad.display()),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("must be base64 of 32 bytes"),
        "{}",
        stderr(&out)
    );

    let out = vault(
        &["get", "github", "--vault", v, "--key", "ghp_pasted_token"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    assert!(
        !stderr(&out).contains("ghp_pasted_token"),
        "{}",
        stderr(&out)
    );

    let out = vault(&["get", "github", "--vault", v, "--key", &s.key], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no secret github in the vault"));

    let missing = s.dir.join("nope.json");
    let out = vault(&["list", "--vault", missing.to_str().expect("utf-8")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist (create it with `mcp-gateway vault init`)"));
}

#[test]
fn set_refuses_empty_values_and_bad_names() {
    let s = Setup::new();
    let (v, key) = (s.v(), s.key.as_str());
    let out = vault(&["set", "github", "--vault", v, "--key", key], Some(b"\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no value on stdin"),
        "{}",
        stderr(&out)
    );
    let out = vault(&["set", "git hub", "--vault", v, "--key", key], Some(b"x"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid secret name \"git hub\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&ok(vault(&["list", "--vault", v], None))), "");
}

#[test]
fn gen_signing_key_stores_a_private_key_and_prints_the_public_key() {
    let s = Setup::new();
    let (v, key) = (s.v(), s.key.as_str());
    let out = ok(vault(
        &["gen-signing-key", "gateway-jwt", "--vault", v, "--key", key],
        None,
    ));
    let public = stdout(&out);
    assert_eq!(public.trim().len(), 43, "base64url of 32 bytes: {public:?}");
    let out = ok(vault(
        &["get", "gateway-jwt", "--vault", v, "--key", key],
        None,
    ));
    // PKCS#8 v2 Ed25519 (private and public key) from ring: an 83-byte DER SEQUENCE.
    assert_eq!(out.stdout.len(), 83);
    assert_eq!(out.stdout[0], 0x30);
}

#[test]
fn help_lists_the_vault_commands() {
    let out = ok(vault(&["--help"], None));
    let help = stdout(&out);
    for cmd in [
        "init",
        "set",
        "get",
        "list",
        "rm",
        "rotate-key",
        "disable",
        "enable",
        "gen-key",
        "gen-signing-key",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from: {help}");
    }
}
