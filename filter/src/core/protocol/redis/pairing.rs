//! Who owns each reply. Redis answers in order, one reply per command: in normal mode each command the client
//! sends and each PING the filter injects takes its place in a [`PongOwners`] queue; in subscribe mode, in the
//! [`Subscriptions`] queue, which knows how many replies each command gets and lets pushes pass. A reply to
//! the filter is withheld until it ends and then dropped; a reply whose owner is not known yet is held back.

use super::client::Command;
use super::kinds::{Class, Kind, Turn};
use super::limits::{MAX_HELD, MAX_STRIPPED};
use super::shape::Shape;
use super::subscription::{Pending, Subscriptions};
use crate::core::protocol::{Defer, Output, Owner, PongOwners, Silence};

/// What the client receives of the reply being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Forward,
    Strip,
    /// Not known yet: skipped now, given back or dropped once known.
    Hold,
}

/// The top-level reply being read, as the pairing sees it.
#[derive(Clone, Copy, Debug)]
struct Reply {
    verdict: Verdict,
    /// Its owner was taken from a queue already.
    settled: bool,
    /// It answers a filter PING (counted when it ends).
    filter: bool,
    /// Subscribe mode, and nothing was owed when it began: a push, or unsolicited.
    unowed: bool,
}

/// Bytes withheld from the client while the reply they belong to is not finished: a reply whose owner is
/// not known yet (given back or dropped once it is), or a reply to a filter PING (dropped when it ends). If
/// the connection falls back to pass-through before the reply ends, they are given back, so that the client
/// receives whole replies or nothing of the filter's, however the stream was cut.
#[derive(Debug, Default)]
struct Withheld {
    bytes: Vec<u8>,
}

