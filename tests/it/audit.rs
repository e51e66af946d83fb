//! The audit trail through the running gateway (real rmcp upstream): N requests give exactly
//! N chained records with the right fields (allowed, refused by policy, hidden and unknown
//! tools, on a route and a virtual server), across rotations and a shutdown that drains the
//! queue; redacted arguments never reach a file; `audit verify` and `audit query` as the
//! built binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

const SECRET: &str = "ghp_S3cretTokenValue0123456789";
const CARD: &str = "4111111111111111";

fn yaml(demo: &str, dir: &Path) -> String {
    format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    auth: none
    virtual_servers: [all]
    routes: [{{ path: /mcp, upstream: up }}]
upstreams:
  - {{ name: up, url: "{demo}" }}
admin:
  address: "{{ADMIN}}"
virtual_servers:
  - name: all
    route: /v/all/mcp
    access: {{ anonymous: true }}
    deny_tools: [up.add]
policies:
  - id: no-nope
    tools: [up.echo]
    arguments:
      text: {{ deny: [nope] }}
quotas:
  - name: echo-budget
    key: [subject]
    tools: [up.echo]
    budget: {{ units: 100000, per: 1d, cost: [{{ tools: [up.echo], units: 3 }}] }}
  - name: add-rate
    key: [subject]
    tools: [up.add]
    rate: {{ requests: 1000, per: 1m }}
audit:
  path: "{}/audit.jsonl"
  max_file_bytes: 4096
  max_files: 100
  redact:
    rules:
      - tools: [up.echo]
        arguments: {{ token: drop, card: hash }}
"#,
        dir.display()
    )
}

fn call(id: u32, name: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
    )
}

/// The trail's files, oldest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .expect("read the trail's directory")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p.extension()?.to_str()?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(dir.join("audit.jsonl"));
    out
}

