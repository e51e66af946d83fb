//! A typed builder for test gateway configs, rendered to the YAML an operator would write.
//!
//! Why a serde mirror rendered to YAML, and not `format!` templates or the crate's own
//! `config::raw` structs:
//! - `format!` templates were copied from test to test (the same listener, upstream, JWT and
//!   vault blocks), spliced together with raw indented snippets (`"    read_timeout: 300ms"`),
//!   and a wrong indent or an unquoted path only showed up as a load error at run time.
//!   Here nesting and quoting are right by construction.
//! - `config::raw` is the loader's input: deserialize-only, every default filled in. Serializing
//!   it would write every default (hiding what a test sets) and make production types carry
//!   a test-only `Serialize`. The mirror writes only what a test set (every field is optional
//!   or skipped when empty), so [`Gateway::yaml`](super::Gateway) reads like a hand-written
//!   config, and it still goes through `config::from_yaml`: the real loader, whose
//!   `deny_unknown_fields` fails a mirror field that drifted from the file format.
//! - Modes are the crate's own enums ([`PropagationMode`], [`ListenerAuth`], [`OnChange`],
//!   [`AdminPermission`]), written by an exhaustive `match`: a new variant breaks this file's
//!   build until it knows the spelling. Secret references are a [`SecretRef`], algorithms
//!   `jsonwebtoken`'s `Algorithm`.
//!
//! Tests about a config edge case keep their literal YAML, so the case is visible as written.
//! `{LISTEN}` and `{ADMIN}` stay placeholders, filled in by [`super::start_gateway`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use jsonwebtoken::Algorithm;
pub use mcp_gateway::config::raw::{AdminPermission, ListenerAuth, OnChange, PropagationMode};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::tokens::{sha256_hex, ISSUER};
use super::{ADMIN_APPROVE_TOKEN, ADMIN_READ_TOKEN, ADMIN_WRITE_TOKEN};

/// A whole gateway config. [`Config::new`] has the admin listener on `{ADMIN}`:
/// [`super::start_gateway`] waits until it accepts.
#[derive(Debug, Serialize)]
pub struct Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<Server>,
    listeners: Vec<Listener>,
    upstreams: Vec<Upstream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<Admin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<Auth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault: Option<Vault>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<Registry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    virtual_servers: Vec<VirtualServer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<Sessions>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    pub fn new() -> Config {
        Config {
            server: None,
            listeners: Vec::new(),
            upstreams: Vec::new(),
            admin: Some(Admin::default()),
            limits: None,
            auth: None,
            vault: None,
            registry: None,
            virtual_servers: Vec::new(),
            sessions: None,
        }
    }

    /// The plain proxy most tests start from: an `auth: none` listener whose `/mcp` goes to
    /// `upstream`, quick shutdown (2 threads, no grace period), an Inspector origin allowed.
    pub fn one_route(upstream: Upstream) -> Config {
        let route = Listener::new()
            .auth(ListenerAuth::None)
            .allowed_origins(&["http://localhost:6274"])
            .route("/mcp", &upstream.name);
        Config::new()
            .server(Server {
                threads: Some(2),
                grace_period_seconds: Some(0),
                graceful_shutdown_timeout_seconds: Some(1),
            })
            .listener(route)
            .upstream(upstream)
    }

    /// The rendered YAML template (with `{LISTEN}` and `{ADMIN}` left for `start_gateway`).
    pub fn yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| panic!("render test config: {e}"))
    }

    pub fn server(mut self, server: Server) -> Config {
        self.server = Some(server);
        self
    }
    pub fn listener(mut self, l: Listener) -> Config {
        self.listeners.push(l);
        self
    }
    pub fn upstream(mut self, u: Upstream) -> Config {
        self.upstreams.push(u);
        self
    }
    pub fn admin(mut self, a: Admin) -> Config {
        self.admin = Some(a);
        self
    }
    /// No `admin:` section, for configs the CLI reads rather than [`super::start_gateway`]
    /// (which waits for the admin listener).
    pub fn without_admin(mut self) -> Config {
        self.admin = None;
        self
    }
    /// `limits:`, left out when `l` sets nothing.
    pub fn limits(mut self, l: Limits) -> Config {
        let set = l.max_request_body_bytes.is_some()
            || l.max_json_depth.is_some()
            || l.max_parked_calls_per_principal.is_some()
            || l.max_streams_per_principal.is_some()
            || l.max_event_sessions_per_principal.is_some();
        self.limits = set.then_some(l);
        self
    }
    pub fn auth(mut self, a: Auth) -> Config {
        self.auth = Some(a);
        self
    }
    pub fn vault(mut self, path: &Path, key: SecretRef) -> Config {
        self.vault = Some(Vault {
            path: path.display().to_string(),
            key,
        });
        self
    }
    pub fn registry(mut self, r: Registry) -> Config {
        self.registry = Some(r);
        self
    }
    pub fn virtual_server(mut self, v: VirtualServer) -> Config {
        self.virtual_servers.push(v);
        self
    }
    /// `sessions.key`: the sealing key shared by replicas.
    pub fn session_key(mut self, key: SecretRef) -> Config {
        self.sessions = Some(Sessions { key });
        self
    }
}

