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
