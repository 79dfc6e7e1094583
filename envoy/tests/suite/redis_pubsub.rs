//! Redis pub/sub through real Envoy with the filter: a subscriber that never writes gets PINGs injected in
//! subscribe mode, and must still see a byte-exact stream (no `*2 pong` array of the filter's, no lost or
//! extra push) and keep its connection while the server is alive.
//!
//! The subscriber is a raw RESP2 client on a TCP socket, not redis-rs: a client library may silently drop
//! a stray pong array, while the raw bytes show exactly what the filter let through.

use super::common;

use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::setup::{envoy_for, Setup};
use heartbeat_envoy_tests::Upstream;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// RESP2 multibulk command, as any client sends it.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// RESP2 reply array of bulk strings and, at the end, an optional integer.
fn reply(bulks: &[&str], count: Option<i64>) -> Vec<u8> {
    let n = bulks.len() + usize::from(count.is_some());
    let mut out = format!("*{n}\r\n").into_bytes();
    for b in bulks {
        out.extend_from_slice(format!("${}\r\n{b}\r\n", b.len()).as_bytes());
    }
    if let Some(c) = count {
        out.extend_from_slice(format!(":{c}\r\n").as_bytes());
    }
    out
}

/// Everything the subscriber has received so far, and why its connection ended (if it did).
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    ended: Option<String>,
}

/// Reads the subscriber's socket until it ends, keeping every byte.
fn spawn_reader(mut rd: tokio::net::tcp::OwnedReadHalf) -> Arc<Mutex<Received>> {
    let seen = Arc::new(Mutex::new(Received::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let r = rd.read(&mut buf).await;
            let mut g = shared.lock().unwrap_or_else(|p| p.into_inner());
            match r {
                Ok(0) => {
                    g.ended = Some("EOF".into());
                    return;
                }
                Ok(n) => g.bytes.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) => {
                    g.ended = Some(format!("read error: {e}"));
                    return;
                }
            }
        }
    });
    seen
}

fn snapshot(seen: &Arc<Mutex<Received>>) -> (Vec<u8>, Option<String>) {
    let g = seen.lock().unwrap_or_else(|p| p.into_inner());
    (g.bytes.clone(), g.ended.clone())
}

