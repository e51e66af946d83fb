//! Upstreams at run time: each configured MCP server as one [`UpstreamRt`], shared by
//! reference (`Arc`) from the moment a request is resolved to it.
//!
//! Everything a request needs about its upstream is built once per configuration (startup or
//! reload) and kept together: the validated config, the two Pingora peers, the request target
//! and `Host` value, and the credential source. A route or a virtual-server tool resolves to
//! an `Arc<UpstreamRt>` once; later phases read it from the request's [`crate::decision::Target`]
//! and never look an index up again (before, four parallel vectors were kept in step by index).
//!
//! Two peers per upstream: one for POST/DELETE, whose read timeout bounds the wait for an
//! answer, and one for the GET server-to-client stream, whose read timeout is the longer
//! `stream_idle_timeout` (an SSE stream may legitimately be quiet for minutes).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use pingora::upstreams::peer::HttpPeer;

use crate::config::{Config, Upstream};
use crate::identity::CredentialSource;

/// One upstream, ready to receive requests.
#[derive(Debug)]
pub struct UpstreamRt {
    /// The validated configuration.
    pub config: Upstream,
    request_peer: HttpPeer,
    stream_peer: HttpPeer,
    /// Request target (path and query) sent upstream.
    pub path: http::Uri,
    /// `Host` header value sent upstream, built once at load.
    pub host: http::HeaderValue,
    /// Where its credential comes from (`upstreams[].auth`).
    pub credential: CredentialSource,
}

impl UpstreamRt {
    /// The configured name (metric label, error messages).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The peer to connect to. `stream` selects the GET-stream timeouts.
    pub fn peer(&self, stream: bool) -> &HttpPeer {
        if stream {
            &self.stream_peer
        } else {
            &self.request_peer
        }
    }
}

/// Every configured upstream, in the order of [`Config::upstreams`].
#[derive(Debug, Default)]
pub struct Upstreams {
    list: Vec<Arc<UpstreamRt>>,
}

impl Upstreams {
    /// Resolve every upstream's address and pair it with its credential source (`sources`
    /// in the order of `config.upstreams`, as [`crate::identity::Identity::new`] builds
    /// them). Fails with the upstream's name if one can't be resolved.
    pub fn build(config: &Config, sources: Vec<CredentialSource>) -> anyhow::Result<Upstreams> {
        if sources.len() != config.upstreams.len() {
            anyhow::bail!(
                "internal: {} credential sources for {} upstreams",
                sources.len(),
                config.upstreams.len()
            );
        }
        let mut list = Vec::with_capacity(config.upstreams.len());
        for (u, credential) in config.upstreams.iter().zip(sources) {
            let addr = resolve(u)?;
            let path = u.path_and_query.parse::<http::Uri>().map_err(|e| {
                anyhow::anyhow!(
                    "upstream {:?}: invalid path {:?}: {e}",
                    u.name,
                    u.path_and_query
                )
            })?;
            let host = http::HeaderValue::from_str(&u.authority).map_err(|_| {
                anyhow::anyhow!("upstream {:?}: invalid authority {:?}", u.name, u.authority)
            })?;
            list.push(Arc::new(UpstreamRt {
                config: u.clone(),
                request_peer: peer(u, addr, u.read_timeout),
                stream_peer: peer(u, addr, u.stream_idle_timeout),
                path,
                host,
                credential,
            }));
        }
        Ok(Upstreams { list })
    }

    /// The upstream a validated config index names (routes, virtual servers, catalog
    /// entries). `None` only if the index came from another configuration (a bug).
    pub fn get(&self, index: usize) -> Option<&Arc<UpstreamRt>> {
        self.list.get(index)
    }

    /// The upstream called `name` (sessions and watchers outlive a reload that may reorder
    /// the upstreams, so they remember names).
    pub fn by_name(&self, name: &str) -> Option<&Arc<UpstreamRt>> {
        self.list.iter().find(|u| u.config.name == name)
    }
}

fn resolve(u: &Upstream) -> anyhow::Result<SocketAddr> {
    let mut addrs = (u.host.as_str(), u.port).to_socket_addrs().map_err(|e| {
        anyhow::anyhow!(
            "upstream {:?}: cannot resolve {}:{}: {e}",
            u.name,
            u.host,
            u.port
        )
    })?;
    addrs.next().ok_or_else(|| {
        anyhow::anyhow!(
            "upstream {:?}: {}:{} resolved to no address",
            u.name,
            u.host,
            u.port
        )
    })
}

fn peer(u: &Upstream, addr: SocketAddr, read_timeout: std::time::Duration) -> HttpPeer {
    let sni = if u.tls { u.host.clone() } else { String::new() };
    let mut p = HttpPeer::new(addr, u.tls, sni);
    p.options.connection_timeout = Some(u.connect_timeout);
    p.options.total_connection_timeout = Some(u.connect_timeout);
    p.options.read_timeout = Some(read_timeout);
    p.options.write_timeout = Some(u.write_timeout);
    p.options.idle_timeout = Some(u.idle_timeout);
    p
}
