//! heartbeat: find upstream connections that died without a FIN or RST, and close them.
//!
//! - [`core`]: the decisions, sans-IO: bytes and time in, actions out (inject a PING, strip a PONG, close).
//! - [`adapter`]: maps proxy-wasm callbacks onto the core; the only code that knows about Envoy.

pub mod core;

#[cfg(target_arch = "wasm32")]
mod adapter;
