//! Publishes the core's statistics as proxy-wasm metrics.
//!
//! Counts are published as deltas, counters and gauges alike: Envoy merges a metric name defined by every
//! worker's VM into one stat, so a gauge must be moved up and down by each worker, never set.

use log::warn;

use super::hostcalls;
use crate::core::stats::{Stat, StatKind, Stats};

pub struct Metrics {
    ids: Vec<Option<u32>>,
    published: Stats,
}

impl Metrics {
    pub fn define() -> Self {
        let ids = Stat::all()
            .map(|stat| match hostcalls::define_metric(stat.kind() == StatKind::Gauge, stat.name()) {
                Ok(id) => Some(id),
                Err(status) => {
                    warn!("heartbeat: metric {} could not be defined (status {status})", stat.name());
                    None
                }
            })
            .collect();
        Metrics { ids, published: Stats::default() }
    }

    /// Moves every metric by what changed since the last call.
    pub fn publish(&mut self, now: &Stats) {
        for (stat, id) in Stat::all().zip(&self.ids) {
            let delta = now.get(stat) - self.published.get(stat);
            if delta == 0 {
                continue;
            }
            if let Some(id) = id {
                hostcalls::increment_metric(*id, delta);
            }
            self.published.add(stat, delta);
        }
    }
}
