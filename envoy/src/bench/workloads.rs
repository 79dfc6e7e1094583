//! The workloads, each a trial of about `secs` seconds against one Envoy listener, measured from the client:
//! redis-benchmark (a real Redis load generator, its `--csv` output parsed), NATS with the `async-nats` client
//! (publishes, and request/reply latency), and 1 MiB frames through the framed echo server. A trial that
//! completes nothing is an error: a broken workload must fail the bench, never show up as a slow one.

use super::setups::Proto;
use crate::framed_echo;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one trial measured.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Throughput in the workload's unit (requests/s, messages/s, MB/s).
    pub rate: f64,
    /// Latency percentiles in milliseconds, where the workload has them.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// redis-benchmark GET, 20 clients, no pipeline.
    RedisGet,
    /// redis-benchmark SET of 3 bytes, 20 clients, pipeline 32.
    RedisSetSmall,
    /// redis-benchmark SET of 16 KiB, 10 clients, pipeline 8.
    RedisSetLarge,
    /// NATS publishes of 128 bytes, one async-nats client.
    NatsPubSmall,
    /// NATS publishes of 16 KiB.
    NatsPubLarge,
    /// NATS request/reply, 128 bytes, one request at a time; a responder connected to nats-server directly.
    NatsRequest,
    /// 1 MiB frames echoed by the framed echo server, written and read at once on one connection.
    FramedEcho,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::RedisGet,
        Workload::RedisSetSmall,
        Workload::RedisSetLarge,
        Workload::NatsPubSmall,
        Workload::NatsPubLarge,
        Workload::NatsRequest,
        Workload::FramedEcho,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::RedisGet => "redis-get",
            Workload::RedisSetSmall => "redis-set-3b-p32",
            Workload::RedisSetLarge => "redis-set-16k-p8",
            Workload::NatsPubSmall => "nats-pub-128b",
            Workload::NatsPubLarge => "nats-pub-16k",
            Workload::NatsRequest => "nats-request",
            Workload::FramedEcho => "framed-echo-1m",
        }
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    pub fn label(self) -> &'static str {
        match self {
            Workload::RedisGet => "redis-benchmark GET, 20 clients, no pipeline",
            Workload::RedisSetSmall => "redis-benchmark SET 3 B, 20 clients, pipeline 32",
            Workload::RedisSetLarge => "redis-benchmark SET 16 KiB, 10 clients, pipeline 8",
            Workload::NatsPubSmall => "NATS publish 128 B, 1 client",
            Workload::NatsPubLarge => "NATS publish 16 KiB, 1 client",
            Workload::NatsRequest => "NATS request/reply 128 B, 1 at a time",
            Workload::FramedEcho => "framed echo, 1 MiB frames",
        }
    }

    /// A label short enough for the plot.
    pub fn short(self) -> &'static str {
        match self {
            Workload::RedisGet => "GET",
            Workload::RedisSetSmall => "SET 3B",
            Workload::RedisSetLarge => "SET 16K",
            Workload::NatsPubSmall => "PUB 128B",
            Workload::NatsPubLarge => "PUB 16K",
            Workload::NatsRequest => "REQ/REP",
            Workload::FramedEcho => "ECHO 1M",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Workload::RedisGet | Workload::RedisSetSmall | Workload::RedisSetLarge => "requests/s",
            Workload::NatsPubSmall | Workload::NatsPubLarge => "messages/s",
            Workload::NatsRequest => "requests/s",
            Workload::FramedEcho => "MB/s",
        }
    }

    pub fn proto(self) -> Proto {
        match self {
            Workload::RedisGet | Workload::RedisSetSmall | Workload::RedisSetLarge => Proto::Redis,
            Workload::NatsPubSmall | Workload::NatsPubLarge | Workload::NatsRequest => Proto::Nats,
            Workload::FramedEcho => Proto::Framed,
        }
    }

    /// The workloads whose per-chunk cost the ablation prices (every Envoy variant runs them).
    pub fn ablated(self) -> bool {
        self.proto() == Proto::Redis
    }

    fn redis_args(self) -> Option<(&'static str, u32, u32, usize)> {
        match self {
            Workload::RedisGet => Some(("get", 20, 1, 3)),
            Workload::RedisSetSmall => Some(("set", 20, 32, 3)),
            Workload::RedisSetLarge => Some(("set", 10, 8, 16 * 1024)),
            _ => None,
        }
    }

    /// redis-benchmark runs a number of requests, not a duration: the requests of a short first trial.
    fn redis_probe_requests(self) -> u64 {
        match self {
            Workload::RedisGet => 10_000,
            Workload::RedisSetSmall => 100_000,
            _ => 10_000,
        }
    }
}

