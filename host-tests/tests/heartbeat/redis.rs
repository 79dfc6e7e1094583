//! Redis RESP2: the PING is injected only at a command boundary, with no reply owed, outside
//! MULTI; the `+PONG` that answers it (or the `pong` array in subscribe mode) is stripped and
//! every other reply reaches the client in order.

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::ConnId;

use super::common::heartbeat::*;
use super::support::*;

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

fn cmd(args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    out
}

fn connected() -> (TestHost, ConnId) {
    let mut h = start("redis");
    let c = h.connect();
    (h, c)
}

#[test]
fn ping_after_idle_and_its_pong_is_stripped() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["SET", "k", "v"]));
    h.upstream_send(c, "+OK\r\n");
    h.advance(secs(2));
    assert_eq!(arrivals(&h, c, PING), [READ_IDLE]);
    h.upstream_send(c, "+PONG\r\n");
    assert_eq!(h.client_received(c), b"+OK\r\n");
    h.advance(TICK);
    assert_eq!(h.metric_value(PONGS_STRIPPED), 1);
    h.assert_no_faults();
}

#[test]
fn no_ping_while_a_pipelined_reply_is_owed() {
    let (mut h, c) = connected();
    let pipeline = [cmd(&["SET", "k", "v"]), cmd(&["GET", "k"]), cmd(&["INCR", "n"])].concat();
    h.client_send(c, &pipeline);
    h.advance(ms(500));
    h.upstream_send(c, "+OK\r\n$1\r\nv\r\n");
    h.advance(ms(2500));
    assert!(arrivals(&h, c, PING).is_empty(), "a reply is still owed: a PING now would take the INCR's reply");
    h.upstream_send(c, ":1\r\n");
    h.advance(secs(2));
    assert_eq!(arrivals(&h, c, PING).len(), 1);
    h.upstream_send(c, "+PONG\r\n");
    assert_eq!(h.client_received(c), b"+OK\r\n$1\r\nv\r\n:1\r\n", "every reply matches its request");
}

#[test]
fn the_clients_own_ping_keeps_its_pong() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["SET", "k", "v"]));
    h.upstream_send(c, "+OK\r\n");
    h.advance(secs(2));
    assert_eq!(arrivals(&h, c, PING).len(), 1);
    h.client_send(c, PING);
    h.upstream_send(c, "+PONG\r\n+PONG\r\n");
    assert_eq!(h.client_received(c), b"+OK\r\n+PONG\r\n");
}

#[test]
fn an_error_answering_the_filters_ping_is_stripped_too() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["GET", "k"]));
    h.upstream_send(c, "$-1\r\n");
    h.advance(secs(2));
    h.upstream_send(c, "-NOAUTH Authentication required.\r\n");
    assert_eq!(h.client_received(c), b"$-1\r\n");
}

#[test]
fn no_ping_inside_multi() {
    let (mut h, c) = connected();
    h.client_send(c, [cmd(&["MULTI"]), cmd(&["SET", "k", "v"])].concat());
    h.upstream_send(c, "+OK\r\n+QUEUED\r\n");
    h.advance(secs(3));
    assert!(arrivals(&h, c, PING).is_empty(), "a PING inside MULTI would be queued into the transaction");
    h.client_send(c, cmd(&["EXEC"]));
    h.upstream_send(c, "*1\r\n+OK\r\n");
    h.advance(secs(2) + TICK);
    assert_eq!(arrivals(&h, c, PING).len(), 1);
    h.upstream_send(c, "+PONG\r\n");
    assert_eq!(h.client_received(c), b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
}

#[test]
fn subscribe_mode_gets_a_ping_and_its_pong_array_is_stripped() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["SUBSCRIBE", "ch"]));
    let subscribed = "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    h.upstream_send(c, subscribed);
    h.advance(secs(2));
    assert_eq!(arrivals(&h, c, PING).len(), 1, "subscribe mode accepts PING");
    let message = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    h.upstream_send(c, message);
    h.upstream_send(c, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    h.upstream_send(c, message);
    assert_eq!(h.client_received(c), [subscribed, message, message].concat().as_bytes());
    assert!(h.closed(c).is_none());
}

#[test]
fn a_dead_redis_is_closed_within_the_bound() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["GET", "k"]));
    h.upstream_send(c, "$-1\r\n");
    h.advance(secs(10));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, READ_IDLE + INTERVAL * MAX_MISSED, TICK);
}

/// No PING can go while a reply is owed (replies are ordered), and a server may take its time over a command:
/// it is given `reply_timeout`, then closed.
#[test]
fn a_dead_redis_with_a_reply_owed_is_closed_after_the_reply_timeout() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["INCR", "n"]));
    h.advance(REPLY_TIMEOUT - TICK);
    assert!(h.closed(c).is_none(), "closed before reply_timeout: {:?}", h.closed(c));
    h.advance(secs(5));
    let closed = h.closed(c).expect("closed although no PING could be sent");
    assert_within(closed.at, REPLY_TIMEOUT, TICK);
    assert!(arrivals(&h, c, PING).is_empty());
}

