//! Validation of the `admin` section: the operator listener's address, its DNS-rebinding
//! guard (the same `allowed_hosts` / `allowed_origins` shape as listeners), which probe paths
//! are public, and who may read or change state through `/admin/*`.
//!
//! The insecure case is decided here: without `admin.auth` the `/admin/*` API is off (every
//! request gets 403 saying how to turn it on), so an admin port bound to `0.0.0.0` for
//! probes and scraping never exposes the control plane by accident.

use std::net::SocketAddr;

use serde::Deserialize;

use super::listener::{allowed_origins, host_policy, HostPolicy, Listener};
use super::principals::{self, Caller, Principals};
use super::raw::{RawAdmin, RawAdminAuth, RawPrincipals};
use super::syntax::{parse_socket_addr, sha256_hex};
use super::{AuthConfig, ConfigError};

/// Paths served on the admin listener outside `/admin/*`, public unless `public_paths`
/// leaves them out.
pub const PUBLIC_PATHS: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"];

/// What an admin credential may do. `write` includes `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminPermission {
    /// `GET /admin/*` (and the probe paths left out of `public_paths`).
    Read,
    /// State changes: `POST /admin/registry/approve` (later: call approvals, quota resets).
    Write,
}

/// Validated admin listener settings.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub address: SocketAddr,
    pub hosts: HostPolicy,
    /// Lower-cased `scheme://host[:port]` values.
    pub allowed_origins: Vec<String>,
    /// Subset of [`PUBLIC_PATHS`] answered without credentials.
    pub public_paths: Vec<String>,
    /// `None`: the `/admin/*` API is off.
    pub auth: Option<AdminAuthConfig>,
}

/// Validated admin credentials.
#[derive(Debug, Clone)]
pub struct AdminAuthConfig {
    pub tokens: Vec<AdminTokenConfig>,
    pub jwt: Option<AdminJwtConfig>,
}

/// A configured admin bearer token.
#[derive(Debug, Clone)]
pub struct AdminTokenConfig {
    pub name: String,
    pub sha256: [u8; 32],
    pub permission: AdminPermission,
}

/// Validated JWT admin grants.
#[derive(Debug, Clone)]
pub struct AdminJwtConfig {
    /// The only issuer whose tokens may administer.
    pub issuer: String,
    /// The audience admin tokens are verified for, always: `auth.resource` + `/admin`.
    /// `auth.jwt.audiences` does not apply here, and no MCP endpoint may have the path
    /// `/admin` ([`reserve_admin_audience`]), so a token minted for an MCP endpoint is never
    /// an admin credential.
    pub audience: String,
    /// Who may read; never "everyone" (an empty list here means nobody).
    pub read: Option<Principals>,
    pub write: Option<Principals>,
}

impl AdminJwtConfig {
    /// The permission a JWT principal with these attributes holds, if any.
    /// The caller must be from [`Self::issuer`] (checked by the admin API before asking).
    pub fn permission(&self, caller: &Caller<'_>) -> Option<AdminPermission> {
        let named = |p: &Option<Principals>| {
            p.as_ref()
                .is_some_and(|p| !p.is_everyone() && p.matches(caller))
        };
        if named(&self.write) {
            Some(AdminPermission::Write)
        } else if named(&self.read) {
            Some(AdminPermission::Read)
        } else {
            None
        }
    }
}

/// The admin audience is `auth.resource` + [`ADMIN_PATH`]: an MCP endpoint with that path
/// would share it (its tokens would administer), so none may have it while admin JWTs are
/// accepted.
pub(super) fn reserve_admin_audience(
    listeners: &[Listener],
    virtual_servers: &[super::VirtualServer],
) -> Result<(), ConfigError> {
    for (i, l) in listeners.iter().enumerate() {
        if let Some(k) = l.routes.iter().position(|r| r.path == ADMIN_PATH) {
            return Err(ConfigError::new(
                format!("listeners[{i}].routes[{k}].path"),
                format!("{ADMIN_PATH} is reserved: it is the audience of admin tokens (admin.auth.jwt); choose another path"),
            ));
        }
    }
    if let Some(v) = virtual_servers.iter().position(|v| v.route == ADMIN_PATH) {
        return Err(ConfigError::new(
            format!("virtual_servers[{v}].route"),
            format!("{ADMIN_PATH} is reserved: it is the audience of admin tokens (admin.auth.jwt); choose another path"),
        ));
    }
    Ok(())
}

/// Appended to `auth.resource` to make the admin audience.
const ADMIN_PATH: &str = "/admin";

