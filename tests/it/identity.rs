//! Identity propagation end to end: a real MCP upstream (rmcp) records the headers it sees.
//! It never sees the client's token (unless passthrough) and sees exactly the right static,
//! per-user, signed or exchanged credential; failures are clear errors and nothing is sent.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::tokens::*;
use crate::common::*;
use mcp_gateway::vault::{Secret, StaticKek, Vault};
use serde_json::{json, Value};

const HMAC: &[u8] = b"identity-test-hmac-secret-0123456789";
const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

/// A token endpoint (RFC 8693) run by the test: records each form it receives.
#[derive(Clone, Default)]
struct TokenEndpoint {
    forms: Arc<Mutex<Vec<(String, String)>>>, // (authorization header, form body)
}

async fn token_endpoint(status: u16) -> (TokenEndpoint, String) {
    let ep = TokenEndpoint::default();
    let forms = ep.forms.clone();
    let router = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let forms = forms.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let refresh = body.contains("grant_type=refresh_token");
                forms.lock().unwrap().push((auth, body));
                let answer = if refresh {
                    json!({"access_token": "refreshed-access", "refresh_token": "rotated-refresh",
                           "token_type": "Bearer", "expires_in": 3600})
                } else {
                    json!({
                        "access_token": "exchanged-for-user",
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "token_type": "Bearer", "expires_in": 300
                    })
                };
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    axum::Json(answer),
                )
            }
        }),
    );
    let addr = raw_upstream(router).await;
    (ep, format!("http://{addr}/token"))
}

struct Setup {
    demo: demo::DemoServer,
    gw: Gateway,
    _dir: tempfile::TempDir,
}

/// A gateway with one route per propagation mode, all in front of the same demo server.
async fn setup(
    vault_tweak: impl FnOnce(&mut Vault, &StaticKek),
    token_url: &str,
    upstream401: Option<&str>,
) -> Setup {
    let demo = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(p("hmac"), HMAC).unwrap();
    std::fs::write(p("static-token"), "svc-static-token\n").unwrap();
    std::fs::write(p("client-secret"), "s3cret").unwrap();
    let kek = StaticKek::generate().unwrap();
    std::fs::write(p("kek"), kek.to_base64().expose()).unwrap();
    let mut vault = Vault::new();
    vault
        .set(
            "github",
            Some("alice"),
            Secret::from("alice-gh-token".to_string()),
            &kek,
        )
        .unwrap();
    let rng = ring::rand::SystemRandom::new();
    let signing = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    vault
        .set(
            "gateway-signing",
            None,
            Secret::new(signing.as_ref().to_vec()),
            &kek,
        )
        .unwrap();
    let oauth = |access: &str, refresh: Option<&str>, expires_in: u64| {
        let mut v = json!({"access_token": access, "expires_at": now() + expires_in});
        if let Some(r) = refresh {
            v["refresh_token"] = json!(r);
        }
        Secret::new(v.to_string().into_bytes())
    };
    vault
        .set(
            "crm",
            Some("alice"),
            oauth("old-access", Some("old-refresh"), 5),
            &kek,
        )
        .unwrap();
    vault
        .set("crm", Some("dave"), oauth("dave-access", None, 3600), &kek)
        .unwrap();
    vault_tweak(&mut vault, &kek);
    vault.save(Path::new(&p("vault.json"))).unwrap();

    let up = demo.url();
    let with_auth = |name: &str, url: &str, auth| Upstream::new(name, url).auth(auth);
    let per_user = || UpstreamAuth::new(PropagationMode::PerUser).credential("github");
    let upstreams = [
        Upstream::new("none", &up),
        with_auth(
            "static",
            &up,
            UpstreamAuth::new(PropagationMode::Static).secret(SecretRef::File(p("static-token"))),
        ),
        with_auth("peruser", &up, per_user()),
        with_auth(
            "signed",
            &up,
            UpstreamAuth::new(PropagationMode::SignedIdentity)
                .signing_key(SecretRef::vault("gateway-signing"))
                .ttl(Duration::from_secs(60)),
        ),
        with_auth(
            "exchange",
            &up,
            UpstreamAuth::new(PropagationMode::TokenExchange)
                .token_exchange(
                    token_url,
                    "mcp-gateway",
                    SecretRef::File(p("client-secret")),
                )
                .audience("https://internal.test")
                .scopes(&["internal.read"]),
        ),
        with_auth("pass", &up, UpstreamAuth::new(PropagationMode::Passthrough)),
        with_auth("refused", upstream401.unwrap_or(&up), per_user()),
        with_auth(
            "oauth",
            &up,
            UpstreamAuth::new(PropagationMode::PerUser)
                .credential("crm")
                .oauth_refresh(token_url, "gw-client", Duration::from_secs(60)),
        ),
    ];
    // One route per upstream: /NAME/mcp.
    let mut listener = Listener::new();
    let mut config = Config::new();
    for u in upstreams {
        listener = listener.route(&format!("/{}/mcp", u.name()), u.name());
        config = config.upstream(u);
    }
    let yaml = config
        .listener(listener)
        .auth(Auth::new(RESOURCE).api_key_header("x-api-key").jwt(
            Jwt::test_issuer(JwtKey::hs256(SecretRef::File(p("hmac")))).audiences(&[AUDIENCE]),
        ))
        .vault(Path::new(&p("vault.json")), SecretRef::File(p("kek")))
        .yaml();
    let gw = start_gateway(&yaml).await;
    Setup {
        demo,
        gw,
        _dir: dir,
    }
}

