//! One Envoy worker's connections: the state of each, one timer heap for all, and the statistics.
//!
//! Envoy gives every worker thread its own VM and root context, and a root context only reaches the
//! connections of its own worker, so one `Worker` is the whole world of one filter instance. Envoy calls are
//! mapped onto these methods by the adapter; tests call them directly with a fake `Transport`.

use std::collections::HashMap;

use log::{debug, info};

use super::config::Config;
use super::connection::{ClientData, Connection, Dead, Phase, PingKind, Timeout};
use super::protocol::{Output, ProtocolError};
use super::stats::{Stat, Stats};
use super::time::Instant;
use super::timers::{ConnId, Timers};

/// Stale timer entries tolerated beyond twice the open connections before the heap is compacted: keeps
/// compaction rare on a worker with few connections.
const STALE_TIMERS_SLACK: usize = 64;

/// What the worker asks of the proxy on a tick.
pub trait Transport {
    /// Append `bytes` to the client's stream of connection `id` and send it on. False when the proxy has no
    /// buffer for it (the connection is gone or was never paused).
    fn inject(&mut self, id: ConnId, bytes: &[u8]) -> bool;
    /// Close connection `id`, both sides, because its upstream is dead; `why` says so for the log line.
    fn close(&mut self, id: ConnId, dead: &Dead, why: &str);
}

pub struct Worker {
    config: Config,
    connections: HashMap<ConnId, Connection>,
    timers: Timers,
    stats: Stats,
    /// Scratch space for upstream chunk edits, reused so that the data path does not allocate.
    edits: Output,
    /// Connections handled by the current tick, to re-arm once it is done (reused).
    due_again: Vec<ConnId>,
}

