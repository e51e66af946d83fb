//! Who an access list, a tool rule or an admin grant names ([`Principals`]), and who is
//! asking ([`Caller`]): subjects (bare, or `ISSUER#SUBJECT`), groups and roles.
//!
//! Shared by the `virtual_servers` and `admin` sections; the subject syntax depends on how
//! many JWT issuers `auth` configures, so validation takes the validated [`AuthConfig`].

pub use crate::policy::who::{Caller, Principals, SubjectRef};

use super::raw::RawPrincipals;
use super::{AuthConfig, ConfigError, API_KEY_ISSUER};

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
    let known = |i: &str| i == API_KEY_ISSUER || issuers.iter().any(|j| j == i);
    for (k, i) in p.issuers.iter().enumerate() {
        if !known(i) {
            return Err(ConfigError::new(
                format!("{at}.issuers[{k}]"),
                format!("{i:?} is not one of auth.jwt.issuers nor {API_KEY_ISSUER:?}"),
            ));
        }
    }
    for (field, list) in [
        ("groups", &p.groups),
        ("roles", &p.roles),
        ("agents", &p.agents),
    ] {
        if let Some(k) = list.iter().position(String::is_empty) {
            return Err(ConfigError::new(format!("{at}.{field}[{k}]"), "empty name"));
        }
    }
    Ok(Principals {
        subjects,
        groups: p.groups,
        roles: p.roles,
        issuers: p.issuers,
        agents: p.agents,
    })
}
