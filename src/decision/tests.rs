//! `decide()` step by step, on a real `Runtime` built from YAML (no sockets: the credential
//! sources used here need no network).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::registry::catalog::Catalog;
use crate::registry::{Health, Snapshot, UpstreamTools};

struct Fixture {
    runtime: Runtime,
    _secret: tempfile::NamedTempFile,
}

fn fixture() -> Fixture {
    use std::io::Write as _;
    let mut secret = tempfile::NamedTempFile::new().unwrap();
    secret.write_all(b"s3cret").unwrap();
    let yaml = format!(
        r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{{ path: /mcp, upstream: crm }}]
upstreams:
  - name: crm
    url: "http://127.0.0.1:2/mcp"
    auth: {{ mode: static, secret: "file:{}" }}
  - name: hr
    url: "http://127.0.0.1:3/mcp"
virtual_servers:
  - name: s
    route: /v/s/mcp
    allow_tools: [crm.read, hr.list]
    rules:
      - {{ groups: [admin], allow_tools: ["crm.*"] }}
    tools:
      crm.read: {{ pinned: {{ tenant: acme }} }}
"#,
        secret.path().display()
    );
    let config = crate::config::from_yaml(&yaml).unwrap();
    let http = crate::http_client::HttpClient::default();
    let runtime = Runtime::new(config, &http, Default::default()).unwrap();
    Fixture {
        runtime,
        _secret: secret,
    }
}

fn snapshot(hr_down: bool) -> Snapshot {
    let tool = |n: &str| json!({"name": n, "inputSchema": {"type": "object"}});
    let mut snap = Snapshot {
        generation: 1,
        ..Default::default()
    };
    snap.upstreams.insert(
        "crm".into(),
        UpstreamTools {
            health: Health::Up,
            tools: vec![tool("read"), tool("write")],
            refreshed: None,
            quarantined: vec![],
            offers: Default::default(),
            modern: false,
        },
    );
    snap.upstreams.insert(
        "hr".into(),
        UpstreamTools {
            health: if hr_down {
                Health::Down {
                    error: "refused".into(),
                }
            } else {
                Health::Up
            },
            tools: vec![tool("list")],
            refreshed: None,
            quarantined: vec![],
            offers: Default::default(),
            modern: false,
        },
    );
    snap
}

/// The target of a `tools/call` of `exposed` by a caller of `class`.
fn tool_target(rt: &Runtime, snap: &Snapshot, exposed: &str, class: u64) -> Target {
    let server = Arc::new(rt.config.virtual_servers[0].clone());
    let catalog = Arc::new(Catalog::build(&rt.config, &server, snap));
    let (position, entry) = catalog.resolve(exposed).unwrap();
    let upstream = rt.upstreams.get(entry.upstream).unwrap().clone();
    let retry = RetrySafety::of(&entry.definition);
    Target {
        upstream,
        exchange: Exchange::Message,
        tool: Some(ToolTarget {
            server,
            catalog: catalog.clone(),
            position,
            class,
            retry,
            modern_client: None,
        }),
        session: SessionBinding::Client,
        item: None,
    }
}

fn call(body: &str) -> (Bytes, RpcCall) {
    let body = Bytes::from(body.to_string());
    let call = crate::mcp::jsonrpc::parse(&body, 64).unwrap();
    (body, call)
}

async fn run(
    rt: &Runtime,
    target: &Target,
    body: &Bytes,
    call: &RpcCall,
) -> Result<Decision, Refusal> {
    let message = Message {
        body,
        call: Some(call),
        headers: None,
    };
    let approvals = crate::approval::Approvals::default();
    let quotas = crate::quota::Quotas::new(crate::metrics::Metrics::new().unwrap());
    let parked = crate::proxy::mrtr::ParkedCalls::default();
    let stores = Stores {
        approvals: &approvals,
        quotas: &quotas,
        parked: &parked,
    };
    decide(target, message, None, rt, stores).await
}

#[tokio::test]
async fn a_plain_route_gets_its_credential_and_keeps_the_clients_bytes() {
    let f = fixture();
    let up = f.runtime.upstreams.by_name("crm").unwrap().clone();
    let target = Target::route(up, Exchange::Message);
    let (body, c) = call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#);
    let d = run(&f.runtime, &target, &body, &c).await.unwrap();
    assert_eq!(d.credential.unwrap().to_str().unwrap(), "Bearer s3cret");
    assert!(d.rewritten.is_none());
}

#[tokio::test]
async fn a_visible_tool_goes_out_renamed_with_its_pinned_arguments() {
    let f = fixture();
    let snap = snapshot(false);
    let target = tool_target(&f.runtime, &snap, "crm__read", 0);
    let (body, c) = call(
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"crm__read","arguments":{"q":1}}}"#,
    );
    let d = run(&f.runtime, &target, &body, &c).await.unwrap();
    let (sent, sent_call) = d.rewritten.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(v["params"]["name"], "read");
    assert_eq!(v["params"]["arguments"], json!({"q": 1, "tenant": "acme"}));
    assert_eq!(sent_call.tool_name(&sent).as_deref(), Some("read"));
    assert_eq!(d.credential.unwrap().to_str().unwrap(), "Bearer s3cret");
}

