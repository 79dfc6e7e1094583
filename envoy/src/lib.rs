//! Harness for running the heartbeat filter inside real Envoy 1.40 against real servers, with real faults.
//!
//! Everything talks over 127.0.0.1: containers use the host network (so Docker and process mode behave the
//! same and no traffic leaves loopback), and the blackhole fault drops the upstream port's packets on `lo`.
//! Mode: `HEARTBEAT_ENVOY_MODE=container|process` (default container; `ENVOY_BIN` set implies process).

pub mod admin;
pub mod bench;
pub mod blackhole;
pub mod config;
pub mod envoy;
pub mod faults;
pub mod framed_echo;
pub mod idle_bench;
pub mod matrix;
pub mod metrics;
pub mod mode;
pub mod paths;
pub mod ports;
pub mod probe;
pub mod process;
pub mod resp;
pub mod setup;
pub mod soak;
pub mod upstream;

pub use config::{ClusterSpec, EnvoyConfig, FilterSpec, ListenerSpec, Runtime};
pub use envoy::Envoy;
pub use mode::Mode;
pub use setup::{envoy_for, filter_config, framed_section, Setup, Timing, USER_TIMEOUT};
pub use upstream::Upstream;
