//! The simulated Envoy: N workers (one VM and root context each), a connection model in front of
//! tcp_proxy, and a simulated clock that fires root ticks and upstream connects in time order.
//! Driving methods return [`Result`]: a trap in the filter comes back as [`HostError::Trap`].

mod actions;
mod close;
mod observe;
mod read_path;
mod write_path;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::abi::Action;
use crate::conn::{Conn, Upstream};
use crate::error::{HostError, Result};
use crate::observe::{CloseCause, ConnId, SimTime};
use crate::options::{ConnectOptions, HostOptions};
use crate::plugin::Plugin;
use crate::shared::SharedHandle;
use crate::vm::state::{ContextKind, VmState};
use crate::vm::{Callback, Vm};

pub(crate) struct Worker {
    pub vm: Vm,
    pub tick_period: Option<Duration>,
    /// Bumped whenever the period changes, so that a timer armed for the old period is ignored.
    pub tick_generation: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Tick { worker: usize, generation: u64 },
    UpstreamConnect(ConnId),
}

/// Ordered by due time, then by the order they were armed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    due: SimTime,
    seq: u64,
    kind: TimerKind,
}

pub struct Host {
    options: Arc<HostOptions>,
    shared: SharedHandle,
    workers: Vec<Worker>,
    conn_worker: HashMap<ConnId, usize>,
    next_conn_id: u64,
    next_worker: usize,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
}

impl Host {
    /// Loads the filter into every worker the way Envoy does: `proxy_on_context_create(root, 0)`,
    /// `proxy_on_vm_start`, `proxy_on_configure` (the plugin configuration readable only then).
    /// A `false` from either is an error carrying the filter's log lines.
    pub fn start(plugin: &Plugin, options: HostOptions) -> Result<Self> {
        if options.workers == 0 {
            return Err(HostError::Usage("at least one worker".into()));
        }
        let options = Arc::new(options);
        let mut host = Self {
            options: options.clone(),
            shared: SharedHandle::default(),
            workers: Vec::new(),
            conn_worker: HashMap::new(),
            next_conn_id: 1,
            next_worker: 0,
            timers: BinaryHeap::new(),
            timer_seq: 0,
        };
        for worker in 0..options.workers {
            let state = VmState::new(worker, host.shared.clone(), options.clone());
            let mut vm = Vm::instantiate(plugin, state)?;
            let data = vm.store.data_mut();
            let root = data.alloc_context_id();
            data.root_context_id = root;
            data.contexts.insert(root, ContextKind::Root);
            host.workers.push(Worker { vm, tick_period: None, tick_generation: 0 });

            host.call_filter(worker, Callback::ContextCreate { context: root, parent: 0 })?;
            let size = options.vm_configuration.len() as u32;
            if host.call_filter(worker, Callback::VmStart { context: root, size })? == Some(0) {
                return Err(HostError::VmStartFailed { logs: host.logs() });
            }
            host.vm_state_mut(worker)?.configuring = true;
            let size = options.plugin_configuration.len() as u32;
            let configured = host.call_filter(worker, Callback::Configure { context: root, size });
            host.vm_state_mut(worker)?.configuring = false;
            if configured? == Some(0) {
                return Err(HostError::ConfigRejected { logs: host.logs() });
            }
        }
        Ok(host)
    }

    /// A client connects; the upstream connection is established at once.
    pub fn connect(&mut self) -> Result<ConnId> {
        self.connect_with(ConnectOptions::default())
    }

    /// A client connects; the upstream connection is established after `delay`.
    pub fn connect_with_delay(&mut self, delay: Duration) -> Result<ConnId> {
        self.connect_with(ConnectOptions::delay(delay))
    }

    /// A client connects. The filter gets `proxy_on_context_create` and `proxy_on_new_connection`;
    /// unless it pauses there, tcp_proxy then starts connecting to the upstream and keeps the
    /// client read-disabled until that connection is up.
    pub fn connect_with(&mut self, options: ConnectOptions) -> Result<ConnId> {
        let worker = match options.worker {
            Some(w) if w < self.workers.len() => w,
            Some(w) => return Err(HostError::Usage(format!("no worker {w} (there are {})", self.workers.len()))),
            None => {
                let w = self.next_worker % self.workers.len();
                self.next_worker = self.next_worker.wrapping_add(1);
                w
            }
        };
        let id = ConnId(self.next_conn_id);
        self.next_conn_id += 1;
        let now = self.now();
        let default_upstream = self.options.upstream_address.clone();
        let state = self.vm_state_mut(worker)?;
        let root = state.root_context_id;
        let context = state.alloc_context_id();
        let mut conn = Conn::new(id, worker, context, now);
        conn.source_address = options.source_address.unwrap_or_else(|| format!("127.0.0.1:{}", 40000 + id.0 % 20000));
        conn.upstream_address = options.upstream_address.unwrap_or(default_upstream);
        conn.connect_delay = options.upstream_connect_delay;
        conn.connect_fails = options.upstream_connect_fails;
        state.contexts.insert(context, ContextKind::Stream(id));
        state.conns.insert(id, conn);
        self.conn_worker.insert(id, worker);

        // Envoy's Context::onNewConnection: onCreate (context create), then the callback.
        self.call_filter(worker, Callback::ContextCreate { context, parent: root })?;
        self.conn_mut(id)?.context_alive = true;
        let action = self.call_filter(worker, Callback::NewConnection { context })?;
        if Action::from_raw(action.unwrap_or(0)) == Action::Continue && self.conn(id)?.is_open() {
            self.start_tcp_proxy(id)?;
        }
        Ok(id)
    }

