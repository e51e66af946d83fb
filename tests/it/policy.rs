//! Argument policy through the running gateway: a rule refuses a call with -32602 naming the
//! argument and the rule, on a plain route and on a virtual server, and the upstream never
//! sees the refused call; a call within the rule goes through.

use crate::common::*;

#[tokio::test]
async fn a_rule_refuses_before_the_upstream_on_routes_and_virtual_servers() {
    let demo = start_demo().await;
    let yaml = format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    auth: none
    virtual_servers: [all]
    routes: [{{ path: /mcp, upstream: up }}]
upstreams:
  - {{ name: up, url: "{}" }}
admin:
  address: "{{ADMIN}}"
virtual_servers:
  - name: all
    route: /v/all/mcp
    access: {{ anonymous: true }}
policies:
  - id: short-echo
    tools: [up.echo]
    arguments:
      text: {{ max_length: 5, deny: [nope] }}
    required: [text]
"#,
        demo.url()
    );
    let gw = start_gateway(&yaml).await;
    let echo = |id: u32, name: &str, args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
        )
    };
    for (url, name) in [
        (gw.url(), "echo"),
        (format!("http://{}/v/all/mcp", gw.addr), "up__echo"),
    ] {
        let sid = raw_initialize(&url).await;
        let before = demo.calls("echo");
        let r = post(
            &url,
            echo(7, name, r#"{"text":"far too long"}"#),
            &[("mcp-session-id", &sid)],
        )
        .await;
        let v = assert_error(r, 200, -32602, r#"argument "text" must be at most 5 long"#).await;
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["data"]["rule"], "short-echo", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("policy short-echo"),
            "{v}"
        );
        let r = post(
            &url,
            echo(8, name, r#"{"text":"nope"}"#),
            &[("mcp-session-id", &sid)],
        )
        .await;
        assert_error(r, 200, -32602, r#"must not be "nope""#).await;
        let r = post(&url, echo(9, name, "{}"), &[("mcp-session-id", &sid)]).await;
        assert_error(r, 200, -32602, r#"argument "text" is required"#).await;
        // A last-wins upstream (Python, Node) would run the second `text`: the strict pass
        // refuses the body before the rule or the upstream reads it, escaped or not.
        for args in [
            r#"{"text":"hi","text":"far too long"}"#,
            r#"{"text":"hi","te\u0078t":"far too long"}"#,
        ] {
            let r = post(&url, echo(11, name, args), &[("mcp-session-id", &sid)]).await;
            assert_error(r, 400, -32600, "duplicate key").await;
        }
        assert_eq!(
            demo.calls("echo"),
            before,
            "{url}: no refused call reached the upstream"
        );

        let r = post(
            &url,
            echo(10, name, r#"{"text":"hi"}"#),
            &[("mcp-session-id", &sid)],
        )
        .await;
        let v = jsonrpc_body(r).await;
        assert_eq!(v["result"]["content"][0]["text"], "hi", "{url}: {v}");
        assert_eq!(demo.calls("echo"), before + 1);
    }
}

/// Against an upstream that reads JSON the way Python and Node do (the last duplicate key
/// wins), no second reading of an argument gets past a rule: a duplicate, an escaped or
/// case-folded twin, or a second `arguments` object is refused before the rule or the
/// upstream reads anything, and what does reach the upstream is what the rule checked.
#[tokio::test]
async fn a_last_wins_upstream_runs_only_what_the_rule_checked() {
    use crate::hostile::{last_wins_upstream, Seen};
    let seen = Seen::default();
    let upstream = last_wins_upstream(seen.clone()).await;
    let yaml = format!(
        r#"
listeners:
  - address: "{{LISTEN}}"
    auth: none
    virtual_servers: [all]
    routes: [{{ path: /mcp, upstream: crm }}]
upstreams:
  - {{ name: crm, url: "{upstream}" }}
admin:
  address: "{{ADMIN}}"
virtual_servers:
  - name: all
    route: /v/all/mcp
    access: {{ anonymous: true }}
policies:
  - id: ticket-ids
    tools: [crm.update_ticket]
    arguments:
      ticket: {{ pattern: "^T-[0-9]+$" }}
"#
    );
    let gw = start_gateway(&yaml).await;
    let call = |name: &str, args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
        )
    };
    for (url, name) in [
        (gw.url(), "update_ticket"),
        (
            format!("http://{}/v/all/mcp", gw.addr),
            "crm__update_ticket",
        ),
    ] {
        let sid = raw_initialize(&url).await;
        let before = seen.total();
        let r = post(
            &url,
            call(name, r#"{"ticket":"X-1"}"#),
            &[("mcp-session-id", &sid)],
        )
        .await;
        assert_error(
            r,
            200,
            -32602,
            r#"argument "ticket" must be a string matching"#,
        )
        .await;
        for args in [
            r#"{"ticket":"T-1","ticket":"X-1"}"#,
            r#"{"ticket":"T-1","tick\u0065t":"X-1"}"#,
            r#"{"ticket":"T-1","TICKET":"X-1"}"#,
        ] {
            let r = post(&url, call(name, args), &[("mcp-session-id", &sid)]).await;
            assert_error(r, 400, -32600, "duplicate key").await;
        }
        // Alone in another case: the rule would see no `ticket`, a case-insensitive binding
        // (Go, .NET) would read it as `ticket`.
        for (args, written) in [
            (r#"{"TICKET":"X-1"}"#, "TICKET"),
            // The Kelvin sign (U+212A) folds to `k`, as Go's EqualFold has it.
            ("{\"tic\u{212A}et\":\"X-1\"}", "tic"),
        ] {
            let r = post(&url, call(name, args), &[("mcp-session-id", &sid)]).await;
            let v = assert_error(r, 200, -32602, "spell it exactly").await;
            assert!(v.to_string().contains(written), "{v}");
        }
        let twice = format!(
            r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"{name}","arguments":{{"ticket":"T-1"}},"arguments":{{"ticket":"X-1"}}}}}}"#
        );
        let r = post(&url, twice, &[("mcp-session-id", &sid)]).await;
        assert_error(r, 400, -32600, "duplicate key").await;
        assert_eq!(
            seen.total(),
            before,
            "{url}: nothing refused reached the upstream"
        );

        let r = post(
            &url,
            call(name, r#"{"ticket":"T-1"}"#),
            &[("mcp-session-id", &sid)],
        )
        .await;
        let v = jsonrpc_body(r).await;
        assert_eq!(
            v["result"]["content"][0]["text"], "ran update_ticket",
            "{url}: {v}"
        );
        assert_eq!(seen.total(), before + 1);
        let body = seen
            .bodies
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default();
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent["params"]["arguments"]["ticket"], "T-1", "{url}");
    }
}

