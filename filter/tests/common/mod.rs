//! Helpers shared by the protocol property tests.

/// Cuts `bytes` into chunks of the given sizes, used in turn (and cycled): how the network splits a stream.
pub fn chunks<'a>(bytes: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = bytes;
    let mut size = sizes.iter().copied().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (chunk, after) = rest.split_at(size.next().unwrap_or(1).clamp(1, rest.len()));
        rest = after;
        Some(chunk)
    })
}
