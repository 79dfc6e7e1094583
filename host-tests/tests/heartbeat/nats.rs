//! NATS: PING after read-idle, every interval after, close after N missed; PONGs of the filter's
//! PINGs stripped by position; the client's and the server's own PINGs untouched.

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::{CloseCause, ConnId, LogLevel};

use super::common::heartbeat::*;
use super::support::*;

/// A client that said CONNECT and a server that sent INFO, both at t = 0.
fn established() -> (TestHost, ConnId) {
    let mut h = start("nats");
    let c = h.connect();
    h.client_send(c, "CONNECT {}\r\n");
    h.upstream_send(c, "INFO {}\r\n");
    (h, c)
}

/// Answers every PING the upstream received since the last call with one PONG.
fn answer_pings(h: &mut TestHost, c: ConnId, answered: &mut usize) {
    let received = count(&h.upstream_received(c), b"PING\r\n");
    while *answered < received && h.closed(c).is_none() {
        h.upstream_send(c, "PONG\r\n");
        *answered += 1;
    }
}

#[test]
fn a_silent_upstream_gets_pings_then_the_connection_is_closed_within_the_bound() {
    let (mut h, c) = established();
    h.advance(ms(1900));
    assert!(arrivals(&h, c, b"PING\r\n").is_empty(), "no PING before read_idle_timeout");
    h.advance(secs(10));

    let pings = arrivals(&h, c, b"PING\r\n");
    assert_eq!(pings.len(), MAX_MISSED as usize, "{pings:?}");
    for (n, at) in pings.iter().enumerate() {
        assert_within(*at, READ_IDLE + INTERVAL * n as u32, TICK);
    }
    let closed = h.closed(c).expect("closed as dead");
    assert!(matches!(closed.cause, CloseCause::FilterClosedDownstream | CloseCause::FilterClosedUpstream));
    assert_within(closed.at, READ_IDLE + INTERVAL * MAX_MISSED, TICK);
    assert_eq!(h.upstream_saw_close(c).unwrap(), Some(closed.at), "tcp_proxy closed the upstream too");
    assert_eq!(h.client_received(c), b"INFO {}\r\n", "the client saw nothing of the PINGs");

    assert_eq!(h.metric_value(PINGS_INJECTED), 3);
    assert_eq!(h.metric_value(DEAD_CLOSED), 1);
    assert_eq!(h.metric_value(CONNECTIONS_MONITORED), 0);
    let warns: Vec<_> = h.logs().into_iter().filter(|l| l.level == LogLevel::Warn).collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
    let why = &warns[0].text;
    for part in ["127.0.0.1:20000", &format!("C{}", c.0), "3 PINGs unanswered", "silent for 5."] {
        assert!(why.contains(part), "{why:?} should mention {part:?}");
    }
    h.assert_no_faults();
}

#[test]
fn an_answering_upstream_keeps_the_connection_and_its_pongs_never_reach_the_client() {
    let (mut h, c) = established();
    let mut answered = 0;
    run_for(&mut h, secs(20), TICK, |h| answer_pings(h, c, &mut answered));
    h.advance(TICK); // stats are published on the tick
    assert!(h.closed(c).is_none());
    let pings = h.metric_value(PINGS_INJECTED);
    assert!((8..=10).contains(&pings), "a PING every read_idle_timeout after each PONG: {pings}");
    assert_eq!(h.metric_value(PONGS_STRIPPED), pings);
    assert_eq!(h.client_received(c), b"INFO {}\r\n");
    h.assert_no_faults();
}

#[test]
fn upstream_traffic_resets_the_read_idle_timer() {
    let (mut h, c) = established();
    h.client_send(c, "SUB foo 1\r\n");
    let msg = "MSG foo 1 2\r\nhi\r\n";
    for _ in 0..8 {
        h.advance(ms(1500));
        h.upstream_send(c, msg);
    }
    assert!(arrivals(&h, c, b"PING\r\n").is_empty());
    assert_eq!(h.client_received(c), format!("INFO {{}}\r\n{}", msg.repeat(8)).as_bytes());
    assert!(h.closed(c).is_none());
}

#[test]
fn client_writes_do_not_count_as_upstream_life() {
    let (mut h, c) = established();
    run_for(&mut h, secs(8), ms(500), |h| {
        if h.closed(c).is_none() {
            h.client_send(c, "PUB foo 2\r\nhi\r\n");
        }
    });
    let closed = h.closed(c).expect("closed although the client kept writing");
    assert_within(closed.at, READ_IDLE + INTERVAL * MAX_MISSED, TICK);
    // PINGs went in between whole PUBs only.
    let up = h.upstream_received(c);
    assert_eq!(count(&up, b"PING\r\n"), 3);
    assert_eq!(
        String::from_utf8_lossy(&up).replace("PING\r\n", "").replace("PUB foo 2\r\nhi\r\n", ""),
        "CONNECT {}\r\n"
    );
}

