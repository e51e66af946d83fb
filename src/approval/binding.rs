//! What an approval is bound to: one exact call by one caller under one configuration.
//!
//! [`Binding`] is SHA-256 over length-prefixed fields (so no two field lists share an
//! encoding): the caller (issuer, subject, agent), where the call came in (virtual server,
//! or the plain route's upstream), `upstream.tool`, the digest of the canonical arguments
//! and the approvals' configuration version.
//!
//! The canonical arguments ([`canonical`]) are what makes a retry "identical": object keys
//! sorted at every depth, whitespace dropped, strings re-encoded from their decoded value
//! (`"\u0061"` is `"a"`), and **numbers exactly as written**. Going through
//! `serde_json::Value` would sort keys too, but it parses numbers into `u64`/`i64`/`f64`:
//! `12345678901234567890123` and `12345678901234567890124` both become the same `f64`, so
//! an approval of one would let the other through to an upstream with big integers. Here a
//! number's text is kept, so `1`, `1.0` and `1e0` are three different calls, as they may be
//! to the upstream. Duplicate keys cannot occur: the body passed the strict parse.

use serde_json::value::RawValue;

/// SHA-256 of one call's identity; the key approvals are found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding(pub [u8; 32]);

impl Binding {
    /// Lower-case hex (Redis keys, the admin view).
    pub fn hex(&self) -> String {
        crate::digest::hex(&self.0)
    }
}

/// Who made the call and what it is, as the binding covers it.
#[derive(Debug, Clone, Copy)]
pub struct CallIdentity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub agent: Option<&'a str>,
    /// The virtual server's name, `None` on a plain route.
    pub server: Option<&'a str>,
    pub upstream: &'a str,
    pub tool: &'a str,
}

/// The binding of `who` calling with arguments whose canonical form digests to `args`,
/// under configuration `version`.
pub fn bind(who: &CallIdentity<'_>, args: &[u8; 32], version: &[u8; 32]) -> Binding {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |b: &[u8]| {
        d.update(&(b.len() as u64).to_be_bytes());
        d.update(b);
    };
    field(b"mcp-gateway approval v1");
    field(who.issuer.as_bytes());
    field(who.subject.as_bytes());
    // A tag before optional fields: no agent is not the agent "".
    match who.agent {
        Some(a) => {
            field(b"agent");
            field(a.as_bytes());
        }
        None => field(b"no agent"),
    }
    match who.server {
        Some(s) => {
            field(b"virtual server");
            field(s.as_bytes());
        }
        None => field(b"route"),
    }
    field(who.upstream.as_bytes());
    field(who.tool.as_bytes());
    field(args);
    field(version);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.finish().as_ref());
    Binding(out)
}

/// SHA-256 of canonical bytes.
pub(super) fn digest(canonical: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, canonical).as_ref());
    out
}

/// The canonical form of `params.arguments` in a `tools/call` body (`b""` when the call
/// has none). `depth` bounds the recursion (the strict parse already did; this is a second
/// guard, since this function recurses).
pub fn canonical_arguments(body: &[u8], depth: usize) -> Result<Vec<u8>, String> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, default)]
        params: Option<Params<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow, default)]
        arguments: Option<&'a RawValue>,
    }
    let env: Envelope<'_> =
        serde_json::from_slice(body).map_err(|e| format!("tools/call params: {e}"))?;
    let mut out = Vec::with_capacity(body.len());
    if let Some(args) = env.params.and_then(|p| p.arguments) {
        canonical(args, depth, &mut out)?;
    }
    Ok(out)
}

/// The canonical form of one JSON value already through the strict parse (a call's
/// `arguments`, found by [`crate::mcp::jsonrpc::parse`]): what [`canonical_arguments`] gives
/// for the body it came from, without reading the rest of the body.
pub fn canonical_value(raw: &[u8], depth: usize) -> Result<Vec<u8>, String> {
    let v: &RawValue = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(raw.len());
    canonical(v, depth, &mut out)?;
    Ok(out)
}

