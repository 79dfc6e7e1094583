//! The head of an argument or reply element, kept to recognise a few names.

/// The first `N` bytes of an argument or reply element, upper-cased, and its full length.
#[derive(Clone, Copy, Debug)]
pub(super) struct Word<const N: usize> {
    head: [u8; N],
    len: u32,
}

impl<const N: usize> Word<N> {
    pub(super) const fn new() -> Self {
        Word { head: [0; N], len: 0 }
    }

    pub(super) fn extend(&mut self, bytes: &[u8]) {
        let len = usize::try_from(self.len).unwrap_or(usize::MAX);
        for (slot, b) in self.head.iter_mut().skip(len).zip(bytes) {
            *slot = b.to_ascii_uppercase();
        }
        self.len = self.len.saturating_add(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    }

    /// The whole word (upper-cased), if it fit in `N` bytes.
    pub(super) fn whole(&self) -> Option<&[u8]> {
        self.head.get(..usize::try_from(self.len).ok()?)
    }

    /// Whether the word is `upper` (given upper-case), ignoring case.
    pub(super) fn is(&self, upper: &[u8]) -> bool {
        usize::try_from(self.len) == Ok(upper.len()) && self.head.get(..upper.len()) == Some(upper)
    }
}
