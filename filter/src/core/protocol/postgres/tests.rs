//! The PostgreSQL decoder on hand-written conversations: every split of every stream, the safe points, COPY,
//! encryption, malformed streams, and bodies skipped by counting.

use super::*;
use crate::core::protocol::{check_skipping, client_view};

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 4).unwrap();
    [&[kind][..], &len.to_be_bytes(), body].concat()
}

fn startup() -> Vec<u8> {
    let body = b"\0\x03\0\0user\0postgres\0database\0postgres\0\0";
    [&u32::try_from(body.len() + 4).unwrap().to_be_bytes()[..], body].concat()
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

/// The server's side of a trust-authenticated startup.
fn server_startup() -> Vec<u8> {
    [
        msg(b'R', &0u32.to_be_bytes()),
        msg(b'S', b"server_version\x0015.10\0"),
        msg(b'K', &[0, 0, 0, 7, 1, 2, 3, 4]),
        ready(b'I'),
    ]
    .concat()
}

/// A connection past startup.
fn connected() -> Postgres {
    let mut pg = Postgres::new();
    pg.on_client_bytes(&startup()).unwrap();
    assert_eq!(pg.can_inject(), Err(Defer::Handshake));
    assert_eq!(client_view(&mut pg, &[&server_startup()]).1, 0);
    assert_eq!(pg.can_inject(), Ok(()));
    pg
}

#[test]
fn the_filters_sync_is_answered_and_its_ready_for_query_stripped() {
    let mut pg = connected();
    pg.on_ping_injected();
    let notice = msg(b'N', b"SNOTICE\0Mhello\0\0");
    let (seen, answered) = client_view(&mut pg, &[&[notice.clone(), ready(b'T')].concat()]);
    assert_eq!((seen, answered), (notice, 1));
    assert!(!pg.reply_owed());
}

fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &[sql.as_bytes(), b"\0"].concat())
}

/// An extended-query round as tokio-postgres sends it: Parse, Bind, Describe, Execute, Sync.
fn extended() -> Vec<Vec<u8>> {
    vec![
        msg(b'P', b"s1\0SELECT $1::int\0\0\0"),
        msg(b'B', b"\0s1\0\0\0\0\x01\0\0\0\x011\0\0"),
        msg(b'D', b"P\0"),
        msg(b'E', b"\0\0\0\0\0"),
        sync(),
    ]
}

fn row(values: &[&[u8]]) -> Vec<u8> {
    let mut body = u16::try_from(values.len()).unwrap().to_be_bytes().to_vec();
    for v in values {
        body.extend_from_slice(&u32::try_from(v.len()).unwrap().to_be_bytes());
        body.extend_from_slice(v);
    }
    msg(b'D', &body)
}

