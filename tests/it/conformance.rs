//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) and
//! the MCP Inspector CLI through a virtual server, against the reference upstream
//! `@modelcontextprotocol/server-everything`.
//!
//! The suite runs twice in one test: straight at server-everything, then at a virtual server
//! over it with `names: upstream` (the suite's scenarios call the upstream's own tool and
//! prompt names). The assertion is "no regression": every check that passes directly passes
//! through the gateway. Checks that fail directly (server-everything lacks most of the
//! suite's fixtures: docs/conformance.md) say nothing about the gateway and are not compared.
//!
//! The Node tools are npm packages installed at test time by `scripts/node-tools.sh` into
//! `~/.cache/mcp-gateway/node` (outside the clone); nothing of the conformance repository is
//! in this one. Without them (no npm and no way to install it) the tests say so and skip;
//! under CI they fail instead.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use crate::hostile::Child;

/// The virtual server's path.
const PATH: &str = "/v/everything/mcp";
/// A whole suite run takes about 2 s on 2 cores; failing scenarios can wait on the suite's
/// own 30 s request timeout, and the machine may be busy: far above either.
const SUITE_LIMIT: Duration = Duration::from_secs(300);
/// One Inspector CLI call takes about 1 s.
const CLI_LIMIT: Duration = Duration::from_secs(60);

/// Where `scripts/node-tools.sh` installed the tools.
#[derive(Debug, Clone)]
struct NodeTools {
    node: PathBuf,
    conformance: PathBuf,
    everything: PathBuf,
    inspector: PathBuf,
    preload: PathBuf,
}

impl NodeTools {
    /// `node` with Node 22's directory first on `PATH` (the Inspector starts its CLI as a
    /// child `node`).
    fn command(&self, script: &Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.node);
        let bin = self.node.parent().unwrap_or(Path::new("/"));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(dirs).unwrap())
            .arg(script)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }
}

/// The tools, installed once per test process (the script is idempotent and locks against
/// other processes). `None`, having said why, when they cannot be installed outside CI.
fn node_tools() -> Option<NodeTools> {
    static TOOLS: OnceLock<Result<NodeTools, String>> = OnceLock::new();
    let tools = TOOLS.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/node-tools.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |key: &str| -> Result<PathBuf, String> {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .ok_or_else(|| format!("{script} printed no existing {key}: {text}"))
        };
        Ok(NodeTools {
            node: get("NODE")?,
            conformance: get("CONFORMANCE")?,
            everything: get("EVERYTHING")?,
            inspector: get("INSPECTOR")?,
            preload: get("PRELOAD")?,
        })
    });
    match tools {
        Ok(t) => Some(t.clone()),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide Node 22 and the MCP Node tools: {e}"
            );
            eprintln!("SKIPPED: the Node MCP tools cannot be installed here: {e}");
            None
        }
    }
}

/// server-everything on a free loopback port, and a gateway with an anonymous virtual server
/// `everything` over it (own names; `get-env` denied: it dumps the server's environment).
struct Setup {
    tools: NodeTools,
    gw: Gateway,
    direct: String,
    _upstream: Child,
}

impl Setup {
    fn vserver(&self) -> String {
        format!("http://{}{PATH}", self.gw.addr)
    }
}

