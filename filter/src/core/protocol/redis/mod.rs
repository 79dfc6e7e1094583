//! Redis, RESP2 and RESP3.
//!
//! Client side: multibulk commands (`*N\r\n$len\r\n<bytes>\r\n...`) and inline commands (a line ending in
//! `\n`), parsed the way Redis' `processMultibulkBuffer` / `processInlineBuffer` do. Only the command name,
//! its first argument and a blocking command's timeout are kept (a few upper-cased bytes each, in fixed
//! arrays); argument bodies are skipped by counting down, as Envoy's `redis_proxy` codec does, never buffered.
//!
//! Server side: every RESP2 and RESP3 reply type, nested arrays tracked with a small stack of element counts still
//! to come; bulk bodies skipped by counting down.
//!
//! Pairing replies with requests. Redis answers in order, one reply per command, so in normal mode each
//! command the client sends takes its place in a [`PongOwners`](super::PongOwners) queue and so does each PING the filter
//! injects; a reply goes to the front entry, and a filter-owned reply (`+PONG`, or an error such as
//! `-NOAUTH`) is stripped whole. The owner is known from the reply's first byte; the stripped bytes are held
//! until the reply ends, so that a fall-back to pass-through in the middle gives them back whole.
//!
//! Subscribe mode is different: once the client sent (P|S)SUBSCRIBE, the server also pushes messages at any
//! time, a (un)subscribe command gets one reply per channel, and a PING is answered with the array
//! `*2 pong <arg>`. From the SUBSCRIBE on, client commands go into a second queue of `Pending` entries
//! that knows how many replies each one gets; pushes (`message`, `pmessage`, `smessage`) are recognised
//! by shape and pass without taking a place. Subscription counts reported by the server are followed per
//! kind (channels, patterns, shard channels), which is what says how many replies an argument-less
//! UNSUBSCRIBE gets. A reply whose owner depends on whether it is a push (an array, while a filter PING is
//! at the front) is held back (a few bytes, at most up to its first element) until that is known.
//!
//! Injection is allowed only at a client frame boundary, outside MULTI, with no reply owed in normal mode,
//! and in subscribe mode once the server confirmed it, while no UNSUBSCRIBE-family command is on its way.
//! Blocking commands (BLPOP and kin, XREAD BLOCK, WAIT) are answered only when data arrives or their timeout
//! runs out: their timeout argument is read (a few bytes) and reported as [`Silence`] the server is entitled
//! to while their reply is owed.
//!
//! RESP3 (after `HELLO 3`): the server-side decoder reads every RESP3 type (null, double, boolean, big number,
//! blob error, verbatim string, map, set, push). A push frame (`>`: pub/sub messages, client-side caching
//! invalidations) is out of band: it takes no place among the replies and is forwarded. Attributes (`|`, which
//! Redis does not send) are an error. A RESP3 (un)subscription is confirmed by pushes only when it succeeds, so
//! from the first one on the filter stops injecting on that connection.
//!
//! Commands whose replies cannot be counted (MONITOR, CLIENT REPLY, SYNC / PSYNC, SUBSCRIBE inside MULTI)
//! are a [`ProtocolError`]: the connection is passed through from then on.
//!
//! The parts, each owning its state: `client.rs` reads commands (`ClientReader`, a toolkit `Reader`),
//! `reply.rs` reads replies and their shape (`ReplyReader`, `shape.rs`), `pairing.rs` says who owns each
//! reply and what the client gets of it (`Pairing`, with `subscription.rs` for subscribe mode), and this
//! file composes them under one watch state (`Watch`), where every change of state is made.

mod client;
mod kinds;
mod limits;
mod number_line;
mod pairing;
mod reply;
mod shape;
mod subscription;
mod word;

use super::toolkit::{Driver, Reader};
use super::{skipped, Defer, Output, Protocol, ProtocolError, Side, Silence};
use client::ClientReader;
use kinds::Turn;
use pairing::Pairing;
use reply::ReplyReader;

