//! NATS client protocol: frame boundaries on the client's stream, and the PONGs that answer the filter's PINGs
//! on the server's stream.
//!
//! Both directions are text control lines, some followed by a payload whose size is the line's last token
//! (`PUB`/`HPUB` from the client, `MSG`/`HMSG` from the server). [`LineParser`] follows one direction as a
//! resumable state machine, like Envoy's `redis_proxy` codec: it reads verbs and size tokens byte by byte
//! (they are short and bounded), finds line ends with a slice search, and skips payloads by counting down,
//! so a payload costs O(1) per chunk and is never buffered.
//!
//! NATS PONGs carry nothing that says which PING they answer, so ownership is positional: the server answers
//! PINGs in the order it receives them ([`PongOwners`]).

use super::{Defer, Output, Owner, PongOwners, Protocol, ProtocolError, Side};

/// nats-server's default `max_control_line`: longer lines are refused by the server, and by us.
const MAX_CONTROL_LINE: usize = 4096;
/// `CONNECT` (client) and `INFO` (server) carry JSON that can outgrow 4096 bytes (JWTs, signatures, cluster
/// URLs). Those lines are never buffered, only counted, so a larger bound costs nothing; it still stops a
/// stream that is not NATS at all from being read as one endless line.
const MAX_JSON_LINE: usize = 64 * 1024;
/// The counted line includes the verb, its separator and the `\r`, which nats-server does not count.
const VERB_SLACK: usize = 9;
/// nats-server refuses `max_payload` above 64 MiB.
const MAX_PAYLOAD: u32 = 64 * 1024 * 1024;
/// The longest verb, `CONNECT`.
const MAX_VERB: usize = 7;

const PING: &[u8] = b"PING\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
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

/// A size token as read so far.
#[derive(Clone, Copy, Debug)]
enum Num {
    Val(u32),
    NotNumber,
    TooBig,
}

impl Num {
    fn digit(self, b: u8) -> Num {
        match self {
            Num::Val(v) if b.is_ascii_digit() => {
                // v <= MAX_PAYLOAD (2^26), so this cannot overflow a u32.
                let v = v * 10 + u32::from(b - b'0');
                if v > MAX_PAYLOAD {
                    Num::TooBig
                } else {
                    Num::Val(v)
                }
            }
            Num::TooBig if b.is_ascii_digit() => Num::TooBig,
            _ => Num::NotNumber,
        }
    }

    fn size(self) -> Result<u32, &'static str> {
        match self {
            Num::Val(v) => Ok(v),
            Num::NotNumber => Err("payload size is not a number"),
            Num::TooBig => Err("payload size exceeds 64 MiB"),
        }
    }
}

/// The arguments of a payload op, read without buffering them: only the last two tokens matter.
#[derive(Clone, Copy, Debug)]
struct Tokens {
    count: u8,
    in_token: bool,
    current: Num,
    last: Num,
    before_last: Num,
}

impl Tokens {
    fn new() -> Self {
        Tokens { count: 0, in_token: false, current: Num::NotNumber, last: Num::NotNumber, before_last: Num::NotNumber }
    }

    fn byte(&mut self, b: u8) {
        if !self.in_token {
            self.in_token = true;
            self.count = self.count.saturating_add(1);
            self.current = Num::Val(0);
        }
        self.current = self.current.digit(b);
    }

    fn end_token(&mut self) {
        if self.in_token {
            self.in_token = false;
            self.before_last = self.last;
            self.last = self.current;
        }
    }

    /// The payload size the line announces (for `HPUB`/`HMSG`, the total: headers included).
    fn payload_size(mut self, min_args: u8, max_args: u8, headers: bool) -> Result<u32, &'static str> {
        self.end_token();
        if self.count < min_args || self.count > max_args {
            return Err("wrong number of arguments");
        }
        let total = self.last.size()?;
        if headers && self.before_last.size()? > total {
            return Err("header size larger than total size");
        }
        Ok(total)
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// At the start of a line (`len == 0`: a frame boundary) or inside its verb.
    Verb { verb: [u8; MAX_VERB], len: u8 },
    /// Inside the arguments of a payload op.
    Args { op: Op, tokens: Tokens },
    /// Inside a line whose rest does not matter: skip to `\n`.
    Line { op: Op },
    /// Inside a payload: `left` bytes to skip.
    Payload { op: Op, left: u32 },
    /// After a payload: expecting `\r\n` (or a bare `\n`).
    PayloadEnd { op: Op, cr: bool },
}

