//! NATS through real Envoy with the filter, real nats-server, real async-nats clients.

use super::common;

use futures::StreamExt;
use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::probe::{Probe, Proto};
use heartbeat_envoy_tests::setup::{envoy_for, filter_config, Setup, Timing};
use heartbeat_envoy_tests::Upstream;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn nats_client(
    addr: std::net::SocketAddr,
) -> anyhow::Result<(async_nats::Client, tokio::sync::mpsc::UnboundedReceiver<Instant>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                if matches!(ev, async_nats::Event::Disconnected) {
                    let _ = tx.send(Instant::now());
                }
            }
        })
        .connect(format!("nats://{addr}"))
        .await?;
    Ok((client, rx))
}

/// Idle connections get PINGed and stay up; the client never sees the PONGs; request/reply still works.
#[test]
fn request_reply_works_while_the_filter_pings_idle_connections() -> anyhow::Result<()> {
    common::run(request_reply_works_while_the_filter_pings_idle_connections_case())
}

async fn request_reply_works_while_the_filter_pings_idle_connections_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let nats = Upstream::nats(mode).await?;
    let envoy = envoy_for(mode, nats.port, &[Setup::Filter], &filter_config("nats", "30s")).await?;
    let addr = envoy.listener(Setup::Filter.listener());

    let (requester, mut req_events) = nats_client(addr).await?;
    let (responder, _) = nats_client(addr).await?;
    let mut sub = responder.subscribe("svc.echo").await?;
    responder.flush().await?;
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, format!("re:{}", String::from_utf8_lossy(&m.payload)).into()).await;
            }
        }
    });
    // A raw client beside them: every byte it receives while idle would be a leaked PONG.
    let mut raw = Probe::connect(addr, Proto::Nats).await?;
    let idle = Timing::DEFAULT.read_idle * 3;
    let raw_outcome = raw.watch(idle, None).await;

    let stats = envoy.filter_stats().await?;
    let injected = metrics::get(&stats, metrics::PINGS_INJECTED)?;
    assert!(injected >= 3, "3 idle connections for {idle:?} with read_idle 2 s: expected PINGs, got {stats:?}");
    assert_eq!(raw_outcome.closed_after, None, "an answered connection was closed: {}", raw_outcome.how);
    assert_eq!(
        raw_outcome.received, 0,
        "the raw client received {} bytes while idle: a PONG leaked",
        raw_outcome.received
    );
    assert!(req_events.try_recv().is_err(), "async-nats saw a disconnect on a healthy connection");

    for i in 0..50 {
        let r = tokio::time::timeout(Duration::from_secs(5), requester.request("svc.echo", format!("{i}").into()))
            .await??;
        assert_eq!(&r.payload[..], format!("re:{i}").as_bytes());
    }
    let stats = envoy.filter_stats().await?;
    let pongs = metrics::get(&stats, metrics::PONGS_STRIPPED)?;
    let injected = metrics::pings_sent(&stats)?;
    // At most one PING per connection can be in flight at the moment of reading.
    assert!(injected - pongs >= 0 && injected - pongs <= 3, "injected {injected}, PONGs {pongs}");
    Ok(())
}

/// Request/reply under load with the filter pinging hard (50 ms): no request lost, none duplicated,
/// every reply the one for its request, and PINGs really were injected meanwhile.
#[test]
fn request_reply_under_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    common::run(request_reply_under_load_loses_and_duplicates_nothing_case())
}

