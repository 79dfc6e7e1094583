//! The upstream's frames paired with the PINGs they answer, and the frame withheld while it may be the
//! filter's reply.
//!
//! Servers answer PINGs in order, and a reply says nothing about which PING it answers, so ownership is
//! positional ([`PongOwners`]). A frame that begins while the filter is owed the next reply may be that reply:
//! its bytes are withheld from the client ([`ReplyHold::Holding`]) for as long as they fit the reply's shape
//! ([`ReplyShape`], the protocol's part), then stripped if the frame completes as the filter's reply, or given
//! back in place if it does not. A frame seen not to fit within one chunk is forwarded without any of its
//! bytes withheld (no edit, no allocation); only a chunk that ends inside a possible reply holds.

use super::driver::{Driver, Reader};
use crate::core::protocol::{Output, Owner, PongOwners, ProtocolError};

/// The longest reply that can be withheld by default: framed's PONG is at most 64 bytes. A protocol whose
/// reply is shorter says so in its `Pairing<N>` (NATS's `PONG\r\n`: 6), so that every connection does not
/// carry 64 bytes it never uses.
pub const MAX_HELD: usize = 64;

/// Whether bytes still fit the filter's reply: the protocol-specific part of [`ReplyHold`].
pub trait ReplyShape {
    /// With `held` withheld (the current frame's bytes so far, all fitting), how many leading bytes of the
    /// non-empty `rest` may still be the reply, up to where the reply would end; `None` when a byte of `rest`
    /// shows, before the reply could end, that the frame is something else.
    fn fit(&self, held: &[u8], rest: &[u8]) -> Option<usize>;
}

/// Where the upstream's current frame stands with respect to being the filter's reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyHold<const N: usize = MAX_HELD> {
    /// No byte of the current frame seen: the decision is made at its first byte.
    #[default]
    Boundary,
    /// The frame reaches the client as it comes: it began while the filter was not owed the next reply, it
    /// was seen not to fit the reply, or its withheld start was given back.
    Forwarding,
    /// The frame began while the filter was owed the next reply and every byte of it so far fits the reply:
    /// those bytes are withheld until it is known whether the frame is that reply.
    Holding { bytes: [u8; N], len: u8 },
}

impl<const N: usize> ReplyHold<N> {
    /// The bytes withheld (none unless holding).
    pub fn held(&self) -> &[u8] {
        match self {
            ReplyHold::Holding { bytes, len } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Withholds `bytes` too; false (nothing withheld) when they would not fit `N`.
    fn push(&mut self, more: &[u8]) -> bool {
        let ReplyHold::Holding { bytes, len } = self else { return false };
        let at = usize::from(*len);
        let end = at.saturating_add(more.len());
        match (bytes.get_mut(at..end), u8::try_from(end)) {
            (Some(slot), Ok(end)) => {
                slot.copy_from_slice(more);
                *len = end;
                true
            }
            _ => false,
        }
    }
}

/// One connection's replies: who is owed each one (fed by both directions), and the upstream frame withheld
/// while it may be the filter's.
#[derive(Debug, Default)]
pub struct Pairing<const N: usize = MAX_HELD> {
    owners: PongOwners,
    hold: ReplyHold<N>,
}

impl<const N: usize> Pairing<N> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Who is owed the replies still to come.
    pub fn owners(&self) -> &PongOwners {
        &self.owners
    }

    /// One more reply is owed to `owner` (the client sent a PING, or the filter injected one).
    pub fn push(&mut self, owner: Owner) {
        self.owners.push(owner);
    }

    pub fn hold(&self) -> &ReplyHold<N> {
        &self.hold
    }

    /// Whether bytes of the current upstream frame are withheld: they may be the filter's reply.
    pub fn is_holding(&self) -> bool {
        matches!(self.hold, ReplyHold::Holding { .. })
    }

    /// Gives the withheld bytes back to the client at this point of the stream; the rest of the frame is
    /// forwarded.
    pub fn release(&mut self, out: &mut Output) {
        if let ReplyHold::Holding { .. } = self.hold {
            out.insert(self.hold.held());
            self.hold = ReplyHold::Forwarding;
        }
    }

    /// A frame ended; `reply` says whether it is a reply to a PING. A reply answers whoever is owed the next
    /// one (counted in `out` when that is the filter); withheld bytes are stripped when it was the filter's
    /// reply and given back otherwise. A filter's reply that was not withheld is forwarded: that needs a reply
    /// that began while nobody was owed one (servers do not send those) or one whose shape the protocol does
    /// not strip (NATS `PONG \r\n`).
    fn end_frame(&mut self, reply: bool, out: &mut Output) {
        let owner = if reply { self.owners.pop() } else { None };
        if owner != Some(Owner::Filter) {
            self.release(out);
        }
        self.hold = ReplyHold::Boundary;
        if owner == Some(Owner::Filter) {
            out.pong_answered();
        }
    }

    /// Follows the upstream's `data` through `upstream`, describing in `out` what the client receives.
    /// `is_reply` sees the bytes of every step and the frame that ended there (if any), and says whether that
    /// frame is a reply to a PING. Returns how many replies to the filter were completed in this call.
    pub fn feed<R: Reader>(
        &mut self,
        upstream: &mut Driver<R>,
        shape: &impl ReplyShape,
        data: &[u8],
        out: &mut Output,
        mut is_reply: impl FnMut(&[u8], Option<R::Frame>) -> bool,
    ) -> Result<u32, ProtocolError> {
        upstream.check()?;
        let before = out.pongs();
        let mut rest = data;
        while !rest.is_empty() {
            if self.hold == ReplyHold::Boundary {
                self.hold = if self.owners.front() == Some(Owner::Filter) {
                    ReplyHold::Holding { bytes: [0; N], len: 0 }
                } else {
                    ReplyHold::Forwarding
                };
            }
            // While holding, feed only the bytes that still fit the reply. A misfit within this chunk ends the
            // hold before anything of the chunk is withheld.
            let take = match self.hold {
                ReplyHold::Holding { len, .. } => match shape.fit(self.hold.held(), rest) {
                    Some(n) if n > 0 && usize::from(len).saturating_add(n) <= N => n,
                    _ => {
                        self.release(out);
                        continue;
                    }
                },
                _ => rest.len(),
            };
            let (used, frame) = match upstream.step(rest.get(..take).unwrap_or(rest)) {
                Ok(step) => step,
                Err(error) => {
                    self.release(out);
                    return Err(error);
                }
            };
            let (stepped, after) = rest.split_at_checked(used).unwrap_or((rest, &[]));
            let ended = frame.is_some();
            let reply = is_reply(stepped, frame);
            if self.hold.push(stepped) {
                out.skip(stepped.len());
            } else {
                out.forward(stepped.len());
            }
            if ended {
                self.end_frame(reply, out);
            } else if used == 0 {
                break;
            }
            rest = after;
        }
        Ok(out.pongs().saturating_sub(before))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::Side;

    /// Frames are runs of bytes ended by `;`; the reply is `ok;`.
    #[derive(Default)]
    struct Semicolons;

    impl Reader for Semicolons {
        type Frame = ();
        fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<()>), &'static str> {
            match data.iter().position(|&b| b == b';') {
                Some(at) => Ok((at + 1, Some(()))),
                None => Ok((data.len(), None)),
            }
        }
        fn at_boundary(&self) -> bool {
            true
        }
    }

