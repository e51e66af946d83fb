//! The `listeners` section: where clients connect, the routes (MCP endpoints) each serves,
//! its DNS-rebinding guard (`allowed_hosts`, `allowed_origins`, shared with `admin`), and which
//! virtual servers each serves, including the rule that anonymous access is written twice.

use std::net::SocketAddr;

use super::raw::{ListenerAuth, RawListener};
use super::syntax::parse_socket_addr;
use super::{AuthConfig, ConfigError, Upstream, VirtualServer};

/// A validated listener.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub routes: Vec<Route>,
    pub hosts: HostPolicy,
    /// Lower-cased `scheme://host[:port]` values.
    pub allowed_origins: Vec<String>,
    /// Whether MCP requests on this listener must authenticate.
    pub auth_required: bool,
    /// Indices into [`Config::virtual_servers`] of the virtual servers served here. A
    /// virtual server's route on any other listener is an unknown path.
    pub virtual_servers: Vec<usize>,
}

/// Which `Host` header values a listener accepts (DNS-rebinding guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPolicy {
    /// Any host (non-loopback listener without `allowed_hosts`, or `*` listed).
    Any,
    /// Lower-cased entries: `name` matches on any port, `name:port` only on that port.
    List(Vec<String>),
}

/// A validated route: exact path to upstream index.
#[derive(Debug, Clone)]
pub struct Route {
    pub path: String,
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
    /// Canonical URL of this MCP endpoint (`auth.resource` + path), when auth is configured.
    pub resource_url: Option<String>,
    /// Path of its protected-resource metadata: `/.well-known/oauth-protected-resource` + path.
    pub metadata_path: String,
}

/// Path prefix of RFC 9728 protected-resource metadata.
pub const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// What each listener's `virtual_servers` says, as written (`None`: the default), in
/// listener order; resolved by [`assign_virtual_servers`] once the virtual servers are known.
pub(super) type Served = Vec<Option<Vec<String>>>;

/// Validates `listeners`: addresses (unique), routes (each to a known upstream whose
/// credentials the listener's `auth` can supply), the `Host` and `Origin` guards, and that an
/// authenticating listener has an `auth` section to authenticate with.
pub(super) fn validate(
    raw: Vec<RawListener>,
    upstreams: &[Upstream],
    auth: Option<&AuthConfig>,
) -> Result<(Vec<Listener>, Served), ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(
            "listeners",
            "at least one listener is required",
        ));
    }
    let mut listeners: Vec<Listener> = Vec::with_capacity(raw.len());
    // `listeners[i].virtual_servers` as written; resolved once the virtual servers are.
    let mut served: Vec<Option<Vec<String>>> = Vec::with_capacity(raw.len());
    for (i, l) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("listeners[{i}].{field}");
        let address =
            parse_socket_addr(&l.address).map_err(|m| ConfigError::new(at("address"), m))?;
        if listeners.iter().any(|p| p.address == address) {
            return Err(ConfigError::new(
                at("address"),
                format!("{address} is used by another listener"),
            ));
        }
        if l.routes.is_empty() {
            return Err(ConfigError::new(
                at("routes"),
                "at least one route is required",
            ));
        }
        let mut routes: Vec<Route> = Vec::with_capacity(l.routes.len());
        for (j, r) in l.routes.into_iter().enumerate() {
            let rat = |field: &str| format!("listeners[{i}].routes[{j}].{field}");
            if !r.path.starts_with('/') || r.path.contains(['?', '#', ' ']) {
                return Err(ConfigError::new(
                    rat("path"),
                    format!(
                        "invalid path {:?}: must start with / and have no query",
                        r.path
                    ),
                ));
            }
            if routes.iter().any(|p| p.path == r.path) {
                return Err(ConfigError::new(
                    rat("path"),
                    format!("duplicate route path {:?}", r.path),
                ));
            }
            let Some(upstream) = upstreams.iter().position(|u| u.name == r.upstream) else {
                let known: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
                return Err(ConfigError::new(
                    rat("upstream"),
                    format!(
                        "unknown upstream {:?} (configured: {})",
                        r.upstream,
                        known.join(", ")
                    ),
                ));
            };
            if l.auth == ListenerAuth::None && upstreams[upstream].auth.mode.needs_principal() {
                return Err(ConfigError::new(
                    rat("upstream"),
                    format!(
                        "upstream {:?} uses {} credentials, which need an authenticated caller, but this listener has auth: none",
                        r.upstream,
                        upstreams[upstream].auth.mode.as_label()
                    ),
                ));
            }
            let resource_url = auth.map(|a| format!("{}{}", a.resource, r.path));
            let metadata_path = format!("{METADATA_PREFIX}{}", r.path);
            routes.push(Route {
                path: r.path,
                upstream,
                resource_url,
                metadata_path,
            });
        }
        let hosts = host_policy(&format!("listeners[{i}]"), &address, l.allowed_hosts)?;
        let allowed_origins = allowed_origins(&format!("listeners[{i}]"), &l.allowed_origins)?;
        if l.auth == ListenerAuth::Required && auth.is_none() {
            return Err(ConfigError::new(
                at("auth"),
                "authentication is required by default but there is no auth section; configure auth, or set auth: none on this listener",
            ));
        }
        served.push(l.virtual_servers);
        listeners.push(Listener {
            auth_required: l.auth == ListenerAuth::Required,
            name: l.name.unwrap_or_else(|| address.to_string()),
            address,
            routes,
            hosts,
            allowed_origins,
            virtual_servers: Vec::new(),
        });
    }
    Ok((listeners, served))
}

