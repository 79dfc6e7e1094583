//! PostgreSQL: the filter's `Sync` goes in only on an idle connection (after startup, every Query and Sync
//! answered, no pipeline open), its `ReadyForQuery` is stripped, unasked messages pass, a silent server is
//! closed within the bound, and a slow query (a reply owed) is judged on `reply_timeout`.

use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::ConnId;

use super::common::heartbeat::*;
use super::support::*;

const SYNC: &[u8] = b"S\0\0\0\x04";

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    [&[kind][..], &u32::try_from(body.len() + 4).unwrap().to_be_bytes(), body].concat()
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &[sql.as_bytes(), b"\0"].concat())
}

fn startup() -> Vec<u8> {
    let body = b"\0\x03\0\0user\0postgres\0database\0postgres\0\0";
    [&u32::try_from(body.len() + 4).unwrap().to_be_bytes()[..], body].concat()
}

/// The server's trust-auth startup, ending in the first `Z`.
fn server_startup() -> Vec<u8> {
    [msg(b'R', &[0; 4]), msg(b'S', b"server_version\x0015.10\0"), msg(b'K', &[0, 0, 0, 7, 1, 2, 3, 4]), ready(b'I')]
        .concat()
}

/// `SELECT 1`'s answer.
fn one_row() -> Vec<u8> {
    [
        msg(b'T', b"\0\x01?column?\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0"),
        msg(b'D', b"\0\x01\0\0\0\x011"),
        msg(b'C', b"SELECT 1\0"),
        ready(b'I'),
    ]
    .concat()
}

fn connected() -> (TestHost, ConnId) {
    let mut h = start("postgres");
    let c = h.connect();
    h.client_send(c, startup());
    h.upstream_send(c, server_startup());
    (h, c)
}

fn syncs(h: &TestHost, c: ConnId) -> Vec<std::time::Duration> {
    arrivals(h, c, SYNC)
}

#[test]
fn an_idle_connection_is_pinged_its_ready_for_query_stripped_and_kept() {
    let (mut h, c) = connected();
    h.client_send(c, query("SELECT 1"));
    h.upstream_send(c, one_row());
    // Answered promptly for a minute: pinged every read-idle, never closed.
    run_for(&mut h, secs(60), TICK, |h| {
        let sent = syncs(h, c).len();
        let answered = h.metric_value(PONGS_STRIPPED) as usize;
        if sent > answered {
            h.upstream_send(c, ready(b'I'));
        }
    });
    let sent = syncs(&h, c);
    assert!(sent.len() >= 20, "{} Syncs in a minute", sent.len());
    assert_eq!(sent[0], READ_IDLE, "the first Sync after read-idle");
    assert!(h.closed(c).is_none());
    assert_eq!(h.client_received(c), [server_startup(), one_row()].concat(), "exactly the server's messages");
    h.client_send(c, query("SELECT 1"));
    h.upstream_send(c, one_row());
    assert_eq!(h.client_received(c), [server_startup(), one_row(), one_row()].concat());
    h.assert_no_faults();
}

#[test]
fn no_sync_before_the_first_ready_for_query() {
    let mut h = start("postgres");
    let c = h.connect();
    h.client_send(c, startup());
    h.upstream_send(c, msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]));
    h.advance(secs(3));
    assert!(syncs(&h, c).is_empty(), "no Sync during authentication");
    assert!(h.metric_value(INJECTIONS_DEFERRED) > 0);
}

#[test]
fn unasked_notification_and_notice_pass_while_the_filters_z_is_stripped() {
    let (mut h, c) = connected();
    h.client_send(c, query("LISTEN chan"));
    let listening = [msg(b'C', b"LISTEN\0"), ready(b'I')].concat();
    h.upstream_send(c, &listening);
    h.advance(READ_IDLE + TICK);
    assert_eq!(syncs(&h, c).len(), 1);
    let notify = msg(b'A', b"\0\0\0\x2achan\0Z\0\0\0\x05I\0");
    let notice = msg(b'N', b"SNOTICE\0Mhi\0\0");
    h.upstream_send(c, [notify.clone(), notice.clone(), ready(b'I'), notify.clone()].concat());
    assert_eq!(h.client_received(c), [server_startup(), listening, notify.clone(), notice, notify].concat());
    h.advance(TICK);
    assert_eq!(h.metric_value(PONGS_STRIPPED), 1);
    assert!(h.closed(c).is_none());
}

