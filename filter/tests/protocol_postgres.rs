//! Property tests for the PostgreSQL decoder: random conversations, cut into random chunks.
//!
//! A conversation is a sequence of rounds (simple queries, pipelined extended-query rounds, the filter's
//! Sync, unasked server messages, a Sync injected with a query behind it). The client must receive the
//! server's bytes minus exactly the filter's `ReadyForQuery`s, the client's stream may take a Sync only at
//! its message ends, and only where the model says every query is answered.

use heartbeat::core::protocol::postgres::Postgres;
use heartbeat::core::protocol::{Defer, Protocol};
use proptest::prelude::*;

mod common;
use common::{chunks, feed_any_bytes, feed_upstream};

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    [&[kind][..], &u32::try_from(body.len() + 4).unwrap().to_be_bytes(), body].concat()
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn startup() -> Vec<u8> {
    let body = b"\0\x03\0\0user\0app\0\0";
    [&u32::try_from(body.len() + 4).unwrap().to_be_bytes()[..], body].concat()
}

fn server_startup() -> Vec<u8> {
    [msg(b'R', &[0, 0, 0, 0]), msg(b'S', b"client_encoding\0UTF8\0"), msg(b'K', &[0; 8]), ready(b'I')].concat()
}

/// Bytes that look like a `Z`, a `Sync` or a length as often as not.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"Z\0\0\0\x05I".to_vec()),
        Just(b"S\0\0\0\x04".to_vec()),
        Just(b"\0\0\0\x05".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|p| p.concat())
}

fn row(values: &[Vec<u8>]) -> Vec<u8> {
    let mut body = u16::try_from(values.len()).unwrap().to_be_bytes().to_vec();
    for v in values {
        body.extend_from_slice(&u32::try_from(v.len()).unwrap().to_be_bytes());
        body.extend_from_slice(v);
    }
    msg(b'D', &body)
}

/// The server's answer to one query: rows (or an error), then `Z`.
fn answer(rows: &[Vec<u8>], error: bool, status: u8) -> Vec<u8> {
    let mut bytes = msg(b'T', b"\0\x01v\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0");
    for r in rows {
        bytes.extend(row(std::slice::from_ref(r)));
    }
    if error {
        bytes.extend(msg(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0"));
    } else {
        bytes.extend(msg(b'C', b"SELECT 1\0"));
    }
    bytes.extend(ready(status));
    bytes
}

#[derive(Clone, Debug)]
enum Round {
    /// A simple Query and its answer.
    Simple { sql: Vec<u8>, rows: Vec<Vec<u8>>, error: bool, status: u8 },
    /// `n` extended-query rounds pipelined, then their answers.
    Extended { n: usize, rows: Vec<Vec<u8>> },
    /// The filter's Sync, then unasked server messages and its `Z`.
    Ping { unasked: Vec<Vec<u8>>, status: u8 },
    /// The filter's Sync with a client query behind it: the filter's `Z` first, then the query's answer.
    PingThenQuery { rows: Vec<Vec<u8>> },
    /// Unasked server messages on an idle connection.
    Unasked(Vec<Vec<u8>>),
}

fn unasked() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let one = prop_oneof![
        value().prop_map(|v| msg(b'A', &[&[0, 0, 0, 9][..], b"chan\0", &v, b"\0"].concat())),
        value().prop_map(|v| msg(b'N', &[b"SNOTICE\0M", &v[..], b"\0\0"].concat())),
        Just(msg(b'S', b"TimeZone\0UTC\0")),
    ];
    prop::collection::vec(one, 0..3)
}

fn status() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'I'), Just(b'T'), Just(b'E')]
}

fn round() -> impl Strategy<Value = Round> {
    let rows = || prop::collection::vec(value(), 0..4);
    prop_oneof![
        (value(), rows(), any::<bool>(), status()).prop_map(|(sql, rows, error, status)| Round::Simple {
            sql,
            rows,
            error,
            status
        }),
        (1usize..4, rows()).prop_map(|(n, rows)| Round::Extended { n, rows }),
        (unasked(), status()).prop_map(|(unasked, status)| Round::Ping { unasked, status }),
        rows().prop_map(|rows| Round::PingThenQuery { rows }),
        unasked().prop_map(Round::Unasked),
    ]
}

fn extended_round() -> Vec<Vec<u8>> {
    vec![
        msg(b'P', b"\0SELECT $1\0\0\0"),
        msg(b'B', b"\0\0\0\0\0\x01\0\0\0\x01S\0\0"),
        msg(b'D', b"P\0"),
        msg(b'E', b"\0\0\0\0\0"),
        msg(b'S', b""),
    ]
}

