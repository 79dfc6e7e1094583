//! What an operator pays in real Envoy for heartbeat's timers: 10,000 idle monitored NATS connections through
//! one Envoy worker, Envoy's RSS and CPU over a window, with heartbeat vs a no-op wasm filter vs Envoy alone.
//!
//! Usage: `idle-bench [--quick] [--connections N] [--secs S] [--settle S] [--noop-wasm PATH]`
//! (env `IDLE_BENCH_SECS`, default 60; `IDLE_BENCH_CONNECTIONS`, default 10000; `--quick`: a 5 s window).
//! Envoy runs as a process from `.venv` (`make deps`) unless `HEARTBEAT_ENVOY_MODE` says otherwise; heartbeat
//! is `target/heartbeat.wasm` (`make build`), the no-op filter `target/ablation/noop.wasm` (the filter crate
//! built with `--features ablate-noop`) or `--noop-wasm`.
//!
//! The three Envoys, each with its own nats-server, run side by side and are measured in the same window:
//! whatever else the shared machine does weighs on all three alike (CPU is each process's own utime + stime,
//! so the contention shows as noise, not as a bias between them), and one window costs a third of three.
//!
//! Writes `target/bench/idle.md` and prints it. Fails (non-zero exit, no fragment) if a connection cannot be
//! opened, if the filter does not monitor every connection, if any connection is closed or receives a byte it
//! did not ask for, or if heartbeat did not ping every connection during the window.

use heartbeat_envoy_tests::config::Options;
use heartbeat_envoy_tests::idle_bench::client::{self, Remote};
use heartbeat_envoy_tests::idle_bench::report::{thousands, Report, Row};
use heartbeat_envoy_tests::idle_bench::{
    noop_wasm_candidates, open_fds, raise_nofile, sample, Variant, NOOP_BUILD, PER_CLUSTER,
};
use heartbeat_envoy_tests::soak::memory::Source;
use heartbeat_envoy_tests::{
    filter_config, metrics, paths, ports, ClusterSpec, Envoy, EnvoyConfig, FilterSpec, ListenerSpec, Mode, Upstream,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Listener and cluster names: `idle0`, `idle1`, ... (see `PER_CLUSTER`).
fn name(i: usize) -> String {
    format!("idle{i}")
}

struct Args {
    connections: usize,
    /// `--connections` or `IDLE_BENCH_CONNECTIONS` given: never lowered to fit the open-file limit.
    connections_given: bool,
    window: Duration,
    settle: Duration,
    quick: bool,
    noop_wasm: Option<PathBuf>,
    parallel: usize,
}

fn env_num(name: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v.parse().map_err(|_| anyhow::anyhow!("{name}={v}: expected a number"))?)),
        Err(_) => Ok(None),
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        connections: env_num("IDLE_BENCH_CONNECTIONS")?.unwrap_or(10_000) as usize,
        connections_given: std::env::var_os("IDLE_BENCH_CONNECTIONS").is_some(),
        window: Duration::from_secs(env_num("IDLE_BENCH_SECS")?.unwrap_or(60)),
        settle: Duration::from_secs(10),
        quick: false,
        noop_wasm: None,
        parallel: 128,
    };
    let mut it = std::env::args().skip(1);
    let mut window_given = false;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| anyhow::anyhow!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--connections" => {
                a.connections = value("--connections")?.parse()?;
                a.connections_given = true;
            }
            "--secs" => {
                a.window = Duration::from_secs(value("--secs")?.parse()?);
                window_given = true;
            }
            "--settle" => a.settle = Duration::from_secs(value("--settle")?.parse()?),
            "--noop-wasm" => a.noop_wasm = Some(PathBuf::from(value("--noop-wasm")?)),
            "--parallel" => a.parallel = value("--parallel")?.parse()?,
            "-h" | "--help" => {
                println!(
                    "idle-bench [--quick] [--connections N] [--secs S] [--settle S] [--noop-wasm PATH] [--parallel K]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other} (try --help)"),
        }
    }
    if a.quick {
        if !window_given {
            a.window = Duration::from_secs(5);
        }
        a.settle = a.settle.min(Duration::from_secs(4));
    }
    anyhow::ensure!(a.connections > 0 && a.window >= Duration::from_secs(1), "need connections and a window");
    Ok(a)
}

