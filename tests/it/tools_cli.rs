//! The built binary's `tools` subcommand against two real demo MCP servers: what each
//! principal sees on a virtual server, why the rest is hidden, upstream health, and the
//! one-line errors for an unknown server or a bad config.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

struct Setup {
    _github: demo::DemoServer,
    _crm: demo::DemoServer,
    dir: tempfile::TempDir,
    conf: PathBuf,
}

/// Two demo upstreams (`github`, `crm`), one closed port (`dead`), a virtual server `support`
/// for everyone with a rule for `eng`, and `ops` (only group `ops`) over the dead upstream.
async fn setup() -> Setup {
    setup_with(|_| Registry::default()).await
}

/// [`setup`] with `registry:` settings (its `timeout` is set here), given the temp dir.
async fn setup_with(registry: impl FnOnce(&Path) -> Registry) -> Setup {
    let github = start_demo().await;
    let crm = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry {
        timeout: Some(Duration::from_secs(5)),
        ..registry(dir.path())
    };
    let dead = format!("http://127.0.0.1:{}/mcp", free_port());
    let config = Config::new()
        .without_admin()
        .listener(
            Listener::at(&format!("127.0.0.1:{}", free_port()))
                .auth(ListenerAuth::None)
                .route("/mcp", "github"),
        )
        .upstream(Upstream::new("github", &github.url()))
        .upstream(Upstream::new("crm", &crm.url()))
        .upstream(Upstream::new("dead", &dead))
        .registry(registry)
        .virtual_server(
            VirtualServer::new("support", "/v/support/mcp")
                .allow_tools(&["github.echo", "crm.add"])
                .deny_tools(&["github.long_running"])
                .rule(&["eng"], &["github.*"]),
        )
        .virtual_server(
            VirtualServer::new("ops", "/v/ops/mcp")
                .groups(&["ops"])
                .allow_tools(&["dead.*"]),
        );
    let conf = dir.path().join("gateway.yaml");
    std::fs::write(&conf, config.yaml()).unwrap();
    Setup {
        _github: github,
        _crm: crm,
        dir,
        conf,
    }
}

/// Run `mcp-gateway tools -c CONF ARGS...` without blocking the demo servers' runtime.
async fn tools(conf: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .arg("tools")
        .arg("-c")
        .arg(conf)
        .args(args)
        .output()
        .await
        .expect("run mcp-gateway tools")
}

