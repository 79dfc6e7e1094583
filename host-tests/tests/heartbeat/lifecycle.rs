//! A connection's life around the heartbeat: upstream not yet connected, end of stream, resets,
//! several workers, a blocked upstream, and the gauge of monitored connections.

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::{CloseCause, ConnId, ConnectOptions, HostOptions};

use super::common::heartbeat::*;
use super::support::*;

fn answer_pings(h: &mut TestHost, c: ConnId, answered: &mut usize) {
    let received = count(&h.upstream_received(c), b"PING\r\n");
    while *answered < received && h.closed(c).is_none() {
        h.upstream_send(c, "PONG\r\n");
        *answered += 1;
    }
}

#[test]
fn a_slow_upstream_connect_is_not_counted_as_silence() {
    let mut h = start("nats");
    let c = h.connect_with_delay(secs(3));
    h.client_send(c, "CONNECT {}\r\n");
    h.advance(ms(2900));
    assert_eq!(h.upstream_received(c), b"", "tcp_proxy holds the client until the upstream is up");
    h.advance(ms(100));
    assert_eq!(h.upstream_received(c), b"CONNECT {}\r\n");
    h.upstream_send(c, "INFO {}\r\n");
    let mut answered = 0;
    run_for(&mut h, secs(12), TICK, |h| answer_pings(h, c, &mut answered));
    assert!(h.closed(c).is_none(), "closed: {:?}", h.closed(c));
    let pings = arrivals(&h, c, b"PING\r\n");
    assert!(!pings.is_empty());
    assert!(pings[0] >= secs(3) + READ_IDLE, "first PING at {:?}, before the upstream was silent for 2 s", pings[0]);
    h.assert_no_faults();
}

#[test]
fn an_upstream_that_never_answers_after_a_slow_connect_is_still_closed() {
    let mut h = start("nats");
    let c = h.connect_with_delay(secs(3));
    h.client_send(c, "CONNECT {}\r\n");
    h.advance(secs(20));
    let closed = h.closed(c).expect("dead upstream closed");
    assert!(closed.at <= secs(3) + READ_IDLE + INTERVAL * MAX_MISSED + TICK, "{closed:?}");
}

#[test]
fn nothing_is_injected_after_the_clients_end_of_stream() {
    let mut h = start("nats");
    let c = h.connect();
    h.client_send(c, "CONNECT {}\r\n");
    h.upstream_send(c, "INFO {}\r\n");
    h.client_fin(c);
    assert_eq!(h.upstream_saw_fin(c).unwrap(), Some(secs(0)));
    h.advance(secs(10));
    assert_eq!(h.upstream_received(c), b"CONNECT {}\r\n");
    assert_eq!(h.metric_value(PINGS_INJECTED), 0);
    h.assert_no_faults();
}

#[test]
fn the_upstreams_end_of_stream_ends_monitoring() {
    let mut h = start("nats");
    let c = h.connect();
    h.client_send(c, "CONNECT {}\r\n");
    h.upstream_send(c, "INFO {}\r\n");
    h.upstream_fin(c);
    assert_eq!(h.client_saw_fin(c).unwrap(), Some(secs(0)));
    h.advance(secs(10));
    assert!(h.closed(c).is_none(), "a half-closed connection is the client's to close");
    assert_eq!(h.metric_value(PINGS_INJECTED), 0);
    assert_eq!(h.metric_value(CONNECTIONS_MONITORED), 0);
    h.client_fin(c);
    assert_eq!(h.closed(c).unwrap().cause, CloseCause::BothHalfClosed);
}

#[test]
fn the_monitored_gauge_follows_connections_on_every_worker() {
    let mut h = start_with(&config("nats"), HostOptions::default().workers(2));
    let conns: Vec<ConnId> = (0..4).map(|_| h.connect()).collect();
    for &c in &conns {
        h.client_send(c, "CONNECT {}\r\n");
        h.upstream_send(c, "INFO {}\r\n");
    }
    h.advance(TICK);
    assert_eq!(h.metric_value(CONNECTIONS_MONITORED), 4);
    assert_eq!((h.worker_of(conns[0]).unwrap(), h.worker_of(conns[1]).unwrap()), (0, 1));
    h.client_reset(conns[0]);
    h.upstream_reset(conns[1]);
    h.advance(TICK);
    assert_eq!(h.metric_value(CONNECTIONS_MONITORED), 2);
    // conns[2] (worker 0) answers, conns[3] (worker 1) is dead.
    let mut answered = 0;
    run_for(&mut h, secs(10), TICK, |h| answer_pings(h, conns[2], &mut answered));
    assert!(h.closed(conns[2]).is_none());
    let dead = h.closed(conns[3]).expect("the silent one is closed");
    assert_within(dead.at, READ_IDLE + INTERVAL * MAX_MISSED, TICK);
    assert_eq!(h.metric_value(DEAD_CLOSED), 1);
    assert_eq!(h.metric_value(CONNECTIONS_MONITORED), 1);
    h.assert_no_faults();
}

#[test]
fn a_blocked_upstream_still_gets_detected() {
    let mut h = start_with(&config("nats"), HostOptions::default().upstream_buffer_limit(64));
    let c = h.connect();
    h.client_send(c, "CONNECT {}\r\n");
    h.upstream_send(c, "INFO {}\r\n");
    h.set_upstream_blocked(c, true);
    h.client_send(c, format!("PUB foo 100\r\n{}\r\n", "x".repeat(100)));
    assert!(!h.client_reading_enabled(c).unwrap(), "above the limit tcp_proxy stops reading the client");
    h.advance(secs(10));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, READ_IDLE + INTERVAL * MAX_MISSED, TICK);
}

#[test]
fn a_connection_closed_by_the_client_is_forgotten() {
    let mut h = start("nats");
    let c = h.connect();
    h.client_send(c, "CONNECT {}\r\n");
    h.advance(TICK);
    assert_eq!(h.metric_value(CONNECTIONS_MONITORED), 1);
    h.client_reset(c);
    h.advance(secs(10));
    assert_eq!(h.metric_value(CONNECTIONS_MONITORED), 0);
    assert_eq!(h.metric_value(PINGS_INJECTED), 0);
    assert_eq!(h.metric_value(DEAD_CLOSED), 0);
    h.assert_no_faults();
}

#[test]
fn connect_pinned_to_a_worker() {
    let mut h = start_with(&config("nats"), HostOptions::default().workers(2));
    let c = h.connect_with(ConnectOptions::on_worker(1));
    assert_eq!(h.worker_of(c).unwrap(), 1);
}
