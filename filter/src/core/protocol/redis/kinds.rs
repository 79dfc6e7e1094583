//! Small types the decoder's parts share: the subscription kinds, what a top-level reply is to the pairing,
//! and what a command or a reply asks of the watch state.

use super::word::Word;

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

/// What a top-level reply is, as far as subscribe-mode pairing needs to know (told by its shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// `message`, `pmessage`, `smessage`: takes no place among the replies.
    Push,
    /// A (un)subscription reply of this kind, with the subscription count it reports (if it is an integer).
    Subscription(Kind, Option<i64>),
    /// Anything else: answers the front entry whole.
    Other,
}

/// What a command or a reply asks of the watch state; applied in one place, `Watch::apply` (mod.rs).
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Turn {
    /// Nothing changes.
    #[default]
    Stay,
    /// The client sent a RESP2 SUBSCRIBE-family command: from here on, replies are paired in subscribe mode.
    Subscribe,
    /// Reply counting can no longer be trusted: never inject again on this connection.
    Retire,
}

impl Turn {
    /// This turn, or `next` if this one is `Stay`.
    pub(super) fn or(self, next: Turn) -> Turn {
        if self == Turn::Stay {
            next
        } else {
            self
        }
    }
}
