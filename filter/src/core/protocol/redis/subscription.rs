//! Subscribe mode: the queue of what each command sent since the SUBSCRIBE is owed, the subscription counts
//! the server reported, and the bookkeeping that pairs replies with the queue and follows the counts.

use std::collections::VecDeque;

use super::kinds::{Class, Kind, Pool, Turn};
use crate::core::protocol::Owner;

/// What one command (or a run of them) sent in subscribe mode is owed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pending {
    /// PINGs, one reply each: a pong array (`+PONG` once the server left subscribe mode), or an error.
    Ping { owner: Owner, n: u32 },
    /// Other commands, one reply each: QUIT's `+OK`, RESET's `+RESET`, or the error for a command that
    /// subscribe mode does not allow.
    Other(u32),
    /// A (un)subscribe command with arguments: one reply of its kind per argument, or one error.
    Subscription { kind: Kind, total: u32, left: u32 },
    /// (P|S)UNSUBSCRIBE without arguments: one reply per subscription of its pool when it runs (one with a
    /// nil channel when there is none), or one error. Becomes a `Subscription` at its first reply.
    UnsubscribeAll { kind: Kind },
}

impl Pending {
    fn is_leaving(&self) -> bool {
        match self {
            Pending::Subscription { kind, .. } | Pending::UnsubscribeAll { kind } => kind.is_unsubscribe(),
            _ => false,
        }
    }
}

/// Subscribe-mode pairing: entries in order (runs of PINGs of one owner and of other commands are merged),
/// and the subscriptions as last reported by the server.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    entries: VecDeque<Pending>,
    /// Filter PINGs not answered yet.
    filter_owed: u32,
    /// UNSUBSCRIBE-family commands not fully answered yet.
    leaving: u32,
    channels: i64,
    patterns: i64,
    shards: i64,
}

impl Subscriptions {
    /// One more command (or filter PING) owed replies, after all those owed so far.
    pub(super) fn push(&mut self, entry: Pending) {
        if entry.is_leaving() {
            self.leaving = self.leaving.saturating_add(1);
        }
        if let Pending::Ping { owner: Owner::Filter, n } = entry {
            self.filter_owed = self.filter_owed.saturating_add(n);
        }
        match (self.entries.back_mut(), entry) {
            (Some(Pending::Ping { owner, n }), Pending::Ping { owner: new, n: 1 })
                if *owner == new && *n < u32::MAX =>
            {
                *n += 1
            }
            (Some(Pending::Other(n)), Pending::Other(1)) if *n < u32::MAX => *n += 1,
            _ => self.entries.push_back(entry),
        }
    }

