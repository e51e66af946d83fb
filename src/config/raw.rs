//! The configuration file exactly as written: strict serde structs.
//!
//! Every struct denies unknown fields so a typo fails at startup instead of being ignored
//! (and none uses `#[serde(flatten)]`, which would turn that off and lose the field path).
//! Defaults live here (`#[serde(default)]`); meaning and cross-references are checked by the
//! section modules, in the order [`super::validate`] calls them. The doc comments on these
//! fields are the reference for `docs/config.md` and `conf/gateway.yaml`.
//!
//! The enums the file names and the runtime uses as they are ([`PropagationMode`],
//! [`OnChange`], [`AdminPermission`]) live in their sections and are re-exported here.

use std::time::Duration;

use serde::Deserialize;

pub use super::admin::AdminPermission;
pub use super::approvals::RequireApproval;
pub use super::audit::{OnFull, RedactAction};
pub use super::upstream::{OnChange, PropagationMode};

/// Top-level gateway configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Process settings; mapped onto Pingora's `ServerConf`.
    #[serde(default)]
    pub server: RawServer,
    /// Where clients connect. At least one.
    pub listeners: Vec<RawListener>,
    /// The MCP servers behind the gateway. At least one.
    pub upstreams: Vec<RawUpstream>,
    /// The operator port: `/healthz`, `/readyz`, `/metrics`. Optional.
    #[serde(default)]
    pub admin: Option<RawAdmin>,
    /// Request limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// Client authentication (JWT, API keys) and protected-resource metadata.
    #[serde(default)]
    pub auth: Option<RawAuth>,
    /// The credential vault that `secret:NAME` references read from.
    #[serde(default)]
    pub vault: Option<RawVault>,
    /// Tool discovery for virtual servers.
    #[serde(default)]
    pub registry: RawRegistry,
    /// Aggregating MCP endpoints that show each principal a slice of the upstreams' tools.
    #[serde(default)]
    pub virtual_servers: Vec<RawVirtualServer>,
    /// Gateway-owned sessions (virtual servers).
    #[serde(default)]
    pub sessions: RawSessions,
    /// Argument rules checked on every `tools/call` they cover, plain routes and virtual
    /// servers alike.
    #[serde(default)]
    pub policies: Vec<RawPolicy>,
    /// Shared state for a cluster of replicas (quotas, approvals). Optional: without it every
    /// replica keeps its own.
    #[serde(default)]
    pub redis: Option<RawRedis>,
    /// Human approval of tool calls (docs/approvals.md). Optional: without it no call waits
    /// for an approver unless a virtual server sets `require_approval`.
    #[serde(default)]
    pub approvals: Option<RawApprovals>,
    /// Rate limits, concurrency limits and budgets on `tools/call` (docs/quotas.md).
    #[serde(default)]
    pub quotas: Vec<RawQuota>,
    /// The audit trail: one tamper-evident JSON Lines record per request and admin write
    /// (docs/audit.md). Optional: without it no record is written.
    #[serde(default)]
    pub audit: Option<RawAudit>,
}

/// The Redis server replicas share state through (docs/quotas.md, docs/approvals.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://HOST:PORT[/DB]` (or `rediss://` is refused: no TLS client is built in; run
    /// Redis on a private network or a local TLS tunnel). No password in the URL: use
    /// `password`.
    pub url: String,
    /// `env:NAME`, `file:PATH` or `secret:NAME`: the `AUTH` password (and `username`, if set).
    #[serde(default)]
    pub password: Option<String>,
    /// ACL user name for `AUTH` (Redis 6+). Needs `password`.
    #[serde(default)]
    pub username: Option<String>,
    /// Multiplexed connections, used round-robin. Each carries many requests at once.
    #[serde(default = "default_redis_pool")]
    pub pool: usize,
    /// Longest wait for one Redis answer; past it the store counts as unreachable and each
    /// limit's `on_redis_error` decides.
    #[serde(default = "default_redis_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Longest wait to (re)connect.
    #[serde(default = "default_redis_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Prefix of every key the gateway writes, so several gateways can share one Redis.
    #[serde(default = "default_redis_prefix")]
    pub key_prefix: String,
}

