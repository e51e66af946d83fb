//! The MCP protocol revisions the gateway speaks, in one place.
//!
//! Two eras: the handshake ("legacy") revisions [`SUPPORTED`], reached through `initialize`
//! and a session, and the stateless ("modern") revisions [`MODERN`], where every request
//! carries its revision in `_meta` (2026-07-28). A modern revision is never negotiated
//! through `initialize`: that handshake does not exist there, and a client offering it gets
//! [`PREFERRED`], as for any revision it does not know.
//!
//! Decisions that hang on them: what a virtual server answers a client's `initialize` with
//! ([`negotiate`]), what `server/discover` and a -32022 list ([`MODERN`], [`ALL`]), and the
//! revision the gateway's own requests to upstreams carry ([`PREFERRED`]: the registry
//! client's `initialize` and `MCP-Protocol-Version`, and the header the proxy sets on
//! forwarded requests). Pure values, so the rules are unit-tested here.

/// Handshake-era revisions a virtual server accepts in `initialize`, oldest first.
pub const SUPPORTED: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// Stateless revisions a virtual server accepts per request (`_meta` protocol version).
pub const MODERN: [&str; 1] = ["2026-07-28"];

/// Every revision a virtual server speaks, both eras, oldest first: the `supported` list of
/// an unsupported-revision error, so a dual-era client can pick its era.
pub const ALL: [&str; 4] = [SUPPORTED[0], SUPPORTED[1], SUPPORTED[2], MODERN[0]];

/// Whether `version` is a stateless revision the gateway speaks.
pub fn is_modern(version: &str) -> bool {
    MODERN.contains(&version)
}

/// The newest revision in [`SUPPORTED`].
pub const LATEST: &str = SUPPORTED[SUPPORTED.len() - 1];

/// The revision the gateway itself speaks: sent to upstreams, and answered to a client that
/// asks for a revision not in [`SUPPORTED`]. Not [`LATEST`]: this is the rule the gateway
/// has always had, and offering the newest instead (the MCP lifecycle's SHOULD) would change
/// what clients and upstreams see, so it is a decision of its own.
pub const PREFERRED: &str = "2025-06-18";

/// The revision to answer an `initialize` that asked for `asked`: the client's own when it
/// is one the gateway supports, [`PREFERRED`] otherwise (unknown, malformed or absent). The
/// client then decides whether it can go on with that one (MCP lifecycle, version
/// negotiation).
pub fn negotiate(asked: Option<&str>) -> &'static str {
    asked
        .and_then(|a| SUPPORTED.iter().find(|s| **s == a))
        .copied()
        .unwrap_or(PREFERRED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supported_revision_is_echoed() {
        for r in SUPPORTED {
            assert_eq!(negotiate(Some(r)), r);
        }
    }

    #[test]
    fn anything_else_gets_the_preferred_revision() {
        for asked in [
            None,
            Some(""),
            Some("2024-11-05"),
            Some("2099-01-01"),
            Some("2025-06-18 "),
            Some("garbage"),
        ] {
            assert_eq!(negotiate(asked), PREFERRED, "{asked:?}");
        }
    }

    #[test]
    fn the_list_is_ordered_and_holds_the_preferred_revision() {
        // Revisions are ISO dates, so string order is date order.
        assert!(SUPPORTED.windows(2).all(|w| w[0] < w[1]), "{SUPPORTED:?}");
        assert!(SUPPORTED.contains(&PREFERRED));
        assert_eq!(LATEST, "2025-11-25");
    }

    #[test]
    fn the_modern_revision_is_not_negotiable_through_initialize() {
        for r in MODERN {
            assert_eq!(negotiate(Some(r)), PREFERRED);
            assert!(is_modern(r));
        }
        assert!(!is_modern(PREFERRED));
        assert!(ALL.windows(2).all(|w| w[0] < w[1]), "{ALL:?}");
        assert!(SUPPORTED
            .iter()
            .chain(MODERN.iter())
            .all(|r| ALL.contains(r)));
    }
}
