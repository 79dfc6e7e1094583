//! The root context: one per Envoy worker. It owns the parsed configuration (inside the `Worker`), drives
//! every connection's timers from the tick, and publishes the metrics.

use std::cell::RefCell;
use std::rc::Rc;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::ContextType;

use super::ablation::{self, Cut};
use super::metrics::Metrics;
use super::stream::Stream;
use super::{hostcalls, now, SharedWorker};
use crate::core::config::Config;
use crate::core::connection::Dead;
use crate::core::timers::ConnId;
use crate::core::worker::{Transport, Worker};

pub struct Root {
    worker: SharedWorker,
    metrics: Option<Metrics>,
    /// This root context's share of `wasm_heap_bytes` (see `with_wasm_heap`).
    heap_share: i64,
}

impl Root {
    pub fn new() -> Self {
        Root { worker: Rc::new(RefCell::new(None)), metrics: None, heap_share: 0 }
    }
}

impl Context for Root {
    /// Envoy is done with this root context (its listener's filter chain was drained or replaced, or the VM
    /// is going): no tick will come again, so its connections are no longer watched. Forget them and publish,
    /// so that `connections_monitored` and the PING counters do not keep them for good.
    fn on_done(&mut self) -> bool {
        let mut worker = self.worker.borrow_mut();
        if let Some(worker) = worker.as_mut() {
            worker.forget_all();
            if let Some(metrics) = &mut self.metrics {
                metrics.publish(&with_wasm_heap(worker.stats(), &mut self.heap_share));
            }
        }
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::plugin_configuration() {
            Ok(bytes) => bytes,
            Err(status) => {
                error!("heartbeat: cannot read the plugin configuration (status {status})");
                return false;
            }
        };
        let config = match Config::from_json(&bytes) {
            Ok(config) => config,
            Err(e) => {
                error!("heartbeat: invalid configuration: {e}");
                return false;
            }
        };
        let tick = u32::try_from(config.tick_period().as_millis()).unwrap_or(1000);
        // Ablation builds below the worker step have no timers to drive (see `ablation`).
        if ablation::CUT == Cut::Full && hostcalls::set_tick_period_millis(tick) != hostcalls::OK {
            error!("heartbeat: the host refused a tick period of {tick} ms");
            return false;
        }
        let keepalive = config.write_idle_keepalive.map_or_else(|| "off".to_string(), |k| format!("after {k:?}"));
        info!(
            "heartbeat: protocol {}, PING after {:?} of upstream silence, every {:?}, close after {} missed \
             (bound {:?}), reply timeout {:?}, keepalive {keepalive}, tick {tick} ms",
            config.protocol.name(),
            config.read_idle_timeout,
            config.ping_interval,
            config.max_missed_pongs,
            config.detection_bound(),
            config.reply_timeout,
        );
        if self.metrics.is_none() {
            self.metrics = Some(Metrics::define());
        }
        *self.worker.borrow_mut() = Some(Worker::new(config));
        true
    }

    fn on_tick(&mut self) {
        let mut worker = self.worker.borrow_mut();
        let Some(worker) = worker.as_mut() else { return };
        worker.tick(now(), &mut EnvoyTransport);
        if let Some(metrics) = &mut self.metrics {
            metrics.publish(&with_wasm_heap(worker.stats(), &mut self.heap_share));
        }
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        if ablation::CUT < Cut::Full {
            return Some(Box::new(ablation::Stream::new(&self.worker)));
        }
        Some(Box::new(Stream::new(context_id, self.worker.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// This VM's linear memory as its root contexts have reported it so far, all together.
    static HEAP_REPORTED: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// The worker's stats plus this root context's share of `wasm_heap_bytes`. The memory is the VM's, and a VM
/// hosts one root context per listener using the filter: whichever ticks first after the memory grew reports
/// the growth, so that the shares add up to the VM's size (0 off wasm32).
fn with_wasm_heap(stats: &crate::core::stats::Stats, share: &mut i64) -> crate::core::stats::Stats {
    let mut stats = stats.clone();
    #[cfg(target_arch = "wasm32")]
    {
        let heap = ::core::arch::wasm32::memory_size(0) as i64 * 65536;
        *share += heap - HEAP_REPORTED.with(|r| r.replace(heap));
    }
    let stat = crate::core::stats::Stat::WasmHeapBytes;
    stats.add(stat, *share - stats.get(stat));
    stats
}

/// Acts on a connection from the root context: the effective context is switched to it first.
struct EnvoyTransport;

impl Transport for EnvoyTransport {
    fn inject(&mut self, id: ConnId, bytes: &[u8]) -> bool {
        hostcalls::set_effective_context(id) == hostcalls::OK
            && hostcalls::append_downstream_data(bytes) == hostcalls::OK
            && hostcalls::continue_downstream() == hostcalls::OK
    }

    fn close(&mut self, id: ConnId, _dead: &Dead, why: &str) {
        if hostcalls::set_effective_context(id) != hostcalls::OK {
            warn!("heartbeat: connection {id} is dead but already gone");
            return;
        }
        let upstream = hostcalls::property(&["upstream", "address"])
            .map(|a| String::from_utf8_lossy(&a).into_owned())
            .unwrap_or_else(|| "unknown".into());
        let connection = hostcalls::property(&["connection", "id"])
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_le_bytes);
        let connection = connection.map_or_else(|| format!("context {id}"), |c| format!("C{c}"));
        warn!("heartbeat: closing connection {connection} to upstream {upstream}: {why}");
        let status = hostcalls::close_downstream();
        if status != hostcalls::OK {
            error!("heartbeat: closing connection {connection} failed (status {status})");
        }
    }
}
