//! Ablation builds: the filter cut short after one step of its per-chunk work, so that a benchmark can put a
//! price on each step (`make bench`, `envoy/src/bench/`, BENCHMARKS.md). This is the one place the steps are
//! defined; each cargo feature `ablate-<step>` builds a filter that does every step up to and including that
//! one, and nothing after it:
//!
//! | feature | step it adds, per chunk | what the variant does |
//! |---|---|---|
//! | `ablate-noop` | - | every callback returns Continue at once, touching nothing: THE no-op proxy-wasm filter |
//! | `ablate-read` | read | copies each chunk into the VM (`proxy_get_buffer_bytes`, both directions), then Continue |
//! | `ablate-pause` | pause + continue | + `continue_stream(Downstream)` and Pause on client chunks (keeps the read buffer) |
//! | `ablate-clock` | clock read | + one `proxy_get_current_time_nanoseconds` per callback |
//! | `ablate-parse` | client parse | + the protocol decoder follows the client's bytes |
//! | `ablate-upstream` | upstream parse | + the decoder follows the upstream's bytes (edits computed, applied if any) |
//! | `ablate-connection` | liveness state | the core's `Connection` per stream instead of a bare decoder (read/write clocks, replies owed, hold-back, PONG edits) |
//! | (none) | worker | the real filter: connections in the worker's map, the timer heap, stats, the root tick, metrics |
//!
//! Below `Full` no tick period is set: the tick and its timers are part of the worker step. Features are
//! ordered: if several are on, the earliest cut wins. Off (the default build), `CUT` is `Full`, every test
//! of it folds away at compile time, and this module's stream is never constructed.

use log::warn;
use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::Action;

use super::{hostcalls, now, SharedWorker};
use crate::core::config::ProtocolSpec;
use crate::core::connection::Connection;
use crate::core::protocol::{Output, Protocol};

/// Where the per-chunk work stops; each step includes all the earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cut {
    Noop,
    Read,
    Pause,
    Clock,
    Parse,
    UpstreamParse,
    Connection,
    /// The real filter.
    Full,
}

/// The step this build stops after.
pub const CUT: Cut = if cfg!(feature = "ablate-noop") {
    Cut::Noop
} else if cfg!(feature = "ablate-read") {
    Cut::Read
} else if cfg!(feature = "ablate-pause") {
    Cut::Pause
} else if cfg!(feature = "ablate-clock") {
    Cut::Clock
} else if cfg!(feature = "ablate-parse") {
    Cut::Parse
} else if cfg!(feature = "ablate-upstream") {
    Cut::UpstreamParse
} else if cfg!(feature = "ablate-connection") {
    Cut::Connection
} else {
    Cut::Full
};

/// The configured protocol's decoder, as the worker opens it for a connection.
fn decoder(spec: &ProtocolSpec) -> Box<dyn Protocol> {
    spec.open()
}

/// A stream context that does the steps up to `CUT` (below `Full`).
pub struct Stream {
    /// The bare decoder (`Parse`, `UpstreamParse`); dropped after a protocol error, as the core passes through.
    decoder: Option<Box<dyn Protocol>>,
    /// The core's connection state machine (`Connection`), created on `on_new_connection`.
    connection: Option<Connection>,
    spec: Option<ProtocolSpec>,
    edits: Output,
}

impl Stream {
    pub fn new(worker: &SharedWorker) -> Self {
        let spec = if CUT >= Cut::Parse { worker.borrow().as_ref().map(|w| w.config().protocol.clone()) } else { None };
        let decoder = if CUT >= Cut::Parse && CUT < Cut::Connection { spec.as_ref().map(decoder) } else { None };
        Stream { decoder, connection: None, spec, edits: Output::new() }
    }

    /// Replaces the upstream chunk when the edits changed it (never without an injected PING, but the call is
    /// part of the step's price).
    fn apply_edits(&self, data: &[u8], size: usize) {
        if let Some(bytes) = self.edits.apply(data) {
            let status = hostcalls::replace_upstream_data(size, &bytes);
            if status != hostcalls::OK {
                warn!("heartbeat (ablation): could not rewrite an upstream chunk (status {status})");
            }
        }
    }
}

impl Context for Stream {}

impl StreamContext for Stream {
    fn on_new_connection(&mut self) -> Action {
        if CUT >= Cut::Clock {
            let now = now();
            if CUT >= Cut::Connection {
                self.connection = self.spec.as_ref().map(|spec| Connection::new(decoder(spec), now));
            }
        }
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        if CUT == Cut::Noop {
            return Action::Continue;
        }
        let Ok(data) = hostcalls::downstream_data(size) else { return Action::Continue };
        let mut keep_buffer = CUT >= Cut::Pause;
        if CUT >= Cut::Clock {
            let now = now();
            if let Some(conn) = &mut self.connection {
                keep_buffer = conn.on_client_data(&data, end_of_stream, now).keep_buffer;
            } else if let Some(decoder) = &mut self.decoder {
                if decoder.on_client_bytes(&data).is_err() {
                    self.decoder = None;
                }
            }
        }
        if keep_buffer && size > 0 && hostcalls::continue_downstream() == hostcalls::OK {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        if CUT == Cut::Noop {
            return Action::Continue;
        }
        let Ok(data) = hostcalls::upstream_data(size) else { return Action::Continue };
        if CUT >= Cut::Clock {
            let now = now();
            if let Some(conn) = &mut self.connection {
                self.edits.clear();
                conn.on_upstream_data(&data, end_of_stream, now, &mut self.edits);
                self.apply_edits(&data, size);
            } else if CUT >= Cut::UpstreamParse {
                if let Some(decoder) = &mut self.decoder {
                    self.edits.clear();
                    if decoder.on_upstream_bytes(&data, &mut self.edits).is_err() {
                        self.decoder = None;
                    } else {
                        self.apply_edits(&data, size);
                    }
                }
            }
        }
        Action::Continue
    }
}
