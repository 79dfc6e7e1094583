//! [`MessageReader`]: one direction of the PostgreSQL wire protocol (version 3), message by message.
//!
//! A typed message is a type byte and a big-endian `Int32` length that counts itself but not the type byte,
//! then the body. The client's first messages are untyped (a length, then a request code): the
//! StartupMessage, SSLRequest, GSSENCRequest and CancelRequest. The server answers an SSLRequest or a
//! GSSENCRequest with a single byte (`S`/`G`: encryption follows, `N`: refused). Header bytes are read one by
//! one; bodies are skipped by counting down ([`Countdown`]), nothing is buffered (a `DataRow` or `CopyData`
//! of a gigabyte is a number).

use crate::core::protocol::toolkit::{Countdown, Reader};

/// The request codes of the untyped startup messages (protocol major version 1234, reserved).
pub(super) const CANCEL_REQUEST: u32 = 80_877_102;
pub(super) const SSL_REQUEST: u32 = 80_877_103;
pub(super) const GSSENC_REQUEST: u32 = 80_877_104;
/// The server's limit on a startup message (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP: u32 = 10_000;
/// A length is an `Int32`: never negative.
const MAX_LENGTH: u32 = 0x7fff_ffff;
/// The first byte of a TLS handshake record: a client that skips the SSLRequest (PostgreSQL 17's
/// `sslnegotiation=direct`) starts with it where a startup message's length would begin (a zero byte).
const TLS_HANDSHAKE: u8 = 0x16;

/// A message that ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Message {
    /// A typed message: its type byte.
    Typed(u8),
    /// An untyped startup message of the client: its request code.
    Startup(u32),
    /// The server's one-byte answer to an SSLRequest or GSSENCRequest.
    Answer(u8),
    /// The first byte of a TLS record where a startup message was due (direct TLS).
    DirectTls,
}

/// Where the stream is inside the current message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Pos {
    /// No byte of the next message seen.
    #[default]
    Start,
    /// After the type byte: `at` bytes of the length seen.
    Typed { kind: u8, at: u8, len: u32 },
    /// `at` bytes of an untyped message's length and request code seen.
    Untyped { at: u8, len: u32, code: u32 },
    /// Inside a body.
    Body { message: Message, left: Countdown },
    /// The server's `ReadyForQuery` status byte (`I`, `T` or `E`) is next.
    Status,
    /// Encrypted from here on (or otherwise no longer the protocol): every byte is consumed unread.
    Opaque,
}

/// Follows one direction of the protocol message by message.
#[derive(Clone, Debug)]
pub(super) struct MessageReader {
    pos: Pos,
    /// The server's stream (checks `ReadyForQuery`, reads one-byte answers).
    upstream: bool,
    /// The next client message is untyped (until the StartupMessage).
    startup: bool,
    /// One-byte answers the server owes (SSLRequests and GSSENCRequests sent).
    answers: u8,
}

impl MessageReader {
    pub(super) fn client() -> Self {
        MessageReader { pos: Pos::Start, upstream: false, startup: true, answers: 0 }
    }

    pub(super) fn upstream() -> Self {
        MessageReader { pos: Pos::Start, upstream: true, startup: false, answers: 0 }
    }

    /// The client asked for encryption: the server's next message is a single byte.
    pub(super) fn expect_answer(&mut self) {
        self.answers = self.answers.saturating_add(1);
    }

    /// Encrypted (or replication) from here on: the rest of the stream is consumed unread.
    pub(super) fn go_opaque(&mut self) {
        self.pos = Pos::Opaque;
    }

    /// A message of `len` body bytes begins; returns it when it has no body.
    fn body(&mut self, message: Message, len: u32) -> Option<Message> {
        if len == 0 {
            self.pos = Pos::Start;
            return Some(message);
        }
        self.pos = Pos::Body { message, left: Countdown::new(u64::from(len)) };
        None
    }
}

