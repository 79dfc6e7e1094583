//! The reply to the filter's COM_PING, withheld from the client.
//!
//! The filter's COM_PING goes in with sequence id 0 between two commands, so the server's next packet is its
//! reply, with sequence id 1: an OK packet (its status flags and session-state information vary, so only its
//! type is matched), or an ERR. The header and the type byte are withheld until they are seen (a packet with
//! sequence id 0 and an ERR type is the server's unasked goodbye, given back in place); the reply is then
//! withheld whole, up to [`MAX_REPLY`] bytes, and stripped at its end. Holding the whole reply means that a
//! fall-back to pass-through in its middle gives it back whole, never a fragment.

use super::reader::Packet;
use crate::core::protocol::Output;

/// The longest reply to COM_PING withheld (MariaDB's and MySQL's OK is 11 bytes; session-state information
/// makes it longer): a longer one is a protocol error, and the connection is passed through.
pub(super) const MAX_REPLY: usize = 64;

/// Where the server's current packet stands with respect to being the reply to the filter's COM_PING.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Hold {
    /// No byte of the current packet seen.
    #[default]
    Boundary,
    /// The packet reaches the client as it comes.
    Forwarding,
    /// The packet began while the filter's reply was next: its bytes are withheld; `reply` once its header and
    /// type showed it is that reply.
    Holding { bytes: [u8; MAX_REPLY], len: u8, reply: bool },
}

impl Hold {
    pub(super) fn holding() -> Self {
        Hold::Holding { bytes: [0; MAX_REPLY], len: 0, reply: false }
    }

    pub(super) fn is_holding(&self) -> bool {
        matches!(self, Hold::Holding { .. })
    }

    /// Whether the packet was seen to be the filter's reply.
    pub(super) fn is_reply(&self) -> bool {
        matches!(self, Hold::Holding { reply: true, .. })
    }

    /// Withholds `more`; false when they would not fit (the caller fails the connection over to pass-through).
    pub(super) fn push(&mut self, more: &[u8]) -> bool {
        let Hold::Holding { bytes, len, .. } = self else { return false };
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

    /// The packet's header and type are known: is it the filter's reply? `Ok(false)`: the server's unasked
    /// goodbye, given back; `Err`: not a reply to COM_PING, or too long to withhold.
    pub(super) fn decide(&mut self, p: Packet<'_>, out: &mut Output) -> Result<bool, &'static str> {
        if p.seq == 0 && p.first() == Some(0xff) {
            self.release(out);
            return Ok(false);
        }
        if p.seq != 1 || !matches!(p.first(), Some(0x00 | 0xff)) {
            return Err("the packet after the filter's COM_PING is not its OK or ERR");
        }
        if usize::try_from(p.len).map_or(true, |len| len.saturating_add(4) > MAX_REPLY) {
            return Err("the reply to the filter's COM_PING is too long to withhold");
        }
        if let Hold::Holding { reply, .. } = self {
            *reply = true;
        }
        Ok(true)
    }

    /// Gives the withheld bytes back at this point of the stream; the rest of the packet is forwarded.
    pub(super) fn release(&mut self, out: &mut Output) {
        if let Hold::Holding { bytes, len, .. } = self {
            out.insert(bytes.get(..usize::from(*len)).unwrap_or(&[]));
            *self = Hold::Forwarding;
        }
    }
}
