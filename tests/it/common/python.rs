//! The Python fixtures (`tests/fixtures/python/*.py`, the official MCP SDK and FastMCP in
//! the venv `scripts/python-sdk.sh` makes): the interpreter, and one fixture server started
//! on a free port, killed when dropped.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Python interpreter with the official `mcp` SDK: `MCP_GATEWAY_PYTHON`, else the venv
/// `scripts/test.sh` creates. `None` when neither is usable.
pub fn sdk_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("MCP_GATEWAY_PYTHON").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/mcp-gateway/venv/bin/python")),
    ];
    candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import mcp.server"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// A child process killed on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `tests/fixtures/python/<script> <port> <args...>` with `python` in `dir` (the
/// current directory when `None`) on `port`, and wait (at most 60 s) until it listens.
pub async fn start_on(
    python: &Path,
    script: &str,
    port: u16,
    args: &[&OsStr],
    dir: Option<&Path>,
) -> Child {
    let path = format!(
        "{}/tests/fixtures/python/{script}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut command = std::process::Command::new(python);
    command
        .arg(path)
        .arg(port.to_string())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let child = Child(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{script} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child
}

/// [`start_on`] a free port; returns the child and its port.
pub async fn start(
    python: &Path,
    script: &str,
    args: &[&OsStr],
    dir: Option<&Path>,
) -> (Child, u16) {
    let port = super::free_port();
    (start_on(python, script, port, args, dir).await, port)
}
