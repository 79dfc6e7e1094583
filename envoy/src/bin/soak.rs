//! `make soak` (10 min) and `make soak-smoke` (1 min): the filter in real Envoy 1.40 with two workers, under
//! thousands of connections over NATS, Redis and framed listeners that open, work (every reply checked byte
//! for byte), idle long enough to be PINGed, and close; meanwhile one upstream per protocol is frozen and
//! thawed at random (docker pause / SIGSTOP), while a second instance of each stays healthy.
//!
//! Checks: every connection to a healthy upstream survives with exact replies; every connection watched
//! when its upstream froze is closed within `max(read_idle + max_missed × interval, reply_timeout) + tick +
//! SLACK` of the later of the freeze and its last request (the filter's two bounds: nothing owed, a reply
//! owed); no close while an upstream is not frozen; `dead_closed` equals the closes the clients saw; at the
//! end `connections_monitored` is 0 and `pings_injected + keepalive_pings = pongs_stripped +
//! pings_unanswered`; no protocol error; Envoy's RSS and the filter's wasm heap flat (first third against
//! last third of the run). Exit status 1 with every failure listed; a seed replays the same choices.
//!
//! Usage: soak [--duration SECS] [--seed N] [--slots PER_GROUP] [--redis-keepalive-ms MS]
//!        (defaults 600 s, a clock seed, 16, no keepalive on the Redis listeners)

use heartbeat_envoy_tests::config::{ClusterSpec, EnvoyConfig, FilterSpec, ListenerSpec, Options};
use heartbeat_envoy_tests::framed_echo::{serve, Counters};
use heartbeat_envoy_tests::metrics::WASM_HEAP;
use heartbeat_envoy_tests::probe::Proto;
use heartbeat_envoy_tests::process::Process;
use heartbeat_envoy_tests::setup::framed_section;
use heartbeat_envoy_tests::soak::client::{Conn, ConnError};
use heartbeat_envoy_tests::soak::freeze::Tracker;
use heartbeat_envoy_tests::soak::memory::{self, Thirds};
use heartbeat_envoy_tests::soak::Rng;
use heartbeat_envoy_tests::{metrics, paths, ports, Envoy, Mode, Upstream};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const READ_IDLE: Duration = Duration::from_millis(300);
const PING_INTERVAL: Duration = Duration::from_millis(200);
const MAX_MISSED: u32 = 3;
/// NATS and Redis listeners also send write-idle keepalives, sooner than read-idle (so that they are the PINGs
/// that keep those connections' reads fresh, and a keepalive is often the only PING out when a server hangs);
/// framed listeners have none. `--redis-keepalive-ms 0` turns Redis's off.
const KEEPALIVE: Duration = Duration::from_millis(250);
/// While a reply is owed, the filter judges the upstream on `reply_timeout` after the later of its last
/// byte and the request; the soak sets it to the bound so that one limit covers both.
const REPLY_TIMEOUT: Duration = Duration::from_millis(900);
/// The filter's tick: a tenth of its shortest timer (200 ms).
const TICK: Duration = Duration::from_millis(20);
/// Allowance for two shared cores running Envoy's two workers, six servers and this client, and for the
/// client seeing the close: a freeze's connections must be closed within bound + tick + SLACK of it.
const SLACK: Duration = Duration::from_millis(1000);
/// How long any reply (or nats-server's INFO, which waits out a freeze) may take.
const REPLY_LIMIT: Duration = Duration::from_secs(15);
/// The child-process mode of this program: a framed echo server that SIGSTOP can freeze.
const FRAMED_CHILD: &str = "--framed-echo-child";

fn bound() -> Duration {
    READ_IDLE + PING_INTERVAL * MAX_MISSED
}

/// A frozen upstream's connection must be closed within this of the later of the freeze and its last request.
fn limit() -> Duration {
    bound().max(REPLY_TIMEOUT) + TICK + SLACK
}

