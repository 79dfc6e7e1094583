//! The sans-IO core: no proxy-wasm types, no clock, no I/O. Time is an argument.
//!
//! - [`protocol`]: where frames begin and end, which replies answer the filter's PINGs;
//! - [`connection`]: one connection's liveness state machine;
//! - [`worker`]: one Envoy worker's connections, their timers and statistics;
//! - [`config`]: the plugin configuration, checked once.

pub mod config;
pub mod connection;
pub mod duration;
pub mod protocol;
pub mod stats;
pub mod time;
pub mod timers;
pub mod worker;
