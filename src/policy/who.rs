//! Who a rule names ([`Principals`]) and who is asking ([`Caller`]): subjects (bare, or
//! `ISSUER#SUBJECT`), groups, roles, issuers and agents.
//!
//! Pure types, shared by the configuration (which validates them: `config::principals`),
//! virtual-server access and tool rules, admin grants and argument policies.

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
    /// JWT `iss`, or `api-key`; empty for an anonymous caller.
    pub issuer: &'a str,
    pub subject: &'a str,
    pub groups: &'a [String],
    pub roles: &'a [String],
    /// The agent acting for the subject (JWT `act`, or an API key presented with a JWT).
    pub agent: Option<&'a str>,
}

impl Caller<'static> {
    /// A caller on a listener without authentication.
    pub const ANONYMOUS: Caller<'static> = Caller {
        issuer: "",
        subject: "",
        groups: &[],
        roles: &[],
        agent: None,
    };
}

/// Principal matchers; all empty = everyone authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    pub subjects: Vec<SubjectRef>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Token issuers (`auth.jwt.issuers` entries, or `api-key`): every subject they vouch for.
    pub issuers: Vec<String>,
    /// Agents acting for a user (the `act` claim, or the API key presented beside a JWT).
    pub agents: Vec<String>,
}

impl Principals {
    pub fn is_everyone(&self) -> bool {
        self.subjects.is_empty()
            && self.groups.is_empty()
            && self.roles.is_empty()
            && self.issuers.is_empty()
            && self.agents.is_empty()
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
            || (!caller.subject.is_empty() && self.issuers.iter().any(|i| i == caller.issuer))
            || caller
                .agent
                .is_some_and(|a| self.agents.iter().any(|x| x == a))
    }
}
