//! The names under which the gateway exposes upstream tools when it aggregates several MCP
//! servers behind one endpoint.
//!
//! A tool `list-issues` on upstream `github` is exposed as `github__list-issues`
//! (`<upstream><sep><tool>`, separator configurable, default `__`). MCP clients and the model
//! APIs behind them (Claude, OpenAI) accept tool names matching `^[a-zA-Z0-9_-]{1,64}$` only,
//! so the exposed name is derived by a fixed, documented mapping:
//!
//! 1. join `upstream`, `sep` and `tool`;
//! 2. replace every character outside `[A-Za-z0-9_-]` (`.`, `/`, spaces, any non-ASCII
//!    character) by one `_` (one per Unicode scalar value, not per byte);
//! 3. if the result is longer than 64 characters, keep its first 55 characters and append `_`
//!    and the first 8 lowercase hex digits of the SHA-256 of the *unmapped* joined name, giving
//!    exactly 64; the hash keeps long names that share a prefix apart, and is stable across
//!    releases because clients remember tool names;
//! 4. an empty result (empty upstream, separator and tool) becomes `_` plus that hash.
//!
//! Step 2 can merge distinct tools (`a.b` and `a_b`), and so can the separator itself
//! (`a__b` + `c` and `a` + `b__c`), so [`assign`] reports every collision instead of picking a
//! winner; the operator resolves it with an override name. Plain functions, no I/O.
//!
//! A virtual server with `names: upstream` ([`Style::Own`]) exposes each upstream's own names:
//! the same mapping with no upstream and no separator, so a valid name is kept as it is. Two
//! upstreams offering the same name then collide like any other pair: both are left out and
//! the collision is reported (log, admin view, `tools` command) naming both upstreams, until
//! the operator gives one an override name. Picking a winner, or prefixing only the
//! colliding pair, would make one upstream's name depend on what another upstream adds at a
//! refresh: a client's `echo` could silently become `a__echo`, and a later removal could
//! hand `echo` to the other upstream. Prompts are named by the same [`exposed`] function.

use std::collections::HashMap;
use std::fmt;

use crate::policy::names::{
    allowed_char, is_valid_exposed, valid_separator, MAX_EXPOSED_LEN, MAX_SEPARATOR_LEN,
};

/// Hex digits of the SHA-256 appended to a shortened name.
const HASH_HEX_LEN: usize = 8;
/// Characters of the mapped name kept before `_` + hash when shortening (64 - 1 - 8).
const KEPT_PREFIX_LEN: usize = MAX_EXPOSED_LEN - 1 - HASH_HEX_LEN;

/// One exposed name and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    pub name: String,
    pub upstream: String,
    pub tool: String,
}

/// Two origins that map to the same exposed name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub name: String,
    /// `(upstream, tool)` of the entry that claimed the name first (input order).
    pub first: (String, String),
    /// `(upstream, tool)` of the later entry that claims it again.
    pub second: (String, String),
}

impl fmt::Display for Collision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (u1, t1) = &self.first;
        let (u2, t2) = &self.second;
        if self.first == self.second {
            write!(
                f,
                "exposed tool name {:?} is claimed twice by {u1}.{t1}; \
                 list the tool once or give one entry an override name",
                self.name
            )
        } else {
            write!(
                f,
                "exposed tool name {:?} is claimed by both {u1}.{t1} and {u2}.{t2}; \
                 give one of them an override name (1-64 characters from A-Z a-z 0-9 _ -)",
                self.name
            )
        }
    }
}

/// How a virtual server names what it exposes (`virtual_servers[].names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style<'a> {
    /// `<upstream><separator><name>` (the default; `registry.separator`).
    Prefixed(&'a str),
    /// The upstream's own name (`names: upstream`).
    Own,
}

