//! The vault kill switch end to end: `vault disable NAME` + reload (SIGHUP in production)
//! refuses every kind of secret at once (a static credential, a signing key, a
//! token-exchange client secret, a JWT HMAC key), even when the rest of the reload fails and
//! the previous runtime keeps serving, and the upstream never sees the secret again.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::tokens::*;
use crate::common::*;
use mcp_gateway::vault::{Secret, StaticKek, Vault};
use serde_json::json;

const HMAC: &[u8] = b"kill-switch-test-hmac-secret-012345";
const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

struct Setup {
    demo: demo::DemoServer,
    gw: Gateway,
    dir: tempfile::TempDir,
    kek: StaticKek,
    /// Requests the token-exchange endpoint received.
    exchanges: Arc<AtomicUsize>,
}

impl Setup {
    fn vault_path(&self) -> std::path::PathBuf {
        self.dir.path().join("vault.json")
    }

    /// What `mcp-gateway vault disable NAME` does: flip the switch in the file.
    fn disable(&self, name: &str) {
        let mut v = Vault::open(&self.vault_path(), &self.kek).unwrap();
        assert!(v.disable(name).unwrap());
        v.save(&self.vault_path()).unwrap();
    }

    fn enable(&self, name: &str) {
        let mut v = Vault::open(&self.vault_path(), &self.kek).unwrap();
        assert!(v.enable(name));
        v.save(&self.vault_path()).unwrap();
    }

    /// Reload from the gateway's own configuration (what SIGHUP does).
    fn reload(&self) {
        let conf = self.dir.path().join("gw.yaml");
        std::fs::write(&conf, &self.gw.yaml).unwrap();
        self.gw.shared.reload(&conf).unwrap();
    }

    /// A reload that fails: the file does not parse, so the running runtime stays.
    fn failed_reload(&self) {
        let conf = self.dir.path().join("broken.yaml");
        std::fs::write(&conf, "listeners: [").unwrap();
        assert!(self.gw.shared.reload(&conf).is_err());
    }

    /// Call `route` and assert the request went through to the upstream (which answers a
    /// session-less ping with its own 400: what matters is that it was reached).
    async fn reaches_upstream(&self, route: &str) {
        let before = self.demo.requests();
        let r = self.call(route).await;
        assert!(
            !matches!(r.status().as_u16(), 401 | 403),
            "{route}: {}",
            r.text().await.unwrap()
        );
        assert_eq!(
            self.demo.requests(),
            before + 1,
            "{route} reached the upstream"
        );
    }

    async fn call(&self, route: &str) -> reqwest::Response {
        let bearer = format!("Bearer {}", hs256(&claims("alice"), HMAC, None));
        post(
            &format!("http://{}/{route}/mcp", self.gw.addr),
            PING,
            &[("authorization", &bearer)],
        )
        .await
    }
}

async fn setup() -> Setup {
    let demo = start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let kek = StaticKek::generate().unwrap();
    std::fs::write(dir.path().join("kek"), kek.to_base64().expose()).unwrap();
    let mut vault = Vault::new();
    let mut put = |name: &str, value: Vec<u8>| {
        vault.set(name, None, Secret::new(value), &kek).unwrap();
    };
    put("svc", b"svc-static-token".to_vec());
    put("jwt-hmac", HMAC.to_vec());
    put("xchg-secret", b"exchange-client-secret".to_vec());
    let rng = ring::rand::SystemRandom::new();
    let signing = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    put("signing", signing.as_ref().to_vec());
    vault.save(&dir.path().join("vault.json")).unwrap();

    let exchanges = Arc::new(AtomicUsize::new(0));
    let seen = exchanges.clone();
    let token_ep = raw_upstream(axum::Router::new().route(
        "/token",
        axum::routing::post(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            async {
                axum::Json(json!({"access_token": "exchanged", "token_type": "Bearer",
                                  "expires_in": 300}))
            }
        }),
    ))
    .await;

    let up = demo.url();
    let static_auth = UpstreamAuth::new(PropagationMode::Static).secret(SecretRef::vault("svc"));
    let signed = UpstreamAuth::new(PropagationMode::SignedIdentity)
        .signing_key(SecretRef::vault("signing"))
        .ttl(Duration::from_secs(60));
    let exchange = UpstreamAuth::new(PropagationMode::TokenExchange)
        .token_exchange(
            &format!("http://{token_ep}/token"),
            "mcp-gateway",
            SecretRef::vault("xchg-secret"),
        )
        .audience("https://internal.test");
    let yaml = Config::new()
        .listener(
            Listener::new()
                .route("/static/mcp", "static")
                .route("/signed/mcp", "signed")
                .route("/exchange/mcp", "exchange"),
        )
        .upstream(Upstream::new("static", &up).auth(static_auth))
        .upstream(Upstream::new("signed", &up).auth(signed))
        .upstream(Upstream::new("exchange", &up).auth(exchange))
        .auth(Auth::new(RESOURCE).jwt(
            Jwt::test_issuer(JwtKey::hs256(SecretRef::vault("jwt-hmac"))).audiences(&[AUDIENCE]),
        ))
        .vault(
            &dir.path().join("vault.json"),
            SecretRef::file(&dir.path().join("kek")),
        )
        .yaml();
    let gw = start_gateway(&yaml).await;
    Setup {
        demo,
        gw,
        dir,
        kek,
        exchanges,
    }
}

