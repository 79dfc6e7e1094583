//! `make bench`: bulk throughput through real Envoy with and without the heartbeat filter, printed as
//! MB/s and the filter/no-filter ratio (a benchmark prints ratios; it asserts nothing about speed).
//! Workloads: framed echo (1 MiB frames both ways) and NATS publish (16 KiB messages).
//! BENCH_MB sets the megabytes per run (default 128); each setup runs 3 times, best kept.

use heartbeat_envoy_tests::faults::{envoy_for, filter_config, Setup};
use heartbeat_envoy_tests::framed_echo::{self, FramedEcho};
use heartbeat_envoy_tests::{Mode, Upstream};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RUNS: usize = 3;

async fn framed_run(addr: SocketAddr, total: usize) -> anyhow::Result<Duration> {
    let conn = tokio::net::TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let (mut rd, mut wr) = conn.into_split();
    let frame = framed_echo::frame(&vec![0x5au8; 1 << 20]);
    let frames = total / frame.len() + 1;
    let expect = frames * frame.len();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..frames {
            wr.write_all(&frame).await?;
        }
        anyhow::Ok(wr)
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0usize;
    while got < expect {
        let n = rd.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "EOF after {got} of {expect} bytes");
        got += n;
    }
    let elapsed = start.elapsed();
    let _ = writer.await??;
    Ok(elapsed)
}

async fn nats_run(addr: SocketAddr, total: usize) -> anyhow::Result<Duration> {
    let client = async_nats::connect(format!("nats://{addr}")).await?;
    let payload = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
    let n = total / payload.len();
    let start = Instant::now();
    for _ in 0..n {
        client.publish("bench", payload.clone()).await?;
    }
    client.flush().await?;
    Ok(start.elapsed())
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::var("BENCH_MB").ok().and_then(|s| s.parse().ok()).unwrap_or(128) << 20;
    let mode = Mode::ready().await?;
    let setups = [Setup::Alone, Setup::Filter];
    println!("throughput through Envoy 1.40 ({mode:?} mode), {} MB per run, best of {RUNS}", total >> 20);
    println!("{:<28} {:>14} {:>14} {:>8}", "workload", "no filter MB/s", "filter MB/s", "ratio");

    let echo = FramedEcho::spawn(framed_echo::Options::default()).await?;
    let envoy = envoy_for(mode, echo.port, &setups, &filter_config("framed", "30s")).await?;
    let mut best = [f64::MIN; 2];
    for _ in 0..RUNS {
        for (i, s) in setups.iter().enumerate() {
            let d = framed_run(envoy.listener(s.listener()), total).await?;
            best[i] = best[i].max(mbps(total, d));
        }
    }
    println!("{:<28} {:>14.1} {:>14.1} {:>8.2}", "framed echo, 1 MiB frames", best[0], best[1], best[1] / best[0]);
    drop(envoy);

    let nats = Upstream::nats(mode).await?;
    let envoy = envoy_for(mode, nats.port, &setups, &filter_config("nats", "30s")).await?;
    let mut best = [f64::MIN; 2];
    for _ in 0..RUNS {
        for (i, s) in setups.iter().enumerate() {
            let d = nats_run(envoy.listener(s.listener()), total).await?;
            best[i] = best[i].max(mbps(total, d));
        }
    }
    println!("{:<28} {:>14.1} {:>14.1} {:>8.2}", "NATS publish, 16 KiB", best[0], best[1], best[1] / best[0]);
    Ok(())
}
