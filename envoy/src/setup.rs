//! The harness's entry point: one Envoy with a listener per [`Setup`] (Envoy alone, with tight cluster TCP
//! keepalive, with the heartbeat filter, with the filter and `TCP_USER_TIMEOUT`) in front of one upstream, and
//! the filter configuration with the standard test timings ([`Timing::DEFAULT`], [`filter_config`]).

use crate::config::{ClusterSpec, EnvoyConfig, FilterSpec, ListenerSpec};
use crate::envoy::Envoy;
use crate::mode::Mode;
use crate::ports::free_port;
use heartbeat::core::config::Timings;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Alone,
    TightKeepalive,
    Filter,
    /// The filter, with `TCP_USER_TIMEOUT` ([`USER_TIMEOUT`]) on the cluster's upstream sockets: the kernel
    /// aborts a connection whose data or zero-window probes stay unacknowledged that long.
    FilterUserTimeout,
}

/// The `TCP_USER_TIMEOUT` of the `FilterUserTimeout` setup.
pub const USER_TIMEOUT: Duration = Duration::from_secs(3);

impl Setup {
    pub fn label(self) -> &'static str {
        match self {
            Setup::Alone => "envoy alone",
            Setup::TightKeepalive => "envoy + keepalive 1/1/3",
            Setup::Filter => "envoy + heartbeat",
            Setup::FilterUserTimeout => "heartbeat + user timeout 3s",
        }
    }
    /// The name of the listener this setup gets in `envoy_for`.
    pub fn listener(self) -> &'static str {
        match self {
            Setup::Alone => "alone",
            Setup::TightKeepalive => "keepalive",
            Setup::Filter => "heartbeat",
            Setup::FilterUserTimeout => "heartbeat_user_timeout",
        }
    }
    fn cluster(self) -> &'static str {
        match self {
            Setup::TightKeepalive => "keepalive",
            Setup::FilterUserTimeout => "user_timeout",
            Setup::Alone | Setup::Filter => "plain",
        }
    }
    pub fn has_filter(self) -> bool {
        matches!(self, Setup::Filter | Setup::FilterUserTimeout)
    }
    pub const ALL: [Setup; 4] = [Setup::Alone, Setup::TightKeepalive, Setup::Filter, Setup::FilterUserTimeout];
}

/// Timings of the filter configuration the harness uses (the filter's example timings,
/// `heartbeat::core::config::Timings::EXAMPLE`): close bound = read_idle + max_missed × interval.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub read_idle: Duration,
    pub ping_interval: Duration,
    pub max_missed: u32,
    /// Allowance for the filter's tick and a busy 2-core machine.
    pub slack: Duration,
}

impl Timing {
    pub const DEFAULT: Timing = Timing {
        read_idle: Timings::EXAMPLE.read_idle_timeout,
        ping_interval: Timings::EXAMPLE.ping_interval,
        max_missed: Timings::EXAMPLE.max_missed_pongs,
        slack: Duration::from_millis(1500),
    };
    pub fn bound(&self) -> Duration {
        self.read_idle + self.ping_interval * self.max_missed
    }
}

/// The filter configuration of [`Timing::DEFAULT`] for `protocol`, with `write_idle_keepalive` (e.g. "30s"); the
/// framed protocol gets [`framed_section`].
pub fn filter_config(protocol: &str, write_idle_keepalive: &str) -> Value {
    let mut v = Timings::EXAMPLE.config_json(protocol);
    v["write_idle_keepalive"] = write_idle_keepalive.into();
    if protocol == "framed" {
        v["framed"] = framed_section();
    }
    v
}

/// The plain u32 big-endian length-prefixed protocol of the framed echo server.
pub fn framed_section() -> Value {
    json!({"header_size": 4, "length_size": 4, "ping": "0000000450494e47", "pong": "00000004504f4e47"})
}

/// One Envoy with one listener per setup, all in front of `upstream_port`.
pub async fn envoy_for(mode: Mode, upstream_port: u16, setups: &[Setup], filter: &Value) -> anyhow::Result<Envoy> {
    let mut listeners = Vec::new();
    for s in setups {
        listeners.push(ListenerSpec {
            name: s.listener().into(),
            port: free_port()?,
            filter: s.has_filter().then(|| FilterSpec::v8(filter.clone())),
            cluster: s.cluster().into(),
        });
    }
    let cfg = EnvoyConfig {
        admin_port: free_port()?,
        listeners,
        clusters: vec![
            ClusterSpec { name: "plain".into(), upstream_port, tight_keepalive: false, user_timeout: None },
            ClusterSpec { name: "keepalive".into(), upstream_port, tight_keepalive: true, user_timeout: None },
            ClusterSpec {
                name: "user_timeout".into(),
                upstream_port,
                tight_keepalive: false,
                user_timeout: Some(USER_TIMEOUT),
            },
        ],
    };
    Envoy::start(mode, &cfg).await
}
