//! Hostile input through the running gateway: parser differentials and framing.
//!
//! The upstream here parses **last-wins** (axum over `serde_json::Value`, which keeps the last
//! duplicate key, as Python, pydantic and Node do). rmcp's derive refuses duplicates, so an
//! rmcp upstream would hide the bug these tests guard against: a body authorized as one tool
//! and executed as another. Every case has a defined answer, the upstream counts zero calls of
//! the hidden tool and sees none of the refused bodies, and the gateway keeps serving.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::sync::{Arc, Mutex};

use crate::common::tokens::*;
use crate::common::*;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post as apost;
use serde_json::{json, Value};

const HMAC: &[u8] = b"hostile-input-test-hmac-secret-0123456";

/// What the last-wins upstream received.
#[derive(Clone, Default)]
pub(crate) struct Seen {
    /// Raw bodies of every tools/call, as received.
    pub(crate) bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    /// `params.name` of every tools/call, as a last-wins parser reads it.
    calls: Arc<Mutex<Vec<String>>>,
    /// The `Mcp-Name` header of every tools/call, if it had one.
    name_headers: Arc<Mutex<Vec<Option<String>>>>,
    /// Every header (name: value) of every tools/call.
    pub(crate) headers: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Seen {
    fn calls_of(&self, tool: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.as_str() == tool)
            .count()
    }
    pub(crate) fn total(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

/// A minimal MCP server that reads bodies the way Python and Node do: duplicate keys keep
/// the last value. Tools: `get_customer` (allowed) and `delete_customer` (hidden).
pub(crate) async fn last_wins_upstream(seen: Seen) -> String {
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                // 1e400 is out of serde_json's f64 range: record the body anyway, so tests
                // can compare the bytes, and answer like a server that could not parse.
                Err(e) => {
                    seen.bodies.lock().unwrap().push(body.to_vec());
                    return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
                }
            };
            let id = v.get("id").cloned().unwrap_or(Value::Null);
            let result = match v["method"].as_str().unwrap_or_default() {
                "initialize" => json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "last-wins", "version": "0"}
                }),
                "tools/list" => json!({"tools": [
                    {"name": "get_customer", "inputSchema": {"type": "object"}},
                    {"name": "update_ticket", "inputSchema": {"type": "object"}},
                    {"name": "delete_customer", "inputSchema": {"type": "object"}}
                ]}),
                "tools/call" => {
                    let name = v["params"]["name"].as_str().unwrap_or_default().to_string();
                    seen.bodies.lock().unwrap().push(body.to_vec());
                    seen.calls.lock().unwrap().push(name.clone());
                    let h = headers.get("mcp-name").and_then(|h| h.to_str().ok());
                    seen.name_headers
                        .lock()
                        .unwrap()
                        .push(h.map(str::to_string));
                    let all = headers
                        .iter()
                        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                        .collect();
                    seen.headers.lock().unwrap().push(all);
                    json!({"content": [{"type": "text", "text": format!("ran {name}")}]})
                }
                m if m.starts_with("notifications/") => {
                    return StatusCode::ACCEPTED.into_response();
                }
                _ => json!({}),
            };
            let mut resp =
                axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response();
            resp.headers_mut()
                .insert("mcp-session-id", "last-wins-session".parse().unwrap());
            // A server that compresses whatever it was asked (the test says when).
            if headers.contains_key("x-test-compress") {
                resp.headers_mut()
                    .insert("content-encoding", "gzip".parse().unwrap());
            }
            resp
        }
    };
    let addr = raw_upstream(axum::Router::new().route("/mcp", apost(handler))).await;
    format!("http://{addr}/mcp")
}

struct Setup {
    seen: Seen,
    gw: Gateway,
    auth: String,
    _dir: tempfile::TempDir,
}

