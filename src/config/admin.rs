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

/// What an admin credential may do. `write` and `approve` each include `read`; neither
/// includes the other (separation of duties: who changes the gateway is not, by that, who
/// approves calls through it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminPermission {
    /// `GET /admin/*` (and the probe paths left out of `public_paths`).
    Read,
    /// State changes: `POST /admin/registry/approve` (later: quota resets).
    Write,
    /// Approve or deny calls waiting for a human (`POST /admin/approvals/approve|deny`).
    Approve,
}

impl AdminPermission {
    /// Whether holding `self` is enough for an endpoint that needs `needed`.
    pub fn grants(self, needed: AdminPermission) -> bool {
        self == needed || needed == AdminPermission::Read
    }
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
    /// Who may approve or deny calls waiting for a human (and read).
    pub approve: Option<Principals>,
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

    /// Every permission a JWT principal holds: [`Self::permission`] and `approve`.
    pub fn permissions(&self, caller: &Caller<'_>) -> Vec<AdminPermission> {
        let approves = self
            .approve
            .as_ref()
            .is_some_and(|p| !p.is_everyone() && p.matches(caller));
        self.permission(caller)
            .into_iter()
            .chain(approves.then_some(AdminPermission::Approve))
            .collect()
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
                        ..RawPrincipals::default()
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
            let approve = grant("approve", j.approve)?;
            if read.is_none() && write.is_none() && approve.is_none() {
                return Err(ConfigError::new(
                    "admin.auth.jwt",
                    "grant read, write and/or approve to some subjects, groups or roles",
                ));
            }
            Some(AdminJwtConfig {
                issuer,
                audience: format!("{}{ADMIN_PATH}", auth.resource),
                read,
                write,
                approve,
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
