//! One decoder, one direction fuzzed: the fuzzer's bytes are the client's (or the upstream's) stream, cut
//! where the first input bytes say, fed through the `Protocol` trait in the order the connection core keeps.
//!
//! Checked on every run:
//! - a chunk is either an error or fully accounted for (`out.accounted() == chunk.len()`), and an error never
//!   accounts for more than the chunk;
//! - replies reported answered never outnumber the PINGs injected;
//! - what the client receives is the upstream's bytes with some removed, order kept; nothing is removed when
//!   no reply to the filter was reported; at most `max_reply` bytes per reply (NATS and framed);
//! - no panic, no arithmetic overflow (the fuzz build has overflow checks on).

use heartbeat::core::protocol::framed::{Framed, FramedSpec};
use heartbeat::core::protocol::mysql::Mysql;
use heartbeat::core::protocol::nats::Nats;
use heartbeat::core::protocol::postgres::Postgres;
use heartbeat::core::protocol::redis::Redis;
use heartbeat::core::protocol::testing::{ClientView, ViewError};
use heartbeat::core::protocol::Protocol;

use crate::{is_subsequence, Bytes, Cuts};

/// What a protocol's conversation is made of, for the side that is not fuzzed.
pub struct Pieces {
    /// Client bytes sent before anything else (NATS `CONNECT`).
    pub handshake: Vec<u8>,
    /// Whole client frames (some of them PINGs of the client's own, which take a place in the PONG queue).
    pub client_frames: Vec<Vec<u8>>,
    /// Whole upstream frames, replies to PINGs among them.
    pub replies: Vec<Vec<u8>>,
    /// The most bytes one reply to the filter's PING may remove from the client's view (`None`: any reply).
    pub max_reply: Option<usize>,
    /// Every reply to the filter is removed whole when every PING went in before the upstream's first byte
    /// (framed: a reply that starts while the filter is owed the next one is withheld, so exactly
    /// `max_reply` bytes go per reply).
    pub exact_reply: bool,
}

pub fn nats() -> (Box<dyn Protocol>, Pieces) {
    let pieces = Pieces {
        handshake: b"CONNECT {\"verbose\":false,\"headers\":true}\r\n".to_vec(),
        client_frames: vec![
            b"PING\r\n".to_vec(),
            b"PUB a 6\r\nPONG\r\n\r\n".to_vec(),
            b"SUB x 1\r\n".to_vec(),
            b"HPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n".to_vec(),
        ],
        replies: vec![
            b"PONG\r\n".to_vec(),
            b"pong\n".to_vec(),
            b"+OK\r\n".to_vec(),
            b"PING\r\n".to_vec(),
            b"MSG a 1 4\r\nPONG\r\n".to_vec(),
        ],
        max_reply: Some(b"PONG\r\n".len()),
        exact_reply: false,
    };
    (Box::new(Nats::new()), pieces)
}

pub fn redis() -> (Box<dyn Protocol>, Pieces) {
    let pieces = Pieces {
        handshake: Vec::new(),
        client_frames: vec![
            b"*1\r\n$4\r\nPING\r\n".to_vec(),
            b"GET k\r\n".to_vec(),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".to_vec(),
            b"MULTI\r\n".to_vec(),
            b"EXEC\r\n".to_vec(),
            b"BLPOP q 1\r\n".to_vec(),
            b"SUBSCRIBE c\r\n".to_vec(),
            b"HELLO 3\r\n".to_vec(),
        ],
        replies: vec![
            b"+PONG\r\n".to_vec(),
            b"+OK\r\n".to_vec(),
            b"$-1\r\n".to_vec(),
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n".to_vec(),
            b"*2\r\n$4\r\npong\r\n$0\r\n\r\n".to_vec(),
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n".to_vec(),
            b"-NOAUTH Authentication required.\r\n".to_vec(),
        ],
        max_reply: None,
        exact_reply: false,
    };
    (Box::new(Redis::new()), pieces)
}

/// A PostgreSQL message: type byte, length counting itself, body.
fn pg(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    [&[kind][..], &len.to_be_bytes(), body].concat()
}

