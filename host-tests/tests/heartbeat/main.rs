//! Scenarios for the heartbeat filter (`target/heartbeat.wasm`) on the simulated Envoy: one test
//! binary, so the module is compiled once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod config;
mod false_closes;
mod framed;
mod framed_properties;
mod lifecycle;
mod mysql;
mod nats;
mod postgres;
mod properties;
mod redis;
mod redis_properties;
mod support;
