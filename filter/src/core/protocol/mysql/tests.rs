//! The MySQL decoder on hand-written MariaDB sessions, with and without CLIENT_DEPRECATE_EOF: every split of
//! every exchange on both sides, where a COM_PING may go, the OK that answers it stripped whole, what is passed
//! through, and payloads skipped by counting.

use super::response::{CLIENT_DEPRECATE_EOF, MARIADB_CLIENT_PROGRESS};
use super::*;
use crate::core::protocol::testing::ClientView;

const PROTOCOL_41: u32 = 0x200;
const SECURE_CONNECTION: u32 = 0x8000;
const PLUGIN_AUTH: u32 = 0x8_0000;
const MULTI_RESULTS: u32 = 0x2_0000;
const BASE_CAPS: u32 = PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | MULTI_RESULTS | 0x8 | 0x4;

pub(super) fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
    [&[len[0], len[1], len[2], seq][..], payload].concat()
}

/// A MariaDB 10.11 greeting: all capabilities (without CLIENT_MYSQL, so with the extended ones).
pub(super) fn greeting() -> Vec<u8> {
    let mut p = vec![0x0a];
    p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&0xfffeu16.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&0xffffu16.to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&0x1fu32.to_le_bytes());
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    pkt(0, &p)
}

/// HandshakeResponse41 with these capabilities (and MariaDB's extended ones in the filler).
pub(super) fn login(caps: u32, ext: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&16_777_216u32.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 19]);
    p.extend_from_slice(&ext.to_le_bytes());
    p.extend_from_slice(b"root\0\x14");
    p.extend_from_slice(&[7; 20]);
    p.extend_from_slice(b"mysql_native_password\0");
    pkt(1, &p)
}

pub(super) fn ok(seq: u8, status: u16) -> Vec<u8> {
    let s = status.to_le_bytes();
    pkt(seq, &[0, 0, 0, s[0], s[1], 0, 0])
}

/// The end of rows: EOF, or with CLIENT_DEPRECATE_EOF an OK with the 0xFE header (with affected rows 300).
fn end(deprecate: bool, seq: u8, status: u16) -> Vec<u8> {
    let s = status.to_le_bytes();
    if deprecate {
        pkt(seq, &[0xfe, 0xfc, 0x2c, 0x01, 0, s[0], s[1], 0, 0])
    } else {
        pkt(seq, &[0xfe, 0, 0, s[0], s[1]])
    }
}

fn eof(seq: u8) -> Vec<u8> {
    pkt(seq, &[0xfe, 0, 0, 2, 0])
}

fn err(seq: u8) -> Vec<u8> {
    pkt(seq, b"\xff\x28\x04#42000You have an error in your SQL syntax")
}

fn column(seq: u8, name: &str) -> Vec<u8> {
    let mut p = b"\x03def\x04test\x01t\x01t".to_vec();
    p.push(u8::try_from(name.len()).unwrap());
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(b"\x00\x0c\x21\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00");
    pkt(seq, &p)
}

fn query(sql: &str) -> Vec<u8> {
    pkt(0, &[&[0x03][..], sql.as_bytes()].concat())
}

/// One exchange: the filter's PING first (or not), the client's packets, the server's packets (the OK to the
/// PING first when there is one), and whether a PING may go once it is over.
struct Exchange {
    ping: bool,
    client: Vec<u8>,
    server: Vec<u8>,
    after: Result<(), Defer>,
}

fn ex(ping: bool, client: Vec<Vec<u8>>, server: Vec<Vec<u8>>, after: Result<(), Defer>) -> Exchange {
    let mut server = server.concat();
    if ping {
        server = [ok(1, 0x0002), server].concat();
    }
    Exchange { ping, client: client.concat(), server, after }
}

const READY: Result<(), Defer> = Ok(());
const OWED: Result<(), Defer> = Err(Defer::RepliesOutstanding);

