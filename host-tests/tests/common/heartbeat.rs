//! The built filter (`make build` puts it at `target/heartbeat.wasm`; `HEARTBEAT_WASM` overrides),
//! compiled once per test binary, and configuration helpers for the scenarios.

use std::path::PathBuf;
use std::sync::OnceLock;

use heartbeat::core::config::Timings;
use heartbeat::core::stats::Stat;
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

/// The standard test configuration: the filter's example timings (PING after 2 s of upstream silence, then
/// every 1 s, closed after 3 missed) and a write-idle keepalive of 30 s.
pub fn config(protocol: &str) -> String {
    let mut v = Timings::EXAMPLE.config_json(protocol);
    v["write_idle_keepalive"] = "30s".into();
    v.to_string()
}

pub fn start(protocol: &str) -> TestHost {
    TestHost::with_config(plugin(), &config(protocol))
}

pub fn start_with(configuration: &str, options: HostOptions) -> TestHost {
    TestHost::start(plugin(), HostOptions { plugin_configuration: configuration.into(), ..options })
}

// The filter's metric names (`Host::metric_value` finds `wasmcustom.<name>` by the name the filter defined).
pub const PINGS_INJECTED: &str = Stat::PingsInjected.name();
pub const KEEPALIVE_PINGS: &str = Stat::KeepalivePings.name();
pub const PONGS_STRIPPED: &str = Stat::PongsStripped.name();
pub const DEAD_CLOSED: &str = Stat::DeadClosed.name();
pub const INJECTIONS_DEFERRED: &str = Stat::InjectionsDeferred.name();
pub const CONNECTIONS_MONITORED: &str = Stat::ConnectionsMonitored.name();