    fn pop_front(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            if entry.is_leaving() {
                self.leaving = self.leaving.saturating_sub(1);
            }
        }
    }

    /// Nothing is owed: a reply now is a push, or unsolicited.
    pub(super) fn nothing_owed(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the next reply owed is the client's.
    pub(super) fn client_first(&self) -> bool {
        self.entries.front().is_some_and(|entry| !matches!(entry, Pending::Ping { owner: Owner::Filter, .. }))
    }

    pub(super) fn front_is_filter_ping(&self) -> bool {
        matches!(self.entries.front(), Some(Pending::Ping { owner: Owner::Filter, .. }))
    }

    /// Filter PINGs not answered yet.
    pub(super) fn filter_owed(&self) -> u32 {
        self.filter_owed
    }

    /// An UNSUBSCRIBE-family command is on its way: the server may leave subscribe mode.
    pub(super) fn leaving(&self) -> bool {
        self.leaving > 0
    }

    /// The server confirmed at least one subscription still in place.
    pub(super) fn server_subscribed(&self) -> bool {
        self.channels > 0 || self.patterns > 0 || self.shards > 0
    }

    /// Forget the queue (nothing will be paired again); the counts stay.
    pub(super) fn clear_queue(&mut self) {
        self.entries = VecDeque::new();
        self.filter_owed = 0;
        self.leaving = 0;
    }

    /// Channels and patterns, as last reported.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (i64, i64) {
        (self.channels, self.patterns)
    }

    fn pool(&self, pool: Pool) -> i64 {
        match pool {
            Pool::Channels => self.channels,
            Pool::Patterns => self.patterns,
            Pool::Shards => self.shards,
        }
    }

    /// A reply of `class` that began while something was owed takes its place.
    pub(super) fn settle(&mut self, class: Class) -> Result<Turn, &'static str> {
        match class {
            Class::Push => Ok(Turn::Stay),
            Class::Subscription(kind, Some(count)) => {
                self.attribute_subscription(kind)?;
                Ok(self.apply_count(kind, count))
            }
            Class::Subscription(_, None) | Class::Other => self.attribute_other().map(|(_, turn)| turn),
        }
    }

    /// A reply of `class` that began while nothing was owed.
    pub(super) fn settle_unowed(&mut self, class: Class) -> Result<Turn, &'static str> {
        match class {
            // A shard channel's slot moved away: the server unsubscribes the client by itself.
            Class::Subscription(Kind::Sunsubscribe, Some(count)) => Ok(self.apply_count(Kind::Sunsubscribe, count)),
            Class::Subscription(..) => Err("subscription reply nobody asked for"),
            Class::Push | Class::Other => Ok(Turn::Stay),
        }
    }

    /// A subscription reply of `kind`: one of the replies owed to the (un)subscribe command at the front.
    fn attribute_subscription(&mut self, kind: Kind) -> Result<(), &'static str> {
        // How many replies an argument-less unsubscribe gets, if it is the one running now.
        let all = u32::try_from(self.pool(kind.pool()).max(1)).unwrap_or(u32::MAX);
        loop {
            match self.entries.front_mut() {
                Some(entry @ Pending::UnsubscribeAll { .. }) if *entry == (Pending::UnsubscribeAll { kind }) => {
                    *entry = Pending::Subscription { kind, total: all, left: all };
                }
                Some(Pending::Subscription { kind: front, left, .. }) if *front == kind => {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        self.pop_front();
                    }
                    return Ok(());
                }
                _ if kind == Kind::Sunsubscribe => return Ok(()),
                _ => return Err("subscription reply out of step"),
            }
        }
    }

    /// A reply that is neither a push nor a subscription reply answers the front entry whole: whose it is
    /// (`None`: nobody's), and whether injection must stop for good.
    pub(super) fn attribute_other(&mut self) -> Result<(Option<Owner>, Turn), &'static str> {
        let subscribed = self.server_subscribed();
        let Some(front) = self.entries.front_mut() else {
            return Ok((None, Turn::Stay));
        };
        let mut turn = Turn::Stay;
        let (owner, done) = match front {
            Pending::Ping { owner, n } => {
                *n = n.saturating_sub(1);
                (*owner, *n == 0)
            }
            Pending::Other(n) => {
                *n = n.saturating_sub(1);
                (Owner::Client, *n == 0)
            }
            // An error before any subscription reply: the command failed whole.
            Pending::Subscription { kind, total, left } if *total == *left => {
                if !kind.is_unsubscribe() && !subscribed {
                    // The server never entered subscribe mode (say -NOPERM for a channel): stop for good.
                    turn = Turn::Retire;
                }
                (Owner::Client, true)
            }
            Pending::Subscription { .. } => return Err("reply out of step with a subscription's replies"),
            Pending::UnsubscribeAll { .. } => (Owner::Client, true),
        };
        if done {
            self.pop_front();
        }
        if owner == Owner::Filter {
            self.filter_owed = self.filter_owed.saturating_sub(1);
        }
        Ok((Some(owner), turn))
    }

    /// A subscription reply reported `count`: channels + patterns for the classic kinds, shard channels
    /// for the shard kinds. The change tells which pool moved.
    ///
    /// When an unsubscribe reply shows no subscription left, the server is back in normal mode. The
    /// commands sent since the SUBSCRIBE were queued for subscribe-mode replies and the decoder cannot be
    /// sure of reply counting from here, so it stops injecting for good on this connection (`Defer::Mode`
    /// forever), while it keeps parsing until every filter PING already sent is answered and stripped.
    fn apply_count(&mut self, kind: Kind, count: i64) -> Turn {
        let consistent = match kind.pool() {
            Pool::Shards => {
                self.shards = count;
                count >= 0
            }
            pool => {
                let delta = count.checked_sub(self.channels.saturating_add(self.patterns));
                let expected = if kind.is_unsubscribe() { -1..=0 } else { 0..=1 };
                match delta.filter(|delta| expected.contains(delta)) {
                    Some(delta) if pool == Pool::Channels => {
                        self.channels = self.channels.saturating_add(delta);
                        self.channels >= 0
                    }
                    Some(delta) => {
                        self.patterns = self.patterns.saturating_add(delta);
                        self.patterns >= 0
                    }
                    None => false,
                }
            }
        };
        if !consistent || (kind.is_unsubscribe() && !self.server_subscribed()) {
            Turn::Retire
        } else {
            Turn::Stay
        }
    }
}
