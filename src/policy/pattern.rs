//! Allow/deny patterns that decide which upstream tools a virtual server exposes.
//!
//! A pattern is `<upstream>.<tool>`, each side a glob where `*` matches any run of characters
//! (possibly empty) and every other character matches itself (case-sensitive):
//! `github.list_issues`, `github.get_*`, `crm.*`, `*.read_*`. Tool names may themselves contain
//! `.`, upstream names cannot (`[A-Za-z0-9_-]{1,32}`), so a pattern is split at its *first*
//! `.`: `fs.dir.list` is upstream `fs`, tool `dir.list`.
//!
//! Matching is hand-written rather than a regex: patterns come from operator config and tool
//! names from upstream servers, and the iterative star-backtracking match below is O(n·m) in
//! the worst case, so no pattern/name pair can make it blow up. A [`Selection`] combines allow
//! and deny lists (deny wins; an empty allow list selects everything) and can say why a tool
//! is hidden, for the operator CLI.

/// What [`ToolPattern::parse`] error messages tell the operator to write.
const EXPECTED_FORM: &str = "expected <upstream>.<tool>, where the upstream part uses only \
    A-Z a-z 0-9 _ - and either side may use * as a wildcard (e.g. github.list_issues, \
    github.get_*, crm.*, *.read_*)";

/// One `upstream.tool` glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPattern {
    /// The pattern as written, for messages.
    raw: String,
    /// Glob over the upstream name: `[A-Za-z0-9_*-]+`.
    upstream: String,
    /// Glob over the tool name: anything non-empty, may contain `.`.
    tool: String,
}

impl ToolPattern {
    /// Parse `upstream.tool`, splitting at the first `.`. Errors name the pattern and the
    /// expected form.
    pub fn parse(s: &str) -> Result<ToolPattern, String> {
        if s.is_empty() {
            return Err(format!("tool pattern is empty; {EXPECTED_FORM}"));
        }
        let Some((upstream, tool)) = s.split_once('.') else {
            return Err(format!(
                "tool pattern {s:?} has no '.' between upstream and tool; {EXPECTED_FORM}"
            ));
        };
        if upstream.is_empty() {
            return Err(format!(
                "tool pattern {s:?} has an empty upstream part (use * for any upstream); \
                 {EXPECTED_FORM}"
            ));
        }
        if tool.is_empty() {
            return Err(format!(
                "tool pattern {s:?} has an empty tool part (use * for every tool); \
                 {EXPECTED_FORM}"
            ));
        }
        if let Some(bad) = upstream
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '*'))
        {
            return Err(format!(
                "tool pattern {s:?} has {bad:?} in its upstream part {upstream:?}; \
                 {EXPECTED_FORM}"
            ));
        }
        Ok(ToolPattern {
            raw: s.to_owned(),
            upstream: upstream.to_owned(),
            tool: tool.to_owned(),
        })
    }

    /// Whether the tool `tool` on upstream `upstream` matches: both sides must match their glob.
    pub fn matches(&self, upstream: &str, tool: &str) -> bool {
        glob(self.upstream.as_bytes(), upstream.as_bytes())
            && glob(self.tool.as_bytes(), tool.as_bytes())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the upstream part can match upstream `name` (which upstreams a virtual server
    /// includes).
    pub fn matches_upstream(&self, name: &str) -> bool {
        glob(self.upstream.as_bytes(), name.as_bytes())
    }

    /// Whether the upstream part is exactly `name`, with no wildcard (an explicit reference).
    pub fn names_upstream_exactly(&self, name: &str) -> bool {
        self.upstream == name
    }
}

/// A selection: a tool is selected when some allow pattern matches (an empty allow list
/// matches everything) and no deny pattern matches. Deny wins.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub allow: Vec<ToolPattern>,
    pub deny: Vec<ToolPattern>,
}

