//! [`Clock`]: wall-clock seconds for approval expiry, with an offset tests can advance so
//! expiry is tested without sleeping.
//!
//! Wall clock, not `Instant`: approvals are shared through Redis between replicas, and
//! `expiresAt` is shown to people; both need a time every process agrees on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, plus whatever [`Clock::advance`] added.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicU64,
}

impl Clock {
    pub fn now(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        wall.saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Move this clock forward (tests: expire approvals without waiting).
    pub fn advance(&self, by: Duration) {
        self.offset.fetch_add(by.as_secs(), Ordering::Relaxed);
    }
}

/// `secs` since the epoch as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub fn rfc3339(secs: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_and_formats_are_utc() {
        let c = Clock::default();
        let before = c.now();
        c.advance(Duration::from_secs(3600));
        assert!(c.now() >= before + 3600);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
