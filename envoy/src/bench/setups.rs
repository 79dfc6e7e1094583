//! The setups a benchmark compares, one Envoy each (process mode, `--concurrency 1`), side by side in front of
//! the same upstreams: Envoy alone (tcp_proxy), the no-op proxy-wasm filter, the filter's ablation builds, and
//! heartbeat. Every Envoy has the same three listeners (redis, nats, framed) and differs only in its filter.

use crate::config::{ClusterSpec, EnvoyConfig, FilterSpec, ListenerSpec, Options};
use crate::envoy::Envoy;
use crate::mode::Mode;
use crate::paths;
use crate::ports::free_port;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;

/// One Envoy of the comparison. The ablation builds stop after one step of the filter's per-chunk work; the
/// steps are defined in `filter/src/adapter/ablation.rs`, and each variant here adds one step to the one above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// tcp_proxy alone, no wasm filter.
    Alone,
    /// The no-op proxy-wasm filter (`ablate-noop`): every callback returns Continue without reading a byte.
    Noop,
    Read,
    Pause,
    Clock,
    Parse,
    Upstream,
    Connection,
    /// The real filter, `target/heartbeat.wasm`.
    Heartbeat,
}

impl Variant {
    /// The three setups of every workload.
    pub const MAIN: [Variant; 3] = [Variant::Alone, Variant::Noop, Variant::Heartbeat];
    /// Every step of the ablation, in order (each one adds one step to the previous).
    pub const ABLATION: [Variant; 9] = [
        Variant::Alone,
        Variant::Noop,
        Variant::Read,
        Variant::Pause,
        Variant::Clock,
        Variant::Parse,
        Variant::Upstream,
        Variant::Connection,
        Variant::Heartbeat,
    ];

    /// Short name (JSON, file names, the `ablate-<name>` feature).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Alone => "alone",
            Variant::Noop => "noop",
            Variant::Read => "read",
            Variant::Pause => "pause",
            Variant::Clock => "clock",
            Variant::Parse => "parse",
            Variant::Upstream => "upstream",
            Variant::Connection => "connection",
            Variant::Heartbeat => "heartbeat",
        }
    }

    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ABLATION.into_iter().find(|v| v.name() == name)
    }

    /// What the variant adds to the previous one, for the ablation table.
    pub fn step(self) -> &'static str {
        match self {
            Variant::Alone => "Envoy alone: tcp_proxy, no wasm filter",
            Variant::Noop => "a proxy-wasm filter that returns Continue at once (VM calls only)",
            Variant::Read => "read: each chunk copied into the VM, both directions",
            Variant::Pause => "pause + continue on client chunks (keeps the read buffer for a PING)",
            Variant::Clock => "clock read: one host time call per callback",
            Variant::Parse => "client parse: the protocol decoder follows the client's bytes",
            Variant::Upstream => "upstream parse: the decoder follows the upstream's bytes (PONG edits)",
            Variant::Connection => "liveness state: the core's Connection instead of a bare decoder",
            Variant::Heartbeat => "worker: connection map, timer heap, stats, root tick, metrics (= heartbeat)",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Variant::Alone => "Envoy alone",
            Variant::Noop => "no-op wasm",
            Variant::Heartbeat => "heartbeat",
            other => other.name(),
        }
    }

    /// The filter build this variant loads, if any.
    pub fn wasm(self) -> Option<PathBuf> {
        match self {
            Variant::Alone => None,
            Variant::Heartbeat => Some(paths::wasm_path()),
            other => Some(ablation_dir().join(format!("{}.wasm", other.name()))),
        }
    }
}

/// Where `make ablation` puts the ablation builds: `target/ablation/<variant>.wasm`.
pub fn ablation_dir() -> PathBuf {
    paths::repo_root().join("target").join("ablation")
}

/// The protocols every Envoy listens for, one listener each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Redis,
    Nats,
    Framed,
}

impl Proto {
    pub const ALL: [Proto; 3] = [Proto::Redis, Proto::Nats, Proto::Framed];
    pub fn name(self) -> &'static str {
        match self {
            Proto::Redis => "redis",
            Proto::Nats => "nats",
            Proto::Framed => "framed",
        }
    }
}

/// The configuration of every filter in the comparison: monitoring fully on, the close bound 2 s + 3 x 1 s.
pub fn filter_config(proto: Proto) -> Value {
    let mut v = json!({"protocol": proto.name(), "read_idle_timeout": "2s", "ping_interval": "1s",
                       "max_missed_pongs": 3});
    if proto == Proto::Framed {
        // The framed echo server's protocol: u32 big-endian length, PING / PONG as ordinary frames.
        v["framed"] = json!({"header_size": 4, "length_size": 4, "ping": "0000000450494e47",
                             "pong": "00000004504f4e47"});
    }
    v
}

/// The upstreams' ports, shared by every Envoy.
#[derive(Clone, Copy, Debug)]
pub struct Upstreams {
    pub redis: u16,
    pub nats: u16,
    pub framed: u16,
}

impl Upstreams {
    fn port(&self, proto: Proto) -> u16 {
        match proto {
            Proto::Redis => self.redis,
            Proto::Nats => self.nats,
            Proto::Framed => self.framed,
        }
    }
}

/// One running Envoy for one variant.
pub struct Bench {
    pub variant: Variant,
    pub envoy: Envoy,
}

impl Bench {
    pub async fn start(mode: Mode, variant: Variant, ups: &Upstreams) -> anyhow::Result<Bench> {
        let wasm = variant.wasm();
        if let Some(w) = &wasm {
            anyhow::ensure!(
                w.is_file(),
                "{} not found: run `make build` and `make ablation` (or `make bench`)",
                w.display()
            );
        }
        let mut listeners = Vec::new();
        let mut clusters = Vec::new();
        for proto in Proto::ALL {
            listeners.push(ListenerSpec {
                name: proto.name().into(),
                port: free_port()?,
                filter: wasm.as_ref().map(|_| FilterSpec::v8(filter_config(proto))),
                cluster: proto.name().into(),
            });
            clusters.push(ClusterSpec {
                name: proto.name().into(),
                upstream_port: ups.port(proto),
                tight_keepalive: false,
                user_timeout: None,
            });
        }
        let cfg = EnvoyConfig { admin_port: free_port()?, listeners, clusters };
        let opts = Options { concurrency: Some(1), wasm, ..Options::default() };
        let envoy = Envoy::start_with(mode, &cfg, &opts).await?;
        Ok(Bench { variant, envoy })
    }

    pub fn addr(&self, proto: Proto) -> SocketAddr {
        self.envoy.listener(proto.name())
    }
}