/// How long trials last, and what redis-benchmark was told to do to last that long (set by the warm-up).
#[derive(Clone, Debug)]
pub struct Trial {
    pub secs: f64,
    /// requests per redis-benchmark run; `None` until calibrated (the warm-up runs the probe count).
    pub redis_requests: Option<u64>,
}

impl Trial {
    /// After the warm-up: as many requests as the fastest setup does in `secs`.
    pub fn calibrate(&mut self, warmup_rates: &[f64]) {
        let best = warmup_rates.iter().copied().fold(0.0, f64::max);
        self.redis_requests = Some(((best * self.secs) as u64).max(1000));
    }
}

/// Runs one trial of `w` against `addr` (an Envoy listener).
pub async fn run(w: Workload, addr: SocketAddr, trial: &Trial) -> anyhow::Result<Sample> {
    let secs = Duration::from_secs_f64(trial.secs);
    let sample = match w {
        Workload::RedisGet | Workload::RedisSetSmall | Workload::RedisSetLarge => {
            redis_benchmark(w, addr, trial.redis_requests.unwrap_or(w.redis_probe_requests())).await?
        }
        Workload::NatsPubSmall => nats_publish(addr, 128, secs).await?,
        Workload::NatsPubLarge => nats_publish(addr, 16 * 1024, secs).await?,
        Workload::NatsRequest => nats_request(addr, secs).await?,
        Workload::FramedEcho => framed_echo(addr, secs).await?,
    };
    anyhow::ensure!(sample.rate > 0.0 && sample.rate.is_finite(), "{}: nothing completed ({sample:?})", w.name());
    Ok(sample)
}

/// The redis-benchmark binary: on PATH (Debian's redis-tools, installed by `make deps`).
fn redis_benchmark_bin() -> String {
    std::env::var("REDIS_BENCHMARK").unwrap_or_else(|_| "redis-benchmark".into())
}

/// redis-benchmark's version line, for the report.
pub fn redis_benchmark_version() -> String {
    std::process::Command::new(redis_benchmark_bin())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("redis-benchmark not runnable: {e}"))
}

/// Fills the keys redis-benchmark's GET reads, so that GET returns a value (3 bytes) rather than nil.
pub async fn redis_fill(upstream: SocketAddr) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(redis_benchmark_bin())
        .args(["-h", &upstream.ip().to_string(), "-p", &upstream.port().to_string()])
        .args(["-t", "set", "-n", "1000", "-c", "1", "-d", "3", "--csv"])
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "redis-benchmark fill failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

async fn redis_benchmark(w: Workload, addr: SocketAddr, requests: u64) -> anyhow::Result<Sample> {
    let (test, clients, pipeline, size) = w.redis_args().expect("a redis workload");
    let mut cmd = tokio::process::Command::new(redis_benchmark_bin());
    cmd.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-t", test, "-c", &clients.to_string(), "-P", &pipeline.to_string(), "-d", &size.to_string()])
        .args(["-n", &requests.to_string(), "--csv"])
        .kill_on_drop(true);
    let limit = Duration::from_secs(120);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("redis-benchmark {test} did not finish within {limit:?}"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "redis-benchmark {test} failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_redis_csv(&stdout).ok_or_else(|| anyhow::anyhow!("redis-benchmark {test}: no result in {stdout:?}"))
}

/// redis-benchmark 7's `--csv`: a header line, then `"SET","427350.44","1.266","0.080","0.471",...`
/// (test, rps, avg, min, p50, p95, p99, max; milliseconds).
pub fn parse_redis_csv(out: &str) -> Option<Sample> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = split_csv(lines.next()?);
    let row: Vec<String> = split_csv(lines.next_back()?);
    let field = |name: &str| -> Option<f64> {
        let i = header.iter().position(|h| h == name)?;
        row.get(i)?.parse().ok()
    };
    Some(Sample { rate: field("rps")?, p50_ms: field("p50_latency_ms"), p99_ms: field("p99_latency_ms") })
}

