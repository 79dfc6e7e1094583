//! Envoy with several workers (`--concurrency 2` and `4`): each worker has its own VM and its own root tick,
//! and must drive its own connections: 40 idle NATS connections spread over the workers are all pinged
//! (nothing leaks to any client), all closed within the bound when nats-server hangs, and the counters
//! summed over the workers balance.

use super::common;
use super::ops_common::{lines_by_thread, nats_exchange, one_listener, open_nats, per_worker, threads};

use heartbeat_envoy_tests::config::{default_filter_config, Options};
use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::setup::Timing;
use heartbeat_envoy_tests::{Envoy, Upstream};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 40;

#[test]
fn two_workers_each_tick_their_own_connections() -> anyhow::Result<()> {
    common::run(every_worker_ticks_its_own_connections(2))
}

#[test]
fn four_workers_each_tick_their_own_connections() -> anyhow::Result<()> {
    common::run(every_worker_ticks_its_own_connections(4))
}

async fn every_worker_ticks_its_own_connections(workers: u32) -> anyhow::Result<()> {
    let mode = common::mode().await;
    let t = Timing::DEFAULT;
    let nats = Upstream::nats(mode).await?;
    let cfg = one_listener(nats.port, Some(default_filter_config("nats")))?;
    let opts = Options { concurrency: Some(workers), ..Options::default() };
    let envoy = Envoy::start_with(mode, &cfg, &opts).await?;
    let addr = envoy.listener("hb");
    let case = async {
        let mut probes = open_nats(addr, CONNECTIONS).await?;

        // Idle past read_idle, with two intervals more: every connection is pinged at least once (any upstream
        // byte, the server's own PING included, restarts its read-idle timer).
        let idle = t.read_idle + t.ping_interval * 2 + Duration::from_millis(800);
        let outcomes = futures::future::join_all(probes.iter_mut().map(|p| p.watch(idle, None))).await;
        for (i, o) in outcomes.iter().enumerate() {
            anyhow::ensure!(o.closed_after.is_none(), "connection {i} closed while healthy: {}", o.how);
            anyhow::ensure!(o.received == 0, "connection {i} received {} bytes while idle: a PONG leaked", o.received);
        }
        // Every stream is still exact after the PINGs: a byte-exact exchange on each connection.
        for (i, p) in probes.iter_mut().enumerate() {
            nats_exchange(p, &format!("w.c{i}"), &format!("hello-{i}")).await?;
        }
        let stats = common::wait_stats(&envoy, Duration::from_secs(2), |s| {
            s.get(metrics::MONITORED) == Some(&(CONNECTIONS as i64))
        })
        .await?;
        eprintln!("{workers} workers, {CONNECTIONS} idle connections after {idle:?}: {stats:?}");
        anyhow::ensure!(
            metrics::get(&stats, metrics::MONITORED)? == CONNECTIONS as i64,
            "not all monitored: {stats:?}"
        );
        let injected = metrics::get(&stats, metrics::PINGS_INJECTED)?;
        let stripped = metrics::get(&stats, metrics::PONGS_STRIPPED)?;
        anyhow::ensure!(
            injected >= CONNECTIONS as i64 && stripped >= CONNECTIONS as i64,
            "{CONNECTIONS} connections idle for {idle:?} must get a PING each: {stats:?}"
        );

        // The connections really are spread over every worker (Envoy's own per-worker listener counters).
        let all = envoy.stats().await?;
        let per = per_worker(&all, addr.port(), "downstream_cx_active");
        eprintln!("active connections per worker: {per:?}");
        anyhow::ensure!(per.len() == workers as usize, "expected {workers} workers in /stats: {per:?}");
        anyhow::ensure!(per.values().all(|&n| n >= 1), "a worker has no connection: {per:?}");
        anyhow::ensure!(per.values().sum::<i64>() == CONNECTIONS as i64, "active connections {per:?}");

        // nats-server hangs: every connection is closed within the bound, by the worker that owns it.
        let frozen_at = Instant::now();
        nats.freeze().await?;
        let limit = t.bound() + t.slack + Duration::from_secs(2);
        let outcomes = futures::future::join_all(probes.iter_mut().map(|p| p.watch(limit, None))).await;
        nats.thaw().await?;
        let mut closes: Vec<f64> = Vec::new();
        for (i, o) in outcomes.iter().enumerate() {
            let Some(after) = o.closed_after else {
                anyhow::bail!("connection {i} still open {limit:?} after nats-server hung")
            };
            anyhow::ensure!(o.received == 0, "connection {i} received {} bytes after the hang", o.received);
            closes.push(after.as_secs_f64());
        }
        closes.sort_by(f64::total_cmp);
        let (first, last) = (closes[0], closes[closes.len() - 1]);
        eprintln!(
            "{workers} workers: {CONNECTIONS} connections closed {first:.2} s to {last:.2} s after the hang (bound {:?}); \
             watched for {:.1?}",
            t.bound(),
            frozen_at.elapsed()
        );
        // The last upstream byte (a stripped PONG) came at most read_idle before the hang: the bound counts from it.
        anyhow::ensure!(
            first >= (t.bound() - t.read_idle).as_secs_f64() - 0.5,
            "a connection closed {first:.2} s after the hang: before the filter could call it dead"
        );
        anyhow::ensure!(last <= (t.bound() + t.slack).as_secs_f64(), "a connection closed after {last:.2} s");

        let stats = common::wait_stats(&envoy, Duration::from_secs(3), |s| {
            // The unanswered PINGs of a closed connection are counted at its close callback, which comes after the
            // tick that closed it: published a tick later.
            s.get(metrics::MONITORED) == Some(&0) && metrics::check_consistent(s).is_ok()
        })
        .await?;
        eprintln!("{workers} workers, after the hang: {stats:?}");
        anyhow::ensure!(metrics::get(&stats, metrics::MONITORED)? == 0, "connections still monitored: {stats:?}");
        anyhow::ensure!(metrics::get(&stats, metrics::DEAD_CLOSED)? == CONNECTIONS as i64, "dead_closed: {stats:?}");
        metrics::check_consistent(&stats)?;

        // The close lines come from every worker thread, as many from each as that worker had connections.
        let log = envoy.log();
        let closers = lines_by_thread(&log, "heartbeat: closing connection");
        let configured = lines_by_thread(&log, "heartbeat: protocol nats");
        eprintln!("close lines per thread: {closers:?}; configure lines per thread: {configured:?}");
        anyhow::ensure!(closers.len() == workers as usize, "close lines from {} threads: {closers:?}", closers.len());
        anyhow::ensure!(
            threads(&closers).is_subset(&threads(&configured)),
            "a close line from a thread without a configured VM: {closers:?} vs {configured:?}"
        );
        let mut from_log: Vec<i64> = closers.values().map(|&n| n as i64).collect();
        let mut from_stats: Vec<i64> = per.values().copied().collect();
        from_log.sort();
        from_stats.sort();
        anyhow::ensure!(
            from_log == from_stats,
            "closes per worker thread {from_log:?} differ from connections per worker {from_stats:?}"
        );
        anyhow::Ok(())
    };
    case.await.map_err(|e| envoy.explain(e))
}
