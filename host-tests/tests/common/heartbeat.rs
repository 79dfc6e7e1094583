//! The built filter (`make build` puts it at `target/heartbeat.wasm`; `HEARTBEAT_WASM` overrides),
//! compiled once per test binary, and configuration helpers for the scenarios.

use std::path::PathBuf;
use std::sync::OnceLock;

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::{HostOptions, Plugin};

pub fn wasm_path() -> PathBuf {
    match std::env::var_os("HEARTBEAT_WASM") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/heartbeat.wasm"),
    }
}

/// Panics (never skips) when the filter has not been built.
pub fn plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let path = wasm_path();
        assert!(path.exists(), "{} is missing: run `make build` first", path.display());
        Plugin::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The standard test timings: PING after 2 s of upstream silence, then every 1 s, closed after 3 missed.
pub fn config(protocol: &str) -> String {
    format!(
        r#"{{"protocol":"{protocol}","read_idle_timeout":"2s","ping_interval":"1s","max_missed_pongs":3,"write_idle_keepalive":"30s"}}"#
    )
}

pub fn start(protocol: &str) -> TestHost {
    TestHost::with_config(plugin(), &config(protocol))
}

pub fn start_with(configuration: &str, options: HostOptions) -> TestHost {
    TestHost::start(plugin(), HostOptions { plugin_configuration: configuration.into(), ..options })
}

pub const PINGS_INJECTED: &str = "wasmcustom.heartbeat.pings_injected";
pub const KEEPALIVE_PINGS: &str = "wasmcustom.heartbeat.keepalive_pings";
pub const PONGS_STRIPPED: &str = "wasmcustom.heartbeat.pongs_stripped";
pub const DEAD_CLOSED: &str = "wasmcustom.heartbeat.dead_closed";
pub const INJECTIONS_DEFERRED: &str = "wasmcustom.heartbeat.injections_deferred";
pub const CONNECTIONS_MONITORED: &str = "wasmcustom.heartbeat.connections_monitored";
