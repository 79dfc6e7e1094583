//! Redis blocking commands through real Envoy and a real redis-server: a worker blocked in BLPOP longer than
//! the detection bound is alive and is left alone; a server that hangs while a BLPOP waits is still closed,
//! once the command's own timeout and then `reply_timeout` (here equal to the bound) have passed.

use super::common;

use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::setup::{envoy_for, Setup};
use heartbeat_envoy_tests::Upstream;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound 5 s: read idle 2 s, then 3 intervals of 1 s (the filter's example timings); a server that owes a reply
/// may take 5 s too.
fn config() -> serde_json::Value {
    let mut v = heartbeat::core::config::Timings::EXAMPLE.config_json("redis");
    v["reply_timeout"] = "5s".into();
    v
}

#[test]
fn blocking_commands_longer_than_the_bound_are_not_closed_and_a_hang_still_is() -> anyhow::Result<()> {
    common::run(blocking_commands_case())
}

async fn blocking_commands_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let redis = Upstream::redis(mode, &[]).await?;
    let envoy = envoy_for(mode, redis.port, &[Setup::Filter], &config()).await?;
    let addr = envoy.listener(Setup::Filter.listener());
    // redis-rs gives up on a reply after 500 ms by default; a worker that blocks turns that off.
    let blocking = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let mut worker = client.get_multiplexed_async_connection_with_config(&blocking).await?;

    // 1. BLPOP with a 7 s timeout on an empty list: the nil reply after 7 s, on the same connection.
    let start = Instant::now();
    let popped: Option<(String, String)> =
        redis::cmd("BLPOP").arg("jobs").arg(7).query_async(&mut worker).await.map_err(|e| envoy.explain(e.into()))?;
    let waited = start.elapsed();
    assert_eq!(popped, None);
    assert!(waited >= Duration::from_secs(7), "BLPOP returned after {waited:?}");
    let pong: String = redis::cmd("PING").query_async(&mut worker).await?;
    assert_eq!(pong, "PONG", "the connection outlived the bound and still works");

    // 2. BLPOP without a timeout, served 7 s later by a producer on another connection.
    let mut blocked = worker.clone();
    let waiter = tokio::spawn(async move {
        redis::cmd("BLPOP").arg("jobs").arg(0).query_async::<(String, String)>(&mut blocked).await
    });
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut producer =
        redis::Client::open(format!("redis://{}/", redis.addr()))?.get_multiplexed_async_connection().await?;
    let _: i64 = redis::cmd("LPUSH").arg("jobs").arg("job-1").query_async(&mut producer).await?;
    let got = tokio::time::timeout(Duration::from_secs(5), waiter).await??.map_err(|e| envoy.explain(e.into()))?;
    assert_eq!(got, ("jobs".to_string(), "job-1".to_string()));

    let stats = envoy.filter_stats().await?;
    assert_eq!(metrics::get(&stats, metrics::DEAD_CLOSED)?, 0, "a blocked worker was closed: {stats:?}");
    drop(worker);

    // 3. The server hangs while BLPOP jobs 3 waits: closed 3 s + reply_timeout 5 s after the command went out.
    let mut raw = tokio::net::TcpStream::connect(addr).await?;
    raw.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).await?;
    assert_eq!(&buf[..n], b"+PONG\r\n");
    raw.write_all(b"BLPOP jobs 3\r\n").await?;
    let sent = Instant::now();
    redis.freeze().await?;
    let eof = tokio::time::timeout(Duration::from_secs(20), raw.read(&mut buf)).await;
    let closed_after = sent.elapsed();
    assert!(matches!(eof, Ok(Ok(0)) | Ok(Err(_))), "not closed 20 s after a hang under BLPOP 3: {eof:?}");
    assert!(
        closed_after >= Duration::from_secs(7) && closed_after <= Duration::from_millis(9500),
        "closed {closed_after:?} after BLPOP 3 went out; expected 3 s + reply_timeout 5 s (+ a tick)"
    );
    redis.thaw().await?;

    let stats = envoy.filter_stats().await?;
    eprintln!(
        "blocking: BLPOP 7 answered after {waited:?}; hung under BLPOP 3 closed after {closed_after:?}; {stats:?}"
    );
    assert!(metrics::get(&stats, metrics::DEAD_CLOSED)? >= 1, "the hung connection was not counted: {stats:?}");
    Ok(())
}
