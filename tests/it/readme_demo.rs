//! The README demo end to end: `scripts/demo.sh --once` on free ports exits 0. The script
//! checks every step itself (the tool lists differ, the hidden tool and the policy are refused
//! without reaching the demo server, the 4th echo gets 429 with Retry-After, one audit record
//! per request and `audit verify` passes, the metrics moved) and exits non-zero when one does
//! not hold, so the README's promise is tested, not just its config.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::free_port;

#[test]
fn readme_demo_runs_and_every_step_holds() {
    // The gateway under test is <target>/debug/mcp-gateway: the script builds into the same
    // target directory, so its `cargo build` finds the gateway up to date and builds the demo
    // server example at most once (cargo holds its build lock only while compiling, not while
    // tests run).
    let exe = Path::new(env!("CARGO_BIN_EXE_mcp-gateway"));
    let target_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the gateway binary lives in <target>/<profile>/");
    let port = || free_port().to_string();
    let mut demo = Command::new("timeout");
    // Without what cargo sets for a test process: build scripts (ring's) rerun when
    // CARGO_MANIFEST_DIR and friends change, and the nested build would then rebuild the
    // whole tree, and the next `cargo test` rebuild it back.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = [
            "CARGO",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "CARGO_BIN_NAME",
            "OUT_DIR",
        ]
        .contains(&name.as_ref())
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_");
        if set_by_cargo {
            demo.env_remove(name.as_ref());
        }
    }
    // `timeout` sends SIGTERM after 10 minutes (a first build of the example on a slow
    // machine included); the script's trap then stops the servers it started.
    let out = demo
        .arg("600")
        .arg("scripts/demo.sh")
        .arg("--once")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir)
        .env("DEMO_UPSTREAM_PORT", port())
        .env("DEMO_PORT", port())
        .env("DEMO_AGENT_PORT", port())
        .env("DEMO_ADMIN_PORT", port())
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/demo.sh --once failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for shown in [
        r#"["demo__add","demo__echo","demo__long_running"]"#,
        r#"["demo__echo"]"#,
        "unknown tool: demo__add",
        "(policy add-small-numbers)",
        "-> HTTP 429",
        "chain intact",
        "/admin/status",
        "demo done; stopping.",
    ] {
        assert!(
            stdout.contains(shown),
            "the demo should show {shown:?}:\n{stdout}"
        );
    }
}