#[test]
fn a_transaction_left_open_is_pinged_and_commits_after() {
    let (mut h, c) = connected();
    h.client_send(c, query("BEGIN"));
    let begun = [msg(b'C', b"BEGIN\0"), ready(b'T')].concat();
    h.upstream_send(c, &begun);
    h.advance(READ_IDLE + TICK);
    assert_eq!(syncs(&h, c).len(), 1, "Sync is harmless inside an explicit transaction");
    h.upstream_send(c, ready(b'T'));
    h.client_send(c, query("COMMIT"));
    let committed = [msg(b'C', b"COMMIT\0"), ready(b'I')].concat();
    h.upstream_send(c, &committed);
    assert_eq!(h.client_received(c), [server_startup(), begun, committed].concat());
}

#[test]
fn no_sync_inside_an_extended_query_pipeline() {
    let (mut h, c) = connected();
    // Parse/Bind/Execute without their Sync yet: a Sync now would end the implicit transaction.
    h.client_send(c, [msg(b'P', b"\0SELECT 1\0\0\0"), msg(b'B', b"\0\0\0\0\0\0\0"), msg(b'E', b"\0\0\0\0\0")].concat());
    h.advance(secs(5));
    assert!(syncs(&h, c).is_empty());
    assert!(h.closed(c).is_none(), "the client holds the pipeline open, not the server");
    h.client_send(c, SYNC);
    assert_eq!(syncs(&h, c).len(), 1, "the client's own Sync");
    h.upstream_send(
        c,
        [msg(b'1', b""), msg(b'2', b""), msg(b'D', b"\0\x01\0\0\0\x011"), msg(b'C', b"SELECT 1\0"), ready(b'I')]
            .concat(),
    );
    h.advance(READ_IDLE + TICK);
    assert_eq!(syncs(&h, c).len(), 2, "then the filter's");
}

#[test]
fn a_silent_server_is_closed_within_the_bound() {
    let (mut h, c) = connected();
    h.client_send(c, query("SELECT 1"));
    h.upstream_send(c, one_row());
    h.advance(secs(10));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, READ_IDLE + INTERVAL * MAX_MISSED, TICK);
    assert!(!syncs(&h, c).is_empty());
    assert_eq!(h.metric_value(DEAD_CLOSED), 1);
}

/// `SELECT pg_sleep(n)`: nothing on the wire while it runs, and no Sync can go in (its Z is owed). The
/// server is given `reply_timeout`, not the PING bound.
#[test]
fn a_slow_query_is_not_closed_before_the_reply_timeout() {
    let (mut h, c) = connected();
    h.client_send(c, query("SELECT pg_sleep(20)"));
    h.advance(REPLY_TIMEOUT - TICK);
    assert!(h.closed(c).is_none(), "closed before reply_timeout: {:?}", h.closed(c));
    assert!(syncs(&h, c).is_empty());
    h.advance(secs(5));
    let closed = h.closed(c).expect("a server that owes a reply for reply_timeout is closed");
    assert_within(closed.at, REPLY_TIMEOUT, TICK);
}

#[test]
fn a_slow_query_that_answers_keeps_the_connection() {
    let (mut h, c) = connected();
    h.client_send(c, query("SELECT pg_sleep(5)"));
    h.advance(secs(5));
    assert!(h.closed(c).is_none());
    h.upstream_send(c, one_row());
    h.advance(READ_IDLE + TICK);
    assert_eq!(syncs(&h, c).len(), 1);
    h.upstream_send(c, ready(b'I'));
    assert_eq!(h.client_received(c), [server_startup(), one_row()].concat());
    assert!(h.closed(c).is_none());
}

#[test]
fn an_accepted_ssl_request_is_passed_through_unwatched() {
    let mut h = start("postgres");
    let c = h.connect();
    h.client_send(c, [8u32.to_be_bytes(), 80_877_103u32.to_be_bytes()].concat());
    h.upstream_send(c, b"S");
    h.client_send(c, b"\x16\x03\x01\x00\x05hello");
    h.upstream_send(c, b"\x16\x03\x03\x00\x02hi");
    h.advance(secs(10));
    assert!(syncs(&h, c).is_empty());
    assert!(h.closed(c).is_none(), "an encrypted connection is not judged");
    assert_eq!(h.client_received(c), b"S\x16\x03\x03\x00\x02hi");
    h.assert_no_faults();
}