/// A gateway with a plain route (`/mcp`) and a virtual server (`/v/support/mcp`) that shows
/// `crm.get_customer` and `crm.update_ticket` (with `tenant` pinned), both in front of the
/// last-wins upstream.
async fn setup(limits: Limits) -> Setup {
    let seen = Seen::default();
    let url = last_wins_upstream(seen.clone()).await;
    setup_for(&url, seen, limits).await
}

/// The same gateway in front of any upstream at `url`.
async fn setup_for(url: &str, seen: Seen, limits: Limits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let hmac = dir.path().join("hmac");
    std::fs::write(&hmac, HMAC).unwrap();
    let support = VirtualServer::new("support", "/v/support/mcp")
        .groups(&["support"])
        .allow_tools(&["crm.get_customer", "crm.update_ticket"])
        .tool(
            "crm.update_ticket",
            ToolOverride::default().pinned(json!({"tenant": "acme"})),
        );
    let yaml =
        Config::new()
            .listener(Listener::new().route("/mcp", "crm"))
            .upstream(Upstream::new("crm", url))
            .auth(Auth::new(RESOURCE).jwt(
                Jwt::test_issuer(JwtKey::hs256(SecretRef::file(&hmac))).audiences(&[AUDIENCE]),
            ))
            .virtual_server(support)
            .limits(limits)
            .yaml();
    let gw = start_gateway(&yaml).await;
    let mut c = claims("alice");
    c["groups"] = json!(["support"]);
    let auth = format!("Bearer {}", hs256(&c, HMAC, None));
    Setup {
        seen,
        gw,
        auth,
        _dir: dir,
    }
}

impl Setup {
    fn vserver(&self) -> String {
        format!("http://{}/v/support/mcp", self.gw.addr)
    }

    async fn open_session(&self) -> String {
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"hostile","version":"0"}}});
        let r = post(
            &self.vserver(),
            init.to_string(),
            &[("authorization", &self.auth)],
        )
        .await;
        assert_eq!(r.status(), 200);
        r.headers()
            .get("mcp-session-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }

    async fn vcall(&self, sid: &str, body: &str) -> reqwest::Response {
        post(
            &self.vserver(),
            body.to_string(),
            &[("authorization", &self.auth), ("mcp-session-id", sid)],
        )
        .await
    }

    async fn plain(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        post(&self.gw.url(), body, &[("authorization", &self.auth)]).await
    }

    /// The gateway still serves an ordinary call through the virtual server afterwards.
    async fn still_serves(&self, sid: &str) {
        let before = self.seen.calls_of("get_customer");
        let ok = r#"{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"id":"1"}}}"#;
        let v = jsonrpc_body(self.vcall(sid, ok).await).await;
        assert_eq!(v["result"]["content"][0]["text"], "ran get_customer", "{v}");
        assert_eq!(self.seen.calls_of("get_customer"), before + 1);
    }
}

/// The critical finding: a duplicate `name` (or any duplicate key) must never let a
/// last-wins upstream run a tool the virtual server hides.
#[tokio::test]
async fn hidden_tool_is_never_run_through_duplicate_keys() {
    let s = setup(Limits::default()).await;
    let sid = s.open_session().await;
    let cases = [
        // The reported exploit, with the hidden tool's exposed and upstream names.
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"id":"42"},"name":"delete_customer"}}"#,
            "$.params.name",
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"id":"42"},"name":"crm__delete_customer"}}"#,
            "$.params.name",
        ),
        // Equal only after unescaping.
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer","n\u0061me":"delete_customer"}}"#,
            "$.params.name",
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"\u006eame":"crm__get_customer","name":"delete_customer"}}"#,
            "$.params.name",
        ),
        // A second params object.
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer"},"params":{"name":"delete_customer"}}"#,
            "$.params",
        ),
        // Duplicates deeper down: arguments, nested objects, _meta.
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"id":"1","id":"2"}}}"#,
            "$.params.arguments.id",
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"q":[{"a":1,"a":2}]}}}"#,
            "$.params.arguments.q[0].a",
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer","_meta":{"progressToken":1,"progressToken":2}}}"#,
            "$.params._meta.progressToken",
        ),
        // A second method: the envelope counts too.
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"ping","method":"tools/call","params":{"name":"delete_customer"}}"#,
            "$.method",
        ),
    ];
    for (body, path) in cases {
        let v = assert_error(s.vcall(&sid, body).await, 400, -32600, path).await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("duplicate key"),
            "{v}"
        );
    }
    assert_eq!(s.seen.calls_of("delete_customer"), 0, "hidden tool ran");
    assert_eq!(s.seen.total(), 0, "a refused body reached the upstream");
    // The answer keeps the request's id when the id itself is not duplicated.
    let v = jsonrpc_body(s.vcall(&sid, cases[0].0).await).await;
    assert_eq!(v["id"], 2);
    s.still_serves(&sid).await;
    assert_eq!(s.seen.calls_of("delete_customer"), 0);
}

