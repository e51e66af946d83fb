//! The admin listener through a running gateway: authentication (tokens and JWT grants),
//! read and write permissions, the Host/Origin guard, JSON-only writes, and the public probe
//! paths. Each write test would have succeeded on the unauthenticated query-string API.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use crate::common::tokens::*;
use crate::common::*;
use serde_json::{json, Value};

const HMAC: &[u8] = b"admin-test-hmac-secret-0123456789";

/// A gateway with a virtual server over the demo upstream (so the registry discovers its
/// tools), admin tokens, and JWT grants: role `gateway-admin` writes, group `sre` reads.
struct Setup {
    _demo: demo::DemoServer,
    gw: Gateway,
    _dir: tempfile::TempDir,
}

/// The gateway [`Setup`] describes; `admin` and `jwt` adjust its `admin:` and `auth.jwt`.
async fn setup_with(admin: impl FnOnce(Admin) -> Admin, jwt: impl FnOnce(Jwt) -> Jwt) -> Setup {
    let demo = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let hmac = dir.path().join("hmac");
    std::fs::write(&hmac, HMAC).unwrap();
    let config = Config::new()
        .listener(Listener::new().auth(ListenerAuth::None).route("/mcp", "up"))
        .upstream(Upstream::new("up", &demo.url()))
        .admin(admin(
            Admin::with_test_tokens()
                .allowed_origins(&["http://localhost:3000"])
                .jwt_grant(
                    AdminPermission::Write,
                    Principals::roles(&["gateway-admin"]),
                )
                .jwt_grant(AdminPermission::Read, Principals::groups(&["sre"])),
        ))
        .auth(Auth::new(RESOURCE).jwt(jwt(Jwt::test_issuer(JwtKey::hs256(SecretRef::file(&hmac))))))
        .virtual_server(VirtualServer::new("all", "/v/all/mcp").roles(&["user"]));
    let gw = start_gateway(&config.yaml()).await;
    Setup {
        _demo: demo,
        gw,
        _dir: dir,
    }
}

async fn setup() -> Setup {
    setup_with(|a| a, |j| j).await
}

/// Wait until the registry has discovered the demo upstream's tools.
async fn discovered(gw: &Gateway) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let v: Value = admin_get(gw, "/admin/registry", ADMIN_READ_TOKEN)
            .await
            .json()
            .await
            .unwrap();
        if v["upstreams"][0]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tools not discovered: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

const APPROVE: &str = "/admin/registry/approve";

fn echo() -> Value {
    json!({"upstream": "up", "tool": "echo"})
}

/// Status, `error.code`, and a message substring of an admin error response.
async fn assert_admin_error(r: reqwest::Response, status: u16, code: &str, needle: &str) {
    assert_eq!(r.status().as_u16(), status, "status");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], code, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

fn admin_jwt(sub: &str, roles: &[&str], groups: &[&str]) -> String {
    let mut c = claims(sub);
    c["aud"] = json!(format!("{RESOURCE}/admin"));
    c["roles"] = json!(roles);
    c["groups"] = json!(groups);
    hs256(&c, HMAC, None)
}

#[tokio::test]
async fn no_credentials_get_401_with_a_challenge() {
    let s = setup().await;
    let r = http()
        .get(s.gw.admin_url("/admin/registry"))
        .send()
        .await
        .unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert_admin_error(r, 401, "unauthenticated", "Authorization: Bearer").await;
    let r = http()
        .post(s.gw.admin_url(APPROVE))
        .header("content-type", "application/json")
        .body(echo().to_string())
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 401, "unauthenticated", "no credentials").await;
    let r = admin_get(&s.gw, "/admin/registry", "not-a-token").await;
    assert!(r
        .headers()
        .get("www-authenticate")
        .is_some_and(|v| v.to_str().unwrap().contains("invalid_token")));
    assert_admin_error(r, 401, "unauthenticated", "unknown admin token").await;
}

#[tokio::test]
async fn a_read_token_reads_but_cannot_approve() {
    let s = setup().await;
    let r = admin_get(&s.gw, "/admin/registry", ADMIN_READ_TOKEN).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["upstreams"][0]["name"], "up");
    discovered(&s.gw).await;
    let r = admin_post(&s.gw, APPROVE, ADMIN_READ_TOKEN, &echo()).await;
    assert!(r
        .headers()
        .get("www-authenticate")
        .is_some_and(|v| v.to_str().unwrap().contains("insufficient_scope")));
    assert_admin_error(r, 403, "forbidden", "write permission").await;
}

