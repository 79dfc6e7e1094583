//! Changing the filter's configuration while Envoy runs: listeners from a watched file (file-based LDS), a new
//! file renamed over the old one. A valid change applies to new connections; connections opened before keep
//! the configuration they were opened with (their filter chain's VM root keeps ticking them) until Envoy
//! drains the old filter chain after `--drain-time-s` and closes them; an invalid change is rejected and the
//! old listener keeps serving, new connections included, with the old configuration.

use super::common;
use super::ops_common::{lines_by_thread, nats_exchange, one_listener, open_nats, stat, wait_envoy_stats};

use heartbeat_envoy_tests::config::{default_filter_config, EnvoyConfig, FilterSpec, ListenerSpec, Options};
use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::probe::Probe;
use heartbeat_envoy_tests::setup::Timing;
use heartbeat_envoy_tests::{Envoy, Upstream};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const UPDATE_SUCCESS: &str = "listener_manager.lds.update_success";
const UPDATE_REJECTED: &str = "listener_manager.lds.update_rejected";
const IN_PLACE: &str = "listener_manager.listener_in_place_updated";

/// The configuration after the change: PING after 1 s, every 500 ms, close after 2 missed (bound 2 s).
fn config_b() -> Value {
    json!({"protocol": "nats", "read_idle_timeout": "1s", "ping_interval": "500ms",
           "max_missed_pongs": 2, "write_idle_keepalive": "30s"})
}
const B_BOUND: Duration = Duration::from_secs(2);
const B_LOG: &str = "close after 2 missed (bound 2s)";
const A_LOG: &str = "close after 3 missed (bound 5s)";

fn with_filter(cfg: &EnvoyConfig, filter: Value) -> Vec<ListenerSpec> {
    let mut l = cfg.listeners.clone();
    l[0].filter = Some(FilterSpec::v8(filter));
    l
}

/// Writes the new listeners and waits until Envoy has accepted (`update_success`) or rejected them.
async fn push(envoy: &Envoy, listeners: &[ListenerSpec], accept: bool) -> anyhow::Result<Instant> {
    let before = envoy.stats().await?;
    let pushed = Instant::now();
    envoy.update_listeners(listeners)?;
    let (name, other) = if accept { (UPDATE_SUCCESS, UPDATE_REJECTED) } else { (UPDATE_REJECTED, UPDATE_SUCCESS) };
    let after = wait_envoy_stats(envoy, Duration::from_secs(10), |s| stat(s, name) > stat(&before, name)).await?;
    anyhow::ensure!(
        stat(&after, name) == stat(&before, name) + 1 && stat(&after, other) == stat(&before, other),
        "expected {name} to grow by one within 10 s of the file move: before {} / {}, after {} / {}",
        stat(&before, name),
        stat(&before, other),
        stat(&after, name),
        stat(&after, other)
    );
    eprintln!("LDS update {} after {:.0?}", if accept { "accepted" } else { "rejected" }, pushed.elapsed());
    Ok(pushed)
}

/// Old connections keep their configuration and their watcher; new ones get the new configuration; an
/// invalid configuration is rejected while the listener keeps serving new connections the old way.
#[test]
fn live_change_applies_to_new_connections_and_old_ones_keep_theirs() -> anyhow::Result<()> {
    common::run(live_change_applies_to_new_connections_and_old_ones_keep_theirs_case())
}