/// `Mcp-Method` / `Mcp-Name` headers that disagree with the body are refused (-32020), so
/// nothing that routes on the headers sees another request than the one decided on; a
/// renamed tool's `Mcp-Name` is rewritten with its `params.name`.
#[tokio::test]
async fn metadata_headers_must_match_the_body() {
    let s = setup(Limits::default()).await;
    let sid = s.open_session().await;
    let get = r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{}}}"#;
    let hdr = |name: &'static str, value: &'static str| {
        [
            ("authorization", s.auth.clone()),
            ("mcp-session-id", sid.clone()),
            (name, value.to_string()),
        ]
    };
    for (name, value, needle) in [
        ("mcp-name", "crm__delete_customer", "Mcp-Name header"),
        ("mcp-name", "delete_customer", "Mcp-Name header"),
        ("mcp-method", "tools/list", "Mcp-Method header"),
        (
            "mcp-name",
            "=?base64?ZGVsZXRlX2N1c3RvbWVy?=",
            "Mcp-Name header",
        ),
    ] {
        let h = hdr(name, value);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_error(post(&s.vserver(), get, &h).await, 400, -32020, needle).await;
        let plain =
            r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"get_customer"}}"#;
        let r = post(
            &s.gw.url(),
            plain,
            &[("authorization", &s.auth), (name, value)],
        )
        .await;
        assert_error(r, 400, -32020, needle).await;
    }
    // Sent twice (even with one matching value): a proxy may pass the first, a server read
    // the last, so there is no one meaning to check.
    let h = [
        ("authorization", s.auth.as_str()),
        ("mcp-session-id", sid.as_str()),
        ("mcp-name", "crm__get_customer"),
        ("mcp-name", "crm__delete_customer"),
    ];
    assert_error(
        post(&s.vserver(), get, &h).await,
        400,
        -32020,
        "more than once",
    )
    .await;
    assert_eq!(s.seen.total(), 0);
    // Matching headers (plain or base64 sentinel) pass; the upstream gets its own tool name.
    for value in ["crm__get_customer", "=?base64?Y3JtX19nZXRfY3VzdG9tZXI=?="] {
        let h = [
            ("authorization", s.auth.as_str()),
            ("mcp-session-id", sid.as_str()),
            ("mcp-method", "tools/call"),
            ("mcp-name", value),
        ];
        let v = jsonrpc_body(post(&s.vserver(), get, &h).await).await;
        assert_eq!(v["result"]["content"][0]["text"], "ran get_customer", "{v}");
    }
    let seen = s.seen.name_headers.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            Some("get_customer".to_string()),
            Some("get_customer".to_string())
        ]
    );
}