fn filter_config(proto: Proto, redis_keepalive: Option<Duration>) -> Value {
    let mut v = json!({"protocol": proto_name(proto), "read_idle_timeout": ms(READ_IDLE),
                       "ping_interval": ms(PING_INTERVAL), "max_missed_pongs": MAX_MISSED,
                       "reply_timeout": ms(REPLY_TIMEOUT)});
    match proto {
        Proto::Nats => v["write_idle_keepalive"] = json!(ms(KEEPALIVE)),
        Proto::Redis => {
            if let Some(k) = redis_keepalive {
                v["write_idle_keepalive"] = json!(ms(k));
            }
        }
        Proto::Framed => v["framed"] = framed_section(),
    }
    v
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Nats => "nats",
        Proto::Redis => "redis",
        Proto::Framed => "framed",
    }
}

struct Args {
    duration: Duration,
    seed: u64,
    slots: usize,
    /// Keepalive on the Redis listeners too (off by default: a frozen Redis upstream whose only outstanding
    /// PING is a keepalive is not closed within the bound by the filter of 2026-12-01; this reproduces it).
    redis_keepalive: Option<Duration>,
}

fn parse_args(argv: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        duration: Duration::from_secs(600),
        seed: Rng::clock_seed(),
        slots: 16,
        redis_keepalive: Some(KEEPALIVE),
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || -> anyhow::Result<u64> {
            let v = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
            v.parse().map_err(|e| anyhow::anyhow!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--duration" => a.duration = Duration::from_secs(value()?),
            "--seed" => a.seed = value()?,
            "--slots" => a.slots = usize::try_from(value()?)?,
            "--redis-keepalive-ms" => {
                a.redis_keepalive = Some(Duration::from_millis(value()?)).filter(|k| !k.is_zero())
            }
            other => anyhow::bail!(
                "unknown argument {other} (usage: soak [--duration SECS] [--seed N] [--slots N] [--redis-keepalive-ms MS])"
            ),
        }
    }
    anyhow::ensure!(a.duration >= Duration::from_secs(20), "--duration: at least 20 s (freezes need time)");
    anyhow::ensure!(a.duration <= Duration::from_secs(24 * 3600), "--duration: at most a day");
    anyhow::ensure!((1..=200).contains(&a.slots), "--slots: 1..=200");
    Ok(a)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(FRAMED_CHILD) {
        return framed_child(argv.get(1));
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Everything is bounded; this is the bound on the whole: set-up, traffic, settling, teardown.
    let whole = args.duration + Duration::from_secs(240);
    std::thread::spawn(move || {
        std::thread::sleep(whole + Duration::from_secs(60));
        eprintln!("soak: FAIL: still running {:?} after start; ending the process (logs: target/envoy-runs/)", whole);
        std::process::exit(3);
    });
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: cannot build the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async { tokio::time::timeout(whole, soak(args)).await });
    match result {
        Ok(Ok(())) => {
            println!("soak: PASS");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("soak: FAIL\n{e:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("soak: FAIL: did not finish within {whole:?} (logs: target/envoy-runs/)");
            ExitCode::FAILURE
        }
    }
}

/// `soak --framed-echo-child PORT`: the framed echo server in its own process, so that SIGSTOP freezes it.
fn framed_child(port: Option<&String>) -> ExitCode {
    let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: soak {FRAMED_CHILD} PORT");
        return ExitCode::from(2);
    };
    // Dies with the soak even if the soak is killed (its own clean-up kills it otherwise).
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid only read or set this process's own attributes.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() == 1 {
            return ExitCode::FAILURE;
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("framed echo child: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => serve(l, Default::default(), Arc::new(Counters::default())).await,
            Err(e) => eprintln!("framed echo child: bind 127.0.0.1:{port}: {e}"),
        }
    });
    ExitCode::FAILURE
}

/// An upstream of the soak: a server container or process (NATS, Redis) or a framed echo child process.
enum Server {
    Up(Upstream),
    Child(Process, u16),
}