pub fn postgres() -> (Box<dyn Protocol>, Pieces) {
    // The StartupMessage: no length byte of its own, so built like a typed message and cut.
    let startup = pg(0, b"\0\x03\0\0user\0app\0\0");
    let pieces = Pieces {
        handshake: startup[1..].to_vec(),
        client_frames: vec![
            pg(b'Q', b"SELECT 1\0"),
            pg(b'S', b""),
            pg(b'P', b"\0SELECT $1\0\0\0"),
            pg(b'B', b"\0\0\0\0\0\0\0"),
            pg(b'E', b"\0\0\0\0\0"),
            pg(b'd', b"Z\0\0\0\x05I"),
            pg(b'c', b""),
        ],
        replies: vec![
            pg(b'Z', b"I"),
            pg(b'Z', b"T"),
            pg(b'A', b"\0\0\0\x01c\0Z\0\0\0\x05I\0"),
            pg(b'D', b"\0\x01\0\0\0\x06Z\0\0\0\x05I"),
            pg(b'G', b"\0\0\0"),
            pg(b'C', b"SELECT 1\0"),
            b"N".to_vec(),
        ],
        max_reply: Some(6),
        exact_reply: false,
    };
    (Box::new(Postgres::new()), pieces)
}

/// A MySQL packet: 3-byte little-endian length, sequence id, payload.
fn my(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes();
    [&[len[0], len[1], len[2], seq][..], payload].concat()
}

/// MySQL, logged in (a MariaDB greeting, a HandshakeResponse41 without CLIENT_DEPRECATE_EOF, the OK): the
/// fuzzed side starts at the first command.
pub fn mysql() -> (Box<dyn Protocol>, Pieces) {
    let mut protocol: Box<dyn Protocol> = Box::new(Mysql::new());
    let mut greeting = b"\x0a5.5.5-10.11.6-MariaDB\0\x07\0\0\0abcdefgh\0\xfe\xff\x2d\x02\0\xff\xff\x15".to_vec();
    greeting.extend_from_slice(b"\0\0\0\0\0\0\x1f\0\0\0ijklmnopqrst\0mysql_native_password\0");
    let mut login = 0x000a_a20cu32.to_le_bytes().to_vec();
    login.extend_from_slice(&[0, 0, 0, 1, 45]);
    login.extend_from_slice(&[0; 19]);
    login.extend_from_slice(b"\x01\0\0\0root\0\0");
    let mut view = ClientView::new();
    let greeted = view.feed(protocol.as_mut(), &my(0, &greeting)).is_ok();
    let logged_in = protocol.on_client_bytes(&my(1, &login)).is_ok();
    let ok = view.feed(protocol.as_mut(), &my(2, b"\0\0\0\x02\0\0\0")).is_ok();
    assert!(greeted && logged_in && ok && protocol.can_inject().is_ok(), "the MySQL login parses");
    let pieces = Pieces {
        handshake: Vec::new(),
        client_frames: vec![
            my(0, b"\x03SELECT 1"),
            my(0, b"\x16SELECT ?"),
            my(0, b"\x17\x01\0\0\0\0\x01\0\0\0"),
            my(0, b"\x19\x01\0\0\0"),
            my(0, b"\x0e"),
            my(0, b"\x03LOAD DATA LOCAL INFILE 'f' INTO TABLE t"),
            my(2, b"1,2\n"),
            my(3, b""),
        ],
        replies: vec![
            my(1, b"\0\0\0\x02\0\0\0"),
            my(1, b"\xff\x28\x04#42000syntax"),
            my(1, b"\x01"),
            my(2, b"\x03def\0\0\0\x011\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0"),
            my(3, b"\xfe\0\0\x02\0"),
            my(4, b"\x011"),
            my(5, b"\xfe\0\0\x0a\0"),
            my(1, b"\xfbf"),
            my(0, b"\xff\x87\x10#HY000bye"),
        ],
        max_reply: Some(64),
        exact_reply: false,
    };
    (protocol, pieces)
}

pub fn framed(spec: FramedSpec) -> (Box<dyn Protocol>, Pieces) {
    let pieces = Pieces {
        handshake: Vec::new(),
        client_frames: vec![spec.ping().to_vec()],
        replies: vec![spec.pong().to_vec(), spec.ping().to_vec()],
        max_reply: Some(spec.pong().len()),
        exact_reply: true,
    };
    (Box::new(Framed::new(spec)), pieces)
}

/// The upstream direction of one decoder, followed as the connection core does ([`ClientView`]), with the
/// checks on what the client sees.
pub struct UpstreamView {
    view: ClientView,
    sent: Vec<u8>,
}

impl Default for UpstreamView {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamView {
    pub fn new() -> Self {
        UpstreamView { view: ClientView::new(), sent: Vec::new() }
    }

    pub fn answered(&self) -> u64 {
        self.view.answered()
    }