/// Plain routes forward the client's bytes: the same checks apply there, so a policy added
/// to plain routes later decides on the only reading there is.
#[tokio::test]
async fn plain_route_refuses_duplicates_and_deep_nesting() {
    let s = setup(Limits::default()).await;
    let dup = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_customer","arguments":{},"name":"delete_customer"}}"#;
    assert_error(
        s.plain(dup).await,
        400,
        -32600,
        "duplicate key $.params.name",
    )
    .await;
    // 100,000 levels inside arguments used to pass a plain route and reach the upstream.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"get_customer","arguments":{{"x":{}0{}}}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let v = assert_error(s.plain(deep).await, 400, -32600, "nested deeper than 64").await;
    assert_eq!(v["id"], 4);
    assert_eq!(s.seen.total(), 0);
    // Just under the default limit passes: the message is level 1, params 2, arguments 3.
    let ok = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"get_customer","arguments":{{"x":{}0{}}}}}}}"#,
        "[".repeat(61),
        "]".repeat(61)
    );
    let v = jsonrpc_body(s.plain(ok).await).await;
    assert_eq!(v["result"]["content"][0]["text"], "ran get_customer", "{v}");
}

/// Go's encoding/json (mcp-go, the Go SDK) matches keys case-insensitively, with Unicode
/// folding, and keeps the last match; some parsers drop a NUL from a key. Such keys are
/// duplicates too.
#[tokio::test]
async fn keys_equal_to_a_case_insensitive_parser_are_duplicates() {
    let s = setup(Limits::default()).await;
    let sid = s.open_session().await;
    for (body, path) in [
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{},"NAME":"delete_customer"}}"#, "$.params.NAME"),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__get_customer"},"Params":{"name":"delete_customer"}}"#, "$.Params"),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"crm__get_customer\"},\"param\u{17F}\":{\"name\":\"delete_customer\"}}", "param\u{17F}"),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"resources/read","params":{"name":"crm__get_customer","uri":"file:///etc/passwd"}}"#, "$.METHOD"),
    ] {
        assert_error(s.vcall(&sid, body).await, 400, -32600, path).await;
        assert_error(s.plain(body.replace("crm__", "")).await, 400, -32600, path).await;
    }
    let nul = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__get_customer","name\u0000":"delete_customer"}}"#;
    assert_error(s.vcall(&sid, nul).await, 400, -32600, "contains U+0000").await;
    assert_eq!(s.seen.total(), 0);
    s.still_serves(&sid).await;
}

/// A member alone that a case-insensitive parser reads as one the gateway reads: the
/// gateway would see a call without arguments (or without params, or without a method),
/// a Go or .NET upstream one with them. `crm.update_ticket` pins `tenant`: `Arguments`
/// would carry the client's own tenant past the pin. Refused (400, -32600) on both routes;
/// nothing reaches the upstream.
#[tokio::test]
async fn members_that_pass_for_read_ones_only_by_case_are_refused() {
    let s = setup(Limits::default()).await;
    let sid = s.open_session().await;
    for (body, named) in [
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__update_ticket","Arguments":{"tenant":"evil","id":"1"}}}"#, "Arguments"),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"crm__update_ticket\",\"argument\u{17F}\":{\"tenant\":\"evil\"}}}", "argument"),
        (r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"crm__get_customer"}}"#, "Method"),
    ] {
        assert_error(s.vcall(&sid, body).await, 400, -32600, named).await;
        assert_error(s.plain(body.replace("crm__", "")).await, 400, -32600, named).await;
    }
    assert_eq!(s.seen.total(), 0);
    s.still_serves(&sid).await;
}

