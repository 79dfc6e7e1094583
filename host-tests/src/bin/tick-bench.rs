//! Cost of heartbeat's root tick with many idle monitored connections and nothing due, in wasm
//! fuel (about one unit per wasm instruction, so independent of the machine and its load), and the
//! VM's linear memory per monitored connection.
//!
//! Usage: `tick-bench [path/to/heartbeat.wasm] [counts...]` (default `target/heartbeat.wasm`,
//! 1000 10000 100000). The work per tick must not grow with the connection count: the printed
//! ratios should stay near 1.

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

struct Measure {
    connections: usize,
    tick_fuel: u64,
    idle_tick_fuel: u64,
    memory_before: usize,
    memory_after: usize,
    data_fuel: u64,
    setup: Duration,
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
    for _ in 0..connections {
        let c = host.connect()?;
        // The client's first bytes start monitoring; the server's INFO is life: nothing is due for 2 s.
        host.client_send(c, b"CONNECT {}\r\n")?;
        host.upstream_send(c, b"INFO {}\r\n")?;
    }
    let data_fuel = host.last_fuel(0, "proxy_on_downstream_data").unwrap_or(0);
    let memory_after = host.memory_bytes(0).unwrap_or(0);
    // Ticks while every connection is idle but none is due yet (the first deadline is at 2 s).
    host.advance(Duration::from_millis(500))?;
    let tick_fuel = host.last_fuel(0, "proxy_on_tick").unwrap_or(0);
    assert_eq!(host.metric_value(Stat::ConnectionsMonitored.name()), connections as u64, "all monitored");
    assert_eq!(host.metric_value(Stat::PingsInjected.name()), 0, "nothing was due");
    Ok(Measure {
        connections,
        tick_fuel,
        idle_tick_fuel,
        memory_before,
        memory_after,
        data_fuel,
        setup: started.elapsed(),
    })
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
    println!("heartbeat tick cost with idle monitored connections, nothing due ({path})");
    println!(
        "{:>12} {:>14} {:>10} {:>16} {:>18} {:>14}",
        "connections", "fuel/tick", "vs first", "fuel/client-data", "memory/conn (B)", "setup"
    );
    let mut first: Option<u64> = None;
    let mut first_row = true;
    for n in counts {
        let m = measure(&plugin, n).unwrap_or_else(|e| panic!("{e}"));
        let base = *first.get_or_insert(m.tick_fuel.max(1));
        let per_conn = m.memory_after.saturating_sub(m.memory_before) as f64 / m.connections.max(1) as f64;
        println!(
            "{:>12} {:>14} {:>9.2}x {:>16} {:>18.1} {:>13.1?}",
            m.connections,
            m.tick_fuel,
            m.tick_fuel as f64 / base as f64,
            m.data_fuel,
            per_conn,
            m.setup
        );
        if first_row {
            println!("{:>12} {:>14}   (the same host before any connection)", 0, m.idle_tick_fuel);
            first_row = false;
        }
    }
    println!("fuel ~ wasm instructions; a tick that stays flat does not scan the connections.");
}
