//! The MCP protocol revisions the gateway speaks, in one place.
//!
//! Two decisions hang on them: what a virtual server answers a client's `initialize` with
//! ([`negotiate`]), and the revision the gateway's own requests to upstreams carry
//! ([`PREFERRED`]: the registry client's `initialize` and `MCP-Protocol-Version`, and the
//! header the proxy sets on forwarded requests). Pure values, so the rule is unit-tested here.

/// Revisions a virtual server accepts from a client, oldest first.
pub const SUPPORTED: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

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
}