async fn live_change_applies_to_new_connections_and_old_ones_keep_theirs_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let a = Timing::DEFAULT;
    let nats = Upstream::nats(mode).await?;
    let cfg = one_listener(nats.port, Some(default_filter_config("nats")))?;
    // A drain time longer than the case: the old filter chain stays, so its connections can be watched.
    let opts = Options { lds: true, drain_time_s: Some(60), ..Options::default() };
    let envoy = Envoy::start_with(mode, &cfg, &opts).await?;
    let addr = envoy.listener("hb");
    let case = async {
        anyhow::ensure!(envoy.log().contains(A_LOG), "the first configuration is not in the log");
        let mut old = open_nats(addr, 2).await?;

        // An invalid configuration: Envoy rejects the update and says why, with the filter's own line.
        let mut bad = default_filter_config("nats");
        bad["max_missed_pongs"] = json!(0);
        push(&envoy, &with_filter(&cfg, bad), false).await?;
        let log = envoy.log();
        anyhow::ensure!(
            log.contains("heartbeat: invalid configuration: max_missed_pongs: 0 is outside 1..=100"),
            "the filter's refusal is not in the log"
        );
        let rejected = log.lines().filter(|l| l.contains("Unable to create Wasm plugin heartbeat")).count();
        eprintln!("rejection lines naming the plugin: {rejected}");
        anyhow::ensure!(rejected >= 1, "no 'Unable to create Wasm plugin heartbeat' line");
        // The old listener still serves, new connections included, with the old configuration.
        let mut after_reject = open_nats(addr, 1).await?;
        old.append(&mut after_reject);
        for (i, p) in old.iter_mut().enumerate() {
            nats_exchange(p, &format!("old.{i}"), "before-change").await?;
        }

        // A valid change: PING after 1 s, every 500 ms, close after 2 missed.
        let stats_before = envoy.stats().await?;
        push(&envoy, &with_filter(&cfg, config_b()), true).await?;
        let stats_after = envoy.stats().await?;
        anyhow::ensure!(
            stat(&stats_after, IN_PLACE) == stat(&stats_before, IN_PLACE) + 1,
            "expected an in-place filter chain update: {} → {}",
            stat(&stats_before, IN_PLACE),
            stat(&stats_after, IN_PLACE)
        );
        anyhow::ensure!(envoy.log().contains(B_LOG), "the new configuration was not configured in any VM");
        let mut new = open_nats(addr, 1).await?;
        for (i, p) in old.iter_mut().enumerate() {
            nats_exchange(p, &format!("old.{i}"), "after-change").await?;
        }
        nats_exchange(&mut new[0], "new.0", "after-change").await?;

        // Idle: PINGs on every connection from its own configuration's root; nothing reaches any client.
        let mut all: Vec<&mut Probe> = old.iter_mut().chain(new.iter_mut()).collect();
        let outcomes = futures::future::join_all(all.iter_mut().map(|p| p.watch(Duration::from_secs(3), None))).await;
        for (i, o) in outcomes.iter().enumerate() {
            anyhow::ensure!(o.closed_after.is_none() && o.received == 0, "connection {i} while idle: {o:?}");
        }
        // (How many PINGs went out meanwhile depends on when nats-server sent its own first PING, which also
        // restarts read-idle; the hang below is the evidence of who watches which connection.)
        eprintln!("after 3 s idle: {:?}", envoy.filter_stats().await?);

        // nats-server hangs: the new connection is closed within the new bound, the old ones within the old.
        nats.freeze().await?;
        let limit = a.bound() + a.slack + Duration::from_secs(2);
        let outcomes = futures::future::join_all(all.iter_mut().map(|p| p.watch(limit, None))).await;
        nats.thaw().await?;
        let closed: Vec<Duration> = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| o.closed_after.ok_or_else(|| anyhow::anyhow!("connection {i} open {limit:?} after the hang")))
            .collect::<anyhow::Result<_>>()?;
        let (old_closed, new_closed) = closed.split_at(old.len());
        eprintln!(
            "after the hang: old connections (config A, bound {:?}) closed after {old_closed:.2?}; new (config B, \
                   bound {B_BOUND:?}) after {new_closed:.2?}",
            a.bound()
        );
        for c in old_closed {
            // The old connections' last upstream byte came at most read_idle (2 s) before the hang.
            anyhow::ensure!(
                *c >= a.bound() - a.read_idle - Duration::from_millis(500) && *c <= a.bound() + a.slack,
                "an old connection closed after {c:?}: not config A's bound"
            );
        }
        anyhow::ensure!(new_closed[0] <= B_BOUND + a.slack, "the new connection closed after {:?}", new_closed[0]);
        anyhow::ensure!(
            old_closed.iter().all(|c| *c > new_closed[0]),
            "the new connection (bound 2 s) must go first: old {old_closed:?}, new {new_closed:?}"
        );
        let log = envoy.log();
        let by_a = lines_by_thread(&log, "of 3 intervals missed").values().sum::<usize>();
        let by_b = lines_by_thread(&log, "of 2 intervals missed").values().sum::<usize>();
        anyhow::ensure!(by_a == old.len() && by_b == 1, "close lines: {by_a} with config A, {by_b} with config B");

        // Both roots (the old chain's and the new one's) published their connections' ends: the books balance.
        let stats = common::wait_stats(&envoy, Duration::from_secs(3), |s| {
            // The unanswered PINGs of a closed connection are counted at its close callback, which comes after the
            // tick that closed it: published a tick later.
            s.get(metrics::MONITORED) == Some(&0) && metrics::check_consistent(s).is_ok()
        })
        .await?;
        eprintln!("after the hang: {stats:?}");
        anyhow::ensure!(metrics::get(&stats, metrics::MONITORED)? == 0, "still monitored: {stats:?}");
        anyhow::ensure!(metrics::get(&stats, metrics::DEAD_CLOSED)? == 4, "dead_closed: {stats:?}");
        metrics::check_consistent(&stats)?;
        let stats = envoy.stats().await?;
        anyhow::ensure!(
            stat(&stats, UPDATE_SUCCESS) == 2 && stat(&stats, UPDATE_REJECTED) == 1,
            "LDS: {} accepted, {} rejected",
            stat(&stats, UPDATE_SUCCESS),
            stat(&stats, UPDATE_REJECTED)
        );
        anyhow::Ok(())
    };
    case.await.map_err(|e| envoy.explain(e))
}