impl<'a> Style<'a> {
    /// The style of a virtual server configured with `names`.
    pub fn of(names: crate::config::Names, separator: &'a str) -> Style<'a> {
        match names {
            crate::config::Names::Prefixed => Style::Prefixed(separator),
            crate::config::Names::Upstream => Style::Own,
        }
    }
}

/// The exposed name of upstream `upstream`'s tool or prompt `name` under `style`: the one
/// naming function of tools and prompts. Always matches `^[a-zA-Z0-9_-]{1,64}$`.
pub fn exposed(style: Style<'_>, upstream: &str, name: &str) -> String {
    match style {
        Style::Prefixed(sep) => exposed_name(upstream, sep, name),
        Style::Own => exposed_name("", "", name),
    }
}

/// The exposed name for `tool` on `upstream`: always matches `^[a-zA-Z0-9_-]{1,64}$`. See the
/// module doc for the mapping.
pub fn exposed_name(upstream: &str, sep: &str, tool: &str) -> String {
    let mut name: String = [upstream, sep, tool]
        .iter()
        .flat_map(|part| part.chars())
        .map(|c| if allowed_char(c) { c } else { '_' })
        .collect();
    if name.is_empty() || name.len() > MAX_EXPOSED_LEN {
        // Every character is ASCII after mapping, so byte length is character count and
        // truncating at any index is on a character boundary.
        name.truncate(KEPT_PREFIX_LEN);
        name.push('_');
        name.push_str(&short_hash(&[upstream, sep, tool]));
    }
    name
}

/// Build exposed names for `(upstream, tool, override)` triples. An override (an
/// operator-chosen exposed name) is used as-is but must itself be valid. Returns the names in
/// input order plus every collision: each entry whose name was already claimed by an earlier
/// entry is reported once, against the first claimant. Nothing is dropped or renamed.
///
/// Errors on an invalid separator or an invalid override, naming it.
pub fn assign(
    entries: &[(String, String, Option<String>)],
    style: Style<'_>,
) -> Result<(Vec<Exposed>, Vec<Collision>), String> {
    if let Style::Prefixed(sep) = style {
        if !valid_separator(sep) {
            return Err(format!(
                "tool name separator {sep:?} is not valid: use 1-{MAX_SEPARATOR_LEN} characters \
                 from A-Z a-z 0-9 _ - (default \"__\")"
            ));
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut collisions = Vec::new();
    // exposed name -> index (into `exposed`) of the first entry that claimed it
    let mut claimed: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (upstream, tool, override_name) in entries {
        let name = match override_name {
            Some(o) if is_valid_exposed(o) => o.clone(),
            Some(o) => {
                return Err(format!(
                    "override name {o:?} for tool {upstream}.{tool} is not a valid exposed tool \
                     name: use 1-{MAX_EXPOSED_LEN} characters from A-Z a-z 0-9 _ -"
                ))
            }
            None => exposed(style, upstream, tool),
        };
        if let Some(&first) = claimed.get(&name) {
            let earlier: &Exposed = &out[first];
            collisions.push(Collision {
                name: name.clone(),
                first: (earlier.upstream.clone(), earlier.tool.clone()),
                second: (upstream.clone(), tool.clone()),
            });
        } else {
            claimed.insert(name.clone(), out.len());
        }
        out.push(Exposed {
            name,
            upstream: upstream.clone(),
            tool: tool.clone(),
        });
    }
    Ok((out, collisions))
}

/// First [`HASH_HEX_LEN`] lowercase hex digits of the SHA-256 of the concatenated parts.
fn short_hash(parts: &[&str]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part.as_bytes());
    }
    let digest = ctx.finish();
    digest
        .as_ref()
        .iter()
        .take(HASH_HEX_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Style<'static> = Style::Prefixed("__");

    fn entry(upstream: &str, tool: &str, over: Option<&str>) -> (String, String, Option<String>) {
        (upstream.into(), tool.into(), over.map(Into::into))
    }

    #[test]
    fn plain_names_are_joined_with_the_separator() {
        assert_eq!(
            exposed_name("github", "__", "list_issues"),
            "github__list_issues"
        );
        assert_eq!(exposed_name("crm", "-", "get-Contact9"), "crm-get-Contact9");
    }

    #[test]
    fn characters_outside_the_set_become_underscores() {
        assert_eq!(exposed_name("fs", "__", "read.file"), "fs__read_file");
        assert_eq!(exposed_name("fs", "__", "a/b c"), "fs__a_b_c");
        // one underscore per character, not per UTF-8 byte
        assert_eq!(exposed_name("wiki", "__", "café"), "wiki__caf_");
        assert_eq!(exposed_name("wiki", "__", "日本"), "wiki____");
        assert_eq!(exposed_name("a.b", ".", "c"), "a_b_c");
        assert_eq!(exposed_name("x", "__", "tab\there"), "x__tab_here");
    }

    #[test]
    fn exactly_64_characters_is_kept_as_is() {
        let tool = "t".repeat(64 - "up__".len());
        let name = exposed_name("up", "__", &tool);
        assert_eq!(name.len(), 64);
        assert_eq!(name, format!("up__{tool}"));
    }

    #[test]
    fn long_names_are_shortened_to_exactly_64_with_a_stable_hash() {
        let tool = "t".repeat(65 - "up__".len());
        let name = exposed_name("up", "__", &tool);
        assert_eq!(name.len(), 64);
        assert!(is_valid_exposed(&name));
        assert_eq!(&name[..55], &format!("up__{tool}")[..55]);
        // pinned: printf 'up__%061d' 0 | tr 0 t | sha256sum
        assert_eq!(&name[55..], "_89ddf51d");
        assert_eq!(exposed_name("up", "__", &tool), name);
    }

    #[test]
    fn hash_is_over_the_unmapped_original() {
        let long = "x".repeat(70);
        let dotted = exposed_name("up", "__", &format!("a.{long}"));
        let underscored = exposed_name("up", "__", &format!("a_{long}"));
        assert_eq!(&dotted[..55], &underscored[..55]);
        assert_ne!(dotted, underscored);
        // pinned: printf 'up__a.%070d' 0 | tr 0 x | sha256sum
        assert_eq!(&dotted[55..], "_c3d49d50");
    }

    #[test]
    fn long_names_with_the_same_prefix_differ() {
        let base = "p".repeat(80);
        let a = exposed_name("up", "__", &format!("{base}_one"));
        let b = exposed_name("up", "__", &format!("{base}_two"));
        assert_eq!(a.len(), 64);
        assert_eq!(b.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn empty_input_still_yields_a_valid_name() {
        let name = exposed_name("", "", "");
        assert!(is_valid_exposed(&name));
        assert_eq!(name.len(), 1 + 8);
        // pinned: SHA-256 of the empty string
        assert_eq!(name, "_e3b0c442");
        assert_eq!(exposed_name("", "__", ""), "__");
    }

    /// xorshift64: deterministic pseudo-random inputs without a dependency.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn every_output_is_valid() {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', '9', '_', '-', '.', '/', ' ', '\t', '\n', '*', ':', '@', 'é', 'ß', '日',
            '🦀', '\u{0}', '\u{200b}',
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut gen = |max_len: u64| -> String {
            let len = next(&mut state) % (max_len + 1);
            (0..len)
                .map(|_| {
                    let i = usize::try_from(next(&mut state) % ALPHABET.len() as u64)
                        .unwrap_or_default();
                    ALPHABET[i]
                })
                .collect()
        };
        for _ in 0..5_000 {
            let upstream = gen(40);
            let sep = gen(4);
            let tool = gen(120);
            let name = exposed_name(&upstream, &sep, &tool);
            assert!(
                is_valid_exposed(&name),
                "{upstream:?} {sep:?} {tool:?} -> {name:?}"
            );
            assert_eq!(name, exposed_name(&upstream, &sep, &tool));
        }
    }

    #[test]
    fn assign_keeps_input_order_without_collisions() {
        let (names, collisions) = assign(
            &[
                entry("github", "list_issues", None),
                entry("crm", "get.contact", None),
            ],
            P,
        )
        .expect("valid");
        assert!(collisions.is_empty());
        let got: Vec<_> = names.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(got, ["github__list_issues", "crm__get_contact"]);
        assert_eq!(names[1].upstream, "crm");
        assert_eq!(names[1].tool, "get.contact");
    }

    #[test]
    fn collisions_are_reported_once_with_both_origins() {
        let (names, collisions) = assign(
            &[
                entry("gh", "a.b", None),
                entry("gh", "a_b", None),
                entry("gh", "other", None),
                entry("gh", "a/b", None),
                // the separator itself can merge names
                entry("x__y", "z", None),
                entry("x", "y__z", None),
            ],
            P,
        )
        .expect("valid");
        assert_eq!(names.len(), 6, "nothing dropped");
        assert_eq!(names[1].name, "gh__a_b", "nothing renamed");
        assert_eq!(
            collisions,
            vec![
                Collision {
                    name: "gh__a_b".into(),
                    first: ("gh".into(), "a.b".into()),
                    second: ("gh".into(), "a_b".into()),
                },
                Collision {
                    name: "gh__a_b".into(),
                    first: ("gh".into(), "a.b".into()),
                    second: ("gh".into(), "a/b".into()),
                },
                Collision {
                    name: "x__y__z".into(),
                    first: ("x__y".into(), "z".into()),
                    second: ("x".into(), "y__z".into()),
                },
            ]
        );
        let msg = collisions[0].to_string();
        assert!(msg.contains("\"gh__a_b\""), "{msg}");
        assert!(msg.contains("gh.a.b") && msg.contains("gh.a_b"), "{msg}");
        assert!(msg.contains("override"), "{msg}");
    }

    #[test]
    fn the_same_tool_twice_is_a_collision() {
        let (_, collisions) =
            assign(&[entry("gh", "t", None), entry("gh", "t", None)], P).expect("valid");
        assert_eq!(collisions.len(), 1);
        assert!(collisions[0].to_string().contains("claimed twice by gh.t"));
    }

    #[test]
    fn collision_message_reads_well() {
        let c = Collision {
            name: "gh__list_issues".into(),
            first: ("github".into(), "list-issues".into()),
            second: ("gh".into(), "list_issues".into()),
        };
        assert_eq!(
            c.to_string(),
            "exposed tool name \"gh__list_issues\" is claimed by both github.list-issues and \
             gh.list_issues; give one of them an override name (1-64 characters from A-Z a-z \
             0-9 _ -)"
        );
    }

    #[test]
    fn overrides_are_used_as_is_and_resolve_collisions() {
        let (names, collisions) = assign(
            &[
                entry("gh", "a.b", None),
                entry("gh", "a_b", Some("gh_a_underscore_b")),
            ],
            P,
        )
        .expect("valid");
        assert!(collisions.is_empty());
        assert_eq!(names[1].name, "gh_a_underscore_b");
        assert_eq!(names[1].tool, "a_b");
    }

    #[test]
    fn overrides_take_part_in_collision_detection() {
        let (_, collisions) = assign(
            &[
                entry("gh", "list", None),
                entry("crm", "x", Some("gh__list")),
            ],
            P,
        )
        .expect("valid");
        assert_eq!(collisions.len(), 1);
        assert_eq!(collisions[0].second, ("crm".into(), "x".into()));
    }

    #[test]
    fn invalid_overrides_are_rejected_by_name() {
        for bad in ["", "has.dot", "with space", "ünï", &"x".repeat(65)] {
            let err = assign(&[entry("gh", "t", Some(bad))], P).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("gh.t"), "{err}");
        }
    }

    #[test]
    fn invalid_separator_is_rejected() {
        let err = assign(&[entry("gh", "t", None)], Style::Prefixed(".")).expect_err("bad sep");
        assert!(err.contains("separator \".\""), "{err}");
        assert!(assign(&[], P).is_ok());
    }

    #[test]
    fn own_names_are_the_upstreams_names_mapped_the_same_way() {
        assert_eq!(exposed(Style::Own, "github", "list_issues"), "list_issues");
        assert_eq!(exposed(Style::Own, "fs", "read.file"), "read_file");
        let long = "t".repeat(70);
        let name = exposed(Style::Own, "up", &long);
        assert_eq!(name.len(), 64);
        assert_eq!(&name[..55], &long[..55]);
        assert_eq!(exposed(P, "gh", "t"), exposed_name("gh", "__", "t"));
    }

    #[test]
    fn own_names_of_two_upstreams_collide_and_name_both() {
        let (names, collisions) = assign(
            &[
                entry("a", "echo", None),
                entry("b", "echo", None),
                entry("b", "add", None),
                entry("c", "echo", Some("c_echo")),
            ],
            Style::Own,
        )
        .expect("no separator to check");
        let got: Vec<_> = names.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(got, ["echo", "echo", "add", "c_echo"]);
        assert_eq!(collisions.len(), 1);
        let msg = collisions[0].to_string();
        assert!(msg.contains("a.echo and b.echo"), "{msg}");
        assert!(msg.contains("override"), "{msg}");
    }
}
