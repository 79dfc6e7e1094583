//! Shared by the integration tests: one runtime for all cases, a watchdog, the mode (Docker checked, images
//! built) and waiting helpers.
#![allow(dead_code)]

use heartbeat_envoy_tests::{Envoy, Mode};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{mpsc, LazyLock};
use std::time::{Duration, Instant};

/// The longest a case may run: ten times the slowest case here (the fault matrix, under a minute).
const CASE_LIMIT: Duration = Duration::from_secs(600);
/// After `CASE_LIMIT` the case's future is dropped; if even that does not return (a blocked Docker call in a
/// container's `Drop`), the watchdog ends the whole test process this much later, loudly.
const ABORT_GRACE: Duration = Duration::from_secs(120);

/// Every case runs on this one runtime. testcontainers keeps one Docker client per process while any
/// container is alive and hands it to every caller; with a runtime per test (`#[tokio::test]`) that
/// client's pooled connections belong to whichever test's runtime opened them, and outlive it. One
/// runtime for the whole binary removes that sharing across runtimes.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_name("envoy-suite")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build the suite's tokio runtime: {e}"))
});

/// Runs one case on the shared runtime under a time limit, so that a hang fails that case (and, failing
/// that, the process) instead of stalling CI until its own limit.
pub fn run(case: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let name = std::thread::current().name().unwrap_or("an Envoy case").to_string();
    let (done, finished) = mpsc::channel::<()>();
    let watched = name.clone();
    std::thread::spawn(move || {
        if finished.recv_timeout(CASE_LIMIT + ABORT_GRACE) == Err(mpsc::RecvTimeoutError::Timeout) {
            let containers = std::process::Command::new("docker")
                .args(["ps", "-a", "--format", "{{.ID}} {{.Image}} {{.Status}} {{.Command}}"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("(docker ps failed: {e})"));
            eprintln!(
                "watchdog: {watched} is still running {:?} after it started and did not return after its \
                 time limit; ending the test process. Envoy logs: target/envoy-runs/\ncontainers:\n{containers}",
                CASE_LIMIT + ABORT_GRACE
            );
            std::process::exit(101);
        }
    });
    let result = RUNTIME.block_on(async {
        match tokio::time::timeout(CASE_LIMIT, case).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("{name} did not finish within {CASE_LIMIT:?}: something hung")),
        }
    });
    let _ = done.send(());
    result
}

pub async fn mode() -> Mode {
    match Mode::ready().await {
        Ok(m) => m,
        Err(e) => panic!("{e:#}"),
    }
}

/// Polls the filter's metrics until `pred` holds or `limit` passes; returns the last reading.
pub async fn wait_stats(
    envoy: &Envoy,
    limit: Duration,
    pred: impl Fn(&BTreeMap<String, i64>) -> bool,
) -> anyhow::Result<BTreeMap<String, i64>> {
    poll_until(limit, || envoy.filter_stats(), pred).await
}

/// Polls `read` every 100 ms until `pred` holds or `limit` passes; returns the last reading.
pub async fn poll_until<T, F: std::future::Future<Output = anyhow::Result<T>>>(
    limit: Duration,
    mut read: impl FnMut() -> F,
    pred: impl Fn(&T) -> bool,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        let s = read().await?;
        if pred(&s) || start.elapsed() > limit {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