async fn tools_json(conf: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = tools(conf, &all).await;
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn server<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no server {name} in {report:#}"))
}

fn visible(s: &Value) -> Vec<&str> {
    s["visible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["exposed"].as_str().unwrap())
        .collect()
}

fn hidden_reason<'a>(s: &'a Value, exposed: &str) -> &'a str {
    s["hidden"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["exposed"] == exposed)
        .and_then(|t| t["reason"].as_str())
        .unwrap_or_else(|| panic!("{exposed} is not hidden in {s:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_sees_the_servers_allow_list_only() {
    let s = setup().await;
    let r = tools_json(&s.conf, &["--as", "alice"]).await;
    assert_eq!(r["principal"]["subject"], "alice");
    let support = server(&r, "support");
    assert_eq!(support["access"], true);
    assert_eq!(support["rules"], serde_json::json!([]));
    assert_eq!(visible(support), ["github__echo", "crm__add"]);
    assert_eq!(support["visible"][0]["upstream"], "github");
    assert_eq!(support["visible"][0]["tool"], "echo");
    assert_eq!(support["visible"][0]["unavailable"], false);
    assert!(
        hidden_reason(support, "github__add").starts_with("not matched by any allow_tools pattern"),
        "{support:#}"
    );
    assert_eq!(
        hidden_reason(support, "github__long_running"),
        "denied by deny_tools github.long_running"
    );
    // Every discovered tool is either visible or hidden: 3 tools on each of 2 upstreams.
    assert_eq!(
        support["hidden"].as_array().unwrap().len(),
        4,
        "{support:#}"
    );
    assert_eq!(support["collisions"], serde_json::json!([]));

    let ops = server(&r, "ops");
    assert_eq!(ops["access"], false);
    assert_eq!(ops["access_list"]["groups"], serde_json::json!(["ops"]));
    assert_eq!(ops["visible"], serde_json::json!([]));

    let health: Vec<(&str, &str, u64)> = r["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["health"].as_str().unwrap(),
                u["tools"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        health,
        [("github", "up", 3), ("crm", "up", 3), ("dead", "down", 0)]
    );
    let dead = &r["upstreams"][2];
    assert!(
        dead["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{dead}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bob_in_eng_gets_the_rule_but_not_the_denied_tool() {
    let s = setup().await;
    let r = tools_json(&s.conf, &["--as", "bob", "--group", "eng"]).await;
    let support = server(&r, "support");
    assert_eq!(support["rules"], serde_json::json!([0]));
    let mut seen = visible(support);
    seen.sort_unstable();
    assert_eq!(seen, ["crm__add", "github__add", "github__echo"]);
    assert_eq!(
        hidden_reason(support, "github__long_running"),
        "denied by deny_tools github.long_running"
    );
    assert!(hidden_reason(support, "crm__echo").starts_with("not matched by any allow_tools"));
}

#[tokio::test(flavor = "multi_thread")]
async fn text_output_is_aligned_and_names_the_reasons() {
    let s = setup().await;
    let out = tools(&s.conf, &["--as", "alice", "--server", "support"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("virtual server support (/v/support/mcp)"),
        "{text}"
    );
    assert!(
        !text.contains("virtual server ops"),
        "--server limits the report: {text}"
    );
    assert!(text.contains("    github__echo  github.echo\n"), "{text}");
    assert!(text.contains("    crm__add      crm.add\n"), "{text}");
    assert!(
        text.contains(
            "    github__long_running  github.long_running  denied by deny_tools github.long_running\n"
        ),
        "{text}"
    );
    // `--server` scopes discovery too: the dead upstream is not contacted or listed.
    assert!(!text.contains("dead"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_server_is_one_clear_line_and_exit_1() {
    let s = setup().await;
    let out = tools(&s.conf, &["--as", "alice", "--server", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains(r#"no virtual server named "nope"; configured: support, ops"#),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_is_one_line_naming_the_field() {
    let s = setup().await;
    let bad = s.dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&s.conf)
        .unwrap()
        .replace("github.long_running", "github");
    std::fs::write(&bad, text).unwrap();
    let out = tools(&bad, &["--as", "alice"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("virtual_servers[0].deny_tools[0]"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantined_tools_are_reported_and_the_state_file_is_left_alone() {
    // An approval that no longer matches github.echo's definition: the gateway would
    // quarantine it. Every other tool is a first sighting the gateway would approve and save.
    let state = r#"{"github.echo": "0000"}"#;
    let s = setup_with(|dir| {
        let path = dir.join("state.json");
        std::fs::write(&path, state).unwrap();
        Registry {
            state_file: Some(path.display().to_string()),
            ..Registry::default()
        }
    })
    .await;
    let r = tools_json(&s.conf, &["--as", "alice", "--server", "support"]).await;
    let support = server(&r, "support");
    assert_eq!(visible(support), ["crm__add"]);
    let reason = hidden_reason(support, "github__echo");
    assert!(reason.starts_with("quarantined:"), "{reason}");
    assert!(
        reason.contains(
            r#"POST /admin/registry/approve and the JSON body {"tool":"echo","upstream":"github"}"#
        ),
        "{reason}"
    );
    assert_eq!(
        r["upstreams"][0]["quarantined"],
        serde_json::json!(["echo"])
    );
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("state.json")).unwrap(),
        state,
        "inspecting must not approve tools on the gateway's behalf"
    );
}