#[test]
fn a_keepalive_ping_goes_out_after_write_idle() {
    let config = r#"{"protocol":"nats","read_idle_timeout":"10s","ping_interval":"2s","max_missed_pongs":3,"write_idle_keepalive":"3s"}"#;
    let mut h = start_with(config, Default::default());
    let c = h.connect();
    h.client_send(c, "CONNECT {}\r\nSUB foo 1\r\n");
    let mut answered = 0;
    run_for(&mut h, ms(6500), TICK, |h| {
        if h.now().as_millis() % 1000 == 0 {
            h.upstream_send(c, "MSG foo 1 2\r\nhi\r\n");
        }
        answer_pings(h, c, &mut answered);
    });
    let pings = arrivals(&h, c, b"PING\r\n");
    assert!(!pings.is_empty(), "no keepalive PING");
    assert_within(pings[0], secs(3), TICK);
    assert_eq!(h.metric_value(KEEPALIVE_PINGS), pings.len() as u64);
    assert_eq!(h.metric_value(PINGS_INJECTED), 0, "the upstream was never read-idle");
    assert_eq!(count(&h.client_received(c), b"PONG"), 0);
    assert!(h.closed(c).is_none());
}

#[test]
fn no_ping_inside_a_partly_sent_pub() {
    let (mut h, c) = established();
    h.client_send(c, "PUB foo 10\r\n01234");
    h.advance(ms(2500));
    assert_eq!(h.upstream_received(c), b"CONNECT {}\r\nPUB foo 10\r\n01234", "nothing injected mid-payload");
    assert!(h.metric_value(INJECTIONS_DEFERRED) >= 1);
    h.client_send(c, "56789\r\n");
    // The deferral at 2 s is retried an interval later.
    h.advance(ms(500));
    assert_eq!(h.upstream_received(c), b"CONNECT {}\r\nPUB foo 10\r\n0123456789\r\nPING\r\n");
    assert_eq!(arrivals(&h, c, b"PING\r\n"), [READ_IDLE + INTERVAL]);
}

#[test]
fn no_ping_inside_a_partly_sent_hpub_header_line() {
    let (mut h, c) = established();
    h.client_send(c, "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi");
    h.advance(ms(2500));
    assert_eq!(count(&h.upstream_received(c), b"PING"), 0);
    h.client_send(c, "\r\n");
    h.advance(ms(500));
    assert!(h.upstream_received(c).ends_with(b"NATS/1.0\r\n\r\nhi\r\nPING\r\n"));
}

#[test]
fn the_clients_ping_before_the_filters_gets_the_first_pong() {
    let (mut h, c) = established();
    h.advance(ms(1950));
    h.client_send(c, "PING\r\n");
    h.advance(ms(100));
    assert_eq!(count(&h.upstream_received(c), b"PING\r\n"), 2, "the client's PING and the filter's");
    h.upstream_send(c, "PONG\r\nPONG\r\n");
    assert_eq!(h.client_received(c), b"INFO {}\r\nPONG\r\n");
    h.advance(TICK);
    assert_eq!(h.metric_value(PONGS_STRIPPED), 1);
}

#[test]
fn the_clients_ping_after_the_filters_gets_the_second_pong() {
    let (mut h, c) = established();
    h.advance(ms(2000));
    assert_eq!(arrivals(&h, c, b"PING\r\n").len(), 1);
    h.client_send(c, "PING\r\n");
    h.upstream_send(c, "PONG\r\n");
    assert_eq!(h.client_received(c), b"INFO {}\r\n", "the first PONG answers the filter");
    h.upstream_send(c, "PONG\r\n");
    assert_eq!(h.client_received(c), b"INFO {}\r\nPONG\r\n");
}

#[test]
fn a_pong_split_across_chunks_is_still_stripped() {
    let (mut h, c) = established();
    h.advance(ms(2000));
    h.upstream_send(c, "PO");
    h.upstream_send(c, "NG\r");
    h.upstream_send(c, "\nMSG foo 1 2\r\nhi\r\n");
    assert_eq!(h.client_received(c), b"INFO {}\r\nMSG foo 1 2\r\nhi\r\n");
    h.advance(TICK);
    assert_eq!(h.metric_value(PONGS_STRIPPED), 1);
}

#[test]
fn a_server_ping_and_the_clients_pong_pass_untouched() {
    let (mut h, c) = established();
    h.upstream_send(c, "PING\r\n");
    h.client_send(c, "PONG\r\n");
    assert_eq!(h.client_received(c), b"INFO {}\r\nPING\r\n");
    assert_eq!(h.upstream_received(c), b"CONNECT {}\r\nPONG\r\n");
    assert_eq!(h.metric_value(PONGS_STRIPPED), 0);
}

#[test]
fn a_pong_inside_a_msg_payload_is_not_stripped() {
    let (mut h, c) = established();
    h.advance(ms(2000));
    let msg = "MSG foo 1 6\r\nPONG\r\n\r\n";
    h.upstream_send(c, msg);
    h.upstream_send(c, "PONG\r\n");
    assert_eq!(h.client_received(c), format!("INFO {{}}\r\n{msg}").as_bytes());
}
