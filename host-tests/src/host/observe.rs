//! Read-only views for assertions: bytes each side received, how connections ended, stats,
//! log lines, faults, the callback trace, fuel and memory.

use std::collections::BTreeMap;

use super::Host;
use crate::conn::Upstream;
use crate::error::Result;
use crate::observe::{CallbackEvent, Chunk, Closed, ConnId, Fault, LogLine, MetricValue, SimTime};

impl Host {
    /// Simulated time since start.
    pub fn now(&self) -> SimTime {
        self.shared.lock().now
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// All bytes the upstream received on this connection, concatenated.
    pub fn upstream_received(&self, id: ConnId) -> Result<Vec<u8>> {
        Ok(self.conn(id)?.upstream_received.iter().flat_map(|c| c.bytes.iter().copied()).collect())
    }

    /// The upstream's bytes as separate writes, with the time each arrived.
    pub fn upstream_chunks(&self, id: ConnId) -> Result<&[Chunk]> {
        Ok(&self.conn(id)?.upstream_received)
    }

    /// All bytes the client received, concatenated.
    pub fn client_received(&self, id: ConnId) -> Result<Vec<u8>> {
        Ok(self.conn(id)?.client_received.iter().flat_map(|c| c.bytes.iter().copied()).collect())
    }

    pub fn client_chunks(&self, id: ConnId) -> Result<&[Chunk]> {
        Ok(&self.conn(id)?.client_received)
    }

    /// How and when the client's connection closed; None while open.
    pub fn closed(&self, id: ConnId) -> Result<Option<&Closed>> {
        Ok(self.conn(id)?.closed.as_ref())
    }

    /// When the client got end of stream (upstream FIN passed through); None if not yet.
    pub fn client_saw_fin(&self, id: ConnId) -> Result<Option<SimTime>> {
        Ok(self.conn(id)?.client_saw_fin)
    }

    /// When the upstream got the client's end of stream.
    pub fn upstream_saw_fin(&self, id: ConnId) -> Result<Option<SimTime>> {
        Ok(self.conn(id)?.upstream_saw_fin)
    }

    /// When Envoy closed the upstream connection (after the client's connection closed).
    pub fn upstream_saw_close(&self, id: ConnId) -> Result<Option<SimTime>> {
        Ok(self.conn(id)?.upstream_saw_close)
    }

    pub fn upstream_connected(&self, id: ConnId) -> Result<bool> {
        Ok(matches!(self.conn(id)?.upstream, Upstream::Connected { .. }))
    }

    /// Bytes sitting in Envoy's read buffer (a filter paused without continuing).
    pub fn read_buffer_len(&self, id: ConnId) -> Result<usize> {
        Ok(self.conn(id)?.read_buffer.len())
    }

    /// Bytes tcp_proxy holds for a blocked upstream.
    pub fn upstream_buffered(&self, id: ConnId) -> Result<usize> {
        Ok(self.conn(id)?.upstream_write_buffer.len())
    }

    /// Whether Envoy is reading from the client right now.
    pub fn client_reading_enabled(&self, id: ConnId) -> Result<bool> {
        Ok(self.conn(id)?.reading_enabled())
    }

    /// Every callback made for this connection, in order (see [`crate::HostOptions::record_callbacks`]).
    pub fn callbacks(&self, id: ConnId) -> Result<&[CallbackEvent]> {
        Ok(&self.conn(id)?.callbacks)
    }

    /// The filter's context id for this connection.
    pub fn context_id(&self, id: ConnId) -> Result<u32> {
        Ok(self.conn(id)?.context_id)
    }

    /// When the client connected.
    pub fn opened_at(&self, id: ConnId) -> Result<SimTime> {
        Ok(self.conn(id)?.opened_at)
    }

    pub fn worker_of(&self, id: ConnId) -> Result<usize> {
        Ok(self.conn(id)?.worker)
    }

    pub fn root_context_id(&self, worker: usize) -> Result<u32> {
        Ok(self.worker(worker)?.vm.store.data().root_context_id)
    }

    /// Connections not closed yet.
    pub fn open_connections(&self) -> usize {
        self.workers.iter().map(|w| w.vm.store.data().conns.values().filter(|c| c.is_open()).count()).sum()
    }

    /// A stat by its `/stats` name (`wasmcustom.<name>`) or by the name the filter defined.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        let shared = self.shared.lock();
        shared.metrics.get(name).or_else(|| shared.metrics.get(&format!("wasmcustom.{name}"))).cloned()
    }

    /// A counter's or gauge's value; 0 when the stat does not exist.
    pub fn metric_value(&self, name: &str) -> u64 {
        self.metric(name).map_or(0, |m| m.value())
    }

    pub fn metrics(&self) -> BTreeMap<String, MetricValue> {
        self.shared.lock().metrics.clone()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.shared.lock().logs.clone()
    }

    /// Log lines containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<LogLine> {
        self.shared.lock().logs.iter().filter(|l| l.text.contains(needle)).cloned().collect()
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.clone()
    }

    /// Imports the filter called that the host does not implement (`module.name`, per call).
    pub fn unimplemented_calls(&self) -> Vec<String> {
        self.shared.lock().unimplemented.clone()
    }

    /// Fuel (about one unit per wasm instruction) the last call of `callback` on `worker` burned,
    /// e.g. `"proxy_on_tick"`.
    pub fn last_fuel(&self, worker: usize, callback: &str) -> Option<u64> {
        self.workers.get(worker)?.vm.last_fuel.get(callback).copied()
    }

    /// Size of the worker VM's linear memory in bytes.
    pub fn memory_bytes(&self, worker: usize) -> Option<usize> {
        self.workers.get(worker).map(|w| w.vm.memory_bytes())
    }

    /// The next tick's period on this worker, if the filter set one.
    pub fn tick_period(&self, worker: usize) -> Option<std::time::Duration> {
        self.workers.get(worker)?.tick_period
    }
}