/// A secret reference as the config file spells it.
#[derive(Debug, Clone)]
pub enum SecretRef {
    /// `file:PATH`
    File(String),
    /// `secret:NAME` (the vault)
    Vault(String),
}

impl SecretRef {
    pub fn file(path: &Path) -> SecretRef {
        SecretRef::File(path.display().to_string())
    }
    pub fn vault(name: &str) -> SecretRef {
        SecretRef::Vault(name.into())
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&match self {
            SecretRef::File(p) => format!("file:{p}"),
            SecretRef::Vault(n) => format!("secret:{n}"),
        })
    }
}

fn listener_auth<S: Serializer>(a: &ListenerAuth, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match a {
        ListenerAuth::Required => "required",
        ListenerAuth::None => "none",
    })
}

fn propagation_mode<S: Serializer>(m: &PropagationMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match m {
        PropagationMode::None => "none",
        PropagationMode::Passthrough => "passthrough",
        PropagationMode::Static => "static",
        PropagationMode::PerUser => "per_user",
        PropagationMode::SignedIdentity => "signed_identity",
        PropagationMode::TokenExchange => "token_exchange",
    })
}

fn on_change<S: Serializer>(o: &Option<OnChange>, s: S) -> Result<S::Ok, S::Error> {
    match o {
        Some(OnChange::Quarantine) => s.serialize_str("quarantine"),
        Some(OnChange::Alert) => s.serialize_str("alert"),
        Some(OnChange::Accept) => s.serialize_str("accept"),
        None => s.serialize_none(),
    }
}

fn admin_permission<S: Serializer>(p: &AdminPermission, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match p {
        AdminPermission::Read => "read",
        AdminPermission::Write => "write",
        AdminPermission::Approve => "approve",
    })
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// `server:` (process settings); unset fields keep the gateway's defaults.
#[derive(Debug, Default, Serialize)]
pub struct Server {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graceful_shutdown_timeout_seconds: Option<u64>,
}

/// `limits:`; unset fields keep the gateway's defaults.
#[derive(Debug, Default, Serialize)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_json_depth: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parked_calls_per_principal: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_streams_per_principal: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_sessions_per_principal: Option<usize>,
}

/// One `listeners[]` entry; [`Listener::new`] binds `{LISTEN}` with the default
/// `auth: required`.
#[derive(Debug, Serialize)]
pub struct Listener {
    address: String,
    #[serde(serialize_with = "listener_auth")]
    auth: ListenerAuth,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_origins: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    virtual_servers: Option<Vec<String>>,
    routes: Vec<Route>,
}

#[derive(Debug, Serialize)]
struct Route {
    path: String,
    upstream: String,
}

impl Default for Listener {
    fn default() -> Self {
        Listener::new()
    }
}

impl Listener {
    pub fn new() -> Listener {
        Listener::at("{LISTEN}")
    }
    pub fn at(address: &str) -> Listener {
        Listener {
            address: address.into(),
            auth: ListenerAuth::Required,
            allowed_origins: Vec::new(),
            virtual_servers: None,
            routes: Vec::new(),
        }
    }
    pub fn auth(mut self, auth: ListenerAuth) -> Listener {
        self.auth = auth;
        self
    }
    pub fn allowed_origins(mut self, origins: &[&str]) -> Listener {
        self.allowed_origins = strings(origins);
        self
    }
    /// `virtual_servers:`, the servers this listener serves (unset: the default for its auth).
    pub fn virtual_servers(mut self, names: &[&str]) -> Listener {
        self.virtual_servers = Some(strings(names));
        self
    }
    pub fn route(mut self, path: &str, upstream: &str) -> Listener {
        self.routes.push(Route {
            path: path.into(),
            upstream: upstream.into(),
        });
        self
    }
}