/// Server messages, some with `Z`'s and `Sync`'s bytes in their bodies.
fn server_replies() -> Vec<u8> {
    [
        msg(b'T', b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0"),
        row(&[b"Z\0\0\0\x05I"]),
        row(&[b"S\0\0\0\x04", b""]),
        msg(b'C', b"SELECT 2\0"),
        ready(b'I'),
    ]
    .concat()
}

#[test]
fn client_boundaries_after_every_byte() {
    let mut frames = vec![startup(), query("SELECT 1"), msg(b'p', b"secret\0")];
    frames.extend(extended());
    let ends = crate::core::protocol::frame_ends(&frames);
    let stream = frames.concat();
    let mut pg = Postgres::new();
    for (at, byte) in stream.iter().enumerate() {
        pg.on_client_bytes(std::slice::from_ref(byte)).unwrap();
        let expected = if ends.contains(&(at + 1)) { Defer::Handshake } else { Defer::MidFrame };
        assert_eq!(pg.can_inject(), Err(expected), "after {} bytes", at + 1);
    }
}

#[test]
fn a_sync_goes_in_only_when_every_query_and_sync_is_answered() {
    let mut pg = connected();
    pg.on_client_bytes(&query("SELECT pg_sleep(600)")).unwrap();
    assert_eq!(pg.can_inject(), Err(Defer::RepliesOutstanding));
    assert!(pg.reply_owed(), "a slow query is judged on reply_timeout");
    let (seen, answered) = client_view(&mut pg, &[&server_replies()]);
    assert_eq!((seen, answered), (server_replies(), 0));
    assert_eq!(pg.can_inject(), Ok(()));
    assert!(!pg.reply_owed());

    let rounds = extended();
    for (i, m) in rounds.iter().enumerate() {
        pg.on_client_bytes(m).unwrap();
        let expected = if i + 1 < rounds.len() { Defer::Transaction } else { Defer::RepliesOutstanding };
        assert_eq!(pg.can_inject(), Err(expected), "after message {i}");
    }
    // A pipeline: the second round's messages before the first's answer.
    pg.on_client_bytes(&rounds.concat()).unwrap();
    client_view(&mut pg, &[&server_replies()]);
    assert_eq!(pg.can_inject(), Err(Defer::RepliesOutstanding), "one Z still owed");
    assert!(pg.reply_owed());
    client_view(&mut pg, &[&server_replies()]);
    assert_eq!(pg.can_inject(), Ok(()));
    assert!(!pg.reply_owed());
}

#[test]
fn inside_an_explicit_transaction_the_sync_is_harmless_and_its_z_stripped() {
    let mut pg = connected();
    pg.on_client_bytes(&query("BEGIN")).unwrap();
    let begun = [msg(b'C', b"BEGIN\0"), ready(b'T')].concat();
    assert_eq!(client_view(&mut pg, &[&begun]), (begun.clone(), 0));
    assert_eq!(pg.can_inject(), Ok(()));
    pg.on_ping_injected();
    assert!(!pg.reply_owed(), "the filter's Sync is judged on PINGs");
    // The client's COMMIT goes out behind the filter's Sync; both Z's come back in order.
    pg.on_client_bytes(&query("COMMIT")).unwrap();
    assert!(!pg.reply_owed(), "the filter's Z comes first");
    let committed = [msg(b'C', b"COMMIT\0"), ready(b'I')].concat();
    let upstream = [ready(b'T'), committed.clone()].concat();
    assert_eq!(client_view(&mut pg, &[&upstream]), (committed, 1));
    assert_eq!(pg.can_inject(), Ok(()));
}

/// A whole conversation with the filter's Syncs where they are allowed: at every split of the upstream's
/// stream into two chunks and byte by byte, the client sees exactly the server's messages but the filter's Z's.
#[test]
fn every_split_strips_exactly_the_filters_ready_for_query() {
    let notify = msg(b'A', b"\0\0\0\x07chan\0Z\0\0\0\x05I\0");
    let fatal = msg(b'E', b"SFATAL\0C57P01\0Mterminating connection due to administrator command\0\0");
    // (server bytes, a Sync is injected after them, they are the filter's Z and stripped)
    let parts: Vec<(Vec<u8>, bool, bool)> = vec![
        (server_startup(), true, false),
        (msg(b'S', b"TimeZone\0UTC\0"), false, false),
        (ready(b'I'), false, true),
        (server_replies(), true, false),
        (notify.clone(), false, false),
        (ready(b'I'), true, true),
        (ready(b'T'), false, true),
        (notify, false, false),
        // Owed to nobody (the client sent no query here): forwarded.
        (ready(b'E'), false, false),
        (fatal, false, false),
    ];
    let upstream: Vec<u8> = parts.iter().flat_map(|(b, _, _)| b.clone()).collect();
    let expected: Vec<u8> = parts.iter().filter(|p| !p.2).flat_map(|(b, _, _)| b.clone()).collect();
    let marks: Vec<usize> = parts
        .iter()
        .scan(0, |at, (b, _, _)| {
            *at += b.len();
            Some(*at)
        })
        .zip(&parts)
        .filter(|(_, p)| p.1)
        .map(|(at, _)| at)
        .collect();
    let setup = || {
        let mut pg = Postgres::new();
        pg.on_client_bytes(&startup()).unwrap();
        pg
    };
    let feed = |chunks: &[&[u8]]| {
        let mut pg = setup();
        let mut view = crate::core::protocol::testing::ClientView::new();
        let mut fed = 0;
        for chunk in chunks {
            for byte in chunk.iter() {
                view.feed(&mut pg, std::slice::from_ref(byte)).unwrap();
                fed += 1;
                if marks.contains(&fed) {
                    assert_eq!(pg.can_inject(), Ok(()), "at {fed}");
                    pg.on_ping_injected();
                }
            }
        }
        view.finish(&mut pg);
        (view.seen().to_vec(), view.answered())
    };
    assert_eq!(feed(&[&upstream]), (expected.clone(), 3));
    // Chunks that cut the filter's Z: fed through client_view after injecting up front is not the same
    // conversation, so split the stream at every point with the injections made where they fall.
    for cut in 0..=upstream.len() {
        let (a, b) = upstream.split_at(cut);
        let mut pg = setup();
        let mut view = crate::core::protocol::testing::ClientView::new();
        let mut fed = 0;
        // Feed each chunk in pieces that end at the marks, so that injections happen there, whatever the cut.
        for chunk in [a, b] {
            let mut rest = chunk;
            while !rest.is_empty() {
                let next_mark = marks.iter().copied().find(|m| *m > fed).unwrap_or(usize::MAX);
                let n = rest.len().min(next_mark - fed);
                let (piece, after) = rest.split_at(n);
                view.feed(&mut pg, piece).unwrap();
                fed += n;
                if fed == next_mark {
                    assert_eq!(pg.can_inject(), Ok(()), "cut {cut} at {fed}");
                    pg.on_ping_injected();
                }
                rest = after;
            }
        }
        view.finish(&mut pg);
        assert_eq!((view.seen(), view.answered()), (&expected[..], 3), "cut at {cut}");
    }
}

#[test]
fn a_ready_for_query_split_across_chunks_is_withheld_then_stripped_or_given_back() {
    let mut pg = connected();
    pg.on_ping_injected();
    let z = ready(b'I');
    for cut in 1..z.len() {
        let mut pg2 = connected();
        pg2.on_ping_injected();
        assert_eq!(client_view(&mut pg2, &[&z[..cut], &z[cut..]]), (Vec::new(), 1), "cut {cut}");
    }
    // A DataRow that starts like nothing withheld; a Z for the client after the filter's.
    pg.on_client_bytes(&query("SELECT 1")).unwrap();
    let up = [ready(b'I'), server_replies()].concat();
    for cut in 0..=up.len() {
        let mut p = connected();
        p.on_ping_injected();
        p.on_client_bytes(&query("SELECT 1")).unwrap();
        assert_eq!(client_view(&mut p, &[&up[..cut], &up[cut..]]), (server_replies(), 1), "cut {cut}");
        assert_eq!(p.can_inject(), Ok(()));
    }
}

#[test]
fn copy_from_stdin_extended_forgets_the_ignored_sync() {
    let mut pg = connected();
    // tokio-postgres: Bind, Execute, Sync; then the copy data, CopyDone, Sync.
    pg.on_client_bytes(&[msg(b'B', b"\0\0\0\0\0\0\0"), msg(b'E', b"\0\0\0\0\0"), sync()].concat()).unwrap();
    assert!(pg.reply_owed());
    let copy_in = msg(b'G', b"\0\0\x01\0\0");
    client_view(&mut pg, &[&[msg(b'2', b""), copy_in].concat()]);
    assert!(!pg.reply_owed(), "in copy-in the server waits for the client");
    assert_eq!(pg.can_inject(), Err(Defer::RepliesOutstanding));
    pg.on_client_bytes(&[msg(b'd', b"1\tZ\n"), msg(b'd', b"S\0\0\0\x04"), msg(b'c', b""), sync()].concat()).unwrap();
    assert!(pg.reply_owed(), "CopyDone's Sync is answered");
    client_view(&mut pg, &[&[msg(b'C', b"COPY 2\0"), ready(b'I')].concat()]);
    assert_eq!(pg.can_inject(), Ok(()));
    assert!(!pg.reply_owed());
}

#[test]
fn copy_simple_in_and_out_keep_the_query_owed_until_its_z() {
    let mut pg = connected();
    pg.on_client_bytes(&query("COPY t FROM STDIN")).unwrap();
    client_view(&mut pg, &[&msg(b'G', b"\0\0\0")]);
    assert_eq!(pg.can_inject(), Err(Defer::RepliesOutstanding));
    pg.on_client_bytes(&[msg(b'd', b"1\n"), sync(), msg(b'c', b"")].concat()).unwrap();
    client_view(&mut pg, &[&[msg(b'C', b"COPY 1\0"), ready(b'I')].concat()]);
    assert_eq!(pg.can_inject(), Ok(()));

    pg.on_client_bytes(&query("COPY t TO STDOUT")).unwrap();
    client_view(&mut pg, &[&[msg(b'H', b"\0\0\0"), msg(b'd', b"Z\0\0\0\x05I")].concat()]);
    assert_eq!(pg.can_inject(), Err(Defer::RepliesOutstanding));
    assert!(pg.reply_owed());
    client_view(&mut pg, &[&[msg(b'c', b""), msg(b'C', b"COPY 1\0"), ready(b'I')].concat()]);
    assert_eq!(pg.can_inject(), Ok(()));
}

#[test]
fn an_accepted_ssl_request_stops_the_watch_and_passes_everything() {
    for (code, answer) in [(reader::SSL_REQUEST, b'S'), (reader::GSSENC_REQUEST, b'G')] {
        let mut pg = Postgres::new();
        let request = [8u32.to_be_bytes(), code.to_be_bytes()].concat();
        pg.on_client_bytes(&request).unwrap();
        let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage";
        let (seen, answered) = client_view(&mut pg, &[&[answer], b"\x16\x03\x03\0\x7aZ\0\0\0\x05I"]);
        assert_eq!((seen, answered), ([&[answer][..], b"\x16\x03\x03\0\x7aZ\0\0\0\x05I"].concat(), 0));
        pg.on_client_bytes(tls).unwrap();
        assert_eq!(pg.unwatched(), Some(Unwatched::Encrypted));
        assert_eq!(pg.can_inject(), Err(Defer::Mode));
        assert!(!pg.reply_owed());
        assert_eq!(pg.client_skippable(), u64::MAX);
    }
}

#[test]
fn a_refused_ssl_request_is_followed_by_the_startup() {
    let mut pg = Postgres::new();
    pg.on_client_bytes(&[8u32.to_be_bytes(), reader::SSL_REQUEST.to_be_bytes()].concat()).unwrap();
    assert_eq!(client_view(&mut pg, &[b"N"]), (b"N".to_vec(), 0));
    pg.on_client_bytes(&startup()).unwrap();
    client_view(&mut pg, &[&server_startup()]);
    assert_eq!(pg.unwatched(), None);
    assert_eq!(pg.can_inject(), Ok(()));
}

#[test]
fn direct_tls_and_cancel_requests_are_not_watched() {
    let mut pg = Postgres::new();
    pg.on_client_bytes(b"\x16\x03\x01\x00\xf4\x01").unwrap();
    assert_eq!(pg.unwatched(), Some(Unwatched::Encrypted));
    let mut pg = Postgres::new();
    let cancel = [16u32.to_be_bytes(), reader::CANCEL_REQUEST.to_be_bytes(), [0, 0, 0, 7], [1, 2, 3, 4]].concat();
    pg.on_client_bytes(&cancel).unwrap();
    assert_eq!(pg.unwatched(), Some(Unwatched::Cancel));
    assert_eq!(pg.can_inject(), Err(Defer::Mode));
}

#[test]
fn copy_both_stops_the_watch() {
    let mut pg = connected();
    pg.on_client_bytes(&query("START_REPLICATION SLOT s LOGICAL 0/0")).unwrap();
    client_view(&mut pg, &[&[msg(b'W', b"\0\0\0"), msg(b'd', b"k\0")].concat()]);
    assert_eq!(pg.unwatched(), Some(Unwatched::CopyBoth));
    assert_eq!(pg.can_inject(), Err(Defer::Mode));
    assert!(!pg.reply_owed());
}

#[test]
fn malformed_streams_are_errors() {
    let cases: [(&[u8], bool, &str); 6] = [
        (b"\0\0\0\x04\0\x03\0\0", false, "startup message length out of range"),
        (b"\0\0\0\x08\0\x02\0\0", false, "unknown startup request code"),
        (b"\0\0\0\x0c\x04\xd2\x16\x2f\0\0\0\0", false, "SSLRequest/GSSENCRequest of a length other than 8"),
        (b"Z\0\0\0\x06II", true, "ReadyForQuery of a length other than 5"),
        (b"Z\0\0\0\x05X", true, "ReadyForQuery status other than I, T or E"),
        (b"D\0\0\0\x03", true, "message length out of range"),
    ];
    for (bytes, upstream, reason) in cases {
        let mut pg = Postgres::new();
        let error = if upstream {
            pg.on_upstream_bytes(bytes, &mut Output::new()).unwrap_err()
        } else {
            pg.on_client_bytes(bytes).unwrap_err()
        };
        assert_eq!(error.reason, reason);
    }
    let mut pg = Postgres::new();
    pg.on_client_bytes(&[8u32.to_be_bytes(), reader::SSL_REQUEST.to_be_bytes()].concat()).unwrap();
    let error = pg.on_upstream_bytes(b"X", &mut Output::new()).unwrap_err();
    assert_eq!(error.reason, "unexpected answer to SSLRequest/GSSENCRequest");
}

#[test]
fn bodies_are_skipped_by_counting() {
    let mut client = vec![startup(), query(&"x".repeat(100))];
    client.extend(extended());
    client.push(msg(b'd', &[b'S'; 300]));
    let client = client.concat();
    let upstream = [server_startup(), server_replies(), row(&[&[b'Z'; 500]]), ready(b'I')].concat();
    let (c, u) = check_skipping(Postgres::new, &client, &upstream);
    assert!(c > 1000 && u > 1000, "skippable bytes: client {c}, upstream {u}");
    // A filter's Z is never skipped: the hold looks at every byte of it.
    let mut pg = connected();
    pg.on_ping_injected();
    pg.on_upstream_bytes(b"Z\0\0", &mut Output::new()).unwrap();
    assert_eq!(pg.upstream_skippable(), 0);
}
