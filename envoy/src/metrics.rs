//! The filter's metrics as they appear in Envoy's `/stats` (`wasmcustom.` prefix removed; the names are the
//! filter's own, `heartbeat::core::stats::Stat`), and the consistency rule the suite checks after a run: every PING the
//! filter sent (read-idle probes and write-idle keepalives) either had its PONG stripped or was still
//! unanswered when its connection ended.

use heartbeat::core::stats::Stat;
use std::collections::BTreeMap;

pub const PINGS_INJECTED: &str = Stat::PingsInjected.name();
pub const KEEPALIVE_PINGS: &str = Stat::KeepalivePings.name();
pub const PONGS_STRIPPED: &str = Stat::PongsStripped.name();
pub const PINGS_UNANSWERED: &str = Stat::PingsUnanswered.name();
pub const DEAD_CLOSED: &str = Stat::DeadClosed.name();
pub const DEFERRED: &str = Stat::InjectionsDeferred.name();
pub const PROTOCOL_ERRORS: &str = Stat::ProtocolErrors.name();
pub const MONITORED: &str = Stat::ConnectionsMonitored.name();
pub const WASM_HEAP: &str = Stat::WasmHeapBytes.name();

pub fn get(stats: &BTreeMap<String, i64>, name: &str) -> anyhow::Result<i64> {
    stats.get(name).copied().ok_or_else(|| {
        anyhow::anyhow!("metric {name} not in /stats; the filter's metrics are: {:?}", stats.keys().collect::<Vec<_>>())
    })
}

/// Every PING the filter sent, probes and keepalives.
pub fn pings_sent(stats: &BTreeMap<String, i64>) -> anyhow::Result<i64> {
    Ok(get(stats, PINGS_INJECTED)? + get(stats, KEEPALIVE_PINGS)?)
}

/// After every monitored connection has closed: PINGs sent = PONGs stripped + unanswered at close.
pub fn check_consistent(stats: &BTreeMap<String, i64>) -> anyhow::Result<()> {
    let sent = pings_sent(stats)?;
    let stripped = get(stats, PONGS_STRIPPED)?;
    let unanswered = get(stats, PINGS_UNANSWERED)?;
    anyhow::ensure!(
        sent == stripped + unanswered,
        "PINGs sent {sent} != PONGs stripped {stripped} + unanswered at close {unanswered} (all: {stats:?})"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_counts_keepalives_and_unanswered() {
        let s = |v: [i64; 4]| -> BTreeMap<String, i64> {
            [PINGS_INJECTED, KEEPALIVE_PINGS, PONGS_STRIPPED, PINGS_UNANSWERED]
                .iter()
                .map(|n| n.to_string())
                .zip(v)
                .collect()
        };
        assert!(check_consistent(&s([5, 2, 6, 1])).is_ok());
        assert!(check_consistent(&s([5, 2, 6, 0])).is_err());
        assert!(check_consistent(&BTreeMap::new()).is_err());
    }
}
