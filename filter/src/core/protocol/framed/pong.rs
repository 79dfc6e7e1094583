//! Which frames are the PING or the PONG: the exact bytes the configuration gives, compared as a frame
//! streams by (never buffered), and the PONG's shape for the toolkit's [`Pairing`], which withholds a server
//! frame while it may be the PONG owed to the filter.
//!
//! [`Pairing`]: crate::core::protocol::toolkit::Pairing

use crate::core::protocol::toolkit::{ReplyShape, MAX_HELD};

// A PONG is at most `MAX_FIXED_FRAME` bytes, so a frame withheld while it may be one always fits.
const _: () = assert!(super::config::MAX_FIXED_FRAME <= MAX_HELD);

/// How much of the current frame equals a given frame, as the frame streams by: `None` once it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FrameMatch(Option<usize>);

impl Default for FrameMatch {
    fn default() -> Self {
        FrameMatch(Some(0))
    }
}

impl FrameMatch {
    /// The current frame goes on with `bytes`.
    pub(super) fn extend(&mut self, frame: &[u8], bytes: &[u8]) {
        self.0 = self.0.and_then(|at| {
            let end = at.checked_add(bytes.len())?;
            (frame.get(at..end)? == bytes).then_some(end)
        });
    }

    /// Whether the current frame differs from `frame` already: its other bytes cannot change that.
    pub(super) fn differs(&self) -> bool {
        self.0.is_none()
    }

    /// The current frame ended: whether it was `frame`. Starts over for the next one.
    pub(super) fn end(&mut self, frame: &[u8]) -> bool {
        let equal = self.0 == Some(frame.len());
        self.0 = Some(0);
        equal
    }
}

/// The PONG's bytes as the shape of the reply to withhold.
pub(super) struct Pong<'a>(pub(super) &'a [u8]);

impl ReplyShape for Pong<'_> {
    fn fit(&self, held: &[u8], rest: &[u8]) -> Option<usize> {
        let pong_rest = self.0.get(held.len()..).unwrap_or(&[]);
        let same = rest.iter().zip(pong_rest).take_while(|(a, b)| a == b).count();
        if (same < rest.len() && same < pong_rest.len()) || pong_rest.is_empty() {
            return None;
        }
        Some(same)
    }
}
