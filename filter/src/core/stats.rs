//! The filter's statistics, declared once in one list. The core counts; the adapter publishes the counts as
//! proxy-wasm metrics, which Envoy shows in /stats as `wasmcustom.<name>`.

/// Every statistic the filter keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    PingsInjected,
    KeepalivePings,
    PongsStripped,
    PingsUnanswered,
    DeadClosed,
    InjectionsDeferred,
    ProtocolErrors,
    ConnectionsMonitored,
    WasmHeapBytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatKind {
    Counter,
    Gauge,
}

/// The one list: (stat, name, kind, meaning). The README's metrics table is written from it.
const TABLE: [(Stat, &str, StatKind, &str); 9] = [
    (Stat::PingsInjected, "heartbeat.pings_injected", StatKind::Counter, "PINGs sent after read-idle"),
    (Stat::KeepalivePings, "heartbeat.keepalive_pings", StatKind::Counter, "PINGs sent after write-idle"),
    (
        Stat::PongsStripped,
        "heartbeat.pongs_stripped",
        StatKind::Counter,
        "replies to the filter's PINGs removed from the client's stream",
    ),
    (
        Stat::PingsUnanswered,
        "heartbeat.pings_unanswered",
        StatKind::Counter,
        "the filter's PINGs still unanswered when their connection ended",
    ),
    (
        Stat::DeadClosed,
        "heartbeat.dead_closed",
        StatKind::Counter,
        "connections closed because the upstream stopped answering",
    ),
    (
        Stat::InjectionsDeferred,
        "heartbeat.injections_deferred",
        StatKind::Counter,
        "PINGs not sent because the stream was not at a safe point",
    ),
    (
        Stat::ProtocolErrors,
        "heartbeat.protocol_errors",
        StatKind::Counter,
        "connections passed through untouched after bytes that did not parse",
    ),
    (Stat::ConnectionsMonitored, "heartbeat.connections_monitored", StatKind::Gauge, "connections being watched now"),
    (
        Stat::WasmHeapBytes,
        "heartbeat.wasm_heap_bytes",
        StatKind::Gauge,
        "bytes of wasm linear memory, summed over the filter's VMs (one per Envoy thread)",
    ),
];

impl Stat {
    pub const COUNT: usize = TABLE.len();

    pub fn all() -> impl Iterator<Item = Stat> {
        TABLE.iter().map(|row| row.0)
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// The name the filter defines the metric under (Envoy's `/stats` shows it as `wasmcustom.<name>`). A
    /// `const fn`, so that the test suites can declare the names they check as constants.
    pub const fn name(self) -> &'static str {
        Self::row(self).1
    }

    pub const fn kind(self) -> StatKind {
        Self::row(self).2
    }

    pub const fn meaning(self) -> &'static str {
        Self::row(self).3
    }

    // In bounds for every stat: TABLE has one row per variant, in declaration order (checked at compile time
    // below), and a variant's discriminant is its position.
    #[allow(clippy::indexing_slicing)]
    const fn row(self) -> (Stat, &'static str, StatKind, &'static str) {
        TABLE[self.index()]
    }
}

// TABLE lists every variant once, in declaration order (WasmHeapBytes is the last variant; a new one goes
// before it, or this check moves to the new last one): `row` cannot index out of bounds. Evaluated by the
// compiler, where an index out of bounds is a build error, not a panic.
#[allow(clippy::indexing_slicing)]
const _: () = {
    assert!(TABLE.len() == Stat::WasmHeapBytes as usize + 1, "TABLE must have one row per Stat");
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].0 as usize == i, "TABLE must list the stats in declaration order");
        i += 1;
    }
};

/// Current values (counters since start, gauges now) for one worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    values: [i64; Stat::COUNT],
}

impl Stats {
    // `values` has a slot per stat (Stat::COUNT): the lookups always find one.
    pub fn add(&mut self, stat: Stat, n: i64) {
        if let Some(v) = self.values.get_mut(stat.index()) {
            *v = v.saturating_add(n);
        }
    }

    pub fn get(&self, stat: Stat) -> i64 {
        self.values.get(stat.index()).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's metrics table, row for row, as Envoy's /stats shows the names.
    fn readme_rows() -> String {
        Stat::all()
            .map(|s| {
                let kind = match s.kind() {
                    StatKind::Counter => "counter",
                    StatKind::Gauge => "gauge",
                };
                format!("| `wasmcustom.{}` | {kind} | {} |\n", s.name(), s.meaning())
            })
            .collect()
    }

    #[test]
    fn the_readme_lists_every_stat_as_declared_here() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .unwrap_or_else(|e| panic!("reading README.md: {e}"));
        let rows = readme_rows();
        assert!(readme.contains(&rows), "README.md's metrics table should read exactly:\n{rows}");
    }

    #[test]
    fn the_table_is_in_enum_order_and_names_are_unique() {
        for (i, stat) in Stat::all().enumerate() {
            assert_eq!(stat.index(), i, "{stat:?} is out of order in TABLE");
        }
        let mut names: Vec<_> = Stat::all().map(Stat::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Stat::COUNT);
    }
}