impl Withheld {
    /// Keeps `bytes` of a reply that is stripped (`strip`) or held.
    fn extend(&mut self, bytes: &[u8], strip: bool) -> Result<(), &'static str> {
        let (limit, too_long) = if strip {
            (MAX_STRIPPED, "reply to the filter's PING too long")
        } else {
            (MAX_HELD, "reply header too long")
        };
        if self.bytes.len().saturating_add(bytes.len()) > limit {
            return Err(too_long);
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    /// Gives the bytes back to the client.
    fn release(&mut self, out: &mut Output) {
        out.insert(&self.bytes);
        self.bytes.clear();
    }

    /// Drops the bytes (keeps the few bytes of capacity: the next filter reply reuses them).
    fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// Who is owed the replies, and what the client gets of the current one. Which queue pairs them
/// (`subscribed`) is the watch state's to say.
#[derive(Debug, Default)]
pub(super) struct Pairing {
    /// Normal mode, and the replies owed from before the SUBSCRIBE.
    owners: PongOwners,
    /// Subscribe mode.
    subs: Subscriptions,
    /// Inside MULTI.
    transaction: bool,
    /// The client switched to RESP3 (`HELLO 3`): (un)subscriptions are confirmed by pushes.
    resp3: bool,
    /// Silence earned by blocking commands since the connection last asked (`take_allowed_silence`).
    silence_earned: Option<Silence>,
    /// Replies still to come, counted from the front of `owners`, up to that of the last blocking command.
    silence_through: u64,
    reply: Option<Reply>,
    withheld: Withheld,
}

impl Pairing {
    // ----- commands -----

    /// A whole command was read: who is owed what for it.
    pub(super) fn on_command(&mut self, command: &Command, subscribed: bool) -> Result<Turn, &'static str> {
        let (name, arg1, args) = (command.name(), command.arg1(), command.args());
        if name.is(b"MONITOR") {
            return Err("MONITOR not supported");
        }
        if name.is(b"SYNC") || name.is(b"PSYNC") {
            return Err("replication stream not supported");
        }
        if name.is(b"HELLO") && args >= 1 {
            // The reply to HELLO itself already comes in the new protocol; any other version is refused by the
            // server (-NOPROTO) and changes nothing.
            if arg1.is(b"3") {
                self.resp3 = true;
            } else if arg1.is(b"2") {
                self.resp3 = false;
            }
        }
        if name.is(b"RESET") {
            self.resp3 = false;
        }
        if name.is(b"CLIENT") && arg1.is(b"REPLY") {
            return Err("CLIENT REPLY not supported");
        }
        let kind = Kind::of(name);
        let args32 = u32::try_from(args).unwrap_or(u32::MAX);
        if subscribed {
            let entry = match kind {
                _ if name.is(b"PING") && args <= 1 => Pending::Ping { owner: Owner::Client, n: 1 },
                Some(kind) if args >= 1 => Pending::Subscription { kind, total: args32, left: args32 },
                Some(kind) if kind.is_unsubscribe() => Pending::UnsubscribeAll { kind },
                _ => Pending::Other(1),
            };
            self.subs.push(entry);
            // RESET leaves subscribe mode without any unsubscribe reply.
            return Ok(if name.is(b"RESET") { Turn::Retire } else { Turn::Stay });
        }
        if self.resp3 && kind.is_some() {
            // RESP3 confirms (un)subscriptions with push frames, which take no place, but a refused one (wrong
            // arguments, -NOPERM) gets an ordinary reply that does: its replies cannot be counted. Stop
            // injecting; what is owed to the filter is still stripped (it comes first).
            return Ok(Turn::Retire);
        }
        let mut turn = Turn::Stay;
        match kind {
            Some(kind) if !kind.is_unsubscribe() && args >= 1 => {
                if self.transaction {
                    return Err("SUBSCRIBE inside MULTI not supported");
                }
                // Replies owed so far stay in `owners` and come first; from here on, `subs`.
                turn = Turn::Subscribe;
                self.subs.push(Pending::Subscription { kind, total: args32, left: args32 });
            }
            // Not subscribed: one `*3 unsubscribe <ch> 0` per argument, or one with a nil channel.
            Some(kind) if kind.is_unsubscribe() && !self.transaction => {
                for _ in 0..args.max(1) {
                    self.owners.push(Owner::Client);
                }
            }
            _ => self.owners.push(Owner::Client),
        }
        // Inside MULTI a blocking command does not block; outside, its reply may be silent that long.
        if let (Some(silence), false) = (command.timeout(), self.transaction) {
            self.silence_earned = Some(self.silence_earned.map_or(silence, |s| s.then(silence)));
            self.silence_through = self.owners.total();
        }
        if name.is(b"MULTI") {
            self.transaction = true;
        } else if name.is(b"EXEC") || name.is(b"DISCARD") || name.is(b"RESET") {
            self.transaction = false;
        }
        Ok(turn)
    }

    /// Whether the filter's PING may go in now, as far as the replies owed say (the client is at a frame
    /// boundary, and the filter still injects).
    pub(super) fn can_inject(&self, subscribed: bool) -> Result<(), Defer> {
        if !subscribed && self.transaction {
            return Err(Defer::Transaction);
        }
        if subscribed && (!self.subs.server_subscribed() || self.subs.leaving()) {
            return Err(Defer::Mode);
        }
        if !self.owners.is_empty() {
            return Err(Defer::RepliesOutstanding);
        }
        Ok(())
    }

    /// The filter's PING was sent: its reply is owed after all those owed so far.
    pub(super) fn on_ping_injected(&mut self, subscribed: bool) {
        if subscribed {
            self.subs.push(Pending::Ping { owner: Owner::Filter, n: 1 });
        } else {
            self.owners.push(Owner::Filter);
        }
    }

    /// No reply to a filter PING is owed.
    pub(super) fn nothing_owed_to_filter(&self) -> bool {
        self.owners.filter_owed() == 0 && self.subs.filter_owed() == 0
    }

    /// Nothing will be paired in subscribe mode again.
    pub(super) fn forget_subscriptions(&mut self) {
        self.subs.clear_queue();
    }

    pub(super) fn take_allowed_silence(&mut self) -> Option<Silence> {
        self.silence_earned.take()
    }

    pub(super) fn silence_owed(&self) -> bool {
        self.silence_through > 0
    }

    pub(super) fn reply_owed(&self) -> bool {
        match self.owners.front() {
            Some(owner) => owner == Owner::Client,
            None => self.subs.client_first(),
        }
    }

    /// Replies owed in normal mode (client and filter).
    #[cfg(test)]
    pub(super) fn owed_in_order(&self) -> u64 {
        self.owners.total()
    }

    /// Channels and patterns, as the server last reported them.
    #[cfg(test)]
    pub(super) fn subscription_counts(&self) -> (i64, i64) {
        self.subs.counts()
    }

    // ----- replies -----

    /// A top-level reply begins with type byte `t`: whose is it, and what does the client get of it?
    pub(super) fn begin_reply(&mut self, t: u8, subscribed: bool) -> Result<Turn, &'static str> {
        let mut reply = Reply { verdict: Verdict::Forward, settled: true, filter: false, unowed: false };
        let mut turn = Turn::Stay;
        if t == b'>' {
            // A RESP3 push: out of band, nobody's reply.
        } else if !self.owners.is_empty() {
            self.silence_through = self.silence_through.saturating_sub(1);
            if self.owners.pop() == Some(Owner::Filter) {
                reply.verdict = Verdict::Strip;
                reply.filter = true;
            }
        } else if subscribed {
            reply.settled = false;
            reply.unowed = self.subs.nothing_owed();
            if self.subs.front_is_filter_ping() {
                if t == b'*' {
                    // A push or the pong array: its first element tells.
                    reply.verdict = Verdict::Hold;
                } else {
                    reply.settled = true;
                    let (owner, retire) = self.subs.attribute_other()?;
                    turn = retire;
                    reply.filter = owner == Some(Owner::Filter);
                    reply.verdict = if reply.filter { Verdict::Strip } else { Verdict::Forward };
                }
            }
        }
        self.reply = Some(reply);
        Ok(turn)
    }