/// One `upstreams[]` entry.
#[derive(Debug, Serialize)]
pub struct Upstream {
    name: String,
    url: String,
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    read_timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(serialize_with = "on_change", skip_serializing_if = "Option::is_none")]
    on_change: Option<OnChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<UpstreamAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stateless: Option<bool>,
}

impl Upstream {
    pub fn new(name: &str, url: &str) -> Upstream {
        Upstream {
            name: name.into(),
            url: url.into(),
            read_timeout: None,
            environment: None,
            on_change: None,
            auth: None,
            stateless: None,
        }
    }
    /// `stateless: false`: a 2026-07-28 client's calls go through a session the gateway
    /// holds and translates, even when the upstream speaks 2026-07-28 itself.
    pub fn held(mut self) -> Upstream {
        self.stateless = Some(false);
        self
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn read_timeout(mut self, d: Duration) -> Upstream {
        self.read_timeout = Some(d);
        self
    }
    pub fn environment(mut self, env: &str) -> Upstream {
        self.environment = Some(env.into());
        self
    }
    pub fn on_change(mut self, o: OnChange) -> Upstream {
        self.on_change = Some(o);
        self
    }
    pub fn auth(mut self, a: UpstreamAuth) -> Upstream {
        self.auth = Some(a);
        self
    }
}

/// `upstreams[].auth`: identity propagation. [`UpstreamAuth::new`] takes the mode; the
/// setters are the fields that mode reads.
#[derive(Debug, Serialize)]
pub struct UpstreamAuth {
    #[serde(serialize_with = "propagation_mode")]
    mode: PropagationMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<SecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_key: Option<SecretRef>,
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    ttl: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<SecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth: Option<OAuthRefresh>,
}

/// `upstreams[].auth.oauth`: where `per_user` OAuth credentials are refreshed.
#[derive(Debug, Serialize)]
struct OAuthRefresh {
    token_url: String,
    client_id: String,
    #[serde(with = "humantime_serde")]
    refresh_before: Duration,
}

impl UpstreamAuth {
    pub fn new(mode: PropagationMode) -> UpstreamAuth {
        UpstreamAuth {
            mode,
            secret: None,
            signing_key: None,
            ttl: None,
            token_url: None,
            client_id: None,
            client_secret: None,
            audience: None,
            scopes: Vec::new(),
            credential: None,
            oauth: None,
        }
    }
    /// `static`: the service credential.
    pub fn secret(mut self, s: SecretRef) -> UpstreamAuth {
        self.secret = Some(s);
        self
    }
    /// `signed_identity`: the Ed25519 key.
    pub fn signing_key(mut self, k: SecretRef) -> UpstreamAuth {
        self.signing_key = Some(k);
        self
    }
    pub fn ttl(mut self, d: Duration) -> UpstreamAuth {
        self.ttl = Some(d);
        self
    }
    /// `token_exchange`: endpoint and client.
    pub fn token_exchange(mut self, token_url: &str, client_id: &str, secret: SecretRef) -> Self {
        self.token_url = Some(token_url.into());
        self.client_id = Some(client_id.into());
        self.client_secret = Some(secret);
        self
    }
    pub fn audience(mut self, aud: &str) -> UpstreamAuth {
        self.audience = Some(aud.into());
        self
    }
    /// `token_exchange`: the scopes asked for.
    pub fn scopes(mut self, scopes: &[&str]) -> UpstreamAuth {
        self.scopes = strings(scopes);
        self
    }
    /// `per_user`: the vault credential set each user's secret comes from.
    pub fn credential(mut self, name: &str) -> UpstreamAuth {
        self.credential = Some(name.into());
        self
    }
    /// `per_user`: refresh OAuth credentials at `token_url` as `client_id` when they expire
    /// within `refresh_before`.
    pub fn oauth_refresh(
        mut self,
        token_url: &str,
        client_id: &str,
        refresh_before: Duration,
    ) -> Self {
        self.oauth = Some(OAuthRefresh {
            token_url: token_url.into(),
            client_id: client_id.into(),
            refresh_before,
        });
        self
    }
}

/// `admin:` on `{ADMIN}`.
#[derive(Debug, Serialize)]
pub struct Admin {
    address: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_origins: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<AdminAuth>,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: "{ADMIN}".into(),
            allowed_origins: Vec::new(),
            public_paths: None,
            auth: None,
        }
    }
}

