//! What each listener serves, resolved once per configuration: every MCP endpoint (a plain
//! route or a virtual server) with its path, its protected-resource metadata path and what it
//! leads to. A request is classified against this table once; the phases after that hold an
//! `Arc<Endpoint>` and never look a route, server or upstream up by index again.

use std::sync::Arc;

use crate::config::{Config, VirtualServer};
use crate::upstreams::{UpstreamRt, Upstreams};

/// One MCP endpoint of a listener.
#[derive(Debug)]
pub struct Endpoint {
    /// The exact request path.
    pub path: String,
    /// Path of its RFC 9728 protected-resource metadata.
    pub metadata_path: String,
    /// Canonical URL (`auth.resource` + path), when authentication is configured.
    pub resource_url: Option<String>,
    pub kind: EndpointKind,
}

/// What an endpoint leads to.
#[derive(Debug)]
pub enum EndpointKind {
    /// A plain route: everything goes to this upstream as sent.
    Route(Arc<UpstreamRt>),
    /// A virtual server. `index` keys its catalog in [`crate::registry::catalog::Catalogs`].
    Virtual {
        index: usize,
        server: Arc<VirtualServer>,
    },
}

/// The endpoints of one listener, routes first (a route path shadows a virtual server's).
#[derive(Debug, Default)]
pub struct ListenerEndpoints {
    endpoints: Vec<Arc<Endpoint>>,
}

impl ListenerEndpoints {
    /// The endpoint at exactly `path`.
    pub fn at(&self, path: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.path == path)
    }

    /// The endpoint whose protected-resource metadata is at `path`.
    pub fn with_metadata_at(&self, path: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.metadata_path == path)
    }

    /// Every path served (for the operator's debug log on a 404).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|e| e.path.as_str())
    }
}

/// Resolve every listener's endpoints against `upstreams` (built from the same `config`).
pub fn build(config: &Config, upstreams: &Upstreams) -> anyhow::Result<Vec<ListenerEndpoints>> {
    let servers: Vec<Arc<VirtualServer>> = config
        .virtual_servers
        .iter()
        .map(|v| Arc::new(v.clone()))
        .collect();
    let mut out = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        let mut endpoints = Vec::with_capacity(l.routes.len() + l.virtual_servers.len());
        for r in &l.routes {
            let upstream = upstreams.get(r.upstream).ok_or_else(|| {
                anyhow::anyhow!("internal: route {} names upstream #{}", r.path, r.upstream)
            })?;
            endpoints.push(Arc::new(Endpoint {
                path: r.path.clone(),
                metadata_path: r.metadata_path.clone(),
                resource_url: r.resource_url.clone(),
                kind: EndpointKind::Route(upstream.clone()),
            }));
        }
        for &index in &l.virtual_servers {
            let server = servers.get(index).ok_or_else(|| {
                anyhow::anyhow!(
                    "internal: listener {} names virtual server #{index}",
                    l.name
                )
            })?;
            endpoints.push(Arc::new(Endpoint {
                path: server.route.clone(),
                metadata_path: server.metadata_path.clone(),
                resource_url: server.resource_url.clone(),
                kind: EndpointKind::Virtual {
                    index,
                    server: server.clone(),
                },
            }));
        }
        out.push(ListenerEndpoints { endpoints });
    }
    Ok(out)
}
