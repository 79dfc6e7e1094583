//! The sans-IO core: no proxy-wasm types, no clock, no I/O. Time is an argument.
//!
//! - [`protocol`]: where frames begin and end, which replies answer the filter's PINGs;
//! - [`connection`]: one connection's liveness state machine;
//! - [`worker`]: one Envoy worker's connections, their timers and statistics;
//! - [`config`]: the plugin configuration, checked once.

// The core never panics: in Envoy a panic traps the wasm VM, and a trapped VM takes down every connection of
// its worker (see `failure_policy` in the README). So outside tests the core may not index or slice without a
// check, unwrap, expect, or call panic!/unreachable!/todo!/unimplemented!; it uses get(), matches and
// fallbacks instead. (Arithmetic is left to review: counters saturate, and the lint for it is mostly noise.)
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod config;
pub mod connection;
pub mod duration;
pub mod protocol;
pub mod stats;
pub mod time;
pub mod timers;
pub mod worker;