impl Admin {
    /// With `admin.auth` granting [`ADMIN_READ_TOKEN`] `read`, [`ADMIN_WRITE_TOKEN`]
    /// `write` and [`ADMIN_APPROVE_TOKEN`] `approve`.
    pub fn with_test_tokens() -> Admin {
        let token = |name: &str, secret: &str, permission| AdminToken {
            name: name.into(),
            sha256: sha256_hex(secret),
            permission,
        };
        Admin {
            auth: Some(AdminAuth {
                tokens: vec![
                    token("viewer", ADMIN_READ_TOKEN, AdminPermission::Read),
                    token("operator", ADMIN_WRITE_TOKEN, AdminPermission::Write),
                    token("approver", ADMIN_APPROVE_TOKEN, AdminPermission::Approve),
                ],
                jwt: None,
            }),
            ..Admin::default()
        }
    }
    pub fn allowed_origins(mut self, origins: &[&str]) -> Admin {
        self.allowed_origins = strings(origins);
        self
    }
    /// `public_paths`: the paths served without credentials (unset: the gateway's default).
    pub fn public_paths(mut self, paths: &[&str]) -> Admin {
        self.public_paths = Some(strings(paths));
        self
    }
    /// `auth.jwt`: JWT principals granted `permission` (after [`Admin::with_test_tokens`]).
    pub fn jwt_grant(mut self, permission: AdminPermission, who: Principals) -> Admin {
        let auth = self.auth.get_or_insert_with(|| AdminAuth {
            tokens: Vec::new(),
            jwt: None,
        });
        let jwt = auth.jwt.get_or_insert_with(AdminJwt::default);
        match permission {
            AdminPermission::Read => jwt.read = Some(who),
            AdminPermission::Write => jwt.write = Some(who),
            AdminPermission::Approve => jwt.approve = Some(who),
        }
        self
    }
}

#[derive(Debug, Serialize)]
struct AdminAuth {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tokens: Vec<AdminToken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<AdminJwt>,
}

#[derive(Debug, Default, Serialize)]
struct AdminJwt {
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<Principals>,
    #[serde(skip_serializing_if = "Option::is_none")]
    write: Option<Principals>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approve: Option<Principals>,
}

/// Who a grant names (`subjects`, `groups`, `roles`); unset lists are left out.
#[derive(Debug, Default, Serialize)]
pub struct Principals {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subjects: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
}

impl Principals {
    pub fn groups(groups: &[&str]) -> Principals {
        Principals {
            groups: strings(groups),
            ..Principals::default()
        }
    }
    pub fn roles(roles: &[&str]) -> Principals {
        Principals {
            roles: strings(roles),
            ..Principals::default()
        }
    }
    pub fn subjects(subjects: &[&str]) -> Principals {
        Principals {
            subjects: strings(subjects),
            ..Principals::default()
        }
    }
}

#[derive(Debug, Serialize)]
struct AdminToken {
    name: String,
    sha256: String,
    #[serde(serialize_with = "admin_permission")]
    permission: AdminPermission,
}

/// `auth:` (client authentication).
#[derive(Debug, Serialize)]
pub struct Auth {
    resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    required_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<Jwt>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    api_keys: Vec<ApiKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_header: Option<String>,
}

impl Auth {
    pub fn new(resource: &str) -> Auth {
        Auth {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            jwt: None,
            api_keys: Vec::new(),
            api_key_header: None,
        }
    }
    pub fn jwt(mut self, j: Jwt) -> Auth {
        self.jwt = Some(j);
        self
    }
    /// Advertised in the protected-resource metadata.
    pub fn authorization_servers(mut self, urls: &[&str]) -> Auth {
        self.authorization_servers = strings(urls);
        self
    }
    pub fn scopes_supported(mut self, scopes: &[&str]) -> Auth {
        self.scopes_supported = strings(scopes);
        self
    }
    pub fn required_scopes(mut self, scopes: &[&str]) -> Auth {
        self.required_scopes = strings(scopes);
        self
    }
    /// The header API keys arrive in.
    pub fn api_key_header(mut self, header: &str) -> Auth {
        self.api_key_header = Some(header.into());
        self
    }
    pub fn api_key(mut self, k: ApiKey) -> Auth {
        self.api_keys.push(k);
        self
    }
}