pub(super) fn validate(
    a: RawAdmin,
    listeners: &[Listener],
    auth: Option<&AuthConfig>,
) -> Result<AdminConfig, ConfigError> {
    let address =
        parse_socket_addr(&a.address).map_err(|m| ConfigError::new("admin.address", m))?;
    if listeners.iter().any(|l| l.address == address) {
        return Err(ConfigError::new(
            "admin.address",
            format!("{address} is also a listener address"),
        ));
    }
    let hosts = host_policy("admin", &address, a.allowed_hosts)?;
    let allowed_origins = allowed_origins("admin", &a.allowed_origins)?;
    let admin_auth = match a.auth {
        None => None,
        Some(x) => Some(validate_auth(x, auth)?),
    };
    let public_paths = match a.public_paths {
        None => PUBLIC_PATHS.iter().map(|p| p.to_string()).collect(),
        Some(list) => {
            for (k, p) in list.iter().enumerate() {
                if !PUBLIC_PATHS.contains(&p.as_str()) {
                    return Err(ConfigError::new(
                        format!("admin.public_paths[{k}]"),
                        format!(
                            "{p:?} cannot be public: choose from {} (/admin/* always needs credentials)",
                            PUBLIC_PATHS.join(", ")
                        ),
                    ));
                }
            }
            if admin_auth.is_none() && list.len() < PUBLIC_PATHS.len() {
                return Err(ConfigError::new(
                    "admin.public_paths",
                    "paths left out of public_paths need credentials, but there is no admin.auth section; configure admin.auth or omit public_paths",
                ));
            }
            list
        }
    };
    Ok(AdminConfig {
        address,
        hosts,
        allowed_origins,
        public_paths,
        auth: admin_auth,
    })
}

fn validate_auth(
    a: RawAdminAuth,
    auth: Option<&AuthConfig>,
) -> Result<AdminAuthConfig, ConfigError> {
    let mut tokens: Vec<AdminTokenConfig> = Vec::with_capacity(a.tokens.len());
    for (i, t) in a.tokens.into_iter().enumerate() {
        let at = |f: &str| format!("admin.auth.tokens[{i}].{f}");
        if t.name.trim().is_empty() {
            return Err(ConfigError::new(
                at("name"),
                "must not be empty: it names who made each admin change in the log",
            ));
        }
        if tokens.iter().any(|p| p.name == t.name) {
            return Err(ConfigError::new(
                at("name"),
                format!("duplicate token name {:?}", t.name),
            ));
        }
        let sha256 = sha256_hex(&at("sha256"), &t.sha256)?;
        if tokens.iter().any(|p| p.sha256 == sha256) {
            return Err(ConfigError::new(at("sha256"), "duplicate admin token"));
        }
        // An MCP client's key must never double as an operator credential.
        if let Some(k) = auth.and_then(|x| x.api_keys.iter().position(|k| k.sha256 == sha256)) {
            return Err(ConfigError::new(
                at("sha256"),
                format!("the same key as auth.api_keys[{k}]; give the admin API its own token"),
            ));
        }
        tokens.push(AdminTokenConfig {
            name: t.name,
            sha256,
            permission: t.permission,
        });
    }
    let jwt = match a.jwt {
        None => None,
        Some(j) => {
            let Some((auth, jc)) = auth.and_then(|x| x.jwt.as_ref().map(|j| (x, j))) else {
                return Err(ConfigError::new(
                    "admin.auth.jwt",
                    "needs auth.jwt (its issuers and keys verify admin tokens)",
                ));
            };
            let issuer = match j.issuer {
                Some(iss) if !jc.issuers.contains(&iss) => {
                    return Err(ConfigError::new(
                        "admin.auth.jwt.issuer",
                        format!("{iss:?} is not one of auth.jwt.issuers"),
                    ))
                }
                Some(iss) => iss,
                None => match jc.issuers.as_slice() {
                    [one] => one.clone(),
                    _ => {
                        return Err(ConfigError::new(
                            "admin.auth.jwt.issuer",
                            "required when auth.jwt.issuers lists more than one issuer: name the one trusted to administer",
                        ))
                    }
                },
            };
            let grant = |field: &str, p: Option<RawPrincipals>| match p {
                None => Ok(None),
                Some(p) => {
                    let at = format!("admin.auth.jwt.{field}");
                    // Grants are for `issuer` alone: a subject is bare or names that issuer.
                    for (k, s) in p.subjects.iter().enumerate() {
                        if s.split_once('#').is_some_and(|(i, _)| i != issuer) {
                            return Err(ConfigError::new(
                                format!("{at}.subjects[{k}]"),
                                format!("{s:?}: only subjects of admin.auth.jwt.issuer ({issuer:?}) can administer; write the bare subject"),
                            ));
                        }
                    }
                    let subjects = p
                        .subjects
                        .into_iter()
                        .map(|s| match s.split_once('#') {
                            Some((_, sub)) => sub.to_string(),
                            None => s,
                        })
                        .collect();
                    // Groups and roles of an issuer the gateway does not trust for them are
                    // never read: such a grant could never match.
                    if (!p.groups.is_empty() || !p.roles.is_empty())
                        && !jc.group_issuers.contains(&issuer)
                    {
                        return Err(ConfigError::new(
                            at,
                            format!("grants by group or role need {issuer:?} in auth.jwt.group_issuers (its groups and roles are not trusted otherwise)"),
                        ));
                    }
                    let p = RawPrincipals {
                        subjects,
                        groups: p.groups,
                        roles: p.roles,
                    };
                    let p = principals::validate(&at, p, None)?;
                    if p.is_everyone() {
                        Err(ConfigError::new(
                            format!("admin.auth.jwt.{field}"),
                            "name at least one subject, group or role (an empty grant would admit nobody here, unlike access lists)",
                        ))
                    } else {
                        Ok(Some(p))
                    }
                }
            };
            let read = grant("read", j.read)?;
            let write = grant("write", j.write)?;
            if read.is_none() && write.is_none() {
                return Err(ConfigError::new(
                    "admin.auth.jwt",
                    "grant read and/or write to some subjects, groups or roles",
                ));
            }
            Some(AdminJwtConfig {
                issuer,
                audience: format!("{}{ADMIN_PATH}", auth.resource),
                read,
                write,
            })
        }
    };
    if tokens.is_empty() && jwt.is_none() {
        return Err(ConfigError::new(
            "admin.auth",
            "configure tokens and/or jwt, or remove admin.auth (which turns the /admin/* API off)",
        ));
    }
    Ok(AdminAuthConfig { tokens, jwt })
}