#[tokio::test]
async fn a_write_token_approves_with_a_json_post() {
    let s = setup().await;
    discovered(&s.gw).await;
    let r = admin_post(&s.gw, APPROVE, ADMIN_WRITE_TOKEN, &echo()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["approved"], "up.echo");
    // An unknown tool is a 404 naming it; unknown fields are refused.
    let r = admin_post(
        &s.gw,
        APPROVE,
        ADMIN_WRITE_TOKEN,
        &json!({"upstream": "up", "tool": "nope"}),
    )
    .await;
    assert_admin_error(r, 404, "not_found", "no tool \"nope\"").await;
    let r = admin_post(
        &s.gw,
        APPROVE,
        ADMIN_WRITE_TOKEN,
        &json!({"upstream": "up", "tool": "echo", "also": 1}),
    )
    .await;
    assert_admin_error(r, 400, "invalid_body", "unknown field").await;
    // A duplicate key cannot make the log say one tool and the registry approve another.
    let r = http()
        .post(s.gw.admin_url(APPROVE))
        .bearer_auth(ADMIN_WRITE_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"upstream":"up","tool":"echo","tool":"add"}"#)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 400, "invalid_body", "duplicate field").await;
    // GET on a write endpoint is 405 with Allow: POST.
    let r = admin_get(&s.gw, APPROVE, ADMIN_WRITE_TOKEN).await;
    assert_eq!(r.headers().get("allow").unwrap(), "POST");
    assert_admin_error(r, 405, "method_not_allowed", "use POST").await;
}

#[tokio::test]
async fn the_old_query_string_approve_is_refused() {
    let s = setup().await;
    discovered(&s.gw).await;
    let r = http()
        .post(s.gw.admin_url("/admin/registry/approve?upstream=up&tool=echo"))
        .bearer_auth(ADMIN_WRITE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_admin_error(
        r,
        400,
        "query_not_allowed",
        r#"{"upstream":"NAME","tool":"NAME"}"#,
    )
    .await;
}

#[tokio::test]
async fn a_write_without_a_json_content_type_is_refused() {
    let s = setup().await;
    discovered(&s.gw).await;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut rb = http()
            .post(s.gw.admin_url(APPROVE))
            .bearer_auth(ADMIN_WRITE_TOKEN)
            .body(echo().to_string());
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        let r = rb.send().await.unwrap();
        assert_admin_error(r, 415, "unsupported_media_type", "application/json").await;
    }
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let s = setup().await;
    discovered(&s.gw).await;
    // What a page on another site can make a browser send: a form post with its Origin
    // and no credentials of ours. Refused by the Origin guard before anything else...
    let form = || {
        http()
            .post(s.gw.admin_url(APPROVE))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "http://evil.example")
            .body("upstream=up&tool=echo")
    };
    let r = form().send().await.unwrap();
    assert_admin_error(r, 403, "origin_not_allowed", "http://evil.example").await;
    // ...and even with a leaked write token.
    let r = form().bearer_auth(ADMIN_WRITE_TOKEN).send().await.unwrap();
    assert_admin_error(r, 403, "origin_not_allowed", "DNS-rebinding").await;
}

#[tokio::test]
async fn foreign_origin_is_403_and_allowed_origin_passes() {
    let s = setup().await;
    let r = http()
        .get(s.gw.admin_url("/admin/registry"))
        .bearer_auth(ADMIN_READ_TOKEN)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 403, "origin_not_allowed", "allowed_origins").await;
    let r = http()
        .get(s.gw.admin_url("/admin/registry"))
        .bearer_auth(ADMIN_READ_TOKEN)
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_foreign_host_is_421_even_on_public_paths() {
    let s = setup().await;
    for path in ["/admin/registry", "/healthz"] {
        let r = http()
            .get(s.gw.admin_url(path))
            .bearer_auth(ADMIN_READ_TOKEN)
            .header("host", "evil.example.com")
            .send()
            .await
            .unwrap();
        assert_admin_error(r, 421, "host_not_allowed", "evil.example.com").await;
    }
}

