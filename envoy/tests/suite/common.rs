//! Shared by the integration tests: the mode (Docker checked, images built) and waiting helpers.
#![allow(dead_code)]

use heartbeat_envoy_tests::{Envoy, Mode};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
    let start = Instant::now();
    loop {
        let s = envoy.filter_stats().await?;
        if pred(&s) || start.elapsed() > limit {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