    /// tcp_proxy's onNewConnection: pick the cluster, start connecting.
    pub(crate) fn start_tcp_proxy(&mut self, id: ConnId) -> Result<()> {
        let conn = self.conn_mut(id)?;
        if conn.upstream != Upstream::NotStarted {
            return Ok(());
        }
        conn.upstream = Upstream::Connecting;
        let delay = conn.connect_delay;
        if delay.is_zero() {
            self.upstream_connect_done(id)
        } else {
            let due = self.now() + delay;
            self.arm(due, TimerKind::UpstreamConnect(id));
            Ok(())
        }
    }

    fn upstream_connect_done(&mut self, id: ConnId) -> Result<()> {
        let now = self.now();
        let conn = self.conn_mut(id)?;
        if !conn.is_open() || conn.upstream != Upstream::Connecting {
            return Ok(());
        }
        if conn.connect_fails {
            conn.upstream = Upstream::Gone;
            return self.close_downstream(id, CloseCause::UpstreamReset, crate::abi::PeerType::Local);
        }
        conn.upstream = Upstream::Connected { at: now };
        // readDisable(false): what the client sent meanwhile is read now.
        self.pump_read(id)
    }

    /// Moves the simulated clock forward, firing root ticks and upstream connects at their due
    /// times, in order. Nothing sleeps.
    pub fn advance(&mut self, by: Duration) -> Result<()> {
        // A failed VM stops all its work (Envoy no longer calls it): say so instead of idling.
        if let Some(worker) = self.workers.iter().position(|w| w.vm.failed) {
            return Err(HostError::VmFailed { worker });
        }
        let target = self.now() + by;
        while let Some(Reverse(timer)) = self.timers.peek().copied() {
            if timer.due > target {
                break;
            }
            self.timers.pop();
            self.shared.lock().now = timer.due;
            match timer.kind {
                TimerKind::Tick { worker, generation } => self.fire_tick(worker, generation)?,
                TimerKind::UpstreamConnect(id) => self.upstream_connect_done(id)?,
            }
        }
        self.shared.lock().now = target;
        Ok(())
    }

    fn fire_tick(&mut self, worker: usize, generation: u64) -> Result<()> {
        if self.worker(worker)?.tick_generation != generation {
            return Ok(());
        }
        let root = self.vm_state_mut(worker)?.root_context_id;
        self.call_filter(worker, Callback::Tick { context: root })?;
        // Envoy re-arms the timer after the tick with the (possibly new) period.
        let w = self.worker(worker)?;
        if let (true, Some(period)) = (w.tick_generation == generation, w.tick_period) {
            let due = self.now() + period;
            self.arm(due, TimerKind::Tick { worker, generation });
        }
        Ok(())
    }

    /// Applies a `proxy_set_tick_period_milliseconds` made during the last call: the first tick
    /// comes one period after the call, as Envoy's `enableTimer(period)`.
    pub(crate) fn apply_tick_request(&mut self, worker: usize) -> Result<()> {
        let Some(ms) = self.vm_state_mut(worker)?.tick_request.take() else { return Ok(()) };
        let now = self.now();
        let w = self.worker_mut(worker)?;
        w.tick_generation += 1;
        w.tick_period = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
        if let Some(period) = w.tick_period {
            let generation = w.tick_generation;
            self.arm(now + period, TimerKind::Tick { worker, generation });
        }
        Ok(())
    }

    fn arm(&mut self, due: SimTime, kind: TimerKind) {
        self.timer_seq += 1;
        self.timers.push(Reverse(Timer { due, seq: self.timer_seq, kind }));
    }

    // --- lookups ---

    pub(crate) fn worker(&self, worker: usize) -> Result<&Worker> {
        self.workers.get(worker).ok_or_else(|| HostError::Usage(format!("no worker {worker}")))
    }

    pub(crate) fn worker_mut(&mut self, worker: usize) -> Result<&mut Worker> {
        self.workers.get_mut(worker).ok_or_else(|| HostError::Usage(format!("no worker {worker}")))
    }

    pub(crate) fn vm_state_mut(&mut self, worker: usize) -> Result<&mut VmState> {
        Ok(self.worker_mut(worker)?.vm.store.data_mut())
    }

    pub(crate) fn conn(&self, id: ConnId) -> Result<&Conn> {
        let worker = *self.conn_worker.get(&id).ok_or(HostError::UnknownConnection(id))?;
        self.worker(worker)?.vm.store.data().conns.get(&id).ok_or(HostError::UnknownConnection(id))
    }

    pub(crate) fn conn_mut(&mut self, id: ConnId) -> Result<&mut Conn> {
        let worker = *self.conn_worker.get(&id).ok_or(HostError::UnknownConnection(id))?;
        self.vm_state_mut(worker)?.conns.get_mut(&id).ok_or(HostError::UnknownConnection(id))
    }
}
