//! The connection core through a `Worker` with a fake `Transport`, driven by an event sequence decoded from
//! the fuzzer's bytes: opens, client and upstream bytes (whole frames from a per-protocol dictionary, cut
//! anywhere, or raw bytes), ends of stream either way, ticks at increasing times, closes.
//!
//! A model follows each connection while it carries only dictionary frames: a queue of who owns the next reply
//! (a client frame that expects one takes a place when its last byte is sent, an injected PING when it is
//! written), and the client's expected view: every upstream frame, except those answering the filter's PINGs.
//! An upstream reply is only started while some reply is owed (a server answers what it received), so its
//! owner is known from its first byte. Raw bytes end the precise model for that connection; the weaker checks
//! remain. Checked after every event:
//! - the client receives exactly the upstream's frames minus the replies to the filter's PINGs (modelled
//!   connections: a prefix of that while a frame is cut, all of it at frame boundaries), and the count the
//!   worker strips is the model's;
//! - every connection: the client receives the upstream's bytes with some removed, order kept, and nothing
//!   removed while no reply was stripped;
//! - PINGs are written only at a client frame boundary, after the client's first byte (NATS: after `CONNECT`;
//!   Redis: while no reply is owed to the client), never after an end of stream or close, and are the
//!   protocol's PING;
//! - no protocol error on a modelled connection; statistics never negative; `connections_monitored` equals
//!   the connections in `Monitoring`; the timer heap stays bounded; after every connection closed,
//!   `connections_monitored` is 0, PINGs balance (`injected + keepalive = stripped + unanswered`) and, once
//!   every deadline passed, the timer heap is empty.

use std::collections::VecDeque;

use heartbeat::core::config::{Config, ProtocolSpec};
use heartbeat::core::connection::{Dead, Phase};
use heartbeat::core::protocol::framed::Framed;
use heartbeat::core::protocol::nats::Nats;
use heartbeat::core::protocol::redis::Redis;
use heartbeat::core::protocol::Protocol;
use heartbeat::core::stats::Stat;
use heartbeat::core::time::Instant;
use heartbeat::core::timers::ConnId;
use heartbeat::core::worker::{Transport, Worker};

use crate::{is_subsequence, layouts, Bytes};

const IDS: u32 = 4;
const MAX_EVENTS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Client,
    Filter,
}

/// One dictionary entry: its bytes, and whether it takes (client) or answers (upstream) a place in the queue.
#[derive(Clone, Debug)]
struct Frame {
    bytes: Vec<u8>,
    /// Client: expects a reply (a PING of the client's own, any Redis command). Upstream: is a reply.
    queued: bool,
}

fn frames(list: &[(&[u8], bool)]) -> Vec<Frame> {
    list.iter().map(|(b, q)| Frame { bytes: b.to_vec(), queued: *q }).collect()
}

struct Dictionary {
    /// The first client frame of every modelled connection (NATS `CONNECT`).
    handshake: Option<Vec<u8>>,
    client: Vec<Frame>,
    upstream: Vec<Frame>,
    ping: Vec<u8>,
    /// Redis: no PING while a reply is owed to the client.
    no_ping_while_owed: bool,
}