fn default_redis_pool() -> usize {
    4
}

fn default_redis_timeout() -> Duration {
    Duration::from_millis(250)
}

fn default_redis_connect_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_redis_prefix() -> String {
    "mcpgw:".into()
}

/// One argument rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Names the rule in errors, metrics and audit: letters, digits, `_`, `-`; at most 32.
    pub id: String,
    /// `upstream.tool` patterns of the tools it covers (as `allow_tools`).
    pub tools: Vec<String>,
    /// Checks per argument path (`repo`, `options.branch`, or a JSON pointer `/a/b`),
    /// applied when the argument is present.
    #[serde(default)]
    pub arguments: std::collections::BTreeMap<String, RawArgumentChecks>,
    /// Argument paths that must be present.
    #[serde(default)]
    pub required: Vec<String>,
    /// Argument paths that must be absent.
    #[serde(default)]
    pub forbidden: Vec<String>,
    /// Virtual servers (names) the rule applies on; empty: everywhere, plain routes included.
    #[serde(default)]
    pub virtual_servers: Vec<String>,
    /// The callers the rule applies to (any list matching is enough); absent: everyone.
    #[serde(default)]
    pub when: Option<RawPrincipals>,
    /// Whole-tool rule: only these callers may call the covered tools at all (anyone else is
    /// refused naming the rule).
    #[serde(default)]
    pub allow_when: Option<RawPrincipals>,
}

/// The checks on one argument; any combination.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArgumentChecks {
    /// One of these values.
    #[serde(rename = "enum")]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// A string matching this regular expression (anchor it: `^acme/`).
    pub pattern: Option<String>,
    /// A number at least this.
    pub min: Option<f64>,
    /// A number at most this.
    pub max: Option<f64>,
    /// A string of at most this many characters, or an array of at most this many items.
    pub max_length: Option<usize>,
    /// A path or repo name under this prefix, after `.` and `..` are resolved.
    pub prefix: Option<String>,
    /// None of these values.
    pub deny: Option<Vec<serde_json::Value>>,
    /// `string`, `number`, `integer`, `boolean`, `object` or `array`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Sealed session tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSessions {
    /// 32-byte key (secret reference, base64) shared by every replica, so any replica can
    /// serve any session. Default: a random key per process (sessions end on restart).
    pub key: Option<String>,
    /// Keys `key` replaced (secret references): tokens they sealed still open until expiry.
    pub previous_keys: Vec<String>,
    /// Session lifetime.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for RawSessions {
    fn default() -> Self {
        RawSessions {
            key: None,
            previous_keys: Vec::new(),
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Tool discovery settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRegistry {
    /// Between upstream and tool name in exposed names (`github__list_issues`).
    pub separator: String,
    /// How often every upstream's tools are listed again.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Time allowed for one upstream's discovery.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Where approved tool fingerprints are kept (tool pinning). Default: in memory only,
    /// so approvals last until restart and first sightings are trusted again after one.
    pub state_file: Option<String>,
    /// Tools per `tools/list` page on virtual servers (opaque `nextCursor`); 0 = one page.
    pub page_size: usize,
}

impl Default for RawRegistry {
    fn default() -> Self {
        RawRegistry {
            separator: "__".into(),
            refresh_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            state_file: None,
            page_size: 0,
        }
    }
}

/// Who a rule or a virtual server applies to. Empty lists: everyone authenticated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrincipals {
    /// `SUBJECT`, or `ISSUER#SUBJECT` naming the issuer (one of `auth.jwt.issuers`, or
    /// `api-key` for API keys). The qualified form is required when `auth.jwt.issuers` lists
    /// more than one issuer.
    pub subjects: Vec<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Token issuers (one of `auth.jwt.issuers`, or `api-key`): every subject they vouch for.
    pub issuers: Vec<String>,
    /// Agents acting for a user: the JWT `act` claim's subject, or the API key's subject
    /// when a key is presented beside a JWT.
    pub agents: Vec<String>,
}

/// Who may use a virtual server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAccess {
    /// Let unauthenticated callers in (on `auth: none` listeners that list this server).
    /// Never combined with `subjects` / `groups` / `roles`: an anonymous caller has none.
    pub anonymous: bool,
    pub subjects: Vec<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
}

