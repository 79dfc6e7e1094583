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
        clusters: vec![ClusterSpec { name: "up".into(), upstream_port: upstream, tight_keepalive: false }],
    };
    Envoy::start(mode, &cfg).await
}

/// v8 must load and run the filter. The Envoy 1.40 release binary registers wamr and wasmtime by name but
/// is built with v8 only: it refuses them with "compiled without support". Each of those two must either
/// run the filter like v8 or be refused exactly so; the test prints which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_the_binary_carries_runs_the_filter() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let nats = Upstream::nats(mode).await?;
    let runs = Runtime::all().map(|runtime| {
        let port = nats.port;
        async move {
            let envoy =
                match one_listener(mode, port, FilterSpec { config: default_filter_config("nats"), runtime }).await {
                    Ok(e) => e,
                    Err(e) => return anyhow::Ok((runtime, Err(format!("{e:#}")))),
                };
            let mut probe = Probe::connect(envoy.listener("hb"), Proto::Nats).await.map_err(|e| envoy.explain(e))?;
            // 4.5 s idle with read_idle 2 s: PINGs injected and answered, nothing leaks to the client.
            let o = probe.watch(Duration::from_millis(4500), None).await;
            let stats = envoy.filter_stats().await?;
            anyhow::Ok((runtime, Ok((o, stats))))
        }
    });
    let mut loaded = Vec::new();
    for r in futures::future::join_all(runs).await {
        let (runtime, result) = r?;
        let (o, stats) = match result {
            Ok(v) => v,
            Err(e) => {
                assert!(runtime != Runtime::V8, "v8 must run the filter: {e}");
                assert!(
                    e.contains("Envoy was compiled without support for it"),
                    "{}: refused for another reason: {e}",
                    runtime.envoy_name()
                );
                eprintln!(
                    "{}: not compiled into this Envoy binary (refused at start-up, as expected)",
                    runtime.envoy_name()
                );
                continue;
            }
        };
        loaded.push(runtime.envoy_name());
        eprintln!("{}: {:?}, stats {stats:?}", runtime.envoy_name(), o);
        assert_eq!(o.closed_after, None, "{}: connection closed: {}", runtime.envoy_name(), o.how);
        assert_eq!(o.received, 0, "{}: the client received bytes while idle", runtime.envoy_name());
        assert!(
            metrics::get(&stats, metrics::PINGS_INJECTED)? >= 1,
            "{}: no PING injected: {stats:?}",
            runtime.envoy_name()
        );
        assert!(
            metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 1,
            "{}: no PONG received: {stats:?}",
            runtime.envoy_name()
        );
    }
    eprintln!("runtimes that ran the filter: {loaded:?}");
    assert!(loaded.contains(&"envoy.wasm.runtime.v8"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_refuses_a_bad_configuration_and_the_log_names_the_field() -> anyhow::Result<()> {
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