#[tokio::test]
async fn probes_metrics_and_jwks_stay_public() {
    let s = setup().await;
    for path in ["/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"] {
        let r = http().get(s.gw.admin_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = http().get(s.gw.admin_url("/nope")).send().await.unwrap();
    assert_admin_error(r, 404, "not_found", "/healthz").await;
}

#[tokio::test]
async fn public_paths_can_put_metrics_behind_the_read_permission() {
    let s = setup_with(|a| a.public_paths(&["/healthz", "/readyz"]), |j| j).await;
    let r = http().get(s.gw.admin_url("/metrics")).send().await.unwrap();
    assert_admin_error(r, 401, "unauthenticated", "no credentials").await;
    let r = admin_get(&s.gw, "/metrics", ADMIN_READ_TOKEN).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "text/plain; version=0.0.4"
    );
    let r = http().get(s.gw.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn jwt_principals_get_the_permission_their_roles_and_groups_grant() {
    let s = setup().await;
    discovered(&s.gw).await;
    let writer = admin_jwt("alice", &["gateway-admin"], &[]);
    let r = admin_post(&s.gw, APPROVE, &writer, &echo()).await;
    assert_eq!(r.status(), 200);
    let reader = admin_jwt("bob", &[], &["sre"]);
    assert_eq!(
        admin_get(&s.gw, "/admin/registry", &reader).await.status(),
        200
    );
    let r = admin_post(&s.gw, APPROVE, &reader, &echo()).await;
    assert_admin_error(r, 403, "forbidden", "\"bob\" (issuer https://idp.test)").await;
    // A valid token of the same issuer without an admin grant reads nothing.
    let nobody = admin_jwt("carol", &["user"], &["support"]);
    let r = admin_get(&s.gw, "/admin/registry", &nobody).await;
    assert_admin_error(r, 403, "forbidden", "read permission").await;
    // A token minted for the MCP endpoint (its audience) is not an admin credential.
    let mut c = claims("alice");
    c["roles"] = json!(["gateway-admin"]);
    let mcp_token = hs256(&c, HMAC, None);
    let r = admin_post(&s.gw, APPROVE, &mcp_token, &echo()).await;
    assert_admin_error(r, 401, "unauthenticated", "").await;
}

/// With `auth.jwt.audiences` configured, MCP tokens carry one of those audiences, and admin
/// tokens must still be minted for the admin audience: a route token with an admin role is
/// not an admin credential (so a `passthrough` upstream that sees it cannot administer).
#[tokio::test]
async fn configured_audiences_do_not_make_route_tokens_admin_tokens() {
    let s = setup_with(|a| a, |j| j.audiences(&[AUDIENCE])).await;
    discovered(&s.gw).await;
    let mut c = claims("alice");
    c["roles"] = json!(["gateway-admin"]);
    c["aud"] = json!(AUDIENCE);
    let route_token = hs256(&c, HMAC, None);
    let r = admin_post(&s.gw, APPROVE, &route_token, &echo()).await;
    assert_admin_error(r, 401, "unauthenticated", "").await;
    let writer = admin_jwt("alice", &["gateway-admin"], &[]);
    let r = admin_post(&s.gw, APPROVE, &writer, &echo()).await;
    assert_eq!(r.status(), 200);
}

/// Without `admin.auth` the admin API is off, even on loopback; probes are still served.
#[tokio::test]
async fn without_admin_auth_the_api_is_off() {
    let (_demo, gw) = demo_and_gateway().await;
    let r = http()
        .get(gw.admin_url("/admin/registry"))
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 403, "admin_api_disabled", "admin.auth").await;
    let r = http()
        .post(gw.admin_url(APPROVE))
        .header("content-type", "application/json")
        .body(echo().to_string())
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 403, "admin_api_disabled", "admin.auth").await;
    let r = http().get(gw.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The admin socket is bound at startup: a reload that moves it is refused (its Host/Origin
/// defaults would otherwise describe an address that is not the one listening).
#[tokio::test]
async fn a_reload_that_moves_the_admin_address_is_refused() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gw.yaml");
    let moved = s.gw.yaml.replace(
        &s.gw.admin.to_string(),
        &format!("127.0.0.1:{}", free_port()),
    );
    std::fs::write(&conf, moved).unwrap();
    let err = s.gw.shared.reload(&conf).unwrap_err().to_string();
    assert!(err.contains("admin address changed"), "{err}");
    std::fs::write(&conf, &s.gw.yaml).unwrap();
    s.gw.shared.reload(&conf).unwrap();
}