/// Extra tools for some principals on a virtual server.
///
/// Who the rule applies to is spelled out (`subjects`, `groups`, `roles`, as in
/// [`RawPrincipals`]) rather than a flattened `RawPrincipals`: `#[serde(flatten)]` buffers the
/// map, so a typo here was reported without its key in the path and with no list of the
/// expected keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolRule {
    /// `SUBJECT` or `ISSUER#SUBJECT`, as in [`RawPrincipals::subjects`].
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// `upstream.tool` patterns (globs) these principals may also use.
    #[serde(default)]
    pub allow_tools: Vec<String>,
    /// Patterns hidden from these principals.
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// `upstream.prompt` / `upstream.uri` patterns, as the tool ones (docs/virtual-servers.md,
    /// "Prompts and resources").
    #[serde(default)]
    pub allow_prompts: Vec<String>,
    #[serde(default)]
    pub deny_prompts: Vec<String>,
    #[serde(default)]
    pub allow_resources: Vec<String>,
    #[serde(default)]
    pub deny_resources: Vec<String>,
}

/// Per-tool presentation on a virtual server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolOverride {
    /// Exposed name instead of `<upstream><sep><tool>`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Replaces the tool's annotations.
    #[serde(default)]
    pub annotations: Option<serde_json::Value>,
    /// Arguments set by the gateway: removed from the advertised schema, refused from clients.
    #[serde(default)]
    pub pinned: serde_json::Map<String, serde_json::Value>,
}

/// One virtual server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualServer {
    /// `[A-Za-z0-9_-]{1,32}`.
    pub name: String,
    /// MCP endpoint path, e.g. `/v/support/mcp`, on the listeners that serve it (see
    /// `listeners[].virtual_servers`).
    pub route: String,
    /// Who may use it. Empty: every authenticated principal.
    #[serde(default)]
    pub access: RawAccess,
    /// `upstream.tool` patterns (globs) everyone on this server may use. Empty: all tools of
    /// the included upstreams.
    #[serde(default)]
    pub allow_tools: Vec<String>,
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// `upstream.prompt` patterns (globs) everyone on this server may get. Empty (here and
    /// in every rule): all prompts of the included upstreams.
    #[serde(default)]
    pub allow_prompts: Vec<String>,
    #[serde(default)]
    pub deny_prompts: Vec<String>,
    /// `upstream.uri` patterns (globs over the upstream's own URI, e.g. `docs.file:///*`,
    /// `apps.ui://*`) everyone on this server may read. Empty (here and in every rule): all
    /// resources of the included upstreams.
    #[serde(default)]
    pub allow_resources: Vec<String>,
    #[serde(default)]
    pub deny_resources: Vec<String>,
    /// Principal-specific additions and removals.
    #[serde(default)]
    pub rules: Vec<RawToolRule>,
    /// Per-tool overrides, keyed by `upstream.tool`.
    #[serde(default)]
    pub tools: std::collections::BTreeMap<String, RawToolOverride>,
    /// Only upstreams with this environment may be included (a config error otherwise).
    #[serde(default)]
    pub environment: Option<String>,
    /// `destructive`: every tool this server exposes that may be destructive (MCP
    /// `destructiveHint`, see docs/approvals.md) waits for a human approver. Default `none`.
    #[serde(default)]
    pub require_approval: RequireApproval,
    /// `prefixed` (default): tools and prompts as `<upstream><separator><name>`, resource URIs
    /// as `<scheme>://mcpgw/<upstream>/<rest>`. `upstream`: each upstream's own names and URIs
    /// (docs/virtual-servers.md, "`names: upstream`").
    #[serde(default)]
    pub names: Names,
}

/// How a virtual server names its tools, prompts and resources (`virtual_servers[].names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Names {
    /// Prefixed by the upstream's name: unique however many upstreams there are.
    #[default]
    Prefixed,
    /// The upstream's own names; two upstreams offering one name collide (both left out).
    Upstream,
}

