//! [`FrameReader`]: one direction of a framed protocol, frame by frame. Header bytes are read one by one (at
//! most 64); short frames and bodies are skipped by counting down ([`Countdown`]), nothing is buffered.

use super::layout::FramedSpec;
use crate::core::protocol::toolkit::{Countdown, Reader};

/// Where one direction's stream is inside the current frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Pos {
    /// No byte of the next frame seen: a frame boundary.
    #[default]
    Start,
    /// Inside a short frame, after its first byte.
    Short(Countdown),
    /// `at` bytes of the header seen; `field` holds the length field's bytes seen so far.
    Header { at: u32, field: u64 },
    /// Inside a body.
    Body(Countdown),
}

/// Follows one direction of the protocol frame by frame.
#[derive(Clone, Debug)]
pub(super) struct FrameReader {
    spec: FramedSpec,
    pos: Pos,
}

impl FrameReader {
    pub(super) fn new(spec: FramedSpec) -> Self {
        FrameReader { spec, pos: Pos::Start }
    }
}

impl Reader for FrameReader {
    /// Frames are told apart by their bytes only (the PING and PONG matches are kept by their users).
    type Frame = ();

    fn at_boundary(&self) -> bool {
        self.pos == Pos::Start
    }

    fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<()>), &'static str> {
        let spec = &self.spec.0;
        let mut i = 0usize;
        while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
            match &mut self.pos {
                Pos::Start => {
                    let first = rest.first().copied().unwrap_or_default();
                    match spec.short_len.get(usize::from(first)).copied().unwrap_or(0) {
                        0 => self.pos = Pos::Header { at: 0, field: 0 },
                        1 => {
                            self.pos = Pos::Start;
                            return Ok((i + 1, Some(())));
                        }
                        len => {
                            i += 1;
                            self.pos = Pos::Short(Countdown::new(u64::from(len - 1)));
                        }
                    }
                }
                Pos::Short(left) | Pos::Body(left) => {
                    i += left.take(rest).0.len();
                    if left.is_done() {
                        self.pos = Pos::Start;
                        return Ok((i, Some(())));
                    }
                }
                Pos::Header { at, field } => {
                    let field_start = spec.length_offset;
                    let field_end = spec.length_offset + spec.length_size;
                    for &b in rest {
                        if *at >= spec.header_size {
                            break;
                        }
                        if (field_start..field_end).contains(at) {
                            *field = if spec.big_endian {
                                (*field << 8) | u64::from(b)
                            } else {
                                // at - field_start < length_size <= 8: the shift stays below 64.
                                *field | (u64::from(b) << (8 * (*at - field_start)))
                            };
                        }
                        *at += 1;
                        i += 1;
                    }
                    if *at >= spec.header_size {
                        let body = spec.body_len(*field)?;
                        if body == 0 {
                            self.pos = Pos::Start;
                            return Ok((i, Some(())));
                        }
                        self.pos = Pos::Body(Countdown::new(body));
                    }
                }
            }
        }
        Ok((i, None))
    }

    /// A body's (or short frame's) last byte ends the frame, so it is fed, never skipped.
    fn skippable(&self) -> u64 {
        match self.pos {
            Pos::Short(left) | Pos::Body(left) => left.left().saturating_sub(1),
            _ => 0,
        }
    }

    fn skip(&mut self, n: u64) -> u64 {
        let limit = self.skippable();
        match &mut self.pos {
            Pos::Short(left) | Pos::Body(left) => left.skip(n.min(limit)),
            _ => 0,
        }
    }
}
