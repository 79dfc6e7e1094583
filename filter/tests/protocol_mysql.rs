//! Property tests for the MySQL decoder: random sessions (result sets of random shape with values that look
//! like EOF, OK and ERR packets, multi-results, prepared statements, LOCAL INFILE uploads, commands without a
//! reply, the filter's COM_PING anywhere a command may go), with and without CLIENT_DEPRECATE_EOF, cut into
//! random chunks; and random bytes.

use heartbeat::core::protocol::mysql::Mysql;
use heartbeat::core::protocol::{Defer, Protocol};
use proptest::prelude::*;

mod common;
use common::{chunks, feed_any_bytes, feed_upstream};

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
    p.extend_from_slice(&[2, 0, 0xff, 0xff, 21, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&0x1fu32.to_le_bytes());
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    pkt(0, &p)
}

fn login(deprecate: bool) -> Vec<u8> {
    let caps: u32 = 0x200 | 0x8000 | 0x8_0000 | 0x2_0000 | 0x8 | if deprecate { 1 << 24 } else { 0 };
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&16_777_216u32.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 19]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(b"root\0\0mysql_native_password\0");
    pkt(1, &p)
}

fn ok(seq: u8, status: u16) -> Vec<u8> {
    let s = status.to_le_bytes();
    pkt(seq, &[0, 0, 0, s[0], s[1], 0, 0])
}

fn column(seq: u8) -> Vec<u8> {
    pkt(seq, b"\x03def\x04test\x01t\x01t\x01c\x01c\x0c\x21\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00")
}

fn lenenc_str(value: &[u8]) -> Vec<u8> {
    let n = value.len();
    let mut v = if n < 251 { vec![n as u8] } else { vec![0xfc, n as u8, (n >> 8) as u8] };
    v.extend_from_slice(value);
    v
}

/// A value that looks like a packet of its own half the time.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![0xfe, 0, 0, 2, 0]),
        Just(vec![0xff, 0x28, 0x04]),
        Just(vec![0, 0, 0, 2, 0, 0, 0]),
        Just(vec![0x01, 0, 0, 0, 0x0e]),
        prop::collection::vec(any::<u8>(), 0..8),
        prop::collection::vec(any::<u8>(), 250..400),
    ]
}

#[derive(Clone, Debug)]
enum Cmd {
    /// The filter's COM_PING (when the decoder allows one).
    Ping,
    /// COM_QUERY answered by result sets (rows of values), the last without SERVER_MORE_RESULTS_EXISTS, then
    /// maybe a final OK.
    Select {
        sets: Vec<(u8, Vec<Vec<Vec<u8>>>)>,
        final_ok: bool,
    },
    /// COM_QUERY answered by OK or ERR.
    Simple {
        error: bool,
    },
    Prepare {
        params: u8,
        columns: u8,
    },
    /// COM_STMT_EXECUTE with binary rows.
    Execute {
        rows: Vec<Vec<u8>>,
    },
    Close,
    LongData(Vec<u8>),
    Infile(Vec<Vec<u8>>),
    Statistics,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let row = |n: u8| prop::collection::vec(value(), n as usize);
    let set = (1u8..4).prop_flat_map(move |n| (Just(n), prop::collection::vec(row(n), 0..4)));
    prop_oneof![
        4 => Just(Cmd::Ping),
        3 => (prop::collection::vec(set, 1..3), any::<bool>()).prop_map(|(sets, final_ok)| Cmd::Select { sets, final_ok }),
        2 => any::<bool>().prop_map(|error| Cmd::Simple { error }),
        1 => (0u8..3, 0u8..3).prop_map(|(params, columns)| Cmd::Prepare { params, columns }),
        1 => prop::collection::vec(value(), 0..3).prop_map(|rows| Cmd::Execute { rows }),
        1 => Just(Cmd::Close),
        1 => value().prop_map(Cmd::LongData),
        1 => prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..3).prop_map(Cmd::Infile),
        1 => Just(Cmd::Statistics),
    ]
}