/// Whether a listener requires authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerAuth {
    /// Every MCP request must carry valid credentials (the default).
    #[default]
    Required,
    /// No authentication on this listener. Must be chosen explicitly; logged loudly.
    None,
}

/// Client authentication.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Canonical public URL of the gateway (scheme://host[:port]), e.g. `https://mcp.example.com`.
    /// The protected-resource metadata and the default JWT audience are derived from it.
    pub resource: String,
    /// Authorization servers named in the protected-resource metadata.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes advertised in the protected-resource metadata.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Scopes every principal must hold; missing ones get 403 `insufficient_scope`.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// JWT bearer tokens.
    #[serde(default)]
    pub jwt: Option<RawJwt>,
    /// API keys (agents, services): only SHA-256 hashes are configured.
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
    /// Header carrying an API key (besides `Authorization: Bearer`). Lets an agent key travel
    /// next to a user's JWT.
    #[serde(default = "default_api_key_header")]
    pub api_key_header: String,
    /// Verified-token cache size (entries).
    #[serde(default = "default_cache_entries")]
    pub cache_max_entries: usize,
}

fn default_api_key_header() -> String {
    "x-api-key".into()
}
fn default_cache_entries() -> usize {
    10_000
}

/// JWT validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// Accepted `iss` values. At least one.
    pub issuers: Vec<String>,
    /// Accepted `aud` values. Default: the route's canonical URL (`resource` + route path).
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// Clock skew allowed for `exp` / `nbf`.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// Claims a token must carry (`exp` is always required).
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Verification keys. At least one.
    pub keys: Vec<RawJwtKey>,
    /// Where principal attributes come from (dotted paths into the claims).
    #[serde(default)]
    pub claims: RawClaimPaths,
    /// Issuers whose groups and roles claims are honoured; a token from any other issuer has
    /// none. Default: the issuer, when `issuers` lists one; required when it lists several.
    #[serde(default)]
    pub group_issuers: Option<Vec<String>>,
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

/// One source of verification keys. Exactly one of `jwks_file`, `jwks_url`, `secret`, `pem`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtKey {
    /// A JWKS document on disk.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// A JWKS URL: fetched at start, every `refresh_interval`, and on an unknown `kid`
    /// (at most once per `min_refresh_interval`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// HMAC secret (secret reference: `secret:NAME`, `env:NAME`, `file:PATH`).
    #[serde(default)]
    pub secret: Option<String>,
    /// Public key PEM (secret reference).
    #[serde(default)]
    pub pem: Option<String>,
    /// Key id for `secret` / `pem` keys (matched against the token's `kid`).
    #[serde(default)]
    pub kid: Option<String>,
    /// The issuer whose tokens this key may verify. Required when `issuers` lists more than
    /// one, so one issuer's key cannot sign for another issuer's users.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Algorithms this key may verify, e.g. `[RS256]`. A token whose `alg` is not listed for
    /// its key is rejected.
    pub algorithms: Vec<String>,
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh_interval: Duration,
    #[serde(default = "default_min_refresh", with = "humantime_serde")]
    pub min_refresh_interval: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_secs(600)
}
fn default_min_refresh() -> Duration {
    Duration::from_secs(10)
}

/// Dotted claim paths for principal attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClaimPaths {
    pub subject: String,
    pub name: String,
    /// Teams / groups (each path may hold a string or a list of strings).
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Scopes: a space-separated string (`scope`) or a list (`scp`).
    pub scopes: Vec<String>,
    /// The acting agent (RFC 8693 `act` claim).
    pub agent: String,
}

impl Default for RawClaimPaths {
    fn default() -> Self {
        RawClaimPaths {
            subject: "sub".into(),
            name: "name".into(),
            groups: vec!["groups".into()],
            roles: vec!["roles".into(), "realm_access.roles".into()],
            scopes: vec!["scope".into(), "scp".into()],
            agent: "act.sub".into(),
        }
    }
}