/// The filter's PING, as a multibulk command so that it parses the same in every Redis version and mode.
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// What the filter does on a connection. Every change of state is in `impl Watch`:
///
/// ```text
/// Normal --SUBSCRIBE (RESP2)--> Subscribed
/// Normal, Subscribed --retire--> Retiring { subscribed } --SUBSCRIBE (RESP2)--> Retiring { subscribed: true }
/// Retiring --nothing owed to the filter, at a reply's end--> Blind
/// any --protocol error, either direction--> PassThrough
/// ```
///
/// Retiring is asked for by the pairing when reply counting can no longer be trusted: a RESP3
/// (un)subscription, RESET in subscribe mode, a SUBSCRIBE refused before the server entered subscribe mode,
/// the last subscription gone, or counts out of step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Watch {
    /// Normal mode: one reply per command, in order. Injects at a client frame boundary, outside MULTI, when
    /// no reply is owed.
    Normal,
    /// RESP2 subscribe mode: replies are paired by the subscription queue; pushes pass. Injects once the
    /// server confirmed a subscription, while no UNSUBSCRIBE-family command is on its way and no reply from
    /// before the SUBSCRIBE is owed.
    Subscribed,
    /// Never injects again, but replies to the filter's PINGs already sent are owed: both streams are still
    /// followed, paired as before (`subscribed`: by the subscription queue), so that those are stripped.
    Retiring { subscribed: bool },
    /// Retired with nothing owed to the filter: client bytes are not read, upstream bytes are forwarded
    /// without parsing.
    Blind,
    /// A protocol error in either direction: never injects, forwards both directions untouched (held bytes
    /// are given back), and every call returns this error.
    PassThrough(ProtocolError),
}

impl Watch {
    /// Replies are paired by the subscription queue.
    fn subscribed(&self) -> bool {
        matches!(self, Watch::Subscribed | Watch::Retiring { subscribed: true })
    }

    /// Both streams are parsed (not blind, not passed through).
    fn parsing(&self) -> bool {
        matches!(self, Watch::Normal | Watch::Subscribed | Watch::Retiring { .. })
    }

    /// A command or a reply asked for `turn`.
    fn apply(&mut self, turn: Turn) {
        *self = match (&*self, turn) {
            (Watch::Normal, Turn::Subscribe) => Watch::Subscribed,
            (Watch::Retiring { .. }, Turn::Subscribe) => Watch::Retiring { subscribed: true },
            (Watch::Normal | Watch::Subscribed | Watch::Retiring { .. }, Turn::Retire) => {
                Watch::Retiring { subscribed: self.subscribed() }
            }
            _ => return,
        };
    }

    /// A reply ended with nothing owed to the filter (`drained`): a retiring connection goes blind. Returns
    /// whether it did.
    fn reply_ended(&mut self, drained: bool) -> bool {
        let blind = drained && matches!(self, Watch::Retiring { .. });
        if blind {
            *self = Watch::Blind;
        }
        blind
    }

    /// A protocol error: passed through from now on. Returns the error the connection is passed through for
    /// (the first one).
    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        match self {
            Watch::PassThrough(first) => first.clone(),
            _ => {
                *self = Watch::PassThrough(error.clone());
                error
            }
        }
    }
}

/// The Redis (RESP2 and RESP3) view of one connection: the client's commands, the server's replies, who owns
/// each reply, and what the filter does (`Watch`).
#[derive(Debug)]
pub struct Redis {
    client: Driver<ClientReader>,
    replies: ReplyReader,
    pairing: Pairing,
    watch: Watch,
}

impl Default for Redis {
    fn default() -> Self {
        Self::new()
    }
}

impl Redis {
    pub fn new() -> Self {
        Redis {
            client: Driver::new(Side::Client, ClientReader::default()),
            replies: ReplyReader::default(),
            pairing: Pairing::default(),
            watch: Watch::Normal,
        }
    }

