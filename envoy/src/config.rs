//! Renders an Envoy bootstrap: listeners → [optional heartbeat wasm filter] → tcp_proxy → clusters.
//! Rendered as JSON (a YAML subset Envoy reads from a `.yaml` file), so the filter's JSON configuration
//! needs no hand escaping.

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    V8,
    Wamr,
    Wasmtime,
}

impl Runtime {
    pub fn envoy_name(self) -> &'static str {
        match self {
            Runtime::V8 => "envoy.wasm.runtime.v8",
            Runtime::Wamr => "envoy.wasm.runtime.wamr",
            Runtime::Wasmtime => "envoy.wasm.runtime.wasmtime",
        }
    }
    pub fn all() -> [Runtime; 3] {
        [Runtime::V8, Runtime::Wamr, Runtime::Wasmtime]
    }
}

/// The heartbeat filter on a listener: its JSON configuration and the wasm runtime that runs it.
#[derive(Clone, Debug)]
pub struct FilterSpec {
    pub config: Value,
    pub runtime: Runtime,
}

impl FilterSpec {
    pub fn v8(config: Value) -> FilterSpec {
        FilterSpec { config, runtime: Runtime::V8 }
    }
}

#[derive(Clone, Debug)]
pub struct ListenerSpec {
    pub name: String,
    pub port: u16,
    pub filter: Option<FilterSpec>,
    pub cluster: String,
}

#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub name: String,
    pub upstream_port: u16,
    /// Cluster TCP keepalive 1 s idle / 1 s interval / 3 probes: the "tight keepalive" baseline.
    pub tight_keepalive: bool,
    /// `TCP_USER_TIMEOUT` on the upstream sockets (`upstream_bind_config.socket_options`): the kernel aborts a
    /// connection whose data or zero-window probes stay unacknowledged this long.
    pub user_timeout: Option<std::time::Duration>,
}

#[derive(Clone, Debug)]
pub struct EnvoyConfig {
    pub admin_port: u16,
    pub listeners: Vec<ListenerSpec>,
    pub clusters: Vec<ClusterSpec>,
}

/// Envoy's `failure_policy` for the Wasm plugin (`envoy.extensions.wasm.v3.PluginConfig`, Envoy 1.40): what
/// happens to a worker's connections after its VM traps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    FailClosed,
    FailOpen,
    FailReload,
    /// The older boolean `fail_open: true` (no `failure_policy`): Envoy 1.40 treats it differently from
    /// `FAIL_OPEN` (see tests/suite/failure_policy.rs).
    LegacyFailOpen,
}

impl FailurePolicy {
    /// The plugin configuration's field and value for this policy.
    pub fn envoy_field(self) -> (&'static str, Value) {
        match self {
            FailurePolicy::FailClosed => ("failure_policy", json!("FAIL_CLOSED")),
            FailurePolicy::FailOpen => ("failure_policy", json!("FAIL_OPEN")),
            FailurePolicy::FailReload => ("failure_policy", json!("FAIL_RELOAD")),
            FailurePolicy::LegacyFailOpen => ("fail_open", json!(true)),
        }
    }
}

/// Per-case options of one Envoy; `Default` is what every case had before they existed: one worker,
/// drain time 1 s, Envoy's own failure policy, `target/heartbeat.wasm`, listeners in `static_resources`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--concurrency` (worker threads, each with its own VM and tick); `None`: 1.
    pub concurrency: Option<u32>,
    /// `--drain-time-s`: how long the old filter chains' connections live after a listener update; `None`: 1.
    pub drain_time_s: Option<u32>,
    /// `failure_policy` of every heartbeat filter; `None`: not set (Envoy's default, FAIL_CLOSED).
    pub failure_policy: Option<FailurePolicy>,
    /// Another build of the filter (e.g. `target/heartbeat-trap.wasm`); `None`: `paths::require_wasm()`.
    pub wasm: Option<std::path::PathBuf>,
    /// Listeners from a watched file (`dynamic_resources.lds_config.path_config_source`) instead of
    /// `static_resources`, so that a case can change them while Envoy runs (`Envoy::update_listeners`).
    pub lds: bool,
}

impl Options {
    pub fn concurrency(&self) -> u32 {
        self.concurrency.unwrap_or(1)
    }
    pub fn drain_time_s(&self) -> u32 {
        self.drain_time_s.unwrap_or(1)
    }
}

