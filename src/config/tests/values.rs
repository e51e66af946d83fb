//! The plain-value sections (`config/values.rs`: `server`, `limits`, `registry`,
//! `sessions`, `vault`): one test per rule.

use super::{assert_err, BASE};
use crate::config::{from_yaml, DEFAULT_MAX_JSON_DEPTH};

#[test]
fn json_depth_limit_is_bounded_by_what_serde_json_reads() {
    assert_eq!(
        from_yaml(BASE).unwrap().limits.max_json_depth,
        DEFAULT_MAX_JSON_DEPTH
    );
    for bad in [0, 1, 129, 100_000] {
        assert_err(
            &format!("{BASE}limits:\n  max_json_depth: {bad}\n"),
            "limits.max_json_depth",
            "between 2 and 128",
        );
    }
    let c = from_yaml(&format!("{BASE}limits:\n  max_json_depth: 128\n")).unwrap();
    assert_eq!(c.limits.max_json_depth, 128);
}

#[test]
fn zero_limits_and_timeouts_are_rejected() {
    assert_err(
        &format!("{BASE}limits:\n  max_request_body_bytes: 0\n"),
        "limits.max_request_body_bytes",
        "between 1 and",
    );
    assert_err(
        &BASE.replace(
            "url: http://127.0.0.1:8000/mcp",
            "url: http://127.0.0.1:8000/mcp\n    read_timeout: 0s",
        ),
        "upstreams[0].read_timeout",
        "greater than 0",
    );
    assert_err(
        &format!("{BASE}server:\n  threads: 0\n"),
        "server.threads",
        "at least 1",
    );
}
