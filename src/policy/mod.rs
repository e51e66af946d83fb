//! Rules about tools that both the configuration and the request path apply: which
//! `upstream.tool` names an allow/deny pattern selects ([`pattern`]) and which exposed tool
//! names and separators are well-formed ([`names`]).
//!
//! A leaf: pure functions over strings, depending on nothing else in the crate, so that
//! `config` can check patterns and names at load time without reaching into `registry`
//! (which itself reads the validated config). Argument policy is the next thing to land here.

pub mod names;
pub mod pattern;
