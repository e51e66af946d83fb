//! Every request the gateway refuses gets the right HTTP status, a JSON-RPC error with an
//! actionable message and, where the request had one, its id; none of them reaches the upstream.

use crate::common::*;

const PING: &str = r#"{"jsonrpc":"2.0","id":"req-7","method":"ping"}"#;

#[tokio::test]
async fn malformed_json_is_400_parse_error() {
    let (demo, gw) = demo_and_gateway().await;
    let r = post(&gw.url(), r#"{"jsonrpc":"2.0","id":1,"method":"ping""#, &[]).await;
    let v = assert_error(r, 400, -32700, "parse error").await;
    assert!(v["id"].is_null());
    assert_eq!(demo.requests(), 0);
}

#[tokio::test]
async fn not_json_rpc_is_400_invalid_request_and_keeps_the_id() {
    let (demo, gw) = demo_and_gateway().await;
    let r = post(
        &gw.url(),
        r#"{"jsonrpc":"1.0","id":"abc","method":"ping"}"#,
        &[],
    )
    .await;
    let v = assert_error(r, 400, -32600, "\"jsonrpc\" must be \"2.0\"").await;
    assert_eq!(v["id"], "abc");
    let r = post(&gw.url(), r#"{"hello":"world"}"#, &[]).await;
    assert_error(r, 400, -32600, "\"jsonrpc\" must be \"2.0\"").await;
    let r = post(&gw.url(), r#"{"jsonrpc":"2.0","params":{}}"#, &[]).await;
    assert_error(r, 400, -32600, "missing \"method\"").await;
    let r = post(&gw.url(), format!("[{PING}]"), &[]).await;
    assert_error(r, 400, -32600, "batches are not supported").await;
    let r = post(
        &gw.url(),
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{}}"#,
        &[],
    )
    .await;
    let v = assert_error(r, 400, -32602, "params.name").await;
    assert_eq!(v["id"], 5);
    assert_eq!(demo.requests(), 0);
}

#[tokio::test]
async fn body_over_the_limit_is_413_with_the_limit_in_the_message() {
    let d = start_demo().await;
    let gw = start_gateway(
        &config_for(&d.url())
            .limits(Limits {
                max_request_body_bytes: Some(1000),
                ..Limits::default()
            })
            .yaml(),
    )
    .await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(2000)
    );
    // Declared by Content-Length: refused before reading.
    let r = post(&gw.url(), big.clone(), &[]).await;
    let v = assert_error(r, 413, -32600, "exceeds the limit of 1000 bytes").await;
    assert_eq!(v["error"]["data"]["limit"], 1000);
    // Chunked (no Content-Length): refused while reading.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(300)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = post(&gw.url(), reqwest::Body::wrap_stream(stream), &[]).await;
    assert_error(r, 413, -32600, "1000 bytes").await;
    assert_eq!(d.calls("echo"), 0);
}

#[tokio::test]
async fn wrong_content_type_is_400_and_missing_accept_is_406() {
    let (demo, gw) = demo_and_gateway().await;
    let r = http()
        .post(gw.url())
        .header("content-type", "text/plain")
        .header("accept", ACCEPT_BOTH)
        .body(PING)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, -32000, "Content-Type must be application/json").await;
    let r = http()
        .post(gw.url())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(PING)
        .send()
        .await
        .unwrap();
    assert_error(r, 406, -32000, "text/event-stream").await;
    let r = http()
        .get(gw.url())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_error(r, 406, -32000, "text/event-stream").await;
    assert_eq!(demo.requests(), 0);
}

#[tokio::test]
async fn other_methods_are_405_with_allow_and_unknown_paths_404() {
    let (demo, gw) = demo_and_gateway().await;
    let r = http().put(gw.url()).body(PING).send().await.unwrap();
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST, GET, DELETE")
    );
    assert_error(r, 405, -32000, "PUT is not allowed").await;
    let r = post(&format!("http://{}/other", gw.addr), PING, &[]).await;
    let v = assert_error(r, 404, -32000, "no MCP endpoint at /other").await;
    // The listener's routes are not listed to a caller that has not authenticated.
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !msg.contains("/mcp") && msg.contains("check the URL"),
        "{msg}"
    );
    assert_eq!(demo.requests(), 0);
}

#[tokio::test]
async fn dns_rebinding_guard_checks_origin_and_host() {
    let (demo, gw) = demo_and_gateway().await;
    let r = post(&gw.url(), PING, &[("origin", "http://evil.example.com")]).await;
    let v = assert_error(
        r,
        403,
        -32000,
        "origin \"http://evil.example.com\" is not allowed",
    )
    .await;
    assert!(v["id"].is_null());
    let r = post(&gw.url(), PING, &[("host", "evil.example.com")]).await;
    assert_error(r, 421, -32000, "host \"evil.example.com\" is not allowed").await;
    assert_eq!(demo.requests(), 0);

    // The allowed origin and a loopback Host go through; the upstream sees its own Host and
    // no Origin (so an upstream with its own rebinding check accepts it).
    let r = post(&gw.url(), r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        &[("origin", "http://localhost:6274"), ("host", &format!("localhost:{}", gw.addr.port()))]).await;
    assert_eq!(r.status(), 200);
    let seen = demo.last_headers().expect("upstream saw a request");
    assert_eq!(seen.get("host").unwrap(), demo.addr.to_string().as_str());
    assert!(seen.get("origin").is_none());
}

/// A loopback listener accepts a browser page served from its own origin (the MCP conformance
/// suite's `dns-rebinding-protection` scenario sends `Host` and `Origin` of the server URL),
/// and still refuses other origins, another loopback port included.
#[tokio::test]
async fn a_loopback_listener_accepts_its_own_origin_and_refuses_others() {
    let (demo, gw) = demo_and_gateway().await;
    let port = gw.addr.port();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let origin = format!("http://{host}");
        let r = post(&gw.url(), init, &[("host", &host), ("origin", &origin)]).await;
        assert_eq!(r.status(), 200, "{origin}");
    }
    let before = demo.requests();
    let other = format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1));
    for (host, origin) in [
        (format!("127.0.0.1:{port}"), other.as_str()),
        (format!("127.0.0.1:{port}"), "http://evil.example.com"),
        (format!("127.0.0.1:{port}"), "http://evil.example.com:80"),
    ] {
        let r = post(&gw.url(), init, &[("host", &host), ("origin", origin)]).await;
        assert_error(r, 403, -32000, "is not allowed (DNS-rebinding protection)").await;
    }
    // The conformance suite's attack: Host and Origin both the attacker's name.
    let r = post(
        &gw.url(),
        init,
        &[
            ("host", "evil.example.com"),
            ("origin", "http://evil.example.com"),
        ],
    )
    .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(
        demo.requests(),
        before,
        "nothing refused reached the upstream"
    );
}

/// A client that asks for `100 Continue` (curl does for larger bodies) gets it at once from
/// the gateway, which reads the body before contacting the upstream.
#[tokio::test]
async fn expect_100_continue_is_answered_without_stalling() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_demo, gw) = demo_and_gateway().await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: {ACCEPT_BOTH}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        PING.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(std::time::Duration::from_millis(800), s.read(&mut buf))
        .await
        .expect("100 Continue arrives without waiting for the body")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"));
    s.write_all(PING.as_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !String::from_utf8_lossy(&rest).contains("\"req-7\"") {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    // The ping reached the upstream (which refuses it without a session) and its answer came
    // back: a status from the upstream, not a gateway error.
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    assert!(
        !text.contains("\"code\":-32000,\"message\":\"upstream"),
        "{text}"
    );
}
