//! Criterion benches for the request-path hot spots. Each group names the production path it
//! stands in for. Run: `cargo bench --bench hot_paths`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use mcp_gateway::config::HostPolicy;
use mcp_gateway::{guard, mcp::jsonrpc};

/// `request_filter` step 6: parse the JSON-RPC envelope of a tools/call (borrowed, zero-copy),
/// against the naive alternative of building a full `serde_json::Value`.
fn parse(c: &mut Criterion) {
    let small = br#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"github__list_issues","arguments":{"repo":"org/repo","state":"open","labels":["bug","p1"]},"_meta":{"progressToken":"t-17"}}}"#.to_vec();
    let big = serde_json::json!({"jsonrpc":"2.0","id":18,"method":"tools/call",
        "params":{"name":"echo","arguments":{"text":"x".repeat(60 * 1024)}}})
    .to_string()
    .into_bytes();
    let mut g = c.benchmark_group("jsonrpc_parse");
    g.bench_function("tools_call_small/borrowed", |b| {
        b.iter(|| jsonrpc::parse(black_box(&small)))
    });
    g.bench_function("tools_call_small/value_tree", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&small)))
    });
    g.bench_function("tools_call_60k/borrowed", |b| {
        b.iter(|| jsonrpc::parse(black_box(&big)))
    });
    g.bench_function("tools_call_60k/value_tree", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&big)))
    });
    g.finish();
}

/// `request_filter` steps 2-3: the header guard every request passes.
fn guards(c: &mut Criterion) {
    let hosts = HostPolicy::List(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]);
    let origins = vec!["http://localhost:6274".to_string()];
    c.bench_function("guard/host+origin+media", |b| {
        b.iter(|| {
            guard::check_host(black_box(Some("127.0.0.1:8080")), &hosts).ok();
            guard::check_origin(black_box(None), &origins).ok();
            guard::check_post_headers(
                black_box(Some("application/json")),
                black_box(Some("application/json, text/event-stream")),
            )
            .ok();
        })
    });
}

/// Error answers the gateway writes itself (`respond::reject`).
fn error_body(c: &mut Criterion) {
    c.bench_function("jsonrpc/error_response", |b| {
        b.iter(|| {
            jsonrpc::error_response(
                black_box(Some(b"17")),
                -32000,
                black_box("upstream \"demo\" failed: connection refused"),
                None,
            )
        })
    });
}

criterion_group!(benches, parse, guards, error_body);
criterion_main!(benches);
