//! Client authentication end to end: every bad token variant gets 401 (with the
//! protected-resource challenge) and never reaches the upstream; good tokens from a JWKS file,
//! a JWKS URL (with rotation) and an HMAC secret go through; API keys, scopes, metadata.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use crate::common::tokens::*;
use crate::common::*;
use serde_json::json;
use std::time::Duration;

const HMAC: &[u8] = b"test-hmac-secret-of-sufficient-length!!";
const AGENT_KEY: &str = "agent-key-1";
/// An `initialize`: the demo server answers it with 200 whenever it gets it.
const PING: &str = r#"{"jsonrpc":"2.0","id":"p1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

struct Setup {
    demo: demo::DemoServer,
    gw: Gateway,
    jwks: JwksServer,
    ed: EdKey,
    _dir: tempfile::TempDir,
}

/// Three JWT keys (an RS256 JWKS file, an EdDSA JWKS URL, an HS256 secret with `kid: hs`),
/// no leeway, one API key; `required_scopes` as given.
async fn setup(required_scopes: &[&str]) -> Setup {
    let demo = start_demo().await;
    let ed = EdKey::generate("ed1");
    let jwks = JwksServer::start(vec![ed.jwk.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let hmac_file = dir.path().join("hmac");
    std::fs::write(&hmac_file, HMAC).unwrap();
    let jwt = Jwt::test_issuer(JwtKey::jwks_file(
        &fixture("rsa-jwks.json"),
        Algorithm::RS256,
    ))
    .leeway(Duration::ZERO)
    .key(
        JwtKey::jwks_url(&jwks.url, Algorithm::EdDSA)
            .min_refresh_interval(Duration::from_millis(50)),
    )
    .key(JwtKey::hs256(SecretRef::file(&hmac_file)).kid("hs"));
    let auth = Auth::new(RESOURCE)
        .authorization_servers(&[ISSUER])
        .scopes_supported(&["mcp:tools"])
        .required_scopes(required_scopes)
        .jwt(jwt)
        .api_key(ApiKey::new(AGENT_KEY, "agent-1").scopes(&["mcp:tools"]));
    let config = Config::new()
        .listener(Listener::new().route("/mcp", "up"))
        .upstream(Upstream::new("up", &demo.url()))
        .auth(auth);
    let gw = start_gateway(&config.yaml()).await;
    Setup {
        demo,
        gw,
        jwks,
        ed,
        _dir: dir,
    }
}

async fn call(s: &Setup, token: Option<&str>, api_key: Option<&str>) -> reqwest::Response {
    let bearer;
    let mut h: Vec<(&str, &str)> = Vec::new();
    if let Some(t) = token {
        bearer = format!("Bearer {t}");
        h.push(("authorization", &bearer));
    }
    if let Some(k) = api_key {
        h.push(("x-api-key", k));
    }
    post(&s.gw.url(), PING, &h).await
}

async fn assert_401(s: &Setup, token: Option<&str>, needle: &str) {
    let r = call(s, token, None).await;
    let www = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        www.starts_with(&format!(
            "Bearer resource_metadata=\"{RESOURCE}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{www}"
    );
    assert_eq!(
        www.contains("error=\"invalid_token\""),
        token.is_some(),
        "{www}"
    );
    let v = assert_error(r, 401, -32000, needle).await;
    assert_eq!(
        v["id"],
        serde_json::Value::Null,
        "rejected before the body was read"
    );
}

#[tokio::test]
async fn every_bad_token_is_401_and_never_reaches_the_upstream() {
    let s = setup(&[]).await;
    assert_401(&s, None, "no credentials").await;
    assert_401(&s, Some("garbage"), "unknown API key").await;
    assert_401(&s, Some("eyJhbGciOi.not-base64.x"), "malformed token").await;

    // Signed by a key the gateway doesn't know, under a known kid.
    let other = EdKey::generate("ed1");
    assert_401(
        &s,
        Some(&other.sign(&claims("alice"))),
        "signature is invalid",
    )
    .await;
    // alg none.
    assert_401(
        &s,
        Some(&unsigned(&claims("alice"), "rsa1")),
        "malformed token",
    )
    .await;
    // HS256 "signed" with the RSA public key as the HMAC secret (key confusion).
    let public_pem = std::fs::read(fixture("rsa-public.pem")).unwrap();
    let confused = hs256(&claims("alice"), &public_pem, Some("rsa1"));
    assert_401(
        &s,
        Some(&confused),
        "no key with kid \"rsa1\" accepts alg HS256",
    )
    .await;
    // Time, issuer, audience.
    let mut c = claims("alice");
    c["exp"] = json!(now() - 10);
    assert_401(&s, Some(&rs256(&c)), "token expired").await;
    let mut c = claims("alice");
    c["nbf"] = json!(now() + 600);
    assert_401(&s, Some(&rs256(&c)), "not yet valid").await;
    let mut c = claims("alice");
    c["iss"] = json!("https://evil.test");
    assert_401(&s, Some(&rs256(&c)), "issuer").await;
    let mut c = claims("alice");
    c["aud"] = json!("https://other.test/mcp");
    assert_401(&s, Some(&rs256(&c)), "audience").await;
    // Unknown kid.
    let stranger = EdKey::generate("who");
    assert_401(
        &s,
        Some(&stranger.sign(&claims("alice"))),
        "no key with kid \"who\"",
    )
    .await;
    // Unknown API key in the header.
    let r = call(&s, None, Some("nope")).await;
    assert_error(r, 401, -32000, "unknown API key").await;

    assert_eq!(
        s.demo.requests(),
        0,
        "no rejected request reached the upstream"
    );
}

#[tokio::test]
async fn good_tokens_from_file_url_and_secret_go_through_without_leaking_credentials() {
    let s = setup(&[]).await;
    for token in [
        rs256(&claims("alice")),
        s.ed.sign(&claims("bob")),
        hs256(&claims("carol"), HMAC, Some("hs")),
    ] {
        let r = call(&s, Some(&token), None).await;
        assert_eq!(r.status(), 200);
        let seen = s.demo.last_headers().unwrap();
        assert!(
            seen.get("authorization").is_none(),
            "client token leaked upstream"
        );
    }
    assert_eq!(s.demo.requests(), 3);
    // API key alone, and an agent key next to a user token: neither header reaches the upstream.
    let r = call(&s, None, Some(AGENT_KEY)).await;
    assert_eq!(r.status(), 200);
    let seen = s.demo.last_headers().unwrap();
    assert!(seen.get("x-api-key").is_none() && seen.get("authorization").is_none());
    let r = call(&s, Some(&rs256(&claims("alice"))), Some(AGENT_KEY)).await;
    assert_eq!(r.status(), 200);
    let seen = s.demo.last_headers().unwrap();
    assert!(seen.get("x-api-key").is_none() && seen.get("authorization").is_none());
}

#[tokio::test]
async fn rotated_jwks_url_rejects_the_removed_key_and_accepts_the_new_one() {
    let s = setup(&[]).await;
    let old = s.ed.sign(&claims("alice"));
    let r = call(&s, Some(&old), None).await;
    assert_ne!(r.status(), 401, "old key valid before rotation");

    let new = EdKey::generate("ed2");
    s.jwks.set_keys(vec![new.jwk.clone()]);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await; // min_refresh_interval
    let hits = s.jwks.hits();
    let r = call(&s, Some(&new.sign(&claims("alice"))), None).await;
    assert_ne!(r.status(), 401, "unknown kid triggered a refresh");
    assert!(s.jwks.hits() > hits);
    // The old token was cached as verified; the key set changed, so it must be checked again.
    assert_401(&s, Some(&old), "no key with kid \"ed1\"").await;
}

#[tokio::test]
async fn protected_resource_metadata_is_public() {
    let s = setup(&[]).await;
    let r = http()
        .get(format!(
            "http://{}/.well-known/oauth-protected-resource/mcp",
            s.gw.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["resource"], AUDIENCE);
    assert_eq!(v["authorization_servers"], json!([ISSUER]));
    assert_eq!(v["scopes_supported"], json!(["mcp:tools"]));
}

#[tokio::test]
async fn metadata_takes_only_get_and_its_405_says_so() {
    let s = setup(&[]).await;
    let url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        s.gw.addr
    );
    // The metadata document is read-only: its 405 must not advertise the MCP endpoint's
    // POST and DELETE (a client following `Allow` would POST to it again).
    for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
        let r = http()
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body(PING)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("GET"),
            "{method}"
        );
        assert_error(r, 405, -32000, "metadata document; use GET").await;
    }
    assert_eq!(s.demo.requests(), 0);
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope() {
    let s = setup(&["mcp:tools"]).await;
    let mut c = claims("alice");
    c["scope"] = json!("other");
    let r = call(&s, Some(&rs256(&c)), None).await;
    let www = r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        www.contains("error=\"insufficient_scope\"") && www.contains("scope=\"mcp:tools\""),
        "{www}"
    );
    assert_error(r, 403, -32000, "missing: mcp:tools").await;
    let r = call(&s, Some(&rs256(&claims("alice"))), None).await;
    assert_ne!(r.status(), 403);
    assert_eq!(s.demo.requests(), 1);
}

#[tokio::test]
async fn a_repeated_token_is_served_from_the_cache() {
    let s = setup(&[]).await;
    let t = rs256(&claims("alice"));
    for _ in 0..3 {
        assert_ne!(call(&s, Some(&t), None).await.status(), 401);
    }
    let rt = s.gw.shared.runtime.load();
    let (hits, misses) = rt.auth.as_ref().unwrap().cache_stats();
    assert_eq!(
        (hits, misses),
        (2, 1),
        "one signature check, then cache hits"
    );
    // Tampering with a cached token's signature is still rejected (the cache is keyed by the
    // whole token).
    // Flip one character in the middle of the signature (never the last, whose low bits are
    // base64 padding).
    let sig_start = t.rfind('.').unwrap() + 1;
    let mid = sig_start + (t.len() - sig_start) / 2;
    let mut tampered = t.clone();
    let c = if &t[mid..=mid] == "A" { "B" } else { "A" };
    tampered.replace_range(mid..=mid, c);
    assert_401(&s, Some(&tampered), "signature is invalid").await;
}
