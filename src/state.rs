//! Runtime state shared by every request: one [`ArcSwap`] holding the current [`Runtime`]
//! (validated config + resolved upstreams), so a configuration reload is a single atomic swap,
//! plus the process-lifetime [`Metrics`].

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::upstreams::Upstreams;

/// Everything a request needs that is derived from configuration.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub upstreams: Upstreams,
}

impl Runtime {
    /// Build from a validated config: resolves upstream addresses.
    pub fn new(config: Config) -> anyhow::Result<Runtime> {
        let upstreams = Upstreams::from_config(&config)?;
        Ok(Runtime { config, upstreams })
    }
}

/// State shared by all listeners and the admin service of one gateway.
#[derive(Debug)]
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub metrics: Metrics,
}

impl Shared {
    pub fn new(runtime: Runtime) -> anyhow::Result<Arc<Shared>> {
        Ok(Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            metrics: Metrics::new()?,
        }))
    }
}
