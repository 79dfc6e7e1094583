//! A native proxy-wasm host for **network (L4) filters**, built on wasmtime, that plays Envoy
//! 1.40 with a wasm filter in front of `tcp_proxy`: deterministic, fast, no Envoy needed.
//!
//! What it reproduces (measured on Envoy 1.40, see `docs/envoy-l4-wasm.md`):
//! - ABI 0.2.1 host calls with Envoy's statuses: data buffers exist only in their callback, or
//!   for the read buffer after `on_downstream_data` returned Pause; set-buffer prepend / replace /
//!   append rules; continue and close deferred until the VM call returns; no continue upstream.
//! - tcp_proxy: the client is read-disabled until the upstream connects and while the upstream is
//!   above its buffer limit; everything in the read buffer moves upstream on each pass.
//! - one VM and root context per worker, root ticks at their period, stats shared by name.
//! - a simulated clock ([`Host::advance`]) and a connection model ([`Host::connect`],
//!   [`Host::client_send`], [`Host::upstream_send`], FIN, reset, blocking) with observations.
//!
//! ```no_run
//! use heartbeat_host_tests::{Host, HostOptions, Plugin};
//! use std::time::Duration;
//! let plugin = Plugin::from_file("target/heartbeat.wasm")?;
//! let mut host = Host::start(&plugin, HostOptions::with_configuration(r#"{"protocol":"nats"}"#))?;
//! let conn = host.connect()?;
//! host.client_send(conn, b"PING\r\n")?;
//! host.advance(Duration::from_secs(3))?;
//! assert_eq!(host.client_received(conn)?, b"");
//! # Ok::<(), heartbeat_host_tests::HostError>(())
//! ```

pub mod abi;
mod conn;
mod error;
mod host;
mod hostcalls;
mod observe;
mod options;
mod plugin;
pub mod probe;
pub mod script;
mod shared;
pub mod testkit;
mod vm;

pub use abi::{LogLevel, PeerType, Status};
pub use error::{HostError, Result};
pub use host::Host;
pub use hostcalls::metrics::stat_name;
pub use observe::{CallbackEvent, Chunk, CloseCause, Closed, ConnId, Fault, LogLine, MetricValue, SimTime};
pub use options::{ConnectOptions, HostOptions};
pub use plugin::Plugin;