    /// One upstream chunk. After an error the connection core forwards everything as it is (after giving back
    /// what the decoder held), and so does this.
    pub fn feed(&mut self, protocol: &mut dyn Protocol, chunk: &[u8], injected: u64) {
        self.sent.extend_from_slice(chunk);
        if let Err(broken @ ViewError::Unaccounted { .. }) = self.view.feed(protocol, chunk) {
            panic!("{broken}");
        }
        let answered = self.view.answered();
        assert!(answered <= injected, "{answered} replies answered, {injected} PINGs injected");
        assert!(self.view.seen().len() <= self.sent.len(), "the client received more than the upstream sent");
    }

    /// The upstream's stream ended: held bytes come back; then the client's view is checked.
    pub fn finish(&mut self, protocol: &mut dyn Protocol, max_reply: Option<usize>, exact: bool) {
        self.view.finish(protocol);
        let (seen, answered) = (self.view.seen(), self.view.answered());
        assert!(is_subsequence(seen, &self.sent), "the client's view is not the upstream's minus some bytes");
        if answered == 0 {
            assert_eq!(seen, self.sent, "bytes were removed but no reply to the filter was reported");
        }
        if let Some(max) = max_reply {
            let removed = (self.sent.len() - seen.len()) as u64;
            assert!(removed <= answered * max as u64, "{removed} bytes removed for {answered} replies");
            if exact {
                assert_eq!(removed, answered * max as u64, "{removed} bytes removed for {answered} replies");
            }
        }
    }
}

fn try_inject(protocol: &mut dyn Protocol, injected: &mut u64) {
    if protocol.can_inject().is_ok() {
        protocol.on_ping_injected();
        *injected += 1;
    }
}

/// The input is the client's stream: `flags`, cuts, then the bytes. After each chunk a PING goes in when the
/// decoder allows it (flag bit 0), and an upstream reply from `pieces` follows (bit 1).
pub fn client_side(protocol: &mut dyn Protocol, pieces: &Pieces, input: &mut Bytes) {
    let flags = input.u8();
    let mut cuts = Cuts::read(input);
    let stream = input.rest();
    let mut injected = 0u64;
    let mut upstream = UpstreamView::new();
    for (i, chunk) in cuts.split(stream).into_iter().enumerate() {
        if protocol.on_client_bytes(chunk).is_err() {
            // The core passes the connection through from here on: the decoder is not called again.
            break;
        }
        if flags & 1 != 0 {
            try_inject(protocol, &mut injected);
        }
        if flags & 2 != 0 && !pieces.replies.is_empty() {
            let reply = &pieces.replies[(i + usize::from(flags >> 2)) % pieces.replies.len()];
            upstream.feed(protocol, reply, injected);
        }
    }
    upstream.finish(protocol, pieces.max_reply, false);
}

/// The input is the upstream's stream: injection and client-frame masks, cuts, then the bytes. Before chunk
/// `i`, a PING goes in when bit `i % 8` of the first mask is set and the decoder allows it, and a whole client
/// frame (which may be a PING of the client's own) when that bit of the second mask is set.
pub fn upstream_side(protocol: &mut dyn Protocol, pieces: &Pieces, input: &mut Bytes) {
    let initial = input.u8() % 4;
    let inject_mask = input.u8();
    let client_mask = input.u8();
    let mut cuts = Cuts::read(input);
    let stream = input.rest();
    let mut injected = 0u64;
    let mut client_ok = protocol.on_client_bytes(&pieces.handshake).is_ok();
    assert!(client_ok, "the handshake parses");
    for _ in 0..initial {
        try_inject(protocol, &mut injected);
    }
    let before_stream = injected;
    let mut upstream = UpstreamView::new();
    for (i, chunk) in cuts.split(stream).into_iter().enumerate() {
        let bit = 1u8 << (i % 8);
        if client_ok && client_mask & bit != 0 && !pieces.client_frames.is_empty() {
            let frame = &pieces.client_frames[(i / 8) % pieces.client_frames.len()];
            client_ok = protocol.on_client_bytes(frame).is_ok();
        }
        if client_ok && inject_mask & bit != 0 {
            try_inject(protocol, &mut injected);
        }
        upstream.feed(protocol, chunk, injected);
    }
    // A PING that went in after the upstream's first byte may have gone in inside a frame that then became
    // its reply (forwarded, as it started before it was owed).
    let exact = pieces.exact_reply && injected == before_stream;
    upstream.finish(protocol, pieces.max_reply, exact);
}
