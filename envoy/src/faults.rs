//! Every fault, each run side by side against one upstream through one Envoy with a listener per setup:
//! Envoy alone, Envoy + tight cluster TCP keepalive (1 s / 1 s / 3), Envoy + the heartbeat filter, and the
//! filter with `TCP_USER_TIMEOUT` on the upstream sockets. Returns one row of the fault matrix; the caller
//! asserts on `ok`.

use crate::blackhole::Blackhole;
use crate::framed_echo::{self, FramedEcho};
use crate::matrix::{secs, Cell, Matrix, Row};
use crate::mode::Mode;
use crate::probe::{self, Outcome, Probe, Proto};
use crate::setup::{envoy_for, filter_config, Setup, Timing, USER_TIMEOUT};
use crate::upstream::Upstream;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The upstream process is frozen (docker pause / SIGSTOP); its kernel still ACKs.
    Hung,
    /// The same with redis-server, whose PINGs need the Redis rules (no reply outstanding, not in MULTI).
    HungRedis,
    /// The same with MariaDB (a local process in both modes, frozen with SIGSTOP), whose COM_PING goes in only
    /// between commands.
    HungMysql,
    /// The same with PostgreSQL (a local process in both modes, frozen with SIGSTOP with its per-connection
    /// backends), whose Sync goes in only once every query has its ReadyForQuery.
    HungPostgres,
    /// Every packet to and from the upstream is dropped; the client is idle.
    BlackholeIdle,
    /// The same, while the client keeps sending (unacknowledged data: TCP keepalive stays silent).
    BlackholeSending,
    /// Redis with `timeout 3` reaps connections idle for 3 s; the next request must still work.
    IdleReaper,
    /// The upstream answers late (2 × ping_interval) and streams large replies in slow chunks.
    AliveSlow,
    /// redis-server is frozen while the client uploads a huge value as fast as it can: the client is
    /// mid-frame (no PING can go) and, once the buffers fill, stuck.
    HungUploading,
    /// The same with every packet to and from redis-server dropped.
    BlackholeUploading,
}

impl Fault {
    pub const ALL: [Fault; 10] = [
        Fault::Hung,
        Fault::HungRedis,
        Fault::HungMysql,
        Fault::HungPostgres,
        Fault::BlackholeIdle,
        Fault::BlackholeSending,
        Fault::IdleReaper,
        Fault::AliveSlow,
        Fault::HungUploading,
        Fault::BlackholeUploading,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Fault::Hung | Fault::HungRedis | Fault::HungMysql | Fault::HungPostgres => "hung process",
            Fault::BlackholeIdle => "blackhole, client idle",
            Fault::BlackholeSending => "blackhole, client sending",
            Fault::IdleReaper => "idle reaper (3 s)",
            Fault::AliveSlow => "alive but slow",
            Fault::HungUploading => "hung process, client uploading",
            Fault::BlackholeUploading => "blackhole, client uploading",
        }
    }
}

/// How long a baseline is watched: well past the filter's bound, so "still open" means something.
pub const WATCH: Duration = Duration::from_secs(15);

fn cell(setup: Setup, o: &Outcome, watched: Duration, expected: String, ok: bool) -> Cell {
    Cell {
        setup: setup.label().into(),
        closed_after_s: o.closed_after.map(secs),
        watched_s: secs(watched),
        how: o.how.clone(),
        expected,
        ok,
    }
}

/// What each setup must show for a fault that kills the upstream silently.
/// The row's cells for a fault the filter must close within the bound (or, for uploads, leave to the kernel).
fn judged_cells(fault: Fault, setups: &[Setup], outcomes: &[Outcome], t: &Timing) -> Vec<Cell> {
    setups
        .iter()
        .zip(outcomes)
        .map(|(s, o)| {
            let (expected, ok) = judge_dead(fault, *s, o, t);
            cell(*s, o, WATCH, expected, ok)
        })
        .collect()
}