/// A command as bytes: the client's packets before the server's first reply, the server's packets, then (for
/// LOCAL INFILE) the client's upload and the server's OK.
struct Exchange {
    client: Vec<u8>,
    server: Vec<u8>,
    upload: Option<(Vec<u8>, Vec<u8>)>,
}

fn exchange(cmd: &Cmd, deprecate: bool) -> Exchange {
    let mut server = Vec::new();
    let mut seq = 1u8;
    let mut put = |server: &mut Vec<u8>, payload: &[u8]| {
        server.extend(pkt(seq, payload));
        seq = seq.wrapping_add(1);
    };
    let end = |status: u16| {
        let s = status.to_le_bytes();
        if deprecate {
            vec![0xfe, 0, 0, s[0], s[1], 0, 0]
        } else {
            vec![0xfe, 0, 0, s[0], s[1]]
        }
    };
    let eof = [0xfe, 0, 0, 2, 0];
    let payload_of = |p: Vec<u8>| p[4..].to_vec();
    match cmd {
        Cmd::Ping => unreachable!(),
        Cmd::Select { sets, final_ok } => {
            for (i, (columns, rows)) in sets.iter().enumerate() {
                put(&mut server, &[*columns]);
                for _ in 0..*columns {
                    put(&mut server, &payload_of(column(0)));
                }
                if !deprecate {
                    put(&mut server, &eof);
                }
                for row in rows {
                    put(&mut server, &row.iter().flat_map(|v| lenenc_str(v)).collect::<Vec<_>>());
                }
                let more = i + 1 < sets.len() || *final_ok;
                put(&mut server, &end(if more { 0x000a } else { 0x0002 }));
            }
            if *final_ok {
                put(&mut server, &payload_of(ok(0, 2)));
            }
            Exchange { client: pkt(0, b"\x03CALL p()"), server, upload: None }
        }
        Cmd::Simple { error } => {
            if *error {
                put(&mut server, b"\xff\x28\x04#42000syntax");
            } else {
                put(&mut server, &payload_of(ok(0, 3)));
            }
            Exchange { client: pkt(0, b"\x03UPDATE t SET a = 1"), server, upload: None }
        }
        Cmd::Prepare { params, columns } => {
            put(&mut server, &[0, 1, 0, 0, 0, *columns, 0, *params, 0, 0, 0, 0]);
            for part in [*params, *columns] {
                for _ in 0..part {
                    put(&mut server, &payload_of(column(0)));
                }
                if part > 0 && !deprecate {
                    put(&mut server, &eof);
                }
            }
            Exchange { client: pkt(0, b"\x16SELECT ? FROM t WHERE a = ?"), server, upload: None }
        }
        Cmd::Execute { rows } => {
            put(&mut server, &[1]);
            put(&mut server, &payload_of(column(0)));
            if !deprecate {
                put(&mut server, &eof);
            }
            for v in rows {
                put(&mut server, &[&[0u8, 0][..], &lenenc_str(v)].concat());
            }
            put(&mut server, &end(2));
            Exchange { client: pkt(0, b"\x17\x01\0\0\0\0\x01\0\0\0"), server, upload: None }
        }
        Cmd::Close => Exchange { client: pkt(0, b"\x19\x01\0\0\0"), server: vec![], upload: None },
        Cmd::LongData(data) => {
            Exchange { client: pkt(0, &[&b"\x18\x01\0\0\0\0\0"[..], data].concat()), server: vec![], upload: None }
        }
        Cmd::Infile(blocks) => {
            put(&mut server, b"\xfbdata.csv");
            let mut upload = Vec::new();
            let mut s = 2u8;
            let last = Vec::new();
            for b in blocks.iter().chain(std::iter::once(&last)) {
                upload.extend(pkt(s, b));
                s += 1;
            }
            let done = ok(s, 2);
            Exchange {
                client: pkt(0, b"\x03LOAD DATA LOCAL INFILE 'data.csv' INTO TABLE t"),
                server,
                upload: Some((upload, done)),
            }
        }
        Cmd::Statistics => {
            put(&mut server, b"Uptime: 12  Threads: 1  Questions: 3");
            Exchange { client: pkt(0, b"\x09"), server, upload: None }
        }
    }
}

