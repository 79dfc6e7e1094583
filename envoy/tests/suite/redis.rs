//! Redis through real Envoy with the filter, real redis-server, the redis-rs client and redis-benchmark.

use super::common;

use heartbeat_envoy_tests::metrics;
use heartbeat_envoy_tests::setup::{envoy_for, Setup};
use heartbeat_envoy_tests::Upstream;
use serde_json::json;
use std::time::{Duration, Instant};

/// The filter pings hard: after 50 ms of upstream silence, every 50 ms.
fn hard_pinging() -> serde_json::Value {
    json!({"protocol": "redis", "read_idle_timeout": "50ms", "ping_interval": "50ms",
           "max_missed_pongs": 20, "write_idle_keepalive": "50ms"})
}

/// Pipelines of mixed commands with idle gaps between them (so PINGs are injected in the gaps and their
/// PONGs can arrive just as the next pipeline goes out): every reply must be the one for its command.
/// `resp3`: the client speaks RESP3 (redis-rs sends `HELLO 3` first), else RESP2.
async fn checking_client(addr: std::net::SocketAddr, id: usize, rounds: usize, resp3: bool) -> anyhow::Result<usize> {
    let url = if resp3 { format!("redis://{addr}/?protocol=resp3") } else { format!("redis://{addr}/") };
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    if resp3 {
        let info: String = redis::cmd("CLIENT").arg("INFO").query_async(&mut con).await?;
        anyhow::ensure!(info.contains(" resp=3"), "the server does not see a RESP3 client: {info}");
    }
    let mut checked = 0usize;
    for round in 0..rounds {
        let mut pipe = redis::pipe();
        for i in 0..20 {
            let key = format!("c{id}:k{i}");
            pipe.cmd("SET")
                .arg(&key)
                .arg(format!("v{round}-{i}"))
                .cmd("GET")
                .arg(&key)
                .cmd("INCR")
                .arg(format!("c{id}:n"))
                .cmd("ECHO")
                .arg(format!("e{round}-{i}"));
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut con).await?;
        anyhow::ensure!(replies.len() == 80, "round {round}: {} replies for 80 commands", replies.len());
        for i in 0..20 {
            let r = &replies[i * 4..i * 4 + 4];
            anyhow::ensure!(matches!(&r[0], redis::Value::Okay), "SET reply {:?}", r[0]);
            let get: String = redis::from_redis_value(r[1].clone())?;
            anyhow::ensure!(get == format!("v{round}-{i}"), "GET reply {get:?} for round {round} key {i}");
            let n: i64 = redis::from_redis_value(r[2].clone())?;
            anyhow::ensure!(n == (round * 20 + i + 1) as i64, "INCR reply {n}, expected {}", round * 20 + i + 1);
            let e: String = redis::from_redis_value(r[3].clone())?;
            anyhow::ensure!(e == format!("e{round}-{i}"), "ECHO reply {e:?}");
            checked += 4;
        }
        // 40–130 ms of silence: the filter's 50 ms read-idle fires in most gaps.
        tokio::time::sleep(Duration::from_millis(40 + (round as u64 * 37) % 90)).await;
    }
    Ok(checked)
}

/// `clients` checking clients, 40 rounds each, through Envoy with the filter pinging hard in front of a real
/// redis-server; returns the replies checked and the filter's stats afterwards.
async fn checked_through_the_filter(
    clients: usize,
    resp3: bool,
) -> anyhow::Result<(usize, std::collections::BTreeMap<String, i64>)> {
    let mode = common::mode().await;
    let redis = Upstream::redis(mode, &[]).await?;
    let envoy = envoy_for(mode, redis.port, &[Setup::Filter], &hard_pinging()).await?;
    let addr = envoy.listener(Setup::Filter.listener());
    let results = futures::future::join_all((0..clients).map(|id| checking_client(addr, id, 40, resp3))).await;
    let mut checked = 0;
    for r in results {
        checked += r.map_err(|e| envoy.explain(e))?;
    }
    Ok((checked, envoy.filter_stats().await?))
}

#[test]
fn pipelined_replies_match_their_requests_while_pings_are_injected() -> anyhow::Result<()> {
    common::run(pipelined_replies_match_their_requests_while_pings_are_injected_case())
}

async fn pipelined_replies_match_their_requests_while_pings_are_injected_case() -> anyhow::Result<()> {
    let (checked, stats) = checked_through_the_filter(4, false).await?;
    eprintln!("redis-rs: {checked} replies checked; filter stats {stats:?}");
    assert_eq!(checked, 4 * 40 * 80);
    let injected = metrics::get(&stats, metrics::PINGS_INJECTED)?;
    assert!(injected >= 20, "PINGs should land in the idle gaps between pipelines; stats {stats:?}");
    Ok(())
}

/// The same with RESP3 clients (`HELLO 3`, as go-redis v9 and Lettuce send by default): the filter follows
/// RESP3 replies, injects PINGs in the gaps, strips their PONGs, and never gives up on the connection.
#[test]
fn resp3_clients_get_every_reply_while_pings_are_injected() -> anyhow::Result<()> {
    common::run(resp3_clients_get_every_reply_while_pings_are_injected_case())
}

