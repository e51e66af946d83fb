//! Rules about tools that both the configuration and the request path apply: which
//! `upstream.tool` names an allow/deny pattern selects ([`pattern`]) and which exposed tool
//! names and separators are well-formed ([`names`]).
//!
//! A leaf: pure functions over strings, depending on nothing else in the crate, so that
//! `config` can check patterns and names at load time without reaching into `registry`
//! (which itself reads the validated config); and argument rules ([`arguments`]), checked by
//! `decision::decide` on the bytes the upstream executes.

pub mod arguments;
pub mod names;
pub mod pattern;
pub mod schema;
pub mod who;