async fn setup() -> Option<Setup> {
    let tools = node_tools()?;
    let port = free_port();
    let upstream = Child(
        std::process::Command::new(&tools.node)
            .arg("--require")
            .arg(&tools.preload)
            .arg(&tools.everything)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "server-everything did not start on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let direct = format!("http://127.0.0.1:{port}/mcp");
    let yaml = Config::new()
        .listener(
            Listener::new()
                .auth(ListenerAuth::None)
                .virtual_servers(&["everything"])
                .route("/mcp", "ev"),
        )
        .upstream(Upstream::new("ev", &direct))
        .virtual_server(
            VirtualServer::new("everything", PATH)
                .anonymous()
                .set("names", json!("upstream"))
                .set("deny_tools", json!(["ev.get-env"])),
        )
        .yaml();
    let gw = start_gateway(&yaml).await;
    Some(Setup {
        tools,
        gw,
        direct,
        _upstream: upstream,
    })
}

/// One check's outcome.
#[derive(Debug, Clone)]
struct Outcome {
    /// `SUCCESS`, `FAILURE`, `WARNING`, `INFO` or `SKIPPED`.
    status: String,
    message: String,
    details: Value,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.status == "SUCCESS"
    }

    /// Through the gateway, a check regressed if it fails or was not run: `INFO` and
    /// `WARNING` are the suite's "optional, not a failure" (e.g. "Server returned JSON for
    /// all requests - SSE streaming is optional", a virtual server's catalog answers).
    fn regressed(through: Option<&Outcome>) -> bool {
        through.is_none_or(|o| o.status == "FAILURE")
    }

    /// A `tools-call-*` check that passes directly only because server-everything lacks the
    /// suite's fixture tool and answers the call with an `isError` result ("Tool
    /// test_simple_text not found"), which those checks accept. A virtual server answers an
    /// unknown tool with the JSON-RPC error -32602 the spec prescribes (tools: "Unknown
    /// tools" are protocol errors), and forwards nothing its catalog does not hold: not a
    /// regression. Decided on the direct result, so a fixture the upstream gains is compared.
    fn passed_on_a_missing_tool(&self) -> bool {
        let result = &self.details["result"];
        result["isError"] == true
            && result["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Tool test_") && t.ends_with("not found"))
    }
}
/// Scenario -> check id -> outcome.
type Results = BTreeMap<String, BTreeMap<String, Outcome>>;

