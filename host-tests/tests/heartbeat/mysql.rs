//! MySQL / MariaDB: the COM_PING is injected only at a command boundary once the previous response was read
//! whole, never during the handshake; the OK that answers it (sequence id 1) is stripped; a silent server is
//! closed within the bound, and one that owes a slow query's reply gets `reply_timeout`.

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::ConnId;

use super::common::heartbeat::*;
use super::support::*;

const PING: &[u8] = &[0x01, 0x00, 0x00, 0x00, 0x0e];

fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    [&[len[0], len[1], len[2], seq][..], payload].concat()
}

fn greeting() -> Vec<u8> {
    let mut p = vec![0x0a];
    p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
    p.extend_from_slice(&[7, 0, 0, 0]);
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&0xfffeu16.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[2, 0, 0xff, 0xff, 21, 0, 0, 0, 0, 0, 0, 0x1f, 0, 0, 0]);
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    pkt(0, &p)
}

/// HandshakeResponse41 with CLIENT_DEPRECATE_EOF, as mysql_async sends it.
fn login() -> Vec<u8> {
    let caps: u32 = 0x200 | 0x8000 | 0x8_0000 | 0x2_0000 | 0x8 | 1 << 24;
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&16_777_216u32.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(b"root\0\0mysql_native_password\0");
    pkt(1, &p)
}

fn ok(seq: u8) -> Vec<u8> {
    pkt(seq, &[0, 0, 0, 2, 0, 0, 0])
}

fn query(sql: &str) -> Vec<u8> {
    pkt(0, &[&[0x03][..], sql.as_bytes()].concat())
}

/// `SELECT 1`'s result set (CLIENT_DEPRECATE_EOF: no EOF after the column, an OK with 0xFE at the end).
fn one_row() -> Vec<u8> {
    [
        pkt(1, &[1]),
        pkt(2, b"\x03def\0\0\0\x011\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0"),
        pkt(3, b"\x011"),
        pkt(4, &[0xfe, 0, 0, 2, 0, 0, 0]),
    ]
    .concat()
}

/// A connection logged in; everything the client received so far.
fn logged_in() -> (TestHost, ConnId, Vec<u8>) {
    let mut h = start("mysql");
    let c = h.connect();
    h.upstream_send(c, greeting());
    h.client_send(c, login());
    h.upstream_send(c, ok(2));
    let seen = [greeting(), ok(2)].concat();
    assert_eq!(h.client_received(c), seen);
    (h, c, seen)
}

#[test]
fn an_idle_connection_is_pinged_kept_and_the_ok_stripped() {
    let (mut h, c, seen) = logged_in();
    h.client_send(c, query("SELECT 1"));
    h.upstream_send(c, one_row());
    let mut answered = 0;
    run_for(&mut h, secs(20), TICK, |h| {
        if arrivals(h, c, PING).len() > answered {
            answered += 1;
            h.upstream_send(c, ok(1));
        }
    });
    assert!(answered >= 9, "one COM_PING per read-idle: {answered}");
    assert_eq!(arrivals(&h, c, PING)[0], READ_IDLE, "after read-idle");
    assert!(h.closed(c).is_none(), "an answering server is kept: {:?}", h.closed(c));
    assert_eq!(h.client_received(c), [seen, one_row()].concat(), "the OKs to the filter's PINGs are stripped");
    h.client_send(c, query("SELECT 1"));
    h.upstream_send(c, one_row());
    assert!(h.client_received(c).ends_with(&[one_row(), one_row()].concat()));
    h.advance(TICK);
    assert_eq!(h.metric_value(PONGS_STRIPPED), answered as u64);
    h.assert_no_faults();
}

#[test]
fn no_ping_during_the_handshake() {
    let mut h = start("mysql");
    let c = h.connect();
    h.upstream_send(c, greeting());
    h.client_send(c, login());
    h.advance(ms(1500));
    // An auth switch: the client's answer is due, the server's OK after it.
    h.upstream_send(c, pkt(2, b"\xfemysql_native_password\0abcdefghijklmnopqrst\0"));
    h.advance(secs(5));
    assert!(arrivals(&h, c, PING).is_empty(), "a COM_PING inside the handshake would be read as auth data");
    h.client_send(c, pkt(3, &[9; 20]));
    h.upstream_send(c, ok(4));
    h.advance(READ_IDLE + TICK);
    assert_eq!(arrivals(&h, c, PING).len(), 1, "pinged once logged in");
}

#[test]
fn a_silent_server_is_closed_within_the_bound() {
    let (mut h, c, _) = logged_in();
    let from = h.now();
    h.advance(secs(10));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, from + READ_IDLE + INTERVAL * MAX_MISSED, TICK);
    assert_eq!(arrivals(&h, c, PING).len(), 1, "one COM_PING, then no other while it is owed");
    assert_eq!(h.metric_value(DEAD_CLOSED), 1);
}

#[test]
fn a_slow_query_is_not_closed_before_the_reply_timeout() {
    let (mut h, c, seen) = logged_in();
    let from = h.now();
    h.client_send(c, query("SELECT SLEEP(25)"));
    h.advance(secs(25));
    assert!(h.closed(c).is_none(), "closed while the query ran: {:?}", h.closed(c));
    assert!(arrivals(&h, c, PING).is_empty(), "no COM_PING while a reply is owed");
    h.upstream_send(c, one_row());
    assert_eq!(h.client_received(c), [seen, one_row()].concat());
    h.advance(READ_IDLE);
    assert_eq!(arrivals(&h, c, PING), [from + secs(25) + READ_IDLE], "probed again after its reply");
}

#[test]
fn a_server_hung_under_a_query_is_closed_after_the_reply_timeout() {
    let (mut h, c, _) = logged_in();
    let from = h.now();
    h.client_send(c, query("SELECT SLEEP(3600)"));
    h.advance(REPLY_TIMEOUT + secs(5));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, from + REPLY_TIMEOUT, TICK);
    assert!(arrivals(&h, c, PING).is_empty());
}

#[test]
fn a_query_split_anywhere_is_never_cut_by_a_ping() {
    let command = query("SELECT * FROM t WHERE a = 'x'");
    for split in 1..command.len() {
        let (mut h, c, _) = logged_in();
        h.client_send(c, &command[..split]);
        h.advance(ms(2500));
        h.client_send(c, &command[split..]);
        h.upstream_send(c, ok(1));
        h.advance(secs(3));
        let up = h.upstream_received(c);
        let at = find(&up, &command).unwrap_or_else(|| panic!("split at {split}: the query arrives whole"));
        assert!(up[at + command.len()..].chunks(PING.len()).all(|p| p == PING), "split at {split}");
    }
}
