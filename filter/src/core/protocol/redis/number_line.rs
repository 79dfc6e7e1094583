//! A `\r\n`-terminated decimal line, as both directions carry them.

use super::MAX_LINE;

// ---------------------------------------------------------------------------------------------------
// Small pieces shared by both directions.

/// A decimal in a header or integer line, accepted as Redis' `string2ll` accepts it: an optional `-`, no
/// `+`, no leading zeros, not empty, fits an i64.
#[derive(Clone, Copy, Debug, Default)]
struct Decimal {
    value: i64,
    negative: bool,
    digits: u8,
    bad: bool,
}

impl Decimal {
    fn push(&mut self, b: u8) {
        if self.bad {
            return;
        }
        match b {
            b'-' if self.digits == 0 && !self.negative => self.negative = true,
            b'0'..=b'9' => {
                if self.digits > 0 && self.value == 0 {
                    self.bad = true; // a leading zero
                    return;
                }
                let digit = i64::from(b - b'0');
                let next = self.value.checked_mul(10).and_then(|v| {
                    if self.negative {
                        v.checked_sub(digit)
                    } else {
                        v.checked_add(digit)
                    }
                });
                match next {
                    Some(v) => {
                        self.value = v;
                        self.digits = self.digits.saturating_add(1);
                    }
                    None => self.bad = true,
                }
            }
            _ => self.bad = true,
        }
    }

    fn finish(self) -> Option<i64> {
        if self.bad || self.digits == 0 || (self.negative && self.value == 0) {
            None
        } else {
            Some(self.value)
        }
    }
}

/// A `\r\n`-terminated number line (`*3`, `$-1`, `:42`), fed byte by byte.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct NumberLine {
    num: Decimal,
    len: u32,
    cr: bool,
}

impl NumberLine {
    /// `Ok(Some(n))` once the CRLF ended the line.
    pub(super) fn push(&mut self, b: u8) -> Result<Option<i64>, &'static str> {
        if self.cr {
            return match (b, self.num.finish()) {
                (b'\n', Some(n)) => Ok(Some(n)),
                (b'\n', None) => Err("invalid number"),
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
        self.num.push(b);
        if self.num.bad {
            return Err("invalid number");
        }
        Ok(None)
    }
}