/// A virtual server reads its answers (URIs, log levels, `resultType`, the audit's outcome)
/// and asks for them uncompressed: an upstream that compresses anyway is answered 502, not
/// passed on unread. A plain route passes it (its answers are streamed as sent).
#[tokio::test]
async fn a_compressed_answer_on_a_virtual_server_is_refused() {
    let s = setup(Limits::default()).await;
    let sid = s.open_session().await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"id":"1"}}}"#;
    let r = post(
        &s.vserver(),
        call.to_string(),
        &[
            ("authorization", &s.auth),
            ("mcp-session-id", &sid),
            ("x-test-compress", "1"),
            ("accept-encoding", "gzip"),
        ],
    )
    .await;
    assert_error(r, 502, -32000, "Content-Encoding gzip").await;
    let r = post(
        &s.gw.url(),
        call.replace("crm__", ""),
        &[("authorization", &s.auth), ("x-test-compress", "1")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    s.still_serves(&sid).await;
}

/// The body reaches the upstream as the bytes that were checked, labelled as what they are:
/// a charset other than UTF-8 (a UTF-7 reader turns `"n+AGE-me"` into `"name"`), a second
/// Content-Type, a Content-Encoding, or a GET/DELETE body is refused; the upstream gets
/// `Content-Type: application/json` and no header names with underscores (CGI-style servers
/// read `Mcp_Name` as `Mcp-Name`).
#[tokio::test]
async fn the_body_is_forwarded_as_checked_and_labelled_as_such() {
    let s = setup(Limits::default()).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{},"n+AGE-me":"delete_customer"}}"#;
    let send = |headers: Vec<(&'static str, &'static str)>, method: reqwest::Method| {
        let mut rb = http()
            .request(method, s.gw.url())
            .header("accept", ACCEPT_BOTH)
            .header("authorization", s.auth.as_str())
            .body(body);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    let utf7 = vec![("content-type", "application/json; charset=utf-7")];
    let r = send(utf7, reqwest::Method::POST).await.unwrap();
    assert_error(r, 400, -32000, "charset utf-8").await;
    let two = vec![
        ("content-type", "application/json"),
        ("content-type", "text/plain"),
    ];
    let r = send(two, reqwest::Method::POST).await.unwrap();
    assert_error(r, 400, -32000, "more than one Content-Type").await;
    let br = vec![
        ("content-type", "application/json"),
        ("content-encoding", "br"),
    ];
    let r = send(br, reqwest::Method::POST).await.unwrap();
    assert_error(r, 415, -32000, "Content-Encoding").await;
    for m in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = send(vec![("accept", "text/event-stream")], m.clone())
            .await
            .unwrap();
        assert_error(r, 400, -32600, "carry no body").await;
    }
    assert_eq!(s.seen.total(), 0);

    // Accepted: charset=UTF-8 and an underscore alias of Mcp-Name; neither reaches the upstream.
    let ok = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_customer"}}"#;
    let r = http()
        .post(s.gw.url())
        .header("content-type", "application/json; charset=UTF-8")
        .header("accept", ACCEPT_BOTH)
        .header("authorization", s.auth.as_str())
        .header("mcp_name", "delete_customer")
        .body(ok)
        .send()
        .await
        .unwrap();
    let v = jsonrpc_body(r).await;
    assert_eq!(v["result"]["content"][0]["text"], "ran get_customer", "{v}");
    let seen = s.seen.headers.lock().unwrap().clone();
    let h = &seen[0];
    assert!(
        h.contains(&"content-type: application/json".to_string()),
        "{h:?}"
    );
    assert!(
        !h.iter().any(|l| l.split(':').next().unwrap().contains('_')),
        "{h:?}"
    );
}

/// `limits.max_json_depth` is honoured as configured.
#[tokio::test]
async fn configured_depth_limit_applies() {
    let s = setup(Limits {
        max_json_depth: Some(4),
        ..Limits::default()
    })
    .await;
    let body = |inner: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"get_customer","arguments":{{"x":{inner}}}}}}}"#
        )
    };
    let v = jsonrpc_body(s.plain(body("[0]")).await).await;
    assert_eq!(v["result"]["content"][0]["text"], "ran get_customer", "{v}");
    assert_error(
        s.plain(body("[[0]]")).await,
        400,
        -32600,
        "nested deeper than 4 levels in $.params.arguments.x[0]",
    )
    .await;
}