#[tokio::test]
async fn a_hidden_tool_is_refused_by_visibility_as_if_unknown() {
    let f = fixture();
    let snap = snapshot(false);
    // crm.write is only in the admin rule; class 0 is a caller without it.
    let target = tool_target(&f.runtime, &snap, "crm__write", 0);
    let (body, c) =
        call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__write"}}"#);
    let r = run(&f.runtime, &target, &body, &c).await.unwrap_err();
    assert_eq!(r.step, Step::Visibility);
    assert!(matches!(r.reject, Reject::UnknownTool { ref name } if name == "crm__write"));
    // The admin class sees it.
    let target = tool_target(&f.runtime, &snap, "crm__write", 1);
    assert!(run(&f.runtime, &target, &body, &c).await.is_ok());
}

#[tokio::test]
async fn a_tool_whose_upstream_is_down_is_refused_by_availability() {
    let f = fixture();
    let snap = snapshot(true);
    let target = tool_target(&f.runtime, &snap, "hr__list", 0);
    let (body, c) =
        call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hr__list"}}"#);
    let r = run(&f.runtime, &target, &body, &c).await.unwrap_err();
    assert_eq!(r.step, Step::Availability);
    assert!(matches!(r.reject, Reject::Upstream { ref upstream, .. } if upstream == "hr"));
}

#[test]
fn step_labels_are_bounded_and_distinct() {
    let all = [
        Step::Visibility,
        Step::Availability,
        Step::Rewrite,
        Step::Policy,
        Step::Credential,
    ];
    let labels: std::collections::BTreeSet<_> = all.iter().map(|s| s.as_label()).collect();
    assert_eq!(labels.len(), all.len());
}

/// The fixture with `policies` appended.
fn with_policies(policies: &str) -> Fixture {
    let f = fixture();
    let mut config = f.runtime.config.clone();
    let extra = crate::config::from_yaml(&format!(
        "listeners: [{{ address: 127.0.0.1:1, auth: none, routes: [{{ path: /mcp, upstream: crm }}] }}]\nupstreams: [{{ name: crm, url: \"http://127.0.0.1:2/mcp\" }}, {{ name: hr, url: \"http://127.0.0.1:3/mcp\" }}]\npolicies:\n{policies}"
    ))
    .unwrap();
    config.policies = extra.policies;
    let http = crate::http_client::HttpClient::default();
    Fixture {
        runtime: Runtime::new(config, &http, Default::default()).unwrap(),
        _secret: f._secret,
    }
}

#[tokio::test]
async fn policy_checks_the_bytes_the_upstream_runs_pinned_arguments_included() {
    // `tenant` is pinned by the virtual server: a rule forbidding it sees it, although the
    // client never sent it.
    let f = with_policies("  - { id: no-tenant, tools: [crm.read], forbidden: [tenant] }\n");
    let snap = snapshot(false);
    let target = tool_target(&f.runtime, &snap, "crm__read", 0);
    let (body, c) = call(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__read","arguments":{"q":1}}}"#,
    );
    let r = run(&f.runtime, &target, &body, &c).await.unwrap_err();
    assert_eq!(r.step, Step::Policy);
    assert!(
        matches!(&r.reject, Reject::PolicyViolation { rule, message }
            if rule == "no-tenant" && message == r#"argument "tenant" is not allowed"#),
        "{:?}",
        r.reject
    );
}

#[tokio::test]
async fn policy_applies_on_plain_routes_by_upstream_and_tool_name() {
    let f =
        with_policies("  - { id: small-q, tools: [crm.search], arguments: { q: { max: 10 } } }\n");
    let up = f.runtime.upstreams.by_name("crm").unwrap().clone();
    let target = Target::route(up, Exchange::Message);
    let send = |q: u32, tool: &str| {
        call(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"q":{q}}}}}}}"#
        ))
    };
    let (body, c) = send(11, "search");
    let r = run(&f.runtime, &target, &body, &c).await.unwrap_err();
    assert_eq!(r.step, Step::Policy);
    let (body, c) = send(10, "search");
    assert!(run(&f.runtime, &target, &body, &c).await.is_ok());
    let (body, c) = send(11, "other");
    assert!(
        run(&f.runtime, &target, &body, &c).await.is_ok(),
        "not covered"
    );
}

/// Step 3 produces the upstream's bytes and the `Mcp-Name` that goes with them from one
/// catalog entry; for a 2026-07-28 client on a gateway-held (handshake-era) upstream session
/// it also takes the `_meta` envelope out and leaves the rest of `_meta`; for one calling a
/// 2026-07-28 upstream statelessly the envelope stays.
#[tokio::test]
async fn the_rewrite_step_renames_body_and_mcp_name_together_and_translates_the_envelope() {
    let f = fixture();
    let snap = snapshot(false);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hr__list","_meta":{"progressToken":7,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let held = SessionBinding::Gateway {
        digest: 1,
        expires: u64::MAX,
    };
    for (modern, session, stripped) in [
        (false, held, false),
        (true, held, true),
        (true, SessionBinding::Stateless, false),
    ] {
        let mut target = tool_target(&f.runtime, &snap, "hr__list", 0);
        target.session = session;
        if let Some(t) = target.tool.as_mut() {
            t.modern_client = modern.then(super::ModernClient::default);
        }
        let (b, c) = call(body);
        let d = run(&f.runtime, &target, &b, &c).await.unwrap();
        let (sent, sent_call) = d.rewritten.unwrap();
        assert_eq!(sent_call.tool_name(&sent).as_deref(), Some("list"));
        assert_eq!(d.mcp_name.unwrap(), "list");
        let v: serde_json::Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(v["params"]["_meta"]["progressToken"], 7);
        assert_eq!(
            v["params"]["_meta"]
                .get("io.modelcontextprotocol/protocolVersion")
                .is_some(),
            !stripped,
            "{v}"
        );
    }
}