/// Per-principal rules (`when`), whole-tool rules (`allow_when`), rules scoped to a virtual
/// server, and the virtual server's advertised schema tightened to the rules every caller
/// there is held to.
#[tokio::test]
async fn rules_follow_the_caller_and_the_schema_says_them() {
    let demo = start_demo().await;
    // One audience for the route and the virtual server alike.
    let auth = Auth::new(tokens::RESOURCE).jwt(
        Jwt::test_issuer(JwtKey::jwks_file(
            &tokens::fixture("rsa-jwks.json"),
            Algorithm::RS256,
        ))
        .audiences(&[tokens::AUDIENCE]),
    );
    let config = Config::new()
        .listener(
            Listener::new()
                .route("/mcp", "up")
                .virtual_servers(&["eng"]),
        )
        .upstream(Upstream::new("up", &demo.url()))
        .virtual_server(VirtualServer::new("eng", "/v/eng/mcp"))
        .auth(auth);
    let yaml = format!(
        r#"{}
policies:
  - id: contractors-short
    tools: [up.echo]
    when: {{ groups: [contractors] }}
    arguments:
      text: {{ max_length: 5 }}
  - id: admins-add
    tools: [up.add]
    allow_when: {{ groups: [admins] }}
  - id: eng-bounds
    tools: [up.add]
    virtual_servers: [eng]
    arguments:
      a: {{ max: 1000 }}
"#,
        config.yaml()
    );
    let gw = start_gateway(&yaml).await;
    let token = |groups: &[&str]| {
        let mut c = tokens::claims("alice");
        c["groups"] = serde_json::json!(groups);
        format!("Bearer {}", tokens::rs256(&c))
    };
    let contractor = token(&["contractors"]);
    let admin = token(&["admins"]);
    let support = token(&["support"]);
    let call = |name: &str, args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
        )
    };
    let route = gw.url();
    let eng = format!("http://{}/v/eng/mcp", gw.addr);
    let session = |url: String, auth: String| async move {
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
        let r = post(&url, init, &[("authorization", &auth)]).await;
        assert_eq!(r.status(), 200);
        r.headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .unwrap()
            .to_string()
    };

    // `when`: the contractor is held to the rule, support is not.
    let before = demo.calls("echo");
    let sid = session(route.clone(), contractor.clone()).await;
    let h = [
        ("authorization", contractor.as_str()),
        ("mcp-session-id", &sid),
    ];
    let r = post(&route, call("echo", r#"{"text":"far too long"}"#), &h).await;
    let v = assert_error(r, 200, -32602, "at most 5 long").await;
    assert_eq!(v["error"]["data"]["rule"], "contractors-short");
    assert_eq!(demo.calls("echo"), before, "the upstream never saw it");
    let sid = session(route.clone(), support.clone()).await;
    let h = [
        ("authorization", support.as_str()),
        ("mcp-session-id", &sid),
    ];
    let r = post(&route, call("echo", r#"{"text":"far too long"}"#), &h).await;
    assert_eq!(
        jsonrpc_body(r).await["result"]["content"][0]["text"],
        "far too long"
    );

    // `allow_when`: only admins may call add at all; the scoped bound applies on eng only.
    let r = post(&route, call("add", r#"{"a":1,"b":2}"#), &h).await;
    let v = assert_error(r, 200, -32602, "allow_when").await;
    assert_eq!(v["error"]["data"]["rule"], "admins-add");
    let before = demo.calls("add");
    let sid = session(route.clone(), admin.clone()).await;
    let h = [("authorization", admin.as_str()), ("mcp-session-id", &sid)];
    let r = post(&route, call("add", r#"{"a":5000,"b":2}"#), &h).await;
    assert_eq!(
        jsonrpc_body(r).await["result"]["content"][0]["text"],
        "5002"
    );
    let sid = session(eng.clone(), admin.clone()).await;
    let h = [("authorization", admin.as_str()), ("mcp-session-id", &sid)];
    let r = post(&eng, call("up__add", r#"{"a":5000,"b":2}"#), &h).await;
    let v = assert_error(
        r,
        200,
        -32602,
        r#"argument "a" must be a number of at most 1000"#,
    )
    .await;
    assert_eq!(v["error"]["data"]["rule"], "eng-bounds");
    assert_eq!(
        demo.calls("add"),
        before + 1,
        "only the allowed call went out"
    );

    // The schema on eng says the unconditional rule; the per-caller ones are not advertised.
    let list = r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#;
    let tools = jsonrpc_body(post(&eng, list, &h).await).await;
    let tool = |n: &str| {
        tools["result"]["tools"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == n))
            .cloned()
            .unwrap_or_else(|| panic!("{n} in {tools}"))
    };
    assert_eq!(
        tool("up__add")["inputSchema"]["properties"]["a"]["maximum"],
        1000
    );
    assert!(
        tool("up__echo")["inputSchema"]["properties"]["text"]
            .get("maxLength")
            .is_none(),
        "a rule for some callers does not tighten everyone's schema"
    );
}

/// `mcp-gateway policy explain` end to end: the built binary, a config file, exit codes.
#[test]
fn policy_explain_names_the_blocking_rule() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gw.yaml");
    std::fs::write(
        &conf,
        r#"
listeners:
  - { address: "127.0.0.1:8080", auth: none, routes: [{ path: /mcp, upstream: github }] }
upstreams:
  - { name: github, url: "http://127.0.0.1:8000/mcp" }
policies:
  - id: repo-in-acme
    tools: ["github.*"]
    arguments:
      repo: { pattern: "^acme/" }
"#,
    )
    .unwrap();
    let run = |args: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
            .args(["policy", "explain", "-c"])
            .arg(&conf)
            .args([
                "--as",
                "alice",
                "--tool",
                "github.create_issue",
                "--args",
                args,
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(r#"{"repo":"evil/x"}"#);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(
            r#"verdict: blocked by repo-in-acme: argument "repo" must be a string matching ^acme/"#
        ),
        "{out}"
    );
    let (code, out) = run(r#"{"repo":"acme/x"}"#);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("verdict: allowed"), "{out}");
    let (code, _) = run("not json");
    assert_eq!(code, Some(1));
}
