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

    pub fn needs_wasm(&self) -> bool {
        self.listeners.iter().any(|l| l.filter.is_some())
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

/// The filter configuration the suite uses unless a case says otherwise (issue 4): close bound 2 s + 3 × 1 s.
pub fn default_filter_config(protocol: &str) -> Value {
    json!({"protocol": protocol, "read_idle_timeout": "2s", "ping_interval": "1s",
           "max_missed_pongs": 3, "write_idle_keepalive": "30s"})
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
}
