//! Cost of heartbeat's root tick with many idle monitored connections, in wasm fuel (about one unit
//! per wasm instruction, so independent of the machine and its load), and the VM's linear memory per
//! monitored connection. Two ticks per connection count: one with nothing due, and one in which 1% of
//! the connections are due (their read-idle timer fires and each injects a PING).
//!
//! Usage: `tick-bench [path/to/heartbeat.wasm] [counts...]` (default `target/heartbeat.wasm`,
//! 1000 10000 100000). Prints a table and writes it as markdown to `target/bench/tick.md`. The work
//! per tick with nothing due must not grow with the connection count: the printed ratios should stay
//! near 1; the tick with 1% due costs about the same per due connection at every count.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use heartbeat::core::config::Timings;
use heartbeat::core::stats::Stat;
use heartbeat_host_tests::{Host, HostError, HostOptions, Plugin};

/// NATS with the filter's example timings (read idle 2 s, ping interval 1 s, 3 missed), keepalive 30 s.
fn config() -> String {
    let mut v = Timings::EXAMPLE.config_json("nats");
    v["write_idle_keepalive"] = "30s".into();
    v.to_string()
}
/// The configuration's `read_idle_timeout`: a connection whose upstream last spoke this long ago is due.
const READ_IDLE: Duration = Timings::EXAMPLE.read_idle_timeout;

struct Measure {
    connections: usize,
    tick_fuel: u64,
    idle_tick_fuel: u64,
    /// Connections due in the measured tick (1%), and that tick's fuel.
    due: usize,
    due_tick_fuel: u64,
    memory_before: usize,
    memory_after: usize,
    data_fuel: u64,
    setup: Duration,
}

fn open(host: &mut Host, count: usize) -> Result<(), HostError> {
    for _ in 0..count {
        let c = host.connect()?;
        // The client's first bytes start monitoring; the server's INFO is life: nothing is due for 2 s.
        host.client_send(c, b"CONNECT {}\r\n")?;
        host.upstream_send(c, b"INFO {}\r\n")?;
    }
    Ok(())
}

fn measure(plugin: &Plugin, connections: usize) -> Result<Measure, HostError> {
    let started = Instant::now();
    let options =
        HostOptions { plugin_configuration: config().into(), record_callbacks: false, ..HostOptions::default() };
    let mut host = Host::start(plugin, options)?;
    // One tick with no connection at all: the floor.
    host.advance(Duration::from_millis(100))?;
    let idle_tick_fuel = host.last_fuel(0, "proxy_on_tick").unwrap_or(0);
    let memory_before = host.memory_bytes(0).unwrap_or(0);
    let period = host.tick_period(0).expect("the filter set a tick period");
    // 1% of the connections first, the rest half a read-idle later: the first group falls due alone.
    let due = (connections / 100).max(1).min(connections);
    open(&mut host, due)?;
    host.advance(READ_IDLE / 2)?;
    open(&mut host, connections - due)?;
    let data_fuel = host.last_fuel(0, "proxy_on_downstream_data").unwrap_or(0);
    let memory_after = host.memory_bytes(0).unwrap_or(0);
    // Ticks while every connection is idle but none is due yet (the first deadline is 2 s after the first group).
    host.advance(READ_IDLE / 4)?;
    let tick_fuel = host.last_fuel(0, "proxy_on_tick").unwrap_or(0);
    assert_eq!(host.metric_value(Stat::ConnectionsMonitored.name()), connections as u64, "all monitored");
    assert_eq!(host.metric_value(Stat::PingsInjected.name()), 0, "nothing was due");
    // One tick at a time until the first group's timers fire: all of them in the same tick, nobody else.
    let mut steps: u128 = 0;
    while host.metric_value(Stat::PingsInjected.name()) == 0 {
        assert!(steps < 2 * READ_IDLE.as_millis() / period.as_millis(), "no PING within a read-idle timeout");
        host.advance(period)?;
        steps += 1;
    }
    let due_tick_fuel = host.last_fuel(0, "proxy_on_tick").unwrap_or(0);
    assert_eq!(host.metric_value(Stat::PingsInjected.name()), due as u64, "exactly the 1% were due in that tick");
    Ok(Measure {
        connections,
        tick_fuel,
        idle_tick_fuel,
        due,
        due_tick_fuel,
        memory_before,
        memory_after,
        data_fuel,
        setup: started.elapsed(),
    })
}