const LINE_START: State = State::Verb { verb: [0; MAX_VERB], len: 0 };

/// Follows one direction of a NATS connection frame by frame.
#[derive(Debug)]
struct LineParser {
    side: Side,
    state: State,
    /// Bytes of the current control line before its `\n`, against the line limit.
    line_len: usize,
}

impl LineParser {
    fn new(side: Side) -> Self {
        LineParser { side, state: LINE_START, line_len: 0 }
    }

    /// No byte of the next frame has been seen.
    fn at_boundary(&self) -> bool {
        matches!(self.state, State::Verb { len: 0, .. })
    }

    fn end_frame(&mut self) {
        self.state = LINE_START;
        self.line_len = 0;
    }

    fn count_line(&mut self, n: usize, op: Op) -> Result<(), &'static str> {
        self.line_len = self.line_len.saturating_add(n);
        if self.line_len > op.max_line() {
            return Err("control line too long");
        }
        Ok(())
    }

    /// Consumes bytes up to and including the end of the current frame. Returns how many bytes were consumed
    /// and, when a frame ended there, its op. Stops early only at a frame end, so `consumed < data.len()`
    /// implies a frame ended.
    fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Op>), &'static str> {
        let mut i = 0usize;
        while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
            match &mut self.state {
                State::Verb { verb, len } => {
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
                            self.state = State::Args { op, tokens: Tokens::new() };
                        }
                        (Shape::Payload { .. }, _) => return Err("missing payload size"),
                        (Shape::Text, b'\n') => {
                            self.end_frame();
                            return Ok((i, Some(op)));
                        }
                        (Shape::Text, _) => {
                            self.line_len += 1;
                            self.state = State::Line { op };
                        }
                    }
                }
                State::Line { op } => {
                    let op = *op;
                    // Search no further than the line may reach: garbage without a `\n` fails fast.
                    let budget = op.max_line().saturating_sub(self.line_len).saturating_add(1);
                    let window = rest.get(..budget).unwrap_or(rest);
                    match window.iter().position(|&b| b == b'\n') {
                        Some(at) => {
                            self.count_line(at, op)?;
                            self.end_frame();
                            return Ok((i + at + 1, Some(op)));
                        }
                        None => {
                            self.count_line(window.len(), op)?;
                            i += window.len();
                        }
                    }
                }
                State::Args { op, tokens } => {
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
                            self.state = if size == 0 {
                                State::PayloadEnd { op, cr: false }
                            } else {
                                State::Payload { op, left: size }
                            };
                        }
                        None => self.count_line(seen, op)?,
                    }
                }
                State::Payload { op, left } => {
                    // Both fit a usize: left is below 2^26, and the minimum is at most rest.len().
                    let take = (*left as usize).min(rest.len());
                    *left -= take as u32;
                    i += take;
                    if *left == 0 {
                        self.state = State::PayloadEnd { op: *op, cr: false };
                    }
                }
                State::PayloadEnd { op, cr } => {
                    let Some(&b) = rest.first() else { break };
                    i += 1;
                    match b {
                        b'\r' if !*cr => *cr = true,
                        b'\n' => {
                            let op = *op;
                            self.end_frame();
                            return Ok((i, Some(op)));
                        }
                        _ => return Err("payload not followed by CRLF"),
                    }
                }
            }
        }
        Ok((i, None))
    }
}

/// The start of a PONG line that may still be the answer to the filter's PING, withheld from the client
/// until the line is complete. Only the exact shape servers send (`PONG\r\n`, any case, or `PONG\n`) is
/// held: at most 6 bytes.
#[derive(Debug, Default)]
struct HeldPong {
    bytes: [u8; 6],
    len: u8,
}

