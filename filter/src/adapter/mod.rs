//! The proxy-wasm adapter: maps Envoy's callbacks onto the sans-IO core, and nothing else.
//!
//! How an idle connection gets a PING (Envoy has no API to write to a connection from a timer):
//! 1. every client chunk is inspected, then `continue_stream(Downstream)` and `Pause` are returned: the bytes
//!    go on at once (Envoy runs the deferred continue right after the callback), and because the callback
//!    paused, Envoy keeps the connection's read buffer reachable from the VM;
//! 2. on the root tick, `set_effective_context(connection)`, append the PING to that (drained) read buffer,
//!    `continue_stream(Downstream)`: tcp_proxy sends it upstream; the client never sees it;
//! 3. on the write path, the reply to the filter's PING is cut out of the chunk before the client gets it.

mod ablation;
mod hostcalls;
mod metrics;
mod root;
mod stream;

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::types::LogLevel;

use crate::core::time::Instant;
use crate::core::worker::Worker;

/// The worker, shared by the root context and the connections' stream contexts (one thread per VM). Lives
/// here, below both, so that `root` depends on `stream` and neither depends back.
pub type SharedWorker = Rc<RefCell<Option<Worker>>>;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(root::Root::new()));
}}

fn now() -> Instant {
    Instant::from_nanos(hostcalls::now_nanos())
}