fn records(files: &[PathBuf]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read a trail file")
                .lines()
                .map(|l| serde_json::from_str(l).expect("a record is JSON"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn cli(args: &[&str], files: &[PathBuf]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .args(args)
        .args(files)
        .output()
        .expect("run mcp-gateway")
}

#[tokio::test]
async fn every_request_is_one_chained_record_through_rotation_and_shutdown() {
    let demo = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(&yaml(&demo.url(), dir.path())).await;
    let vs = format!("http://{}/v/all/mcp", gw.addr);
    let mut n = 0;

    // A plain route: initialize (+ the initialized notification), an allowed call with
    // redacted arguments, a call the policy refuses.
    let sid = raw_initialize(&gw.url()).await;
    n += 2;
    let s = [("mcp-session-id", sid.as_str())];
    let args = format!(r#"{{"text":"hello","token":"{SECRET}","card":"{CARD}"}}"#);
    let v = jsonrpc_body(post(&gw.url(), call(2, "echo", &args), &s).await).await;
    assert_eq!(v["result"]["content"][0]["text"], "hello", "{v}");
    n += 1;
    assert_error(
        post(&gw.url(), call(3, "echo", r#"{"text":"nope"}"#), &s).await,
        200,
        -32602,
        "no-nope",
    )
    .await;
    n += 1;
    // The upstream refuses a call itself (an i64 overflow): its JSON-RPC error code is
    // recorded next to the gateway's own.
    let v = jsonrpc_body(
        post(
            &gw.url(),
            call(8, "add", r#"{"a":9223372036854775807,"b":1}"#),
            &s,
        )
        .await,
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    n += 1;

    // A virtual server: initialize, tools/list, an allowed call, a hidden tool, an unknown one.
    let vsid = raw_initialize(&vs).await;
    n += 2;
    let s = [("mcp-session-id", vsid.as_str())];
    let list = r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#;
    let v = jsonrpc_body(post(&vs, list, &s).await).await;
    assert!(v["result"]["tools"].is_array(), "{v}");
    n += 1;
    let v = jsonrpc_body(post(&vs, call(5, "up__echo", &args), &s).await).await;
    assert_eq!(v["result"]["content"][0]["text"], "hello", "{v}");
    n += 1;
    for (id, name) in [(6, "up__add"), (7, "up__missing")] {
        assert_error(
            post(&vs, call(id, name, r#"{"a":1,"b":2}"#), &s).await,
            200,
            -32602,
            name,
        )
        .await;
        n += 1;
    }
    // Enough allowed calls to rotate a 4 KiB file several times.
    let s = [("mcp-session-id", sid.as_str())];
    for i in 0..20 {
        let a = format!(r#"{{"text":"call {i}","token":"{SECRET}"}}"#);
        let r = post(&gw.url(), call(100 + i, "echo", &a), &s).await;
        assert_eq!(r.status(), 200);
        n += 1;
    }
    // An admin write refused (the admin API is off without admin.auth) is in the same trail.
    let r = http()
        .post(gw.admin_url("/admin/registry/approve"))
        .body(r#"{"upstream":"up","tool":"echo"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    n += 1;
    // Every record is queued (logging runs after the response is sent); the drop below
    // stops the gateway, which must write all of them before it returns.
    let want = n as f64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&gw, "mcp_gateway_audit_records_total", &[]).await != Some(want) {
        assert!(std::time::Instant::now() < deadline, "records not queued");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(gw);

    let files = files(dir.path());
    assert!(files.len() >= 3, "the trail rotated: {files:?}");
    let all = records(&files);
    assert_eq!(all.len(), n, "one record per request");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text.contains(SECRET),
            "a dropped argument reached {}",
            f.display()
        );
        assert!(
            !text.contains(CARD),
            "a hashed argument reached {}",
            f.display()
        );
    }
    let find = |pred: &dyn Fn(&Value) -> bool| -> Value {
        all.iter()
            .find(|r| pred(r))
            .cloned()
            .unwrap_or_else(|| panic!("no such record in {all:#?}"))
    };
    let allowed = find(&|r| r["tool"]["exposed"] == "echo" && r["decision"] == "allowed");
    assert_eq!(allowed["kind"], "mcp");
    assert_eq!(allowed["method"], "tools/call");
    assert_eq!(allowed["upstream"], "up");
    assert_eq!(allowed["tool"]["upstream"], "echo");
    assert_eq!(allowed["status"], 200);
    assert_eq!(allowed["upstream_status"], 200);
    assert_eq!(allowed["outcome"], "ok");
    assert_eq!(allowed["arguments"]["text"], "hello");
    assert!(allowed["arguments"].get("token").is_none(), "{allowed}");
    assert!(allowed["arguments"]["card"]
        .as_str()
        .is_some_and(|c| c.starts_with("sha256:")));
    assert_eq!(allowed["arguments_sha256"].as_str().map(str::len), Some(64));
    assert!(allowed["bytes_in"].as_u64() > Some(0) && allowed["bytes_out"].as_u64() > Some(0));
    assert!(
        allowed["gateway_ms"].is_number() && allowed["upstream_ms"].is_number(),
        "{allowed}"
    );
    assert_eq!(allowed["request_id"].as_str().map(str::len), Some(32));
    // How the tool answered, and what the quota charged.
    assert_eq!(allowed["is_error"], false, "{allowed}");
    assert!(allowed.get("upstream_error_code").is_none(), "{allowed}");
    assert_eq!(
        allowed["quota"],
        serde_json::json!([{ "limit": "echo-budget", "units": 3 }])
    );
    let failed = find(&|r| r["tool"]["exposed"] == "add" && r["upstream"] == "up");
    assert_eq!(failed["decision"], "allowed");
    assert_eq!(failed["upstream_error_code"], -32602, "{failed}");
    assert!(failed.get("is_error").is_none(), "{failed}");
    assert_eq!(
        failed["quota"],
        serde_json::json!([{ "limit": "add-rate" }])
    );
    // The W3C trace id the upstream's traceparent carried (started here: none was sent).
    assert!(
        allowed["trace_id"]
            .as_str()
            .is_some_and(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())),
        "{allowed}"
    );
    assert_eq!(
        allowed["time"].as_str().map(|t| t.ends_with('Z')),
        Some(true)
    );

    let refused = find(&|r| r["refused_by"] == "policy");
    assert_eq!(refused["decision"], "refused");
    assert_eq!(refused["rule"], "no-nope");
    assert_eq!(refused["error_code"], -32602);
    assert_eq!(refused["arguments"]["text"], "nope");
    assert!(refused.get("upstream_status").is_none(), "{refused}");

    let hidden = find(&|r| r["tool"]["exposed"] == "up__add");
    assert_eq!(hidden["virtual_server"], "all");
    assert_eq!(hidden["decision"], "refused");
    assert_eq!(hidden["refused_by"], "visibility");
    let unknown = find(&|r| r["tool"]["exposed"] == "up__missing");
    assert_eq!(unknown["refused_by"], "visibility");
    assert!(unknown.get("upstream").is_none(), "{unknown}");
    let vcall = find(&|r| r["tool"]["exposed"] == "up__echo");
    assert_eq!(
        (
            vcall["tool"]["upstream"].as_str(),
            vcall["upstream"].as_str()
        ),
        (Some("echo"), Some("up"))
    );
    assert_eq!(vcall["virtual_server"], "all");
    find(&|r| r["method"] == "tools/list" && r["virtual_server"] == "all");
    assert_eq!(
        all.iter().filter(|r| r["method"] == "initialize").count(),
        2
    );

    // `audit verify` on the good files; then on copies with one record edited.
    let out = cli(&["audit", "verify"], &files);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("ok: {n} records")), "{stdout}");
    let tampered = tempfile::tempdir().unwrap();
    let copies: Vec<PathBuf> = files
        .iter()
        .map(|f| {
            let to = tampered.path().join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect();
    let victim = &copies[1];
    let text = std::fs::read_to_string(victim).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Every record has `bytes_in`: claim ten times the bytes.
    let edited = lines[1].replacen(r#""bytes_in":"#, r#""bytes_in":9"#, 1);
    assert_ne!(edited, lines[1]);
    lines[1] = edited;
    std::fs::write(victim, lines.join("\n") + "\n").unwrap();
    let out = cli(&["audit", "verify"], &copies);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", victim.display())) && stderr.contains("edited"),
        "{stderr}"
    );
    // Out of order is a break too, at the first record of the misplaced file.
    let swapped = [files[1].clone(), files[0].clone()];
    assert_eq!(cli(&["audit", "verify"], &swapped).status.code(), Some(1));

    // `audit query`: by tool glob (exposed or upstream.tool), decision, time, as JSON.
    let out = cli(&["audit", "query", "--tool", "up__*", "--json"], &files);
    assert!(out.status.success());
    let hits: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 3, "{hits:?}");
    let out = cli(
        &[
            "audit",
            "query",
            "--decision",
            "refused",
            "--since",
            "1h",
            "--json",
        ],
        &files,
    );
    // The policy refusal, the hidden and the unknown tool, the refused admin write.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    let out = cli(&["audit", "query", "--tool", "up.echo", "--json"], &files);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 23);
    let out = cli(&["audit", "query", "--subject", "nobody"], &files);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 1, "only the header: {table}");
    assert!(table.starts_with("TIME"), "{table}");
}
