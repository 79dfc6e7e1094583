//! Bytes withheld from the client while the reply they belong to is not finished.

use super::limits::{MAX_HELD, MAX_STRIPPED};

/// Why bytes are withheld, which sets how many may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    /// The reply answers a filter PING: dropped when it ends.
    Strip,
    /// The reply's owner is not known yet: given back or dropped once it is.
    Hold,
}

/// Bytes withheld from the client while the reply they belong to is not finished: a reply whose owner is
/// not known yet (given back or dropped once it is), or a reply to a filter PING (dropped when it ends). If
/// the connection falls back to pass-through before the reply ends, they are given back, so that the client
/// receives whole replies or nothing of the filter's, however the stream was cut.
#[derive(Debug, Default)]
pub(super) struct Withheld {
    bytes: Vec<u8>,
}

impl Withheld {
    pub(super) fn extend(&mut self, bytes: &[u8], why: Why) -> Result<(), &'static str> {
        let (limit, too_long) = match why {
            Why::Strip => (MAX_STRIPPED, "reply to the filter's PING too long"),
            Why::Hold => (MAX_HELD, "reply header too long"),
        };
        if self.bytes.len().saturating_add(bytes.len()) > limit {
            return Err(too_long);
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Forget the bytes (keeps the few bytes of capacity: the next filter reply reuses them).
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
    }
}
