//! How the simulated Envoy is set up (workers, plugin configuration, buffer limits) and how
//! one connection is opened.

use std::time::Duration;

use crate::abi::LogLevel;

/// Settings for [`crate::Host::start`]. Defaults mirror an Envoy 1.40 listener with the wasm filter
/// in front of `tcp_proxy` to cluster `up`.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Worker threads: one VM and root context each (`--concurrency`).
    pub workers: usize,
    /// The plugin `configuration` (what `proxy_on_configure` reads).
    pub plugin_configuration: Vec<u8>,
    /// The VM `configuration` (what `proxy_on_vm_start` reads).
    pub vm_configuration: Vec<u8>,
    pub plugin_name: String,
    pub root_id: String,
    pub vm_id: String,
    /// Lines below this level are not recorded; also what `proxy_get_log_level` answers.
    pub log_level: LogLevel,
    /// Envoy's per-connection buffer limit (`per_connection_buffer_limit_bytes`, default 1 MiB):
    /// tcp_proxy stops reading the client when the upstream write buffer holds more than this,
    /// and resumes below half of it.
    pub upstream_buffer_limit: usize,
    /// Fuel (about one unit per wasm instruction) one callback may burn before it traps:
    /// an endless loop in the filter fails the test instead of hanging it.
    pub fuel_per_call: u64,
    /// Wall-clock time the simulated clock starts at (nanoseconds since the Unix epoch), as
    /// `proxy_get_current_time_nanoseconds` reports it.
    pub start_unix_nanos: u64,
    /// `xds.cluster_name` of every connection.
    pub cluster_name: String,
    /// The listener address (`destination.address`).
    pub listener_address: String,
    /// Default `upstream.address`.
    pub upstream_address: String,
    /// Record every callback per connection ([`crate::Host::callbacks`]). Off for benchmarks.
    pub record_callbacks: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            plugin_configuration: Vec::new(),
            vm_configuration: Vec::new(),
            plugin_name: "heartbeat".into(),
            root_id: "heartbeat".into(),
            vm_id: "heartbeat".into(),
            log_level: LogLevel::Trace,
            upstream_buffer_limit: 1024 * 1024,
            fuel_per_call: 5_000_000_000,
            // 2026-01-01T00:00:00Z: a fixed start keeps logged timestamps reproducible.
            start_unix_nanos: 1_767_225_600_000_000_000,
            cluster_name: "up".into(),
            listener_address: "127.0.0.1:10000".into(),
            upstream_address: "127.0.0.1:20000".into(),
            record_callbacks: true,
        }
    }
}

impl HostOptions {
    /// Default options with this plugin configuration.
    pub fn with_configuration(configuration: impl Into<Vec<u8>>) -> Self {
        Self { plugin_configuration: configuration.into(), ..Self::default() }
    }

    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    pub fn upstream_buffer_limit(mut self, bytes: usize) -> Self {
        self.upstream_buffer_limit = bytes;
        self
    }

    pub fn record_callbacks(mut self, on: bool) -> Self {
        self.record_callbacks = on;
        self
    }

    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }
}

/// How one client connection is opened ([`crate::Host::connect_with`]).
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Time until the upstream connection is established; the client's bytes wait (tcp_proxy
    /// read-disables the client until then). Zero: established before `connect` returns.
    pub upstream_connect_delay: Duration,
    /// The upstream never connects: after the delay tcp_proxy gives up and closes the client.
    pub upstream_connect_fails: bool,
    /// Pin the connection to a worker; default round-robin.
    pub worker: Option<usize>,
    /// `source.address`; default `127.0.0.1:<40000 + id>`.
    pub source_address: Option<String>,
    /// `upstream.address`; default [`HostOptions::upstream_address`].
    pub upstream_address: Option<String>,
}

impl ConnectOptions {
    pub fn delay(delay: Duration) -> Self {
        Self { upstream_connect_delay: delay, ..Self::default() }
    }

    pub fn on_worker(worker: usize) -> Self {
        Self { worker: Some(worker), ..Self::default() }
    }
}