/// Waits until the received bytes are at least `want` long (or the connection ends, or 3 s pass).
async fn wait_for_len(seen: &Arc<Mutex<Received>>, want: usize) -> (Vec<u8>, Option<String>) {
    let start = Instant::now();
    loop {
        let (bytes, ended) = snapshot(seen);
        if bytes.len() >= want || ended.is_some() || start.elapsed() > Duration::from_secs(3) {
            return (bytes, ended);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails with both byte strings escaped and the first offset where they differ.
fn ensure_exact(stage: &str, got: &[u8], want: &[u8]) -> anyhow::Result<()> {
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    anyhow::bail!(
        "{stage}: the subscriber's bytes differ from the expected stream at offset {at} (got {} bytes, want {})\n\
         got:  {}\nwant: {}\ngot from the difference on:  {}\nwant from the difference on: {}",
        got.len(),
        want.len(),
        got.escape_ascii(),
        want.escape_ascii(),
        got.get(at..).unwrap_or_default().escape_ascii(),
        want.get(at..).unwrap_or_default().escape_ascii(),
    )
}

#[test]
fn idle_subscriber_gets_exact_pushes_while_pings_are_injected_in_subscribe_mode() -> anyhow::Result<()> {
    common::run(idle_subscriber_gets_exact_pushes_while_pings_are_injected_in_subscribe_mode_case())
}

async fn idle_subscriber_gets_exact_pushes_while_pings_are_injected_in_subscribe_mode_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let redis = Upstream::redis(mode, &[]).await?;
    // Write-idle keepalive far out of the way: every PING counted here is a read-idle probe.
    let cfg = json!({"protocol": "redis", "read_idle_timeout": "500ms", "ping_interval": "300ms",
                     "max_missed_pongs": 3, "write_idle_keepalive": "60s"});
    let envoy = envoy_for(mode, redis.port, &[Setup::Filter], &cfg).await?;
    let sub = tokio::net::TcpStream::connect(envoy.listener(Setup::Filter.listener())).await?;
    let (rd, mut wr) = sub.into_split();
    let seen = spawn_reader(rd);

    // 1. Subscribe to a channel and a pattern; the server confirms both, with running counts.
    let mut expected = reply(&["subscribe", "ch"], Some(1));
    expected.extend(reply(&["psubscribe", "news.*"], Some(2)));
    let mut subscribe = command(&["SUBSCRIBE", "ch"]);
    subscribe.extend(command(&["PSUBSCRIBE", "news.*"]));
    wr.write_all(&subscribe).await?;
    let (got, ended) = wait_for_len(&seen, expected.len()).await;
    ensure_exact("after SUBSCRIBE + PSUBSCRIBE", &got, &expected).map_err(|e| envoy.explain(e))?;
    anyhow::ensure!(ended.is_none(), "subscriber connection ended after subscribing: {ended:?}");

    // 2. The subscriber stays silent from here. A plain connection straight to redis-server publishes
    //    numbered messages, alternating channel and pattern, at uneven gaps around the 500 ms read-idle
    //    timeout: PINGs are injected in the longer gaps, and pushes can arrive while a PING is in flight.
    let mut publisher =
        redis::Client::open(format!("redis://{}/", redis.addr()))?.get_multiplexed_async_connection().await?;
    let gaps_ms = [1200u64, 450, 900, 350, 700, 1000, 520, 800];
    let idle_from = Instant::now();
    for (i, gap) in gaps_ms.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*gap)).await;
        let payload = format!("msg-{i}");
        if i % 2 == 0 {
            let receivers: i64 = redis::cmd("PUBLISH").arg("ch").arg(&payload).query_async(&mut publisher).await?;
            anyhow::ensure!(receivers == 1, "PUBLISH ch {payload}: {receivers} receivers, expected the subscriber");
            expected.extend(reply(&["message", "ch", &payload], None));
        } else {
            let channel = format!("news.{i}");
            let receivers: i64 = redis::cmd("PUBLISH").arg(&channel).arg(&payload).query_async(&mut publisher).await?;
            anyhow::ensure!(receivers == 1, "PUBLISH {channel} {payload}: {receivers} receivers");
            expected.extend(reply(&["pmessage", "news.*", &channel, &payload], None));
        }
    }
    // A last idle stretch with nothing published: only the filter's PINGs and their pongs on the wire.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let idle_for = idle_from.elapsed();
    let (got, ended) = wait_for_len(&seen, expected.len()).await;
    ensure_exact("after the publishes", &got, &expected).map_err(|e| envoy.explain(e))?;
    anyhow::ensure!(ended.is_none(), "the filter closed a live subscriber: {ended:?}");

    let stats = envoy.filter_stats().await?;
    eprintln!("redis pub/sub: idle {idle_for:?}, {} messages exact; filter stats {stats:?}", gaps_ms.len());
    let injected = metrics::get(&stats, metrics::PINGS_INJECTED)?;
    let stripped = metrics::get(&stats, metrics::PONGS_STRIPPED)?;
    assert!(injected >= 2, "the filter should have probed the idle subscriber: {stats:?}");
    // One PING at most is in flight at any moment on a live server; every earlier one had its pong stripped.
    assert!(stripped <= injected && injected - stripped <= 1, "PINGs {injected}, pongs stripped {stripped}: {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "{stats:?}");
    assert_eq!(metrics::get(&stats, metrics::PROTOCOL_ERRORS)?, 0, "{stats:?}");
    assert_eq!(metrics::get(&stats, metrics::KEEPALIVE_PINGS)?, 0, "keepalive should be out of the way: {stats:?}");

    // 3. The client's own PING in subscribe mode gets exactly one pong array (with its argument), after
    //    more idle time so the filter's PINGs keep interleaving with the client's.
    wr.write_all(&command(&["PING"])).await?;
    expected.extend(reply(&["pong", ""], None));
    tokio::time::sleep(Duration::from_millis(900)).await;
    wr.write_all(&command(&["PING", "mine"])).await?;
    expected.extend(reply(&["pong", "mine"], None));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (got, ended) = wait_for_len(&seen, expected.len()).await;
    ensure_exact("after the client's own PINGs", &got, &expected).map_err(|e| envoy.explain(e))?;
    anyhow::ensure!(ended.is_none(), "the filter closed a live subscriber: {ended:?}");

    // 4. Close; once the filter forgot the connection, every PING it sent is accounted for.
    drop(wr);
    let stats = common::wait_stats(&envoy, Duration::from_secs(5), |s| s.get(metrics::MONITORED) == Some(&0)).await?;
    eprintln!("redis pub/sub: filter stats after close {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::MONITORED)?, 0, "connection still monitored: {stats:?}");
    metrics::check_consistent(&stats)?;
    assert!(metrics::get(&stats, metrics::PINGS_UNANSWERED)? <= 1, "{stats:?}");
    assert!(metrics::get(&stats, metrics::PINGS_INJECTED)? > injected, "no PING after the client's own: {stats:?}");
    Ok(())
}
