//! State every worker's VM sees: the clock, stats (one stat per name, as Envoy's /stats),
//! shared data, and the recorded log lines, faults and unimplemented calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{LogLevel, MetricType, Status};
use crate::observe::{Fault, LogLine, MetricValue, SimTime};

#[derive(Default)]
pub(crate) struct Shared {
    pub now: SimTime,
    /// Keyed by the name as `/stats` shows it: `wasmcustom.<name>`.
    pub metrics: BTreeMap<String, MetricValue>,
    pub shared_data: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    pub next_cas: u32,
    pub logs: Vec<LogLine>,
    pub faults: Vec<Fault>,
    /// `module.name` of every call to an import the host does not implement.
    pub unimplemented: Vec<String>,
}

/// A cheap handle the store data of every VM holds.
#[derive(Clone, Default)]
pub(crate) struct SharedHandle(Arc<Mutex<Shared>>);

impl SharedHandle {
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        // A poisoned lock only means a test panicked while holding it; the data is still usable.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Shared {
    pub fn fault(&mut self, worker: usize, context_id: u32, call: &str, status: Status, detail: String) {
        let at = self.now;
        self.faults.push(Fault { at, worker, context_id, call: call.to_string(), status, detail });
    }

    pub fn log(&mut self, worker: usize, context_id: u32, level: LogLevel, text: String) {
        let at = self.now;
        self.logs.push(LogLine { at, worker, context_id, level, text });
    }

    /// Creates the stat on first definition; later definitions (other workers) share it.
    pub fn define_metric(&mut self, kind: MetricType, stat_name: &str) {
        self.metrics.entry(stat_name.to_string()).or_insert(match kind {
            MetricType::Counter => MetricValue::Counter(0),
            MetricType::Gauge => MetricValue::Gauge(0),
            MetricType::Histogram => MetricValue::Histogram(Vec::new()),
        });
    }

    pub fn next_cas(&mut self) -> u32 {
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        self.next_cas
    }
}