impl Server {
    async fn start(mode: Mode, proto: Proto) -> anyhow::Result<Server> {
        Ok(match proto {
            Proto::Nats => Server::Up(Upstream::nats(mode).await?),
            Proto::Redis => Server::Up(Upstream::redis(mode, &[]).await?),
            Proto::Framed => {
                let port = ports::free_port()?;
                let log = paths::scratch_dir("framed")?.join("framed.log");
                let p = Process::spawn(&std::env::current_exe()?, &[FRAMED_CHILD.into(), port.to_string()], log)?;
                let start = std::time::Instant::now();
                while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                    anyhow::ensure!(start.elapsed() < Duration::from_secs(10), "framed echo child not listening");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Server::Child(p, port)
            }
        })
    }
    fn port(&self) -> u16 {
        match self {
            Server::Up(u) => u.port,
            Server::Child(_, port) => *port,
        }
    }
    async fn freeze(&self) -> anyhow::Result<()> {
        match self {
            Server::Up(u) => u.freeze().await,
            Server::Child(p, _) => p.freeze(),
        }
    }
    async fn thaw(&self) -> anyhow::Result<()> {
        match self {
            Server::Up(u) => u.thaw().await,
            Server::Child(p, _) => p.thaw(),
        }
    }
    fn how_frozen(&self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Server::Up(_), Mode::Container) => "docker pause",
            _ => "SIGSTOP",
        }
    }
}

#[derive(Default)]
struct Counts {
    opened: AtomicU64,
    client_closed: AtomicU64,
    peer_closed: AtomicU64,
    failed: AtomicU64,
    rounds: AtomicU64,
    replies: AtomicU64,
    long_idles: AtomicU64,
    server_pings: AtomicU64,
}

struct Group {
    label: String,
    proto: Proto,
    addr: std::net::SocketAddr,
    /// Some: the upstream that gets frozen.
    tracker: Option<Arc<Tracker>>,
    counts: Counts,
}

struct Shared {
    next_id: AtomicU64,
    open_now: AtomicU64,
    failures: Mutex<Vec<String>>,
    failure_count: AtomicU64,
}

impl Shared {
    fn fail(&self, msg: String) {
        self.failure_count.fetch_add(1, Relaxed);
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() < 40 {
            eprintln!("soak: FAILURE: {msg}");
            f.push(msg);
        }
    }
}

/// One slot: connections one after another until `end`. A freezable group's slot opens none while its
/// upstream is frozen.
async fn slot(g: Arc<Group>, sh: Arc<Shared>, mut rng: Rng, end: Instant) {
    while Instant::now() < end {
        if let Some(t) = &g.tracker {
            while t.frozen() && Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if Instant::now() >= end {
                break;
            }
        }
        let id = sh.next_id.fetch_add(1, Relaxed);
        sh.open_now.fetch_add(1, Relaxed);
        session(&g, &sh, &mut rng, id).await;
        sh.open_now.fetch_sub(1, Relaxed);
    }
}

/// One connection's life: open, hello, 1-4 rounds (sometimes 5-15) each followed by an idle that is either
/// short or long enough for the filter to PING, then close.
async fn session(g: &Group, sh: &Shared, rng: &mut Rng, id: u64) {
    let c = &g.counts;
    c.opened.fetch_add(1, Relaxed);
    let mut conn = match Conn::connect(g.addr, g.proto, id, REPLY_LIMIT).await {
        Ok(conn) => conn,
        Err(e) => {
            c.failed.fetch_add(1, Relaxed);
            sh.fail(format!("{}: connection c{id}: before its first byte: {e}", g.label));
            return;
        }
    };
    if let Some(t) = &g.tracker {
        conn.watch(t.clone());
    }
    let rounds = if rng.chance(10) { rng.range(5, 16) } else { rng.range(1, 5) };
    let mut step = "hello";
    let result: Result<(), ConnError> = async {
        conn.hello().await?;
        for _ in 0..rounds {
            step = "round";
            conn.round(rng).await?;
            c.rounds.fetch_add(1, Relaxed);
            step = "idle";
            let idle = if rng.chance(35) {
                rng.millis(0, 100)
            } else {
                c.long_idles.fetch_add(1, Relaxed);
                rng.millis(350, 1300)
            };
            conn.idle(idle).await?;
        }
        // Its upstream froze meanwhile: let the filter close it rather than closing first.
        if g.tracker.as_ref().is_some_and(|t| t.frozen()) {
            step = "waiting for the filter's close";
            conn.wait_closed(limit() + Duration::from_secs(1)).await?;
        }
        Ok(())
    }
    .await;
    c.replies.fetch_add(conn.replies, Relaxed);
    c.server_pings.fetch_add(conn.server_pings, Relaxed);
    match result {
        Ok(()) => {
            drop(conn);
            if let Some(t) = &g.tracker {
                t.client_closed(id);
            }
            c.client_closed.fetch_add(1, Relaxed);
        }
        Err(ConnError::Closed { at, how }) => match &g.tracker {
            None => {
                c.failed.fetch_add(1, Relaxed);
                sh.fail(format!(
                    "{}: connection c{id} to a healthy upstream was closed ({how}) during its {step} after {} \
                     exact replies: a false close",
                    g.label, conn.replies
                ));
            }
            Some(t) => match t.peer_closed(id, at) {
                Ok(_) => {
                    c.peer_closed.fetch_add(1, Relaxed);
                }
                Err(why) => {
                    c.failed.fetch_add(1, Relaxed);
                    sh.fail(format!("{why} ({how}, during its {step}, after {} exact replies)", conn.replies));
                }
            },
        },
        Err(ConnError::Bad(why)) => {
            c.failed.fetch_add(1, Relaxed);
            if let Some(t) = &g.tracker {
                t.client_closed(id);
            }
            let frozen = g.tracker.as_ref().is_some_and(|t| t.frozen());
            sh.fail(format!(
                "{}: connection c{id}, {step} (after {} exact replies{}): {why}",
                g.label,
                conn.replies,
                if frozen { ", upstream frozen" } else { "" }
            ));
        }
    }
}