/// One API key, by its SHA-256 (hex). Generate: `printf %s "$KEY" | sha256sum`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub sha256: String,
    pub subject: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// The credential vault.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVault {
    /// Vault file (see docs/vault.md).
    pub path: String,
    /// Key-encryption key reference: `env:NAME` or `file:PATH` (base64 of 32 bytes).
    pub key: String,
    /// Kill switch: credential sets (vault names) refused to every upstream.
    #[serde(default)]
    pub disabled: Vec<String>,
}

/// Identity propagation to one upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamAuth {
    pub mode: PropagationMode,
    /// Header that carries the credential.
    #[serde(default = "default_cred_header")]
    pub header: String,
    /// Prefix of the header value (`Bearer `); empty for a raw value.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// `static`: the credential (secret reference).
    #[serde(default)]
    pub secret: Option<String>,
    /// `per_user`: the vault name of the per-user credentials (owner = principal subject).
    #[serde(default)]
    pub credential: Option<String>,
    /// `per_user`: used when the user has none (secret reference); otherwise 403.
    #[serde(default)]
    pub fallback: Option<String>,
    /// `signed_identity`: Ed25519 PKCS#8 signing key (secret reference).
    #[serde(default)]
    pub signing_key: Option<String>,
    /// `signed_identity`: token lifetime.
    #[serde(default = "default_identity_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// `signed_identity` / `token_exchange`: audience. Default: the upstream URL.
    #[serde(default)]
    pub audience: Option<String>,
    /// `token_exchange`: the token endpoint.
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    /// `token_exchange`: client secret (secret reference).
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `per_user`: refresh users' OAuth credentials (vault values of the form
    /// `{"access_token", "refresh_token", "expires_at"}`) before they expire.
    #[serde(default)]
    pub oauth: Option<RawOAuthRefresh>,
}

/// Where and how per-user OAuth credentials are refreshed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuthRefresh {
    /// The provider's token endpoint (grant_type=refresh_token).
    pub token_url: String,
    pub client_id: String,
    /// Client secret (secret reference), if the provider needs one.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Refresh when the access token expires within this window.
    #[serde(default = "default_refresh_before", with = "humantime_serde")]
    pub refresh_before: Duration,
}

fn default_refresh_before() -> Duration {
    Duration::from_secs(60)
}

fn default_cred_header() -> String {
    "authorization".into()
}
fn default_scheme() -> String {
    "Bearer ".into()
}
fn default_identity_ttl() -> Duration {
    Duration::from_secs(60)
}

/// Process settings (a subset of Pingora's `ServerConf`, with our defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Worker threads per listener service.
    pub threads: usize,
    /// Let idle worker threads steal work from busy ones.
    pub work_stealing: bool,
    /// Seconds to keep serving after SIGTERM / upgrade before shutting runtimes down.
    pub grace_period_seconds: u64,
    /// Seconds to wait for runtimes to finish after the grace period.
    pub graceful_shutdown_timeout_seconds: u64,
    /// PID file (written when daemonized or upgraded). Default: `mcp-gateway.pid` in the
    /// private run directory (see `crate::rundir`).
    pub pid_file: Option<String>,
    /// Unix socket used to hand listening sockets to a new process (`--upgrade`). Default:
    /// `upgrade.sock` in the private run directory.
    pub upgrade_sock: Option<String>,
    /// Idle upstream connections kept for reuse, per listener service.
    pub upstream_keepalive_pool_size: usize,
    /// Write Pingora's error log to this file instead of stderr.
    pub error_log: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            threads: 1,
            work_stealing: true,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 5,
            pid_file: None,
            upgrade_sock: None,
            upstream_keepalive_pool_size: 128,
            error_log: None,
        }
    }
}