fn noop_wasm(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        anyhow::ensure!(p.is_file(), "--noop-wasm {}: no such file", p.display());
        return Ok(p);
    }
    let candidates = noop_wasm_candidates();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no no-op filter build at {} (nor {}): build it with `{NOOP_BUILD}`, or pass --noop-wasm PATH",
            candidates[0].display(),
            candidates[1].display()
        )
    })
}

/// One Envoy of the bench, its nats-server and, once opened, its idle connections.
struct Bench {
    variant: Variant,
    listeners: usize,
    // Dropped in field order: the connections first, then Envoy, then the server.
    fleet: Option<Remote>,
    envoy: Envoy,
    _upstream: Upstream,
    pid: i32,
    nats_pid: Option<i32>,
    rss_empty: u64,
}

async fn start(
    mode: Mode,
    variant: Variant,
    noop: &Path,
    filter: &serde_json::Value,
    listeners: usize,
) -> anyhow::Result<Bench> {
    let upstream = Upstream::nats(mode).await?;
    let mut cfg = EnvoyConfig { admin_port: ports::free_port()?, listeners: Vec::new(), clusters: Vec::new() };
    for i in 0..listeners {
        cfg.listeners.push(ListenerSpec {
            name: name(i),
            port: ports::free_port()?,
            filter: (variant != Variant::Alone).then(|| FilterSpec::v8(filter.clone())),
            cluster: name(i),
        });
        cfg.clusters.push(ClusterSpec {
            name: name(i),
            upstream_port: upstream.port,
            tight_keepalive: false,
            user_timeout: None,
        });
    }
    let opts = Options {
        concurrency: Some(1),
        wasm: (variant == Variant::Noop).then(|| noop.to_path_buf()),
        ..Options::default()
    };
    let envoy = Envoy::start_with(mode, &cfg, &opts).await?;
    let pid = match Source::find(mode, &envoy)? {
        Source::Pid(pid) => pid,
        other => anyhow::bail!("{}: CPU time needs Envoy's pid, found only {}", variant.label(), other.describe()),
    };
    let nats_pid = sample::pid_of("nats-server", &upstream.port.to_string());
    Ok(Bench { variant, listeners, fleet: None, envoy, _upstream: upstream, pid, nats_pid, rss_empty: 0 })
}

/// `name` in `/stats`; `UPSTREAM_ACTIVE`: the upstream connections open, summed over the clusters.
async fn stat(b: &Bench, name: &str) -> anyhow::Result<i64> {
    let stats = b.envoy.stats().await?;
    if name == UPSTREAM_ACTIVE {
        return (0..b.listeners)
            .map(|i| metrics::get(&stats, &format!("cluster.{}.upstream_cx_active", self::name(i))))
            .sum();
    }
    metrics::get(&stats, name)
}
const UPSTREAM_ACTIVE: &str = "upstream_cx_active over the clusters";