fn split_csv(line: &str) -> Vec<String> {
    line.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect()
}

async fn nats_publish(addr: SocketAddr, size: usize, secs: Duration) -> anyhow::Result<Sample> {
    let client = async_nats::connect(format!("nats://{addr}")).await?;
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < secs {
        for _ in 0..64 {
            client.publish("bench.pub", payload.clone()).await?;
        }
        sent += 64;
    }
    // Every message has reached nats-server (through Envoy) once the flush's PING is answered.
    client.flush().await?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Sample { rate: sent as f64 / elapsed, p50_ms: None, p99_ms: None })
}

/// The responder of the request/reply workload, connected to nats-server directly: it answers every request
/// on `bench.echo` with its payload.
pub struct Responder {
    _client: async_nats::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Responder {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Responder> {
        use futures::StreamExt;
        let client = async_nats::connect(format!("nats://{upstream}")).await?;
        let mut sub = client.subscribe("bench.echo").await?;
        client.flush().await?;
        let c = client.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Some(reply) = msg.reply {
                    let _ = c.publish(reply, msg.payload).await;
                }
            }
        });
        Ok(Responder { _client: client, task })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn nats_request(addr: SocketAddr, secs: Duration) -> anyhow::Result<Sample> {
    let client = async_nats::connect(format!("nats://{addr}")).await?;
    let payload = bytes::Bytes::from(vec![b'r'; 128]);
    // One request first: the reply subscription's set-up is not part of the figures.
    client.request("bench.echo", payload.clone()).await?;
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < secs {
        let t = Instant::now();
        let reply = client.request("bench.echo", payload.clone()).await?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(reply.payload.len() == payload.len(), "a reply of {} bytes", reply.payload.len());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = latencies.len() as f64 / elapsed;
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(Sample { rate, p50_ms: percentile(&latencies, 0.50), p99_ms: percentile(&latencies, 0.99) })
}

/// The `q` quantile of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// 1 MiB frames written as fast as Envoy takes them for `secs`, while their echoes are read; the figure is the
/// echoed megabytes per second, up to the last echoed byte.
async fn framed_echo(addr: SocketAddr, secs: Duration) -> anyhow::Result<Sample> {
    let conn = tokio::net::TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let (mut rd, mut wr) = conn.into_split();
    let frame = framed_echo::frame(&vec![0x5au8; 1 << 20]);
    let written = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let writer = {
        let (written, done) = (written.clone(), done.clone());
        tokio::spawn(async move {
            while start.elapsed() < secs {
                wr.write_all(&frame).await?;
                written.fetch_add(frame.len() as u64, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
            anyhow::Ok(wr)
        })
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    let limit = secs + Duration::from_secs(30);
    loop {
        if done.load(Ordering::SeqCst) && got >= written.load(Ordering::SeqCst) {
            break;
        }
        anyhow::ensure!(start.elapsed() < limit, "echo incomplete after {limit:?}: {got} bytes back");
        match tokio::time::timeout(Duration::from_millis(50), rd.read(&mut buf)).await {
            Ok(n) => {
                let n = n?;
                anyhow::ensure!(n > 0, "EOF after {got} echoed bytes");
                got += n as u64;
            }
            Err(_) => continue,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _wr = writer.await??;
    Ok(Sample { rate: got as f64 / 1e6 / elapsed, p50_ms: None, p99_ms: None })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_redis_benchmark_csv() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\
                   \"p99_latency_ms\",\"max_latency_ms\"\n\"GET\",\"38314.18\",\"0.371\",\"0.024\",\"0.135\",\
                   \"0.799\",\"5.367\",\"35.231\"\n";
        let s = super::parse_redis_csv(out).unwrap();
        assert_eq!(s.rate, 38314.18);
        assert_eq!(s.p50_ms, Some(0.135));
        assert_eq!(s.p99_ms, Some(5.367));
        assert!(super::parse_redis_csv("").is_none());
    }
}
