//! What the client receives in place of one upstream chunk, described as edits over it.
//!
//! Envoy lets a filter replace a write-path chunk only as a whole (`set_buffer(0, len, bytes)`; an edit in
//! the middle is BadArgument), so decoders describe their verdicts as a run of edits and the connection core
//! materializes a new chunk only when one of them is not "forward". The common case (nothing to strip)
//! merges into a single `Forward` and allocates nothing.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Edit {
    /// The next n input bytes reach the client unchanged.
    Forward(usize),
    /// The next n input bytes are withheld (stripped, or held back while undecided).
    Skip(usize),
    /// Bytes held back from an earlier chunk are given back here.
    Insert(Vec<u8>),
}

/// Edits over one upstream chunk, in input order. Reused across chunks by the connection core.
#[derive(Debug, Default)]
pub struct Output {
    edits: Vec<Edit>,
    accounted: usize,
    changed: bool,
    /// Replies to the filter's PINGs completed (and withheld) in this chunk. Kept here, not in a return
    /// value, so that a protocol error later in the same chunk cannot lose them.
    pongs: u32,
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget the previous chunk's edits (keeps the allocation).
    pub fn clear(&mut self) {
        self.edits.clear();
        self.accounted = 0;
        self.changed = false;
        self.pongs = 0;
    }

    /// A reply to one of the filter's PINGs was completed (its bytes were withheld).
    pub fn pong_answered(&mut self) {
        self.pongs = self.pongs.saturating_add(1);
    }

    /// Replies to the filter's PINGs completed since the last `clear`.
    pub fn pongs(&self) -> u32 {
        self.pongs
    }

    /// The next `n` input bytes reach the client unchanged.
    pub fn forward(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.accounted += n;
        if let Some(Edit::Forward(last)) = self.edits.last_mut() {
            *last += n;
        } else {
            self.edits.push(Edit::Forward(n));
        }
    }

    /// The next `n` input bytes are withheld from the client.
    pub fn skip(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.accounted += n;
        self.changed = true;
        if let Some(Edit::Skip(last)) = self.edits.last_mut() {
            *last += n;
        } else {
            self.edits.push(Edit::Skip(n));
        }
    }

    /// Give back bytes that were withheld earlier, at this point of the stream.
    pub fn insert(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.changed = true;
        self.edits.push(Edit::Insert(bytes.to_vec()));
    }

    /// How many input bytes the edits account for (forwarded plus withheld).
    pub fn accounted(&self) -> usize {
        self.accounted
    }

    /// Whether the client receives something other than the input.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// The bytes the client receives for `input`, or `None` when that is `input` itself. Input bytes that no
    /// edit accounts for (a decoder that stopped early on an error) are forwarded: never lose client data.
    pub fn apply(&self, input: &[u8]) -> Option<Vec<u8>> {
        if !self.changed {
            return None;
        }
        let mut bytes = Vec::with_capacity(input.len());
        let mut at = 0usize;
        for edit in &self.edits {
            match edit {
                Edit::Forward(n) => {
                    let end = (at + n).min(input.len());
                    bytes.extend_from_slice(input.get(at.min(end)..end).unwrap_or_default());
                    at = end;
                }
                Edit::Skip(n) => at = (at + n).min(input.len()),
                Edit::Insert(held) => bytes.extend_from_slice(held),
            }
        }
        // Never past the end: `at` is clamped to the input's length.
        bytes.extend_from_slice(input.get(at..).unwrap_or_default());
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_only_is_unchanged_and_merged() {
        let mut out = Output::new();
        out.forward(3);
        out.forward(4);
        assert_eq!(out.accounted(), 7);
        assert_eq!(out.apply(b"abcdefg"), None);
        assert_eq!(out.edits.len(), 1);
    }

    #[test]
    fn skip_and_insert_rewrite_the_chunk() {
        let mut out = Output::new();
        out.insert(b"P");
        out.forward(2);
        out.skip(6);
        out.forward(1);
        assert_eq!(out.apply(b"INPONG\r\nX").as_deref(), Some(&b"PINX"[..]));
    }

    #[test]
    fn unaccounted_tail_is_forwarded() {
        let mut out = Output::new();
        out.skip(2);
        assert_eq!(out.apply(b"abcd").as_deref(), Some(&b"cd"[..]));
    }
}