impl EnvoyConfig {
    /// The bootstrap, with `wasm_path` as Envoy sees it (inside the container or on the host).
    pub fn render(&self, wasm_path: &str) -> Value {
        json!({
            "admin": {"address": socket(self.admin_port)},
            "static_resources": {
                "listeners": self.listeners.iter().map(|l| listener(l, wasm_path)).collect::<Vec<_>>(),
                "clusters": self.clusters.iter().map(cluster).collect::<Vec<_>>(),
            }
        })
    }

    /// The bootstrap with per-case options. With `opts.lds` the listeners are left out: Envoy reads them from
    /// `lds_file` (as Envoy sees it), rendered by `render_lds`, and reloads them when a file is moved into
    /// `lds_dir` (`watched_directory`: Envoy reacts to a rename, never to a write in place).
    pub fn render_with(&self, wasm_path: &str, opts: &Options, lds_dir: &str, lds_file: &str) -> Value {
        let mut v = self.render(wasm_path);
        if let Some(policy) = opts.failure_policy {
            for l in v["static_resources"]["listeners"].as_array_mut().into_iter().flatten() {
                set_failure_policy(l, policy);
            }
        }
        if opts.lds {
            if let Some(statics) = v["static_resources"].as_object_mut() {
                statics.remove("listeners");
            }
            // Envoy refuses xDS without a node id and cluster, even from a file.
            v["node"] = json!({"id": "heartbeat-suite", "cluster": "heartbeat-suite"});
            v["dynamic_resources"] = json!({
                "lds_config": {
                    "resource_api_version": "V3",
                    "path_config_source": {"path": lds_file, "watched_directory": {"path": lds_dir}},
                }
            });
        }
        v
    }

    /// The listeners as a file-based LDS `DiscoveryResponse`; `listeners` replaces `self.listeners` (a case
    /// changes them while Envoy runs).
    pub fn render_lds(&self, listeners: &[ListenerSpec], wasm_path: &str, opts: &Options, version: u64) -> Value {
        let resources: Vec<Value> = listeners
            .iter()
            .map(|l| {
                let mut v = listener(l, wasm_path);
                if let Some(policy) = opts.failure_policy {
                    set_failure_policy(&mut v, policy);
                }
                v["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
                v
            })
            .collect();
        json!({"version_info": version.to_string(), "resources": resources})
    }

    pub fn needs_wasm(&self) -> bool {
        self.listeners.iter().any(|l| l.filter.is_some())
    }
}

fn set_failure_policy(listener: &mut Value, policy: FailurePolicy) {
    for chain in listener["filter_chains"].as_array_mut().into_iter().flatten() {
        for f in chain["filters"].as_array_mut().into_iter().flatten() {
            if f["name"] == "envoy.filters.network.wasm" {
                let (field, value) = policy.envoy_field();
                f["typed_config"]["config"][field] = value;
            }
        }
    }
}

fn socket(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

fn listener(l: &ListenerSpec, wasm_path: &str) -> Value {
    let mut filters = Vec::new();
    if let Some(f) = &l.filter {
        filters.push(json!({
            "name": "envoy.filters.network.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                "config": {
                    "name": "heartbeat",
                    "root_id": "heartbeat",
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": f.config.to_string(),
                    },
                    "vm_config": {
                        "runtime": f.runtime.envoy_name(),
                        "code": {"local": {"filename": wasm_path}},
                    }
                }
            }
        }));
    }
    filters.push(json!({
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": l.name,
            "cluster": l.cluster,
        }
    }));
    json!({"name": l.name, "address": socket(l.port), "filter_chains": [{"filters": filters}]})
}

fn cluster(c: &ClusterSpec) -> Value {
    let mut v = json!({
        "name": c.name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": c.name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(c.upstream_port)}}]}]
        }
    });
    if c.tight_keepalive {
        v["upstream_connection_options"] =
            json!({"tcp_keepalive": {"keepalive_time": 1, "keepalive_interval": 1, "keepalive_probes": 3}});
    }
    if let Some(timeout) = c.user_timeout {
        v["upstream_bind_config"] = user_timeout_bind_config(timeout);
    }
    v
}

