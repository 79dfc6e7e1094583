//! A body of known size, skipped by counting down: O(1) per chunk whatever the body's size.

/// The bytes of a body still to come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Countdown {
    left: u64,
}

impl Countdown {
    pub const fn new(len: u64) -> Self {
        Countdown { left: len }
    }

    /// Bytes of the body still to come: none of them needs to be looked at, so a caller that can avoid
    /// reading them (copying them into the VM) may skip them with [`Countdown::skip`].
    pub const fn left(&self) -> u64 {
        self.left
    }

    pub const fn is_done(&self) -> bool {
        self.left == 0
    }

    /// Takes the part of `data` that belongs to the body; returns it and what follows it.
    pub fn take<'a>(&mut self, data: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        let n = usize::try_from(self.left).map_or(data.len(), |left| left.min(data.len()));
        // n <= data.len() and n <= left: neither the split nor the subtraction can fail.
        self.left = self.left.saturating_sub(n as u64);
        data.split_at_checked(n).unwrap_or((data, &[]))
    }

    /// Counts `n` body bytes that were not looked at; returns how many of them belonged to the body.
    pub fn skip(&mut self, n: u64) -> u64 {
        let taken = n.min(self.left);
        self.left -= taken;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_body_across_chunks_and_stops_at_its_end() {
        let mut body = Countdown::new(5);
        assert_eq!(body.take(b"abc"), (&b"abc"[..], &b""[..]));
        assert_eq!(body.left(), 2);
        assert_eq!(body.take(b"deFGH"), (&b"de"[..], &b"FGH"[..]));
        assert!(body.is_done());
        assert_eq!(body.take(b"xyz"), (&b""[..], &b"xyz"[..]));
    }

    #[test]
    fn skipping_counts_only_what_the_body_covers() {
        let mut body = Countdown::new(10);
        assert_eq!(body.skip(4), 4);
        assert_eq!(body.skip(100), 6);
        assert!(body.is_done());
        assert_eq!(body.skip(1), 0);
    }

    #[test]
    fn a_body_larger_than_memory_is_only_a_number() {
        let mut body = Countdown::new(u64::MAX);
        assert_eq!(body.take(b"abc").0.len(), 3);
        assert_eq!(body.left(), u64::MAX - 3);
    }
}
