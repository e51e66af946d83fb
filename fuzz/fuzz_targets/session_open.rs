//! The session-token opener on hostile input: arbitrary strings never panic and never open,
//! and a valid token with any byte changed never opens (AES-GCM authenticity, and the parser
//! around it: prefix, key id, base64).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcp_gateway::session::{SessionClaims, SessionKeys};

struct Fixture {
    keys: SessionKeys,
    token: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys = SessionKeys::random().expect("random session key");
        let claims = SessionClaims {
            server: "support".into(),
            issuer: "https://idp.example.com".into(),
            subject: "alice".into(),
            expires: u64::MAX / 2,
            caps: 0,
        };
        let token = keys.seal(&claims).expect("seal");
        Fixture { keys, token }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = 1_000;
    // Arbitrary input as a token.
    if let Ok(s) = std::str::from_utf8(data) {
        if s != f.token {
            assert!(f.keys.open(s, now).is_none(), "a forged token opened");
        }
    }
    // A valid token with bytes flipped at fuzzer-chosen places.
    let mut t = f.token.clone().into_bytes();
    for pair in data.chunks(2) {
        let (at, x) = (pair[0] as usize, *pair.get(1).unwrap_or(&1));
        if let Some(b) = t.get_mut(at % f.token.len()) {
            *b ^= x.max(1);
        }
    }
    if let Ok(s) = std::str::from_utf8(&t) {
        if s != f.token {
            assert!(f.keys.open(s, now).is_none(), "a tampered token opened: {s}");
        }
    }
    assert!(f.keys.open(&f.token, now).is_some(), "the valid token still opens");
});
