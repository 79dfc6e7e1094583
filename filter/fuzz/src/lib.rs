//! Shared parts of the fuzz targets: reading choices out of the fuzzer's bytes, the framed layouts, the
//! protocol-side drivers (one direction of one decoder, in arbitrary chunkings) and the connection harness
//! (a `Worker` with a fake `Transport` and a model of what each side must receive).
//!
//! Everything here is written against the filter's public API only.

pub mod configs;
pub mod connection;
pub mod layouts;
pub mod sides;

use heartbeat::core::protocol::ProtocolError;

/// Reads choices out of the fuzzer's bytes; past the end every read is 0 (so short inputs are still valid).
pub struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, at: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// One of `n` (n > 0).
    pub fn pick(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n.max(1)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.at = end.max(self.at);
        &self.data[start..end]
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
}

/// Chunk sizes chosen by the fuzzer, used in turn: how the network cuts a stream. Small sizes are common,
/// large ones possible (a whole stream in one chunk).
pub struct Cuts {
    sizes: Vec<usize>,
    next: usize,
}

impl Cuts {
    /// One byte for how many sizes (1 to 8), then one byte per size.
    pub fn read(input: &mut Bytes) -> Self {
        let n = 1 + input.pick(8);
        let sizes = (0..n)
            .map(|_| match input.u8() {
                b @ 0..=0xef => usize::from(b) % 64 + 1,
                b => 64usize << (b - 0xf0),
            })
            .collect();
        Cuts { sizes, next: 0 }
    }

    pub fn next_size(&mut self) -> usize {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        size
    }

    /// Cuts `bytes` into chunks of the sizes in turn.
    pub fn split<'b>(&mut self, bytes: &'b [u8]) -> Vec<&'b [u8]> {
        let mut chunks = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(self.next_size().min(rest.len()));
            chunks.push(chunk);
            rest = after;
        }
        chunks
    }
}

/// Whether `sub` is `full` with some bytes removed (order kept).
pub fn is_subsequence(sub: &[u8], full: &[u8]) -> bool {
    let mut it = full.iter();
    sub.iter().all(|b| it.any(|f| f == b))
}

/// `on_upstream_bytes`'s result, whatever the trait returns for the replies it completed (a count, or
/// nothing when they are only counted in `Output`): the count if there is one, and the error.
pub trait UpstreamResult {
    fn into_parts(self) -> (Option<u32>, Option<ProtocolError>);
}

impl UpstreamResult for Result<u32, ProtocolError> {
    fn into_parts(self) -> (Option<u32>, Option<ProtocolError>) {
        match self {
            Ok(n) => (Some(n), None),
            Err(e) => (None, Some(e)),
        }
    }
}

impl UpstreamResult for Result<(), ProtocolError> {
    fn into_parts(self) -> (Option<u32>, Option<ProtocolError>) {
        match self {
            Ok(()) => (None, None),
            Err(e) => (None, Some(e)),
        }
    }
}

/// Lowercase hex, as the framed configuration takes frames.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
