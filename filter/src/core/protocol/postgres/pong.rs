//! The filter's PING and the shape of its reply, for the toolkit's [`Pairing`], which withholds a server
//! message while it may be the `ReadyForQuery` owed to the filter.
//!
//! [`Pairing`]: crate::core::protocol::toolkit::Pairing

use crate::core::protocol::toolkit::ReplyShape;

/// `Sync`: on an idle connection it is answered by one `ReadyForQuery` and does nothing else (inside an
/// explicit transaction too; it would end an implicit one, which is why it never goes in mid-pipeline).
pub(super) const SYNC: &[u8] = b"S\0\0\0\x04";

/// The length of `ReadyForQuery`: `Z`, `Int32(5)`, the transaction status.
pub(super) const READY_LEN: usize = 6;

/// `ReadyForQuery` (`Z`, length 5, status `I`, `T` or `E`) as the shape of the reply to withhold.
pub(super) struct Ready;

impl ReplyShape for Ready {
    fn fit(&self, held: &[u8], rest: &[u8]) -> Option<usize> {
        let mut fit = 0usize;
        for (at, &b) in (held.len()..READY_LEN).zip(rest) {
            let ok = match at {
                0 => b == b'Z',
                1..=3 => b == 0,
                4 => b == 5,
                _ => matches!(b, b'I' | b'T' | b'E'),
            };
            if !ok {
                return None;
            }
            fit += 1;
        }
        // Nothing fits past the reply's end.
        (fit > 0).then_some(fit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_for_query_fits_byte_by_byte_and_nothing_else() {
        assert_eq!(Ready.fit(b"", b"Z\0\0\0\x05I"), Some(6));
        assert_eq!(Ready.fit(b"Z\0\0", b"\0\x05TZ"), Some(3));
        assert_eq!(Ready.fit(b"Z\0\0\0\x05", b"E"), Some(1));
        assert_eq!(Ready.fit(b"Z\0\0\0\x05", b"X"), None);
        assert_eq!(Ready.fit(b"", b"D\0"), None);
        assert_eq!(Ready.fit(b"Z\0\0\0\x05I", b"Z"), None, "past the end");
    }
}
