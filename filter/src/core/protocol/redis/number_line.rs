//! A `\r\n`-terminated decimal line, as both directions carry them (`*3`, `$-1`, `:42`).

use super::limits::MAX_LINE;
use crate::core::protocol::toolkit::{Decimal, DecimalRules};

/// Decimals as Redis' `string2ll` accepts them: an optional `-`, no `+`, no leading zeros, not empty, fits an i64.
const STRING2LL: DecimalRules = DecimalRules { negative: true, leading_zeros: false, max: i64::MAX as u64 };

/// A number line, fed byte by byte.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct NumberLine {
    num: Decimal,
    len: u32,
    cr: bool,
}

impl NumberLine {
    /// `Ok(Some(n))` once the CRLF ended the line. A byte that makes it no number (or too big) is an error at once.
    pub(super) fn push(&mut self, b: u8) -> Result<Option<i64>, &'static str> {
        if self.cr {
            return match (b, self.num.finish()) {
                (b'\n', Ok(n)) => Ok(Some(n)),
                (b'\n', Err(_)) => Err("invalid number"),
                _ => Err("expected LF after CR"),
            };
        }
        if b == b'\r' {
            self.cr = true;
            return Ok(None);
        }
        self.len = self.len.saturating_add(1);
        if self.len > MAX_LINE {
            return Err("line too long");
        }
        self.num.push(b, STRING2LL);
        if self.num.has_failed() {
            return Err("invalid number");
        }
        Ok(None)
    }
}