#[cfg(test)]
mod tests {
    use super::super::{from_yaml, AdminPermission, HostPolicy};

    const SHA_A: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const SHA_B: &str = "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7";

    const JWT_AUTH: &str = r#"
auth:
  resource: https://mcp.example.com
  jwt:
    issuers: [https://idp.example.com]
    keys:
      - jwks_file: /etc/keys.json
        algorithms: [RS256]
"#;

    fn with_admin(admin: &str) -> String {
        format!("{BASE}admin:\n{admin}")
    }

    use crate::config::tests::{assert_err, BASE};

    #[test]
    fn without_auth_the_api_is_off_and_probes_are_public_even_on_all_interfaces() {
        let c = from_yaml(&with_admin("  address: 0.0.0.0:9090\n")).unwrap();
        let a = c.admin.unwrap();
        assert!(a.auth.is_none());
        assert_eq!(a.hosts, HostPolicy::Any);
        assert_eq!(a.public_paths.len(), 4);
        assert!(a.allowed_origins.is_empty());
        let c = from_yaml(&with_admin("  address: 127.0.0.1:9090\n")).unwrap();
        assert!(matches!(c.admin.unwrap().hosts, HostPolicy::List(_)));
    }

    #[test]
    fn admin_address_must_parse_and_differ_from_listeners() {
        assert_err(&with_admin("  address: nope\n"), "admin.address", "IP:PORT");
        assert_err(
            &with_admin("  address: 127.0.0.1:8080\n"),
            "admin.address",
            "also a listener",
        );
    }

    #[test]
    fn host_and_origin_lists_are_checked_like_listeners() {
        assert_err(
            &with_admin("  address: 127.0.0.1:9090\n  allowed_hosts: []\n"),
            "admin.allowed_hosts",
            "empty list",
        );
        assert_err(
            &with_admin("  address: 127.0.0.1:9090\n  allowed_hosts: [\"a/b\"]\n"),
            "admin.allowed_hosts[0]",
            "invalid host",
        );
        assert_err(
            &with_admin("  address: 127.0.0.1:9090\n  allowed_origins: [\"http://x/y\"]\n"),
            "admin.allowed_origins[0]",
            "no path",
        );
        let c = from_yaml(&with_admin(
            "  address: 0.0.0.0:9090\n  allowed_hosts: [ops.internal]\n  allowed_origins: [\"https://Ops.internal\"]\n",
        ))
        .unwrap();
        let a = c.admin.unwrap();
        assert_eq!(a.hosts, HostPolicy::List(vec!["ops.internal".into()]));
        assert_eq!(a.allowed_origins, ["https://ops.internal"]);
    }

    #[test]
    fn public_paths_are_a_subset_of_the_probe_paths() {
        assert_err(
            &with_admin("  address: 127.0.0.1:9090\n  public_paths: [/admin/registry]\n"),
            "admin.public_paths[0]",
            "cannot be public",
        );
        let tok = format!(
            "  auth:\n    tokens:\n      - {{name: ops, sha256: {SHA_A}, permission: read}}\n"
        );
        let c = from_yaml(&with_admin(&format!(
            "  address: 127.0.0.1:9090\n  public_paths: [/healthz]\n{tok}"
        )))
        .unwrap();
        assert_eq!(c.admin.unwrap().public_paths, ["/healthz"]);
    }

    #[test]
    fn a_path_taken_out_of_public_paths_needs_admin_auth() {
        assert_err(
            &with_admin("  address: 127.0.0.1:9090\n  public_paths: [/healthz]\n"),
            "admin.public_paths",
            "no admin.auth",
        );
    }

    #[test]
    fn tokens_need_a_name_a_hash_and_a_permission() {
        let t = |name: &str, sha: &str, perm: &str| {
            with_admin(&format!(
                "  address: 127.0.0.1:9090\n  auth:\n    tokens:\n      - {{name: {name:?}, sha256: {sha}, permission: {perm}}}\n"
            ))
        };
        let c = from_yaml(&t("ops", SHA_A, "write")).unwrap();
        let a = c.admin.unwrap().auth.unwrap();
        assert_eq!(a.tokens[0].permission, AdminPermission::Write);
        assert_eq!(a.tokens[0].name, "ops");
        assert_err(
            &t("", SHA_A, "read"),
            "admin.auth.tokens[0].name",
            "must not be empty",
        );
        assert_err(
            &t("ops", "abc", "read"),
            "admin.auth.tokens[0].sha256",
            "64 hex",
        );
        assert_err(
            &t("ops", SHA_A, "admin"),
            "admin.auth.tokens[0].permission",
            "unknown variant",
        );
    }

    #[test]
    fn duplicate_token_names_and_hashes_are_refused() {
        let two = |n2: &str, s2: &str| {
            with_admin(&format!(
                "  address: 127.0.0.1:9090\n  auth:\n    tokens:\n      - {{name: a, sha256: {SHA_A}, permission: read}}\n      - {{name: {n2}, sha256: {s2}, permission: write}}\n"
            ))
        };
        assert!(from_yaml(&two("b", SHA_B)).is_ok());
        assert_err(&two("a", SHA_B), "admin.auth.tokens[1].name", "duplicate");
        assert_err(&two("b", SHA_A), "admin.auth.tokens[1].sha256", "duplicate");
    }

    #[test]
    fn an_api_key_cannot_double_as_an_admin_token() {
        let y = format!(
            "{BASE}auth:\n  resource: https://mcp.example.com\n  api_keys:\n    - {{sha256: {SHA_A}, subject: agent}}\nadmin:\n  address: 127.0.0.1:9090\n  auth:\n    tokens:\n      - {{name: ops, sha256: {SHA_A}, permission: write}}\n"
        );
        assert_err(&y, "admin.auth.tokens[0].sha256", "auth.api_keys[0]");
    }

    #[test]
    fn empty_admin_auth_is_refused() {
        assert_err(
            &with_admin("  address: 127.0.0.1:9090\n  auth: {}\n"),
            "admin.auth",
            "tokens and/or jwt",
        );
    }

    #[test]
    fn jwt_grants_need_auth_jwt() {
        assert_err(
            &with_admin(
                "  address: 127.0.0.1:9090\n  auth:\n    jwt:\n      write: {roles: [ops]}\n",
            ),
            "admin.auth.jwt",
            "needs auth.jwt",
        );
    }

    #[test]
    fn jwt_grants_must_name_someone() {
        let y = |jwt: &str| {
            format!("{BASE}{JWT_AUTH}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n{jwt}")
        };
        assert_err(
            &y("      read: {}\n"),
            "admin.auth.jwt.read",
            "at least one",
        );
        assert_err(
            &y("      write: {roles: []}\n"),
            "admin.auth.jwt.write",
            "at least one",
        );
        assert_err(&y("      issuer: null\n"), "admin.auth.jwt", "grant read");
        let c = from_yaml(&y(
            "      read: {groups: [sre]}\n      write: {roles: [gateway-admin]}\n",
        ))
        .unwrap();
        let j = c.admin.unwrap().auth.unwrap().jwt.unwrap();
        assert_eq!(j.issuer, "https://idp.example.com");
        assert_eq!(j.audience, "https://mcp.example.com/admin");
        let none: Vec<String> = vec![];
        let roles = vec!["gateway-admin".to_string()];
        let groups = vec!["sre".to_string()];
        let caller = |groups, roles| crate::config::Caller {
            issuer: "https://idp.example.com",
            subject: "x",
            groups,
            roles,
        };
        assert_eq!(
            j.permission(&caller(&none, &roles)),
            Some(AdminPermission::Write)
        );
        assert_eq!(
            j.permission(&caller(&groups, &none)),
            Some(AdminPermission::Read)
        );
        assert_eq!(j.permission(&caller(&none, &none)), None);
    }

    #[test]
    fn jwt_grant_subjects_belong_to_the_admin_issuer() {
        let y = |jwt: &str| {
            format!("{BASE}{JWT_AUTH}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n{jwt}")
        };
        assert_err(
            &y("      write: {subjects: [\"https://other.example.com#alice\"]}\n"),
            "admin.auth.jwt.write.subjects[0]",
            "only subjects of admin.auth.jwt.issuer",
        );
        assert_err(
            &y("      write: {subjects: [\"api-key#ci\"]}\n"),
            "admin.auth.jwt.write.subjects[0]",
            "only subjects of admin.auth.jwt.issuer",
        );
        // Qualified with the admin issuer, or bare: the same subject.
        for s in ["https://idp.example.com#alice", "alice"] {
            let c = from_yaml(&y(&format!("      write: {{subjects: [\"{s}\"]}}\n"))).unwrap();
            let j = c.admin.unwrap().auth.unwrap().jwt.unwrap();
            let alice = crate::config::Caller {
                issuer: "https://idp.example.com",
                subject: "alice",
                groups: &[],
                roles: &[],
            };
            assert_eq!(j.permission(&alice), Some(AdminPermission::Write), "{s}");
        }
        // Groups of an issuer whose groups are not trusted could never match.
        let untrusted = y("      write: {roles: [ops]}\n").replace(
            "issuers: [https://idp.example.com]",
            "issuers: [https://idp.example.com]\n    group_issuers: []",
        );
        assert_err(&untrusted, "admin.auth.jwt.write", "group_issuers");
    }

    #[test]
    fn the_admin_audience_path_is_reserved_while_admin_jwts_are_accepted() {
        let y = format!(
            "{BASE}{JWT_AUTH}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n      write: {{roles: [ops]}}\n"
        );
        let route = y.replace("      - path: /mcp", "      - path: /admin");
        assert_err(&route, "listeners[0].routes[0].path", "reserved");
        let vs = format!(
            "{y}virtual_servers:\n  - {{ name: a, route: /admin, access: {{ roles: [x] }} }}\n"
        );
        assert_err(&vs, "virtual_servers[0].route", "reserved");
        // Without admin JWTs the path is an ordinary one.
        let plain = BASE.replace("      - path: /mcp", "      - path: /admin");
        assert!(from_yaml(&plain).is_ok());
    }

    #[test]
    fn jwt_issuer_must_be_configured_and_is_required_with_several() {
        let two = JWT_AUTH
            .replace(
                "issuers: [https://idp.example.com]",
                "issuers: [https://idp.example.com, https://other.example.com]\n    group_issuers: [https://idp.example.com]",
            )
            .replace(
                "        algorithms: [RS256]",
                "        algorithms: [RS256]\n        issuer: https://idp.example.com",
            );
        let y = |auth: &str, iss: &str| {
            format!("{BASE}{auth}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n{iss}      write: {{subjects: [alice]}}\n")
        };
        assert_err(
            &y(&two, ""),
            "admin.auth.jwt.issuer",
            "more than one issuer",
        );
        assert_err(
            &y(JWT_AUTH, "      issuer: https://evil.example.com\n"),
            "admin.auth.jwt.issuer",
            "not one of auth.jwt.issuers",
        );
        let c = from_yaml(&y(&two, "      issuer: https://other.example.com\n")).unwrap();
        assert_eq!(
            c.admin.unwrap().auth.unwrap().jwt.unwrap().issuer,
            "https://other.example.com"
        );
    }
}