/// Append the canonical form of `v` to `out` (module docs).
pub(super) fn canonical(v: &RawValue, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let text = v.get().trim();
    let Some(depth) = depth.checked_sub(1) else {
        return Err("arguments nest too deeply".into());
    };
    match text.as_bytes().first() {
        Some(b'{') => {
            let map: std::collections::BTreeMap<String, &RawValue> =
                serde_json::from_str(text).map_err(|e| e.to_string())?;
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).map_err(|e| e.to_string())?;
                out.push(b':');
                canonical(v, depth, out)?;
            }
            out.push(b'}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| e.to_string())?;
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(v, depth, out)?;
            }
            out.push(b']');
        }
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_writer(&mut *out, &s).map_err(|e| e.to_string())?;
        }
        // Numbers as written, `true`, `false`, `null`: a token without inner whitespace.
        Some(_) => out.extend_from_slice(text.as_bytes()),
        None => return Err("empty value".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(args: &str) -> String {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{args}}}}}"#
        );
        String::from_utf8(canonical_arguments(body.as_bytes(), 64).unwrap()).unwrap()
    }

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_dropped() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": { "z": [ 1, {"y":2,"x":3} ], "c": null } }"#),
            r#"{"a":{"c":null,"z":[1,{"x":3,"y":2}]},"b":1}"#
        );
        assert_eq!(
            canon(r#"{"b":1,"a":2}"#),
            canon("{\n  \"a\" : 2 ,\n  \"b\" : 1\n}")
        );
    }

    #[test]
    fn strings_are_compared_by_value() {
        assert_eq!(canon(r#"{"k":"\u0061\n"}"#), canon(r#"{"k":"a\n"}"#));
        assert_eq!(canon(r#"{"\u006b":"a"}"#), canon(r#"{"k":"a"}"#));
        assert_ne!(canon(r#"{"k":"a"}"#), canon(r#"{"k":"A"}"#));
    }

    #[test]
    fn numbers_stay_as_written() {
        // One f64 for both: a Value round trip would call these the same call.
        let (a, b) = ("12345678901234567890123", "12345678901234567890124");
        assert_eq!(
            a.parse::<f64>().unwrap().to_bits(),
            b.parse::<f64>().unwrap().to_bits()
        );
        assert_ne!(
            canon(&format!(r#"{{"n":{a}}}"#)),
            canon(&format!(r#"{{"n":{b}}}"#))
        );
        assert_eq!(canon(&format!(r#"{{"n":{a}}}"#)), format!(r#"{{"n":{a}}}"#));
        assert_ne!(canon(r#"{"n":1}"#), canon(r#"{"n":1.0}"#));
        assert_ne!(canon(r#"{"n":0.1}"#), canon(r#"{"n":0.10000000000000001}"#));
        assert_eq!(canon(r#"{"n":-1.5e300}"#), r#"{"n":-1.5e300}"#);
    }

    #[test]
    fn absent_arguments_are_not_empty_ones() {
        let none = canonical_arguments(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            64,
        )
        .unwrap();
        assert!(none.is_empty());
        assert_eq!(canon("{}"), "{}");
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}1{}", "[".repeat(10), "]".repeat(10));
        let body = format!(r#"{{"params":{{"arguments":{deep}}}}}"#);
        assert!(canonical_arguments(body.as_bytes(), 5).is_err());
        assert!(canonical_arguments(body.as_bytes(), 11).is_ok());
    }

    #[test]
    fn every_field_changes_the_binding() {
        let who = CallIdentity {
            issuer: "iss",
            subject: "alice",
            agent: None,
            server: Some("ops"),
            upstream: "crm",
            tool: "delete",
        };
        let (args, version) = ([1u8; 32], [2u8; 32]);
        let base = bind(&who, &args, &version);
        let variants = [
            CallIdentity {
                issuer: "other",
                ..who
            },
            CallIdentity {
                subject: "bob",
                ..who
            },
            CallIdentity {
                agent: Some("bot"),
                ..who
            },
            CallIdentity {
                agent: Some(""),
                ..who
            },
            CallIdentity {
                server: None,
                ..who
            },
            CallIdentity {
                server: Some("crm"),
                ..who
            },
            CallIdentity {
                upstream: "hr",
                ..who
            },
            CallIdentity {
                tool: "read",
                ..who
            },
            // Field boundaries are part of the encoding.
            CallIdentity {
                issuer: "issa",
                subject: "lice",
                ..who
            },
        ];
        for v in &variants {
            assert_ne!(bind(v, &args, &version), base, "{v:?}");
        }
        assert_ne!(bind(&who, &[3u8; 32], &version), base);
        assert_ne!(bind(&who, &args, &[3u8; 32]), base);
        assert_eq!(bind(&who, &args, &version), base);
    }
}
