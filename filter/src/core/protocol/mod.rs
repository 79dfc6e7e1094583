//! Protocols: one trait, one file per protocol.
//!
//! A protocol decoder follows both byte streams of one connection without buffering them: it keeps just
//! enough state to know where frames begin and end (bodies are skipped by counting down, as Envoy's
//! `redis_proxy` codec does). From that it answers three questions for the connection core:
//! - may a PING be appended to the client's stream now (a frame boundary, and the protocol's own rules)?
//! - which upstream bytes answer a PING the filter injected (they are stripped from what the client sees)?
//! - did the stream stop making sense (a sticky [`ProtocolError`]: the connection is passed through from then on)?
//! - is the upstream entitled to be silent for a while (a blocking command such as Redis `BLPOP list 5`, or
//!   any command whose reply is still owed)?
//!
//! Decoders never panic on any input: bad bytes are an error value, and lengths are checked arithmetic.

pub mod framed;
pub mod nats;
pub mod redis;

mod output;
pub mod toolkit;
mod pong_owners;
mod silence;

pub use output::Output;
pub use pong_owners::{Owner, PongOwners};
pub use silence::Silence;

use std::fmt;

/// Why a PING cannot be appended to the client's stream at this moment. Each is counted as a deferral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defer {
    /// The client has sent part of a frame (a command line, a payload, a length-prefixed body).
    MidFrame,
    /// The protocol's handshake has not been seen yet (NATS `CONNECT` must be the client's first frame).
    Handshake,
    /// Replies are still owed to the client; the server answers in order, and a silent server that owes a
    /// reply may be busy (a blocking command), so a PING would prove nothing (Redis).
    RepliesOutstanding,
    /// Inside a transaction: a PING would be queued into `EXEC`'s reply (Redis `MULTI`).
    Transaction,
    /// The connection is in a mode whose replies the decoder cannot match to a PING (Redis subscribe mode
    /// before the server confirmed it, or while the client is leaving it).
    Mode,
}

impl Defer {
    /// A stable name for logs and tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Defer::MidFrame => "mid_frame",
            Defer::Handshake => "handshake",
            Defer::RepliesOutstanding => "replies_outstanding",
            Defer::Transaction => "transaction",
            Defer::Mode => "mode",
        }
    }
}

/// Which direction a protocol error was seen in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Bytes from the client towards the upstream.
    Client,
    /// Bytes from the upstream towards the client.
    Upstream,
}

/// The stream did not parse as the configured protocol. Sticky: after the first one, the connection core
/// stops injecting and forwards both directions untouched (rustls-style: one defined path, counted once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    pub side: Side,
    pub reason: &'static str,
}

impl ProtocolError {
    pub fn client(reason: &'static str) -> Self {
        ProtocolError { side: Side::Client, reason }
    }
    pub fn upstream(reason: &'static str) -> Self {
        ProtocolError { side: Side::Upstream, reason }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Client => "client",
            Side::Upstream => "upstream",
        };
        write!(f, "{side} stream: {}", self.reason)
    }
}

/// One protocol's view of one connection.
///
/// Call order contract (the connection core keeps it):
/// - `on_client_bytes` sees every client byte exactly once, in order;
/// - `on_ping_injected` is called right after the PING was appended behind all client bytes seen so far,
///   and only when `can_inject` returned `Ok` with nothing fed in between;
/// - `on_upstream_bytes` sees every upstream byte exactly once, in order, and describes what the client
///   must receive instead, through `out`.
pub trait Protocol {
    /// Follow the client's stream.
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError>;

    /// May the filter's PING be appended after everything the client has sent so far?
    fn can_inject(&self) -> Result<(), Defer>;

    /// The bytes of the filter's PING.
    fn ping(&self) -> &[u8];

    /// The filter's PING was appended behind all client bytes seen so far.
    fn on_ping_injected(&mut self);

    /// Follow the upstream's stream. Every input byte must be accounted for in `out`, in order, as
    /// forwarded or skipped; bytes held back while undecided are skipped now and inserted back later.
    /// Returns how many replies to the filter's PINGs were completed (and stripped) in this call; each is also
    /// counted in `out` ([`Output::pongs`]), which keeps them when a protocol error ends the chunk.
    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError>;

    /// The upstream's stream ended (or the connection is being passed through after an error): give back
    /// any bytes held while undecided, so the client loses nothing.
    fn release_held(&mut self, out: &mut Output);

    /// Silence the upstream became entitled to through the commands completed since the last call, in
    /// total: a blocking command is answered only when its data arrives or its timeout runs out. Drained by
    /// the connection after every client chunk. Protocols without blocking commands: never.
    fn take_allowed_silence(&mut self) -> Option<Silence> {
        None
    }

    /// Whether a blocking command's reply is still owed, so that its silence still counts as allowed.
    fn silence_owed(&self) -> bool {
        false
    }

    /// Whether the next answer the upstream owes is the client's, to a request the server may take its time
    /// over (a Redis command): its silence is then judged on `reply_timeout`, not on unanswered PINGs. When a
    /// filter PING is queued first, it is answered first, and unanswered PINGs are evidence as usual.
    /// Protocols whose server never owes the client anything it must compute (NATS, framed): never.
    fn reply_owed(&self) -> bool {
        false
    }
}

/// What the client receives when `chunks` come from the upstream (held bytes given back at the end), and how
/// many replies to the filter's PINGs were stripped. Checks the trait's contract that every byte is accounted for.
#[cfg(test)]
pub(crate) fn client_view(protocol: &mut dyn Protocol, chunks: &[&[u8]]) -> (Vec<u8>, u32) {
    let mut seen = Vec::new();
    let mut answered = 0;
    let mut out = Output::new();
    for chunk in chunks {
        out.clear();
        answered += protocol.on_upstream_bytes(chunk, &mut out).unwrap();
        assert_eq!(out.accounted(), chunk.len());
        seen.extend(out.apply(chunk).unwrap_or_else(|| chunk.to_vec()));
    }
    out.clear();
    protocol.release_held(&mut out);
    seen.extend(out.apply(&[]).unwrap_or_default());
    (seen, answered)
}

/// Where each of `frames` ends in their concatenation: the positions at which a PING may go in.
#[cfg(test)]
pub(crate) fn frame_ends(frames: &[Vec<u8>]) -> Vec<usize> {
    frames
        .iter()
        .scan(0, |at, f| {
            *at += f.len();
            Some(*at)
        })
        .collect()
}