/// Feeds client bytes in chunks; a COM_PING is never allowed before the last chunk.
fn feed_client(mysql: &mut Mysql, bytes: &[u8], sizes: &[usize], last_allows: bool) -> Result<(), TestCaseError> {
    let mut fed = 0;
    for chunk in chunks(bytes, sizes) {
        mysql.on_client_bytes(chunk).expect("valid client bytes parse");
        fed += chunk.len();
        if fed < bytes.len() || !last_allows {
            prop_assert_ne!(mysql.can_inject(), Ok(()), "after {} of {} client bytes", fed, bytes.len());
        }
    }
    Ok(())
}

fn play(deprecate: bool, cmds: &[Cmd], sizes: &[usize]) -> Result<(), TestCaseError> {
    let mut mysql = Mysql::new();
    let (seen, _) = feed_upstream(&mut mysql, &greeting(), sizes)?;
    prop_assert_eq!(seen, greeting());
    feed_client(&mut mysql, &login(deprecate), sizes, false)?;
    prop_assert_eq!(mysql.can_inject(), Err(Defer::Handshake));
    let (seen, _) = feed_upstream(&mut mysql, &ok(2, 2), sizes)?;
    prop_assert_eq!(seen, ok(2, 2));
    let mut pinged = false;
    for cmd in cmds {
        let expected = if pinged { Err(Defer::RepliesOutstanding) } else { Ok(()) };
        prop_assert_eq!(mysql.can_inject(), expected);
        prop_assert!(!mysql.reply_owed());
        if let Cmd::Ping = cmd {
            if !pinged {
                mysql.on_ping_injected();
                pinged = true;
            }
            continue;
        }
        let ex = exchange(cmd, deprecate);
        feed_client(&mut mysql, &ex.client, sizes, ex.server.is_empty() && !pinged)?;
        let mut server = ex.server.clone();
        if pinged {
            server = [ok(1, 2), server].concat();
        }
        let (seen, answered) = feed_upstream(&mut mysql, &server, sizes)?;
        prop_assert_eq!(&seen, &ex.server);
        prop_assert_eq!(answered, u32::from(pinged));
        pinged = false;
        if let Some((upload, done)) = &ex.upload {
            prop_assert!(mysql.reply_owed());
            feed_client(&mut mysql, upload, sizes, false)?;
            let (seen, _) = feed_upstream(&mut mysql, done, sizes)?;
            prop_assert_eq!(&seen, done);
        }
    }
    if pinged {
        let (seen, answered) = feed_upstream(&mut mysql, &ok(1, 2), sizes)?;
        prop_assert!(seen.is_empty());
        prop_assert_eq!(answered, 1);
    }
    prop_assert_eq!(mysql.can_inject(), Ok(()));
    Ok(())
}

fn chunking() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..32, 32usize..1024], 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The client receives exactly the server's bytes minus the OKs to the filter's COM_PINGs, and a COM_PING may
    /// go only between commands once their whole response was read, whatever the chunking.
    #[test]
    fn random_sessions_in_random_chunks(
        deprecate in any::<bool>(),
        cmds in prop::collection::vec(cmd(), 0..16),
        sizes in chunking(),
    ) {
        play(deprecate, &cmds, &sizes)?;
    }

    /// Random bytes on both sides never panic, and every chunk is accounted for.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), sizes in chunking()) {
        feed_any_bytes(&mut Mysql::new(), &bytes, &sizes)?;
    }

    /// Random bytes after a valid handshake (where commands and responses are read) never panic either.
    #[test]
    fn random_bytes_after_the_handshake_never_panic(
        deprecate in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        sizes in chunking(),
    ) {
        let mut mysql = Mysql::new();
        feed_upstream(&mut mysql, &greeting(), &sizes)?;
        mysql.on_client_bytes(&login(deprecate)).unwrap();
        feed_upstream(&mut mysql, &ok(2, 2), &sizes)?;
        feed_any_bytes(&mut mysql, &bytes, &sizes)?;
    }
}
