//! The WAT probe (`heartbeat_host_tests::probe`) in real Envoy and on this host: the same script
//! per behaviour, then the statuses the probe reported (its stats) and the bytes are compared.
//! This checks the host's Envoy rules themselves, independently of any product filter.

use std::time::Duration;

use heartbeat_host_tests::script::{Script, Step};

/// Stats that depend on where and when they are measured, not on the rules: the tick count and
/// clock (Envoy also ticks a root context on its main thread), the connection id.
/// Histograms are not plain numbers in Envoy's /stats.
pub const NOT_COMPARED: [&str; 4] =
    ["wasmcustom.ticks", "wasmcustom.tick_time_ms", "wasmcustom.prop_conn_id", "wasmcustom.m_hist"];

fn step_client(b: &str) -> Step {
    Step::ClientSend(b.as_bytes().to_vec())
}

fn step_upstream(b: &str) -> Step {
    Step::UpstreamSend(b.as_bytes().to_vec())
}

fn wait(ms: u64) -> Step {
    Step::Wait(Duration::from_millis(ms))
}

fn probe(mode: &str, what: &str, steps: Vec<Step>) -> Script {
    Script { name: format!("probe {mode}: {what}"), configuration: mode.into(), steps }
}

pub fn all() -> Vec<Script> {
    vec![
        probe(
            "p",
            "pause+continue forwards at once; a tick appends to the read buffer",
            vec![step_client("hello"), wait(300), step_upstream("PONG\r\nabc"), wait(100)],
        ),
        probe(
            "c",
            "Continue drops the buffer: set_buffer from the tick is BadArgument",
            vec![step_client("hi"), wait(300)],
        ),
        probe(
            "h",
            "Pause without continue holds the bytes until the tick continues",
            vec![step_client("abc"), wait(300)],
        ),
        probe("s", "set_buffer prepend / append / middle / replace", vec![step_client("data"), wait(100)]),
        probe("u", "continue_stream(Upstream)", vec![step_client("x"), wait(100)]),
        probe("m", "metric rules", vec![step_client("x"), wait(100)]),
        probe("d", "shared data and compare-and-swap", vec![step_client("x"), wait(100)]),
        probe("a", "properties", vec![step_client("x"), wait(300)]),
        probe("x", "close_stream(Downstream) from the tick", vec![step_upstream("bye"), wait(300)]),
        probe("X", "close_stream(Upstream) from the tick", vec![step_upstream("bye"), wait(300)]),
        probe("q", "Pause on the write path", vec![step_upstream("x"), wait(100), step_upstream("y"), wait(100)]),
        probe("Y", "close while the upstream's bytes are written", vec![step_upstream("data"), wait(200)]),
        probe(
            "w",
            "Pause in on_new_connection: tcp_proxy waits for the tick's continue",
            vec![step_client("x"), wait(300)],
        ),
        probe(
            "c",
            "end of stream both ways",
            vec![
                step_client("a"),
                wait(50),
                Step::UpstreamFin,
                wait(50),
                step_client("b"),
                // Apart, or the kernel hands Envoy "b" and the FIN in one read (one callback with both).
                wait(50),
                Step::ClientFin,
                wait(200),
            ],
        ),
    ]
}