/// Polls `/stats` until `name` equals `want`.
async fn wait_for(b: &Bench, name: &str, want: i64, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let now = stat(b, name).await.ok();
        if now == Some(want) {
            return Ok(());
        }
        if start.elapsed() > limit {
            anyhow::bail!("{}: {name} is {now:?} after {limit:?}, expected {want}", b.variant.label());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn filter_totals(stats: &BTreeMap<String, i64>) -> anyhow::Result<(i64, i64, i64)> {
    let f = |n: &str| metrics::get(stats, &format!("wasmcustom.{n}"));
    Ok((
        f(metrics::PINGS_INJECTED)? + f(metrics::KEEPALIVE_PINGS)?,
        f(metrics::PONGS_STRIPPED)?,
        f(metrics::DEAD_CLOSED)?,
    ))
}

fn check_fleet(b: &Bench) -> anyhow::Result<()> {
    let Some(fleet) = &b.fleet else { return Ok(()) };
    let (closed, unexpected) = (fleet.seen.closed(), fleet.seen.unexpected());
    if closed > 0 || unexpected > 0 {
        anyhow::bail!(
            "{}: {closed} of {} connections closed, {unexpected} received unexpected bytes; first: {}",
            b.variant.label(),
            fleet.len(),
            fleet.seen.first_problem().unwrap_or_default()
        );
    }
    Ok(())
}

fn cpu_ticks(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|p| sample::process(*p).ok()).map(|s| s.cpu_ticks).sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--client") {
        // A client process of this bench (see `client::Remote`): ADDR COUNT PARALLEL.
        let (addr, count, parallel) = match &argv[2..] {
            [a, c, p] => (
                a.split(',').map(str::parse).collect::<Result<Vec<std::net::SocketAddr>, _>>()?,
                c.parse()?,
                p.parse()?,
            ),
            _ => anyhow::bail!("--client ADDR COUNT PARALLEL"),
        };
        raise_nofile(count as u64 + 256)?;
        return client::serve(&addr, count, parallel).await;
    }
    let args = parse_args()?;
    let mut n = args.connections;
    let out = paths::repo_root().join("target").join("bench").join("idle.md");
    // A failed run must not leave an older run's figures for the report to include.
    let _ = std::fs::remove_file(&out);

    // Each Envoy holds 2 x n sockets, each nats-server and each client process n; children inherit the limit.
    let nofile = raise_nofile(2 * n as u64 + 1024)?;
    let mode = if std::env::var_os("HEARTBEAT_ENVOY_MODE").is_some() { Mode::ready().await? } else { Mode::Process };
    let heartbeat = paths::require_wasm()?;
    let noop = noop_wasm(args.noop_wasm.clone())?;
    let filter = filter_config("nats", "30s");
    println!(
        "idle bench: {} idle NATS connections through each of 3 Envoys ({mode:?} mode, --concurrency 1), window {:?}",
        thousands(n),
        args.window
    );
    println!("  heartbeat: {}\n  no-op:     {}\n  filter configuration: {filter}", heartbeat.display(), noop.display());

    let listeners = n.div_ceil(PER_CLUSTER);
    let mut benches = Vec::new();
    for v in Variant::ALL {
        benches.push(start(mode, v, &noop, &filter, listeners).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut envoy_fds = 0;
    for b in &mut benches {
        b.rss_empty = sample::process(b.pid)?.rss;
        envoy_fds = envoy_fds.max(open_fds(b.pid)?);
    }
    // Envoy needs two descriptors per connection (client side, upstream side) under the same limit.
    let fits = (nofile.saturating_sub(envoy_fds + 64) / 2) as usize;
    let mut note = None;
    if n > fits {
        let why = format!(
            "RLIMIT_NOFILE is {nofile} here and cannot be raised (no CAP_SYS_RESOURCE); Envoy holds {envoy_fds} \
             descriptors before any connection and 2 per connection"
        );
        anyhow::ensure!(!args.connections_given, "{n} connections do not fit through one Envoy: {why}");
        let capped = fits / 100 * 100;
        println!("  NOTE: {} connections do not fit; running {}: {why}", thousands(n), thousands(capped));
        note = Some(format!("{} connections wanted, {} run: {why}.", thousands(n), thousands(capped)));
        n = capped;
    }

    // One client process per Envoy (one process could not hold 3 x n sockets), all opening at once.
    let exe = std::env::current_exe()?;
    let t = Instant::now();
    for b in &mut benches {
        let addrs: Vec<_> = (0..b.listeners).map(|i| b.envoy.listener(&name(i))).collect();
        b.fleet = Some(Remote::spawn(&exe, &addrs, n, args.parallel)?);
    }
    for b in &mut benches {
        let fleet = b.fleet.as_mut().expect("spawned");
        fleet
            .ready()
            .await
            .map_err(|e| b.envoy.explain(e.context(format!("{}: opening connections", b.variant.label()))))?;
        println!("  {:<28} {} connections open and handshaken after {:.1?}", b.variant.label(), n, t.elapsed());
    }
    for b in &benches {
        wait_for(b, UPSTREAM_ACTIVE, n as i64, Duration::from_secs(60)).await.map_err(|e| b.envoy.explain(e))?;
        if b.variant == Variant::Heartbeat {
            let name = format!("wasmcustom.{}", metrics::MONITORED);
            wait_for(b, &name, n as i64, Duration::from_secs(60)).await.map_err(|e| b.envoy.explain(e))?;
            println!("  {:<28} {name} = {n}", b.variant.label());
        }
    }
    println!(
        "  settling {:?} (heartbeat's first PINGs go 2 s after each connection's last upstream byte)",
        args.settle
    );
    tokio::time::sleep(args.settle).await;
    for b in &benches {
        check_fleet(b)?;
    }

    // The window. /stats is read only at its edges: the admin endpoint costs Envoy CPU too.
    let hb = benches.iter().find(|b| b.variant == Variant::Heartbeat).expect("heartbeat bench");
    let hb_before = filter_totals(&hb.envoy.stats().await?)?;
    let pings_before: Vec<u64> =
        benches.iter().map(|b| b.fleet.as_ref().map(|f| f.seen.server_pings()).unwrap_or(0)).collect();
    let mut ours: Vec<i32> =
        benches.iter().flat_map(|b| [Some(b.pid), b.nats_pid, b.fleet.as_ref().map(|f| f.pid)]).flatten().collect();
    ours.push(std::process::id() as i32);
    let load_before = sample::load_average();
    let machine_before = sample::machine()?;
    let ours_before = cpu_ticks(&ours);
    let before: Vec<sample::ProcSample> = benches.iter().map(|b| sample::process(b.pid)).collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); benches.len()];
    while started.elapsed() < args.window {
        let left = args.window.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        for (i, b) in benches.iter().enumerate() {
            rss[i].push(sample::process(b.pid)?.rss);
            check_fleet(b)?;
        }
    }
    let after: Vec<sample::ProcSample> = benches.iter().map(|b| sample::process(b.pid)).collect::<Result<_, _>>()?;
    let window_s = started.elapsed().as_secs_f64();
    let ours_after = cpu_ticks(&ours);
    let machine_after = sample::machine()?;
    let load_after = sample::load_average();

    // Everything still open, still monitored, nothing closed as dead, every connection pinged.
    for b in &benches {
        check_fleet(b)?;
        wait_for(b, UPSTREAM_ACTIVE, n as i64, Duration::from_secs(1)).await.map_err(|e| b.envoy.explain(e))?;
    }
    let hb_stats = hb.envoy.stats().await?;
    let monitored = metrics::get(&hb_stats, &format!("wasmcustom.{}", metrics::MONITORED))?;
    let hb_after = filter_totals(&hb_stats)?;
    let (pings, stripped, dead) = (hb_after.0 - hb_before.0, hb_after.1 - hb_before.1, hb_after.2 - hb_before.2);
    anyhow::ensure!(monitored == n as i64, "heartbeat monitors {monitored} connections after the window, not {n}");
    anyhow::ensure!(dead == 0, "heartbeat closed {dead} connections as dead during the window");
    if window_s >= 3.0 {
        anyhow::ensure!(
            pings >= n as i64 && stripped > 0,
            "heartbeat sent {pings} PINGs and stripped {stripped} PONGs in {window_s:.1} s: with read idle 2 s every \
             one of the {n} connections should have been pinged"
        );
    }

    let hz = sample::ticks_per_second() as f64;
    let rows: Vec<Row> = benches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut s = rss[i].clone();
            s.sort_unstable();
            Row {
                variant: b.variant,
                rss_empty: b.rss_empty,
                rss: s.get(s.len() / 2).copied().unwrap_or(after[i].rss),
                cpu_s: after[i].cpu_ticks.saturating_sub(before[i].cpu_ticks) as f64 / hz,
            }
        })
        .collect();
    let (busy, total) =
        (machine_after.0.saturating_sub(machine_before.0), machine_after.1.saturating_sub(machine_before.1).max(1));
    let ours_ticks = ours_after.saturating_sub(ours_before);
    let report = Report {
        connections: n,
        window_s,
        quick: args.quick,
        mode: format!("{mode:?}").to_lowercase(),
        rows,
        pings,
        pongs_stripped: stripped,
        server_pings: benches
            .iter()
            .zip(&pings_before)
            .map(|(b, p0)| b.fleet.as_ref().map(|f| f.seen.server_pings()).unwrap_or(0) - p0)
            .collect(),
        machine: sample::describe_machine(),
        machine_busy_pct: 100.0 * busy as f64 / total as f64,
        others_pct: 100.0 * busy.saturating_sub(ours_ticks) as f64 / total as f64,
        load_before,
        load_after,
        filter_config: filter.to_string(),
        note,
        listeners,
    };
    let md = report.markdown();
    std::fs::create_dir_all(out.parent().expect("target/bench"))?;
    std::fs::write(&out, &md)?;
    println!("\n{md}\nwrote {}", out.display());
    drop(benches);
    Ok(())
}