/// `command`, cut in two at every position with a read-idle's worth of time between the halves: the
/// upstream receives it whole, then only the filter's PINGs.
fn assert_never_cut_by_a_ping(command: &str) {
    for split in 1..command.len() {
        let (mut h, c) = connected();
        h.client_send(c, &command[..split]);
        h.advance(ms(2500));
        h.client_send(c, &command[split..]);
        h.upstream_send(c, "+OK\r\n");
        h.advance(secs(3));
        let up = h.upstream_received(c);
        assert!(up.starts_with(command.as_bytes()), "split at {split}: {:?}", String::from_utf8_lossy(&up));
        assert!(up[command.len()..].chunks(PING.len()).all(|p| p == PING), "split at {split}");
    }
}

#[test]
fn a_multibulk_command_split_anywhere_is_never_cut_by_a_ping() {
    assert_never_cut_by_a_ping(&cmd(&["SET", "key", "hello world"]));
}

#[test]
fn an_inline_command_split_anywhere_is_never_cut_by_a_ping() {
    assert_never_cut_by_a_ping("SET key value\r\n");
}

#[test]
fn a_blocking_command_longer_than_the_bound_is_not_closed() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["BLPOP", "jobs", "8"]));
    h.advance(secs(8));
    assert!(h.closed(c).is_none(), "closed during BLPOP's own timeout: {:?}", h.closed(c));
    assert_eq!(h.metric_value(INJECTIONS_DEFERRED), 0, "no probe was even due");
    h.upstream_send(c, "*-1\r\n");
    h.advance(READ_IDLE);
    assert_eq!(arrivals(&h, c, PING), [secs(8) + READ_IDLE], "read-idle counts again from the reply");
    h.upstream_send(c, "+PONG\r\n");
    assert_eq!(h.client_received(c), b"*-1\r\n");
    h.assert_no_faults();
}

/// The same command on a hung server: closed once its timeout and then `reply_timeout` (the reply is owed,
/// so no PING can go) have passed.
#[test]
fn a_hung_server_under_a_blocking_command_is_closed_after_its_timeout_and_the_reply_timeout() {
    let (mut h, c) = connected();
    h.client_send(c, cmd(&["BLPOP", "jobs", "8"]));
    h.advance(secs(60));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, secs(8) + REPLY_TIMEOUT, TICK);
    assert_eq!(h.metric_value(DEAD_CLOSED), 1);
}

/// `BLPOP jobs 0` blocks until data arrives: no probe for as long as it waits. (The write-idle keepalive
/// of the standard configuration falls due meanwhile and waits, deferred, until the reply is in.)
#[test]
fn a_blocking_command_without_timeout_is_never_probed_while_it_waits() {
    let (mut h, c) = connected();
    h.client_send(c, "BLPOP jobs 0\r\n");
    h.advance(secs(600));
    assert!(h.closed(c).is_none());
    assert!(arrivals(&h, c, PING).is_empty());
    h.upstream_send(c, "*2\r\n$4\r\njobs\r\n$3\r\njob\r\n");
    h.advance(READ_IDLE);
    assert_eq!(arrivals(&h, c, PING), [secs(600) + INTERVAL], "the deferred keepalive, retried an interval on");
    assert_eq!(h.metric_value(KEEPALIVE_PINGS), 1);
    assert_eq!(h.metric_value(PINGS_INJECTED), 0, "never a read-idle probe");
    h.upstream_send(c, "+PONG\r\n");
    assert_eq!(h.client_received(c), b"*2\r\n$4\r\njobs\r\n$3\r\njob\r\n");
    h.assert_no_faults();
}

/// A RESP3 client (`HELLO 3`): the map reply, a push and the replies reach it; the filter's PING after
/// read-idle is answered `+PONG` and stripped, even with a client-side-caching push in between.
#[test]
fn resp3_connections_are_watched_and_pushes_pass() {
    let (mut h, c) = connected();
    let hello = "%1\r\n$5\r\nproto\r\n:3\r\n";
    let push = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n";
    h.client_send(c, "HELLO 3\r\n");
    h.upstream_send(c, hello);
    h.advance(READ_IDLE);
    assert_eq!(arrivals(&h, c, PING), [READ_IDLE]);
    h.upstream_send(c, push);
    h.upstream_send(c, "+PONG\r\n");
    h.client_send(c, cmd(&["GET", "k"]));
    h.upstream_send(c, "_\r\n");
    assert_eq!(h.client_received(c), [hello, push, "_\r\n"].concat().as_bytes());
    h.advance(TICK);
    assert_eq!(h.metric_value(PONGS_STRIPPED), 1);
    assert!(h.closed(c).is_none());
    h.assert_no_faults();
}
