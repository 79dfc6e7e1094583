//! Which server lines may be the PONG that answers the filter's PING, withheld while they may be.
//!
//! NATS PONGs carry nothing that says which PING they answer: ownership is positional (the toolkit's
//! [`Pairing`](crate::core::protocol::toolkit::Pairing)). Only the exact shape servers send is withheld
//! (`PONG\r\n`, any case, or `PONG\n`): at most 6 bytes. A PONG of another shape (`PONG \r\n`) still answers
//! whoever is owed it, but reaches the client.

use crate::core::protocol::toolkit::ReplyShape;

/// The longest PONG line withheld: `PONG\r\n`.
pub(super) const MAX_PONG_LINE: usize = 6;

/// The shape of a server's PONG line.
pub(super) struct PongLine;

impl PongLine {
    /// Whether `b` continues a PONG line of which `len` bytes were seen, `fifth` being its fifth byte.
    fn continues(len: usize, fifth: Option<u8>, b: u8) -> bool {
        match len {
            0..=3 => b"PONG".get(len) == Some(&b.to_ascii_uppercase()),
            4 => b == b'\r' || b == b'\n',
            5 => fifth == Some(b'\r') && b == b'\n',
            _ => false,
        }
    }
}

impl ReplyShape for PongLine {
    fn fit(&self, held: &[u8], rest: &[u8]) -> Option<usize> {
        let mut fifth = held.get(4).copied();
        for (i, &b) in rest.iter().enumerate() {
            let len = held.len().saturating_add(i);
            if !Self::continues(len, fifth, b) {
                return None;
            }
            if b == b'\n' {
                return Some(i + 1);
            }
            if len == 4 {
                fifth = Some(b);
            }
        }
        Some(rest.len())
    }
}
