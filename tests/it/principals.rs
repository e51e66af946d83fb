//! Identity is (issuer, subject), end to end with two HMAC issuers: issuer B's `sub: alice`
//! does not pass issuer A's alice's access list, open her session, get her `per_user`
//! credential or her signed identity, and B's groups count only if B is trusted for them.
//! Also: `passthrough` never forwards an API key.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::tokens::*;
use crate::common::*;
use base64::Engine as _;
use mcp_gateway::vault::{Secret, StaticKek, Vault};
use serde_json::{json, Value};

const SECRET_A: &[u8] = b"issuer-a-hmac-secret-0123456789abcdef";
const SECRET_B: &[u8] = b"issuer-b-hmac-secret-0123456789abcdef";
const ISSUER_B: &str = "https://partner.test";
const API_KEY: &str = "principals-test-api-key";
const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

/// A token from issuer A (`Some(ISSUER)`) or B, with `groups: [admins]`.
fn token(issuer: &str, sub: &str) -> String {
    let mut c = claims(sub);
    c["iss"] = json!(issuer);
    c["groups"] = json!(["admins"]);
    if issuer == ISSUER {
        hs256(&c, SECRET_A, Some("a"))
    } else {
        hs256(&c, SECRET_B, Some("b"))
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

struct Setup {
    demo: demo::DemoServer,
    gw: Gateway,
    /// Headers the recording upstream received, one entry per request.
    recorded: Arc<Mutex<Vec<axum::http::HeaderMap>>>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let demo = start_demo().await;
    let recorded: Arc<Mutex<Vec<axum::http::HeaderMap>>> = Arc::default();
    let rec = recorded.clone();
    let recorder = raw_upstream(axum::Router::new().route(
        "/mcp",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            rec.lock().unwrap().push(headers);
            async { axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {}})) }
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("a"), SECRET_A).unwrap();
    std::fs::write(p("b"), SECRET_B).unwrap();
    let kek = StaticKek::generate().unwrap();
    std::fs::write(p("kek"), kek.to_base64().expose()).unwrap();
    let mut vault = Vault::new();
    let owner = format!("{ISSUER}#alice");
    vault
        .set(
            "github",
            Some(&owner),
            Secret::from("a-alice-gh-token".to_string()),
            &kek,
        )
        .unwrap();
    let rng = ring::rand::SystemRandom::new();
    let signing = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    vault
        .set(
            "signing",
            None,
            Secret::new(signing.as_ref().to_vec()),
            &kek,
        )
        .unwrap();
    vault.save(&p("vault.json")).unwrap();
    let up = demo.url();
    let jwt = Jwt::new(&[ISSUER, ISSUER_B])
        .group_issuers(&[ISSUER])
        .audiences(&[AUDIENCE])
        .key(
            JwtKey::hs256(SecretRef::file(&p("a")))
                .kid("a")
                .issuer(ISSUER),
        )
        .key(
            JwtKey::hs256(SecretRef::file(&p("b")))
                .kid("b")
                .issuer(ISSUER_B),
        );
    let demo_tools = |v: VirtualServer| v.allow_tools(&["demo.*"]);
    let yaml = Config::new()
        .listener(
            Listener::new()
                .route("/peruser/mcp", "peruser")
                .route("/signed/mcp", "signed")
                .route("/pass/mcp", "pass"),
        )
        .upstream(Upstream::new("demo", &up))
        .upstream(
            Upstream::new("peruser", &up)
                .auth(UpstreamAuth::new(PropagationMode::PerUser).credential("github")),
        )
        .upstream(
            Upstream::new("signed", &up).auth(
                UpstreamAuth::new(PropagationMode::SignedIdentity)
                    .signing_key(SecretRef::vault("signing"))
                    .ttl(Duration::from_secs(60)),
            ),
        )
        .upstream(
            Upstream::new("pass", &format!("http://{recorder}/mcp"))
                .auth(UpstreamAuth::new(PropagationMode::Passthrough)),
        )
        .auth(
            Auth::new(RESOURCE)
                .api_key_header("x-api-key")
                .api_key(ApiKey::new(API_KEY, "alice"))
                .jwt(jwt),
        )
        .virtual_server(demo_tools(
            VirtualServer::new("private", "/v/private/mcp").subjects(&[&owner]),
        ))
        .virtual_server(demo_tools(
            VirtualServer::new("admins", "/v/admins/mcp").groups(&["admins"]),
        ))
        .virtual_server(demo_tools(VirtualServer::new(
            "everyone",
            "/v/everyone/mcp",
        )))
        .vault(&p("vault.json"), SecretRef::file(&p("kek")))
        .yaml();
    let gw = start_gateway(&yaml).await;
    Setup {
        demo,
        gw,
        recorded,
        _dir: dir,
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

async fn initialize(s: &Setup, server: &str, token: &str) -> reqwest::Response {
    let url = format!("http://{}/v/{server}/mcp", s.gw.addr);
    post(&url, INIT, &[("authorization", &bearer(token))]).await
}

#[tokio::test]
async fn another_issuers_alice_is_not_on_the_access_list() {
    let s = setup().await;
    let r = initialize(&s, "private", &token(ISSUER, "alice")).await;
    assert_eq!(r.status(), 200);
    let r = initialize(&s, "private", &token(ISSUER_B, "alice")).await;
    assert_eq!(r.status(), 403);
    // B is not trusted for groups: its `admins` claim does not count.
    assert_eq!(
        initialize(&s, "admins", &token(ISSUER, "carol"))
            .await
            .status(),
        200
    );
    assert_eq!(
        initialize(&s, "admins", &token(ISSUER_B, "carol"))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn a_session_opened_by_one_issuers_alice_is_not_anothers() {
    let s = setup().await;
    let a = token(ISSUER, "alice");
    let r = initialize(&s, "everyone", &a).await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let url = format!("http://{}/v/everyone/mcp", s.gw.addr);
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let ok = post(
        &url,
        list,
        &[("authorization", &bearer(&a)), ("mcp-session-id", &sid)],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let b = token(ISSUER_B, "alice");
    let r = post(
        &url,
        list,
        &[("authorization", &bearer(&b)), ("mcp-session-id", &sid)],
    )
    .await;
    assert_eq!(r.status(), 404, "B's alice cannot use A's alice's session");
    // Nor can the API key whose subject is also alice.
    let r = post(
        &url,
        list,
        &[
            ("authorization", &bearer(API_KEY)),
            ("mcp-session-id", &sid),
        ],
    )
    .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn per_user_credentials_are_keyed_by_issuer_and_subject() {
    let s = setup().await;
    let url = format!("http://{}/peruser/mcp", s.gw.addr);
    post(
        &url,
        PING,
        &[("authorization", &bearer(&token(ISSUER, "alice")))],
    )
    .await;
    // Not `last_headers`: the gateway's discovery of this upstream may land after the call.
    let seen = s.demo.recent_authorization();
    assert!(
        seen.iter().any(|v| v == "Bearer a-alice-gh-token"),
        "{seen:?}"
    );
    let r = post(
        &url,
        PING,
        &[("authorization", &bearer(&token(ISSUER_B, "alice")))],
    )
    .await;
    assert_error(
        r,
        403,
        -32000,
        "\"https://partner.test#alice\" has no \"github\" credential",
    )
    .await;
}

#[tokio::test]
async fn the_signed_identity_names_the_original_issuer() {
    let s = setup().await;
    let url = format!("http://{}/signed/mcp", s.gw.addr);
    let mut subs = Vec::new();
    for issuer in [ISSUER, ISSUER_B] {
        post(
            &url,
            PING,
            &[("authorization", &bearer(&token(issuer, "alice")))],
        )
        .await;
        // The identity minted for this call: the newest signed token naming a subject
        // issuer (the gateway's own discovery requests may come after the call).
        let claims: Value = s
            .demo
            .recent_authorization()
            .iter()
            .rev()
            .filter_map(|v| v.strip_prefix("Bearer "))
            .filter_map(|jwt| jwt.split('.').nth(1))
            .filter_map(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .find(|c| c.get("subject_issuer").is_some())
            .expect("a signed identity reached the upstream");
        assert_eq!(claims["subject_issuer"], issuer, "{claims}");
        assert_eq!(claims["sub"], format!("{issuer}#alice"), "{claims}");
        if issuer == ISSUER_B {
            assert_eq!(claims["groups"], json!([]), "B is not trusted for groups");
        } else {
            assert_eq!(claims["groups"], json!(["admins"]));
        }
        subs.push(claims["sub"].clone());
    }
    assert_ne!(subs[0], subs[1]);
}

#[tokio::test]
async fn passthrough_never_forwards_an_api_key() {
    let s = setup().await;
    let url = format!("http://{}/pass/mcp", s.gw.addr);
    // An API key as the bearer token: refused, nothing sent.
    let r = post(&url, PING, &[("authorization", &bearer(API_KEY))]).await;
    assert_error(r, 403, -32000, "API keys are never forwarded").await;
    // An API key in its own header: refused too.
    let r = post(&url, PING, &[("x-api-key", API_KEY)]).await;
    assert_error(r, 403, -32000, "API keys are never forwarded").await;
    assert!(
        s.recorded.lock().unwrap().is_empty(),
        "upstream never called"
    );

    // A user's JWT with an agent's API key next to it: the JWT goes, the key does not.
    let t = token(ISSUER, "alice");
    let r = post(
        &url,
        PING,
        &[("authorization", &bearer(&t)), ("x-api-key", API_KEY)],
    )
    .await;
    assert_eq!(r.status(), 200);
    let recorded = s.recorded.lock().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["authorization"], bearer(&t).as_str());
    assert!(recorded[0].get("x-api-key").is_none(), "{:?}", recorded[0]);
    let all: String = recorded[0]
        .values()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    assert!(!all.contains(API_KEY), "the key appears in no header");
}
