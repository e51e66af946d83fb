//! A zero-downtime upgrade with the audit trail on: the real binary twice, the second
//! started with `--upgrade`, the first sent SIGQUIT. Every request served by either process
//! is one record, and the two processes' records form one unbroken chain in one file.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn yaml(demo: &str, dir: &Path, listen: u16, admin: u16) -> String {
    let d = dir.display();
    format!(
        r#"
server:
  threads: 1
  grace_period_seconds: 1
  graceful_shutdown_timeout_seconds: 1
  pid_file: "{d}/gw.pid"
  upgrade_sock: "{d}/upgrade.sock"
listeners:
  - address: "127.0.0.1:{listen}"
    auth: none
    routes: [{{ path: /mcp, upstream: up }}]
upstreams:
  - {{ name: up, url: "{demo}" }}
admin:
  address: "127.0.0.1:{admin}"
audit:
  path: "{d}/audit.jsonl"
"#
    )
}

fn spawn(config: &Path, upgrade: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"));
    cmd.arg("-c").arg(config);
    if upgrade {
        cmd.arg("--upgrade");
    }
    cmd.env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the gateway: {e}"))
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"))
        .success();
    assert!(ok, "kill {sig} {}", child.id());
}

fn wait_exit(child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exited = child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
        if let Some(status) = exited {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One round: initialize a session and list its tools (two records). `true` when both
/// were answered.
async fn round(url: &str) -> bool {
    let Some(sid) = try_initialize(url).await else {
        return false;
    };
    let r = post(
        url,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[("mcp-session-id", sid.as_str())],
    )
    .await;
    r.status() == 200 && r.bytes().await.is_ok()
}

async fn try_initialize(url: &str) -> Option<String> {
    let r = http()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        )
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let sid = r
        .headers()
        .get("mcp-session-id")?
        .to_str()
        .ok()?
        .to_string();
    r.bytes().await.ok()?;
    Some(sid)
}

#[tokio::test]
async fn an_upgrade_loses_no_record_and_keeps_one_chain() {
    let demo = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_port(), free_port());
    let config = dir.path().join("gw.yaml");
    std::fs::write(&config, yaml(&demo.url(), dir.path(), listen, admin)).unwrap();
    let url = format!("http://127.0.0.1:{listen}/mcp");
    let ready = format!("http://127.0.0.1:{admin}/readyz");

    let mut old = spawn(&config, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http()
        .get(&ready)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "the first gateway did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each round: initialize + tools/list = 2 records.
    let mut served = 0;
    for _ in 0..5 {
        assert!(round(&url).await);
        served += 2;
    }

    // The new process waits on the upgrade socket; SIGQUIT makes the old one hand over its
    // listening sockets and drain.
    let mut new = spawn(&config, true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&old, "-QUIT");
    // Requests keep being served through the hand-over, by one process or the other.
    let deadline = Instant::now() + Duration::from_secs(20);
    while old.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the old gateway did not exit");
        if round(&url).await {
            served += 2;
        }
    }
    wait_exit(&mut old, "the old gateway");
    for _ in 0..5 {
        assert!(round(&url).await, "the new gateway serves");
        served += 2;
    }
    signal(&new, "-TERM");
    wait_exit(&mut new, "the new gateway");

    let path = dir.path().join("audit.jsonl");
    let v = mcp_gateway::audit::verify(std::slice::from_ref(&path)).unwrap_or_else(|b| {
        panic!(
            "{b}\n{}",
            std::fs::read_to_string(&path).unwrap_or_default()
        )
    });
    // A failed attempt during the hand-over may still have made records (a refused or
    // failed request is audited too); every successful one certainly did.
    assert!(
        v.records >= served,
        "{} records for {served} requests",
        v.records
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lists = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["method"] == "tools/list" && r["status"] == 200)
        .count();
    assert_eq!(
        lists * 2,
        served,
        "one tools/list record per answered round"
    );
}