fn judge_dead(fault: Fault, setup: Setup, o: &Outcome, t: &Timing) -> (String, bool) {
    match (setup, fault) {
        // The client is mid-frame all along: no evidence for the filter, which never closes on what the
        // client does. The kernel sees the unacknowledged data (or the zero window) instead.
        (Setup::FilterUserTimeout, Fault::HungUploading | Fault::BlackholeUploading) => {
            let hi = USER_TIMEOUT + t.slack;
            let ok = o.closed_after.is_some_and(|c| c <= hi);
            (format!("closed within {:.1} s", hi.as_secs_f64()), ok)
        }
        (_, Fault::HungUploading | Fault::BlackholeUploading) => ("open".into(), o.closed_after.is_none()),
        (Setup::Filter | Setup::FilterUserTimeout, _) => {
            let hi = t.bound() + t.slack;
            // Not before the read-idle timeout: an earlier close would be for some other reason.
            let lo = t.read_idle;
            let ok = o.closed_after.is_some_and(|c| c >= lo && c <= hi);
            (format!("closed in [{:.1}, {:.1}] s", lo.as_secs_f64(), hi.as_secs_f64()), ok)
        }
        // Keepalive probes of an idle connection into a blackhole go unanswered: 1 s + 3 × 1 s.
        (Setup::TightKeepalive, Fault::BlackholeIdle) => ("closed (keepalive)".into(), o.closed_after.is_some()),
        // A hung process's kernel ACKs the probes; unacknowledged data suspends keepalive entirely.
        _ => ("open".into(), o.closed_after.is_none()),
    }
}

/// The fault matrix: every fault against `setups`, all faults at once (each has its own upstream and Envoy).
pub async fn matrix(mode: Mode, setups: &[Setup]) -> anyhow::Result<Matrix> {
    let rows = futures::future::join_all(Fault::ALL.iter().map(|f| run(mode, *f, setups))).await;
    let mut m = Matrix { envoy_mode: format!("{mode:?}"), rows: Vec::new() };
    for r in rows {
        m.rows.push(r?);
    }
    Ok(m)
}

pub async fn run(mode: Mode, fault: Fault, setups: &[Setup]) -> anyhow::Result<Row> {
    let t = Timing::DEFAULT;
    match fault {
        Fault::Hung | Fault::HungRedis | Fault::BlackholeIdle | Fault::BlackholeSending => {
            let (nats, protocol, proto) = if fault == Fault::HungRedis {
                (Upstream::redis(mode, &[]).await?, "redis", Proto::Redis)
            } else {
                (Upstream::nats(mode).await?, "nats", Proto::Nats)
            };
            let filter = filter_config(protocol, "30s");
            let envoy = envoy_for(mode, nats.port, setups, &filter).await?;
            let mut probes = Vec::new();
            for s in setups {
                probes.push(Probe::connect(envoy.listener(s.listener()), proto).await.map_err(|e| envoy.explain(e))?);
            }
            let send = (fault == Fault::BlackholeSending).then(|| Duration::from_millis(200));
            let frozen = matches!(fault, Fault::Hung | Fault::HungRedis);
            let _blackhole = if frozen {
                nats.freeze().await?;
                None
            } else {
                Some(Blackhole::start(nats.port)?)
            };
            let outcomes = futures::future::join_all(probes.iter_mut().map(|p| p.watch(WATCH, send))).await;
            if frozen {
                nats.thaw().await?;
            }
            let cells = judged_cells(fault, setups, &outcomes, &t);
            Ok(Row { fault: fault.label().into(), protocol: protocol.into(), filter_config: filter, cells })
        }
        Fault::HungMysql | Fault::HungPostgres => hung_database(mode, fault, setups, &t).await,
        Fault::IdleReaper => idle_reaper(mode, setups).await,
        Fault::AliveSlow => alive_slow(mode, setups, &t).await,
        Fault::HungUploading | Fault::BlackholeUploading => uploading(mode, fault, setups, &t).await,
    }
}

