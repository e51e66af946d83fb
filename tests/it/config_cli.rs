//! The built binary's `-t` on every shipped config (exit 0, "ok") and on every bad-config
//! fixture (exit 1, one line containing the fixture's `# expect:` text).

use std::path::Path;
use std::process::Command;

fn run_test_flag(file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .arg("-t")
        .arg("-c")
        .arg(file)
        .output()
        .expect("run mcp-gateway")
}

fn yaml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no yaml files in {}", dir.display());
    files
}

#[test]
fn every_shipped_config_validates() {
    for f in yaml_files("conf") {
        let out = run_test_flag(&f);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    }
}

#[test]
fn every_bad_config_fails_with_its_expected_message() {
    for f in yaml_files("tests/fixtures/bad-config") {
        let text = std::fs::read_to_string(&f).expect("read fixture");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks a '# expect: ' first line", f.display()));
        let out = run_test_flag(&f);
        assert_eq!(out.status.code(), Some(1), "{}", f.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(expect),
            "{}: {stderr:?} should contain {expect:?}",
            f.display()
        );
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = run_test_flag(Path::new("/nonexistent/gw.yaml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn version_and_help() {
    let bin = env!("CARGO_BIN_EXE_mcp-gateway");
    let v = Command::new(bin).arg("--version").output().expect("run");
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("mcp-gateway "));
    let h = Command::new(bin).arg("--help").output().expect("run");
    assert!(String::from_utf8_lossy(&h.stdout).contains("--conf"));
}
