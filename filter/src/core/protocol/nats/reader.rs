//! [`LineReader`]: one direction of a NATS connection, frame by frame. Verbs and size tokens are read byte by
//! byte (they are short and bounded), line ends found with a slice search ([`find_line_end`]), payloads
//! skipped by counting down ([`Countdown`]), so a payload costs O(1) per chunk and is never buffered.

use crate::core::protocol::toolkit::{
    find_line_end, Countdown, Decimal, DecimalError, DecimalRules, LineEnd, LineEndStep, Reader,
};
use crate::core::protocol::Side;

/// nats-server's default `max_control_line`: longer lines are refused by the server, and by us.
const MAX_CONTROL_LINE: usize = 4096;
/// `CONNECT` (client) and `INFO` (server) carry JSON that can outgrow 4096 bytes (JWTs, signatures, cluster
/// URLs). Those lines are never buffered, only counted, so a larger bound costs nothing; it still stops a
/// stream that is not NATS at all from being read as one endless line.
const MAX_JSON_LINE: usize = 64 * 1024;
/// The counted line includes the verb, its separator and the `\r`, which nats-server does not count.
const VERB_SLACK: usize = 9;
/// Payload sizes as nats-server reads them: leading zeros allowed, and it refuses `max_payload` above 64 MiB.
const SIZE: DecimalRules = DecimalRules { negative: false, leading_zeros: true, max: 64 * 1024 * 1024 };
/// The longest verb, `CONNECT`.
const MAX_VERB: usize = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    // client
    Connect,
    Pub,
    Hpub,
    Sub,
    Unsub,
    // server
    Info,
    Msg,
    Hmsg,
    Ok,
    Err,
    // both
    Ping,
    Pong,
}

/// What follows an op's verb on its line.
enum Shape {
    /// Free text up to the line end (possibly nothing): skipped without looking.
    Text,
    /// Tokens whose last one (`headers`: last two) are sizes, then a payload of that many bytes and `\r\n`.
    Payload { min_args: u8, max_args: u8, headers: bool },
}

impl Op {
    fn classify(side: Side, verb: &[u8]) -> Option<Op> {
        let op = match verb {
            b"PING" => Op::Ping,
            b"PONG" => Op::Pong,
            _ => match side {
                Side::Client => match verb {
                    b"CONNECT" => Op::Connect,
                    b"PUB" => Op::Pub,
                    b"HPUB" => Op::Hpub,
                    b"SUB" => Op::Sub,
                    b"UNSUB" => Op::Unsub,
                    _ => return None,
                },
                Side::Upstream => match verb {
                    b"INFO" => Op::Info,
                    b"MSG" => Op::Msg,
                    b"HMSG" => Op::Hmsg,
                    b"+OK" => Op::Ok,
                    b"-ERR" => Op::Err,
                    _ => return None,
                },
            },
        };
        Some(op)
    }

    fn shape(self) -> Shape {
        match self {
            // PUB <subject> [reply] <size>
            Op::Pub => Shape::Payload { min_args: 2, max_args: 3, headers: false },
            // HPUB <subject> [reply] <header size> <total size>
            Op::Hpub => Shape::Payload { min_args: 3, max_args: 4, headers: true },
            // MSG <subject> <sid> [reply] <size>
            Op::Msg => Shape::Payload { min_args: 3, max_args: 4, headers: false },
            // HMSG <subject> <sid> [reply] <header size> <total size>
            Op::Hmsg => Shape::Payload { min_args: 4, max_args: 5, headers: true },
            _ => Shape::Text,
        }
    }

    fn max_line(self) -> usize {
        match self {
            Op::Connect | Op::Info => MAX_JSON_LINE + VERB_SLACK,
            _ => MAX_CONTROL_LINE + VERB_SLACK,
        }
    }
}

fn size(token: Decimal) -> Result<u64, &'static str> {
    const NOT_NUMBER: &str = "payload size is not a number";
    match token.finish() {
        Ok(size) => u64::try_from(size).map_err(|_| NOT_NUMBER),
        Err(DecimalError::NotNumber) => Err(NOT_NUMBER),
        Err(DecimalError::TooBig) => Err("payload size exceeds 64 MiB"),
    }
}

/// The arguments of a payload op, read without buffering them: only the last two tokens matter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tokens {
    count: u8,
    in_token: bool,
    current: Decimal,
    last: Decimal,
    before_last: Decimal,
}

impl Tokens {
    fn byte(&mut self, b: u8) {
        if !self.in_token {
            self.in_token = true;
            self.count = self.count.saturating_add(1);
            self.current = Decimal::default();
        }
        self.current.push(b, SIZE);
    }

    fn end_token(&mut self) {
        if self.in_token {
            self.in_token = false;
            self.before_last = self.last;
            self.last = self.current;
        }
    }

    /// The payload size the line announces (for `HPUB`/`HMSG`, the total: headers included).
    fn payload_size(mut self, min_args: u8, max_args: u8, headers: bool) -> Result<u64, &'static str> {
        self.end_token();
        if self.count < min_args || self.count > max_args {
            return Err("wrong number of arguments");
        }
        let total = size(self.last)?;
        if headers && size(self.before_last)? > total {
            return Err("header size larger than total size");
        }
        Ok(total)
    }
}

/// Where one direction's stream is inside the current frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pos {
    /// At the start of a line (`len == 0`: a frame boundary) or inside its verb.
    Verb { verb: [u8; MAX_VERB], len: u8 },
    /// Inside the arguments of a payload op.
    Args { op: Op, tokens: Tokens },
    /// Inside a line whose rest does not matter: skip to `\n`.
    Line { op: Op },
    /// Inside a payload, skipped by counting down.
    Payload { op: Op, body: Countdown },
    /// After a payload: expecting `\r\n` (or a bare `\n`).
    PayloadEnd { op: Op, end: LineEnd },
}

