//! [`PacketReader`]: one direction of the MySQL protocol, logical packet by logical packet.
//!
//! A packet is a 3-byte little-endian payload length, a 1-byte sequence id, then the payload; a payload of
//! exactly 0xFFFFFF bytes continues in the next packet (whose header is read but whose bytes add nothing the
//! decoder needs). The first [`CAP`] bytes of a logical packet's payload are kept (the command byte, an OK
//! packet's status flags, a greeting's capability flags); the rest is skipped by counting down
//! ([`Countdown`]), never buffered.

use crate::core::protocol::toolkit::{Countdown, Reader};

/// Bytes of a payload kept for the state machine: enough for a server greeting with a long version string.
pub(super) const CAP: usize = 128;
/// A physical packet of this many payload bytes is continued by the next one.
pub(super) const MAX_PAYLOAD: u32 = 0xFF_FFFF;

/// What a step of the reader reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The header and the first payload byte of a logical packet: its sequence id, length and type are known.
    Head,
    /// The end of a logical packet (an empty packet ends without a `Head`).
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pos {
    /// `at` bytes of a physical packet's 4-byte header seen.
    Header { at: u8, bytes: [u8; 4] },
    /// Inside a physical packet's payload.
    Payload(Countdown),
}

/// Follows one direction of the protocol packet by packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PacketReader {
    pos: Pos,
    /// The physical packet being read (or whose header is next) continues the current logical packet.
    continued: bool,
    /// The current physical packet has MAX_PAYLOAD bytes: another one follows.
    more: bool,
    /// Sequence id and payload length of the current logical packet's first physical packet.
    seq: u8,
    len: u32,
    /// The first bytes of the current logical packet's payload.
    head: [u8; CAP],
    head_len: u8,
}

impl PacketReader {
    pub(super) fn new() -> Self {
        PacketReader {
            pos: Pos::Header { at: 0, bytes: [0; 4] },
            continued: false,
            more: false,
            seq: 0,
            len: 0,
            head: [0; CAP],
            head_len: 0,
        }
    }

    /// The current (or last) logical packet as far as it was kept.
    pub(super) fn packet(&self) -> Packet<'_> {
        Packet { seq: self.seq, len: self.len, head: self.head.get(..usize::from(self.head_len)).unwrap_or(&[]) }
    }

    /// The end of a physical packet's payload: the end of the logical packet unless another part follows.
    fn end_physical(&mut self) -> Option<Step> {
        self.pos = Pos::Header { at: 0, bytes: [0; 4] };
        if self.more {
            self.continued = true;
            return None;
        }
        self.continued = false;
        Some(Step::End)
    }
}

/// A logical packet: the first physical packet's sequence id and length, and the first bytes of its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Packet<'a> {
    pub(super) seq: u8,
    pub(super) len: u32,
    pub(super) head: &'a [u8],
}

impl Packet<'_> {
    /// The payload's first byte (the packet type or command), if any.
    pub(super) fn first(&self) -> Option<u8> {
        self.head.first().copied()
    }

    /// The payload bytes at `at..at + n`; `Err` when the packet is shorter or they were not kept.
    pub(super) fn bytes(&self, at: usize, n: usize) -> Result<&[u8], &'static str> {
        self.head.get(at..at.saturating_add(n)).ok_or("packet too short (or its field was not kept)")
    }

    pub(super) fn u16_at(&self, at: usize) -> Result<u16, &'static str> {
        let b = self.bytes(at, 2)?;
        Ok(u16::from_le_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)]))
    }

    pub(super) fn u32_at(&self, at: usize) -> Result<u32, &'static str> {
        let b = self.bytes(at, 4)?;
        let mut v = [0u8; 4];
        v.copy_from_slice(b);
        Ok(u32::from_le_bytes(v))
    }

    /// A length-encoded integer at `at`: its value and the offset after it.
    pub(super) fn lenenc_at(&self, at: usize) -> Result<(u64, usize), &'static str> {
        let first = self.bytes(at, 1)?.first().copied().unwrap_or(0);
        let size = match first {
            0..=0xfa => return Ok((u64::from(first), at + 1)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return Err("bad length-encoded integer"),
        };
        let b = self.bytes(at + 1, size)?;
        let mut v = [0u8; 8];
        if let Some(slot) = v.get_mut(..size) {
            slot.copy_from_slice(b);
        }
        Ok((u64::from_le_bytes(v), at + 1 + size))
    }
}

impl Reader for PacketReader {
    type Frame = Step;

    fn at_boundary(&self) -> bool {
        !self.continued && matches!(self.pos, Pos::Header { at: 0, .. })
    }

    fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Step>), &'static str> {
        let mut i = 0usize;
        while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
            match &mut self.pos {
                Pos::Header { at, bytes } => {
                    if let (Some(slot), Some(&b)) = (bytes.get_mut(usize::from(*at)), rest.first()) {
                        *slot = b;
                    }
                    *at += 1;
                    i += 1;
                    if *at >= 4 {
                        let [l0, l1, l2, seq] = *bytes;
                        let len = u32::from_le_bytes([l0, l1, l2, 0]);
                        self.more = len == MAX_PAYLOAD;
                        if !self.continued {
                            self.seq = seq;
                            self.len = len;
                            self.head_len = 0;
                        }
                        self.pos = Pos::Payload(Countdown::new(u64::from(len)));
                        if len == 0 {
                            if let Some(step) = self.end_physical() {
                                return Ok((i, Some(step)));
                            }
                        }
                    }
                }
                Pos::Payload(left) => {
                    let first = !self.continued && self.head_len == 0;
                    // The first payload byte is a step of its own (`Head`), so the packet's type is known before
                    // any later byte is passed on.
                    let want = if first { rest.get(..1).unwrap_or(rest) } else { rest };
                    let (body, _) = left.take(want);
                    let done = left.is_done();
                    i += body.len();
                    if !self.continued {
                        let at = usize::from(self.head_len);
                        let n = body.len().min(CAP.saturating_sub(at));
                        if let (Some(slot), Some(src)) = (self.head.get_mut(at..at + n), body.get(..n)) {
                            slot.copy_from_slice(src);
                            self.head_len = u8::try_from(at + n).unwrap_or(u8::MAX);
                        }
                    }
                    if done {
                        if let Some(step) = self.end_physical() {
                            return Ok((i, Some(step)));
                        }
                    } else if first {
                        return Ok((i, Some(Step::Head)));
                    }
                }
            }
        }
        Ok((i, None))
    }

    /// The rest of a payload once its kept part is full (or in a continuation), its last byte excepted: that
    /// byte may end the logical packet, which `feed` reports.
    fn skippable(&self) -> u64 {
        match self.pos {
            Pos::Payload(left) if self.continued || usize::from(self.head_len) >= CAP => left.left().saturating_sub(1),
            _ => 0,
        }
    }

    fn skip(&mut self, n: u64) -> u64 {
        let limit = self.skippable();
        match &mut self.pos {
            Pos::Payload(left) => left.skip(n.min(limit)),
            Pos::Header { .. } => 0,
        }
    }
}
