//! Verified-token cache: a hit skips the signature check.
//!
//! Keyed by SHA-256 of (route audience, token), never the token itself. An entry is valid
//! until the token's `exp` and only for the key-set generation it was verified under, so a
//! key removed from a JWKS (rotation) invalidates every token it had verified. Bounded by
//! [`BoundedMap`]'s rule: when full, expired entries go first, then the one closest to
//! expiry. (Entries of an older key generation are misses, and leave by the same rule.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::Principal;
use crate::store::BoundedMap;

/// Cache key: SHA-256 over the audience and the token.
pub type CacheKey = crate::digest::Digest;

/// Digest of the audience and token: the cache key (the cache never holds tokens).
pub fn cache_key(audience: &str, token: &str) -> CacheKey {
    crate::digest::keyed(&[audience.as_bytes(), token.as_bytes()])
}

/// A bounded map from token hash to verified principal (and the key generation it was
/// verified under), until the token's `exp`.
#[derive(Debug)]
pub struct TokenCache {
    map: BoundedMap<CacheKey, (Arc<Principal>, u64)>,
    hits: AtomicU64,
    misses: AtomicU64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenCache {
    pub fn new(max: usize) -> TokenCache {
        TokenCache {
            map: BoundedMap::new(max),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached principal, if the entry is unexpired and from the current key generation.
    pub fn get(&self, key: &CacheKey, generation: u64) -> Option<Arc<Principal>> {
        let found = self
            .map
            .read(key, now(), |(p, g)| (*g == generation).then(|| p.clone()))
            .flatten();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Remember a verified principal until `exp`.
    pub fn insert(&self, key: CacheKey, principal: Arc<Principal>, exp: u64, generation: u64) {
        self.map.insert(key, (principal, generation), exp, now());
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn p(s: &str) -> Arc<Principal> {
        Arc::new(Principal {
            issuer: "https://idp.test".into(),
            subject: s.into(),
            name: None,
            groups: vec![],
            roles: vec![],
            scopes: vec![],
            agent: None,
            method: AuthMethod::Jwt,
            expires_at: None,
            token: None,
        })
    }

    #[test]
    fn hit_until_expiry_and_only_in_the_same_generation() {
        let c = TokenCache::new(10);
        let k = cache_key("aud", "tok");
        c.insert(k, p("a"), now() + 60, 1);
        assert_eq!(
            c.get(&k, 1).map(|p| p.subject.clone()).as_deref(),
            Some("a")
        );
        assert!(c.get(&k, 2).is_none(), "key rotation invalidates");
        c.insert(k, p("a"), now().saturating_sub(1), 1);
        assert!(c.get(&k, 1).is_none(), "expired");
    }

    #[test]
    fn audience_is_part_of_the_key() {
        assert_ne!(cache_key("a", "t"), cache_key("b", "t"));
        assert_ne!(cache_key("a", "bt"), cache_key("ab", "t"));
    }

    #[test]
    fn bounded() {
        let c = TokenCache::new(3);
        for i in 0..10 {
            c.insert(cache_key("a", &i.to_string()), p("x"), now() + 60, 1);
        }
        assert_eq!(c.len(), 3);
    }
}