impl Selection {
    /// Whether the tool is exposed by this selection.
    pub fn selects(&self, upstream: &str, tool: &str) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|p| p.matches(upstream, tool));
        allowed && !self.deny.iter().any(|p| p.matches(upstream, tool))
    }

    /// Why a tool is hidden, for the operator CLI: `Some("denied by crm.delete_*")` (the first
    /// matching deny pattern), `Some("not matched by any allow pattern")`, or `None` when the
    /// tool is selected.
    pub fn why_hidden(&self, upstream: &str, tool: &str) -> Option<String> {
        if let Some(deny) = self.deny.iter().find(|p| p.matches(upstream, tool)) {
            return Some(format!("denied by {}", deny.as_str()));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|p| p.matches(upstream, tool)) {
            return Some("not matched by any allow pattern".to_owned());
        }
        None
    }
}

/// Glob match where `*` matches any run of bytes (possibly empty) and every other byte matches
/// itself. Byte-wise is exact for UTF-8: `*` is ASCII and a literal multi-byte character can only
/// match the same character.
///
/// Iterative: on a mismatch, resume from the most recent `*` with one more text byte consumed by
/// it. Earlier stars never need revisiting (a later star can absorb whatever they would have),
/// so the work is at most pattern length × text length.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // (pattern index just after the last `*`, text index that star's match ends at)
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                resume = Some((p, t));
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => {
                let Some((star_p, star_t)) = resume else {
                    return false;
                };
                p = star_p;
                t = star_t + 1;
                resume = Some((star_p, t));
            }
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> ToolPattern {
        ToolPattern::parse(s).expect(s)
    }

    fn sel(allow: &[&str], deny: &[&str]) -> Selection {
        Selection {
            allow: allow.iter().map(|s| pat(s)).collect(),
            deny: deny.iter().map(|s| pat(s)).collect(),
        }
    }

    #[test]
    fn exact_pattern() {
        let p = pat("github.list_issues");
        assert!(p.matches("github", "list_issues"));
        assert!(!p.matches("github", "list_issue"));
        assert!(!p.matches("github", "list_issuesX"));
        assert!(!p.matches("gitlab", "list_issues"));
        assert!(!p.matches("GitHub", "list_issues"), "case-sensitive");
        assert_eq!(p.as_str(), "github.list_issues");
    }

    #[test]
    fn prefix_suffix_and_infix_globs() {
        let prefix = pat("github.get_*");
        assert!(prefix.matches("github", "get_"));
        assert!(prefix.matches("github", "get_issue"));
        assert!(!prefix.matches("github", "list_issue"));
        assert!(!prefix.matches("github", "xget_issue"));

        let suffix = pat("*.*_issue");
        assert!(suffix.matches("gh", "get_issue"));
        assert!(suffix.matches("other", "_issue"));
        assert!(!suffix.matches("gh", "get_issues"));

        let infix = pat("*.read_*_file");
        assert!(infix.matches("fs", "read__file"));
        assert!(infix.matches("fs", "read_big_file"));
        assert!(!infix.matches("fs", "read_file"));
        assert!(!infix.matches("fs", "xread_big_file"));

        let mid = pat("git*b.list");
        assert!(mid.matches("github", "list"));
        assert!(mid.matches("gitb", "list"));
        assert!(!mid.matches("gitlab2", "list"));
    }

    #[test]
    fn star_alone_matches_everything() {
        let p = pat("*.*");
        for (u, t) in [
            ("a", "b"),
            ("github", "list.issues"),
            ("x", "日本"),
            ("", ""),
        ] {
            assert!(p.matches(u, t), "{u}.{t}");
        }
        assert!(pat("crm.*").matches("crm", "anything.at.all"));
        assert!(!pat("crm.*").matches("crm2", "x"));
    }

    #[test]
    fn multiple_stars() {
        let p = pat("*.a*b*c");
        assert!(p.matches("u", "abc"));
        assert!(p.matches("u", "aXXbYYc"));
        assert!(p.matches("u", "abcabc"));
        assert!(p.matches("u", "acbc"));
        assert!(!p.matches("u", "acb"));
        assert!(!p.matches("u", "bac"));
        assert!(pat("u.**x**").matches("u", "x"));
        assert!(pat("u.a**").matches("u", "a"));
        assert!(!pat("u.a**").matches("u", ""));
    }

    #[test]
    fn tool_names_with_dots_split_at_the_first_dot() {
        let p = pat("fs.dir.list");
        assert!(p.matches("fs", "dir.list"));
        assert!(!p.matches("fs.dir", "list"));
        let p = pat("fs.dir.*");
        assert!(p.matches("fs", "dir.list"));
        assert!(p.matches("fs", "dir."));
        assert!(!p.matches("fs", "dirlist"));
        assert!(pat("*.*.read").matches("docs", "v2.read"));
    }

    #[test]
    fn non_ascii_tool_names() {
        assert!(pat("wiki.caf*").matches("wiki", "café"));
        assert!(pat("wiki.*é").matches("wiki", "café"));
        assert!(!pat("wiki.*e").matches("wiki", "café"));
    }

    #[test]
    fn pathological_patterns_complete() {
        let text = "a".repeat(10_000);
        let p = pat("*a*a*a*a*a*a*a*a*a*a*a*b.a*a*a*a*a*a*a*a*a*a*b");
        assert!(!p.matches(&text, &text));
        let p = pat("u.a*a*a*a*a*b");
        assert!(!p.matches("u", &text));
        assert!(p.matches("u", &format!("{text}b")));
    }

    #[test]
    fn glob_agrees_with_a_naive_reference() {
        fn naive(p: &[u8], t: &[u8]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some((b'*', rest)) => (0..=t.len()).any(|i| naive(rest, &t[i..])),
                Some((c, rest)) => t.first() == Some(c) && naive(rest, &t[1..]),
            }
        }
        let pats = [
            "", "*", "a", "a*", "*a", "*a*", "a*b", "*ab*", "a**b", "*a*b*", "ab*ba",
        ];
        let texts = [
            "", "a", "b", "ab", "ba", "aab", "abab", "abba", "bab", "aaa", "abcba",
        ];
        for p in pats {
            for t in texts {
                assert_eq!(
                    glob(p.as_bytes(), t.as_bytes()),
                    naive(p.as_bytes(), t.as_bytes()),
                    "{p:?} vs {t:?}"
                );
            }
        }
    }

    #[test]
    fn parse_errors_name_the_pattern_and_the_form() {
        let cases = [
            ("", "empty"),
            ("github", "no '.'"),
            (".list", "empty upstream"),
            ("github.", "empty tool"),
            ("git hub.list", "' '"),
            ("git/hub.list", "'/'"),
            ("gïthub.list", "'ï'"),
        ];
        for (input, why) in cases {
            let err = ToolPattern::parse(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err}");
            if !input.is_empty() {
                assert!(err.contains(&format!("{input:?}")), "{input:?}: {err}");
            }
            assert!(err.contains("<upstream>.<tool>"), "{input:?}: {err}");
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let s = sel(&["crm.*"], &["crm.delete_*"]);
        assert!(s.selects("crm", "get_contact"));
        assert!(!s.selects("crm", "delete_contact"));
        assert!(!s.selects("github", "list_issues"));
    }

    #[test]
    fn empty_allow_selects_everything_not_denied() {
        let s = Selection::default();
        assert!(s.selects("any", "tool"));
        assert_eq!(s.why_hidden("any", "tool"), None);
        let s = sel(&[], &["*.delete_*"]);
        assert!(s.selects("crm", "get"));
        assert!(!s.selects("crm", "delete_all"));
    }

    #[test]
    fn why_hidden_messages() {
        let s = sel(&["crm.*", "github.get_*"], &["*.drop", "crm.delete_*"]);
        assert_eq!(
            s.why_hidden("crm", "delete_contact").as_deref(),
            Some("denied by crm.delete_*")
        );
        assert_eq!(
            s.why_hidden("github", "drop").as_deref(),
            Some("denied by *.drop"),
            "deny is reported even when allow does not match either"
        );
        assert_eq!(
            s.why_hidden("github", "list_issues").as_deref(),
            Some("not matched by any allow pattern")
        );
        assert_eq!(s.why_hidden("github", "get_issue"), None);
        for (u, t) in [
            ("crm", "delete_contact"),
            ("crm", "get"),
            ("github", "drop"),
            ("github", "get_issue"),
            ("github", "list_issues"),
        ] {
            assert_eq!(s.selects(u, t), s.why_hidden(u, t).is_none(), "{u}.{t}");
        }
    }
}
