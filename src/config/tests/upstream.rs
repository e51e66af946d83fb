//! The `upstreams` section (`config/upstream.rs`): one test per rule.

use std::time::Duration;

use super::{assert_err, err, BASE};
use crate::config::from_yaml;

#[test]
fn humantime_durations_and_https_default_port() {
    let y = BASE.replace(
        "url: http://127.0.0.1:8000/mcp",
        "url: https://mcp.example.com/v1/mcp?x=1\n    connect_timeout: 250ms\n    read_timeout: 2m",
    );
    let c = from_yaml(&y).unwrap();
    let u = &c.upstreams[0];
    assert_eq!(u.connect_timeout, Duration::from_millis(250));
    assert_eq!(u.read_timeout, Duration::from_secs(120));
    assert_eq!((u.port, u.tls), (443, true));
    assert_eq!(u.authority, "mcp.example.com");
    assert_eq!(u.path_and_query, "/v1/mcp?x=1");
}

#[test]
fn bad_url_scheme() {
    let y = BASE.replace("http://127.0.0.1:8000/mcp", "htp://x");
    let e = err(&y);
    assert_eq!(
        e.to_string(),
        r#"upstreams[0].url: invalid URL "htp://x": scheme must be http or https"#
    );
}

#[test]
fn unparsable_url_and_credentials_in_url() {
    assert_err(
        &BASE.replace("http://127.0.0.1:8000/mcp", "not a url"),
        "upstreams[0].url",
        "invalid URL",
    );
    assert_err(
        &BASE.replace("http://127.0.0.1:8000/mcp", "http://u:p@h/mcp"),
        "upstreams[0].url",
        "credentials",
    );
}

#[test]
fn duplicate_upstream_names() {
    let y = format!("{BASE}  - name: demo\n    url: http://127.0.0.1:9/mcp\n");
    assert_err(&y, "upstreams[1].name", "duplicate upstream name");
}

#[test]
fn invalid_upstream_name() {
    let y = BASE
        .replace("name: demo", "name: \"a b\"")
        .replace("upstream: demo", "upstream: \"a b\"");
    assert_err(&y, "upstreams[0].name", "invalid name");
}