async fn request_reply_under_load_loses_and_duplicates_nothing_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let nats = Upstream::nats(mode).await?;
    let cfg = json!({"protocol": "nats", "read_idle_timeout": "50ms", "ping_interval": "50ms",
                     "max_missed_pongs": 20, "write_idle_keepalive": "50ms"});
    let envoy = envoy_for(mode, nats.port, &[Setup::Filter], &cfg).await?;
    let addr = envoy.listener(Setup::Filter.listener());

    let (responder, _) = nats_client(addr).await?;
    let mut sub = responder.subscribe("svc.load").await?;
    responder.flush().await?;
    let handled = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let responder_task;
    {
        let (handled, seen) = (handled.clone(), seen.clone());
        responder_task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                handled.fetch_add(1, Ordering::SeqCst);
                let fresh = seen.lock().map(|mut s| s.insert(m.payload.to_vec())).unwrap_or(false);
                if !fresh {
                    eprintln!("duplicate request delivered: {:?}", m.payload);
                }
                if let Some(reply) = m.reply {
                    let mut p = b"re:".to_vec();
                    p.extend_from_slice(&m.payload);
                    let _ = responder.publish(reply, p.into()).await;
                }
            }
        });
    }
    const WORKERS: usize = 8;
    const PER_WORKER: usize = 250;
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (client, events) = nats_client(addr).await?;
        tasks.push(tokio::spawn(async move {
            let _events = events;
            for i in 0..PER_WORKER {
                let body = format!("w{w}-r{i}");
                let r = tokio::time::timeout(Duration::from_secs(5), client.request("svc.load", body.clone().into()))
                    .await??;
                anyhow::ensure!(r.payload == format!("re:{body}").as_bytes(), "reply {:?} for {body}", r.payload);
                // Idle gaps now and then, so the filter's 50 ms read-idle PINGs land between requests.
                if i % 25 == 24 {
                    tokio::time::sleep(Duration::from_millis(120)).await;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let total = (WORKERS * PER_WORKER) as u64;
    assert_eq!(handled.load(Ordering::SeqCst), total, "the responder saw a different number of requests");
    assert_eq!(seen.lock().map(|s| s.len()).unwrap_or(0) as u64, total, "duplicates reached the responder");
    let stats = envoy.filter_stats().await?;
    let injected = metrics::pings_sent(&stats)?;
    assert!(injected > 0, "no PING was injected during the load run, so it proved nothing: {stats:?}");
    eprintln!("load: {total} requests, filter stats {stats:?}");

    // Close every client; then each PING the filter sent was either answered or owed at close.
    responder_task.abort();
    let _ = responder_task.await;
    let stats = common::wait_stats(&envoy, Duration::from_secs(5), |s| s.get(metrics::MONITORED) == Some(&0)).await?;
    assert_eq!(metrics::get(&stats, metrics::MONITORED)?, 0, "connections still monitored: {stats:?}");
    metrics::check_consistent(&stats)?;
    Ok(())
}

/// The server freezes: the filter closes the client's connection within the bound; beside it, the same
/// client through Envoy without the filter is still connected long after.
#[test]
fn frozen_server_is_detected_within_the_bound_and_the_baseline_is_not() -> anyhow::Result<()> {
    common::run(frozen_server_is_detected_within_the_bound_and_the_baseline_is_not_case())
}

async fn frozen_server_is_detected_within_the_bound_and_the_baseline_is_not_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let t = Timing::DEFAULT;
    let nats = Upstream::nats(mode).await?;
    let envoy = envoy_for(mode, nats.port, &[Setup::Alone, Setup::Filter], &filter_config("nats", "30s")).await?;
    let (_with, mut with_events) = nats_client(envoy.listener(Setup::Filter.listener())).await?;
    let (_without, mut without_events) = nats_client(envoy.listener(Setup::Alone.listener())).await?;
    _with.flush().await?;
    _without.flush().await?;

    let frozen_at = Instant::now();
    nats.freeze().await?;
    let hi = t.bound() + t.slack;
    let detected = tokio::time::timeout(hi + Duration::from_secs(5), with_events.recv()).await;
    let baseline_watch = Duration::from_secs(15);
    tokio::time::sleep_until((frozen_at + baseline_watch).into()).await;
    let baseline = without_events.try_recv();
    nats.thaw().await?;

    let detected_after = match detected {
        Ok(Some(at)) => at - frozen_at,
        other => panic!("the filter's client saw no disconnect ({other:?})\n{}", envoy.log_tail(40)),
    };
    eprintln!("frozen nats-server: with filter disconnected after {detected_after:?}; without filter: {baseline:?} at {baseline_watch:?}");
    assert!(detected_after <= hi, "detected after {detected_after:?}, bound {:?} + slack {:?}", t.bound(), t.slack);
    assert!(
        detected_after >= t.read_idle,
        "closed after {detected_after:?}, before read_idle: not the filter's doing?"
    );
    assert!(baseline.is_err(), "the baseline client was disconnected too: the fault was not silent");
    let stats = envoy.filter_stats().await?;
    assert!(metrics::get(&stats, metrics::DEAD_CLOSED)? >= 1, "{stats:?}");
    Ok(())
}