impl HeldPong {
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Whether `b` continues the shape of a PONG line.
    fn continues_with(&self, b: u8) -> bool {
        match self.len {
            0..=3 => b"PONG".get(usize::from(self.len)) == Some(&b.to_ascii_uppercase()),
            4 => b == b'\r' || b == b'\n',
            5 => self.bytes.get(4) == Some(&b'\r') && b == b'\n',
            _ => false,
        }
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Whether `rest` shows, before the line could end, a byte that breaks the PONG shape.
    fn broken_by(&self, rest: &[u8]) -> bool {
        let mut probe = HeldPong { bytes: self.bytes, len: self.len };
        for &b in rest {
            if !probe.continues_with(b) {
                return true;
            }
            if b == b'\n' {
                return false;
            }
            probe.push(b);
        }
        false
    }

    /// Gives the held bytes back to the client at this point of the stream.
    fn release(&mut self, out: &mut Output) {
        out.insert(self.as_slice());
        self.len = 0;
    }
}

/// One NATS connection: the client's frames, who owns each PONG, and the PONGs to strip.
#[derive(Debug)]
pub struct Nats {
    client: LineParser,
    client_error: Option<ProtocolError>,
    /// The client's `CONNECT` has been seen (servers with auth refuse any other op before it).
    connected: bool,
    upstream: LineParser,
    upstream_error: Option<ProtocolError>,
    owners: PongOwners,
    /// A byte of the current server line has been seen (its hold decision is made).
    line_open: bool,
    /// The current server line started while the filter was owed the next PONG: hold it while it may be one.
    holding: bool,
    held: HeldPong,
}

impl Default for Nats {
    fn default() -> Self {
        Self::new()
    }
}

impl Nats {
    pub fn new() -> Self {
        Nats {
            client: LineParser::new(Side::Client),
            client_error: None,
            connected: false,
            upstream: LineParser::new(Side::Upstream),
            upstream_error: None,
            owners: PongOwners::new(),
            line_open: false,
            holding: false,
            held: HeldPong::default(),
        }
    }

    /// A server PONG completed; `stripped` says whether its bytes were withheld. Counts it in `out` when it
    /// answered the filter. A filter-owned PONG that was not withheld is forwarded: that needs a PONG line that began
    /// while nobody was owed one (servers do not send those) or that had blanks before its `\r\n`.
    fn on_pong(&mut self, stripped: bool, out: &mut Output) {
        let owner = self.owners.pop();
        if stripped {
            if owner == Some(Owner::Filter) {
                self.held.len = 0;
            } else {
                self.held.release(out);
            }
        }
        if owner == Some(Owner::Filter) {
            out.pong_answered();
        }
    }

    fn upstream_error(&mut self, reason: &'static str, out: &mut Output) -> ProtocolError {
        self.held.release(out);
        self.holding = false;
        let error = ProtocolError::upstream(reason);
        self.upstream_error = Some(error.clone());
        error
    }
}

impl Protocol for Nats {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if let Some(error) = &self.client_error {
            return Err(error.clone());
        }
        let mut rest = data;
        while !rest.is_empty() {
            let (used, ended) = match self.client.feed(rest) {
                Ok(step) => step,
                Err(reason) => {
                    let error = ProtocolError::client(reason);
                    self.client_error = Some(error.clone());
                    return Err(error);
                }
            };
            match ended {
                Some(Op::Ping) => self.owners.push(Owner::Client),
                Some(Op::Connect) => self.connected = true,
                _ => {}
            }
            if used == 0 {
                break;
            }
            rest = rest.get(used..).unwrap_or(&[]);
        }
        Ok(())
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if self.client_error.is_some() {
            return Err(Defer::MidFrame);
        }
        if !self.connected {
            return Err(Defer::Handshake);
        }
        if !self.client.at_boundary() {
            return Err(Defer::MidFrame);
        }
        Ok(())
    }

    fn ping(&self) -> &[u8] {
        PING
    }