/// `TCP_USER_TIMEOUT` (IPPROTO_TCP = 6, option 18, milliseconds) on every upstream socket of a cluster, set
/// before connect. The source address is the wildcard: the kernel picks the address and port as without it.
pub fn user_timeout_bind_config(timeout: std::time::Duration) -> Value {
    json!({
        "source_address": {"address": "0.0.0.0", "port_value": 0},
        "socket_options": [{"description": "TCP_USER_TIMEOUT", "level": 6, "name": 18,
                            "int_value": timeout.as_millis(), "state": "STATE_PREBIND"}]
    })
}

/// The filter configuration the suite uses unless a case says otherwise: the filter's example timings
/// (close bound 2 s + 3 × 1 s) and a write-idle keepalive of 30 s.
pub fn default_filter_config(protocol: &str) -> Value {
    let mut v = heartbeat::core::config::Timings::EXAMPLE.config_json(protocol);
    v["write_idle_keepalive"] = "30s".into();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_filter_before_tcp_proxy_and_keepalive_only_when_asked() {
        let cfg = EnvoyConfig {
            admin_port: 9901,
            listeners: vec![
                ListenerSpec {
                    name: "hb".into(),
                    port: 10000,
                    filter: Some(FilterSpec::v8(default_filter_config("nats"))),
                    cluster: "ka".into(),
                },
                ListenerSpec { name: "plain".into(), port: 10001, filter: None, cluster: "up".into() },
            ],
            clusters: vec![
                ClusterSpec { name: "up".into(), upstream_port: 4222, tight_keepalive: false, user_timeout: None },
                ClusterSpec { name: "ka".into(), upstream_port: 4222, tight_keepalive: true, user_timeout: None },
            ],
        };
        let v = cfg.render("/w/heartbeat.wasm");
        let l0 = &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"];
        assert_eq!(l0[0]["name"], "envoy.filters.network.wasm");
        assert_eq!(l0[1]["name"], "envoy.filters.network.tcp_proxy");
        let conf: Value =
            serde_json::from_str(l0[0]["typed_config"]["config"]["configuration"]["value"].as_str().unwrap()).unwrap();
        assert_eq!(conf["protocol"], "nats");
        let l1 = &v["static_resources"]["listeners"][1]["filter_chains"][0]["filters"];
        assert_eq!(l1.as_array().unwrap().len(), 1);
        assert!(v["static_resources"]["clusters"][0].get("upstream_connection_options").is_none());
        assert_eq!(
            v["static_resources"]["clusters"][1]["upstream_connection_options"]["tcp_keepalive"]["keepalive_probes"],
            3
        );
        assert!(cfg.needs_wasm());
    }

    #[test]
    fn options_set_the_failure_policy_and_move_listeners_to_a_watched_file() {
        let cfg = EnvoyConfig {
            admin_port: 9901,
            listeners: vec![ListenerSpec {
                name: "hb".into(),
                port: 10000,
                filter: Some(FilterSpec::v8(default_filter_config("nats"))),
                cluster: "up".into(),
            }],
            clusters: vec![ClusterSpec {
                name: "up".into(),
                upstream_port: 4222,
                tight_keepalive: false,
                user_timeout: None,
            }],
        };
        let opts = Options { failure_policy: Some(FailurePolicy::FailReload), ..Options::default() };
        let v = cfg.render_with("/w.wasm", &opts, "/d", "/d/lds.yaml");
        let wasm = &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
        assert_eq!(wasm["typed_config"]["config"]["failure_policy"], "FAIL_RELOAD");
        assert!(v.get("dynamic_resources").is_none());

        let opts = Options { lds: true, ..Options::default() };
        let v = cfg.render_with("/w.wasm", &opts, "/d", "/d/lds.yaml");
        assert!(v["static_resources"].get("listeners").is_none());
        assert_eq!(v["static_resources"]["clusters"][0]["name"], "up");
        let src = &v["dynamic_resources"]["lds_config"]["path_config_source"];
        assert_eq!(src["path"], "/d/lds.yaml");
        assert_eq!(src["watched_directory"]["path"], "/d");
        let lds = cfg.render_lds(&cfg.listeners, "/w.wasm", &opts, 7);
        assert_eq!(lds["version_info"], "7");
        assert_eq!(lds["resources"][0]["@type"], "type.googleapis.com/envoy.config.listener.v3.Listener");
        assert_eq!(lds["resources"][0]["name"], "hb");
        assert_eq!(Options::default().concurrency(), 1);
        assert_eq!(Options::default().drain_time_s(), 1);
    }
}