fn user_token(sub: &str) -> String {
    hs256(&claims(sub), HMAC, None)
}

async fn call(s: &Setup, route: &str, sub: &str) -> reqwest::Response {
    let bearer = format!("Bearer {}", user_token(sub));
    post(
        &format!("http://{}/{route}/mcp", s.gw.addr),
        PING,
        &[("authorization", &bearer)],
    )
    .await
}

fn seen_auth(s: &Setup) -> Option<String> {
    s.demo.last_headers().and_then(|h| {
        h.get("authorization")
            .map(|v| v.to_str().unwrap().to_string())
    })
}

#[tokio::test]
async fn none_and_static_never_forward_the_client_token() {
    let s = setup(|_, _| {}, "http://127.0.0.1:9/token", None).await;
    call(&s, "none", "alice").await;
    assert_eq!(s.demo.requests(), 1);
    assert_eq!(seen_auth(&s), None);
    call(&s, "static", "alice").await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer svc-static-token"));
    let n = metric(
        &s.gw,
        "mcp_gateway_credential_releases_total",
        &["mode=\"static\"", "upstream=\"static\""],
    )
    .await;
    assert_eq!(n, Some(1.0));
}

#[tokio::test]
async fn per_user_sends_exactly_the_callers_credential_or_refuses() {
    let s = setup(|_, _| {}, "http://127.0.0.1:9/token", None).await;
    call(&s, "peruser", "alice").await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer alice-gh-token"));
    let before = s.demo.requests();
    let r = call(&s, "peruser", "bob").await;
    assert_error(r, 403, -32000, "\"bob\" has no \"github\" credential").await;
    assert_eq!(
        s.demo.requests(),
        before,
        "bob's call never reached the upstream"
    );
}

#[tokio::test]
async fn kill_switch_refuses_a_disabled_credential_set() {
    let s = setup(
        |v, _| {
            v.disable("github").unwrap();
        },
        "http://127.0.0.1:9/token",
        None,
    )
    .await;
    let r = call(&s, "peruser", "alice").await;
    assert_error(r, 403, -32000, "disabled by the operator").await;
    assert_eq!(s.demo.requests(), 0);
}

