//! The idle bench's table, as markdown (`target/bench/idle.md`, included in BENCHMARKS.md) and printed.

use super::Variant;
use std::fmt::Write as _;

/// One Envoy over the window.
#[derive(Clone, Debug)]
pub struct Row {
    pub variant: Variant,
    /// VmRSS before any connection, bytes.
    pub rss_empty: u64,
    /// VmRSS with every connection open: the median of the samples over the window, bytes.
    pub rss: u64,
    /// utime + stime over the window, seconds.
    pub cpu_s: f64,
}

impl Row {
    pub fn rss_per_connection(&self, connections: usize) -> f64 {
        self.rss.saturating_sub(self.rss_empty) as f64 / connections.max(1) as f64
    }
    pub fn cpu_percent(&self, window_s: f64) -> f64 {
        100.0 * self.cpu_s / window_s.max(1e-9)
    }
    pub fn cpu_ms_per_connection_minute(&self, connections: usize, window_s: f64) -> f64 {
        self.cpu_s * 1000.0 / connections.max(1) as f64 / (window_s.max(1e-9) / 60.0)
    }
}

#[derive(Clone, Debug)]
pub struct Report {
    pub connections: usize,
    pub window_s: f64,
    pub quick: bool,
    pub mode: String,
    pub rows: Vec<Row>,
    /// heartbeat's PINGs (read-idle probes and keepalives) and stripped PONGs over the window.
    pub pings: i64,
    pub pongs_stripped: i64,
    /// nats-server's own PINGs the clients answered over the window, per variant (same order as `rows`).
    pub server_pings: Vec<u64>,
    pub machine: String,
    /// The whole machine's CPU over the window, percent of all cores, and the share of it that was not this
    /// bench's processes (the three Envoys, the three nats-servers and the client).
    pub machine_busy_pct: f64,
    pub others_pct: f64,
    pub load_before: f64,
    pub load_after: f64,
    pub filter_config: String,
    /// Listeners (and clusters) the connections were spread over.
    pub listeners: usize,
    /// Why the run differs from what was asked (fewer connections than wanted), shown under the title.
    pub note: Option<String>,
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

/// "10,000"
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    fn row(&self, v: Variant) -> Option<&Row> {
        self.rows.iter().find(|r| r.variant == v)
    }

    pub fn markdown(&self) -> String {
        let (n, w) = (self.connections, self.window_s);
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### {} idle connections through one Envoy worker: memory and CPU{}\n",
            thousands(n),
            if self.quick { " (quick run)" } else { "" }
        );
        if let Some(note) = &self.note {
            let _ = writeln!(md, "**Note:** {note}\n");
        }
        let _ = writeln!(
            md,
            "Envoy 1.40 ({} mode, `--concurrency 1`), {} idle NATS connections per Envoy (each completed `CONNECT` and \
             `PING`, then sent nothing), each Envoy in front of its own nats-server, the connections spread over {} listeners of {} (each with \
             its own cluster: Envoy's default circuit breakers allow 1,024 connections per cluster, and the harness sets \
             none; with the filter that is one root context, and one tick, per listener). The three Envoys ran side by side \
             during the same {:.0} s window, so that whatever else the machine did weighed on all three alike; CPU is \
             each Envoy's own utime + stime (`/proc/<pid>/stat`), RSS its VmRSS (median of 1 s samples), per \
             connection over the same Envoy before any connection.\n",
            self.mode,
            thousands(n),
            self.listeners,
            thousands(n.div_ceil(self.listeners.max(1))),
            w
        );
        let _ = writeln!(
            md,
            "| setup | RSS MB | RSS per connection | CPU % of one core | CPU ms per connection per minute | RSS per connection vs no-op | CPU vs no-op |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        let noop = self.row(Variant::Noop);
        for r in &self.rows {
            let (rss_ratio, cpu_ratio) = match noop {
                Some(b) => (ratio(r.rss_per_connection(n), b.rss_per_connection(n)), ratio(r.cpu_s, b.cpu_s)),
                None => ("n/a".into(), "n/a".into()),
            };
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.1} KB | {:.1} | {:.3} | {} | {} |",
                r.variant.label(),
                r.rss as f64 / 1e6,
                r.rss_per_connection(n) / 1e3,
                r.cpu_percent(w),
                r.cpu_ms_per_connection_minute(n, w),
                rss_ratio,
                cpu_ratio
            );
        }
        if let (Some(h), Some(b)) = (self.row(Variant::Heartbeat), noop) {
            let _ = writeln!(
                md,
                "\nWhat heartbeat's timers cost over the no-op filter: {:.1} KB per connection, {:.3} ms of CPU per \
                 connection per minute ({:.1}% of one core for {} connections). In the window heartbeat sent {:.0} \
                 PINGs/s ({:.2} per connection per second; read idle 2 s: one PING every ~2 s per connection, each \
                 answered) and stripped {:.0} PONGs/s; no client received a byte it had not asked for.",
                (h.rss_per_connection(n) - b.rss_per_connection(n)) / 1e3,
                h.cpu_ms_per_connection_minute(n, w) - b.cpu_ms_per_connection_minute(n, w),
                h.cpu_percent(w) - b.cpu_percent(w),
                thousands(n),
                self.pings as f64 / w,
                self.pings as f64 / w / n.max(1) as f64,
                self.pongs_stripped as f64 / w,
            );
        }
        let _ = writeln!(
            md,
            "\nFilter configuration: `{}`. nats-server PINGs answered by the clients in the window: {}.",
            self.filter_config,
            self.rows
                .iter()
                .zip(&self.server_pings)
                .map(|(r, p)| format!("{} {}", r.variant.label(), p))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            md,
            "\nMachine: {}. During the window the machine's cores were {:.0}% busy, {:.0}% of them with work other \
             than this bench (load average {:.2} before, {:.2} after){}",
            self.machine,
            self.machine_busy_pct,
            self.others_pct,
            self.load_before,
            self.load_after,
            if self.others_pct > 10.0 {
                ": the machine was shared (other builds running), so the CPU figures are noisy; the ratios between \
                 the three Envoys, measured at the same time, are the robust part."
            } else {
                "."
            }
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_row_per_variant_with_ratios_over_the_noop_filter() {
        let row = |variant, rss_empty, rss, cpu_s| Row { variant, rss_empty, rss, cpu_s };
        let r = Report {
            connections: 10_000,
            window_s: 60.0,
            quick: false,
            mode: "Process".into(),
            rows: vec![
                row(Variant::Alone, 40_000_000, 100_000_000, 0.5),
                row(Variant::Noop, 40_000_000, 140_000_000, 1.0),
                row(Variant::Heartbeat, 40_000_000, 150_000_000, 12.0),
            ],
            pings: 300_000,
            pongs_stripped: 299_000,
            server_pings: vec![0, 0, 0],
            machine: "2 x test CPU".into(),
            machine_busy_pct: 30.0,
            others_pct: 5.0,
            load_before: 0.1,
            load_after: 0.5,
            filter_config: "{}".into(),
            note: None,
            listeners: 10,
        };
        let md = r.markdown();
        assert!(md.contains("### 10,000 idle connections"), "{md}");
        assert!(md.contains("| Envoy + heartbeat | 150.0 | 11.0 KB | 20.0 | 1.200 | 1.10x | 12.00x |"), "{md}");
        assert!(md.contains("| Envoy alone | 100.0 | 6.0 KB | 0.8 | 0.050 | 0.60x | 0.50x |"), "{md}");
        assert!(md.contains("1.0 KB per connection, 1.100 ms"), "{md}");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(999), "999");
    }
}
