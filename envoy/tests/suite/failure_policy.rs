//! What a trap in the filter's VM does to a worker's connections, per Envoy 1.40 `failure_policy`. The filter
//! never panics on bytes (protocol errors pass the connection through); to see Envoy's policy at work the suite
//! builds a test-only variant (`--features test-trap`, target/heartbeat-trap.wasm) that panics when a client
//! sends `HEARTBEAT-TEST-TRAP`. One worker, so every connection shares the VM that traps:
//! - T: the connection whose bytes trap the VM;
//! - A1: open before, sends a request after the trap;
//! - A2: open before, idle; the upstream then hangs;
//! - B: new connections after the trap, one every 250 ms until one is accepted (FAIL_RELOAD refuses them until
//!   its reload backoff, 1 s by default, has passed) or for 4 s; the accepted one then sees the upstream hang.

use super::common;
use super::ops_common::{nats_exchange, one_listener, open_nats, stat, trap_wasm, TRAP};

use heartbeat_envoy_tests::config::{default_filter_config, FailurePolicy, Options};
use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::probe::{Probe, Proto};
use heartbeat_envoy_tests::setup::Timing;
use heartbeat_envoy_tests::{Envoy, Upstream};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// What each connection showed, in words the README can use.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// EOF or reset at once (T: after its bytes; A1, A2: at their next byte; B: before any byte).
    Closed,
    /// Bytes pass both ways, and the filter does nothing: not closed when the upstream hangs.
    PassedUnwatched,
    /// Bytes pass and the filter watches: closed within the bound when the upstream hangs.
    Watched,
}

#[derive(Debug)]
struct Observed {
    trapping: Seen,
    open_sending: Seen,
    /// A2 while idle through the hang: `PassedUnwatched` if still open after the bound (nobody watches it).
    open_idle_through_hang: Seen,
    /// A2 when it finally sends a request after the hang.
    open_idle_then_sending: Seen,
    new_connection: Seen,
    /// New connections refused (closed before their first byte) and how long the trying took.
    new_refused: (u32, Duration),
    stats: std::collections::BTreeMap<String, i64>,
}