/// Freezes and thaws `server` at random until `end`: thawed 2-6 s, frozen until every connection watched when
/// it froze is closed or past its deadline (the later of the freeze and its last request, + the limit), then
/// 0.3-1.5 s more.
async fn freezer(server: Arc<Server>, t: Arc<Tracker>, sh: Arc<Shared>, mut rng: Rng, end: Instant) -> Vec<Duration> {
    let mut pause_latencies = Vec::new();
    // A connection makes at most one request after the freeze (it waits for the reply): 2 limits cover it.
    let longest = t.limit * 2 + Duration::from_millis(1500);
    loop {
        let thawed = rng.millis(2000, 6000);
        if Instant::now() + thawed + longest + Duration::from_secs(1) > end {
            return pause_latencies;
        }
        tokio::time::sleep(thawed).await;
        t.freeze_begins();
        if let Err(e) = server.freeze().await {
            sh.fail(format!("{}: freezing failed: {e:#}", t.name));
            t.freeze_ends();
            return pause_latencies;
        }
        let frozen_at = Instant::now();
        let n = t.frozen_now();
        pause_latencies.extend(t.pause_latency());
        let report = |late: Vec<u64>, what: &str| {
            if !late.is_empty() {
                let ids: Vec<String> = late.iter().take(10).map(|i| format!("c{i}")).collect();
                sh.fail(format!(
                    "{}: {} of the {n} connections watched when it froze still open {what} (limit {:.2} s after the \
                     later of the freeze and their last request): {}",
                    t.name,
                    late.len(),
                    t.limit.as_secs_f64(),
                    ids.join(" ")
                ));
            }
        };
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (late, pending) = t.overdue();
            report(late, "past their deadline");
            if pending == 0 {
                break;
            }
            if frozen_at.elapsed() > t.limit * 2 {
                report(t.give_up(), &format!("{:.2} s after the freeze", frozen_at.elapsed().as_secs_f64()));
                break;
            }
        }
        tokio::time::sleep(rng.millis(300, 1500)).await;
        t.freeze_ends();
        if let Err(e) = server.thaw().await {
            sh.fail(format!("{}: thawing failed: {e:#}", t.name));
            return pause_latencies;
        }
    }
}

#[derive(Clone, Debug)]
struct Sample {
    t: f64,
    rss: Option<u64>,
    heap: Option<u64>,
    monitored: Option<i64>,
    client_open: u64,
}

