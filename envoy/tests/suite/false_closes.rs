//! Healthy connections the filter must never close, through real Envoy and real servers, with a tight bound
//! (read idle 300 ms, interval 100 ms, 3 missed: 0.6 s) so that any wrong evidence would show at once:
//! slow uploads, pauses in the middle of a frame, a slow server that owes a reply, and a client that stops
//! reading its replies for a while. Each checks the bytes the client gets and that `dead_closed` stays 0.

use super::common;

use heartbeat_envoy_tests::setup::{envoy_for, Setup};
use heartbeat_envoy_tests::{metrics, resp, Envoy, Upstream};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound 0.6 s; a server that owes a reply, or may be held back by its client, gets 5 s.
fn config(protocol: &str) -> serde_json::Value {
    json!({"protocol": protocol, "read_idle_timeout": "300ms", "ping_interval": "100ms", "max_missed_pongs": 3,
           "reply_timeout": "5s"})
}

/// Writes `bytes` at about `rate` bytes per second, in 10 KB pieces.
async fn trickle(s: &mut TcpStream, bytes: &[u8], rate: usize) -> anyhow::Result<()> {
    let piece = 10_000;
    let pause = Duration::from_secs_f64(piece as f64 / rate as f64);
    for chunk in bytes.chunks(piece) {
        s.write_all(chunk).await?;
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

/// Reads until `want` has arrived whole, failing on EOF, on anything else, or after `limit`.
async fn expect(s: &mut TcpStream, want: &[u8], limit: Duration) -> anyhow::Result<()> {
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(limit, s.read_exact(&mut got))
        .await
        .map_err(|_| anyhow::anyhow!("no reply within {limit:?}"))?
        .map_err(|e| anyhow::anyhow!("connection lost: {e}"))?;
    anyhow::ensure!(
        got == want,
        "got {:?}, want {:?}",
        String::from_utf8_lossy(&got[..got.len().min(80)]),
        String::from_utf8_lossy(&want[..want.len().min(80)])
    );
    Ok(())
}

/// As `expect`, for NATS: nats-server's own PINGs (its first comes soon after CONNECT) are answered and
/// skipped, as a real client does.
async fn expect_nats(s: &mut TcpStream, want: &[u8], limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    loop {
        while got.starts_with(b"PING\r\n") && !want.starts_with(b"PING\r\n") {
            got.drain(..6);
            s.write_all(b"PONG\r\n").await?;
        }
        if got.len() >= want.len()
            || (!got.is_empty() && !want.starts_with(&got) && !b"PING\r\n".starts_with(&got[..got.len().min(6)]))
        {
            break;
        }
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, s.read(&mut buf))
            .await
            .map_err(|_| anyhow::anyhow!("no reply within {limit:?}; got {:?}", String::from_utf8_lossy(&got)))??;
        anyhow::ensure!(n > 0, "connection closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    anyhow::ensure!(got == want, "got {:?}, want {:?}", String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    Ok(())
}

async fn assert_nothing_closed(envoy: &Envoy, what: &str) -> anyhow::Result<()> {
    let stats = envoy.filter_stats().await?;
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "{what}: a healthy connection was closed: {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::PROTOCOL_ERRORS)?, 0, "{what}: {stats:?}");
    Ok(())
}

fn redis_set(value: &[u8]) -> Vec<u8> {
    resp::command(&[b"SET", b"k", value])
}

fn nats_pub(payload: &[u8]) -> Vec<u8> {
    let mut cmd = format!("PUB upload {}\r\n", payload.len()).into_bytes();
    cmd.extend_from_slice(payload);
    cmd.extend_from_slice(b"\r\n");
    cmd
}

async fn nats_client(addr: std::net::SocketAddr) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    let mut info = [0u8; 4096];
    let n = s.read(&mut info).await?;
    anyhow::ensure!(info[..n].starts_with(b"INFO "), "no INFO: {:?}", String::from_utf8_lossy(&info[..n]));
    s.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n").await?;
    expect_nats(&mut s, b"PONG\r\n", Duration::from_secs(5)).await?;
    Ok(s)
}

#[test]
fn slow_uploads_and_pauses_mid_frame_are_never_closed() -> anyhow::Result<()> {
    common::run(slow_uploads_case())
}

async fn slow_uploads_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let (redis, nats) = (Upstream::redis(mode, &[]).await?, Upstream::nats(mode).await?);
    let redis_envoy = envoy_for(mode, redis.port, &[Setup::Filter], &config("redis")).await?;
    let nats_envoy = envoy_for(mode, nats.port, &[Setup::Filter], &config("nats")).await?;
    let value: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();

    // A 300 KB Redis value and a 300 KB NATS publish, each uploaded at 100 KB/s (3 s, five bounds).
    let mut r = TcpStream::connect(redis_envoy.listener("heartbeat")).await?;
    r.write_all(b"PING\r\n").await?;
    expect(&mut r, b"+PONG\r\n", Duration::from_secs(5)).await?;
    let start = Instant::now();
    trickle(&mut r, &redis_set(&value), 100_000).await.map_err(|e| redis_envoy.explain(e))?;
    expect(&mut r, b"+OK\r\n", Duration::from_secs(5)).await.map_err(|e| redis_envoy.explain(e))?;
    let redis_upload = start.elapsed();

    let mut n = nats_client(nats_envoy.listener("heartbeat")).await?;
    let start = Instant::now();
    trickle(&mut n, &nats_pub(&value), 100_000).await.map_err(|e| nats_envoy.explain(e))?;
    n.write_all(b"PING\r\n").await?;
    expect_nats(&mut n, b"PONG\r\n", Duration::from_secs(5)).await.map_err(|e| nats_envoy.explain(e))?;
    let nats_upload = start.elapsed();

    // A command and a publish that stop half-way for 2 s (a slow source, a hiccup on the client's network).
    let set = redis_set(b"paused value");
    let (first, second) = set.split_at(set.len() / 2);
    r.write_all(first).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.write_all(second).await?;
    expect(&mut r, b"+OK\r\n", Duration::from_secs(5)).await.map_err(|e| redis_envoy.explain(e))?;
    r.write_all(b"GET k\r\n").await?;
    expect(&mut r, b"$12\r\npaused value\r\n", Duration::from_secs(5)).await?;

    let publish = nats_pub(b"a payload that pauses half-way");
    let (first, second) = publish.split_at(publish.len() / 2);
    n.write_all(first).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    n.write_all(second).await?;
    n.write_all(b"PING\r\n").await?;
    expect_nats(&mut n, b"PONG\r\n", Duration::from_secs(5)).await.map_err(|e| nats_envoy.explain(e))?;

    assert_nothing_closed(&redis_envoy, "redis uploads").await?;
    assert_nothing_closed(&nats_envoy, "nats uploads").await?;
    eprintln!("slow uploads: 300 KB at 100 KB/s took {redis_upload:?} (redis) and {nats_upload:?} (nats), bound 0.6 s; pauses of 2 s mid-frame; none closed");
    Ok(())
}

#[test]
fn a_slow_server_and_a_client_that_stops_reading_are_never_closed() -> anyhow::Result<()> {
    common::run(slow_server_case())
}

async fn slow_server_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let redis = Upstream::redis(mode, &["--enable-debug-command", "yes"]).await?;
    let nats = Upstream::nats(mode).await?;
    let redis_envoy = envoy_for(mode, redis.port, &[Setup::Filter], &config("redis")).await?;
    let nats_envoy = envoy_for(mode, nats.port, &[Setup::Filter], &config("nats")).await?;

    // A server busy for 2 s (more than three bounds) with the client's command: it owes a reply, so it has
    // reply_timeout (5 s).
    let mut r = TcpStream::connect(redis_envoy.listener("heartbeat")).await?;
    let start = Instant::now();
    r.write_all(b"DEBUG SLEEP 2\r\n").await?;
    expect(&mut r, b"+OK\r\n", Duration::from_secs(5)).await.map_err(|e| redis_envoy.explain(e))?;
    let slept = start.elapsed();
    assert!(slept >= Duration::from_secs(2), "DEBUG SLEEP 2 answered after {slept:?}");

    // A Redis client that pipelines 40 GETs of a 256 KiB value (10 MiB of replies) and reads nothing for 3 s:
    // Envoy stops reading from the server, whose replies are owed.
    let value: Vec<u8> = (0..256 * 1024u32).map(|i| b'A' + (i % 23) as u8).collect();
    r.write_all(&redis_set(&value)).await?;
    expect(&mut r, b"+OK\r\n", Duration::from_secs(5)).await?;
    let gets = 40;
    r.write_all(&b"GET k\r\n".repeat(gets)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reply = resp::bulk(&value);
    for i in 0..gets {
        expect(&mut r, &reply, Duration::from_secs(10))
            .await
            .map_err(|e| redis_envoy.explain(e.context(format!("GET {i}"))))?;
    }

    // A NATS subscriber that stops reading for 3 s while 8 MiB is published to it: nothing is owed (NATS
    // pushes), but the server is held back by Envoy; the filter's PINGs wait behind the messages.
    let mut sub = nats_client(nats_envoy.listener("heartbeat")).await?;
    sub.write_all(b"SUB big 1\r\nPING\r\n").await?;
    expect_nats(&mut sub, b"PONG\r\n", Duration::from_secs(5)).await?;
    let mut publisher = TcpStream::connect(nats.addr()).await?;
    let mut info = [0u8; 4096];
    let _ = publisher.read(&mut info).await?;
    publisher.write_all(b"CONNECT {\"verbose\":false}\r\n").await?;
    let payload: Vec<u8> = (0..64 * 1024u32).map(|i| b'0' + (i % 10) as u8).collect();
    let messages = 128;
    let mut burst = Vec::new();
    for _ in 0..messages {
        burst.extend_from_slice(format!("PUB big {}\r\n", payload.len()).as_bytes());
        burst.extend_from_slice(&payload);
        burst.extend_from_slice(b"\r\n");
    }
    burst.extend_from_slice(b"PING\r\n");
    publisher.write_all(&burst).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut msg = format!("MSG big 1 {}\r\n", payload.len()).into_bytes();
    msg.extend_from_slice(&payload);
    msg.extend_from_slice(b"\r\n");
    let mut received = 0;
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while received < messages {
        let mut chunk = vec![0u8; 256 * 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, sub.read(&mut chunk))
            .await
            .map_err(|_| anyhow::anyhow!("{received} of {messages} messages after 20 s"))??;
        anyhow::ensure!(
            n > 0,
            "the subscriber's connection closed after {received} messages: {}",
            nats_envoy.log_tail(20)
        );
        buf.extend_from_slice(&chunk[..n]);
        // nats-server's own PINGs may come between messages: a real client answers them.
        while buf.starts_with(b"PING\r\n") {
            buf.drain(..6);
            sub.write_all(b"PONG\r\n").await?;
        }
        while buf.len() >= msg.len() && buf.starts_with(&msg[..msg.len().min(buf.len())]) {
            buf.drain(..msg.len());
            received += 1;
            while buf.starts_with(b"PING\r\n") {
                buf.drain(..6);
                sub.write_all(b"PONG\r\n").await?;
            }
        }
        anyhow::ensure!(
            buf.len() < msg.len() || buf.starts_with(&msg),
            "message {received} differs: {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(60)])
        );
    }
    sub.write_all(b"PING\r\n").await?;
    expect_nats(&mut sub, b"PONG\r\n", Duration::from_secs(5)).await?;

    assert_nothing_closed(&redis_envoy, "slow redis").await?;
    assert_nothing_closed(&nats_envoy, "nats subscriber").await?;
    eprintln!("slow server: DEBUG SLEEP 2 answered after {slept:?}; 40 x 256 KiB GET replies and 128 x 64 KiB NATS messages read after 3 s of not reading, all exact; none closed (bound 0.6 s, reply_timeout 5 s)");
    Ok(())
}
