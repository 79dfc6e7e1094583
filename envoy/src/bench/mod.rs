//! `make bench`: what the filter costs on the data path, through real Envoy 1.40.
//!
//! One Envoy per setup (`setups`), side by side in process mode with one worker each, in front of the same
//! redis-server, nats-server and framed echo server. Each workload (`workloads`) runs in interleaved rounds
//! (A B C, B C A, C A B, ...: every setup sees the same machine weather), after one warm-up trial per setup that
//! is not counted. Every round is kept (`target/bench/results.json`) so that the report (`report`) shows the
//! spread, and figures are ratios against the no-op wasm filter of the same round, never absolute times alone.
//!
//! With `--ablation` the Redis workloads also run the filter's ablation builds (`target/ablation/*.wasm`, from
//! `make ablation`), which stop after each step of the per-chunk work, so that each step has a price.
//!
//! Nothing here asserts anything about speed; a workload that completes nothing is an error.

pub mod plot;
pub mod report;
pub mod setups;
pub mod workloads;

use crate::framed_echo::{self, FramedEcho};
use crate::mode::Mode;
use crate::upstream::Upstream;
use serde::{Deserialize, Serialize};
use setups::{Bench, Upstreams, Variant};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use workloads::{Responder, Sample, Trial, Workload};

/// What a run measures.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Seconds per trial.
    pub secs: f64,
    /// Counted rounds per workload (after the warm-up).
    pub rounds: usize,
    /// Run the ablation builds on the Redis workloads.
    pub ablation: bool,
    /// Only these workloads (all when empty).
    pub only: Vec<Workload>,
}

/// One setup's trials of one workload, a sample per round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Series {
    pub variant: String,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadResult {
    pub workload: String,
    pub series: Vec<Series>,
}

/// The machine the figures were taken on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub envoy: String,
    pub redis_benchmark: String,
    pub nats_server: String,
    pub load_before: String,
    pub load_after: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub started: String,
    pub secs: f64,
    pub rounds: usize,
    pub ablation: bool,
    pub machine: Machine,
    pub workloads: Vec<WorkloadResult>,
}

impl Results {
    pub fn series(&self, w: Workload, v: Variant) -> Option<&Series> {
        self.workloads
            .iter()
            .find(|r| r.workload == w.name())
            .and_then(|r| r.series.iter().find(|s| s.variant == v.name()))
    }
}

/// `target/bench/`: the results, and the markdown fragments other benchmarks leave for the report.
pub fn bench_dir() -> PathBuf {
    crate::paths::repo_root().join("target").join("bench")
}

pub fn results_path() -> PathBuf {
    bench_dir().join("results.json")
}

/// Process mode unless `HEARTBEAT_ENVOY_MODE` says otherwise: the figures are Envoy's, not Docker's.
async fn mode() -> anyhow::Result<Mode> {
    if std::env::var_os("HEARTBEAT_ENVOY_MODE").is_none() {
        return Ok(Mode::Process);
    }
    Mode::ready().await
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn command_line(program: &std::path::Path, arg: &str) -> String {
    std::process::Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|e| format!("not runnable: {e}"))
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let envoy = command_line(&crate::paths::envoy_bin(), "--version");
    let envoy = envoy.split("version: ").nth(1).unwrap_or(&envoy).to_string();
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        envoy,
        redis_benchmark: workloads::redis_benchmark_version(),
        nats_server: command_line(&crate::paths::tool("nats-server"), "--version"),
        load_before: load_average(),
        load_after: String::new(),
    }
}

fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Runs every workload and returns every round of every setup.
pub async fn measure(opts: &RunOptions) -> anyhow::Result<Results> {
    let mode = mode().await?;
    let mut machine = machine();
    let started = now_utc();
    let redis = Upstream::redis(mode, &[]).await?;
    let nats = Upstream::nats(mode).await?;
    let echo = FramedEcho::spawn(framed_echo::Options::default()).await?;
    let ups = Upstreams { redis: redis.port, nats: nats.port, framed: echo.port };
    let direct = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    let variants: &[Variant] = if opts.ablation { &Variant::ABLATION } else { &Variant::MAIN };
    let mut envoys = BTreeMap::new();
    for &v in variants {
        println!("starting Envoy for {} ...", v.label());
        envoys.insert(v, Bench::start(mode, v, &ups).await?);
    }
    wait_for_port(direct(ups.redis)).await?;
    wait_for_port(direct(ups.nats)).await?;
    workloads::redis_fill(direct(ups.redis)).await?;
    let _responder = Responder::start(direct(ups.nats)).await?;

    let mut results = Vec::new();
    let chosen: Vec<Workload> =
        Workload::ALL.into_iter().filter(|w| opts.only.is_empty() || opts.only.contains(w)).collect();
    for w in chosen {
        let setups: Vec<Variant> =
            if opts.ablation && w.ablated() { Variant::ABLATION.to_vec() } else { Variant::MAIN.to_vec() };
        let mut trial = Trial { secs: opts.secs, redis_requests: None };
        println!(
            "\n{} ({}), {} setups, {} rounds of {:.0} s",
            w.label(),
            w.unit(),
            setups.len(),
            opts.rounds,
            opts.secs
        );
        // Warm-up (not counted): JIT, connection pools, page cache; calibrates redis-benchmark's request count.
        let mut warm = Vec::new();
        for v in &setups {
            let b = &envoys[v];
            let s = workloads::run(w, b.addr(w.proto()), &trial).await.map_err(|e| b.envoy.explain(e))?;
            warm.push(s.rate);
        }
        trial.calibrate(&warm);
        let mut samples: BTreeMap<Variant, Vec<Sample>> = BTreeMap::new();
        for round in 0..opts.rounds {
            let mut line = format!("  round {}:", round + 1);
            for i in 0..setups.len() {
                let v = setups[(i + round) % setups.len()];
                let b = &envoys[&v];
                let s = workloads::run(w, b.addr(w.proto()), &trial)
                    .await
                    .map_err(|e| b.envoy.explain(e.context(format!("{} through {}", w.name(), v.label()))))?;
                line.push_str(&format!(" {}={:.0}", v.name(), s.rate));
                if let Some(p99) = s.p99_ms {
                    line.push_str(&format!("/p99 {p99:.2}ms"));
                }
                samples.entry(v).or_default().push(s);
            }
            println!("{line}");
        }
        results.push(WorkloadResult {
            workload: w.name().into(),
            series: setups
                .iter()
                .map(|v| Series { variant: v.name().into(), samples: samples.remove(v).unwrap_or_default() })
                .collect(),
        });
    }
    machine.load_after = load_average();
    Ok(Results { started, secs: opts.secs, rounds: opts.rounds, ablation: opts.ablation, machine, workloads: results })
}

async fn wait_for_port(addr: SocketAddr) -> anyhow::Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("nothing listens on {addr} after 10 s")
}

pub fn save(results: &Results) -> anyhow::Result<PathBuf> {
    let path = results_path();
    std::fs::create_dir_all(bench_dir())?;
    std::fs::write(&path, serde_json::to_string_pretty(results)?)?;
    Ok(path)
}

pub fn load() -> anyhow::Result<Results> {
    let path = results_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e} (run the bench first: `make bench`)", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}
