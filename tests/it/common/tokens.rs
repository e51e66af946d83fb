//! Test identity provider: keys and token minting for auth tests.
#![allow(unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://idp.test";
pub const RESOURCE: &str = "https://mcp.test";
pub const AUDIENCE: &str = "https://mcp.test/mcp";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

/// Standard claims for `sub`, valid for 5 minutes.
pub fn claims(sub: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "name": format!("{sub} example"),
        "exp": now() + 300, "iat": now(), "groups": ["support"], "scope": "mcp:tools other",
    })
}

/// RS256 with the fixture key (kid rsa1, published in tests/fixtures/keys/rsa-jwks.json).
pub fn rs256(claims: &Value) -> String {
    let pem = std::fs::read(fixture("rsa-private.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("rsa1".into());
    jsonwebtoken::encode(&h, claims, &key).unwrap()
}

pub fn hs256(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// An `alg: none` token (unsigned).
pub fn unsigned(claims: &Value, kid: &str) -> String {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        b.encode(header.to_string()),
        b.encode(claims.to_string())
    )
}

/// An Ed25519 signing key with its public JWK.
#[derive(Clone)]
pub struct EdKey {
    pub kid: String,
    pkcs8: Vec<u8>,
    pub jwk: Value,
}

impl EdKey {
    pub fn generate(kid: &str) -> EdKey {
        use ring::signature::KeyPair as _;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        EdKey {
            kid: kid.into(),
            pkcs8,
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid, "x": x}),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
    }
}

/// A JWKS served over HTTP by the test, whose key set can be swapped (rotation).
#[derive(Clone)]
pub struct JwksServer {
    pub url: String,
    keys: Arc<Mutex<Value>>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    pub async fn start(keys: Vec<Value>) -> JwksServer {
        let state = Arc::new(Mutex::new(json!({ "keys": keys })));
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, h) = (state.clone(), hits.clone());
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let s = s.clone();
                let h = h.clone();
                async move {
                    h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let v = s.lock().unwrap().clone();
                    axum::Json(v)
                }
            }),
        );
        let addr = super::raw_upstream(router).await;
        JwksServer {
            url: format!("http://{addr}/jwks"),
            keys: state,
            hits,
        }
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.keys.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// SHA-256 hex of an API key, as configured.
pub fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