/// Framing and parser-differential cases: each has a defined answer, none reaches the
/// upstream, and the gateway keeps serving.
#[tokio::test]
async fn framing_and_differential_table() {
    let s = setup(Limits::default()).await;
    let sid = s.open_session().await;
    let call = |args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"get_customer","arguments":{args}}}}}"#
        )
        .into_bytes()
    };
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&call("{}"));
    let mut bad_utf8 = call(r#"{"s":"X"}"#);
    let at = bad_utf8.iter().position(|&b| b == b'X').unwrap();
    bad_utf8[at] = 0xff;
    let mut trailing = call("{}");
    trailing.extend_from_slice(b" {\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}");
    let mut nul = call(r#"{"s":"aXb"}"#);
    let at = nul.iter().position(|&b| b == b'X').unwrap();
    nul[at] = 0;
    let table: Vec<(&str, Vec<u8>, u16, i64, &str)> = vec![
        ("utf-8 bom", bom, 400, -32700, "byte order mark"),
        ("invalid utf-8", bad_utf8, 400, -32700, "not valid UTF-8"),
        ("raw NUL in a string", nul, 400, -32700, "control character"),
        ("second message after the first", trailing, 400, -32700, "end of the body"),
        ("NaN", call(r#"{"x":NaN}"#), 400, -32700, "NaN and Infinity"),
        ("Infinity", call(r#"{"x":-Infinity}"#), 400, -32700, "NaN and Infinity"),
        ("lone high surrogate", call(r#"{"x":"\ud800"}"#), 400, -32600, "lone UTF-16 surrogate"),
        ("lone low surrogate key", call(r#"{"\udfff":1}"#), 400, -32600, "lone UTF-16 surrogate"),
        ("single quotes", call("{'x':1}"), 400, -32700, "string key"),
        ("leading zero", call(r#"{"x":007}"#), 400, -32700, "after a number"),
        ("trailing comma", call(r#"{"x":1,}"#), 400, -32700, "string key"),
        ("form feed as whitespace", call("\x0c{}"), 400, -32700, "a JSON value"),
        ("duplicate id", br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"get_customer"}}"#.to_vec(), 400, -32600, "duplicate key $.id"),
        ("duplicate jsonrpc", br#"{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"ping"}"#.to_vec(), 400, -32600, "duplicate key $.jsonrpc"),
        ("batch", br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_customer"}}]"#.to_vec(), 400, -32600, "batches are not supported"),
    ];
    for (what, body, status, code, needle) in table {
        let r = s.plain(body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "plain route: {what}");
        let v = jsonrpc_body(r).await;
        assert_eq!(v["error"]["code"], code, "plain route: {what}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "plain route: {what}: {msg}");
        // The virtual server gives the same answer.
        let r = post(
            &s.vserver(),
            body,
            &[("authorization", &s.auth), ("mcp-session-id", &sid)],
        )
        .await;
        assert_eq!(r.status().as_u16(), status, "virtual server: {what}");
        let v = jsonrpc_body(r).await;
        assert_eq!(v["error"]["code"], code, "virtual server: {what}: {v}");
    }
    assert_eq!(s.seen.total(), 0, "a refused body reached the upstream");
    s.still_serves(&sid).await;
}

/// Numbers beyond i64 and f64 reach the upstream exactly as sent, on both paths (the virtual
/// server splices the tool name and keeps every other byte).
#[tokio::test]
async fn big_numbers_reach_the_upstream_byte_for_byte() {
    let s = setup(Limits::default()).await;
    let sid = s.open_session().await;
    let args = r#"{"big":123456789012345678901234567890,"tiny":1e-400,"wide":-0.10000000000000000000000000001,"huge":1e400}"#;
    let plain = format!(
        r#"{{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/call","params":{{"name":"get_customer","arguments":{args}}}}}"#
    );
    let _ = s.plain(plain.clone()).await;
    let virt = format!(
        r#"{{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{{"name":"crm__get_customer","arguments":{args}}}}}"#
    );
    let _ = s.vcall(&sid, &virt).await;
    // A tool with a pinned argument: the pinned member is spliced in, the rest kept.
    let pinned = virt.replace("crm__get_customer", "crm__update_ticket");
    let _ = s.vcall(&sid, &pinned).await;
    let bodies = s.seen.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3, "every call reached the upstream");
    assert_eq!(
        String::from_utf8_lossy(&bodies[2]),
        pinned
            .replace("crm__update_ticket", "update_ticket")
            .replace(r#""arguments":{"#, r#""arguments":{"tenant":"acme","#),
        "pinning adds its member and changes nothing else"
    );
    assert_eq!(
        bodies[0],
        plain.as_bytes(),
        "plain route forwards the bytes as sent"
    );
    assert_eq!(
        bodies[1],
        virt.replace("crm__get_customer", "get_customer").as_bytes(),
        "virtual server changes only the tool name"
    );
}

pub(crate) use crate::common::python::{sdk_python, Child};

/// The same exploit against the official Python SDK server, the upstream the finding was
/// reproduced on: the gateway refuses it and the SDK's call log stays empty of the hidden
/// tool. Also shows the SDK really is last-wins, so the test can fail.
#[tokio::test]
async fn python_sdk_upstream_never_runs_the_hidden_tool() {
    let Some(python) = sdk_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python SDK (scripts/test.sh creates the venv)"
        );
        eprintln!("skipped: no Python with the mcp SDK (run scripts/test.sh once to create it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let (_child, port) = python::start(&python, "sdk_upstream.py", &[log.as_os_str()], None).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let ran = |tool: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == tool)
            .count()
    };
    let exploit = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{name}","arguments":{{"id":"42"}},"name":"delete_customer"}}}}"#
        )
    };

    // Directly, the SDK runs the last name: the differential is real.
    let sid = raw_initialize(&url).await;
    let r = post(&url, exploit("get_customer"), &[("mcp-session-id", &sid)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        ran("delete_customer"),
        1,
        "the SDK should keep the last duplicate"
    );

    // Through a virtual server that hides delete_customer: refused, never run.
    let s = setup_for(&url, Seen::default(), Limits::default()).await;
    let vsid = s.open_session().await;
    for name in ["crm__get_customer", "crm__delete_customer"] {
        assert_error(
            s.vcall(&vsid, &exploit(name)).await,
            400,
            -32600,
            "$.params.name",
        )
        .await;
    }
    let plain = s.plain(exploit("get_customer")).await;
    assert_error(plain, 400, -32600, "duplicate key $.params.name").await;
    assert_eq!(
        ran("delete_customer"),
        1,
        "the gateway let the hidden tool run"
    );

    // An honest call still goes through to the SDK.
    let ok = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"id":"7"}}}"#;
    let v = jsonrpc_body(s.vcall(&vsid, ok).await).await;
    assert_eq!(v["result"]["content"][0]["text"], "customer 7", "{v}");
    assert_eq!(ran("get_customer"), 1);
}

/// HTTP framing: a request with both `Content-Length` and `Transfer-Encoding: chunked`
/// (the classic smuggling shape) is framed by the chunked encoding (RFC 9112 §6.3) or
/// refused; either way the bytes after it are never run as a second call on the upstream.
#[tokio::test]
async fn conflicting_framing_never_smuggles_a_second_call() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup(Limits::default()).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer"}}"#;
    let smuggled = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 85\r\n\r\n{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"delete_customer\"}}}}",
        addr = s.gw.addr,
        auth = s.auth,
    );
    let chunked = format!("{:x}\r\n{call}\r\n0\r\n\r\n", call.len());
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {cl}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}{smuggled}",
        addr = s.gw.addr,
        auth = s.auth,
        cl = chunked.len() + smuggled.len(),
    );
    let mut conn = tokio::net::TcpStream::connect(s.gw.addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    eprintln!("gateway: {}", answer.lines().next().unwrap_or_default());
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    assert_eq!(s.seen.calls_of("delete_customer"), 0, "{answer}");
    // Framed by the chunked encoding (what Pingora 0.9 does): exactly the one call ran.
    let ran = usize::from(answer.starts_with("HTTP/1.1 200"));
    assert_eq!(s.seen.calls_of("get_customer"), ran, "{answer}");
}
