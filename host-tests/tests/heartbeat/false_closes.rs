//! Healthy connections the built filter must never close, on the simulated Envoy: uploads of any length,
//! pauses in the middle of a frame, and a server that takes its time over a reply it owes. And the other
//! side of the same rule: a dead upstream is still closed, within the bound once the client's frame ends, or
//! within `reply_timeout` while a reply is owed. Every case also checks the bytes each side received.

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::ConnId;

use super::common::heartbeat::*;
use super::support::*;

fn nats() -> (TestHost, ConnId) {
    let mut h = start("nats");
    let c = h.connect();
    h.client_send(c, "CONNECT {}\r\n");
    (h, c)
}

#[test]
fn a_slow_upload_of_any_length_is_never_closed() {
    let (mut h, c) = nats();
    // A 600 KB publish at 10 KB/s: one minute, twelve bounds, the upstream rightly silent all along.
    let payload: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    h.client_send(c, format!("PUB upload {}\r\n", payload.len()));
    for piece in payload.chunks(1000) {
        h.client_send(c, piece);
        h.advance(ms(100));
        assert!(h.closed(c).is_none(), "closed mid-upload at {:?}", h.now());
    }
    h.client_send(c, "\r\n");
    // The frame ended: the next probe goes out within an interval, and its answer keeps the connection.
    h.advance(INTERVAL);
    let pings = arrivals(&h, c, b"PING\r\n");
    assert_eq!(pings.len(), 1, "{pings:?}");
    h.upstream_send(c, "PONG\r\n");
    h.advance(secs(1));
    assert!(h.closed(c).is_none());
    assert_eq!(h.client_received(c), b"", "the PONG was the filter's");
    let mut want = b"CONNECT {}\r\nPUB upload 600000\r\n".to_vec();
    want.extend_from_slice(&payload);
    want.extend_from_slice(b"\r\nPING\r\n");
    assert_eq!(h.upstream_received(c), want, "the upload reached the upstream whole, the PING after it");
    assert_eq!(h.metric_value(DEAD_CLOSED), 0);
    h.assert_no_faults();
}

#[test]
fn a_pause_mid_frame_is_never_closed_and_a_dead_upstream_is_once_the_frame_ends() {
    let mut h = start("redis");
    let c = h.connect();
    h.client_send(c, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n01234");
    h.advance(secs(600));
    assert!(h.closed(c).is_none(), "closed during a pause mid-command: {:?}", h.closed(c));
    assert_eq!(count(&h.upstream_received(c), b"PING"), 0, "nothing injected mid-command");
    // The command ends; the server (dead, as it happens) owes its reply now: reply_timeout applies.
    h.client_send(c, "56789\r\n");
    let sent = h.now();
    h.advance(REPLY_TIMEOUT + secs(5));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, sent + REPLY_TIMEOUT, TICK);
    assert_eq!(h.metric_value(DEAD_CLOSED), 1);
}

#[test]
fn a_slow_reply_within_reply_timeout_is_never_closed() {
    let mut h = start("redis");
    let c = h.connect();
    h.client_send(c, "*3\r\n$4\r\nEVAL\r\n$4\r\nslow\r\n$1\r\n0\r\n");
    h.advance(REPLY_TIMEOUT - secs(2));
    assert!(h.closed(c).is_none(), "closed while the server owed a reply: {:?}", h.closed(c));
    h.upstream_send(c, "+done\r\n");
    h.advance(READ_IDLE + TICK);
    assert_eq!(arrivals(&h, c, b"*1\r\n$4\r\nPING\r\n").len(), 1, "probing resumes after the reply");
    h.upstream_send(c, "+PONG\r\n");
    h.advance(TICK);
    assert_eq!(h.client_received(c), b"+done\r\n");
    assert!(h.closed(c).is_none());
    h.assert_no_faults();
}

#[test]
fn a_fragment_of_the_filters_reply_never_reaches_the_client_after_a_fall_back_to_pass_through() {
    let mut h = start("redis");
    let c = h.connect();
    h.client_send(c, "GET a\r\n");
    h.upstream_send(c, "$1\r\nv\r\n");
    h.advance(READ_IDLE);
    assert_eq!(arrivals(&h, c, b"*1\r\n$4\r\nPING\r\n").len(), 1);
    h.upstream_send(c, "+PO");
    h.client_send(c, "MONITOR\r\n"); // its replies cannot be counted: pass-through from here on
    h.upstream_send(c, "NG\r\n+OK\r\n");
    h.advance(TICK);
    assert_eq!(h.client_received(c), b"$1\r\nv\r\n+PONG\r\n+OK\r\n", "the filter's reply whole, or nothing of it");
}