/// One listening socket and the MCP endpoints (routes) it serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Name used in logs and metrics; defaults to the address.
    #[serde(default)]
    pub name: Option<String>,
    /// `IP:PORT` to bind, e.g. `127.0.0.1:8080` or `0.0.0.0:8080`.
    pub address: String,
    /// MCP endpoints on this listener. At least one.
    pub routes: Vec<RawRoute>,
    /// Accepted `Host` header values (`name` or `name:port`, `*` for any). Default: for a loopback
    /// address, `localhost`, `127.0.0.1` and `[::1]` on any port; otherwise any host.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Accepted browser `Origin` values (`scheme://host[:port]`). Requests without `Origin`
    /// (non-browser clients) are always accepted. Default: none.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// `required` (default; needs an `auth` section) or `none` (explicit, logged loudly).
    #[serde(default)]
    pub auth: ListenerAuth,
    /// Names of the virtual servers this listener serves. Default: every virtual server on a
    /// listener with `auth: required`, none on a listener with `auth: none` (serving one
    /// there needs both this list and the server's `access.anonymous: true`).
    #[serde(default)]
    pub virtual_servers: Option<Vec<String>>,
}

/// One MCP endpoint: a path on the listener and the upstream it proxies to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Exact request path, e.g. `/mcp`.
    pub path: String,
    /// Name of an entry in `upstreams`.
    pub upstream: String,
}

/// One upstream MCP server (streamable HTTP).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Name used in routes, errors and metric labels: `[A-Za-z0-9_-]{1,32}`.
    pub name: String,
    /// The server's MCP endpoint, `http://` or `https://`, e.g. `http://127.0.0.1:8000/mcp`.
    pub url: String,
    /// Time allowed to establish a TCP (and TLS) connection.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for the response headers or the next body bytes of a POST response.
    #[serde(default = "default_read_timeout", with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Longest silence allowed on a server-to-client SSE stream (GET).
    #[serde(default = "default_stream_idle_timeout", with = "humantime_serde")]
    pub stream_idle_timeout: Duration,
    /// Longest wait to write the request to the upstream.
    #[serde(default = "default_write_timeout", with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long an idle pooled connection to this upstream is kept.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Identity propagation. Default: `mode: none` (client credentials stripped, none sent).
    #[serde(default)]
    pub auth: Option<RawUpstreamAuth>,
    /// More request headers to remove before forwarding (client credentials are always removed
    /// unless `auth.mode` is `passthrough`).
    #[serde(default)]
    pub strip_headers: Vec<String>,
    /// Deployment environment (`prod`, `staging`, ...), checked against virtual servers.
    #[serde(default)]
    pub environment: Option<String>,
    /// What happens when a tool's definition (description, input schema, annotations)
    /// changes from the approved one: `quarantine` (default), `alert` or `accept`.
    #[serde(default)]
    pub on_change: OnChange,
    /// Call it statelessly (2026-07-28) for 2026-07-28 clients when its `server/discover`
    /// says it speaks that revision (default `true`). `false`: always through a
    /// handshake-era session the gateway holds and translates (e.g. a dual-era server
    /// whose tools ask their client with handshake-style requests only).
    #[serde(default = "default_true")]
    pub stateless: bool,
}

fn default_true() -> bool {
    true
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_stream_idle_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_write_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The admin (operator) listener: probes, metrics and the `/admin/*` API (docs/admin.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `IP:PORT` to bind. Keep it private (loopback or an internal network).
    pub address: String,
    /// Accepted `Host` header values, as on listeners. Default: for a loopback address,
    /// `localhost`, `127.0.0.1` and `[::1]` on any port; otherwise any host.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Accepted browser `Origin` values, as on listeners. Default: none.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Paths answered without credentials. Default: `/healthz`, `/readyz`, `/metrics` and
    /// `/.well-known/jwks.json`; the ones left out need the `read` permission.
    #[serde(default)]
    pub public_paths: Option<Vec<String>>,
    /// Who may use `/admin/*`. Without it the admin API is off (403); probes and metrics
    /// are still served.
    #[serde(default)]
    pub auth: Option<RawAdminAuth>,
}

/// Admin credentials: bearer tokens and/or JWT principals. At least one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminAuth {
    /// Bearer tokens, configured by their SHA-256 like `auth.api_keys`.
    #[serde(default)]
    pub tokens: Vec<RawAdminToken>,
    /// JWT principals, verified by `auth.jwt`, granted permissions by subject, group or role.
    #[serde(default)]
    pub jwt: Option<RawAdminJwt>,
}

/// One admin bearer token, by its SHA-256 (hex). Generate: `printf %s "$TOKEN" | sha256sum`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminToken {
    /// Who holds it: logged with every write it makes.
    pub name: String,
    pub sha256: String,
    pub permission: AdminPermission,
}

