//! `GET /admin/quotas?subject=SUBJECT[&issuer=..][&agent=..][&group=..][&virtual_server=..]
//! [&upstream=..][&tool=..]`: what is left of every limit for one caller (read permission).
//! The answer is bounded: one entry per limit (per issuer, for limits keyed by subject, when
//! `issuer` is left out), at most `quota::MAX_REPORTED`.

use crate::quota::ReportQuery;
use crate::state::{Runtime, Shared};

use super::AdminError;

const EXAMPLE: &str = "/admin/quotas?subject=alice[&issuer=..&agent=..&group=..&virtual_server=..&upstream=..&tool=..]";
/// Longest value a query parameter may have (subjects and names are far shorter).
const MAX_VALUE: usize = 512;

pub(super) fn parse_query(query: Option<&str>) -> Result<ReportQuery, AdminError> {
    let bad = |reason: String| AdminError::BadQuery {
        reason,
        example: EXAMPLE,
    };
    let mut q = ReportQuery::default();
    let mut subject = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if v.len() > MAX_VALUE {
            return Err(bad(format!("{k} is longer than {MAX_VALUE} bytes")));
        }
        let slot = match k.as_ref() {
            "subject" => &mut subject,
            "issuer" => &mut q.issuer,
            "agent" => &mut q.agent,
            "group" => &mut q.group,
            "virtual_server" => &mut q.virtual_server,
            "upstream" => &mut q.upstream,
            "tool" => &mut q.tool,
            other => {
                return Err(bad(format!(
                    "unknown parameter {:?}",
                    crate::error::clip(other)
                )))
            }
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(bad(format!("{k} is given twice")));
        }
    }
    q.subject = subject.ok_or_else(|| bad("subject is required".into()))?;
    Ok(q)
}

pub(super) async fn report(
    shared: &Shared,
    rt: &Runtime,
    query: &ReportQuery,
) -> serde_json::Value {
    // The issuers a subject can come from: API keys and each configured JWT issuer.
    let mut issuers = vec![crate::config::API_KEY_ISSUER.to_string()];
    if let Some(jwt) = rt.config.auth.as_ref().and_then(|a| a.jwt.as_ref()) {
        issuers.extend(jwt.issuers.iter().cloned());
    }
    if rt.config.auth.is_none() {
        issuers = vec![String::new()]; // anonymous callers only
    }
    shared
        .quotas
        .report(&rt.config.quotas, rt.redis.as_ref(), query, &issuers)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_needs_a_subject_and_takes_known_parameters_once() {
        let q = parse_query(Some("subject=a%20b&group=red&tool=echo")).unwrap();
        assert_eq!(
            (q.subject.as_str(), q.group.as_deref(), q.tool.as_deref()),
            ("a b", Some("red"), Some("echo"))
        );
        for bad in [
            None,
            Some("group=red"),
            Some("subject=a&subject=b"),
            Some("subject=a&who=b"),
        ] {
            assert!(
                matches!(parse_query(bad), Err(AdminError::BadQuery { .. })),
                "{bad:?}"
            );
        }
        let long = format!("subject={}", "x".repeat(MAX_VALUE + 1));
        assert!(parse_query(Some(&long)).is_err());
    }
}
