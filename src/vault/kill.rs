//! [`KillSwitch`]: the set of disabled credential names, checked when a secret is **used**,
//! not only when the configuration is built.
//!
//! Every runtime component that holds a value from `secret:NAME` remembers `NAME` and asks
//! the kill switch before using the value. The gateway owns one kill switch for its whole
//! life; a reload re-reads the vault file's disabled list into it *before* it rebuilds the
//! runtime, so `mcp-gateway vault disable NAME` plus SIGHUP refuses the credential at once,
//! even when the rest of the reload fails and the previous runtime keeps serving.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

/// Names of disabled credential sets, shared by every runtime of one gateway.
#[derive(Debug, Default)]
pub struct KillSwitch {
    disabled: ArcSwap<BTreeSet<String>>,
    /// Bumped on every change, so caches of things a secret vouched for (verified tokens)
    /// can tell they are stale.
    generation: AtomicU64,
}

impl KillSwitch {
    /// A kill switch with nothing disabled.
    pub fn new() -> KillSwitch {
        KillSwitch::default()
    }

    /// Whether credential set `name` is disabled.
    pub fn is_disabled(&self, name: &str) -> bool {
        self.disabled.load().contains(name)
    }

    /// The first of `names` that is disabled, if any.
    pub fn first_disabled<'a>(&self, names: &'a [String]) -> Option<&'a str> {
        let set = self.disabled.load();
        names
            .iter()
            .find(|n| set.contains(n.as_str()))
            .map(String::as_str)
    }

    /// Replaces the disabled set (the vault file's list and `vault.disabled` together).
    pub fn set(&self, names: BTreeSet<String>) {
        if **self.disabled.load() != names {
            if let Some(added) = names.difference(&self.disabled.load()).next() {
                log::warn!("kill switch: credential set {added:?} is now disabled");
            }
            self.disabled.store(std::sync::Arc::new(names));
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Changes whenever the disabled set changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_and_bumps_the_generation_only_on_change() {
        let k = KillSwitch::new();
        assert!(!k.is_disabled("github"));
        let g0 = k.generation();
        k.set(["github".to_string()].into());
        assert!(k.is_disabled("github"));
        let g1 = k.generation();
        assert_ne!(g0, g1);
        k.set(["github".to_string()].into());
        assert_eq!(k.generation(), g1, "same set: no change");
        let deps = vec!["crm".to_string(), "github".to_string()];
        assert_eq!(k.first_disabled(&deps), Some("github"));
        k.set(BTreeSet::new());
        assert_eq!(k.first_disabled(&deps), None);
        assert_ne!(k.generation(), g1);
    }
}