/// Decide which virtual servers each listener serves, and refuse anonymous access that is
/// not written down twice: an `auth: none` listener serves a virtual server only when its
/// `virtual_servers` lists it *and* the server says `access.anonymous: true`. Defaults:
/// every virtual server on an authenticating listener (its access list applies), none on an
/// `auth: none` one, so adding an anonymous listener never exposes a server by accident.
pub(super) fn assign_virtual_servers(
    served: Served,
    listeners: &mut [Listener],
    vservers: &[VirtualServer],
) -> Result<(), ConfigError> {
    for (i, (l, names)) in listeners.iter_mut().zip(served).enumerate() {
        let Some(names) = names else {
            if l.auth_required {
                l.virtual_servers = (0..vservers.len()).collect();
            }
            continue;
        };
        for (k, name) in names.iter().enumerate() {
            let at = format!("listeners[{i}].virtual_servers[{k}]");
            let Some(v) = vservers.iter().position(|v| &v.name == name) else {
                let known: Vec<&str> = vservers.iter().map(|v| v.name.as_str()).collect();
                return Err(ConfigError::new(
                    at,
                    format!(
                        "unknown virtual server {name:?} (configured: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            if l.virtual_servers.contains(&v) {
                return Err(ConfigError::new(
                    at,
                    format!("virtual server {name:?} is listed twice"),
                ));
            }
            if !l.auth_required && !vservers[v].anonymous {
                return Err(ConfigError::new(
                    at,
                    format!(
                        "this listener has auth: none, so virtual server {name:?} would be open to anonymous callers; set virtual_servers[{v}].access.anonymous: true to allow that, or serve it on a listener that authenticates"
                    ),
                ));
            }
            l.virtual_servers.push(v);
        }
    }
    for (v, vs) in vservers.iter().enumerate() {
        let anonymous_here = listeners
            .iter()
            .any(|l| !l.auth_required && l.virtual_servers.contains(&v));
        if vs.anonymous && !anonymous_here {
            return Err(ConfigError::new(
                format!("virtual_servers[{v}].access.anonymous"),
                format!(
                    "no listener with auth: none serves {:?}; add it to that listener's virtual_servers, or drop anonymous (authenticated callers are let in by an empty access)",
                    vs.name
                ),
            ));
        }
    }
    Ok(())
}

/// The `Host` policy of a listener (or the admin listener) at `at`: the DNS-rebinding guard's
/// list, defaulting to the loopback names on a loopback address and to any host otherwise.
pub(super) fn host_policy(
    at: &str,
    address: &SocketAddr,
    allowed_hosts: Option<Vec<String>>,
) -> Result<HostPolicy, ConfigError> {
    Ok(match allowed_hosts {
        None if address.ip().is_loopback() => {
            HostPolicy::List(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
        }
        None => HostPolicy::Any,
        Some(list) => {
            if list.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.allowed_hosts"),
                    "empty list would reject every request; omit the key or use [\"*\"]",
                ));
            }
            if list.iter().any(|h| h == "*") {
                HostPolicy::Any
            } else {
                for (k, h) in list.iter().enumerate() {
                    let unbracketed_v6 = !h.starts_with('[') && h.matches(':').count() > 1;
                    if h.is_empty() || h.contains(['/', ' ', '@']) || unbracketed_v6 {
                        return Err(ConfigError::new(
                            format!("{at}.allowed_hosts[{k}]"),
                            format!("invalid host {h:?}: expected name, name:port or [v6]:port"),
                        ));
                    }
                }
                HostPolicy::List(list.iter().map(|h| h.to_ascii_lowercase()).collect())
            }
        }
    })
}

/// The browser `Origin`s a listener (or the admin listener) at `at` accepts, lower-cased.
pub(super) fn allowed_origins(at: &str, list: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for (k, o) in list.iter().enumerate() {
        let valid = o == "null"
            || url::Url::parse(o)
                .is_ok_and(|u| u.host_str().is_some() && (u.path() == "/" && !o.ends_with('/')));
        if !valid {
            return Err(ConfigError::new(
                format!("{at}.allowed_origins[{k}]"),
                format!("invalid origin {o:?}: expected scheme://host[:port] with no path"),
            ));
        }
        out.push(o.to_ascii_lowercase());
    }
    Ok(out)
}