fn seen_auth(s: &Setup) -> Option<String> {
    s.demo.last_headers().and_then(|h| {
        h.get("authorization")
            .map(|v| v.to_str().unwrap().to_string())
    })
}

/// The old code kept releasing the credential when the reload failed (the old runtime
/// stayed), and a reload with a disabled `secret:` reference other than the static or
/// per-user one failed outright.
#[tokio::test]
async fn disable_then_a_failed_reload_still_refuses_a_static_credential() {
    let s = setup().await;
    s.reaches_upstream("static").await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer svc-static-token"));
    let before = s.demo.requests();

    s.disable("svc");
    s.failed_reload();
    let r = s.call("static").await;
    assert_error(
        r,
        403,
        -32000,
        "the credential set \"svc\" is disabled by the operator (kill switch)",
    )
    .await;
    assert_eq!(
        s.demo.requests(),
        before,
        "the upstream never saw the secret"
    );

    // A good reload keeps it refused, and other upstreams keep working.
    s.reload();
    assert_eq!(s.call("static").await.status(), 403);
    assert_eq!(s.demo.requests(), before);
    s.reaches_upstream("signed").await;

    // `vault enable` + reload releases it again.
    s.enable("svc");
    s.reload();
    s.reaches_upstream("static").await;
    assert_eq!(seen_auth(&s).as_deref(), Some("Bearer svc-static-token"));
}

#[tokio::test]
async fn a_disabled_signing_key_or_exchange_secret_is_refused_and_the_reload_succeeds() {
    let s = setup().await;
    s.reaches_upstream("signed").await;
    s.reaches_upstream("exchange").await;
    assert_eq!(s.exchanges.load(Ordering::SeqCst), 1);
    let before = s.demo.requests();

    s.disable("signing");
    s.reload(); // used to fail: the signing key would not resolve
    assert_error(
        s.call("signed").await,
        403,
        -32000,
        "\"signing\" is disabled by the operator",
    )
    .await;

    s.disable("xchg-secret");
    s.failed_reload();
    // A fresh subject token, so no cached exchange result could answer.
    let mut c = claims("alice");
    c["jti"] = json!("another-token");
    let bearer = format!("Bearer {}", hs256(&c, HMAC, None));
    let r = post(
        &format!("http://{}/exchange/mcp", s.gw.addr),
        PING,
        &[("authorization", &bearer)],
    )
    .await;
    assert_error(
        r,
        403,
        -32000,
        "\"xchg-secret\" is disabled by the operator",
    )
    .await;
    assert_eq!(
        s.exchanges.load(Ordering::SeqCst),
        1,
        "the client secret never went to the token endpoint"
    );
    assert_eq!(s.demo.requests(), before);
}

#[tokio::test]
async fn a_disabled_jwt_key_stops_verifying_even_cached_tokens() {
    let s = setup().await;
    let token = hs256(&claims("alice"), HMAC, None);
    let bearer = format!("Bearer {token}");
    let url = format!("http://{}/static/mcp", s.gw.addr);
    // Twice: the second answer comes from the verified-token cache.
    for _ in 0..2 {
        let r = post(&url, PING, &[("authorization", &bearer)]).await;
        assert_ne!(r.status(), 401);
    }
    s.disable("jwt-hmac");
    s.failed_reload();
    let r = post(&url, PING, &[("authorization", &bearer)]).await;
    assert_error(r, 401, -32000, "disabled by the operator (kill switch)").await;
    // After a successful reload the key is not even loaded; the answer still says why.
    s.reload();
    let r = post(&url, PING, &[("authorization", &bearer)]).await;
    assert_error(r, 401, -32000, "disabled by the operator (kill switch)").await;
}