fn nats_dictionary() -> Dictionary {
    Dictionary {
        handshake: Some(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n".to_vec()),
        client: frames(&[
            (b"PUB foo 5\r\nhello\r\n", false),
            (b"pub foo.bar _INBOX.1 6\r\nPING\r\n\r\n", false),
            (b"HPUB foo 18 20\r\nNATS/1.0\r\nX: 1\r\n\r\nhi\r\n", false),
            (b"SUB foo 1\r\n", false),
            (b"UNSUB 1\n", false),
            (b"PING\r\n", true),
            (b"ping\n", true),
            (b"PONG\r\n", false),
            (b"CONNECT {}\r\n", false),
        ]),
        upstream: frames(&[
            (b"INFO {\"server_id\":\"N\",\"headers\":true}\r\n", false),
            (b"+OK\r\n", false),
            (b"-ERR 'Unknown Subject'\r\n", false),
            (b"PING\r\n", false),
            (b"MSG foo 1 6\r\nPONG\r\n\r\n", false),
            (b"HMSG foo 1 _INBOX.2 12 14\r\nNATS/1.0\r\n\r\nok\r\n", false),
            (b"PONG\r\n", true),
            (b"pong\r\n", true),
            (b"PONG\n", true),
        ]),
        ping: Nats::new().ping().to_vec(),
        no_ping_while_owed: false,
    }
}

fn redis_dictionary() -> Dictionary {
    Dictionary {
        handshake: None,
        client: frames(&[
            (b"*1\r\n$4\r\nPING\r\n", true),
            (b"PING\r\n", true),
            (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", true),
            (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\n+PONG\r\n\r\n", true),
            (b"GET k\n", true),
            (b"*2\r\n$4\r\nECHO\r\n$4\r\nPONG\r\n", true),
            (b"MULTI\r\n", true),
            (b"*1\r\n$4\r\nEXEC\r\n", true),
            (b"DISCARD\r\n", true),
            (b"BLPOP q 1\r\n", true),
            (b"*3\r\n$5\r\nBRPOP\r\n$1\r\nq\r\n$3\r\n0.5\r\n", true),
            (b"XREAD BLOCK 200 STREAMS s $\r\n", true),
            (b"BLPOP q 0\r\n", true),
        ]),
        upstream: frames(&[
            (b"+PONG\r\n", true),
            (b"+OK\r\n", true),
            (b"+QUEUED\r\n", true),
            (b"$5\r\nhello\r\n", true),
            (b"$7\r\n+PONG\r\n\r\n", true),
            (b"$-1\r\n", true),
            (b"*-1\r\n", true),
            (b":42\r\n", true),
            (b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n", true),
            (b"*0\r\n", true),
            (b"-ERR unknown command\r\n", true),
            (b"-NOAUTH Authentication required.\r\n", true),
        ]),
        ping: Redis::new().ping().to_vec(),
        no_ping_while_owed: true,
    }
}

fn framed_dictionary(layout: usize) -> Dictionary {
    let spec = layouts::fixed(layout);
    let (ping, pong) = (spec.ping().to_vec(), spec.pong().to_vec());
    let data = |body: &[u8]| layouts::data_frame(layout, body);
    let mut client = vec![
        Frame { bytes: ping.clone(), queued: true },
        Frame { bytes: data(b""), queued: false },
        Frame { bytes: data(b"hello"), queued: false },
        Frame { bytes: data(&ping), queued: false },
        Frame { bytes: data(&[0u8; 40]), queued: false },
    ];
    let mut upstream = vec![
        Frame { bytes: pong.clone(), queued: true },
        Frame { bytes: data(b"world"), queued: false },
        Frame { bytes: data(&pong), queued: false },
        Frame { bytes: data(b""), queued: false },
    ];
    for other in layouts::other_frames(layout) {
        client.push(Frame { bytes: other.clone(), queued: false });
        upstream.push(Frame { bytes: other, queued: false });
    }
    Dictionary { handshake: None, client, upstream, ping: Framed::new(spec).ping().to_vec(), no_ping_while_owed: false }
}

/// A frame being sent in pieces.
#[derive(Default)]
struct Partial {
    bytes: Vec<u8>,
    at: usize,
    /// Client: takes a place when complete. Upstream: the owner it answers (`Some` only for replies).
    queued: bool,
    owner: Option<Owner>,
}

impl Partial {
    fn active(&self) -> bool {
        self.at < self.bytes.len()
    }
}

#[derive(Default)]
struct Model {
    open: bool,
    /// Only dictionary frames so far: the precise model holds.
    precise: bool,
    client_sent: bool,
    handshake_done: bool,
    client_eos: bool,
    upstream_eos: bool,
    client: Partial,
    upstream: Partial,
    owners: VecDeque<Owner>,
    /// Everything the upstream sent, and everything the client received.
    sent: Vec<u8>,
    seen: Vec<u8>,
    /// What the client must receive for the upstream frames completed so far (precise model).
    expected: Vec<u8>,
    stripped: u64,
    model_stripped: u64,
    /// Bytes of `seen` already checked against the model, and against `sent` while nothing was stripped.
    verified: usize,
    raw_verified: usize,
    inject_fails: bool,
}

#[derive(Default)]
struct FakeTransport {
    fail: [bool; IDS as usize],
    injected: Vec<(ConnId, Vec<u8>)>,
    closed: Vec<(ConnId, Dead)>,
}

impl Transport for FakeTransport {
    fn inject(&mut self, id: ConnId, bytes: &[u8]) -> bool {
        let ok = !self.fail.get(id as usize).copied().unwrap_or(true);
        if ok {
            self.injected.push((id, bytes.to_vec()));
        }
        ok
    }

    fn close(&mut self, id: ConnId, dead: &Dead, why: &str) {
        assert!(!why.is_empty(), "a close without a reason");
        self.closed.push((id, *dead));
    }
}

struct Harness {
    worker: Worker,
    dict: Dictionary,
    models: Vec<Model>,
    transport: FakeTransport,
    now: u64,
    opens: usize,
}

/// The configuration: protocol and timers from the input, as the operator writes it. Fields the harness
/// does not set keep their defaults, so fields added later (with defaults) need no change here.
fn config_json(input: &mut Bytes) -> (String, usize) {
    let selector = input.u8();
    let protocol = match selector % 5 {
        0 => r#""protocol": "nats""#.to_string(),
        1 => r#""protocol": "redis""#.to_string(),
        k => format!(r#""protocol": "framed", "framed": {}"#, layouts::FIXED[usize::from(k - 2)]),
    };
    let read_idle = ["10ms", "50ms", "200ms", "1s", "10s"][input.pick(5)];
    let interval = ["10ms", "30ms", "100ms", "1s"][input.pick(4)];
    let missed = 1 + input.pick(4);
    let keepalive = match input.pick(4) {
        0 => r#", "write_idle_keepalive": "20ms""#,
        1 => r#", "write_idle_keepalive": "300ms""#,
        _ => "",
    };
    let json = format!(
        r#"{{{protocol}, "read_idle_timeout": "{read_idle}", "ping_interval": "{interval}", "max_missed_pongs": {missed}{keepalive}}}"#
    );
    (json, usize::from(selector % 5))
}

/// `HEARTBEAT_FUZZ_TRACE=1` prints every event (to read a crash input).
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("HEARTBEAT_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let (json, kind) = config_json(&mut input);
    trace!("config {json}");
    let config = Config::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
    let dict = match &config.protocol {
        ProtocolSpec::Nats => nats_dictionary(),
        ProtocolSpec::Redis => redis_dictionary(),
        ProtocolSpec::Framed(_) => framed_dictionary(kind - 2),
        // Postgres has its own targets (postgres_client, postgres_upstream); config_json never names it.
        ProtocolSpec::Postgres => unreachable!("config_json does not choose postgres"),
        // MySQL has its own targets (mysql_client, mysql_upstream); config_json never names it.
        ProtocolSpec::Mysql => unreachable!("config_json does not choose mysql"),
    };
    let mut h = Harness {
        worker: Worker::new(config),
        dict,
        models: (0..IDS).map(|_| Model::default()).collect(),
        transport: FakeTransport::default(),
        now: 1_000,
        opens: 0,
    };
    let mut events = 0;
    while !input.is_empty() && events < MAX_EVENTS {
        events += 1;
        let op = input.u8();
        let id = u32::from(op >> 4) % IDS;
        match op % 16 {
            0 | 1 => h.open(id),
            2 | 3 => {
                let n = input.u8();
                h.client_piece(id, n, &mut input);
            }
            4 => {
                let k = 1 + input.pick(3);
                h.client_whole(id, k, &mut input);
            }
            5 => {
                let len = input.pick(24);
                let raw = input.take(len).to_vec();
                h.client_raw(id, &raw);
            }
            6 | 7 => {
                let n = input.u8();
                h.upstream_piece(id, n, &mut input);
            }
            8 => {
                let k = 1 + input.pick(3);
                h.upstream_whole(id, k, &mut input);
            }
            9 => {
                let len = input.pick(24);
                let raw = input.take(len).to_vec();
                h.upstream_raw(id, &raw);
            }
            10 | 11 => {
                let step = input.u8();
                h.advance(step);
                h.tick();
            }
            12 => {
                let step = input.u8();
                h.advance(step);
            }
            13 => {
                let with_rest = input.u8() & 1 == 1;
                h.client_eos(id, with_rest);
            }
            14 => {
                let how = input.u8();
                h.upstream_eos(id, how);
            }
            _ => {
                if input.u8() & 1 == 0 {
                    h.close(id);
                } else {
                    let m = &mut h.models[id as usize];
                    m.inject_fails = !m.inject_fails;
                    h.transport.fail[id as usize] = m.inject_fails;
                }
            }
        }
        h.check_worker();
    }
    h.finish();
}

impl Harness {
    fn at(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn advance(&mut self, step: u8) {
        let ms = if step < 0x80 { u64::from(step) * 5 } else { u64::from(step - 0x80) * 250 };
        self.now += ms;
    }

    fn open(&mut self, id: ConnId) {
        let now = self.at();
        trace!("t={} open {id}", self.now);
        self.worker.open(id, now);
        self.opens += 1;
        let fails = self.transport.fail[id as usize];
        self.models[id as usize] = Model { open: true, precise: true, inject_fails: fails, ..Model::default() };
    }

    fn model(&mut self, id: ConnId) -> &mut Model {
        &mut self.models[id as usize]
    }

    /// Picks the next client frame (NATS: `CONNECT` first on a modelled connection).
    fn next_client_frame(&mut self, id: ConnId, input: &mut Bytes) -> Frame {
        let choice = input.pick(self.dict.client.len());
        let m = &self.models[id as usize];
        match &self.dict.handshake {
            Some(handshake) if !m.handshake_done => Frame { bytes: handshake.clone(), queued: false },
            _ => self.dict.client[choice].clone(),
        }
    }

    /// Sends client bytes to the worker and checks the answer for a closed connection.
    fn send_client(&mut self, id: ConnId, bytes: &[u8], eos: bool) {
        let now = self.at();
        trace!("t={} client {id} {:?} eos={eos}", self.now, String::from_utf8_lossy(bytes));
        let keep = self.worker.client_data(id, bytes, eos, now);
        let m = &mut self.models[id as usize];
        if !m.open {
            assert!(!keep, "a closed connection keeps a buffer");
            return;
        }
        if keep {
            assert_eq!(self.worker.phase(id), Some(Phase::Monitoring), "keep_buffer outside Monitoring");
        }
        if !bytes.is_empty() {
            if m.client_eos {
                // Bytes after the client's end of stream are not followed (the connection has ended): the
                // model's queue would count frames the decoder never saw.
                m.precise = false;
            }
            m.client_sent = true;
        }
        if eos {
            m.client_eos = true;
        }
    }

    /// The next `n` bytes of the client's current frame (a new one from the dictionary if none is cut).
    fn client_piece(&mut self, id: ConnId, n: u8, input: &mut Bytes) {
        if !self.models[id as usize].client.active() {
            let frame = self.next_client_frame(id, input);
            let m = self.model(id);
            m.client = Partial { bytes: frame.bytes, at: 0, queued: frame.queued, owner: None };
        }
        let m = &mut self.models[id as usize];
        let end = (m.client.at + usize::from(n).max(1)).min(m.client.bytes.len());
        let piece = m.client.bytes[m.client.at..end].to_vec();
        m.client.at = end;
        self.send_client(id, &piece, false);
        self.client_frame_done(id);
    }

    fn client_frame_done(&mut self, id: ConnId) {
        let handshake = self.dict.handshake.clone();
        let m = self.model(id);
        if !m.open || m.client.active() || m.client.bytes.is_empty() {
            return;
        }
        if m.client.queued {
            m.owners.push_back(Owner::Client);
        }
        if handshake.as_deref() == Some(m.client.bytes.as_slice()) {
            m.handshake_done = true;
        }
        m.client = Partial::default();
    }

    /// The rest of the current client frame and `k` more whole frames, in one chunk.
    fn client_whole(&mut self, id: ConnId, k: usize, input: &mut Bytes) {
        let mut chunk = Vec::new();
        let mut queued = 0;
        let handshake = self.dict.handshake.clone();
        let m = &mut self.models[id as usize];
        if m.client.active() {
            chunk.extend_from_slice(&m.client.bytes[m.client.at..]);
            queued += usize::from(m.client.queued);
            m.handshake_done |= handshake.as_deref() == Some(m.client.bytes.as_slice());
            m.client = Partial::default();
        }
        for _ in 0..k {
            let frame = self.next_client_frame(id, input);
            // Once the handshake is in the chunk, the next frames come from the dictionary.
            self.model(id).handshake_done |= handshake.as_deref() == Some(frame.bytes.as_slice());
            queued += usize::from(frame.queued);
            chunk.extend_from_slice(&frame.bytes);
        }
        self.send_client(id, &chunk, false);
        let m = self.model(id);
        if m.open {
            m.owners.extend(std::iter::repeat_n(Owner::Client, queued));
        }
    }

    fn client_raw(&mut self, id: ConnId, raw: &[u8]) {
        self.model(id).precise = false;
        self.send_client(id, raw, false);
    }

    fn client_eos(&mut self, id: ConnId, with_rest: bool) {
        let mut rest = Vec::new();
        if with_rest {
            let m = self.model(id);
            if m.client.active() {
                rest = m.client.bytes[m.client.at..].to_vec();
                m.client.at = m.client.bytes.len();
            }
        }
        self.send_client(id, &rest, true);
        self.client_frame_done(id);
    }

    /// Sends upstream bytes to the worker and records what the client receives.
    fn send_upstream(&mut self, id: ConnId, bytes: &[u8], eos: bool) {
        let now = self.at();
        trace!("t={} upstream {id} {:?} eos={eos}", self.now, String::from_utf8_lossy(bytes));
        let before = self.worker.stats().get(Stat::PongsStripped);
        let rewritten = self.worker.upstream_data(id, bytes, eos, now);
        let stripped = self.worker.stats().get(Stat::PongsStripped) - before;
        let m = &mut self.models[id as usize];
        if !m.open {
            assert!(rewritten.is_none(), "a closed connection's chunk was rewritten");
            assert_eq!(stripped, 0);
            return;
        }
        m.sent.extend_from_slice(bytes);
        m.seen.extend_from_slice(rewritten.as_deref().unwrap_or(bytes));
        m.stripped += stripped as u64;
        if eos {
            m.upstream_eos = true;
        }
        assert!(m.seen.len() <= m.sent.len(), "the client received more than the upstream sent");
        if m.stripped == 0 {
            // Only the bytes received since the last check: both streams only grow.
            let from = m.raw_verified;
            assert_eq!(m.sent[from..m.seen.len()], m.seen[from..], "bytes removed with no reply stripped");
            m.raw_verified = m.seen.len();
        }
    }

    /// The next upstream frame: a reply only while one is owed (its owner is the queue's front).
    fn next_upstream_frame(&mut self, id: ConnId, input: &mut Bytes) -> Option<Partial> {
        let dict = &self.dict.upstream;
        let m = &self.models[id as usize];
        let start = input.pick(dict.len());
        let owed = m.owners.front().copied();
        (0..dict.len()).map(|k| &dict[(start + k) % dict.len()]).find(|f| !f.queued || owed.is_some()).map(|f| {
            Partial { bytes: f.bytes.clone(), at: 0, queued: f.queued, owner: if f.queued { owed } else { None } }
        })
    }

    fn upstream_piece(&mut self, id: ConnId, n: u8, input: &mut Bytes) {
        if self.models[id as usize].upstream_eos {
            return;
        }
        if !self.models[id as usize].upstream.active() {
            match self.next_upstream_frame(id, input) {
                Some(frame) => self.model(id).upstream = frame,
                None => return,
            }
        }
        let m = &mut self.models[id as usize];
        let end = (m.upstream.at + usize::from(n).max(1)).min(m.upstream.bytes.len());
        let piece = m.upstream.bytes[m.upstream.at..end].to_vec();
        m.upstream.at = end;
        self.send_upstream(id, &piece, false);
        self.upstream_frame_done(id);
        self.check_view(id);
    }

    /// The model's side of a completed upstream frame.
    fn upstream_frame_done(&mut self, id: ConnId) {
        let m = self.model(id);
        if m.upstream.active() || m.upstream.bytes.is_empty() {
            return;
        }
        let frame = std::mem::take(&mut m.upstream);
        let owner = if frame.queued { m.owners.pop_front() } else { None };
        assert_eq!(owner, frame.owner, "the queue's front changed under a reply");
        if owner == Some(Owner::Filter) {
            m.model_stripped += 1;
        } else {
            m.expected.extend_from_slice(&frame.bytes);
        }
    }

    fn upstream_whole(&mut self, id: ConnId, k: usize, input: &mut Bytes) {
        if self.models[id as usize].upstream_eos || !self.models[id as usize].open {
            return;
        }
        let mut chunk = Vec::new();
        {
            let m = self.model(id);
            if m.upstream.active() {
                chunk.extend_from_slice(&m.upstream.bytes[m.upstream.at..]);
                m.upstream.at = m.upstream.bytes.len();
            }
        }
        self.upstream_frame_done(id);
        for _ in 0..k {
            let Some(mut frame) = self.next_upstream_frame(id, input) else { break };
            chunk.extend_from_slice(&frame.bytes);
            frame.at = frame.bytes.len();
            self.model(id).upstream = frame;
            self.upstream_frame_done(id);
        }
        self.send_upstream(id, &chunk, false);
        self.check_view(id);
    }

    fn upstream_raw(&mut self, id: ConnId, raw: &[u8]) {
        if self.models[id as usize].upstream_eos {
            return;
        }
        self.model(id).precise = false;
        self.send_upstream(id, raw, false);
    }

    /// The upstream's stream ends: with the rest of a cut frame (`how` bit 0), or with no data either as an
    /// empty end-of-stream chunk or as a half-close (`how` bit 1).
    fn upstream_eos(&mut self, id: ConnId, how: u8) {
        if self.models[id as usize].upstream_eos {
            return;
        }
        if how & 1 == 1 {
            let rest = {
                let m = self.model(id);
                let rest = m.upstream.bytes.get(m.upstream.at..).unwrap_or_default().to_vec();
                m.upstream.at = m.upstream.bytes.len();
                rest
            };
            self.send_upstream(id, &rest, true);
            self.upstream_frame_done(id);
        } else if how & 2 == 0 {
            self.send_upstream(id, &[], true);
        } else {
            self.worker.upstream_closed(id);
            let m = self.model(id);
            if m.open {
                m.upstream_eos = true;
                // A half-close is not a data chunk: nothing is given back; the precise view ends here.
                m.precise = false;
            }
            return;
        }
        let m = self.model(id);
        if m.open && m.precise && m.upstream.active() {
            if m.upstream.owner == Some(Owner::Filter) {
                // A reply to the filter cut by the end: a decoder may have held its start (given back now) or
                // skipped it (decided already); either is right.
                m.precise = false;
            } else {
                // What the decoder held while undecided comes back: the client has every byte of the frame.
                let partial = m.upstream.bytes[..m.upstream.at].to_vec();
                m.expected.extend_from_slice(&partial);
                m.upstream = Partial::default();
            }
        }
        self.check_view(id);
        let m = &self.models[id as usize];
        if m.open && m.stripped == 0 {
            assert_eq!(m.seen, m.sent, "the upstream's stream ended: the client must have every byte");
        }
    }

    fn close(&mut self, id: ConnId) {
        trace!("t={} close {id}", self.now);
        self.worker.closed(id);
        let m = self.model(id);
        m.open = false;
        assert_eq!(self.worker.phase(id), None);
    }

    fn tick(&mut self) {
        let now = self.at();
        trace!("t={} tick", self.now);
        self.worker.tick(now, &mut self.transport);
        trace!("t={} tick: injected {:?}, closed {:?}", self.now, self.transport.injected, self.transport.closed);
        for (id, bytes) in std::mem::take(&mut self.transport.injected) {
            let no_ping_while_owed = self.dict.no_ping_while_owed;
            assert_eq!(bytes, self.dict.ping, "connection {id}: injected something other than the PING");
            let m = &mut self.models[id as usize];
            assert!(m.open, "a PING was injected into closed connection {id}");
            assert!(m.client_sent, "connection {id}: a PING before the client's first byte");
            assert!(!m.client_eos && !m.upstream_eos, "connection {id}: a PING after an end of stream");
            if m.precise {
                assert!(!m.client.active(), "connection {id}: a PING inside a client frame");
                if self.dict.handshake.is_some() {
                    assert!(m.handshake_done, "connection {id}: a PING before the handshake");
                }
                if no_ping_while_owed {
                    // A reply the upstream has started to send is no longer waited for.
                    let answering = usize::from(m.upstream.active() && m.upstream.owner == Some(Owner::Client));
                    let owed = m.owners.iter().filter(|o| **o == Owner::Client).count() - answering;
                    assert_eq!(owed, 0, "connection {id}: a PING while a reply is owed");
                }
            }
            m.owners.push_back(Owner::Filter);
        }
        for (id, dead) in std::mem::take(&mut self.transport.closed) {
            assert!(self.models[id as usize].open, "closed connection {id} declared dead");
            let _ = dead;
            // Envoy closes the connection, and the worker hears of it.
            self.close(id);
        }
    }

    /// The client's view of connection `id` against the model: the bytes the client received must be the
    /// expected ones followed by the visible part of the frame being cut (all of it at a frame boundary). Both
    /// only grow, so only the bytes received since the last check are compared.
    fn check_view(&mut self, id: ConnId) {
        let m = &mut self.models[id as usize];
        if !m.open || !m.precise {
            return;
        }
        let visible: &[u8] =
            if m.upstream.owner == Some(Owner::Filter) { &[] } else { &m.upstream.bytes[..m.upstream.at] };
        let wrong = (m.verified..m.seen.len()).find(|&i| {
            let want = if i < m.expected.len() { m.expected.get(i) } else { visible.get(i - m.expected.len()) };
            want != Some(&m.seen[i])
        });
        if wrong.is_some() || m.seen.len() < m.expected.len() {
            panic!(
                "connection {id}: the client received (first difference at {wrong:?})\n{:?}\nexpected\n{:?}{:?}",
                String::from_utf8_lossy(&m.seen),
                String::from_utf8_lossy(&m.expected),
                String::from_utf8_lossy(visible),
            );
        }
        m.verified = m.seen.len();
        assert_eq!(m.stripped, m.model_stripped, "connection {id}: replies stripped");
    }

    fn check_worker(&self) {
        let stats = self.worker.stats();
        for stat in Stat::all() {
            assert!(stats.get(stat) >= 0, "{} is negative: {}", stat.name(), stats.get(stat));
        }
        let mut open = 0;
        let mut monitoring = 0;
        for (id, m) in self.models.iter().enumerate() {
            let phase = self.worker.phase(id as ConnId);
            assert_eq!(phase.is_some(), m.open, "connection {id}: known to the worker iff open");
            open += usize::from(m.open);
            monitoring += usize::from(phase == Some(Phase::Monitoring));
            if m.open && m.precise {
                assert_ne!(phase, Some(Phase::PassThrough), "connection {id}: protocol error on dictionary frames");
            }
        }
        assert_eq!(self.worker.connection_count(), open);
        assert_eq!(stats.get(Stat::ConnectionsMonitored), monitoring as i64, "connections_monitored");
        // At most a live entry and a few stale ones per connection ever opened, or (the worker compacts the
        // heap once stale entries outnumber live ones) twice the open connections plus a slack of 64.
        let bound = (4 * self.opens + 4).max(2 * open + 66);
        assert!(
            self.worker.timer_entries() <= bound,
            "{} timer entries for {} opens",
            self.worker.timer_entries(),
            self.opens
        );
    }

    fn finish(mut self) {
        for id in 0..IDS {
            let m = &self.models[id as usize];
            if m.open {
                assert!(is_subsequence(&m.seen, &m.sent), "connection {id}: the client's view lost its order");
            }
            self.close(id);
        }
        self.check_worker();
        let stats = self.worker.stats();
        assert_eq!(stats.get(Stat::ConnectionsMonitored), 0);
        assert_eq!(
            stats.get(Stat::PingsInjected) + stats.get(Stat::KeepalivePings),
            stats.get(Stat::PongsStripped) + stats.get(Stat::PingsUnanswered),
            "every PING is stripped or counted unanswered once its connection closed"
        );
        // Past every deadline: every entry surfaces and is dropped.
        self.now = Instant::NEVER.as_millis();
        self.tick();
        assert_eq!(self.worker.timer_entries(), 0, "timer entries left after every connection closed");
    }
}
