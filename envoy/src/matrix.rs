//! The fault matrix: per fault, time until the client's connection is closed for Envoy alone, Envoy with
//! tight cluster TCP keepalive, and Envoy with the heartbeat filter. Printed as a table and written as JSON.
//! `faults::matrix` fills it.

use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub setup: String,
    /// Seconds until the client's connection closed; None: still open when watching stopped.
    pub closed_after_s: Option<f64>,
    pub watched_s: f64,
    pub how: String,
    /// What this case must show, e.g. "closed within 6.0 s" or "open".
    pub expected: String,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub fault: String,
    pub protocol: String,
    /// The heartbeat filter's configuration on this row's "envoy + heartbeat" listener.
    pub filter_config: serde_json::Value,
    pub cells: Vec<Cell>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Matrix {
    pub envoy_mode: String,
    pub rows: Vec<Row>,
}

pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

impl Matrix {
    /// Every cell that did not behave as expected, one line each.
    pub fn unexpected(&self) -> Vec<String> {
        self.rows
            .iter()
            .flat_map(|r| {
                r.cells
                    .iter()
                    .filter(|c| !c.ok)
                    .map(move |c| format!("{} / {}: expected {}, got {}", r.fault, c.setup, c.expected, c.how))
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let setups: Vec<String> =
            self.rows.first().map(|r| r.cells.iter().map(|c| c.setup.clone()).collect()).unwrap_or_default();
        let mut out = format!("{:<40}", "fault (protocol)");
        for s in &setups {
            out += &format!(" | {s:<24}");
        }
        out += "\n";
        out += &"-".repeat(40 + setups.len() * 27);
        out += "\n";
        for r in &self.rows {
            out += &format!("{:<40}", format!("{} ({})", r.fault, r.protocol));
            for c in &r.cells {
                let v = match c.closed_after_s {
                    Some(s) => format!("closed {s:.2} s"),
                    None => format!("open at {:.0} s", c.watched_s),
                };
                out += &format!(" | {:<24}", format!("{v}{}", if c.ok { "" } else { " !!" }));
            }
            out += "\n";
        }
        out
    }

    /// Writes `target/fault-matrix.json` at the repository root.
    pub fn write_json(&self) -> anyhow::Result<std::path::PathBuf> {
        let path = crate::paths::repo_root().join("target").join("fault-matrix.json");
        std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
        std::fs::write(&path, serde_json::to_string_pretty(self)?)?;
        Ok(path)
    }
}
