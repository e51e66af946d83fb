//! Per-replica state behind small store traits, so a shared backend (Redis, a file) is a
//! second implementation rather than a rewrite: the same shape as the vault's `KeyProvider`.
//!
//! - [`BoundedMap`]: the one bounded, expiring map every in-memory table is built on, with
//!   one eviction rule (expired entries first, then the entry closest to expiry, ties to the
//!   oldest insert; or refuse, for tables that must not forget). The verified-token cache,
//!   the opened-session cache, the identity caches and the catalog caches use it directly.
//! - [`RevocationStore`] ([`MemoryRevocations`]): gateway sessions ended by DELETE.
//! - [`UpstreamSessionStore`] ([`MemoryUpstreamSessions`]): upstream sessions opened for
//!   gateway sessions.
//!
//! - [`redis::RedisStore`]: the shared backend (`redis` section): pooled connections,
//!   bounded waits, a fail-fast back-off while Redis is down.
//!
//! The traits are synchronous: they are called on every virtual-server request from code
//! that holds no await point there. A networked backend would answer from a local
//! [`BoundedMap`] and sync in the background, or these become async when one arrives.

mod bounded;
pub mod redis;
mod revocations;
mod upstream_sessions;

pub use bounded::{BoundedMap, Full};
pub use revocations::{MemoryRevocations, RevocationStore, RevocationsFull, MAX_REVOKED};
pub use upstream_sessions::{
    MemoryUpstreamSessions, UpstreamSession, UpstreamSessionStore, MAX_UPSTREAM_SESSIONS,
};