    fn on_ping_injected(&mut self) {
        self.owners.push(Owner::Filter);
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        if let Some(error) = &self.upstream_error {
            return Err(error.clone());
        }
        let before = out.pongs();
        let mut rest = data;
        while let Some(&b) = rest.first() {
            if !self.line_open {
                self.line_open = true;
                self.holding = self.owners.front() == Some(Owner::Filter);
            }
            if self.holding {
                // A line seen not to be a PONG within this chunk is forwarded without withholding any of
                // its bytes (no edit, no allocation); only a chunk that ends inside `PONG\r\n` holds.
                if self.held.broken_by(rest) {
                    self.held.release(out);
                    self.holding = false;
                    continue;
                }
                let ended = match self.upstream.feed(rest.get(..1).unwrap_or(&[])) {
                    Ok((_, ended)) => ended,
                    Err(reason) => return Err(self.upstream_error(reason, out)),
                };
                out.skip(1);
                self.held.push(b);
                rest = rest.get(1..).unwrap_or(&[]);
                if let Some(op) = ended {
                    self.line_open = false;
                    self.holding = false;
                    if op == Op::Pong {
                        self.on_pong(true, out);
                    } else {
                        self.held.release(out);
                    }
                }
            } else {
                let (used, ended) = match self.upstream.feed(rest) {
                    Ok(step) => step,
                    Err(reason) => return Err(self.upstream_error(reason, out)),
                };
                out.forward(used);
                if used == 0 {
                    break;
                }
                rest = rest.get(used..).unwrap_or(&[]);
                if let Some(op) = ended {
                    self.line_open = false;
                    if op == Op::Pong {
                        self.on_pong(false, out);
                    }
                }
            }
        }
        Ok(out.pongs() - before)
    }