    /// Follows `data`; replies to the filter's PINGs completed are counted in `out`.
    fn upstream_feed(&mut self, data: &[u8], out: &mut Output) -> Result<(), &'static str> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.watch == Watch::Blind {
                out.forward(rest.len());
                break;
            }
            if self.replies.at_boundary() {
                let Some(&t) = rest.first() else { break };
                let turn = self.pairing.begin_reply(t, self.watch.subscribed())?;
                self.watch.apply(turn);
            }
            let (used, ended) = self.replies.step(rest)?;
            let (span, after) = rest.split_at_checked(used).unwrap_or((rest, &[]));
            self.pairing.emit(span, out)?;
            rest = after;
            if ended {
                let (filter, turn) = self.pairing.end_reply(self.replies.shape(), out)?;
                self.watch.apply(turn);
                if self.watch.reply_ended(self.pairing.nothing_owed_to_filter()) {
                    // Nothing left to strip and nothing will be injected again: stop parsing.
                    self.pairing.forget_subscriptions();
                }
                if filter {
                    out.pong_answered();
                }
            } else {
                let turn = self.pairing.on_progress(self.replies.shape(), out)?;
                self.watch.apply(turn);
            }
        }
        Ok(())
    }
}

impl Protocol for Redis {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        match &self.watch {
            Watch::PassThrough(error) => return Err(error.clone()),
            Watch::Blind => return Ok(()),
            _ => {}
        }
        let Redis { client, pairing, watch, .. } = self;
        let fed = client.feed(data, |_, command| {
            if let Some(command) = command {
                let turn = pairing.on_command(&command, watch.subscribed())?;
                watch.apply(turn);
            }
            Ok(())
        });
        fed.map_err(|error| self.watch.fail(error))
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if !self.client.reader().at_boundary() {
            return Err(Defer::MidFrame);
        }
        match self.watch {
            Watch::Normal => self.pairing.can_inject(false),
            Watch::Subscribed => self.pairing.can_inject(true),
            Watch::Retiring { .. } | Watch::Blind | Watch::PassThrough(_) => Err(Defer::Mode),
        }
    }

    fn ping(&self) -> &[u8] {
        PING
    }

    fn on_ping_injected(&mut self) {
        // Only ever after `can_inject` said yes, so while Normal or Subscribed; a blind or passed-through
        // connection pairs nothing.
        if self.watch.parsing() {
            self.pairing.on_ping_injected(self.watch.subscribed());
        }
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        if let Watch::PassThrough(error) = &self.watch {
            out.forward(data.len());
            return Err(error.clone());
        }
        let before = out.pongs();
        match self.upstream_feed(data, out) {
            Ok(()) => Ok(out.pongs().saturating_sub(before)),
            Err(reason) => Err(self.watch.fail(ProtocolError::upstream(reason))),
        }
    }

    fn release_held(&mut self, out: &mut Output) {
        self.pairing.release_held(out);
    }

    fn take_allowed_silence(&mut self) -> Option<Silence> {
        self.pairing.take_allowed_silence()
    }

    fn silence_owed(&self) -> bool {
        self.pairing.silence_owed()
    }

    fn reply_owed(&self) -> bool {
        self.pairing.reply_owed()
    }

    /// The rest of an argument nothing looks at (not the name, not the first argument, not an argument of a
    /// command that keeps a timeout).
    fn client_skippable(&self) -> u64 {
        if self.watch.parsing() {
            self.client.skippable()
        } else {
            0
        }
    }

    fn skip_client(&mut self, n: usize) -> usize {
        if !self.watch.parsing() {
            return 0;
        }
        skipped(self.client.skip(u64::try_from(n).unwrap_or(u64::MAX)))
    }

    /// The rest of a bulk string of a forwarded reply that its shape does not read (anything but a possible
    /// push or subscription reply's name).
    fn upstream_skippable(&self) -> u64 {
        if self.watch.parsing() && self.pairing.forwarding() {
            self.replies.skippable()
        } else {
            0
        }
    }

    fn skip_upstream(&mut self, n: usize, out: &mut Output) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).min(self.upstream_skippable());
        let n = skipped(self.replies.skip(n));
        out.forward(n);
        n
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod blocking_tests;

#[cfg(test)]
mod resp3_tests;

#[cfg(test)]
mod skip_tests;