/// The database freezes while a logged-in client is idle: the filter's PINGs (MySQL COM_PING, PostgreSQL Sync)
/// go unanswered.
async fn hung_database(mode: Mode, fault: Fault, setups: &[Setup], t: &Timing) -> anyhow::Result<Row> {
    let (db, protocol) = match fault {
        Fault::HungPostgres => (Upstream::postgres(mode).await?, "postgres"),
        _ => (Upstream::mariadb(mode).await?, "mysql"),
    };
    let filter = filter_config(protocol, "30s");
    let envoy = envoy_for(mode, db.port, setups, &filter).await?;
    let mut streams = Vec::new();
    for s in setups {
        let addr = envoy.listener(s.listener());
        let login = match fault {
            Fault::HungPostgres => probe::postgres_login(addr).await,
            _ => probe::mysql_login(addr).await,
        };
        streams.push(login.map_err(|e| envoy.explain(e))?);
    }
    db.freeze().await?;
    let frozen = std::time::Instant::now();
    let outcomes = futures::future::join_all(streams.iter_mut().map(|s| probe::watch_close(s, frozen, WATCH))).await;
    db.thaw().await?;
    let cells = judged_cells(fault, setups, &outcomes, t);
    Ok(Row { fault: fault.label().into(), protocol: protocol.into(), filter_config: filter, cells })
}

/// The client uploads one huge Redis value as fast as Envoy takes it; the fault strikes as it starts.
async fn uploading(mode: Mode, fault: Fault, setups: &[Setup], t: &Timing) -> anyhow::Result<Row> {
    let redis = Upstream::redis(mode, &[]).await?;
    let filter = filter_config("redis", "30s");
    let envoy = envoy_for(mode, redis.port, setups, &filter).await?;
    let mut probes = Vec::new();
    for s in setups {
        probes.push(Probe::connect(envoy.listener(s.listener()), Proto::Redis).await.map_err(|e| envoy.explain(e))?);
    }
    let _blackhole = if fault == Fault::HungUploading {
        redis.freeze().await?;
        None
    } else {
        Some(Blackhole::start(redis.port)?)
    };
    let outcomes = futures::future::join_all(probes.iter_mut().map(|p| p.upload(WATCH))).await;
    if fault == Fault::HungUploading {
        redis.thaw().await?;
    }
    let cells = judged_cells(fault, setups, &outcomes, t);
    Ok(Row { fault: fault.label().into(), protocol: "redis".into(), filter_config: filter, cells })
}

/// Redis reaps connections idle for 3 s. Envoy alone and TCP keepalive (kernel-level, invisible to Redis)
/// lose the pooled connection; the filter's write-idle keepalive PING (1 s) keeps it, and a request after
/// the idle period still works.
async fn idle_reaper(mode: Mode, setups: &[Setup]) -> anyhow::Result<Row> {
    let redis = Upstream::redis(mode, &["--timeout", "3"]).await?;
    let filter = filter_config("redis", "1s");
    let envoy = envoy_for(mode, redis.port, setups, &filter).await?;
    let watched = Duration::from_secs(8);
    let mut tasks = Vec::new();
    for s in setups {
        let addr = envoy.listener(s.listener());
        tasks.push(async move {
            let mut p = Probe::connect(addr, Proto::Redis).await?;
            let o = p.watch(watched, None).await;
            // Still open: the pooled connection must also still work.
            let works = if o.closed_after.is_none() { round_trip_redis(&mut p).await.is_ok() } else { false };
            anyhow::Ok((o, works))
        });
    }
    let results = futures::future::join_all(tasks).await;
    let mut cells = Vec::new();
    for (s, r) in setups.iter().zip(results) {
        let (o, works) = r.map_err(|e| envoy.explain(e))?;
        let (expected, ok) = match s {
            Setup::Filter | Setup::FilterUserTimeout => {
                ("open, next request works".to_string(), o.closed_after.is_none() && works)
            }
            _ => ("closed by the reaper".to_string(), o.closed_after.is_some()),
        };
        cells.push(cell(*s, &o, watched, expected, ok));
    }
    Ok(Row { fault: Fault::IdleReaper.label().into(), protocol: "redis".into(), filter_config: filter, cells })
}

