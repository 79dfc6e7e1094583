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