fn chunking() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..64, 64usize..4096], 1..12)
}

/// Feeds the client's messages in chunks: a Sync may go in at a message end only, and there the decoder
/// defers for the reason the model gives (`at_end`).
fn feed_client(
    pg: &mut Postgres,
    messages: &[Vec<u8>],
    sizes: &[usize],
    at_end: impl Fn(usize) -> Defer,
) -> Result<(), TestCaseError> {
    let stream = messages.concat();
    let ends: Vec<usize> = messages
        .iter()
        .scan(0, |at, m| {
            *at += m.len();
            Some(*at)
        })
        .collect();
    let mut fed = 0;
    for chunk in chunks(&stream, sizes) {
        pg.on_client_bytes(chunk).expect("valid client bytes parse");
        fed += chunk.len();
        let expected = match ends.iter().position(|&e| e == fed) {
            Some(i) => Err(at_end(i)),
            None => Err(Defer::MidFrame),
        };
        prop_assert_eq!(pg.can_inject(), expected, "after {} bytes", fed);
    }
    Ok(())
}

fn play(rounds: &[Round], sizes: &[usize]) -> Result<(), TestCaseError> {
    let mut pg = Postgres::new();
    feed_client(&mut pg, &[startup()], sizes, |_| Defer::Handshake)?;
    let (seen, answered) = feed_upstream(&mut pg, &server_startup(), sizes)?;
    prop_assert_eq!((seen, answered), (server_startup(), 0));
    for round in rounds {
        prop_assert_eq!(pg.can_inject(), Ok(()));
        prop_assert!(!pg.reply_owed());
        let (server, stripped) = match round {
            Round::Simple { sql, rows, error, status } => {
                let q = msg(b'Q', &[sql.as_slice(), b"\0"].concat());
                feed_client(&mut pg, &[q], sizes, |_| Defer::RepliesOutstanding)?;
                prop_assert!(pg.reply_owed());
                (answer(rows, *error, *status), 0)
            }
            Round::Extended { n, rows } => {
                let messages: Vec<Vec<u8>> = (0..*n).flat_map(|_| extended_round()).collect();
                // The first round is a pipeline until its Sync; the later ones follow an owed Sync.
                feed_client(&mut pg, &messages, sizes, |i| {
                    if i < 4 {
                        Defer::Transaction
                    } else {
                        Defer::RepliesOutstanding
                    }
                })?;
                let one = [msg(b'1', b""), msg(b'2', b""), answer(rows, false, b'I')].concat();
                (one.repeat(*n), 0)
            }
            Round::Ping { unasked, status } => {
                pg.on_ping_injected();
                prop_assert!(!pg.reply_owed());
                let mut server = unasked.concat();
                server.extend(ready(*status));
                (server, 1)
            }
            Round::PingThenQuery { rows } => {
                pg.on_ping_injected();
                let q = msg(b'Q', b"SELECT 1\0");
                feed_client(&mut pg, &[q], sizes, |_| Defer::RepliesOutstanding)?;
                prop_assert!(!pg.reply_owed(), "the filter's Z comes first");
                ([ready(b'I'), answer(rows, false, b'I')].concat(), 1)
            }
            Round::Unasked(messages) => (messages.concat(), 0),
        };
        let (seen, answered) = feed_upstream(&mut pg, &server, sizes)?;
        let expected = if stripped == 1 {
            let at = match round {
                Round::PingThenQuery { .. } => 0,
                _ => server.len() - 6,
            };
            [&server[..at], &server[at + 6..]].concat()
        } else {
            server.clone()
        };
        prop_assert_eq!(answered, stripped);
        prop_assert_eq!(seen, expected);
    }
    prop_assert_eq!(pg.can_inject(), Ok(()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn client_sees_the_server_minus_the_filters_ready_for_query(
        rounds in prop::collection::vec(round(), 0..24),
        sizes in chunking(),
    ) {
        play(&rounds, &sizes)?;
    }

    /// Garbage, and valid streams with one byte changed: an error or a full account, never a panic.
    #[test]
    fn any_bytes_are_an_error_or_accounted(
        junk in prop::collection::vec(any::<u8>(), 0..512),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        sizes in chunking(),
    ) {
        feed_any_bytes(&mut Postgres::new(), &junk, &sizes)?;
        let mut valid = [startup(), server_startup(), msg(b'Q', b"SELECT 1\0"), answer(&[b"Z".to_vec()], false, b'I')]
            .concat();
        let at = flip.index(valid.len());
        valid[at] = byte;
        feed_any_bytes(&mut Postgres::new(), &valid, &sizes)?;
    }
}
