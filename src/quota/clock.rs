//! The time quotas are computed in: nanoseconds since the Unix epoch, from an injectable
//! [`Clock`]. Wall-clock time rather than a monotonic one because Redis-backed limits share
//! their state between replicas, which must agree on `now` (keep them NTP-synchronised: a
//! replica whose clock is `d` ahead lets a caller `d` early). Tests use [`Clock::manual`]
//! and move it by hand, so no test sleeps to see a window pass.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A source of `now`. Cheap to clone and to read (no syscall beyond the system clock's).
#[derive(Debug, Clone, Default)]
pub struct Clock(Source);

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// A clock that stands at `start` (nanoseconds since the epoch) until moved with
    /// [`Clock::advance`] or [`Clock::set`]; clones share it.
    pub fn manual(start: u64) -> Clock {
        Clock(Source::Manual(Arc::new(AtomicU64::new(start))))
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_ns(&self) -> u64 {
        match &self.0 {
            Source::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64),
            Source::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Move a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(t) = &self.0 {
            t.fetch_add(
                by.as_nanos().min(u128::from(u64::MAX)) as u64,
                Ordering::Relaxed,
            );
        }
    }

    /// Set a manual clock (no effect on the system clock).
    pub fn set(&self, ns: u64) {
        if let Source::Manual(t) = &self.0 {
            t.store(ns, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = Clock::manual(1_000);
        let d = c.clone();
        assert_eq!(c.now_ns(), 1_000);
        d.advance(Duration::from_nanos(500));
        assert_eq!(c.now_ns(), 1_500);
        c.set(7);
        assert_eq!(d.now_ns(), 7);
        assert!(Clock::system().now_ns() > 1_600_000_000_000_000_000);
    }
}
