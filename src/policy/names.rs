//! Which exposed tool names and name separators are well-formed.
//!
//! MCP clients and the model APIs behind them (Claude, OpenAI) accept tool names matching
//! `^[a-zA-Z0-9_-]{1,64}$` only. The configuration checks override names and the separator
//! with these at load time; `registry::naming` builds exposed names that always pass them.

/// Longest exposed tool name MCP clients and model APIs accept.
pub const MAX_EXPOSED_LEN: usize = 64;
/// Longest separator [`valid_separator`] accepts.
pub const MAX_SEPARATOR_LEN: usize = 4;

/// Whether `name` matches `^[a-zA-Z0-9_-]{1,64}$`.
pub fn is_valid_exposed(name: &str) -> bool {
    (1..=MAX_EXPOSED_LEN).contains(&name.len()) && name.chars().all(allowed_char)
}

/// Validate a separator: 1..=4 chars from [A-Za-z0-9_-]
pub fn valid_separator(sep: &str) -> bool {
    (1..=MAX_SEPARATOR_LEN).contains(&sep.len()) && sep.chars().all(allowed_char)
}

/// `[A-Za-z0-9_-]`: the characters of an exposed tool name.
pub fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_check_matches_the_regex() {
        assert!(is_valid_exposed("a"));
        assert!(is_valid_exposed("A-z_0"));
        assert!(is_valid_exposed(&"x".repeat(64)));
        assert!(!is_valid_exposed(""));
        assert!(!is_valid_exposed(&"x".repeat(65)));
        assert!(!is_valid_exposed("a.b"));
        assert!(!is_valid_exposed("a b"));
        assert!(!is_valid_exposed("café"));
        assert!(!is_valid_exposed("a\n"));
    }

    #[test]
    fn separator_validation() {
        for ok in ["_", "__", "-", "--", "_x_", "ab12"] {
            assert!(valid_separator(ok), "{ok:?}");
        }
        for bad in ["", ".", "/", "_____", " ", "é", "::", "a.b"] {
            assert!(!valid_separator(bad), "{bad:?}");
        }
    }
}
