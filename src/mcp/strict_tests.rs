use super::*;
use crate::config::DEFAULT_MAX_JSON_DEPTH as DEFAULT_MAX_DEPTH;
use crate::error::{INVALID_REQUEST, PARSE_ERROR};

fn verdict(body: &[u8]) -> Result<(), (i32, String)> {
    check(body, DEFAULT_MAX_DEPTH).map_err(|r| (r.jsonrpc_code(), r.to_string()))
}

fn refused(body: &str, code: i32, needle: &str) {
    match verdict(body.as_bytes()) {
        Ok(()) => panic!("accepted: {body}"),
        Err((c, msg)) => {
            assert_eq!(c, code, "{body}: {msg}");
            assert!(msg.contains(needle), "{body}: {msg:?} lacks {needle:?}");
        }
    }
}

#[test]
fn ordinary_json_passes() {
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,2,{"b":null}],"c":"x\"y\\u00e9\n","d":true,"e":false}}}"#,
        r#" { } "#,
        "[]",
        "[ [ ] , { } ]",
        r#""\ud83d\ude00""#,
        "-0.5e-10",
        "0",
        "123456789012345678901234567890",
        "1e400",
        "-1E+400",
        r#"{"a":{"b":1},"b":{"a":1},"c":[{"a":1},{"a":2}]}"#,
        "\t\r\n{\"é\":1,\"e\\u0301\":2}\n",
    ] {
        assert_eq!(verdict(b.as_bytes()), Ok(()), "{b}");
    }
}