async fn observe(policy: FailurePolicy) -> anyhow::Result<Observed> {
    let mode = common::mode().await;
    let t = Timing::DEFAULT;
    let wasm = trap_wasm().await?;
    let nats = Upstream::nats(mode).await?;
    let cfg = one_listener(nats.port, Some(default_filter_config("nats")))?;
    let opts = Options { failure_policy: Some(policy), wasm: Some(wasm), ..Options::default() };
    let envoy = Envoy::start_with(mode, &cfg, &opts).await?;
    let addr = envoy.listener("hb");
    let case = async {
        let mut open = open_nats(addr, 3).await?;
        for (i, p) in open.iter_mut().enumerate() {
            nats_exchange(p, &format!("before.{i}"), "hello").await?;
        }
        // nats-server sends each client its first PING about 2 s after CONNECT (then every 2 minutes): let that
        // pass, so that A2 sees no byte in either direction from the trap until it sends again.
        let outcomes =
            futures::future::join_all(open.iter_mut().map(|p| p.watch(Duration::from_millis(2600), None))).await;
        for o in &outcomes {
            anyhow::ensure!(o.closed_after.is_none() && o.received == 0, "before the trap: {o:?}");
        }
        // The three are monitored, and a tick (100 ms) has published it.
        let s = common::wait_stats(&envoy, Duration::from_secs(2), |s| s.get(metrics::MONITORED) == Some(&3)).await?;
        anyhow::ensure!(s.get(metrics::MONITORED) == Some(&3), "3 connections not monitored: {s:?}");
        let [mut t_conn, mut a1, mut a2]: [Probe; 3] =
            open.try_into().map_err(|_| anyhow::anyhow!("expected 3 connections"))?;

        // T traps the VM.
        t_conn.stream().write_all(format!("PUB trap {}\r\n{TRAP}\r\n", TRAP.len()).as_bytes()).await?;
        let o = t_conn.watch(Duration::from_millis(1500), None).await;
        anyhow::ensure!(o.received == 0, "T received {} bytes after its PUB", o.received);
        let trapping = match o.closed_after {
            Some(_) => Seen::Closed,
            None => exchange_or_closed(&mut t_conn, "t", "after-trap").await?,
        };
        let log = envoy.log();
        anyhow::ensure!(log.contains("panicked at") && log.contains(TRAP), "no panic line naming {TRAP} in the log");
        anyhow::ensure!(
            log.contains("Function: proxy_on_downstream_data failed: Uncaught RuntimeError: unreachable"),
            "Envoy did not log the VM's failure"
        );

        // A1 sends a request.
        let open_sending = exchange_or_closed(&mut a1, "a1", "after-trap").await?;

        // B: new connections until one is accepted, or for 4 s.
        let trying_from = std::time::Instant::now();
        let mut refused = 0u32;
        let mut b = loop {
            match Probe::connect(addr, Proto::Nats).await {
                Ok(mut p) => {
                    nats_exchange(&mut p, "b", "new").await?;
                    break Some(p);
                }
                Err(e) => anyhow::ensure!(is_closed(&e), "B failed otherwise: {e:#}"),
            }
            refused += 1;
            if trying_from.elapsed() > Duration::from_secs(4) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let new_refused = (refused, trying_from.elapsed());

        // The upstream hangs: who is still watched?
        nats.freeze().await?;
        let limit = t.bound() + t.slack + Duration::from_secs(1);
        let mut watching: Vec<&mut Probe> = vec![&mut a2];
        if let Some(b) = b.as_mut() {
            watching.push(b);
        }
        let outcomes = futures::future::join_all(watching.iter_mut().map(|p| p.watch(limit, None))).await;
        nats.thaw().await?;
        eprintln!("{policy:?}: A2 (and B) during the hang: {outcomes:?}");
        for o in &outcomes {
            anyhow::ensure!(o.received == 0, "bytes reached a client during the hang: {o:?}");
        }
        let judge = |o: &heartbeat_envoy_tests::probe::Outcome| match o.closed_after {
            Some(c) if c <= t.bound() + t.slack && c >= t.ping_interval => Seen::Watched,
            Some(c) => {
                eprintln!("closed {c:?} into the hang, outside the filter's bound window: {}", o.how);
                Seen::Closed
            }
            None => Seen::PassedUnwatched,
        };
        let open_idle_through_hang = judge(&outcomes[0]);
        let new_connection = match outcomes.get(1) {
            None => Seen::Closed,
            Some(o) => judge(o),
        };
        // A2 sends after the hang.
        let open_idle_then_sending = if open_idle_through_hang == Seen::PassedUnwatched {
            exchange_or_closed(&mut a2, "a2", "after-hang").await?
        } else {
            Seen::Closed
        };
        drop((t_conn, a1, a2, b));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stats = envoy.stats().await?;
        let observed = Observed {
            trapping,
            open_sending,
            open_idle_through_hang,
            open_idle_then_sending,
            new_connection,
            new_refused,
            stats: stats.into_iter().filter(|(k, _)| k.starts_with("wasm")).collect(),
        };
        eprintln!("{policy:?}: {observed:#?}");
        anyhow::Ok(observed)
    };
    case.await.map_err(|e| envoy.explain(e))
}

fn is_closed(e: &anyhow::Error) -> bool {
    let e = format!("{e:#}").to_ascii_lowercase();
    ["eof", "reset", "broken pipe"].iter().any(|w| e.contains(w))
}

/// A byte-exact exchange: `PassedUnwatched` if it works (the caller knows nobody watches), `Closed` if the
/// connection ends instead; anything else (wrong bytes) fails the case.
async fn exchange_or_closed(p: &mut Probe, subject: &str, payload: &str) -> anyhow::Result<Seen> {
    match nats_exchange(p, subject, payload).await {
        Ok(()) => Ok(Seen::PassedUnwatched),
        Err(e) if is_closed(&e) => Ok(Seen::Closed),
        Err(e) => Err(e.context(format!("{subject}: neither an exact exchange nor a close"))),
    }
}

/// The trapped VM's connections never get their end published: they stay counted in the gauge.
fn assert_gauge_keeps_the_dead_vms_connections(o: &Observed) {
    assert_eq!(
        stat(&o.stats, &format!("wasmcustom.{}", metrics::MONITORED)),
        3,
        "every connection is closed; the gauge keeps the 3 the trapped VM had published"
    );
}

/// The default. One trap and this worker closes every connection: the trapping one at once, the others at
/// their next byte, and every new one before its first byte, until Envoy restarts.
#[test]
fn fail_closed_closes_every_connection_of_the_worker_until_restart() -> anyhow::Result<()> {
    common::run(async {
        let o = observe(FailurePolicy::FailClosed).await?;
        assert_eq!(o.trapping, Seen::Closed);
        assert_eq!(o.open_sending, Seen::Closed);
        assert_eq!(o.open_idle_through_hang, Seen::PassedUnwatched, "idle: neither closed nor watched");
        assert_eq!(o.open_idle_then_sending, Seen::Closed);
        assert_eq!(o.new_connection, Seen::Closed, "new connections are refused");
        assert!(o.new_refused.0 >= 10, "every new connection for 4 s is refused: {:?}", o.new_refused);
        assert_gauge_keeps_the_dead_vms_connections(&o);
        Ok(())
    })
}

/// `failure_policy: FAIL_OPEN`: the connections the VM had are closed as with FAIL_CLOSED (the trapping one at
/// once, the others at their next byte); new connections skip the filter: they work, unwatched.
#[test]
fn fail_open_closes_the_vms_connections_and_lets_new_ones_pass_unwatched() -> anyhow::Result<()> {
    common::run(async {
        let o = observe(FailurePolicy::FailOpen).await?;
        assert_eq!(o.trapping, Seen::Closed);
        assert_eq!(o.open_sending, Seen::Closed);
        assert_eq!(o.open_idle_through_hang, Seen::PassedUnwatched);
        assert_eq!(o.open_idle_then_sending, Seen::Closed);
        assert_eq!(o.new_connection, Seen::PassedUnwatched, "new connections pass, and nobody watches them");
        assert_eq!(o.new_refused.0, 0, "the first new connection passes");
        assert_gauge_keeps_the_dead_vms_connections(&o);
        Ok(())
    })
}

/// `failure_policy: FAIL_RELOAD`: the VM's connections are closed as with FAIL_CLOSED; the next new connection
/// gets a fresh VM (after a 1 s backoff by default) and is watched again.
#[test]
fn fail_reload_closes_the_vms_connections_and_watches_new_ones_with_a_new_vm() -> anyhow::Result<()> {
    common::run(async {
        let o = observe(FailurePolicy::FailReload).await?;
        assert_eq!(o.trapping, Seen::Closed);
        assert_eq!(o.open_sending, Seen::Closed);
        assert_eq!(o.open_idle_through_hang, Seen::PassedUnwatched);
        assert_eq!(o.open_idle_then_sending, Seen::Closed);
        assert_eq!(o.new_connection, Seen::Watched, "a new VM watches new connections");
        assert!(o.new_refused.1 <= Duration::from_secs(3), "refused for {:?} before the reload", o.new_refused);
        assert!(stat(&o.stats, "wasm.heartbeat.vm_reload_success") >= 1, "{:?}", o.stats);
        assert_gauge_keeps_the_dead_vms_connections(&o);
        Ok(())
    })
}

/// The older boolean `fail_open: true`: nothing is closed, not even the trapping connection; every connection,
/// old and new, passes through unwatched until Envoy restarts.
#[test]
fn legacy_fail_open_passes_every_connection_through_unwatched() -> anyhow::Result<()> {
    common::run(async {
        let o = observe(FailurePolicy::LegacyFailOpen).await?;
        assert_eq!(o.trapping, Seen::PassedUnwatched);
        assert_eq!(o.open_sending, Seen::PassedUnwatched);
        assert_eq!(o.open_idle_through_hang, Seen::PassedUnwatched);
        assert_eq!(o.open_idle_then_sending, Seen::PassedUnwatched);
        assert_eq!(o.new_connection, Seen::PassedUnwatched);
        assert_eq!(o.new_refused.0, 0);
        assert_gauge_keeps_the_dead_vms_connections(&o);
        Ok(())
    })
}