    fn release_held(&mut self, out: &mut Output) {
        self.held.release(out);
        self.holding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::{client_view, frame_ends};

    fn publish(subject: &str, payload: &[u8]) -> Vec<u8> {
        let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        frame
    }

    fn message(verb: &str, subject: &str, headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = headers.len() + payload.len();
        let mut frame = if verb.starts_with('H') {
            format!("{verb} {subject} {} {total}\r\n", headers.len()).into_bytes()
        } else {
            format!("{verb} {subject} {total}\r\n").into_bytes()
        };
        frame.extend_from_slice(headers);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        frame
    }

    /// Client frames covering every op, payloads that look like control lines, odd case and line ends.
    fn client_frames() -> Vec<Vec<u8>> {
        vec![
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n".to_vec(),
            publish("foo.bar", b"PING\r\nPONG\r\n\r\n"),
            message("HPUB", "foo reply.1", b"NATS/1.0\r\nX: PING\r\n\r\n", b"PONG\r\nbody"),
            b"SUB foo 1\r\n".to_vec(),
            b"PING\r\n".to_vec(),
            publish("empty", b""),
            b"pub\tlower\tinbox 5\r\nab\r\nc\r\n".to_vec(),
            b"ping\n".to_vec(),
            b"UNSUB 1 10\r\n".to_vec(),
            b"PONG\r\n".to_vec(),
            message("HPUB", "only.headers", b"NATS/1.0\r\n\r\n", b""),
        ]
    }

    const CLIENT_PINGS: u64 = 2;

    #[test]
    fn client_boundaries_after_every_byte() {
        let frames = client_frames();
        let ends = frame_ends(&frames);
        let stream = frames.concat();
        let mut nats = Nats::new();
        assert_eq!(nats.can_inject(), Err(Defer::Handshake));
        for (at, byte) in stream.iter().enumerate() {
            nats.on_client_bytes(std::slice::from_ref(byte)).unwrap();
            let fed = at + 1;
            let expected = if fed < ends[0] {
                Err(Defer::Handshake)
            } else if ends.contains(&fed) {
                Ok(())
            } else {
                Err(Defer::MidFrame)
            };
            assert_eq!(nats.can_inject(), expected, "after {fed} bytes");
        }
        assert_eq!(nats.owners.total(), CLIENT_PINGS);
    }

    #[test]
    fn client_split_at_every_position() {
        let frames = client_frames();
        let ends = frame_ends(&frames);
        let stream = frames.concat();
        for cut in 0..=stream.len() {
            let mut nats = Nats::new();
            nats.on_client_bytes(&stream[..cut]).unwrap();
            let at_boundary = nats.can_inject().is_ok();
            assert_eq!(at_boundary, ends.contains(&cut), "cut at {cut}");
            nats.on_client_bytes(&stream[cut..]).unwrap();
            assert_eq!(nats.can_inject(), Ok(()));
            assert_eq!(nats.owners.total(), CLIENT_PINGS);
        }
    }

    /// The server's side of a conversation, with owners queued as: Filter, Client, Filter, Filter.
    /// Each frame says whether the client must receive it.
    fn server_frames() -> Vec<(Vec<u8>, bool)> {
        vec![
            (b"INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n".to_vec(), true),
            (b"+OK\r\n".to_vec(), true),
            (message("MSG", "foo 1", b"", b"PONG\r\n"), true),
            (b"PONG\r\n".to_vec(), false),
            (message("MSG", "foo 1 reply.2", b"", b"PING\r\nPO"), true),
            (b"PING\r\n".to_vec(), true),
            (b"PONG\r\n".to_vec(), true),
            (message("HMSG", "foo 1", b"NATS/1.0\r\nA: PONG\r\n\r\n", b"P"), true),
            (b"PONG\r\n".to_vec(), false),
            (b"-ERR 'Unknown Subject'\r\n".to_vec(), true),
            (b"pong\n".to_vec(), false),
            (b"PONG\r\n".to_vec(), true),
            (b"+OK\r\n".to_vec(), true),
        ]
    }

    fn connected_with_owners() -> Nats {
        let mut nats = Nats::new();
        nats.on_client_bytes(b"CONNECT {}\r\n").unwrap();
        nats.on_ping_injected();
        nats.on_client_bytes(b"PING\r\n").unwrap();
        nats.on_ping_injected();
        nats.on_ping_injected();
        nats
    }

    fn server_stream_and_expected() -> (Vec<u8>, Vec<u8>) {
        let frames = server_frames();
        let stream = frames.iter().flat_map(|(f, _)| f.clone()).collect();
        let expected = frames.iter().filter(|(_, keep)| *keep).flat_map(|(f, _)| f.clone()).collect();
        (stream, expected)
    }

    #[test]
    fn strips_filter_pongs_at_every_split() {
        let (stream, expected) = server_stream_and_expected();
        for cut in 0..=stream.len() {
            let mut nats = connected_with_owners();
            let (seen, answered) = client_view(&mut nats, &[&stream[..cut], &stream[cut..]]);
            assert_eq!(seen, expected, "cut at {cut}");
            assert_eq!(answered, 3, "cut at {cut}");
            assert!(nats.owners.is_empty());
        }
    }

    #[test]
    fn strips_filter_pongs_at_every_pair_of_splits() {
        let (stream, expected) = server_stream_and_expected();
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut nats = connected_with_owners();
                let (seen, answered) = client_view(&mut nats, &[&stream[..a], &stream[a..b], &stream[b..]]);
                assert!(seen == expected && answered == 3, "cuts at {a}, {b}");
            }
        }
    }

    #[test]
    fn strips_filter_pongs_byte_by_byte() {
        let (stream, expected) = server_stream_and_expected();
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let mut nats = connected_with_owners();
        assert_eq!(client_view(&mut nats, &chunks), (expected, 3));
    }

    #[test]
    fn held_pong_start_is_given_back() {
        let mut nats = connected_with_owners();
        let mut out = Output::new();
        assert_eq!(nats.on_upstream_bytes(b"+OK\r\nPON", &mut out).unwrap(), 0);
        assert_eq!(out.apply(b"+OK\r\nPON").unwrap(), b"+OK\r\n");
        out.clear();
        nats.release_held(&mut out);
        assert_eq!(out.apply(&[]).unwrap(), b"PON");
        // Once given back, the rest of that line is not stripped either, though it answers the filter.
        // The second PONG answers the client's PING, the third the filter's.
        out.clear();
        assert_eq!(nats.on_upstream_bytes(b"G\r\nPONG\r\nPONG\r\n", &mut out).unwrap(), 2);
        assert_eq!(out.apply(b"G\r\nPONG\r\nPONG\r\n").unwrap(), b"G\r\nPONG\r\n");
    }

    #[test]
    fn server_ping_is_not_held_past_its_second_byte() {
        let mut nats = connected_with_owners();
        let mut out = Output::new();
        nats.on_upstream_bytes(b"P", &mut out).unwrap();
        assert_eq!(out.apply(b"P").unwrap(), b"");
        out.clear();
        nats.on_upstream_bytes(b"ING\r\n", &mut out).unwrap();
        assert_eq!(out.apply(b"ING\r\n").unwrap(), b"PING\r\n");
    }

    #[test]
    fn lines_seen_whole_are_not_edited_while_a_pong_is_owed() {
        let mut nats = connected_with_owners();
        let mut out = Output::new();
        assert_eq!(
            nats.on_upstream_bytes(b"PING\r\nPONGS\r\nPO", &mut out),
            Err(ProtocolError::upstream("unknown operation"))
        );
        assert_eq!(out.apply(b"PING\r\nPONGS\r\nPO"), None, "PING forwarded without an edit");
        let mut nats = connected_with_owners();
        out.clear();
        assert_eq!(nats.on_upstream_bytes(b"PING\r\n+OK\r\nPONG \r\n", &mut out), Ok(1));
        assert!(!out.is_changed(), "a PONG with trailing blanks is counted, not stripped");
    }

    #[test]
    fn unsolicited_and_client_pongs_are_forwarded() {
        let mut nats = Nats::new();
        nats.on_client_bytes(b"CONNECT {}\r\nPING\r\n").unwrap();
        let stream: &[u8] = b"PONG\r\nPONG\r\n";
        assert_eq!(client_view(&mut nats, &[stream]), (stream.to_vec(), 0));
    }

    #[test]
    fn bad_verb_after_held_prefix_gives_bytes_back_and_fails() {
        let mut nats = connected_with_owners();
        let mut out = Output::new();
        nats.on_upstream_bytes(b"PON", &mut out).unwrap();
        assert_eq!(out.apply(b"PON").unwrap(), b"");
        out.clear();
        let err = nats.on_upstream_bytes(b"X\r\n", &mut out).unwrap_err();
        assert_eq!(err, ProtocolError::upstream("unknown operation"));
        assert_eq!(out.apply(b"X\r\n").unwrap(), b"PONX\r\n");
        out.clear();
        assert!(nats.on_upstream_bytes(b"PONG\r\n", &mut out).is_err(), "errors are sticky");
    }

    fn client_error(stream: &[u8]) -> &'static str {
        let mut nats = Nats::new();
        nats.on_client_bytes(stream).unwrap_err().reason
    }

    fn upstream_error(stream: &[u8]) -> &'static str {
        let mut nats = connected_with_owners();
        nats.on_upstream_bytes(stream, &mut Output::new()).unwrap_err().reason
    }

    #[test]
    fn malformed_client_streams_are_errors() {
        assert_eq!(client_error(b"\x16\x03\x01\x02\x00\x01\x00"), "unknown operation");
        assert_eq!(client_error(b"\r\n"), "unknown operation");
        assert_eq!(client_error(b"CONNECTX {}\r\n"), "unknown operation");
        assert_eq!(client_error(b"MSG foo 1 2\r\nab\r\n"), "unknown operation");
        assert_eq!(client_error(b"PUB\r\n"), "missing payload size");
        assert_eq!(client_error(b"PUB 5\r\n"), "wrong number of arguments");
        assert_eq!(client_error(b"PUB a b c 5\r\n"), "wrong number of arguments");
        assert_eq!(client_error(b"PUB foo five\r\n"), "payload size is not a number");
        assert_eq!(client_error(b"PUB foo -1\r\n"), "payload size is not a number");
        assert_eq!(client_error(b"PUB foo 67108865\r\n"), "payload size exceeds 64 MiB");
        assert_eq!(client_error(b"PUB foo 184467440737095516160\r\n"), "payload size exceeds 64 MiB");
        assert_eq!(client_error(b"HPUB foo 10 5\r\n"), "header size larger than total size");
        assert_eq!(client_error(b"PUB foo 3\r\nabcX"), "payload not followed by CRLF");
        assert_eq!(client_error(b"PUB foo 3\r\nabc\rX"), "payload not followed by CRLF");
        let long = [b"SUB ".as_slice(), &[b'a'; 5000], b" 1\r\n"].concat();
        assert_eq!(client_error(&long), "control line too long");
        let long_pub = [b"PUB ".as_slice(), &[b'a'; 5000], b" 1\r\n"].concat();
        assert_eq!(client_error(&long_pub), "control line too long");
        let huge_connect = [b"CONNECT {\"jwt\":\"".as_slice(), &[b'a'; 70_000], b"\"}\r\n"].concat();
        assert_eq!(client_error(&huge_connect), "control line too long");
    }

    #[test]
    fn limits_accept_what_nats_server_accepts() {
        let mut nats = Nats::new();
        let connect = [b"CONNECT {\"jwt\":\"".as_slice(), &[b'a'; 10_000], b"\"}\r\n"].concat();
        nats.on_client_bytes(&connect).unwrap();
        let sub = [b"SUB ".as_slice(), &[b'a'; 4090], b" 1\r\n"].concat();
        nats.on_client_bytes(&sub).unwrap();
        nats.on_client_bytes(b"PUB foo 67108864\r\n").unwrap();
        assert_eq!(nats.can_inject(), Err(Defer::MidFrame));
    }

    #[test]
    fn malformed_server_streams_are_errors() {
        assert_eq!(upstream_error(b"HTTP/1.1 400 Bad Request\r\n"), "unknown operation");
        assert_eq!(upstream_error(b"PUB foo 1\r\n"), "unknown operation");
        assert_eq!(upstream_error(b"MSG foo 5\r\n"), "wrong number of arguments");
        assert_eq!(upstream_error(b"HMSG foo 1 9 8\r\n"), "header size larger than total size");
        assert_eq!(upstream_error(b"MSG foo 1 1\r\nab"), "payload not followed by CRLF");
        let long_info = [b"INFO {".as_slice(), &[b' '; 70_000]].concat();
        assert_eq!(upstream_error(&long_info), "control line too long");
    }

    #[test]
    fn client_errors_are_sticky() {
        let mut nats = Nats::new();
        assert!(nats.on_client_bytes(b"XYZ\r\n").is_err());
        assert!(nats.on_client_bytes(b"CONNECT {}\r\n").is_err());
        assert_eq!(nats.can_inject(), Err(Defer::MidFrame));
    }

    const TEN_MB: usize = 10 * 1024 * 1024;

    /// A payload made of lines that look like control lines, so skipping it by counting is what is tested.
    fn tricky_payload(len: usize) -> Vec<u8> {
        b"PONG\r\nPING\r\nMSG x 1 2\r\n".iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn ten_megabyte_message_passes_through_unchanged() {
        let mut nats = connected_with_owners();
        let mut stream = format!("MSG big 1 {TEN_MB}\r\n").into_bytes();
        stream.extend(tricky_payload(TEN_MB));
        stream.extend_from_slice(b"\r\n");
        let mut out = Output::new();
        for chunk in stream.chunks(64 * 1024) {
            out.clear();
            assert_eq!(nats.on_upstream_bytes(chunk, &mut out), Ok(0));
            assert!(!out.is_changed());
            assert_eq!(out.accounted(), chunk.len());
        }
        assert!(nats.upstream.at_boundary());
        out.clear();
        assert_eq!(nats.on_upstream_bytes(b"PONG\r\n", &mut out), Ok(1));
        assert_eq!(out.apply(b"PONG\r\n").unwrap(), b"");
    }

    #[test]
    fn ten_megabyte_publish_is_one_frame() {
        let mut nats = Nats::new();
        nats.on_client_bytes(b"CONNECT {}\r\n").unwrap();
        nats.on_client_bytes(format!("PUB big {TEN_MB}\r\n").as_bytes()).unwrap();
        for chunk in tricky_payload(TEN_MB).chunks(64 * 1024) {
            nats.on_client_bytes(chunk).unwrap();
            assert_eq!(nats.can_inject(), Err(Defer::MidFrame));
        }
        nats.on_client_bytes(b"\r\n").unwrap();
        assert_eq!(nats.can_inject(), Ok(()));
        assert_eq!(nats.owners.total(), 0, "PINGs inside the payload are not PINGs");
    }
}