impl Reader for MessageReader {
    type Frame = Message;

    fn at_boundary(&self) -> bool {
        self.pos == Pos::Start
    }

    fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Message>), &'static str> {
        let mut i = 0usize;
        while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
            let b = rest.first().copied().unwrap_or_default();
            match &mut self.pos {
                Pos::Opaque => return Ok((data.len(), None)),
                Pos::Start if self.answers > 0 => match b {
                    b'S' | b'G' | b'N' => {
                        self.answers -= 1;
                        return Ok((i + 1, Some(Message::Answer(b))));
                    }
                    // A server that refuses the request with an error (as servers before SSL support did).
                    b'E' => self.answers = 0,
                    _ => return Err("unexpected answer to SSLRequest/GSSENCRequest"),
                },
                Pos::Start if self.startup => {
                    if b == TLS_HANDSHAKE {
                        self.pos = Pos::Opaque;
                        return Ok((i + 1, Some(Message::DirectTls)));
                    }
                    self.pos = Pos::Untyped { at: 0, len: 0, code: 0 };
                }
                Pos::Start => {
                    i += 1;
                    self.pos = Pos::Typed { kind: b, at: 0, len: 0 };
                }
                Pos::Typed { kind, at, len } => {
                    i += 1;
                    *len = (*len << 8) | u32::from(b);
                    *at += 1;
                    if *at == 4 {
                        let (kind, len) = (*kind, *len);
                        if !(4..=MAX_LENGTH).contains(&len) {
                            return Err("message length out of range");
                        }
                        if self.upstream && kind == b'Z' {
                            if len != 5 {
                                return Err("ReadyForQuery of a length other than 5");
                            }
                            self.pos = Pos::Status;
                            continue;
                        }
                        if let Some(message) = self.body(Message::Typed(kind), len - 4) {
                            return Ok((i, Some(message)));
                        }
                    }
                }
                Pos::Status => {
                    if !matches!(b, b'I' | b'T' | b'E') {
                        return Err("ReadyForQuery status other than I, T or E");
                    }
                    self.pos = Pos::Start;
                    return Ok((i + 1, Some(Message::Typed(b'Z'))));
                }
                Pos::Untyped { at, len, code } => {
                    i += 1;
                    if *at < 4 {
                        *len = (*len << 8) | u32::from(b);
                    } else {
                        *code = (*code << 8) | u32::from(b);
                    }
                    *at += 1;
                    if *at == 4 && !(8..=MAX_STARTUP).contains(len) {
                        return Err("startup message length out of range");
                    }
                    if *at == 8 {
                        let (len, code) = (*len, *code);
                        match code {
                            SSL_REQUEST | GSSENC_REQUEST if len != 8 => {
                                return Err("SSLRequest/GSSENCRequest of a length other than 8")
                            }
                            SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => {}
                            // Protocol 3.x: the StartupMessage; typed messages follow.
                            _ if code >> 16 == 3 => self.startup = false,
                            _ => return Err("unknown startup request code"),
                        }
                        if let Some(message) = self.body(Message::Startup(code), len - 8) {
                            return Ok((i, Some(message)));
                        }
                    }
                }
                Pos::Body { message, left } => {
                    i += left.take(rest).0.len();
                    if left.is_done() {
                        let message = *message;
                        self.pos = Pos::Start;
                        return Ok((i, Some(message)));
                    }
                }
            }
        }
        Ok((i, None))
    }

    /// A body's last byte ends the message, so it is fed, never skipped.
    fn skippable(&self) -> u64 {
        match self.pos {
            Pos::Body { left, .. } => left.left().saturating_sub(1),
            _ => 0,
        }
    }

    fn skip(&mut self, n: u64) -> u64 {
        let limit = self.skippable();
        match &mut self.pos {
            Pos::Body { left, .. } => left.skip(n.min(limit)),
            _ => 0,
        }
    }
}