/// After a change, Envoy drains the old filter chain: its connections stay exact and watched for
/// `--drain-time-s`, then Envoy closes them (tcp_proxy has no graceful drain); the filter closes none.
#[test]
fn live_change_drains_old_connections_after_the_drain_time() -> anyhow::Result<()> {
    common::run(live_change_drains_old_connections_after_the_drain_time_case())
}

const DRAIN: u32 = 4;

async fn live_change_drains_old_connections_after_the_drain_time_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let nats = Upstream::nats(mode).await?;
    let cfg = one_listener(nats.port, Some(default_filter_config("nats")))?;
    let opts = Options { lds: true, drain_time_s: Some(DRAIN), ..Options::default() };
    let envoy = Envoy::start_with(mode, &cfg, &opts).await?;
    let addr = envoy.listener("hb");
    let case = async {
        let mut old = open_nats(addr, 2).await?;
        for (i, p) in old.iter_mut().enumerate() {
            nats_exchange(p, &format!("old.{i}"), "before").await?;
        }
        let pushed = push(&envoy, &with_filter(&cfg, config_b()), true).await?;
        let mut new = open_nats(addr, 1).await?;
        // Within the drain time the old connections are still exact, and still watched by config A's root.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for (i, p) in old.iter_mut().enumerate() {
            nats_exchange(p, &format!("old.{i}"), "while-draining").await?;
        }
        let watch = Duration::from_secs(DRAIN as u64 + 3);
        let watched_from = Instant::now();
        let mut all: Vec<&mut Probe> = old.iter_mut().chain(new.iter_mut()).collect();
        let outcomes = futures::future::join_all(all.iter_mut().map(|p| p.watch(watch, None))).await;
        let offset = watched_from - pushed;
        let (old_o, new_o) = outcomes.split_at(2);
        for (i, o) in old_o.iter().enumerate() {
            anyhow::ensure!(o.received == 0, "old connection {i} received {} bytes while draining", o.received);
            let Some(c) = o.closed_after else {
                anyhow::bail!("old connection {i} still open {watch:?} after the drain")
            };
            let since_change = c + offset;
            eprintln!("old connection {i}: {} {:.2?} after the change (--drain-time-s {DRAIN})", o.how, since_change);
            anyhow::ensure!(
                since_change >= Duration::from_secs(DRAIN as u64) / 2
                    && since_change <= Duration::from_secs(DRAIN as u64) + Duration::from_millis(1500),
                "old connection {i} closed {since_change:?} after the change, drain time {DRAIN} s"
            );
        }
        anyhow::ensure!(new_o[0].closed_after.is_none() && new_o[0].received == 0, "new connection: {:?}", new_o[0]);
        nats_exchange(&mut new[0], "new.0", "after-drain").await?;

        // Envoy closed them, not the filter.
        let log = envoy.log();
        anyhow::ensure!(!log.contains("heartbeat: closing connection"), "the filter closed a drained connection");
        let stats = envoy.filter_stats().await?;
        eprintln!("after the drain: {stats:?}");
        anyhow::ensure!(metrics::get(&stats, metrics::DEAD_CLOSED)? == 0, "dead_closed: {stats:?}");
        // Envoy closes the drained connections, then destroys the old chain's root context, possibly before a
        // tick published their ends: the root context publishes (and forgets what is left) in `on_done`, so
        // the gauge counts only the new connection still open.
        let monitored = metrics::get(&stats, metrics::MONITORED)?;
        anyhow::ensure!(monitored == 1, "connections_monitored {monitored} after the drain: {stats:?}");
        anyhow::Ok(())
    };
    case.await.map_err(|e| envoy.explain(e))
}