/// One `auth.api_keys[]` entry: the key is stored as its SHA-256.
#[derive(Debug, Serialize)]
pub struct ApiKey {
    sha256: String,
    subject: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
}

impl ApiKey {
    /// The key `key` (hashed here) for `subject`.
    pub fn new(key: &str, subject: &str) -> ApiKey {
        ApiKey {
            sha256: sha256_hex(key),
            subject: subject.into(),
            scopes: Vec::new(),
        }
    }
    pub fn scopes(mut self, scopes: &[&str]) -> ApiKey {
        self.scopes = strings(scopes);
        self
    }
}

/// `auth.jwt`.
#[derive(Debug, Serialize)]
pub struct Jwt {
    issuers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_issuers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audiences: Option<Vec<String>>,
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    leeway: Option<Duration>,
    keys: Vec<JwtKey>,
}

impl Jwt {
    pub fn new(issuers: &[&str]) -> Jwt {
        Jwt {
            issuers: strings(issuers),
            group_issuers: None,
            audiences: None,
            leeway: None,
            keys: Vec::new(),
        }
    }
    /// The test identity provider ([`ISSUER`], which `tokens::claims` uses) verified by `key`.
    pub fn test_issuer(key: JwtKey) -> Jwt {
        Jwt::new(&[ISSUER]).key(key)
    }
    pub fn audiences(mut self, auds: &[&str]) -> Jwt {
        self.audiences = Some(strings(auds));
        self
    }
    /// `group_issuers`: the issuers trusted for groups and roles.
    pub fn group_issuers(mut self, issuers: &[&str]) -> Jwt {
        self.group_issuers = Some(strings(issuers));
        self
    }
    pub fn leeway(mut self, d: Duration) -> Jwt {
        self.leeway = Some(d);
        self
    }
    pub fn key(mut self, k: JwtKey) -> Jwt {
        self.keys.push(k);
        self
    }
}

/// One `auth.jwt.keys[]` entry.
#[derive(Debug, Serialize)]
pub struct JwtKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<SecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    algorithms: Vec<Algorithm>,
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    min_refresh_interval: Option<Duration>,
}

impl JwtKey {
    /// An HMAC secret verifying `HS256`.
    pub fn hs256(secret: SecretRef) -> JwtKey {
        JwtKey {
            jwks_file: None,
            jwks_url: None,
            secret: Some(secret),
            kid: None,
            issuer: None,
            algorithms: vec![Algorithm::HS256],
            min_refresh_interval: None,
        }
    }
    /// A JWKS URL verifying `algorithm`.
    pub fn jwks_url(url: &str, algorithm: Algorithm) -> JwtKey {
        JwtKey {
            jwks_file: None,
            jwks_url: Some(url.into()),
            secret: None,
            kid: None,
            issuer: None,
            algorithms: vec![algorithm],
            min_refresh_interval: None,
        }
    }
    /// A JWKS file verifying `algorithm`.
    pub fn jwks_file(path: &Path, algorithm: Algorithm) -> JwtKey {
        JwtKey {
            jwks_file: Some(path.display().to_string()),
            jwks_url: None,
            secret: None,
            kid: None,
            issuer: None,
            algorithms: vec![algorithm],
            min_refresh_interval: None,
        }
    }
    /// `kid`: the key id a token's header must name to be checked against this key.
    pub fn kid(mut self, kid: &str) -> JwtKey {
        self.kid = Some(kid.into());
        self
    }
    /// `issuer`: the one issuer whose tokens this key verifies.
    pub fn issuer(mut self, issuer: &str) -> JwtKey {
        self.issuer = Some(issuer.into());
        self
    }
    pub fn min_refresh_interval(mut self, d: Duration) -> JwtKey {
        self.min_refresh_interval = Some(d);
        self
    }
}