impl Worker {
    pub fn new(config: Config) -> Self {
        Worker {
            config,
            connections: HashMap::new(),
            timers: Timers::new(),
            stats: Stats::default(),
            edits: Output::new(),
            due_again: Vec::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Connections known (open), whatever their phase.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Timer heap entries (live and stale), for the tick-cost benchmark.
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    pub fn phase(&self, id: ConnId) -> Option<Phase> {
        self.connections.get(&id).map(Connection::phase)
    }

    /// A client connected.
    pub fn open(&mut self, id: ConnId, now: Instant) {
        let conn = Connection::new(self.config.protocol.open(), now);
        if let Some(old) = self.connections.insert(id, conn) {
            // A context id Envoy reused without telling us the old one closed: account for it as closed.
            self.forget(id, old);
        }
    }

    /// Bytes from the client. Returns whether the adapter keeps the read buffer for later injection.
    pub fn client_data(&mut self, id: ConnId, data: &[u8], end_of_stream: bool, now: Instant) -> bool {
        let Some(conn) = self.connections.get_mut(&id) else { return false };
        let before = conn.phase();
        let ClientData { keep_buffer, error } = conn.on_client_data(data, end_of_stream, now);
        let after = conn.phase();
        if let Some(error) = error {
            self.protocol_error(id, &error);
        }
        self.phase_changed(id, before, after);
        keep_buffer
    }

    /// Bytes from the upstream. Returns the chunk the client must receive instead, if it differs.
    pub fn upstream_data(&mut self, id: ConnId, data: &[u8], end_of_stream: bool, now: Instant) -> Option<Vec<u8>> {
        let conn = self.connections.get_mut(&id)?;
        let before = conn.phase();
        self.edits.clear();
        let result = conn.on_upstream_data(data, end_of_stream, now, &mut self.edits);
        let after = conn.phase();
        self.stats.add(Stat::PongsStripped, i64::from(result.pongs));
        if let Some(error) = &result.error {
            self.protocol_error(id, error);
        }
        if result.rearm {
            self.schedule(id);
        }
        self.phase_changed(id, before, after);
        self.edits.apply(data)
    }

    /// The upstream half-closed (FIN): nothing more to watch.
    pub fn upstream_closed(&mut self, id: ConnId) {
        if let Some(conn) = self.connections.get_mut(&id) {
            let before = conn.phase();
            conn.end();
            let after = conn.phase();
            self.phase_changed(id, before, after);
        }
    }

    /// The connection is gone: free its state.
    pub fn closed(&mut self, id: ConnId) {
        if let Some(conn) = self.connections.remove(&id) {
            self.forget(id, conn);
            self.compact_timers();
        }
    }

    /// Drops the heap entries of connections that are gone (or were re-armed earlier) once they outnumber the
    /// live ones: memory stays proportional to the open connections however long the timers are.
    fn compact_timers(&mut self) {
        if self.timers.len() <= 2 * self.connections.len() + STALE_TIMERS_SLACK {
            return;
        }
        let connections = &self.connections;
        self.timers.retain(|at, id| connections.get(&id).is_some_and(|conn| conn.scheduled == Some(at)));
    }

    /// Nothing will drive this worker again (its root context is done): forget every connection as closed.
    pub fn forget_all(&mut self) {
        let connections = std::mem::take(&mut self.connections);
        for (id, conn) in connections {
            self.forget(id, conn);
        }
        self.timers.retain(|_, _| false);
    }

    fn forget(&mut self, id: ConnId, mut conn: Connection) {
        let before = conn.phase();
        conn.end();
        self.phase_changed(id, before, conn.phase());
        self.stats.add(Stat::PingsUnanswered, i64::from(conn.pings_owed()));
    }

    /// Runs every timer due at `now`. Costs O(due x log n): connections that are not due are not visited.
    pub fn tick(&mut self, now: Instant, transport: &mut impl Transport) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(conn) = self.connections.get_mut(&id) else { continue };
            if conn.scheduled != Some(at) {
                continue; // stale: the connection was re-armed earlier since
            }
            conn.scheduled = None;
            let before = conn.phase();
            match conn.on_timeout(now, &self.config) {
                Timeout::Nothing => {}
                Timeout::Inject(kind) => {
                    if transport.inject(id, conn.ping()) {
                        conn.ping_written(now);
                        self.stats.add(ping_stat(kind), 1);
                    } else {
                        conn.ping_failed(kind, now, &self.config);
                        self.stats.add(Stat::InjectionsDeferred, 1);
                        debug!("heartbeat: connection {id}: no buffer to write the {kind:?} PING into");
                    }
                }
                Timeout::Deferred(kind, reason) => {
                    self.stats.add(Stat::InjectionsDeferred, 1);
                    debug!("heartbeat: connection {id}: {kind:?} PING deferred ({})", reason.as_str());
                }
                Timeout::Dead(dead) => {
                    self.stats.add(Stat::DeadClosed, 1);
                    transport.close(id, &dead, &dead.describe(&self.config));
                }
            }
            let after = conn.phase();
            self.phase_changed(id, before, after);
            self.due_again.push(id);
        }
        // Re-armed only after the loop: a connection whose next deadline is already due waits for the next
        // tick instead of being popped again in this one. A deadline that failed to move on can then cost a
        // tick's work, never hang the worker (and with it every connection of this Envoy worker).
        let mut due_again = std::mem::take(&mut self.due_again);
        for id in due_again.drain(..) {
            self.schedule(id);
        }
        self.due_again = due_again;
    }

    /// Keeps the heap holding the connection's earliest deadline. Later deadlines are left to lazy re-arming.
    fn schedule(&mut self, id: ConnId) {
        let Some(conn) = self.connections.get_mut(&id) else { return };
        let Some(deadline) = conn.deadline(&self.config) else { return };
        if conn.scheduled.is_some_and(|at| at <= deadline) {
            return;
        }
        conn.scheduled = Some(deadline);
        self.timers.push(deadline, id);
        // The entry this one replaces is stale now.
        self.compact_timers();
    }

    fn phase_changed(&mut self, id: ConnId, before: Phase, after: Phase) {
        if before == after {
            return;
        }
        if after == Phase::Monitoring {
            self.stats.add(Stat::ConnectionsMonitored, 1);
            self.schedule(id);
        } else if before == Phase::Monitoring {
            self.stats.add(Stat::ConnectionsMonitored, -1);
        }
    }

    fn protocol_error(&mut self, id: ConnId, error: &ProtocolError) {
        self.stats.add(Stat::ProtocolErrors, 1);
        info!(
            "heartbeat: connection {id}: {} {error}; passing the connection through untouched from now on",
            self.config.protocol.name()
        );
    }
}

fn ping_stat(kind: PingKind) -> Stat {
    match kind {
        PingKind::Probe => Stat::PingsInjected,
        PingKind::Keepalive => Stat::KeepalivePings,
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