#[tokio::test]
async fn signed_identity_is_a_short_lived_jwt_verifiable_with_the_admin_jwks() {
    let s = setup(|_, _| {}, "http://127.0.0.1:9/token", None).await;
    let api_less = call(&s, "signed", "alice").await;
    drop(api_less);
    let token = seen_auth(&s)
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(s.gw.admin_url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("signing key published");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&[s.demo.url()]);
    v.set_issuer(&[RESOURCE]);
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .expect("valid signed identity");
    assert_eq!(data.claims["sub"], "alice");
    assert_eq!(data.claims["groups"], json!(["support"]));
    let ttl = data.claims["exp"].as_u64().unwrap() - data.claims["iat"].as_u64().unwrap();
    assert_eq!(ttl, 60);
}

#[tokio::test]
async fn token_exchange_sends_the_exchanged_token_and_caches_it() {
    let (ep, url) = token_endpoint(200).await;
    let s = setup(|_, _| {}, &url, None).await;
    // The same user token twice (the exchange cache is keyed by the subject token).
    let bearer = format!("Bearer {}", user_token("alice"));
    let exchange = format!("http://{}/exchange/mcp", s.gw.addr);
    post(&exchange, PING, &[("authorization", &bearer)]).await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer exchanged-for-user"));
    post(&exchange, PING, &[("authorization", &bearer)]).await;
    let forms = ep.forms.lock().unwrap().clone();
    assert_eq!(forms.len(), 1, "second call served from the exchange cache");
    let (auth, form) = &forms[0];
    assert!(
        auth.starts_with("Basic "),
        "client authenticates with its secret"
    );
    let pairs: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        pairs["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(pairs["audience"], "https://internal.test");
    assert_eq!(pairs["scope"], "internal.read");
    let sub = jsonwebtoken::dangerous::insecure_decode::<Value>(&pairs["subject_token"]);
    assert_eq!(
        sub.unwrap().claims["sub"],
        "alice",
        "the user's own token is the subject token"
    );
}

#[tokio::test]
async fn a_failed_exchange_is_an_error_and_no_call_is_made() {
    let (_ep, url) = token_endpoint(500).await;
    let s = setup(|_, _| {}, &url, None).await;
    let r = call(&s, "exchange", "alice").await;
    assert_error(
        r,
        502,
        -32000,
        "token exchange for upstream \"exchange\" failed: token endpoint answered HTTP 500",
    )
    .await;
    assert_eq!(s.demo.requests(), 0);
}

#[tokio::test]
async fn passthrough_forwards_the_client_token() {
    let s = setup(|_, _| {}, "http://127.0.0.1:9/token", None).await;
    let bearer = format!("Bearer {}", user_token("alice"));
    post(
        &format!("http://{}/pass/mcp", s.gw.addr),
        PING,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(seen_auth(&s), Some(bearer));
}

#[tokio::test]
async fn upstream_401_on_a_user_credential_names_whom_to_reauthorise() {
    let addr = raw_upstream(axum::Router::new().route(
        "/mcp",
        axum::routing::post(|| async { (axum::http::StatusCode::UNAUTHORIZED, "bad credentials") }),
    ))
    .await;
    let up = format!("http://{addr}/mcp");
    let s = setup(|_, _| {}, "http://127.0.0.1:9/token", Some(&up)).await;
    let r = call(&s, "refused", "alice").await;
    assert!(r.headers().get("www-authenticate").is_none());
    assert_error(
        r,
        403,
        -32000,
        "upstream \"refused\" rejected the credentials of \"alice\"; re-authorise refused",
    )
    .await;
}

/// `mcp-gateway vault set` changes the file; a reload (SIGHUP in production) picks it up,
/// and a broken file is refused while the running configuration keeps serving.
#[tokio::test]
async fn reload_picks_up_vault_changes_and_refuses_broken_config() {
    let s = setup(|_, _| {}, "http://127.0.0.1:9/token", None).await;
    let r = call(&s, "peruser", "bob").await;
    assert_eq!(r.status(), 403);

    let dir = s._dir.path();
    let kek_ref: mcp_gateway::vault::SecretRef = format!("file:{}", dir.join("kek").display())
        .parse()
        .unwrap();
    let kek = mcp_gateway::vault::kek_from_ref(&kek_ref).unwrap();
    let vault_path = dir.join("vault.json");
    let mut v = Vault::open(&vault_path, &kek).unwrap();
    v.set(
        "github",
        Some("bob"),
        Secret::from("bob-gh-token".to_string()),
        &kek,
    )
    .unwrap();
    v.save(&vault_path).unwrap();

    let conf = dir.join("gw.yaml");
    std::fs::write(&conf, "listeners: [").unwrap();
    let err = s.gw.shared.reload(&conf).unwrap_err().to_string();
    assert!(err.contains("gw.yaml"), "{err}");
    assert_eq!(
        call(&s, "peruser", "bob").await.status(),
        403,
        "old config still serving"
    );

    std::fs::write(&conf, &s.gw.yaml).unwrap();
    s.gw.shared.reload(&conf).unwrap();
    call(&s, "peruser", "bob").await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer bob-gh-token"));
}

#[tokio::test]
async fn the_acting_agent_travels_in_the_signed_identity() {
    let s = setup(|_, _| {}, "http://127.0.0.1:9/token", None).await;
    let mut c = claims("alice");
    c["act"] = json!({"sub": "agent-7"});
    let bearer = format!("Bearer {}", hs256(&c, HMAC, None));
    post(
        &format!("http://{}/signed/mcp", s.gw.addr),
        PING,
        &[("authorization", &bearer)],
    )
    .await;
    let token = seen_auth(&s)
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["act"]["sub"], "agent-7");
}

#[tokio::test]
async fn expiring_oauth_credentials_are_refreshed_and_written_back() {
    let (ep, url) = token_endpoint(200).await;
    let s = setup(|_, _| {}, &url, None).await;
    call(&s, "oauth", "dave").await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer dave-access"));
    assert!(
        ep.forms.lock().unwrap().is_empty(),
        "a fresh credential is not refreshed"
    );

    call(&s, "oauth", "alice").await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer refreshed-access"));
    call(&s, "oauth", "alice").await;
    let forms = ep.forms.lock().unwrap().clone();
    assert_eq!(forms.len(), 1, "refreshed once, then served from memory");
    let pairs: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(forms[0].1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(pairs["grant_type"], "refresh_token");
    assert_eq!(pairs["refresh_token"], "old-refresh");
    assert_eq!(pairs["client_id"], "gw-client");

    // The rotated refresh token was written back to the vault file.
    let dir = s._dir.path();
    let kek_ref: mcp_gateway::vault::SecretRef = format!("file:{}", dir.join("kek").display())
        .parse()
        .unwrap();
    let kek = mcp_gateway::vault::kek_from_ref(&kek_ref).unwrap();
    let v = Vault::open(&dir.join("vault.json"), &kek).unwrap();
    let stored: Value =
        serde_json::from_slice(v.get("crm", Some("alice")).unwrap().expose()).unwrap();
    assert_eq!(stored["access_token"], "refreshed-access");
    assert_eq!(stored["refresh_token"], "rotated-refresh");
    assert!(stored["expires_at"].as_u64().unwrap() > now() + 3000);
}

#[tokio::test]
async fn a_failed_refresh_asks_to_reauthorise_and_sends_nothing() {
    let (_ep, url) = token_endpoint(400).await;
    let s = setup(|_, _| {}, &url, None).await;
    let r = call(&s, "oauth", "alice").await;
    assert_error(
        r,
        403,
        -32000,
        "refreshing \"alice\"'s \"crm\" credential failed (token endpoint answered HTTP 400); re-authorise oauth",
    )
    .await;
    assert_eq!(s.demo.requests(), 0);
}
