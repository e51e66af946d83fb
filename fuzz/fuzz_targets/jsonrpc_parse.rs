//! The request parser on arbitrary bytes: the strict pass, the envelope parse and the
//! virtual-server tool-name splice must never panic, and must agree with serde_json:
//!
//! - what the strict pass accepts is JSON to serde_json too (grammar agreement);
//! - what serde_json reads as a `Value` is refused by the strict pass only for a reason that
//!   is not a syntax error (duplicate key, depth, lone surrogate), never as "invalid JSON";
//! - what the parse located (id, method, `params.name`, `_meta`, `arguments`, the 2026-07-28
//!   envelope members) is what serde_json reads at those paths, and a second parse of the
//!   same bytes (which may take `_meta` from the strict pass's memo) gives the same call;
//! - a parsed `tools/call` splices to a body that parses again to the same id and the new name;
//! - pinning an argument into it either refuses (the client sent that key, or `arguments` is
//!   not an object) or yields a body whose `arguments` holds the pinned value, with every
//!   byte of the client's body still there in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::error::Reject;
use mcp_gateway::mcp::{jsonrpc, rewrite, strict};

const DEPTH: usize = 64;

fuzz_target!(|data: &[u8]| {
    let verdict = strict::check(data, DEPTH);
    let serde_grammar = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    if verdict.is_ok() {
        assert!(serde_grammar, "strict accepted what serde_json refuses");
    }
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        assert!(
            !matches!(verdict, Err(Reject::Parse(_))),
            "strict called valid JSON invalid: {verdict:?}"
        );
    }
    let Ok(call) = jsonrpc::parse(data, DEPTH) else {
        return;
    };
    assert!(verdict.is_ok());
    assert_eq!(jsonrpc::parse(data, DEPTH).ok().as_ref(), Some(&call), "memo");
    agrees_with_serde(data, &call);
    if call.tool.is_some() {
        let (out, moved) =
            jsonrpc::replace_tool_name(data, &call, "renamed\"tool").expect("splice a parsed call");
        let again = jsonrpc::parse(&out, DEPTH).expect("a spliced body parses");
        assert_eq!(again, moved, "moved spans match a fresh parse");
        assert_eq!(again.tool_name(&out).as_deref(), Some("renamed\"tool"));
        assert_eq!(again.id_json(&out), call.id_json(data));

        let mut pinned = serde_json::Map::new();
        pinned.insert("tenant".into(), serde_json::json!("acme"));
        if let Ok((pinned_body, _)) = rewrite::pin_arguments(&out, &pinned, "t", DEPTH) {
            let v: serde_json::Value = match serde_json::from_slice(&pinned_body) {
                Ok(v) => v,
                // Only a number out of f64 range keeps serde_json from building a Value.
                Err(e) => {
                    assert!(e.to_string().contains("number out of range"), "{e}");
                    return;
                }
            };
            assert_eq!(v["params"]["arguments"]["tenant"], "acme");
            assert!(
                is_subsequence(&out, &pinned_body),
                "splicing only inserts: every original byte is kept, in order"
            );
        }
    }
});

/// Whether `needle`'s bytes all appear in `hay`, in order.
fn is_subsequence(needle: &[u8], hay: &[u8]) -> bool {
    let mut rest = needle.iter().peekable();
    for b in hay {
        if rest.peek() == Some(&b) {
            rest.next();
        }
    }
    rest.peek().is_none()
}

/// Every span the parse located holds the value serde_json reads at its path.
fn agrees_with_serde(data: &[u8], call: &jsonrpc::RpcCall) {
    // Only a number out of f64 range keeps serde_json from building a Value.
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let at = |r: &Option<std::ops::Range<usize>>| -> serde_json::Value {
        r.clone()
            .and_then(|r| data.get(r))
            .map(|b| serde_json::from_slice(b).expect("a located span is one JSON value"))
            .unwrap_or(serde_json::Value::Null)
    };
    let or_null = |x: Option<&serde_json::Value>| x.cloned().unwrap_or(serde_json::Value::Null);
    assert_eq!(at(&call.id), or_null(v.get("id")), "id");
    assert_eq!(at(&call.method_name), or_null(v.get("method")), "method");
    let params = v.get("params").filter(|p| p.is_object());
    let param = |k: &str| or_null(params.and_then(|p| p.get(k)));
    if call.tool.is_some() {
        assert_eq!(at(&call.tool), param("name"), "params.name");
        assert_eq!(at(&call.arguments), param("arguments"), "params.arguments");
    }
    assert_eq!(at(&call.meta), param("_meta"), "params._meta");
    if call.method_name.is_some() {
        assert_eq!(at(&call.request_state()), param("requestState"));
        assert_eq!(at(&call.input_responses()), param("inputResponses"));
        assert_eq!(at(&call.cursor()), param("cursor"));
    }
    let meta = params.and_then(|p| p.get("_meta")).filter(|m| m.is_object());
    let member = |k: &str| or_null(meta.and_then(|m| m.get(k)));
    let e = &call.envelope;
    assert_eq!(at(&e.version), member("io.modelcontextprotocol/protocolVersion"));
    assert_eq!(at(&e.log_level), member("io.modelcontextprotocol/logLevel"));
    assert_eq!(at(&e.caps), member("io.modelcontextprotocol/clientCapabilities"));
}