/// A MariaDB session through the commands a client uses.
fn session(deprecate: bool) -> Vec<Exchange> {
    let caps = BASE_CAPS | if deprecate { 1 << 24 } else { 0 };
    let cols_end = |seq: u8| if deprecate { vec![] } else { vec![eof(seq)] };
    let d = u8::from(!deprecate);
    let long_value = vec![b'x'; 300];
    let long_row = pkt(4 + d, &[&[0xfc, 0x2c, 0x01][..], &long_value, b"\x011"].concat());
    let auth_switch = pkt(2, b"\xfemysql_native_password\0abcdefghijklmnopqrst\0");
    vec![
        ex(false, vec![], vec![greeting()], Err(Defer::Handshake)),
        ex(false, vec![login(caps, 1)], vec![auth_switch.clone()], Err(Defer::Handshake)),
        ex(false, vec![pkt(3, &[9; 20])], vec![ok(4, 0x0002)], READY),
        // Idle: pinged.
        ex(true, vec![], vec![], READY),
        // SELECT with two columns, a long row and a NULL.
        ex(
            false,
            vec![query("SELECT a, b FROM t")],
            [
                vec![pkt(1, &[2]), column(2, "a"), column(3, "b")],
                cols_end(4),
                vec![long_row, pkt(5 + d, b"\xfb\x012"), end(deprecate, 6 + d, 0x0022)],
            ]
            .concat(),
            READY,
        ),
        // BEGIN, a PING inside the transaction, COMMIT.
        ex(false, vec![query("BEGIN")], vec![ok(1, 0x0003)], READY),
        ex(true, vec![], vec![], READY),
        ex(true, vec![query("COMMIT")], vec![ok(1, 0x0002)], READY),
        // A procedure: a result set with SERVER_MORE_RESULTS_EXISTS, then the final OK.
        ex(
            false,
            vec![query("CALL p()")],
            [
                vec![pkt(1, &[1]), column(2, "x")],
                cols_end(3),
                vec![pkt(3 + d, b"\x011"), end(deprecate, 4 + d, 0x000a)],
            ]
            .concat()
            .into_iter()
            .chain([ok(5 + d, 0x0002)])
            .collect(),
            READY,
        ),
        // Multi-statements: an OK with more results, then an ERR ends them.
        ex(false, vec![query("INSERT INTO t VALUES (1); SELEC")], vec![ok(1, 0x000a), err(2)], READY),
        ex(false, vec![query("SELEC")], vec![err(1)], READY),
        // Prepare with two parameters and one column; long data (no reply); execute with binary rows.
        ex(
            false,
            vec![pkt(0, b"\x16SELECT ?, ?")],
            [
                vec![pkt(1, &[0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]), column(2, "?"), column(3, "?")],
                cols_end(4),
                vec![column(4 + d, "c")],
                cols_end(5 + d),
            ]
            .concat(),
            READY,
        ),
        ex(
            true,
            vec![pkt(0, b"\x18\x01\x00\x00\x00\x00\x00long data"), pkt(0, b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00")],
            [
                vec![pkt(1, &[1]), column(2, "c")],
                cols_end(3),
                vec![pkt(3 + d, b"\x00\x00\x05"), end(deprecate, 4 + d, 2)],
            ]
            .concat(),
            READY,
        ),
        ex(false, vec![pkt(0, b"\x19\x01\x00\x00\x00")], vec![], READY),
        // Prepare without parameters or columns.
        ex(false, vec![pkt(0, b"\x16DO 1")], vec![pkt(1, &[0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])], READY),
        // LOAD DATA LOCAL INFILE: the request, the upload, its end, the OK.
        ex(false, vec![query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t")], vec![pkt(1, b"\xfbf")], OWED),
        ex(false, vec![pkt(2, b"1\n2\n"), pkt(3, b"3\n")], vec![], OWED),
        ex(false, vec![pkt(4, b"")], vec![ok(5, 0x0002)], READY),
        // COM_CHANGE_USER with an auth switch.
        ex(false, vec![pkt(0, b"\x11root\0\x00mysql_native_password\0")], vec![auth_switch], Err(Defer::Handshake)),
        ex(false, vec![pkt(3, &[9; 20])], vec![ok(4, 0x0002)], READY),
        // COM_FIELD_LIST, COM_STATISTICS, COM_INIT_DB, a client COM_PING.
        ex(false, vec![pkt(0, b"\x04t\0")], vec![column(1, "a"), column(2, "b"), end(deprecate, 3, 2)], READY),
        ex(false, vec![pkt(0, b"\x09")], vec![pkt(1, b"Uptime: 5  Threads: 1")], READY),
        ex(true, vec![pkt(0, b"\x02test")], vec![ok(1, 0x0002)], READY),
        ex(false, vec![pkt(0, b"\x0e")], vec![ok(1, 0x0002)], READY),
        // A MariaDB progress report before the OK of a slow statement.
        ex(
            false,
            vec![query("ALTER TABLE t ADD c INT")],
            vec![pkt(1, b"\xff\xff\xff\x01\x01\x02\x00\x10\x27\x00\x0ecopy to tmp table"), ok(2, 0x0002)],
            READY,
        ),
        // Idle again: pinged; then COM_QUIT.
        ex(true, vec![], vec![], READY),
        ex(false, vec![pkt(0, b"\x01")], vec![], Err(Defer::Mode)),
    ]
}

/// The server's stream without the OKs to the filter's PINGs.
fn expected_seen(exchanges: &[Exchange]) -> Vec<u8> {
    exchanges.iter().flat_map(|e| e.server.get(if e.ping { 11 } else { 0 }..).unwrap().to_vec()).collect()
}

fn pings(exchanges: &[Exchange]) -> u64 {
    exchanges.iter().filter(|e| e.ping).count() as u64
}

/// Plays the exchanges, cutting the client's bytes of exchange `cut.0` at `cut.1` and the server's at `cut.2`.
fn play(exchanges: &[Exchange], cut: Option<(usize, usize, usize)>) -> (Vec<u8>, u64) {
    let mut mysql = Mysql::new();
    let mut view = ClientView::new();
    for (i, e) in exchanges.iter().enumerate() {
        if e.ping {
            assert_eq!(mysql.can_inject(), Ok(()), "exchange {i}");
            mysql.on_ping_injected();
        }
        let (c, s) = match cut {
            Some((at, c, s)) if at == i => (c.min(e.client.len()), s.min(e.server.len())),
            _ => (0, 0),
        };
        mysql.on_client_bytes(&e.client[..c]).unwrap();
        mysql.on_client_bytes(&e.client[c..]).unwrap();
        view.feed(&mut mysql, &e.server[..s]).unwrap();
        view.feed(&mut mysql, &e.server[s..]).unwrap();
        assert_eq!(mysql.can_inject(), e.after, "after exchange {i}");
    }
    view.finish(&mut mysql);
    (view.seen().to_vec(), view.answered())
}

#[test]
fn a_session_is_followed_and_the_ping_replies_stripped() {
    for deprecate in [false, true] {
        let exchanges = session(deprecate);
        let (seen, answered) = play(&exchanges, None);
        assert_eq!(seen, expected_seen(&exchanges), "deprecate_eof {deprecate}");
        assert_eq!(answered, pings(&exchanges));
        assert!(answered >= 6);
    }
}

#[test]
fn every_split_of_every_exchange() {
    for deprecate in [false, true] {
        let exchanges = session(deprecate);
        let expected = expected_seen(&exchanges);
        for (i, e) in exchanges.iter().enumerate() {
            for at in 0..=e.client.len().max(e.server.len()) {
                let (seen, answered) = play(&exchanges, Some((i, at, at)));
                assert_eq!(seen, expected, "exchange {i} cut at {at}");
                assert_eq!(answered, pings(&exchanges));
            }
        }
    }
}

#[test]
fn byte_by_byte_boundaries() {
    for deprecate in [false, true] {
        let mut mysql = Mysql::new();
        let mut view = ClientView::new();
        for (i, e) in session(deprecate).iter().enumerate() {
            if e.ping {
                mysql.on_ping_injected();
            }
            for (at, byte) in e.client.iter().enumerate() {
                mysql.on_client_bytes(std::slice::from_ref(byte)).unwrap();
                if at + 1 < e.client.len() && mysql.session.phase == Phase::Ready {
                    assert_ne!(mysql.can_inject(), Ok(()), "exchange {i}, client byte {at}");
                }
            }
            for (at, byte) in e.server.iter().enumerate() {
                view.feed(&mut mysql, std::slice::from_ref(byte)).unwrap();
                if at + 1 < e.server.len() {
                    assert_ne!(mysql.can_inject(), Ok(()), "exchange {i}, server byte {at}");
                    assert!(mysql.reply_owed() || e.ping || mysql.session.phase != Phase::Ready, "exchange {i}");
                }
            }
            assert_eq!(mysql.can_inject(), e.after, "after exchange {i}");
        }
    }
}

fn ready(caps: u32) -> Mysql {
    let mut mysql = Mysql::new();
    let mut out = Output::new();
    mysql.on_upstream_bytes(&greeting(), &mut out).unwrap();
    mysql.on_client_bytes(&login(caps, 1)).unwrap();
    mysql.on_upstream_bytes(&ok(2, 2), &mut out).unwrap();
    assert_eq!(mysql.can_inject(), Ok(()));
    mysql
}

#[test]
fn a_slow_query_owes_its_reply_and_nothing_goes_in() {
    let mut mysql = ready(BASE_CAPS);
    assert!(!mysql.reply_owed());
    mysql.on_client_bytes(&query("SELECT SLEEP(60)")).unwrap();
    assert!(mysql.reply_owed());
    assert_eq!(mysql.can_inject(), Err(Defer::RepliesOutstanding));
    let mut out = Output::new();
    mysql.on_upstream_bytes(&[pkt(1, &[1]), column(2, "s")].concat(), &mut out).unwrap();
    assert!(mysql.reply_owed(), "mid result set");
    mysql.on_upstream_bytes(&[eof(3), pkt(4, b"\x010"), eof(5)].concat(), &mut out).unwrap();
    assert!(!mysql.reply_owed());
    assert_eq!(mysql.can_inject(), Ok(()));
}

#[test]
fn a_command_behind_the_ping_owes_its_reply_once_the_ping_is_answered() {
    let mut mysql = ready(BASE_CAPS);
    mysql.on_ping_injected();
    assert!(!mysql.reply_owed(), "the filter's reply comes first: PINGs are the evidence");
    mysql.on_client_bytes(&query("SELECT 1")).unwrap();
    assert!(!mysql.reply_owed());
    let mut out = Output::new();
    assert_eq!(mysql.on_upstream_bytes(&ok(1, 2), &mut out).unwrap(), 1);
    assert!(mysql.reply_owed());
}

#[test]
fn the_unasked_goodbye_is_forwarded_and_ends_injection() {
    let goodbye = pkt(0, b"\xff\x87\x10#HY000The client was disconnected by the server because of inactivity.");
    // While nothing is owed, and while the filter's PING is (its OK never comes).
    for ping in [false, true] {
        let mut mysql = ready(BASE_CAPS);
        if ping {
            mysql.on_ping_injected();
        }
        for at in 0..goodbye.len() {
            let mut m = mysql.clone();
            let mut view = ClientView::new();
            view.feed(&mut m, &goodbye[..at]).unwrap();
            view.feed(&mut m, &goodbye[at..]).unwrap();
            assert_eq!(view.seen(), &goodbye[..], "at {at}");
            assert_eq!(view.answered(), 0);
            assert_eq!(m.can_inject(), Err(Defer::Mode));
        }
    }
}

#[test]
fn a_ping_refused_with_an_error_is_stripped_too() {
    let mut mysql = ready(BASE_CAPS);
    mysql.on_ping_injected();
    let mut view = ClientView::new();
    view.feed(&mut mysql, &err(1)).unwrap();
    assert_eq!(view.seen(), b"");
    assert_eq!(view.answered(), 1);
}

#[test]
fn a_reply_that_is_not_an_ok_or_too_long_is_given_back_whole() {
    let long_ok = pkt(1, &[&[0u8, 0, 0, 2, 0, 0, 0][..], &[b'i'; 60]].concat());
    for bad in [pkt(1, &[1]), pkt(2, &[0, 0, 0, 2, 0, 0, 0]), long_ok] {
        for at in 0..bad.len() {
            let mut mysql = ready(BASE_CAPS);
            mysql.on_ping_injected();
            let mut view = ClientView::new();
            let _ = view.feed(&mut mysql, &bad[..at]);
            assert!(view.feed(&mut mysql, &bad[at..]).is_err() || view.error().is_some(), "at {at}");
            view.finish(&mut mysql);
            assert_eq!(view.seen(), &bad[..], "at {at}");
        }
    }
}

fn client_error(mysql: &mut Mysql, bytes: &[u8]) -> &'static str {
    mysql.on_client_bytes(bytes).unwrap_err().reason
}

#[test]
fn what_cannot_be_followed_is_passed_through() {
    let mut fresh = Mysql::new();
    let mut out = Output::new();
    fresh.on_upstream_bytes(&greeting(), &mut out).unwrap();
    let tls = pkt(1, &[&(BASE_CAPS | 0x800).to_le_bytes()[..], &[0; 28]].concat());
    assert!(client_error(&mut fresh.clone(), &tls).contains("TLS"));
    assert!(client_error(&mut fresh.clone(), &login(BASE_CAPS | 0x20, 0)).contains("compressed"));
    assert!(client_error(&mut fresh.clone(), &login(0x8000, 0)).contains("4.1"));
    // MySQL's optional result set metadata.
    assert!(client_error(&mut fresh.clone(), &login(BASE_CAPS | 1 << 25, 0)).contains("metadata"));
    let mysql = ready(BASE_CAPS);
    assert!(client_error(&mut mysql.clone(), &pkt(0, b"\x12\x04\0\0\0")).contains("binlog"));
    assert!(client_error(&mut mysql.clone(), &pkt(0, b"\x17\x01\0\0\0\x01\x01\0\0\0")).contains("cursor"));
    assert!(client_error(&mut mysql.clone(), &pkt(0, b"\x20")).contains("not followed"));
    // Before the greeting.
    assert!(client_error(&mut Mysql::new(), &query("SELECT 1")).contains("greeting"));
    // A server packet nobody asked for.
    let mut m = mysql.clone();
    let error = m.on_upstream_bytes(&ok(1, 2), &mut Output::new()).unwrap_err();
    assert_eq!(error.side, Side::Upstream);
    // Sticky.
    assert_eq!(m.on_upstream_bytes(b"", &mut Output::new()).unwrap_err(), error);
}

#[test]
fn the_negotiated_capabilities_decide() {
    // The server's progress reports and DEPRECATE_EOF only when both sides have them.
    let mysql = ready(BASE_CAPS | 1 << 24);
    assert!(mysql.session.has(CLIENT_DEPRECATE_EOF));
    assert!(mysql.session.has(MARIADB_CLIENT_PROGRESS));
    let mut mysql = Mysql::new();
    let mut out = Output::new();
    mysql.on_upstream_bytes(&greeting(), &mut out).unwrap();
    mysql.on_client_bytes(&login(BASE_CAPS | 1, 1)).unwrap();
    assert!(!mysql.session.has(MARIADB_CLIENT_PROGRESS), "CLIENT_MYSQL: no extended capabilities");
}

#[test]
fn a_multi_packet_command_is_one_command() {
    let mut mysql = ready(BASE_CAPS);
    let mut big = vec![0x03];
    big.extend(std::iter::repeat(b'a').take(0xff_ffff - 1));
    let first = pkt(0, &big);
    let second = pkt(1, b"rest");
    mysql.on_client_bytes(&first).unwrap();
    assert_eq!(mysql.can_inject(), Err(Defer::MidFrame), "a 0xFFFFFF packet is continued");
    mysql.on_client_bytes(&second).unwrap();
    assert_eq!(mysql.can_inject(), Err(Defer::RepliesOutstanding));
    let mut out = Output::new();
    mysql.on_upstream_bytes(&ok(2, 2), &mut out).unwrap();
    assert_eq!(mysql.can_inject(), Ok(()));
}

#[test]
fn skipping_what_may_be_skipped_is_feeding_it() {
    let exchanges = session(true);
    let mut base = Mysql::new();
    let (mut client_total, mut upstream_total) = (0, 0);
    for e in &exchanges {
        if e.ping {
            base.on_ping_injected();
        }
        for at in 0..e.client.len() {
            let mut fed = base.clone();
            fed.on_client_bytes(&e.client[..at]).unwrap();
            let mut skipped = fed.clone();
            let n = fed.client_skippable();
            let k = usize::try_from(n).unwrap().min(e.client.len() - at);
            client_total += n;
            fed.on_client_bytes(&e.client[at..at + k]).unwrap();
            assert_eq!(skipped.skip_client(k), k);
            assert_eq!(format!("{fed:?}"), format!("{skipped:?}"));
        }
        base.on_client_bytes(&e.client).unwrap();
        for at in 0..e.server.len() {
            let mut fed = base.clone();
            fed.on_upstream_bytes(&e.server[..at], &mut Output::new()).unwrap();
            let mut skipped = fed.clone();
            let n = fed.upstream_skippable();
            let k = usize::try_from(n).unwrap().min(e.server.len() - at);
            upstream_total += n;
            let bytes = &e.server[at..at + k];
            let (mut fo, mut so) = (Output::new(), Output::new());
            fed.on_upstream_bytes(bytes, &mut fo).unwrap();
            assert_eq!(skipped.skip_upstream(k, &mut so), k);
            assert_eq!(format!("{fed:?}"), format!("{skipped:?}"));
            assert_eq!(fo.apply(bytes), so.apply(bytes));
            assert_eq!(fo.accounted(), so.accounted());
        }
        base.on_upstream_bytes(&e.server, &mut Output::new()).unwrap();
    }
    assert!(upstream_total > 0, "the long row's value is skippable");
    let _ = client_total;
}

#[test]
fn a_long_upload_is_counted_down() {
    let mut mysql = ready(BASE_CAPS);
    mysql.on_client_bytes(&query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t")).unwrap();
    mysql.on_upstream_bytes(&pkt(1, b"\xfbf"), &mut Output::new()).unwrap();
    let data = vec![b'1'; 1000];
    let p = pkt(2, &data);
    mysql.on_client_bytes(&p[..200]).unwrap();
    assert_eq!(mysql.client_skippable(), 1000 + 4 - 200 - 1);
    assert_eq!(mysql.skip_client(usize::MAX), 1000 + 4 - 200 - 1);
    mysql.on_client_bytes(&p[p.len() - 1..]).unwrap();
    mysql.on_client_bytes(&pkt(3, b"")).unwrap();
    assert_eq!(mysql.can_inject(), Err(Defer::RepliesOutstanding));
    mysql.on_upstream_bytes(&ok(4, 2), &mut Output::new()).unwrap();
    assert_eq!(mysql.can_inject(), Ok(()));
}

/// MariaDB's metadata cache (extended capability bit 4, which Debian's `mariadb` client asks for): the column
/// count carries a byte that says whether the column definitions follow.
#[test]
fn the_metadata_cache_flag_says_whether_definitions_follow() {
    for deprecate in [false, true] {
        let caps = BASE_CAPS | if deprecate { 1 << 24 } else { 0 };
        let mut mysql = Mysql::new();
        let mut out = Output::new();
        mysql.on_upstream_bytes(&greeting(), &mut out).unwrap();
        mysql.on_client_bytes(&login(caps, 1 | 1 << 4)).unwrap();
        mysql.on_upstream_bytes(&ok(2, 2), &mut out).unwrap();
        let d = u8::from(!deprecate);
        let eof_after_columns = |seq: u8| if deprecate { vec![] } else { vec![eof(seq)] };
        // Definitions sent (flag 1), then left out (flag 0).
        let with = [
            vec![pkt(1, &[1, 1]), column(2, "a")],
            eof_after_columns(3),
            vec![pkt(3 + d, b"\x011")],
            vec![end(deprecate, 4 + d, 2)],
        ]
        .concat()
        .concat();
        let without =
            [vec![pkt(1, &[1, 0])], eof_after_columns(2), vec![pkt(2 + d, b"\x011")], vec![end(deprecate, 3 + d, 2)]]
                .concat()
                .concat();
        for reply in [with, without] {
            mysql.on_client_bytes(&query("SELECT a FROM t")).unwrap();
            for (at, byte) in reply.iter().enumerate() {
                assert_ne!(mysql.can_inject(), Ok(()), "deprecate {deprecate}, byte {at}");
                mysql.on_upstream_bytes(std::slice::from_ref(byte), &mut out).unwrap();
            }
            assert_eq!(mysql.can_inject(), Ok(()), "deprecate {deprecate}");
        }
        mysql.on_client_bytes(&query("SELECT a FROM t")).unwrap();
        let error = mysql.on_upstream_bytes(&pkt(1, &[1, 7]), &mut out).unwrap_err();
        assert!(error.reason.contains("metadata"));
    }
}