async fn sampler(
    envoy: Arc<Envoy>,
    source: Option<memory::Source>,
    sh: Arc<Shared>,
    start: Instant,
    every: Duration,
    end: Instant,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut ticker = tokio::time::interval(every);
    while Instant::now() < end {
        ticker.tick().await;
        let stats = envoy.filter_stats().await.ok();
        out.push(Sample {
            t: start.elapsed().as_secs_f64(),
            rss: source.as_ref().and_then(|s| s.read().ok()),
            heap: stats.as_ref().and_then(|s| s.get(WASM_HEAP).map(|v| *v as u64)),
            monitored: stats.as_ref().and_then(|s| s.get(metrics::MONITORED).copied()),
            client_open: sh.open_now.load(Relaxed),
        });
    }
    out
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn pct(d: &[Duration], q: f64) -> Duration {
    if d.is_empty() {
        return Duration::ZERO;
    }
    let mut v = d.to_vec();
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// RSS may grow by this much from the first third's median to the last third's: allocator and V8 noise.
fn rss_allowance(first: u64) -> u64 {
    first / 10 + 16 * 1024 * 1024
}

/// The wasm heap (all VMs together) may grow by this much from the first third's maximum to the last's.
const HEAP_ALLOWANCE: u64 = 1024 * 1024;

async fn soak(args: Args) -> anyhow::Result<()> {
    let mode = Mode::ready().await?;
    let protos = [Proto::Nats, Proto::Redis, Proto::Framed];
    println!(
        "heartbeat soak: {} s through Envoy 1.40 ({mode:?} mode, --concurrency 2), seed {} (replay: --seed {}), \
         {} connection slots per group",
        args.duration.as_secs(),
        args.seed,
        args.seed,
        args.slots
    );
    println!(
        "  filter: read_idle {READ_IDLE:?}, ping_interval {PING_INTERVAL:?}, max_missed {MAX_MISSED} (bound {:?}), \
         reply_timeout {REPLY_TIMEOUT:?}, write_idle_keepalive {KEEPALIVE:?} on NATS{}, tick {TICK:?}",
        bound(),
        args.redis_keepalive.map(|k| format!(" and {k:?} on Redis")).unwrap_or_default(),
    );
    println!(
        "  a frozen upstream's connections must close within {:?} (max(bound, reply_timeout) + tick + slack {SLACK:?}) \
         of the later of the freeze and their last request",
        limit()
    );
    let mut rng = Rng::new(args.seed);

    // Two upstream instances per protocol: one always healthy, one frozen and thawed at random.
    let mut servers = Vec::new();
    for p in protos {
        for frozen in [false, true] {
            servers.push((p, frozen, Arc::new(Server::start(mode, p).await?)));
        }
    }
    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    for (p, frozen, s) in &servers {
        let name = format!("{}-{}", proto_name(*p), if *frozen { "frozen" } else { "healthy" });
        listeners.push(ListenerSpec {
            name: name.clone(),
            port: ports::free_port()?,
            filter: Some(FilterSpec::v8(filter_config(*p, args.redis_keepalive))),
            cluster: name.clone(),
        });
        clusters.push(ClusterSpec { name, upstream_port: s.port(), tight_keepalive: false, user_timeout: None });
    }
    let cfg = EnvoyConfig { admin_port: ports::free_port()?, listeners: listeners.clone(), clusters };
    let envoy = Arc::new(Envoy::start_with(mode, &cfg, &Options { concurrency: Some(2), ..Options::default() }).await?);
    let source = match memory::Source::find(mode, &envoy) {
        Ok(s) => Some(s),
        Err(e) => {
            println!("  (Envoy's RSS cannot be read: {e:#})");
            None
        }
    };
    println!(
        "  Envoy RSS from {}; upstreams frozen with {}",
        source.as_ref().map(|s| s.describe()).unwrap_or_else(|| "nowhere".into()),
        servers
            .iter()
            .filter(|s| s.1)
            .map(|s| format!("{}: {}", proto_name(s.0), s.2.how_frozen(mode)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let sh = Arc::new(Shared {
        next_id: AtomicU64::new(1),
        open_now: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
        failure_count: AtomicU64::new(0),
    });
    let mut groups = Vec::new();
    for ((p, frozen, _), l) in servers.iter().zip(&listeners) {
        groups.push(Arc::new(Group {
            label: l.name.clone(),
            proto: *p,
            addr: envoy.listener(&l.name),
            tracker: frozen.then(|| Arc::new(Tracker::new(&l.name, limit()))),
            counts: Counts::default(),
        }));
    }

    let start = Instant::now();
    let end = start + args.duration;
    let every = (args.duration / 30).clamp(Duration::from_secs(1), Duration::from_secs(10));
    let sampling =
        tokio::spawn(sampler(envoy.clone(), source.clone(), sh.clone(), start, every, end + Duration::from_secs(1)));
    let mut freezers = Vec::new();
    for ((_, frozen, server), g) in servers.iter().zip(&groups) {
        if *frozen {
            let t = g.tracker.clone().expect("a frozen group has a tracker");
            freezers.push(tokio::spawn(freezer(server.clone(), t, sh.clone(), rng.fork(), end)));
        }
    }
    let mut slots = Vec::new();
    for g in &groups {
        for _ in 0..args.slots {
            slots.push(tokio::spawn(slot(g.clone(), sh.clone(), rng.fork(), end)));
        }
    }
    let mut progress = tokio::time::interval(Duration::from_secs(30).min(args.duration / 4));
    progress.tick().await;
    loop {
        tokio::select! {
            _ = progress.tick() => {}
            _ = tokio::time::sleep_until(end) => break,
        }
        let opened: u64 = groups.iter().map(|g| g.counts.opened.load(Relaxed)).sum();
        println!(
            "  t={:>4.0} s  connections opened {opened}, open now {}, failures {}",
            start.elapsed().as_secs_f64(),
            sh.open_now.load(Relaxed),
            sh.failure_count.load(Relaxed)
        );
    }
    for s in slots {
        s.await?;
    }
    let mut pause_latencies = Vec::new();
    for f in freezers {
        pause_latencies.extend(f.await?);
    }
    let traffic_secs = start.elapsed().as_secs_f64();
    let samples = sampling.await?;

    // Every connection is closed: the gauge must reach 0 and the counters balance (metrics are published on
    // the workers' ticks, so give them a moment).
    let settle = Instant::now();
    let stats = loop {
        let s = envoy.filter_stats().await?;
        let monitored = metrics::get(&s, metrics::MONITORED)?;
        if (monitored == 0 && metrics::check_consistent(&s).is_ok()) || settle.elapsed() > Duration::from_secs(15) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let settled_in = settle.elapsed();

    // The report.
    let mut problems: Vec<String> = sh.failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let total_failures = sh.failure_count.load(Relaxed);
    if total_failures > problems.len() as u64 {
        problems.push(format!("... and {} more failures", total_failures - problems.len() as u64));
    }
    println!("\n=== soak: {traffic_secs:.0} s of traffic, seed {} ===", args.seed);
    println!(
        "{:<15} {:>8} {:>9} {:>9} {:>6} {:>7} {:>9} {:>7} {:>7}",
        "group", "opened", "closed by", "closed by", "failed", "rounds", "replies", "long", "server"
    );
    println!(
        "{:<15} {:>8} {:>9} {:>9} {:>6} {:>7} {:>9} {:>7} {:>7}",
        "", "", "client", "filter", "", "", "checked", "idles", "PINGs"
    );
    let mut tot = [0u64; 8];
    for g in &groups {
        let c = &g.counts;
        let row = [
            c.opened.load(Relaxed),
            c.client_closed.load(Relaxed),
            c.peer_closed.load(Relaxed),
            c.failed.load(Relaxed),
            c.rounds.load(Relaxed),
            c.replies.load(Relaxed),
            c.long_idles.load(Relaxed),
            c.server_pings.load(Relaxed),
        ];
        for (t, v) in tot.iter_mut().zip(row) {
            *t += v;
        }
        println!(
            "{:<15} {:>8} {:>9} {:>9} {:>6} {:>7} {:>9} {:>7} {:>7}",
            g.label, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7]
        );
    }
    println!(
        "{:<15} {:>8} {:>9} {:>9} {:>6} {:>7} {:>9} {:>7} {:>7}",
        "total", tot[0], tot[1], tot[2], tot[3], tot[4], tot[5], tot[6], tot[7]
    );

    println!(
        "\n{:<15} {:>7} {:>9} {:>9} {:>5} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "frozen",
        "freezes",
        "watched",
        "closed in",
        "late",
        "by client",
        "others",
        "min s",
        "median s",
        "p99 s",
        "max s"
    );
    println!("{:<15} {:>7} {:>9} {:>9} {:>5} {:>9} {:>7}", "upstream", "", "at freeze", "limit", "", "first", "");
    let mut all_detections = Vec::new();
    let mut all_from_freeze = Vec::new();
    let mut observed_filter_closes = 0;
    let mut client_first = 0;
    let mut sums = [0u64; 6];
    for g in &groups {
        let Some(t) = &g.tracker else { continue };
        let s = t.summary();
        let within = s.detections.iter().filter(|d| **d <= t.limit).count() as u64;
        let row = [s.freezes, s.expected, within, s.late, s.closed_by_client, s.closed_other];
        for (sum, v) in sums.iter_mut().zip(row) {
            *sum += v;
        }
        println!(
            "{:<15} {:>7} {:>9} {:>9} {:>5} {:>9} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            g.label,
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            pct(&s.detections, 0.0).as_secs_f64(),
            pct(&s.detections, 0.5).as_secs_f64(),
            pct(&s.detections, 0.99).as_secs_f64(),
            pct(&s.detections, 1.0).as_secs_f64(),
        );
        if s.freezes == 0 || s.expected == 0 {
            problems.push(format!(
                "{}: {} freezes, {} connections watched at a freeze: nothing tested",
                g.label, s.freezes, s.expected
            ));
        }
        if within < s.detections.len() as u64 {
            problems.push(format!(
                "{}: {} connections closed later than {:.2} s after the later of the freeze and their last \
                 request (max {:.3} s)",
                g.label,
                s.detections.len() as u64 - within,
                t.limit.as_secs_f64(),
                pct(&s.detections, 1.0).as_secs_f64()
            ));
        }
        all_detections.extend(s.detections);
        all_from_freeze.extend(s.from_freeze);
        observed_filter_closes += g.counts.peer_closed.load(Relaxed);
        client_first += s.closed_by_client;
    }
    println!(
        "{:<15} {:>7} {:>9} {:>9} {:>5} {:>9} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        "all frozen",
        sums[0],
        sums[1],
        sums[2],
        sums[3],
        sums[4],
        sums[5],
        pct(&all_detections, 0.0).as_secs_f64(),
        pct(&all_detections, 0.5).as_secs_f64(),
        pct(&all_detections, 0.99).as_secs_f64(),
        pct(&all_detections, 1.0).as_secs_f64(),
    );
    println!(
        "  seconds from the later of the freeze and the connection's last request to the client's EOF; limit \
         {:.2} s = max(bound {:.2} s, reply_timeout {:.2} s) + tick {:.2} s + slack {:.2} s",
        limit().as_secs_f64(),
        bound().as_secs_f64(),
        REPLY_TIMEOUT.as_secs_f64(),
        TICK.as_secs_f64(),
        SLACK.as_secs_f64()
    );
    println!(
        "  from the freeze itself: median {:.3} s, max {:.3} s",
        pct(&all_from_freeze, 0.5).as_secs_f64(),
        pct(&all_from_freeze, 1.0).as_secs_f64()
    );
    println!(
        "  freezing ({}) took median {:.0} ms, max {:.0} ms",
        servers.iter().filter(|s| s.1).map(|s| s.2.how_frozen(mode)).collect::<Vec<_>>().join(" / "),
        pct(&pause_latencies, 0.5).as_secs_f64() * 1e3,
        pct(&pause_latencies, 1.0).as_secs_f64() * 1e3
    );

    // Memory: first third against last third.
    let run = args.duration.as_secs_f64();
    let rss: Vec<(f64, u64)> = samples.iter().filter_map(|s| Some((s.t, s.rss?))).collect();
    let heap: Vec<(f64, u64)> = samples.iter().filter_map(|s| Some((s.t, s.heap?))).collect();
    println!("\nmemory ({} samples every {:?}; first third vs last third)", samples.len(), every);
    match memory::thirds(&rss, run, memory::median) {
        Some(Thirds { first, last }) => {
            let (lo, hi) = (rss.iter().map(|s| s.1).min().unwrap_or(0), rss.iter().map(|s| s.1).max().unwrap_or(0));
            println!(
                "  Envoy RSS (median)        {:>10} -> {:>10}  ({:+.1} %; min {}, max {}; allowed +{})",
                mib(first),
                mib(last),
                (last as f64 / first.max(1) as f64 - 1.0) * 100.0,
                mib(lo),
                mib(hi),
                mib(rss_allowance(first))
            );
            if last > first + rss_allowance(first) {
                problems.push(format!(
                    "Envoy's RSS grew from {} to {} (median of first vs last third)",
                    mib(first),
                    mib(last)
                ));
            }
        }
        None => problems.push(format!("Envoy's RSS: too few samples ({}); source: {:?}", rss.len(), source)),
    }
    match memory::thirds(&heap, run, memory::max) {
        Some(Thirds { first, last }) => {
            println!(
                "  wasm heap, all VMs (max)  {:>10} -> {:>10}  ({:+} bytes; allowed +{})",
                mib(first),
                mib(last),
                last as i64 - first as i64,
                mib(HEAP_ALLOWANCE)
            );
            if last > first + HEAP_ALLOWANCE {
                problems.push(format!(
                    "the filter's wasm heap grew from {first} to {last} bytes (max of first vs last third)"
                ));
            }
        }
        None => problems.push(format!("wasm heap: too few samples ({}); is {} in /stats?", heap.len(), WASM_HEAP)),
    }
    let peak_monitored = samples.iter().filter_map(|s| s.monitored).max().unwrap_or(0);
    let peak_open = samples.iter().map(|s| s.client_open).max().unwrap_or(0);
    println!("  peak connections_monitored {peak_monitored}, peak client connections open {peak_open}");
    if std::env::var_os("SOAK_SAMPLES").is_some() {
        for s in &samples {
            println!(
                "    t={:>6.1} rss={:?} heap={:?} monitored={:?} open={}",
                s.t, s.rss, s.heap, s.monitored, s.client_open
            );
        }
    }

    // The filter's own counters.
    let get = |n: &str| metrics::get(&stats, n).unwrap_or(-1);
    let (inj, ka, str_, una) = (
        get(metrics::PINGS_INJECTED),
        get(metrics::KEEPALIVE_PINGS),
        get(metrics::PONGS_STRIPPED),
        get(metrics::PINGS_UNANSWERED),
    );
    let (dead, deferred, perr, monitored) =
        (get(metrics::DEAD_CLOSED), get(metrics::DEFERRED), get(metrics::PROTOCOL_ERRORS), get(metrics::MONITORED));
    println!("\nfilter counters (/stats, {:.1} s after the last connection closed)", settled_in.as_secs_f64());
    println!("  pings_injected {inj} + keepalive_pings {ka} = {}", inj + ka);
    println!("  pongs_stripped {str_} + pings_unanswered {una} = {}", str_ + una);
    println!("  dead_closed {dead} (closes the clients saw: {observed_filter_closes}), injections_deferred {deferred}, protocol_errors {perr}, connections_monitored {monitored}");
    if monitored != 0 {
        problems.push(format!(
            "connections_monitored is {monitored}, not 0, {:.1} s after every connection closed",
            settled_in.as_secs_f64()
        ));
    }
    if let Err(e) = metrics::check_consistent(&stats) {
        problems.push(format!("counters do not balance: {e:#}"));
    }
    if perr != 0 {
        problems.push(format!("protocol_errors {perr}: a decoder lost track of a valid stream"));
    }
    if inj <= 0 || ka <= 0 || str_ <= 0 {
        problems.push(format!(
            "the filter hardly PINGed: pings_injected {inj}, keepalive_pings {ka}, pongs_stripped {str_}"
        ));
    }
    if dead < observed_filter_closes as i64 || dead > (observed_filter_closes + client_first) as i64 {
        problems.push(format!(
            "dead_closed {dead} differs from the filter closes the clients saw ({observed_filter_closes}, and {client_first} \
             connections the client closed during a freeze)"
        ));
    }

    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} problem(s):\n  {}\n(Envoy log: {}/envoy-final.log)",
            problems.len(),
            problems.join("\n  "),
            envoy.dir.display()
        )
    }
}