    /// The current reply reaches the client as it is read: nothing of it is withheld.
    pub(super) fn forwarding(&self) -> bool {
        matches!(self.reply, Some(Reply { verdict: Verdict::Forward, .. }))
    }

    /// What the client gets of `span`, the bytes just read of the current reply. Withheld bytes are kept
    /// before they are accounted as skipped: if they cannot be kept, the error leaves them unaccounted and the
    /// connection forwards them.
    pub(super) fn emit(&mut self, span: &[u8], out: &mut Output) -> Result<(), &'static str> {
        match self.reply.map(|reply| reply.verdict) {
            Some(verdict @ (Verdict::Strip | Verdict::Hold)) => {
                self.withheld.extend(span, verdict == Verdict::Strip)?;
                out.skip(span.len());
            }
            Some(Verdict::Forward) | None => out.forward(span.len()),
        }
        Ok(())
    }

    /// More of the current reply was read: once a held reply's `shape` tells its owner, decide.
    pub(super) fn on_progress(&mut self, shape: &Shape, out: &mut Output) -> Result<Turn, &'static str> {
        match self.reply {
            Some(mut reply) if reply.verdict == Verdict::Hold && shape.known() => {
                self.reply = None;
                let turn = self.decide(&mut reply, shape, out)?;
                self.reply = Some(reply);
                Ok(turn)
            }
            _ => Ok(Turn::Stay),
        }
    }

    /// A held reply's shape is known: give its bytes back (a push or subscription reply), or keep them
    /// (the start of the answer to the filter PING at the front).
    fn decide(&mut self, reply: &mut Reply, shape: &Shape, out: &mut Output) -> Result<Turn, &'static str> {
        let mut turn = Turn::Stay;
        if let Class::Other = shape.class() {
            reply.settled = true;
            let (owner, retire) = self.subs.attribute_other()?;
            turn = retire;
            if owner == Some(Owner::Filter) {
                // The held bytes are the start of the filter's reply: kept until it ends.
                reply.filter = true;
                reply.verdict = Verdict::Strip;
                return Ok(turn);
            }
        }
        self.withheld.release(out);
        reply.verdict = Verdict::Forward;
        Ok(turn)
    }

    /// The top-level reply ended, looking like `shape`; returns whether it answered a filter PING.
    pub(super) fn end_reply(&mut self, shape: &Shape, out: &mut Output) -> Result<(bool, Turn), &'static str> {
        let Some(mut reply) = self.reply.take() else {
            return Ok((false, Turn::Stay));
        };
        let mut turn = Turn::Stay;
        if reply.verdict == Verdict::Hold {
            turn = self.decide(&mut reply, shape, out)?;
        }
        if reply.verdict == Verdict::Strip {
            self.withheld.clear();
        }
        if !reply.settled {
            let class = shape.class();
            let settled = if reply.unowed { self.subs.settle_unowed(class)? } else { self.subs.settle(class)? };
            turn = turn.or(settled);
        }
        Ok((reply.filter, turn))
    }

    /// Give back whatever is withheld; the rest of the current reply is forwarded.
    pub(super) fn release_held(&mut self, out: &mut Output) {
        self.withheld.release(out);
        if let Some(reply) = self.reply.as_mut() {
            reply.verdict = Verdict::Forward;
        }
    }
}
