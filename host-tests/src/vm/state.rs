//! The data one worker's wasmtime store carries: what the host calls of that VM can reach
//! (its contexts and their connections, the deferred actions, metric ids) plus a handle on the
//! state all workers share.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use wasmtime::{Memory, TypedFunc};

use crate::abi::{MetricType, Status};
use crate::conn::Conn;
use crate::observe::{CloseCause, ConnId};
use crate::options::HostOptions;
use crate::shared::SharedHandle;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ContextKind {
    Root,
    Stream(ConnId),
}

/// Work Envoy defers until the current call into the VM has returned (`addAfterVmCallAction`),
/// run in FIFO order by whoever returns from the VM first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AfterCall {
    /// `continueReading()`: run the filters after this one (tcp_proxy) over the read buffer.
    ContinueReading(ConnId),
    /// `connection().close(FlushWrite)`.
    Close(ConnId, CloseCause),
}

pub(crate) struct VmState {
    pub worker: usize,
    pub shared: SharedHandle,
    pub options: Arc<HostOptions>,
    pub memory: Option<Memory>,
    /// `proxy_on_memory_allocate` (or `malloc`): where returned bytes are copied.
    pub malloc: Option<TypedFunc<i32, i32>>,

    pub root_context_id: u32,
    next_context_id: u32,
    pub contexts: HashMap<u32, ContextKind>,
    pub conns: HashMap<ConnId, Conn>,

    /// The context the host called into.
    pub current_context: u32,
    /// Set by `proxy_set_effective_context`; reset on every entry into the VM.
    pub effective_context: Option<u32>,
    /// The plugin configuration is readable only during `proxy_on_configure`.
    pub configuring: bool,
    pub actions: VecDeque<AfterCall>,
    /// The last `proxy_set_tick_period_milliseconds` not yet applied by the host.
    pub tick_request: Option<u32>,

    /// Envoy's per-VM metric ids: kind in the low 2 bits, +4 per definition.
    pub metric_ids: HashMap<u32, (MetricType, String)>,
    next_metric_id: [u32; 3],
    /// `proxy_set_property` values, per context (Envoy keeps them as filter state).
    pub properties: HashMap<(u32, Vec<u8>), Vec<u8>>,
}

impl VmState {
    pub fn new(worker: usize, shared: SharedHandle, options: Arc<HostOptions>) -> Self {
        Self {
            worker,
            shared,
            options,
            memory: None,
            malloc: None,
            root_context_id: 0,
            next_context_id: 1,
            contexts: HashMap::new(),
            conns: HashMap::new(),
            current_context: 0,
            effective_context: None,
            configuring: false,
            actions: VecDeque::new(),
            tick_request: None,
            metric_ids: HashMap::new(),
            next_metric_id: [MetricType::Counter as u32, MetricType::Gauge as u32, MetricType::Histogram as u32],
            properties: HashMap::new(),
        }
    }

    /// Context ids are per VM, start at 1 (the root context) and are never reused.
    pub fn alloc_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id = self.next_context_id.wrapping_add(1).max(1);
        id
    }

    pub fn alloc_metric_id(&mut self, kind: MetricType) -> u32 {
        let slot = &mut self.next_metric_id[kind as usize];
        *slot = slot.wrapping_add(4);
        *slot
    }

    /// The context host calls act on: the effective one if set and still alive, else the current one.
    pub fn acting_context(&self) -> u32 {
        match self.effective_context {
            Some(id) if self.contexts.contains_key(&id) => id,
            _ => self.current_context,
        }
    }

    /// The connection behind the acting context, if it is a stream context.
    pub fn acting_conn(&self) -> Option<ConnId> {
        match self.contexts.get(&self.acting_context()) {
            Some(ContextKind::Stream(id)) => Some(*id),
            _ => None,
        }
    }

    pub fn acting_conn_mut(&mut self) -> Option<&mut Conn> {
        let id = self.acting_conn()?;
        self.conns.get_mut(&id)
    }

    pub fn fault(&self, call: &str, status: Status, detail: impl Into<String>) {
        let context = self.acting_context();
        self.shared.lock().fault(self.worker, context, call, status, detail.into());
    }
}