impl Measure {
    fn memory_per_connection(&self) -> f64 {
        self.memory_after.saturating_sub(self.memory_before) as f64 / self.connections.max(1) as f64
    }
    /// Fuel the due connections added to the tick, per due connection.
    fn fuel_per_due(&self) -> f64 {
        self.due_tick_fuel.saturating_sub(self.tick_fuel) as f64 / self.due.max(1) as f64
    }
}

/// `target/bench/tick.md` in the repository (this crate's parent directory).
fn markdown_path() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here).join("target").join("bench").join("tick.md")
}

fn markdown(path: &str, rows: &[Measure]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### Tick cost and memory per idle connection (wasm host, fuel)\n");
    let _ = writeln!(
        md,
        "`{path}` on the wasmtime proxy-wasm host (`host-tests`), NATS, read idle 2 s, ping interval 1 s, one worker. \
         Fuel is about one unit per wasm instruction, so it does not depend on the machine or its load; host calls \
         (the buffer write and continue of an injected PING) are native and not counted.\n"
    );
    let _ = writeln!(
        md,
        "| connections | fuel/tick, nothing due | vs first | fuel/tick, 1% due | PINGs in that tick | fuel per due connection | fuel per client chunk | wasm bytes per connection |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let base = rows.first().map(|m| m.tick_fuel.max(1)).unwrap_or(1);
    for m in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2}x | {} | {} | {:.0} | {} | {:.1} |",
            m.connections,
            m.tick_fuel,
            m.tick_fuel as f64 / base as f64,
            m.due_tick_fuel,
            m.due,
            m.fuel_per_due(),
            m.data_fuel,
            m.memory_per_connection()
        );
    }
    if let Some(m) = rows.first() {
        let _ = writeln!(md, "| 0 | {} | | | | | | |", m.idle_tick_fuel);
    }
    let _ = writeln!(
        md,
        "\nA tick with nothing due costs the same at every count: it does not scan the connections. A tick with 1% \
         due costs about the same per due connection at every count (a due connection is popped from the timer \
         heap, O(log n)). Memory per connection is the growth of the VM's linear memory over the connections."
    );
    md
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "target/heartbeat.wasm".into());
    let counts: Vec<usize> = {
        let given: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
        if given.is_empty() {
            vec![1_000, 10_000, 100_000]
        } else {
            given
        }
    };
    let plugin = Plugin::from_file(&path).unwrap_or_else(|e| panic!("{e} (run `make build` first)"));
    println!("heartbeat tick cost with idle monitored connections ({path})");
    println!(
        "{:>12} {:>14} {:>10} {:>14} {:>8} {:>12} {:>16} {:>18} {:>14}",
        "connections",
        "fuel/tick",
        "vs first",
        "1% due",
        "PINGs",
        "fuel/due",
        "fuel/client-data",
        "memory/conn (B)",
        "setup"
    );
    let mut rows: Vec<Measure> = Vec::new();
    for n in counts {
        let m = measure(&plugin, n).unwrap_or_else(|e| panic!("{e}"));
        let base = rows.first().map(|f| f.tick_fuel.max(1)).unwrap_or(m.tick_fuel.max(1));
        println!(
            "{:>12} {:>14} {:>9.2}x {:>14} {:>8} {:>12.0} {:>16} {:>18.1} {:>13.1?}",
            m.connections,
            m.tick_fuel,
            m.tick_fuel as f64 / base as f64,
            m.due_tick_fuel,
            m.due,
            m.fuel_per_due(),
            m.data_fuel,
            m.memory_per_connection(),
            m.setup
        );
        if rows.is_empty() {
            println!("{:>12} {:>14}   (the same host before any connection)", 0, m.idle_tick_fuel);
        }
        rows.push(m);
    }
    println!("fuel ~ wasm instructions; a tick with nothing due that stays flat does not scan the connections;");
    println!("'1% due': the tick in which 1% of the connections' read-idle timers fire and each injects a PING.");
    let out = markdown_path();
    let written = out
        .parent()
        .map(std::fs::create_dir_all)
        .unwrap_or(Ok(()))
        .and_then(|()| std::fs::write(&out, markdown(&path, &rows)));
    match written {
        Ok(()) => println!("wrote {}", out.display()),
        Err(e) => panic!("cannot write {}: {e}", out.display()),
    }
}
