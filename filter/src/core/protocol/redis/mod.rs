//! Redis, RESP2.
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
//! command the client sends takes its place in a [`PongOwners`] queue and so does each PING the filter
//! injects; a reply goes to the front entry, and a filter-owned reply (`+PONG`, or an error such as
//! `-NOAUTH`) is stripped whole. The owner is known from the reply's first byte; the stripped bytes are held
//! until the reply ends, so that a fall-back to pass-through in the middle gives them back whole.
//!
//! Subscribe mode is different: once the client sent (P|S)SUBSCRIBE, the server also pushes messages at any
//! time, a (un)subscribe command gets one reply per channel, and a PING is answered with the array
//! `*2 pong <arg>`. From the SUBSCRIBE on, client commands go into a second queue of [`Pending`] entries
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

mod client;
mod number_line;
mod reply;
mod shape;
mod subscription;
mod word;

use super::{Defer, Output, Owner, PongOwners, Protocol, ProtocolError, Silence};
use client::{ClientState, Command};
use reply::{Held, Reply, ReplyState, Verdict};
use subscription::{Pending, Pool, SubQueue};

/// The filter's PING, as a multibulk command so that it parses the same in every Redis version and mode.
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// Longest inline command and longest `+ - :` or header line: Redis' PROTO_INLINE_MAX_SIZE.
const MAX_LINE: u32 = 64 * 1024;
/// Longest bulk string: Redis' default `proto-max-bulk-len`.
const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Most arguments in one multibulk command: Redis 7 accepts up to INT_MAX.
const MAX_ARGS: i64 = i32::MAX as i64;
/// Most elements per array level in a reply.
const MAX_ARRAY: i64 = 1024 * 1024;
/// Deepest nesting of arrays in a reply.
const MAX_DEPTH: usize = 16;
/// Longest first element of a push or subscription reply (`punsubscribe`, `sunsubscribe`).
const MAX_REPLY_NAME: usize = 12;
/// Bytes held back at most while deciding whether an array is a push: its header (`*1000000\r\n` at most)
/// and its first element up to a 12-byte name (`$12\r\n` and 14 bytes) or a header that rules a name out
/// (`$536870912\r\n`). Longer headers are invalid anyway, and an error.
const MAX_HELD: usize = 32;
/// Bytes of a reply to the filter's PING withheld at most before it ends (`+PONG`, the subscribe-mode pong
/// array, or an error line such as `-MISCONF ...`). A longer one is a protocol error: the connection is passed
/// through and the client gets it whole.
const MAX_STRIPPED: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum World {
    /// One reply per command, in order: [`PongOwners`].
    Normal,
    /// The client sent a SUBSCRIBE-family command: [`SubQueue`].
    Subscribe,
}

// ---------------------------------------------------------------------------------------------------
// The decoder.

/// The Redis (RESP2) view of one connection.
#[derive(Debug)]
pub struct Redis {
    // Client side.
    client: ClientState,
    command: Command,
    args_left: u64,
    transaction: bool,
    world: World,
    /// The client switched to RESP3 (`HELLO 3`): (un)subscriptions are confirmed by pushes.
    resp3: bool,

    // Who is owed the replies.
    owners: PongOwners,
    /// Silence earned by blocking commands since the connection last asked (`take_allowed_silence`).
    silence_earned: Option<Silence>,
    /// Replies still to come, counted from the front of `owners`, up to that of the last blocking command.
    silence_through: u64,
    sub: SubQueue,
    /// Subscriptions as last reported by the server.
    channels: i64,
    patterns: i64,
    shards: i64,
    /// Never inject again on this connection (see `apply_count`).
    given_up: bool,
    /// Given up and nothing owed to the filter: upstream bytes are forwarded without parsing.
    blind: bool,
    failed: Option<ProtocolError>,

    // Server side.
    state: ReplyState,
    open: [u32; MAX_DEPTH],
    depth: usize,
    reply: Option<Reply>,
    held: Held,
}

impl Default for Redis {
    fn default() -> Self {
        Self::new()
    }
}

impl Redis {
    pub fn new() -> Self {
        Redis {
            client: ClientState::Boundary,
            command: Command::new(),
            args_left: 0,
            transaction: false,
            world: World::Normal,
            resp3: false,
            owners: PongOwners::new(),
            silence_earned: None,
            silence_through: 0,
            sub: SubQueue::default(),
            channels: 0,
            patterns: 0,
            shards: 0,
            given_up: false,
            blind: false,
            failed: None,
            state: ReplyState::Type,
            open: [0; MAX_DEPTH],
            depth: 0,
            reply: None,
            held: Held::default(),
        }
    }

    fn server_subscribed(&self) -> bool {
        self.channels > 0 || self.patterns > 0 || self.shards > 0
    }

    fn pool(&self, pool: Pool) -> i64 {
        match pool {
            Pool::Channels => self.channels,
            Pool::Patterns => self.patterns,
            Pool::Shards => self.shards,
        }
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.failed = Some(error.clone());
        error
    }
}

impl Protocol for Redis {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.blind {
            return Ok(());
        }
        let mut at = 0usize;
        while let Some(rest) = data.get(at..).filter(|rest| !rest.is_empty()) {
            match self.client_step(rest) {
                Ok(n) => at += n,
                Err(reason) => return Err(self.fail(ProtocolError::client(reason))),
            }
        }
        Ok(())
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if !matches!(self.client, ClientState::Boundary) {
            return Err(Defer::MidFrame);
        }
        if self.failed.is_some() || self.given_up {
            return Err(Defer::Mode);
        }
        match self.world {
            World::Normal if self.transaction => Err(Defer::Transaction),
            World::Normal if !self.owners.is_empty() => Err(Defer::RepliesOutstanding),
            World::Normal => Ok(()),
            World::Subscribe if !self.server_subscribed() || self.sub.leaving > 0 => Err(Defer::Mode),
            World::Subscribe if !self.owners.is_empty() => Err(Defer::RepliesOutstanding),
            World::Subscribe => Ok(()),
        }
    }

    fn ping(&self) -> &[u8] {
        PING
    }

    fn on_ping_injected(&mut self) {
        match self.world {
            World::Normal => self.owners.push(Owner::Filter),
            World::Subscribe => self.sub.push(Pending::Ping { owner: Owner::Filter, n: 1 }),
        }
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        if let Some(error) = &self.failed {
            out.forward(data.len());
            return Err(error.clone());
        }
        let before = out.pongs();
        match self.upstream_feed(data, out) {
            Ok(()) => Ok(out.pongs() - before),
            Err(reason) => Err(self.fail(ProtocolError::upstream(reason))),
        }
    }

    fn release_held(&mut self, out: &mut Output) {
        out.insert(self.held.as_slice());
        self.held.clear();
        if let Some(reply) = self.reply.as_mut() {
            reply.verdict = Verdict::Forward;
        }
    }

    fn take_allowed_silence(&mut self) -> Option<Silence> {
        self.silence_earned.take()
    }

    fn silence_owed(&self) -> bool {
        self.silence_through > 0
    }

    fn reply_owed(&self) -> bool {
        match self.owners.front() {
            Some(owner) => owner == Owner::Client,
            None => self.sub.client_first(),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod blocking_tests;

#[cfg(test)]
mod resp3_tests;
