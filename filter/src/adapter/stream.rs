//! A connection's stream context: hands each callback's bytes to the worker and applies its answer.

use log::{error, warn};
use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::{Action, PeerType};

use super::{hostcalls, now, SharedWorker};
use crate::core::worker::Worker;

pub struct Stream {
    id: u32,
    worker: SharedWorker,
}

impl Stream {
    pub fn new(id: u32, worker: SharedWorker) -> Self {
        Stream { id, worker }
    }

    fn with_worker<T>(&self, default: T, f: impl FnOnce(&mut Worker) -> T) -> T {
        match self.worker.borrow_mut().as_mut() {
            Some(worker) => f(worker),
            None => default,
        }
    }
}

impl Context for Stream {}

impl StreamContext for Stream {
    fn on_new_connection(&mut self) -> Action {
        let id = self.id;
        self.with_worker((), |w| w.open(id, now()));
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        let id = self.id;
        let data = match hostcalls::downstream_data(size) {
            Ok(data) => data,
            Err(status) => {
                // Without the bytes the stream cannot be followed: stop watching this connection.
                warn!("heartbeat: connection {id}: client bytes unreadable (status {status}); not watching it");
                self.with_worker((), |w| w.closed(id));
                return Action::Continue;
            }
        };
        // Test-only (cargo feature `test-trap`, never in a release build): trap the VM on a magic client
        // message, so that the Envoy suite can watch Envoy's `failure_policy` at work.
        #[cfg(feature = "test-trap")]
        if data.windows(19).any(|w| w == b"HEARTBEAT-TEST-TRAP") {
            panic!("heartbeat: test-trap: the client sent HEARTBEAT-TEST-TRAP on connection {id}");
        }
        let keep_buffer = self.with_worker(false, |w| w.client_data(id, &data, end_of_stream, now()));
        // Pausing keeps Envoy's read buffer reachable for a later PING; the continue sends the bytes on at
        // once. If the continue is refused, never strand the client's bytes: let them go the normal way.
        if keep_buffer && size > 0 && hostcalls::continue_downstream() == hostcalls::OK {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        let id = self.id;
        let data = match hostcalls::upstream_data(size) {
            Ok(data) => data,
            Err(status) => {
                warn!("heartbeat: connection {id}: upstream bytes unreadable (status {status}); not watching it");
                self.with_worker((), |w| w.closed(id));
                return Action::Continue;
            }
        };
        let rewritten = self.with_worker(None, |w| w.upstream_data(id, &data, end_of_stream, now()));
        if let Some(bytes) = rewritten {
            let status = hostcalls::replace_upstream_data(size, &bytes);
            if status != hostcalls::OK {
                error!("heartbeat: connection {id}: could not strip a PONG (status {status})");
            }
        }
        // Never Pause on the write path: Envoy cannot resume it (continue_stream(Upstream) is unimplemented).
        Action::Continue
    }

    fn on_downstream_close(&mut self, _peer: PeerType) {
        let id = self.id;
        self.with_worker((), |w| w.closed(id));
    }

    fn on_upstream_close(&mut self, _peer: PeerType) {
        let id = self.id;
        self.with_worker((), |w| w.upstream_closed(id));
    }
}