/// JWT principals with admin permissions. A principal named in `write` may also read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminJwt {
    /// The issuer whose tokens may administer. Default: the one `auth.jwt.issuers` entry;
    /// required when there are several.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Who may read. Omitted: only the `write` principals.
    #[serde(default)]
    pub read: Option<RawPrincipals>,
    /// Who may write. Omitted: nobody.
    #[serde(default)]
    pub write: Option<RawPrincipals>,
    /// Who may approve or deny calls waiting for a human (docs/approvals.md); they may also
    /// read. Omitted: nobody. `write` does not include it.
    #[serde(default)]
    pub approve: Option<RawPrincipals>,
}

/// Request limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Largest accepted request body, in bytes. Larger bodies get 413.
    pub max_request_body_bytes: usize,
    /// Deepest accepted JSON nesting in a request body (objects and arrays, the message
    /// itself is level 1). Deeper bodies get 400 + -32600. 2 to 128.
    pub max_json_depth: usize,
    /// Most 2026-07-28 calls one principal may have parked for its input at once (429
    /// past it). 1 to the per-replica total (1,024).
    pub max_parked_calls_per_principal: usize,
    /// Most server-to-client streams (legacy GET streams and 2026-07-28
    /// `subscriptions/listen` streams together) one principal may hold open (429 past it).
    /// 1 to the per-replica total (4,096).
    pub max_streams_per_principal: usize,
    /// Most client sessions with relayed upstream events (a GET stream, resource
    /// subscriptions or a log level) one principal may have (429 past it). 1 to the
    /// per-replica total (10,000).
    pub max_event_sessions_per_principal: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_request_body_bytes: 1024 * 1024,
            max_json_depth: super::DEFAULT_MAX_JSON_DEPTH,
            max_parked_calls_per_principal: super::values::DEFAULT_PARKED_PER_PRINCIPAL,
            max_streams_per_principal: super::values::DEFAULT_STREAMS_PER_PRINCIPAL,
            max_event_sessions_per_principal: super::values::DEFAULT_EVENT_SESSIONS_PER_PRINCIPAL,
        }
    }
}

/// Human approval of tool calls: which calls wait for an approver, and how long an approval
/// lives (docs/approvals.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// How long a pending approval waits for a decision, and how long an approved (or denied)
    /// one lasts after the decision. Between 1s and 7d.
    #[serde(default = "default_approval_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// The `retryAfter` hint sent to the caller: how long to wait before retrying. At least
    /// 1s and at most `ttl`.
    #[serde(default = "default_approval_retry_after", with = "humantime_serde")]
    pub retry_after: Duration,
    /// The approver-facing URL sent with each request for approval, with `{id}` standing for
    /// the approval id (e.g. `https://ops.example/approvals/{id}`). Default: the admin API's
    /// `/admin/approvals/{id}` on `admin.address`.
    #[serde(default)]
    pub approver_url: Option<String>,
    /// Most approvals held at once (pending, approved or denied, not yet expired); past it a
    /// new request for approval is refused (503) until some expire or are used.
    #[serde(default = "default_max_approvals")]
    pub max_pending: usize,
    /// Which tools need an approval, on plain routes and virtual servers alike.
    #[serde(default)]
    pub rules: Vec<RawApprovalRule>,
}

/// Tools whose every call needs a human approval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovalRule {
    /// `upstream.tool` patterns (globs), as in `allow_tools`.
    pub tools: Vec<String>,
}

fn default_approval_ttl() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_approval_retry_after() -> Duration {
    Duration::from_secs(10)
}

fn default_max_approvals() -> usize {
    10_000
}