async fn round_trip_redis(p: &mut Probe) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    p.stream().write_all(b"*2\r\n$4\r\nECHO\r\n$5\r\nafter\r\n").await?;
    let want = b"$5\r\nafter\r\n";
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(Duration::from_secs(3), p.stream().read_exact(&mut got)).await??;
    anyhow::ensure!(got == want, "reply {:?}", String::from_utf8_lossy(&got));
    Ok(())
}

/// The framed server answers 2 × ping_interval late and streams 256 KiB replies in 16 KiB chunks 50 ms
/// apart. The client keeps asking; every echo must come back byte-exact and no setup may close.
async fn alive_slow(mode: Mode, setups: &[Setup], t: &Timing) -> anyhow::Result<Row> {
    let server = FramedEcho::spawn(framed_echo::Options {
        reply_delay: t.ping_interval * 2,
        chunk: 16 * 1024,
        chunk_delay: Duration::from_millis(50),
    })
    .await?;
    let filter = filter_config("framed", "30s");
    let envoy = envoy_for(mode, server.port, setups, &filter).await?;
    let watched = WATCH;
    let mut tasks = Vec::new();
    for s in setups {
        let addr = envoy.listener(s.listener());
        tasks.push(slow_client(*s, addr, watched));
    }
    let results = futures::future::join_all(tasks).await;
    let mut cells = Vec::new();
    for (s, r) in setups.iter().zip(results) {
        let (o, exchanges) = r.map_err(|e| envoy.explain(e))?;
        let ok = o.closed_after.is_none() && exchanges >= 2;
        let mut c = cell(*s, &o, watched, "open, every echo exact".into(), ok);
        c.how = format!("{}; {exchanges} slow echoes checked", c.how);
        cells.push(c);
    }
    drop(server);
    Ok(Row { fault: Fault::AliveSlow.label().into(), protocol: "framed".into(), filter_config: filter, cells })
}

async fn slow_client(setup: Setup, addr: std::net::SocketAddr, watched: Duration) -> anyhow::Result<(Outcome, usize)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut p = Probe::connect(addr, Proto::Framed).await?;
    let start = std::time::Instant::now();
    let mut exchanges = 0usize;
    let mut seq = 0u32;
    while start.elapsed() < watched {
        seq += 1;
        let payload: Vec<u8> = (0..256 * 1024u32).map(|i| (i.wrapping_mul(31).wrapping_add(seq)) as u8).collect();
        let req = framed_echo::frame(&payload);
        if let Err(e) = p.stream().write_all(&req).await {
            return Ok((
                Outcome { closed_after: Some(start.elapsed()), received: 0, how: format!("write error: {e}") },
                exchanges,
            ));
        }
        let mut got = vec![0u8; req.len()];
        let mut filled = 0usize;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while filled < got.len() {
            let Some(rest) = got.get_mut(filled..) else { break };
            match tokio::time::timeout_at(deadline, p.stream().read(rest)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    let how = format!("closed after {filled} of {} bytes of echo {seq}", req.len());
                    return Ok((Outcome { closed_after: Some(start.elapsed()), received: filled, how }, exchanges));
                }
                Ok(Ok(n)) => filled += n,
                Err(_) => anyhow::bail!(
                    "{}: echo {seq} incomplete after 30 s: {filled} of {} bytes arrived ({exchanges} echoes before it)",
                    setup.label(),
                    req.len()
                ),
            }
        }
        anyhow::ensure!(got == req, "echo {seq} differs from its request (a PONG leaked or bytes were reordered)");
        exchanges += 1;
    }
    Ok((Outcome { closed_after: None, received: 0, how: format!("still open at {watched:?}") }, exchanges))
}