#[derive(Debug, Serialize)]
struct Vault {
    path: String,
    key: SecretRef,
}

#[derive(Debug, Serialize)]
struct Sessions {
    key: SecretRef,
}

/// `registry:`; unset fields keep the gateway's defaults.
#[derive(Debug, Default, Serialize)]
pub struct Registry {
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub timeout: Option<Duration>,
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub refresh_interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<usize>,
}

/// One `virtual_servers[]` entry.
#[derive(Debug, Serialize)]
pub struct VirtualServer {
    name: String,
    route: String,
    #[serde(skip_serializing_if = "Access::is_empty")]
    access: Access,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allow_tools: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deny_tools: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<ToolRule>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tools: BTreeMap<String, ToolOverride>,
    /// Keys set as written ([`VirtualServer::set`]).
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Serialize)]
struct Access {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    anonymous: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subjects: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
}

impl Access {
    fn is_empty(&self) -> bool {
        !self.anonymous
            && self.subjects.is_empty()
            && self.groups.is_empty()
            && self.roles.is_empty()
    }
}

/// `rules[]`: extra tools for some groups.
#[derive(Debug, Serialize)]
struct ToolRule {
    groups: Vec<String>,
    allow_tools: Vec<String>,
}

/// `tools.<upstream.tool>`: how one tool is presented.
#[derive(Debug, Default, Serialize)]
pub struct ToolOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned: Option<Value>,
}

impl ToolOverride {
    /// The exposed name.
    pub fn name(mut self, name: &str) -> ToolOverride {
        self.name = Some(name.into());
        self
    }
    pub fn description(mut self, d: &str) -> ToolOverride {
        self.description = Some(d.into());
        self
    }
    /// Replaces the tool's annotations (a JSON object).
    pub fn annotations(mut self, a: Value) -> ToolOverride {
        self.annotations = Some(a);
        self
    }
    /// Arguments the gateway sets (a JSON object: `json!({"tenant": "acme"})`).
    pub fn pinned(mut self, args: Value) -> ToolOverride {
        self.pinned = Some(args);
        self
    }
}

impl VirtualServer {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn new(name: &str, route: &str) -> VirtualServer {
        VirtualServer {
            name: name.into(),
            route: route.into(),
            access: Access::default(),
            environment: None,
            allow_tools: Vec::new(),
            deny_tools: Vec::new(),
            rules: Vec::new(),
            tools: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
    /// Any other key, as written (e.g. `allow_prompts`, or `rules` with keys
    /// [`VirtualServer::rule`] does not set).
    pub fn set(mut self, key: &str, value: Value) -> VirtualServer {
        self.extra.insert(key.into(), value);
        self
    }
    /// `access.anonymous: true`.
    pub fn anonymous(mut self) -> VirtualServer {
        self.access.anonymous = true;
        self
    }
    /// `access.subjects` (`SUBJECT` or `ISSUER#SUBJECT`).
    pub fn subjects(mut self, subjects: &[&str]) -> VirtualServer {
        self.access.subjects = strings(subjects);
        self
    }
    /// `access.groups`.
    pub fn groups(mut self, groups: &[&str]) -> VirtualServer {
        self.access.groups = strings(groups);
        self
    }
    /// `access.roles`.
    pub fn roles(mut self, roles: &[&str]) -> VirtualServer {
        self.access.roles = strings(roles);
        self
    }
    pub fn deny_tools(mut self, patterns: &[&str]) -> VirtualServer {
        self.deny_tools = strings(patterns);
        self
    }
    pub fn environment(mut self, env: &str) -> VirtualServer {
        self.environment = Some(env.into());
        self
    }
    pub fn allow_tools(mut self, patterns: &[&str]) -> VirtualServer {
        self.allow_tools = strings(patterns);
        self
    }
    /// A rule: members of `groups` may also use `allow_tools`.
    pub fn rule(mut self, groups: &[&str], allow_tools: &[&str]) -> VirtualServer {
        self.rules.push(ToolRule {
            groups: strings(groups),
            allow_tools: strings(allow_tools),
        });
        self
    }
    /// `tools.<tool>`: an override for `upstream.tool`.
    pub fn tool(mut self, tool: &str, o: ToolOverride) -> VirtualServer {
        self.tools.insert(tool.into(), o);
        self
    }
}