/// One limit (docs/quotas.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    /// Names the limit in headers, errors, metrics and `/admin/quotas`: letters, digits, `_`,
    /// `-`; at most 32; unique.
    pub name: String,
    /// What picks the counter: any of `subject` (issuer + subject), `agent`, `group` (one
    /// counter per group of the caller), `virtual_server`, `upstream`, `tool`. Empty: one
    /// counter for everyone.
    #[serde(default)]
    pub key: Vec<String>,
    /// The calls it covers, `upstream.tool` patterns as in `allow_tools`. Empty: every
    /// `tools/call`.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Requests per window, with a burst (GCRA).
    #[serde(default)]
    pub rate: Option<RawRate>,
    /// Calls in flight at once.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Units per fixed window.
    #[serde(default)]
    pub budget: Option<RawBudget>,
    /// `memory` (per replica, the default) or `redis` (shared; needs the `redis` section).
    #[serde(default)]
    pub backend: Option<String>,
    /// `fail_open` (default: count in memory while Redis is down) or `fail_closed` (refuse
    /// with a 503). Only with `backend: redis`.
    #[serde(default)]
    pub on_redis_error: Option<String>,
}

/// `rate:` of a limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    /// Requests allowed per `per`.
    pub requests: u64,
    /// The window, whole seconds (`1s`, `1m`, `1h`).
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Most requests at once. Default: `requests`.
    #[serde(default)]
    pub burst: Option<u64>,
}

/// `budget:` of a limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Units allowed per window.
    pub units: u64,
    /// The window, whole seconds (`1h`, `1d`); windows start at multiples of it since the
    /// Unix epoch (so `1d` is a UTC day).
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// What calls cost, first match wins; a tool no entry matches costs 1 unit.
    #[serde(default)]
    pub cost: Vec<RawCost>,
}

/// One `budget.cost` entry: `units` or `metered`, for the tools matching `tools`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    pub tools: Vec<String>,
    /// A fixed cost, charged when the call is allowed (0: free).
    #[serde(default)]
    pub units: Option<u64>,
    /// `response_tokens`: the response's size in approximate tokens (bytes / 4), charged
    /// when the response ends.
    #[serde(default)]
    pub metered: Option<String>,
}

/// `audit:`: where the trail goes, how it rotates, what happens when its queue is full, and
/// how tool arguments are redacted (docs/audit.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// The JSON Lines file. Rotated to `PATH.1`, `PATH.2`, ... when it would pass
    /// `max_file_bytes`. `path` and/or `stdout` is required.
    #[serde(default)]
    pub path: Option<std::path::PathBuf>,
    /// Also (or only) write every record to standard output.
    #[serde(default)]
    pub stdout: bool,
    /// Size at which the file is rotated. Default 100 MiB; at least 4096.
    #[serde(default = "default_audit_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files kept (`PATH.1` is the newest); older ones are deleted. Default 10.
    #[serde(default = "default_audit_max_files")]
    pub max_files: u32,
    /// Records waiting for the writer. Default 8192.
    #[serde(default = "default_audit_queue")]
    pub queue: usize,
    /// When the queue is full: `block` (the request waits for room; nothing is lost) or
    /// `drop` (the record is dropped and counted in `mcp_gateway_audit_dropped_total`).
    #[serde(default)]
    pub on_full: OnFull,
    /// How `tools/call` arguments appear in records.
    #[serde(default)]
    pub redact: RawRedact,
}

fn default_audit_max_file_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_audit_max_files() -> u32 {
    10
}

fn default_audit_queue() -> usize {
    8192
}

/// `audit.redact`: a default action and rules by tool.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedact {
    /// What happens to an argument no covering rule names: `keep` (default), `hash` or
    /// `drop`.
    #[serde(default)]
    pub default: RedactAction,
    /// Rules by tool; where several cover a call, the strongest action wins per argument
    /// (`drop` over `hash` over `keep`).
    #[serde(default)]
    pub rules: Vec<RawRedactRule>,
}

/// One `audit.redact.rules[]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedactRule {
    /// `upstream.tool` patterns (the upstream's own tool name), as in `policies[]`.
    pub tools: Vec<String>,
    /// Argument path (`name`, `a.b` or `/a/b`) to `keep`, `hash` or `drop`.
    #[serde(default)]
    pub arguments: std::collections::BTreeMap<String, RedactAction>,
    /// For the arguments this rule does not name, instead of `redact.default`.
    #[serde(default)]
    pub default: Option<RedactAction>,
}
