//! Shared by the operations cases (workers, live configuration, VM failure policy): raw NATS connections
//! checked byte for byte, Envoy's own stats and log read per worker, and the test-only trapping filter build.
#![allow(dead_code)]

use heartbeat_envoy_tests::config::{ClusterSpec, EnvoyConfig, FilterSpec, ListenerSpec};
use heartbeat_envoy_tests::paths;
use heartbeat_envoy_tests::ports::free_port;
use heartbeat_envoy_tests::probe::{Probe, Proto};
use heartbeat_envoy_tests::Envoy;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One listener `hb` (the filter with `filter`, or none) in front of one cluster `up`.
pub fn one_listener(upstream_port: u16, filter: Option<serde_json::Value>) -> anyhow::Result<EnvoyConfig> {
    Ok(EnvoyConfig {
        admin_port: free_port()?,
        listeners: vec![ListenerSpec {
            name: "hb".into(),
            port: free_port()?,
            filter: filter.map(FilterSpec::v8),
            cluster: "up".into(),
        }],
        clusters: vec![ClusterSpec { name: "up".into(), upstream_port, tight_keepalive: false, user_timeout: None }],
    })
}

/// `n` raw NATS connections (CONNECT and one PING/PONG round trip each), opened a few at a time.
pub async fn open_nats(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Probe>> {
    let mut probes = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let opened = futures::future::join_all(chunk.iter().map(|_| Probe::connect(addr, Proto::Nats))).await;
        for p in opened {
            probes.push(p?);
        }
    }
    Ok(probes)
}

/// One byte-exact NATS exchange on a raw connection: `SUB`, `PUB` to it, `PING`; the client must receive
/// exactly `MSG …payload…` then `PONG` (server PINGs between whole frames are answered and skipped). A PONG
/// that answered one of the filter's PINGs and leaked shows up here as an extra `PONG` before the `MSG`.
pub async fn nats_exchange(p: &mut Probe, subject: &str, payload: &str) -> anyhow::Result<()> {
    let s = p.stream();
    let req = format!("SUB {subject} 1\r\nPUB {subject} {}\r\n{payload}\r\nUNSUB 1\r\nPING\r\n", payload.len());
    s.write_all(req.as_bytes()).await?;
    let frames = [format!("MSG {subject} 1 {}\r\n{payload}\r\n", payload.len()), "PONG\r\n".to_string()];
    let mut got: Vec<u8> = Vec::new();
    let mut at = 0usize;
    let deadline = Instant::now() + Duration::from_secs(5);
    for frame in &frames {
        loop {
            // Whole server PINGs at a frame boundary are the server's own traffic, not a leak.
            if got.len() >= at + 6 && &got[at..at + 6] == b"PING\r\n" {
                s.write_all(b"PONG\r\n").await?;
                at += 6;
                continue;
            }
            if got.len() >= at + frame.len() {
                anyhow::ensure!(
                    &got[at..at + frame.len()] == frame.as_bytes(),
                    "on {subject}: expected {frame:?}, received {:?}",
                    String::from_utf8_lossy(&got[at..])
                );
                at += frame.len();
                break;
            }
            let mut buf = [0u8; 4096];
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, s.read(&mut buf)).await.map_err(|_| {
                anyhow::anyhow!("on {subject}: no {frame:?} within 5 s; received {:?}", String::from_utf8_lossy(&got))
            })??;
            anyhow::ensure!(n > 0, "on {subject}: EOF; received {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    }
    anyhow::ensure!(at == got.len(), "on {subject}: bytes after the PONG: {:?}", String::from_utf8_lossy(&got[at..]));
    Ok(())
}

/// Reads for `limit`: `Ok(None)` if nothing came and the connection stayed open, `Ok(Some(after))` at EOF or
/// a reset, an error if bytes arrived (on a connection whose peer is silent, nothing may arrive).
pub async fn closed_within(p: &mut Probe, limit: Duration) -> anyhow::Result<Option<Duration>> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(limit, p.stream().read(&mut buf)).await {
        Err(_) => Ok(None),
        Ok(Ok(0)) | Ok(Err(_)) => Ok(Some(start.elapsed())),
        Ok(Ok(n)) => anyhow::bail!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
    }
}

/// Polls all of `/stats` until `pred` holds or `limit` passes; returns the last reading.
pub async fn wait_envoy_stats(
    envoy: &Envoy,
    limit: Duration,
    pred: impl Fn(&BTreeMap<String, i64>) -> bool,
) -> anyhow::Result<BTreeMap<String, i64>> {
    super::common::poll_until(limit, || envoy.stats(), pred).await
}

pub fn stat(stats: &BTreeMap<String, i64>, name: &str) -> i64 {
    stats.get(name).copied().unwrap_or(0)
}

/// Envoy's per-worker listener counter `listener.127.0.0.1_<port>.worker_<i>.<name>`, for every worker.
pub fn per_worker(stats: &BTreeMap<String, i64>, port: u16, name: &str) -> BTreeMap<u32, i64> {
    let prefix = format!("listener.127.0.0.1_{port}.worker_");
    stats
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(&prefix)?;
            let (worker, stat) = rest.split_once('.')?;
            (stat == name).then(|| worker.parse().ok().map(|w| (w, *v)))?
        })
        .collect()
}

/// Envoy log lines that contain `needle`, by the thread id Envoy writes in the second bracket
/// (`[2026-12-01 02:05:29.087][12807][info][wasm] …`): each worker is one thread with its own VM.
pub fn lines_by_thread(log: &str, needle: &str) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains(needle)) {
        let thread = line.split(']').nth(1).map(|t| t.trim_start_matches('[').to_string()).unwrap_or_default();
        *by.entry(thread).or_insert(0) += 1;
    }
    by
}

pub fn threads(by: &BTreeMap<String, usize>) -> BTreeSet<String> {
    by.keys().cloned().collect()
}

/// The magic client bytes on which the `test-trap` build of the filter panics (traps its VM).
pub const TRAP: &str = "HEARTBEAT-TEST-TRAP";

static TRAP_WASM: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();

/// `target/heartbeat-trap.wasm`: the filter built with the `test-trap` feature (the adapter panics on
/// `HEARTBEAT-TEST-TRAP`). Built by the suite itself, once per test process, in its own target directory so
/// that it never waits on the lock of the build running these tests; cargo makes it a no-op when up to date.
pub async fn trap_wasm() -> anyhow::Result<PathBuf> {
    TRAP_WASM.get_or_try_init(build_trap_wasm).await.cloned()
}

async fn build_trap_wasm() -> anyhow::Result<PathBuf> {
    let root = paths::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = root.join("target").join("trap");
    let started = Instant::now();
    let out = tokio::process::Command::new(&cargo)
        .args(["build", "-p", "heartbeat", "--target", "wasm32-unknown-unknown", "--profile", "wasm-release"])
        .args(["--features", "test-trap", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&root)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run {cargo}: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "building the test-trap filter failed (is the wasm32-unknown-unknown target installed? `make build` adds \
         it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = target_dir.join("wasm32-unknown-unknown").join("wasm-release").join("heartbeat.wasm");
    let dest = root.join("target").join("heartbeat-trap.wasm");
    std::fs::copy(&built, &dest)
        .map_err(|e| anyhow::anyhow!("copying {} to {}: {e}", built.display(), dest.display()))?;
    eprintln!("built {} in {:.1?}", dest.display(), started.elapsed());
    Ok(dest)
}
