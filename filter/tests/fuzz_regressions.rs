//! Inputs the fuzz targets (`filter/fuzz`, `make fuzz`) found, replayed through the public API as plain tests so
//! that `cargo test` keeps them fixed. Each test names the target and the artifact that found it.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use heartbeat::core::config::Config;
use heartbeat::core::connection::Dead;
use heartbeat::core::time::Instant;
use heartbeat::core::timers::ConnId;
use heartbeat::core::worker::{Transport, Worker};

/// Runs `scenario` on its own thread and fails if it has not returned within `limit`: a scenario that spins
/// must fail the test, not hang the suite (the spinning thread is left to the end of the process).
fn returns_within(limit: Duration, what: &str, scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        scenario();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not return within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// A proxy that never has a buffer to write a PING into (Envoy after the connection's buffer went away).
struct NoBuffer;

impl Transport for NoBuffer {
    fn inject(&mut self, _: ConnId, _: &[u8]) -> bool {
        false
    }

    fn close(&mut self, _: ConnId, _: &Dead, _: &str) {}
}

/// Found by the `connection` target (libFuzzer timeout, artifact `timeout-612094a7...`): a read-idle probe
/// whose PING could not be written still counts a miss (`misses = 1`, no PING owed); when the next probe is
/// due and the client is mid-frame (or owes nothing the filter may interleave with), the deferral sets
/// `probe_retry` but the read deadline with misses counted ignored it, so the connection's deadline stayed in
/// the past and `Worker::tick` popped and re-armed it forever: the worker (an Envoy worker's VM) hung.
#[test]
fn a_probe_not_written_then_deferred_does_not_spin_the_tick() {
    let t = Instant::from_millis;
    for (protocol, start, answer, mid_or_owed) in [
        ("nats", &b"CONNECT {}\r\n"[..], &b""[..], &b"PUB a 5\r\nhel"[..]),
        ("redis", &b"PING\r\n"[..], &b"+PONG\r\n"[..], &b"GET k\r\n"[..]),
    ] {
        returns_within(Duration::from_secs(10), &format!("{protocol}: Worker::tick"), move || {
            let json = format!(r#"{{"protocol": "{protocol}", "read_idle_timeout": "10ms", "ping_interval": "10ms"}}"#);
            let mut worker = Worker::new(Config::from_json(json.as_bytes()).unwrap());
            worker.open(1, t(1000));
            worker.client_data(1, start, false, t(1000));
            worker.upstream_data(1, answer, false, t(1000));
            // Read-idle: the probe is due, and Envoy has no buffer for it.
            worker.tick(t(1010), &mut NoBuffer);
            // The client is now mid-frame (NATS) or waits for a reply (Redis): the next probe is deferred.
            worker.client_data(1, mid_or_owed, false, t(1010));
            worker.tick(t(1030), &mut NoBuffer);
            worker.tick(t(1100), &mut NoBuffer);
            worker.closed(1);
        });
    }
}
