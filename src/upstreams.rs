//! The upstream registry: configured MCP servers turned into ready-to-clone Pingora peers.
//!
//! Addresses are resolved once when the registry is built (startup or reload), not per
//! request. Each upstream has two peers: one for POST/DELETE, whose read timeout bounds the
//! wait for an answer, and one for the GET server-to-client stream, whose read timeout is the
//! longer `stream_idle_timeout` (an SSE stream may legitimately be quiet for minutes).

use std::net::{SocketAddr, ToSocketAddrs};

use pingora::upstreams::peer::HttpPeer;

use crate::config::{Config, Upstream};

/// Resolved peers for every configured upstream, indexed like [`Config::upstreams`].
#[derive(Debug)]
pub struct Upstreams {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    request_peer: HttpPeer,
    stream_peer: HttpPeer,
    path: http::Uri,
    host: http::HeaderValue,
}

impl Upstreams {
    /// Resolve every upstream's address. Fails with the upstream's name if one can't be resolved.
    pub fn from_config(config: &Config) -> anyhow::Result<Upstreams> {
        let mut entries = Vec::with_capacity(config.upstreams.len());
        for u in &config.upstreams {
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
            entries.push(Entry {
                host,
                request_peer: peer(u, addr, u.read_timeout),
                stream_peer: peer(u, addr, u.stream_idle_timeout),
                path,
            });
        }
        Ok(Upstreams { entries })
    }

    /// The peer for upstream `index`. `stream` selects the GET-stream timeouts.
    /// `None` only if `index` did not come from the same config (a bug).
    pub fn peer(&self, index: usize, stream: bool) -> Option<&HttpPeer> {
        self.entries.get(index).map(|e| {
            if stream {
                &e.stream_peer
            } else {
                &e.request_peer
            }
        })
    }
}

impl Upstreams {
    /// The request target (path and query) to send to upstream `index`.
    pub fn path(&self, index: usize) -> Option<&http::Uri> {
        self.entries.get(index).map(|e| &e.path)
    }

    /// The `Host` header value for upstream `index`, built once at load.
    pub fn host(&self, index: usize) -> Option<&http::HeaderValue> {
        self.entries.get(index).map(|e| &e.host)
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
