//! The `virtual_servers` section (`config/virtual_server.rs`): one test per rule.

use super::{assert_err, BASE};
use crate::config::from_yaml;

/// [`BASE`] plus one virtual server: `{VS}` is its body (keys after `- name: s`).
fn with_vs(body: &str) -> String {
    format!("{BASE}virtual_servers:\n  - name: s\n    route: /s/mcp\n{body}")
}

#[test]
fn a_minimal_virtual_server_includes_every_upstream() {
    let c = from_yaml(&with_vs("")).unwrap();
    assert_eq!(c.virtual_servers[0].upstreams, vec![0]);
}
