//! The arithmetic of limits, with no state and no clock: GCRA for rates, fixed windows for
//! budgets. Both backends apply exactly this (Redis in its Lua script, which mirrors it
//! line by line in microseconds), and the unit tests pin it at the boundaries.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per counter, the theoretical
//! arrival time `tat` of the next request at the steady rate. A request at `now` is allowed
//! when it is at most `burst - 1` emission intervals early:
//!
//! ```text
//! T = per / requests            (emission interval)
//! new_tat = max(tat, now) + T
//! allow_at = new_tat - burst·T
//! now >= allow_at  → allowed, tat := new_tat
//! otherwise        → limited, retry after allow_at - now
//! ```
//!
//! So `burst` requests pass at once, then one every `T`; a counter left alone for `burst·T`
//! is back to full. It never needs a timer or a refill task, which is why it suits Redis.

/// The answer for a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateVerdict {
    /// Allowed: store `tat`; `remaining` more may pass now; full again in `reset_ns`.
    Allowed {
        tat: u64,
        remaining: u64,
        reset_ns: u64,
    },
    /// Limited: the next request passes in `retry_ns`.
    Limited { retry_ns: u64 },
}

/// GCRA for one request at `now` on a counter whose stored arrival time is `tat` (0: new).
pub(crate) fn rate(tat: u64, now: u64, emission_ns: u64, burst: u64) -> RateVerdict {
    let t = emission_ns.max(1);
    let new_tat = tat.max(now).saturating_add(t);
    let window = t.saturating_mul(burst.max(1));
    let allow_at = new_tat.saturating_sub(window);
    if now < allow_at {
        return RateVerdict::Limited {
            retry_ns: allow_at - now,
        };
    }
    let used = new_tat - now; // ≤ window
    RateVerdict::Allowed {
        tat: new_tat,
        remaining: (window - used) / t,
        reset_ns: used,
    }
}

/// What is left of a rate counter at `now` without using it: (remaining, full again in).
pub(crate) fn rate_left(tat: u64, now: u64, emission_ns: u64, burst: u64) -> (u64, u64) {
    let t = emission_ns.max(1);
    let window = t.saturating_mul(burst.max(1));
    let used = tat.saturating_sub(now).min(window);
    ((window - used) / t, used)
}

/// The fixed window `now` falls in: (index, nanoseconds until it ends). Windows start at
/// multiples of `per_ns` since the epoch.
pub(crate) fn window(now: u64, per_ns: u64) -> (u64, u64) {
    let per = per_ns.max(1);
    let index = now / per;
    let end = (index + 1).saturating_mul(per);
    (index, end.saturating_sub(now).max(1))
}

/// Whether a call that needs `need` units fits a budget of `units` of which `spent` are
/// used. A free call (`need` 0) always fits; a metered call asks for 1 (some budget left).
pub(crate) fn budget_fits(spent: u64, units: u64, need: u64) -> bool {
    need == 0 || spent.saturating_add(need) <= units
}

/// Whole seconds to wait, rounded up (`Retry-After` and `RateLimit`'s `t` are integers;
/// rounding down would send the client back too early).
pub(crate) fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

/// Approximate tokens of a response of `bytes` bytes: one per four bytes, rounded up (the
/// usual rule of thumb for English text and JSON under BPE tokenizers).
pub(crate) fn approx_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Runs `n` requests at `now`, returning how many were allowed and the final tat.
    fn burst_at(mut tat: u64, now: u64, t: u64, burst: u64, n: u64) -> (u64, u64) {
        let mut ok = 0;
        for _ in 0..n {
            if let RateVerdict::Allowed { tat: next, .. } = rate(tat, now, t, burst) {
                tat = next;
                ok += 1;
            }
        }
        (ok, tat)
    }

    #[test]
    fn burst_requests_pass_at_once_then_one_per_interval() {
        // 10 per minute, burst 10: T = 6 s.
        let (t, now) = (6 * S, 1_000 * S);
        let (ok, tat) = burst_at(0, now, t, 10, 10);
        assert_eq!(ok, 10);
        assert_eq!(
            rate(tat, now, t, 10),
            RateVerdict::Limited { retry_ns: 6 * S }
        );
        // One nanosecond short of the interval: still limited, by exactly that nanosecond.
        assert_eq!(
            rate(tat, now + 6 * S - 1, t, 10),
            RateVerdict::Limited { retry_ns: 1 }
        );
        match rate(tat, now + 6 * S, t, 10) {
            RateVerdict::Allowed { remaining, .. } => assert_eq!(remaining, 0),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn remaining_and_reset_count_down_and_refill() {
        let (t, now) = (S, 50 * S);
        let RateVerdict::Allowed {
            tat,
            remaining,
            reset_ns,
        } = rate(0, now, t, 3)
        else {
            panic!()
        };
        assert_eq!((remaining, reset_ns), (2, S));
        assert_eq!(rate_left(tat, now, t, 3), (2, S));
        assert_eq!(rate_left(tat, now + S, t, 3), (3, 0));
        assert_eq!(rate_left(0, now, t, 3), (3, 0));
    }

    #[test]
    fn a_burst_smaller_than_the_rate_smooths_it() {
        // 100 per 100 s with burst 1: one per second, never two at once.
        let (ok, _) = burst_at(0, 10 * S, S, 1, 5);
        assert_eq!(ok, 1);
    }

    #[test]
    fn windows_align_to_the_epoch() {
        assert_eq!(window(3_600 * S + 5, 3_600 * S), (1, 3_600 * S - 5));
        assert_eq!(window(0, 10), (0, 10));
        assert!(budget_fits(9, 10, 1));
        assert!(!budget_fits(10, 10, 1));
        assert!(budget_fits(10, 10, 0));
        assert!(!budget_fits(8, 10, 3));
    }

    #[test]
    fn seconds_round_up_and_tokens_are_bytes_over_four() {
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(S), 1);
        assert_eq!(ceil_secs(S + 1), 2);
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(approx_tokens(0), 0);
        assert_eq!(approx_tokens(5), 2);
        assert_eq!(approx_tokens(400), 100);
    }
}
