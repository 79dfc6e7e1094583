//! Protocols: one trait, one folder per protocol (its `Protocol` impl, its frame reader, its pairing of the
//! filter's PINGs with their replies, its tests), built from the shared pieces in [`toolkit`].
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
pub mod mysql;
pub mod nats;
pub mod postgres;
pub mod redis;

mod output;
mod pong_owners;
pub mod registry;
mod silence;
#[doc(hidden)]
pub mod testing;
pub mod toolkit;

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
///   must receive instead, through `out`;
/// - `skip_client` / `skip_upstream` may stand in for them on the bytes the decoder says it would only count
///   (`client_skippable` / `upstream_skippable`): such bytes are counted, never looked at.
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

    /// How many of the client's next bytes the decoder would only count down (the rest of a body whose
    /// bytes cannot matter: not a possible PING, not a frame end), so a caller may skip them with
    /// [`Protocol::skip_client`] instead of reading them. Protocols that look at every byte: 0.
    fn client_skippable(&self) -> u64 {
        0
    }

    /// Counts up to `n` of the client's next bytes without looking at them, no more than
    /// [`Protocol::client_skippable`]: the decoder ends in the same state as if `on_client_bytes` had seen
    /// them. Returns how many were counted; the caller feeds the rest as usual.
    fn skip_client(&mut self, n: usize) -> usize {
        let _ = n;
        0
    }

    /// How many of the upstream's next bytes the decoder would only count down and forward (the rest of a
    /// body that is not withheld and cannot be a reply to the filter's PING), so a caller may skip them with
    /// [`Protocol::skip_upstream`]. Protocols that look at every byte: 0.
    fn upstream_skippable(&self) -> u64 {
        0
    }

    /// Counts up to `n` of the upstream's next bytes without looking at them, no more than
    /// [`Protocol::upstream_skippable`], describing them in `out` as forwarded: the same state and the same
    /// edits as `on_upstream_bytes` on them. Returns how many were counted; the caller feeds the rest.
    fn skip_upstream(&mut self, n: usize, out: &mut Output) -> usize {
        let _ = (n, out);
        0
    }
}

/// A count of skipped bytes, which never exceeds the `usize` asked for.
fn skipped(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// [`testing::client_view`] for unit tests, which fail on any error.
#[cfg(test)]
pub(crate) fn client_view(protocol: &mut dyn Protocol, chunks: &[&[u8]]) -> (Vec<u8>, u32) {
    testing::client_view(protocol, chunks).unwrap()
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

/// At every point of the client's stream `client` and the upstream's stream `upstream` (each fed to a fresh
/// decoder from `new`), skipping what the decoder says may be skipped leaves it exactly as feeding those bytes
/// would, and describes them to the client the same way. Returns how many bytes were skippable in all, on
/// each side, so that a test can check it tested something.
#[cfg(test)]
pub(crate) fn check_skipping<P: Protocol + fmt::Debug>(
    new: impl Fn() -> P,
    client: &[u8],
    upstream: &[u8],
) -> (u64, u64) {
    let mut total = (0, 0);
    for at in 0..client.len() {
        let (mut fed, mut skipped, mut greedy) = (new(), new(), new());
        for p in [&mut fed, &mut skipped, &mut greedy] {
            p.on_client_bytes(&client[..at]).unwrap();
        }
        let n = fed.client_skippable();
        let k = usize::try_from(n).unwrap().min(client.len() - at);
        total.0 += n;
        fed.on_client_bytes(&client[at..at + k]).unwrap();
        assert_eq!(skipped.skip_client(k), k, "client at {at}");
        assert_eq!(format!("{fed:?}"), format!("{skipped:?}"), "client at {at}");
        assert_eq!(greedy.skip_client(usize::MAX) as u64, n, "no more than skippable");
    }
    for at in 0..upstream.len() {
        let (mut fed, mut skipped) = (new(), new());
        let mut out = Output::new();
        for p in [&mut fed, &mut skipped] {
            p.on_upstream_bytes(&upstream[..at], &mut out).unwrap();
        }
        let n = fed.upstream_skippable();
        let k = usize::try_from(n).unwrap().min(upstream.len() - at);
        total.1 += n;
        let bytes = &upstream[at..at + k];
        let (mut fed_out, mut skipped_out) = (Output::new(), Output::new());
        fed.on_upstream_bytes(bytes, &mut fed_out).unwrap();
        assert_eq!(skipped.skip_upstream(k, &mut skipped_out), k, "upstream at {at}");
        assert_eq!(format!("{fed:?}"), format!("{skipped:?}"), "upstream at {at}");
        assert_eq!(fed_out.accounted(), skipped_out.accounted(), "upstream at {at}");
        assert_eq!(fed_out.apply(bytes), skipped_out.apply(bytes), "upstream at {at}");
    }
    total
}
