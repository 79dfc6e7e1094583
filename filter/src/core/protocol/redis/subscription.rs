//! Subscribe mode: the subscription kinds, the queue of what each command is owed, and the bookkeeping
//! that pairs replies with it and follows the subscription counts.

use std::collections::VecDeque;

use super::shape::Class;
use super::word::Word;
use super::{Owner, Redis};

/// The subscription commands and the replies they get, which carry the same names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Subscribe,
    Psubscribe,
    Ssubscribe,
    Unsubscribe,
    Punsubscribe,
    Sunsubscribe,
}

/// What a subscription count counts: Redis reports channels + patterns together, shard channels apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pool {
    Channels,
    Patterns,
    Shards,
}

impl Kind {
    const NAMES: [(Kind, &'static [u8]); 6] = [
        (Kind::Subscribe, b"SUBSCRIBE"),
        (Kind::Psubscribe, b"PSUBSCRIBE"),
        (Kind::Ssubscribe, b"SSUBSCRIBE"),
        (Kind::Unsubscribe, b"UNSUBSCRIBE"),
        (Kind::Punsubscribe, b"PUNSUBSCRIBE"),
        (Kind::Sunsubscribe, b"SUNSUBSCRIBE"),
    ];

    pub(super) fn of<const N: usize>(word: &Word<N>) -> Option<Kind> {
        Kind::NAMES.iter().find(|(_, name)| word.is(name)).map(|(kind, _)| *kind)
    }

    pub(super) fn is_unsubscribe(self) -> bool {
        matches!(self, Kind::Unsubscribe | Kind::Punsubscribe | Kind::Sunsubscribe)
    }

    pub(super) fn pool(self) -> Pool {
        match self {
            Kind::Subscribe | Kind::Unsubscribe => Pool::Channels,
            Kind::Psubscribe | Kind::Punsubscribe => Pool::Patterns,
            Kind::Ssubscribe | Kind::Sunsubscribe => Pool::Shards,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Subscribe mode: what each command sent since the SUBSCRIBE is owed.

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

/// Entries in order; runs of PINGs of one owner and of other commands are merged.
#[derive(Debug, Default)]
pub(super) struct SubQueue {
    pub(super) entries: VecDeque<Pending>,
    /// Filter PINGs not answered yet.
    pub(super) filter_owed: u32,
    /// UNSUBSCRIBE-family commands not fully answered yet.
    pub(super) leaving: u32,
}

impl SubQueue {
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

    /// Whether the next reply owed in subscribe mode is the client's.
    pub(super) fn client_first(&self) -> bool {
        self.entries.front().is_some_and(|entry| !matches!(entry, Pending::Ping { owner: Owner::Filter, .. }))
    }

    pub(super) fn front_is_filter_ping(&self) -> bool {
        matches!(self.entries.front(), Some(Pending::Ping { owner: Owner::Filter, .. }))
    }

    pub(super) fn clear(&mut self) {
        *self = SubQueue::default();
    }
}

impl Redis {
    /// Subscribe mode: a reply that began while something was owed takes its place.
    pub(super) fn settle(&mut self, class: Class) -> Result<Option<Owner>, &'static str> {
        match class {
            Class::Push => Ok(None),
            Class::Subscription(kind, Some(count)) => {
                self.attribute_subscription(kind)?;
                self.apply_count(kind, count);
                Ok(None)
            }
            Class::Subscription(_, None) | Class::Other => self.attribute_other(),
        }
    }

    /// Subscribe mode: a reply that began while nothing was owed.
    pub(super) fn settle_unowed(&mut self, class: Class) -> Result<(), &'static str> {
        match class {
            // A shard channel's slot moved away: the server unsubscribes the client by itself.
            Class::Subscription(Kind::Sunsubscribe, Some(count)) => self.apply_count(Kind::Sunsubscribe, count),
            Class::Subscription(..) => return Err("subscription reply nobody asked for"),
            Class::Push | Class::Other => {}
        }
        Ok(())
    }

    /// A subscription reply of `kind`: one of the replies owed to the (un)subscribe command at the front.
    fn attribute_subscription(&mut self, kind: Kind) -> Result<(), &'static str> {
        // How many replies an argument-less unsubscribe gets, if it is the one running now.
        let all = u32::try_from(self.pool(kind.pool()).max(1)).unwrap_or(u32::MAX);
        loop {
            match self.sub.entries.front_mut() {
                Some(entry @ Pending::UnsubscribeAll { .. }) if *entry == (Pending::UnsubscribeAll { kind }) => {
                    *entry = Pending::Subscription { kind, total: all, left: all };
                }
                Some(Pending::Subscription { kind: front, left, .. }) if *front == kind => {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        self.sub.pop_front();
                    }
                    return Ok(());
                }
                _ if kind == Kind::Sunsubscribe => return Ok(()),
                _ => return Err("subscription reply out of step"),
            }
        }
    }

    /// A reply that is neither a push nor a subscription reply answers the front entry whole.
    pub(super) fn attribute_other(&mut self) -> Result<Option<Owner>, &'static str> {
        let subscribed = self.server_subscribed();
        let Some(front) = self.sub.entries.front_mut() else {
            return Ok(None);
        };
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
                    self.given_up = true;
                }
                (Owner::Client, true)
            }
            Pending::Subscription { .. } => return Err("reply out of step with a subscription's replies"),
            Pending::UnsubscribeAll { .. } => (Owner::Client, true),
        };
        if done {
            self.sub.pop_front();
        }
        if owner == Owner::Filter {
            self.sub.filter_owed = self.sub.filter_owed.saturating_sub(1);
        }
        Ok(Some(owner))
    }

    /// A subscription reply reported `count`: channels + patterns for the classic kinds, shard channels
    /// for the shard kinds. The change tells which pool moved.
    ///
    /// When an unsubscribe reply shows no subscription left, the server is back in normal mode. The
    /// commands sent since the SUBSCRIBE were queued for subscribe-mode replies and the decoder cannot be
    /// sure of reply counting from here, so it stops injecting for good on this connection (`Defer::Mode`
    /// forever), while it keeps parsing until every filter PING already sent is answered and stripped.
    fn apply_count(&mut self, kind: Kind, count: i64) {
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
            self.given_up = true;
        }
    }
}