const LINE_START: Pos = Pos::Verb { verb: [0; MAX_VERB], len: 0 };

/// Follows one direction of a NATS connection frame by frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LineReader {
    side: Side,
    pos: Pos,
    /// Bytes of the current control line before its `\n`, against the line limit.
    line_len: usize,
}

impl LineReader {
    pub(super) fn new(side: Side) -> Self {
        LineReader { side, pos: LINE_START, line_len: 0 }
    }

    fn end_frame(&mut self) {
        self.pos = LINE_START;
        self.line_len = 0;
    }

    fn count_line(&mut self, n: usize, op: Op) -> Result<(), &'static str> {
        self.line_len = self.line_len.saturating_add(n);
        if self.line_len > op.max_line() {
            return Err("control line too long");
        }
        Ok(())
    }

    /// How far a line may still reach: a search stops there, so garbage without a `\n` fails fast.
    fn budget(&self, op: Op) -> usize {
        op.max_line().saturating_sub(self.line_len).saturating_add(1)
    }
}

impl Reader for LineReader {
    type Frame = Op;

    fn at_boundary(&self) -> bool {
        matches!(self.pos, Pos::Verb { len: 0, .. })
    }

    fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Op>), &'static str> {
        let mut i = 0usize;
        while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
            match &mut self.pos {
                Pos::Verb { verb, len } => {
                    let Some(&b) = rest.first() else { break };
                    i += 1;
                    if !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                        // Verbs are letters (and the `+`/`-` of `+OK`/`-ERR`): anything else is not NATS.
                        if !(b.is_ascii_alphabetic() || b == b'+' || b == b'-') {
                            return Err("unknown operation");
                        }
                        let slot = verb.get_mut(usize::from(*len)).ok_or("unknown operation")?;
                        *slot = b.to_ascii_uppercase();
                        *len += 1;
                        self.line_len += 1;
                        continue;
                    }
                    let name = verb.get(..usize::from(*len)).unwrap_or(&[]);
                    let op = Op::classify(self.side, name).ok_or("unknown operation")?;
                    match (op.shape(), b) {
                        (Shape::Payload { .. }, b' ' | b'\t') => {
                            self.line_len += 1;
                            self.pos = Pos::Args { op, tokens: Tokens::default() };
                        }
                        (Shape::Payload { .. }, _) => return Err("missing payload size"),
                        (Shape::Text, b'\n') => {
                            self.end_frame();
                            return Ok((i, Some(op)));
                        }
                        (Shape::Text, _) => {
                            self.line_len += 1;
                            self.pos = Pos::Line { op };
                        }
                    }
                }
                Pos::Line { op } => {
                    let op = *op;
                    match find_line_end(rest, self.budget(op)) {
                        Ok(at) => {
                            self.count_line(at, op)?;
                            self.end_frame();
                            return Ok((i + at + 1, Some(op)));
                        }
                        Err(searched) => {
                            self.count_line(searched, op)?;
                            i += searched;
                        }
                    }
                }
                Pos::Args { op, tokens } => {
                    let op = *op;
                    let Shape::Payload { min_args, max_args, headers } = op.shape() else {
                        return Err("arguments of an op without payload");
                    };
                    let mut seen = 0usize;
                    let mut ended = None;
                    let budget = op.max_line().saturating_sub(self.line_len).saturating_add(1);
                    for &b in rest.iter().take(budget) {
                        seen += 1;
                        match b {
                            b'\n' => {
                                ended = Some(tokens.payload_size(min_args, max_args, headers)?);
                                break;
                            }
                            b' ' | b'\t' | b'\r' => tokens.end_token(),
                            _ => tokens.byte(b),
                        }
                    }
                    i += seen;
                    match ended {
                        Some(size) => {
                            self.count_line(seen - 1, op)?;
                            self.line_len = 0;
                            self.pos = if size == 0 {
                                Pos::PayloadEnd { op, end: LineEnd::CRLF_OR_LF }
                            } else {
                                Pos::Payload { op, body: Countdown::new(size) }
                            };
                        }
                        None => self.count_line(seen, op)?,
                    }
                }
                Pos::Payload { op, body } => {
                    i += body.take(rest).0.len();
                    if body.is_done() {
                        self.pos = Pos::PayloadEnd { op: *op, end: LineEnd::CRLF_OR_LF };
                    }
                }
                Pos::PayloadEnd { op, end } => {
                    let Some(&b) = rest.first() else { break };
                    i += 1;
                    match end.push(b) {
                        LineEndStep::More => {}
                        LineEndStep::Ended => {
                            let op = *op;
                            self.end_frame();
                            return Ok((i, Some(op)));
                        }
                        LineEndStep::Invalid => return Err("payload not followed by CRLF"),
                    }
                }
            }
        }
        Ok((i, None))
    }

    /// A payload is followed by its `\r\n`, so all of it may be skipped.
    fn skippable(&self) -> u64 {
        match self.pos {
            Pos::Payload { body, .. } => body.left(),
            _ => 0,
        }
    }

    fn skip(&mut self, n: u64) -> u64 {
        let Pos::Payload { op, body } = &mut self.pos else { return 0 };
        let taken = body.skip(n);
        if body.is_done() {
            self.pos = Pos::PayloadEnd { op: *op, end: LineEnd::CRLF_OR_LF };
        }
        taken
    }
}
