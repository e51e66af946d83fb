//! Who an access list, a tool rule or an admin grant names ([`Principals`]), and who is
//! asking ([`Caller`]): subjects (bare, or `ISSUER#SUBJECT`), groups and roles.
//!
//! Shared by the `virtual_servers` and `admin` sections; the subject syntax depends on how
//! many JWT issuers `auth` configures, so validation takes the validated [`AuthConfig`].

use super::raw::RawPrincipals;
use super::{AuthConfig, ConfigError, API_KEY_ISSUER};

/// A subject named in an access list or rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRef {
    /// `Some`: only this issuer's subject (`ISSUER#SUBJECT` in config). `None`: the bare
    /// form, allowed only while at most one JWT issuer is configured; it then names that
    /// issuer's subject and an API key's configured subject alike (the operator assigns both).
    pub issuer: Option<String>,
    pub subject: String,
}

impl std::fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.issuer {
            Some(i) => write!(f, "{i}#{}", self.subject),
            None => f.write_str(&self.subject),
        }
    }
}

/// What principal matchers look at: who is calling, as authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// JWT `iss`, or [`API_KEY_ISSUER`]; empty for an anonymous caller.
    pub issuer: &'a str,
    pub subject: &'a str,
    pub groups: &'a [String],
    pub roles: &'a [String],
}

impl Caller<'static> {
    /// A caller on a listener without authentication.
    pub const ANONYMOUS: Caller<'static> = Caller {
        issuer: "",
        subject: "",
        groups: &[],
        roles: &[],
    };
}

/// Principal matchers; all empty = everyone authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    pub subjects: Vec<SubjectRef>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
}

impl Principals {
    pub fn is_everyone(&self) -> bool {
        self.subjects.is_empty() && self.groups.is_empty() && self.roles.is_empty()
    }

    /// Whether `caller` is named (any list matching is enough). A subject matches only from
    /// its own issuer: issuer B's `alice` is not issuer A's.
    pub fn matches(&self, caller: &Caller<'_>) -> bool {
        let named = |s: &SubjectRef| {
            !caller.subject.is_empty()
                && s.subject == caller.subject
                && s.issuer.as_deref().is_none_or(|i| i == caller.issuer)
        };
        self.is_everyone()
            || self.subjects.iter().any(named)
            || self.groups.iter().any(|g| caller.groups.contains(g))
            || self.roles.iter().any(|r| caller.roles.contains(r))
    }
}

/// Validates an access list or rule's principals at `at`. Subjects are `SUBJECT` or
/// `ISSUER#SUBJECT` (split at the first `#`; issuers cannot contain one). With several JWT
/// issuers a bare subject is refused: which issuer's `alice` it means would be a guess.
pub(super) fn validate(
    at: &str,
    p: RawPrincipals,
    auth: Option<&AuthConfig>,
) -> Result<Principals, ConfigError> {
    let issuers: &[String] = auth
        .and_then(|a| a.jwt.as_ref())
        .map_or(&[], |j| j.issuers.as_slice());
    let mut subjects = Vec::with_capacity(p.subjects.len());
    for (k, s) in p.subjects.into_iter().enumerate() {
        let field = format!("{at}.subjects[{k}]");
        let r = match s.split_once('#') {
            Some((issuer, subject)) => {
                if issuer != API_KEY_ISSUER && !issuers.iter().any(|i| i == issuer) {
                    return Err(ConfigError::new(
                        field,
                        format!("{s:?}: {issuer:?} is not one of auth.jwt.issuers nor {API_KEY_ISSUER:?} (write ISSUER#SUBJECT)"),
                    ));
                }
                SubjectRef {
                    issuer: Some(issuer.to_string()),
                    subject: subject.to_string(),
                }
            }
            None if issuers.len() > 1 => {
                return Err(ConfigError::new(
                    field,
                    format!("{s:?} does not say which issuer it is from; auth.jwt.issuers lists several, so write ISSUER#SUBJECT (e.g. \"{}#{s}\", or \"{API_KEY_ISSUER}#{s}\" for an API key)", issuers[0]),
                ));
            }
            None => SubjectRef {
                issuer: None,
                subject: s,
            },
        };
        if r.subject.is_empty() {
            return Err(ConfigError::new(field, "empty subject"));
        }
        subjects.push(r);
    }
    Ok(Principals {
        subjects,
        groups: p.groups,
        roles: p.roles,
    })
}
