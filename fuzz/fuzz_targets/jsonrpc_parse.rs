//! The request parser on arbitrary bytes: the strict pass, the envelope parse and the
//! virtual-server tool-name splice must never panic, and must agree with serde_json:
//!
//! - what the strict pass accepts is JSON to serde_json too (grammar agreement);
//! - what serde_json reads as a `Value` is refused by the strict pass only for a reason that
//!   is not a syntax error (duplicate key, depth, lone surrogate), never as "invalid JSON";
//! - a parsed `tools/call` splices to a body that parses again to the same id and the new name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::error::Reject;
use mcp_gateway::mcp::{jsonrpc, strict};

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
    if call.tool.is_some() {
        let (out, moved) =
            jsonrpc::replace_tool_name(data, &call, "renamed\"tool").expect("splice a parsed call");
        let again = jsonrpc::parse(&out, DEPTH).expect("a spliced body parses");
        assert_eq!(again, moved, "moved spans match a fresh parse");
        assert_eq!(again.tool_name(&out).as_deref(), Some("renamed\"tool"));
        assert_eq!(again.id_json(&out), call.id_json(data));
    }
});