async fn resp3_clients_get_every_reply_while_pings_are_injected_case() -> anyhow::Result<()> {
    let (checked, stats) = checked_through_the_filter(2, true).await?;
    eprintln!("redis-rs RESP3: {checked} replies checked; filter stats {stats:?}");
    assert_eq!(checked, 2 * 40 * 80);
    assert_eq!(metrics::get(&stats, metrics::PROTOCOL_ERRORS)?, 0, "RESP3 passed through: {stats:?}");
    assert!(metrics::get(&stats, metrics::PINGS_INJECTED)? >= 10, "too few PINGs injected: {stats:?}");
    assert!(metrics::get(&stats, metrics::PONGS_STRIPPED)? >= 10, "too few PONGs stripped: {stats:?}");
    Ok(())
}

/// redis-benchmark (an outside client, with pipelining) through the filter while a checking client runs
/// beside it: zero errors, every checked reply right, and afterwards the counters add up.
#[test]
fn redis_benchmark_through_the_filter_has_zero_errors_and_counters_add_up() -> anyhow::Result<()> {
    common::run(redis_benchmark_through_the_filter_has_zero_errors_and_counters_add_up_case())
}

async fn redis_benchmark_through_the_filter_has_zero_errors_and_counters_add_up_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let redis = Upstream::redis(mode, &[]).await?;
    let envoy = envoy_for(mode, redis.port, &[Setup::Filter], &hard_pinging()).await?;
    let addr = envoy.listener(Setup::Filter.listener());
    let bench = tokio::process::Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-n",
            "20000",
            "-c",
            "8",
            "-P",
            "16",
            "-r",
            "1000",
            "-t",
            "ping,set,get,incr,lpush,lpop,mset",
            "--csv",
        ])
        .output();
    let (bench, checked) = tokio::join!(bench, checking_client(addr, 99, 60, false));
    let bench =
        bench.map_err(|e| anyhow::anyhow!("cannot run redis-benchmark (envoy/bootstrap.sh installs it): {e}"))?;
    let out = format!("{}{}", String::from_utf8_lossy(&bench.stdout), String::from_utf8_lossy(&bench.stderr));
    eprintln!("redis-benchmark through the filter:\n{out}");
    // redis-benchmark 7 exits non-zero at the first error reply ("We now immediately exit on error").
    assert!(bench.status.success(), "redis-benchmark failed: {out}");
    assert!(!out.contains("ERR") && !out.contains("Error"), "errors in redis-benchmark output");
    assert!(out.lines().filter(|l| l.starts_with('"')).count() >= 8, "no result lines from redis-benchmark");
    assert_eq!(checked.map_err(|e| envoy.explain(e))?, 60 * 80);

    // Every connection is closed now; wait for the gauge to drain, then check the books balance.
    let stats = common::wait_stats(&envoy, Duration::from_secs(5), |s| s.get(metrics::MONITORED) == Some(&0)).await?;
    eprintln!("filter stats after redis-benchmark: {stats:?}");
    assert_eq!(metrics::get(&stats, metrics::MONITORED)?, 0, "connections still monitored: {stats:?}");
    metrics::check_consistent(&stats)?;
    assert!(metrics::get(&stats, metrics::PINGS_INJECTED)? > 0, "no PING injected: {stats:?}");
    Ok(())
}

/// Idle-reaper story with the real client: Redis reaps connections idle for 3 s; with the filter's 1 s
/// write-idle keepalive, a pooled redis-rs connection that sat idle for 6 s still answers.
#[test]
fn pooled_connection_survives_the_server_idle_reaper() -> anyhow::Result<()> {
    common::run(pooled_connection_survives_the_server_idle_reaper_case())
}

async fn pooled_connection_survives_the_server_idle_reaper_case() -> anyhow::Result<()> {
    let mode = common::mode().await;
    let redis = Upstream::redis(mode, &["--timeout", "3"]).await?;
    let cfg = json!({"protocol": "redis", "read_idle_timeout": "10s", "ping_interval": "1s",
                     "max_missed_pongs": 3, "write_idle_keepalive": "1s"});
    let envoy = envoy_for(mode, redis.port, &[Setup::Filter, Setup::Alone], &cfg).await?;
    let mut with = redis::Client::open(format!("redis://{}/", envoy.listener(Setup::Filter.listener())))?
        .get_multiplexed_async_connection()
        .await?;
    let mut without = redis::Client::open(format!("redis://{}/", envoy.listener(Setup::Alone.listener())))?
        .get_multiplexed_async_connection()
        .await?;
    let _: () = redis::cmd("SET").arg("k").arg("before").query_async(&mut with).await?;
    let _: () = redis::cmd("SET").arg("k2").arg("before").query_async(&mut without).await?;
    let idle_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after: String = redis::cmd("GET").arg("k").query_async(&mut with).await.map_err(|e| envoy.explain(e.into()))?;
    assert_eq!(after, "before");
    let reaped = redis::cmd("GET").arg("k2").query_async::<String>(&mut without).await;
    assert!(reaped.is_err(), "the baseline connection survived {:?} idle: is the reaper on?", idle_from.elapsed());
    let stats = envoy.filter_stats().await?;
    assert!(metrics::get(&stats, metrics::KEEPALIVE_PINGS)? >= 3, "{stats:?}");
    Ok(())
}