    struct OkReply;

    impl ReplyShape for OkReply {
        fn fit(&self, held: &[u8], rest: &[u8]) -> Option<usize> {
            let left = b"ok;".get(held.len()..).unwrap_or(&[]);
            let same = rest.iter().zip(left).take_while(|(a, b)| a == b).count();
            (same == rest.len() || same == left.len()).then_some(same)
        }
    }

    fn view(pairing: &mut Pairing, chunks: &[&[u8]]) -> (Vec<u8>, u32) {
        let mut upstream = Driver::new(Side::Upstream, Semicolons);
        let mut seen = Vec::new();
        let mut answered = 0;
        for chunk in chunks {
            let mut out = Output::new();
            answered += pairing
                .feed(&mut upstream, &OkReply, chunk, &mut out, |b, f| f.is_some() && b.ends_with(b"k;"))
                .unwrap();
            assert_eq!(out.accounted(), chunk.len());
            seen.extend(out.apply(chunk).unwrap_or_else(|| chunk.to_vec()));
        }
        (seen, answered)
    }

    #[test]
    fn the_filters_reply_is_withheld_across_chunks_and_stripped() {
        let mut pairing = Pairing::new();
        pairing.push(Owner::Filter);
        pairing.push(Owner::Client);
        assert_eq!(view(&mut pairing, &[b"a;o", b"k;ok;"]), (b"a;ok;".to_vec(), 1));
        assert!(pairing.owners().is_empty());
    }

    #[test]
    fn a_misfit_gives_the_withheld_bytes_back_in_place() {
        let mut pairing: Pairing = Pairing::new();
        pairing.push(Owner::Filter);
        let mut upstream = Driver::new(Side::Upstream, Semicolons);
        let mut out = Output::new();
        pairing.feed(&mut upstream, &OkReply, b"o", &mut out, |_, _| false).unwrap();
        assert_eq!(out.apply(b"o").unwrap(), b"");
        assert_eq!(pairing.hold().held(), b"o");
        out.clear();
        pairing.feed(&mut upstream, &OkReply, b"x;", &mut out, |_, _| false).unwrap();
        assert_eq!(out.apply(b"x;").unwrap(), b"ox;");
        assert_eq!(*pairing.hold(), ReplyHold::Boundary);
        assert_eq!(pairing.owners().filter_owed(), 1);
    }

    #[test]
    fn a_frame_seen_whole_is_not_edited() {
        let mut pairing: Pairing = Pairing::new();
        pairing.push(Owner::Filter);
        let mut upstream = Driver::new(Side::Upstream, Semicolons);
        let mut out = Output::new();
        pairing.feed(&mut upstream, &OkReply, b"oz;", &mut out, |_, _| false).unwrap();
        assert!(!out.is_changed());
    }
}