#[test]
fn duplicate_keys_are_refused_at_any_depth_with_their_path() {
    refused(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crm__get_customer","arguments":{"id":"42"},"name":"delete_customer"}}"#,
        INVALID_REQUEST,
        "duplicate key $.params.name",
    );
    refused(
        r#"{"jsonrpc":"2.0","method":"a","method":"b"}"#,
        INVALID_REQUEST,
        "duplicate key $.method",
    );
    refused(
        r#"{"params":{"arguments":{"opts":[1,{"branch":"a","branch":"b"}]}}}"#,
        INVALID_REQUEST,
        "duplicate key $.params.arguments.opts[1].branch",
    );
    refused(
        r#"{"params":{"_meta":{"progressToken":1,"progressToken":2}}}"#,
        INVALID_REQUEST,
        "$.params._meta.progressToken",
    );
    // Equal only after unescaping.
    refused(
        r#"{"params":{"name":"a","n\u0061me":"b"}}"#,
        INVALID_REQUEST,
        "duplicate key $.params.name",
    );
    refused(r#"{"a\/b":1,"a/b":2}"#, INVALID_REQUEST, r#"["a/b"]"#);
    refused(
        r#"{"\ud83d\ude00":1,"😀":2}"#,
        INVALID_REQUEST,
        "duplicate key",
    );
    // A closed sibling object's keys do not count against the next one.
    assert_eq!(verdict(br#"{"a":{"x":1},"b":{"x":1}}"#), Ok(()));
}

#[test]
fn large_objects_switch_to_a_set_and_still_find_duplicates() {
    let keys: Vec<String> = (0..1000).map(|i| format!("\"k{i}\":{i}")).collect();
    let ok = format!("{{{}}}", keys.join(","));
    assert_eq!(verdict(ok.as_bytes()), Ok(()));
    for dup in [0, 5, LINEAR_KEYS - 1, LINEAR_KEYS, 999] {
        let bad = format!("{{{},\"k{dup}\":0}}", keys.join(","));
        refused(&bad, INVALID_REQUEST, &format!("$.k{dup}"));
    }
    // The key that crosses the threshold is itself a duplicate of an earlier one.
    let mut ks: Vec<String> = (0..LINEAR_KEYS).map(|i| format!("\"k{i}\":1")).collect();
    ks.push("\"k3\":2".into());
    refused(&format!("{{{}}}", ks.join(",")), INVALID_REQUEST, "$.k3");
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(verdict(deep(DEFAULT_MAX_DEPTH).as_bytes()), Ok(()));
    refused(
        &deep(DEFAULT_MAX_DEPTH + 1),
        INVALID_REQUEST,
        "nested deeper than 64 levels",
    );
    // 100,000 levels inside arguments: refused quickly, no stack overflow.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"x":{}1{}}}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    refused(&body, INVALID_REQUEST, "$.params.arguments.x[0][0]");
    // Even an absurd configured limit uses heap, not stack.
    let huge = deep(200_000);
    assert_eq!(
        check(huge.as_bytes(), usize::MAX).map_err(|r| r.to_string()),
        Ok(())
    );
    // Objects count too.
    let objs = format!("{}1{}", r#"{"a":"#.repeat(65), "}".repeat(65));
    refused(&objs, INVALID_REQUEST, "limits.max_json_depth");
}

#[test]
fn lone_surrogates_are_refused() {
    for s in [
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\udc00"}"#,
        r#"{"a":"\ud800x"}"#,
        r#"{"a":"\ud800\u0041"}"#,
        r#"{"\ud800":1}"#,
    ] {
        refused(s, INVALID_REQUEST, "lone UTF-16 surrogate");
    }
}

#[test]
fn framing_and_non_json_are_parse_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"\xEF\xBB\xBF{}", "byte order mark"),
        (b"{\"a\":\"\xff\"}", "not valid UTF-8"),
        (b"{} {}", "end of the body"),
        (b"{}x", "end of the body"),
        (b"{\"a\":NaN}", "NaN and Infinity"),
        (b"{\"a\":Infinity}", "NaN and Infinity"),
        (b"{\"a\":-Infinity}", "NaN and Infinity"),
        (b"{\"a\":01}", "after a number"),
        (b"{\"a\":1.}", "decimal point"),
        (b"{\"a\":.5}", "a JSON value"),
        (b"{\"a\":+1}", "a JSON value"),
        (b"{\"a\":1e}", "exponent"),
        (b"{\"a\":\"x\ty\"}", "control character"),
        (b"{\"a\":\"\\x\"}", "valid escape"),
        (b"{\"a\":\"\\u12\"}", "hex digits"),
        (b"{'a':1}", "string key"),
        (b"{\"a\" 1}", "':'"),
        (b"{\"a\":1,}", "string key"),
        (b"[1,]", "a JSON value"),
        (b"[1 2]", "',' or ']'"),
        (b"{\"a\":tru}", "true, false or null"),
        (b"{\"a\":1", "',' or '}'"),
        (b"\"abc", "close the string"),
        (b"", "end of the body"),
        (b"\x0c{}", "a JSON value"),
    ];
    for (b, needle) in cases {
        match verdict(b) {
            Ok(()) => panic!("accepted {:?}", String::from_utf8_lossy(b)),
            Err((c, msg)) => {
                assert_eq!(c, PARSE_ERROR, "{msg}");
                assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
            }
        }
    }
}

#[test]
fn a_missing_key_is_reported_at_its_object() {
    refused(
        r#"{"jsonrpc":"2.0","id":9,"#,
        PARSE_ERROR,
        "(in $): expected a string key",
    );
    refused(
        r#"{"params":{"name":"x","arguments" 1}}"#,
        PARSE_ERROR,
        "(in $.params): expected ':' after the key",
    );
}

#[test]
fn paths_of_odd_keys_are_quoted_and_clipped() {
    refused(
        r#"{"a b":{"x\"y":1,"x\"y":2}}"#,
        INVALID_REQUEST,
        r#"$["a b"]["x\"y"]"#,
    );
    let long = "k".repeat(500);
    let body = format!(r#"{{"{long}":{{"{long}":{{"z":1,"z":2}}}}}}"#);
    match verdict(body.as_bytes()) {
        Err((_, msg)) => assert!(msg.len() < 500, "{msg}"),
        Ok(()) => panic!("accepted"),
    }
}

/// Whatever this check accepts, serde_json accepts too (as a `Value`, which keeps the last
/// duplicate), and the two agree there was nothing to disagree on. A cheap stand-in for the
/// fuzz target's differential oracle, over a fixed corpus.
#[test]
fn accepted_bodies_parse_in_serde_json() {
    for b in [
        r#"{"a":[1,2,{"b":"\u00e9\ud83d\ude00"}],"c":{"d":{}}}"#,
        r#"[{"a":1},{"a":1}]"#,
        "12.5e3",
    ] {
        assert_eq!(verdict(b.as_bytes()), Ok(()));
        serde_json::from_str::<serde_json::Value>(b).unwrap();
    }
}

#[test]
fn word_test_finds_exactly_the_special_bytes() {
    for pos in 0..8 {
        for b in 0..=255u8 {
            let mut w = [b'a'; 8];
            w[pos] = b;
            let special = b == b'"' || b == b'\\' || b < 0x20;
            assert_eq!(
                has_special(u64::from_le_bytes(w)),
                special,
                "byte {b:#x} at {pos}"
            );
        }
    }
    // Several specials, and high bytes (UTF-8) next to them.
    assert!(has_special(u64::from_le_bytes(
        *b"\xff\xff\"\\\x01\xc3\xa9a"
    )));
    assert!(!has_special(u64::from_le_bytes(
        *b"\xff\xfe\xc3\xa9\x7f ~!"
    )));
    // The lowest flag is the first special byte, whatever follows it (borrows run upwards).
    for first in 0..8 {
        for b in [b'"', b'\\', 0x00, 0x1f] {
            for after in [b'"', b'\\', 0x00, 0x01, 0x20, 0x21, 0x80, 0xff, b'a'] {
                let mut w = [b'a'; 8];
                w[first] = b;
                for x in w.iter_mut().skip(first + 1) {
                    *x = after;
                }
                let flags = special(u64::from_le_bytes(w));
                assert_eq!(flags.trailing_zeros() / 8, first as u32, "{w:?}");
            }
        }
    }
}

#[test]
fn escapes_and_duplicates_are_found_at_every_offset_of_a_long_string() {
    for len in 0..40 {
        let pad = "x".repeat(len);
        let ok = format!(r#"{{"k{pad}":"{pad}\"{pad}","k{pad}\u0031":1}}"#);
        assert_eq!(verdict(ok.as_bytes()), Ok(()), "{ok}");
        let dup = format!(r#"{{"k{pad}1":"{pad}","k{pad}\u0031":1}}"#);
        refused(&dup, INVALID_REQUEST, "duplicate key");
        let ctl = format!("{{\"a\":\"{pad}\u{1}\"}}");
        refused(&ctl, PARSE_ERROR, "control character");
        let open = format!("{{\"a\":\"{pad}");
        refused(&open, PARSE_ERROR, "close the string");
    }
}

/// Go's encoding/json matches keys case-insensitively with Unicode folding and keeps the
/// last match, so keys equal after folding are duplicates too (mcp-go, the Go SDK).
#[test]
fn keys_equal_ignoring_case_or_folding_are_duplicates() {
    for (body, path) in [
        (
            r#"{"params":{"name":"a","arguments":{},"NAME":"b"}}"#,
            "$.params.NAME",
        ),
        (
            r#"{"params":{"name":"a"},"Params":{"name":"b"}}"#,
            "$.Params",
        ),
        (
            r#"{"method":"tools/call","METHOD":"resources/read"}"#,
            "$.METHOD",
        ),
        // Kelvin sign and long s fold to k and s.
        (
            "{\"params\":{\"name\":\"a\"},\"param\u{17F}\":{}}",
            "$[\"param\u{17F}\"]",
        ),
        ("{\"kind\":1,\"\u{212A}ind\":2}", "\u{212A}ind"),
        // Micro sign and Greek mu; capital and small sharp s.
        ("{\"\u{B5}\":1,\"\u{3BC}\":2}", "duplicate key"),
        ("{\"\u{DF}\":1,\"\u{1E9E}\":2}", "duplicate key"),
        // In a large object (hash set) too.
        (
            &format!(
                "{{{},\"K17\":0}}",
                (0..20)
                    .map(|i| format!("\"k{i}\":{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "$.K17",
        ),
    ] {
        refused(body, INVALID_REQUEST, path);
    }
    // Different words stay different.
    assert_eq!(verdict(br#"{"name":1,"names":2,"nam":3}"#), Ok(()));
}

#[test]
fn keys_with_nul_are_refused() {
    refused(
        r#"{"params":{"name":"a","name\u0000":"b"}}"#,
        INVALID_REQUEST,
        "contains U+0000",
    );
    refused(r#"{"\u0000":1}"#, INVALID_REQUEST, "contains U+0000");
    // NUL in a value is just data.
    assert_eq!(verdict(br#"{"a":"x\u0000y"}"#), Ok(()));
}

/// The members a schema asks for are located at their own paths only, with the exact span of
/// each value (scalars, empty and nested containers, escaped keys), in the same pass.
#[test]
fn an_outline_locates_the_schemas_members_at_their_paths() {
    static INNER: Schema = Schema {
        keys: &["k", "deep"],
        child: None,
        shadows: false,
        memo: false,
    };
    static TOP: Schema = Schema {
        keys: &["a", "obj", "arr", "e"],
        child: Some((1, &INNER)),
        shadows: true,
        memo: false,
    };
    let body = br#" {"x":{"a":1,"k":2},"\u0061" : "s\"", "obj":{"deep":{"k":[1,{"k":3}]},"k":-1.5e3,"a":0},"arr":[{"a":1}],"e":{}} "#;
    let o = outline(body, 64, Some(&TOP)).unwrap();
    let at = |r: &Option<Range<usize>>| {
        r.clone()
            .map(|r| String::from_utf8_lossy(&body[r]).into_owned())
    };
    assert_eq!(at(&o.spans[0][0]).as_deref(), Some(r#""s\"""#));
    assert_eq!(
        at(&o.spans[0][1]).as_deref(),
        Some(r#"{"deep":{"k":[1,{"k":3}]},"k":-1.5e3,"a":0}"#)
    );
    assert_eq!(at(&o.spans[0][2]).as_deref(), Some(r#"[{"a":1}]"#));
    assert_eq!(at(&o.spans[0][3]).as_deref(), Some("{}"));
    // Level 1 is `obj` only: its `k` and `deep`, not the `k`s inside `deep` or inside `x`.
    assert_eq!(at(&o.spans[1][0]).as_deref(), Some("-1.5e3"));
    assert_eq!(at(&o.spans[1][1]).as_deref(), Some(r#"{"k":[1,{"k":3}]}"#));
    assert!(o.spans[2].iter().all(Option::is_none));
    assert_eq!(o.shadow, None);
    // A member passing for a located one by case alone is reported; not in a level
    // without `shadows`.
    let o = outline(br#"{"A":1,"obj":{"K":2}}"#, 64, Some(&TOP)).unwrap();
    assert_eq!(o.shadow, Some(("A".to_string(), "a")));
    assert_eq!(o.spans[0][0], None);
    let o = outline(br#"{"obj":{"K":2}}"#, 64, Some(&TOP)).unwrap();
    assert_eq!(o.shadow, None);
    // A top-level array or scalar locates nothing; `check` is the same pass without a schema.
    assert_eq!(
        outline(br#"[{"a":1}]"#, 64, Some(&TOP)).unwrap(),
        Outline::default()
    );
    assert_eq!(outline(b"7", 64, Some(&TOP)).unwrap(), Outline::default());
    assert!(check(body, 64).is_ok());
}

/// A remembered object is taken by one comparison only when the bytes are the same and it
/// sits at the same depth under the same limit: one byte changed, or a tighter limit, and
/// it is scanned (and refused) as always.
#[test]
fn a_remembered_object_gives_the_same_outline_and_never_a_different_verdict() {
    static LEAF: Schema = Schema {
        keys: &["v", "w"],
        child: None,
        shadows: false,
        memo: true,
    };
    static TOP: Schema = Schema {
        keys: &["m", "n"],
        child: Some((0, &LEAF)),
        shadows: false,
        memo: false,
    };
    let a = br#"{"m":{"v":"x","z":[[1]],"w":{}},"n":1}"#;
    let first = outline(a, 64, Some(&TOP)).unwrap();
    // Now remembered; elsewhere in another body, at another offset.
    let b = br#"{"n":22222, "m":{"v":"x","z":[[1]],"w":{}}}"#;
    let second = outline(b, 64, Some(&TOP)).unwrap();
    let text = |body: &[u8], r: &Option<Range<usize>>| r.clone().map(|r| body[r].to_vec());
    for (o, body) in [(&first, &a[..]), (&second, &b[..])] {
        assert_eq!(text(body, &o.spans[1][0]), Some(br#""x""#.to_vec()));
        assert_eq!(text(body, &o.spans[1][1]), Some(b"{}".to_vec()));
        assert_eq!(
            text(body, &o.spans[0][0]),
            Some(br#"{"v":"x","z":[[1]],"w":{}}"#.to_vec())
        );
    }
    assert_eq!(outline(a, 64, Some(&TOP)).unwrap(), first);
    // A tighter limit: scanned again, and too deep.
    assert!(outline(a, 3, Some(&TOP)).is_err());
    assert!(outline(a, 4, Some(&TOP)).is_ok());
    // Remembered bytes followed by more of the parent: the parent's own checks still apply.
    assert!(outline(
        br#"{"m":{"v":"x","z":[[1]],"w":{}},"m":{}}"#,
        64,
        Some(&TOP)
    )
    .is_err());
    // One byte different: a duplicate inside is found.
    assert!(outline(br#"{"m":{"v":"x","z":[[1]],"v":{}}}"#, 64, Some(&TOP)).is_err());
    // The same bytes where no remembered level is (under "n"): scanned, nothing located.
    let c = br#"{"n":{"v":"x","z":[[1]],"w":{}}}"#;
    assert!(outline(c, 64, Some(&TOP)).unwrap().spans[1]
        .iter()
        .all(Option::is_none));
}