/// Run the suite's server scenarios against `url` and read every `checks.json` it writes.
async fn run_suite(tools: &NodeTools, url: &str, out: &Path) -> Results {
    let mut cmd = tools.command(&tools.conformance);
    cmd.args(["server", "--url", url, "-o"]).arg(out);
    let run = tokio::time::timeout(SUITE_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the conformance suite against {url} took over {SUITE_LIMIT:?}"))
        .unwrap();
    // Exit status 1 means "some check failed": expected (see the module doc).
    let mut results = Results::new();
    for dir in std::fs::read_dir(out).unwrap().flatten() {
        let name = dir.file_name().to_string_lossy().to_string();
        let Ok(text) = std::fs::read_to_string(dir.path().join("checks.json")) else {
            continue;
        };
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap();
        let scenario = scenario_of(&name);
        let entry = results.entry(scenario).or_default();
        for c in checks {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            // A failure says why in errorMessage, an INFO or WARNING in details.message.
            let message = c["errorMessage"]
                .as_str()
                .or_else(|| c["details"]["message"].as_str())
                .unwrap_or_default()
                .to_string();
            let outcome = Outcome {
                status: field("status"),
                message,
                details: c["details"].clone(),
            };
            entry.insert(field("id"), outcome);
        }
    }
    assert!(
        !results.is_empty(),
        "the conformance suite against {url} wrote no results ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    results
}

/// `server-<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>` -> `<scenario>`.
fn scenario_of(dir: &str) -> String {
    let name = dir.strip_prefix("server-").unwrap_or(dir);
    // The timestamp is 24 characters, after a `-`.
    let cut = name.len().saturating_sub(25);
    match name.get(cut..) {
        Some(tail) if tail.starts_with('-') && tail.ends_with('Z') => name[..cut].to_string(),
        _ => name.to_string(),
    }
}

fn passed(checks: &BTreeMap<String, Outcome>) -> usize {
    checks.values().filter(|o| o.passed()).count()
}

/// The suite through the virtual server loses no check that passes against the same
/// upstream directly, in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_a_virtual_server_regresses_no_check() {
    let Some(s) = setup().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let direct = run_suite(&s.tools, &s.direct, &dir.path().join("direct")).await;
    let gateway = run_suite(&s.tools, &s.vserver(), &dir.path().join("gateway")).await;
    // Not vacuous: server-everything passes these directly (docs/conformance.md).
    for must in ["server-initialize", "tools-list", "tools-call-simple-text"] {
        let checks = direct.get(must).map(passed).unwrap_or_default();
        assert!(checks > 0, "{must} does not pass directly: {direct:#?}");
    }
    let empty = BTreeMap::new();
    let mut table = format!(
        "{:<32} {:>8} {:>8}  regressions\n",
        "scenario", "direct", "gateway"
    );
    let mut regressions = 0;
    for (scenario, checks) in &direct {
        let through = gateway.get(scenario).unwrap_or(&empty);
        let mut notes = Vec::new();
        for (id, direct) in checks.iter().filter(|(_, o)| o.passed()) {
            let via = through.get(id);
            let said = via.map_or("not run".to_string(), |o| {
                format!("{} {:?}", o.status, o.message)
            });
            if via.is_some_and(Outcome::passed) {
                continue;
            }
            if !Outcome::regressed(via) {
                notes.push(format!("({id}: {said}, not a failure)"));
            } else if direct.passed_on_a_missing_tool() {
                notes.push(format!("({id}: {said}, upstream lacks the fixture tool)"));
            } else {
                regressions += 1;
                notes.push(format!("REGRESSED {id}: {said}"));
            }
        }
        let lost = notes;
        table.push_str(&format!(
            "{scenario:<32} {:>4}/{:<3} {:>4}/{:<3}  {}\n",
            passed(checks),
            checks.len(),
            passed(through),
            through.len(),
            lost.join("; ")
        ));
    }
    eprintln!("{table}");
    assert_eq!(
        regressions, 0,
        "checks that pass directly fail through the virtual server:\n{table}"
    );
}

/// Run the Inspector CLI against `url`; returns its exit code and stdout as JSON.
async fn inspector(s: &Setup, url: &str, args: &[&str]) -> (i32, Value) {
    let catalog = tempfile::tempdir().unwrap();
    let mut cmd = s.tools.command(&s.tools.inspector);
    cmd.args(["--cli", url, "--transport", "http"])
        .args(args)
        // Else it writes ~/.mcp-inspector/mcp.json.
        .env("MCP_CATALOG_PATH", catalog.path().join("catalog.json"));
    let out = tokio::time::timeout(CLI_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the Inspector CLI took over {CLI_LIMIT:?}: {args:?}"))
        .unwrap();
    // Results on stdout, errors (`{"error":...}`) on stderr.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stdout.trim().is_empty() {
        stderr.trim()
    } else {
        stdout.trim()
    };
    let json = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("Inspector output is not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json)
}

/// The Inspector CLI lists and calls tools, gets a prompt and reads a resource through the
/// virtual server under the upstream's own names and URIs, and a denied tool is unknown to
/// it (exit code 5, `tool_not_found`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspector_cli_lists_and_calls_through_a_virtual_server() {
    let Some(s) = setup().await else { return };
    let url = s.vserver();
    let (code, list) = inspector(&s, &url, &["--method", "tools/list"]).await;
    assert_eq!(code, 0, "{list}");
    let names: Vec<&str> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    assert!(names.contains(&"get-sum"), "{names:?}");
    assert!(!names.contains(&"get-env"), "denied, yet listed: {names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("ev__")),
        "names: upstream keeps the upstream's names: {names:?}"
    );

    let call = [
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
    ];
    let (code, echo) = inspector(&s, &url, &[&call[..], &["message=hi"]].concat()).await;
    assert_eq!(code, 0, "{echo}");
    assert_eq!(echo["content"][0]["text"], "Echo: hi", "{echo}");

    let hidden = ["--method", "tools/call", "--tool-name", "get-env"];
    let (code, refused) = inspector(&s, &url, &hidden).await;
    assert_eq!(code, 5, "a denied tool must be unknown: {refused}");
    assert_eq!(refused["error"]["code"], "tool_not_found", "{refused}");
    // Prompts and resources under their own names and URIs, a template expansion included.
    let (code, prompt) = inspector(
        &s,
        &url,
        &["--method", "prompts/get", "--prompt-name", "simple-prompt"],
    )
    .await;
    assert_eq!(code, 0, "{prompt}");
    assert!(
        prompt["messages"][0]["content"]["text"].is_string(),
        "{prompt}"
    );
    let uri = "demo://resource/dynamic/text/1";
    let (code, read) = inspector(&s, &url, &["--method", "resources/read", "--uri", uri]).await;
    assert_eq!(code, 0, "{read}");
    assert_eq!(read["contents"][0]["uri"], uri, "{read}");
    // Directly, the denied tool is listed (so the refusal above is the gateway's).
    let (code, direct) = inspector(&s, &s.direct, &["--method", "tools/list"]).await;
    assert_eq!(code, 0, "{direct}");
    assert!(direct.to_string().contains("\"get-env\""), "{direct}");
}
