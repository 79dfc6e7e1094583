//! A decimal (a payload size, a Redis length or integer) read byte by byte, so it may span chunks.

/// Which decimals a protocol accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalRules {
    /// A leading `-` is allowed (Redis `$-1`, `:-5`).
    pub negative: bool,
    /// `007` is accepted (NATS sizes); Redis' `string2ll` refuses leading zeros.
    pub leading_zeros: bool,
    /// The largest value accepted; a negative one may reach one further, as two's complement integers do
    /// (Redis accepts exactly the i64 range).
    pub max: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalError {
    /// Empty, a stray byte, a lone `-`, `-0`, or a refused leading zero.
    NotNumber,
    /// Larger than the rules' `max`.
    TooBig,
}

/// A decimal as read so far. The verdict on bad input is kept to the end, so it can be reported once the
/// token ends, as the protocols' servers do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decimal {
    magnitude: u64,
    digits: u8,
    negative: bool,
    error: Option<DecimalError>,
}

impl Decimal {
    pub fn push(&mut self, b: u8, rules: DecimalRules) {
        match b {
            b'-' if rules.negative && self.digits == 0 && !self.negative && self.error.is_none() => {
                self.negative = true;
            }
            b'0'..=b'9' => {
                if self.error == Some(DecimalError::NotNumber) {
                    return;
                }
                if !rules.leading_zeros && self.digits > 0 && self.magnitude == 0 {
                    self.error = Some(DecimalError::NotNumber);
                    return;
                }
                self.digits = self.digits.saturating_add(1);
                let next = self.magnitude.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0')));
                let limit = if self.negative { rules.max.saturating_add(1) } else { rules.max };
                match next {
                    Some(v) if v <= limit => self.magnitude = v,
                    _ => self.error = Some(DecimalError::TooBig),
                }
            }
            _ => self.error = Some(DecimalError::NotNumber),
        }
    }

    /// Whether a byte seen so far already makes this not a number (`TooBig` may still become `NotNumber`).
    pub fn is_invalid(&self) -> bool {
        self.error == Some(DecimalError::NotNumber)
    }

    /// Whether a byte seen so far already makes this an error, of either kind (for a protocol that fails at the
    /// first bad byte rather than at the token's end, as Redis' number lines do).
    pub fn has_failed(&self) -> bool {
        self.error.is_some()
    }

    /// The value, once the token ended.
    pub fn finish(self) -> Result<i64, DecimalError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.digits == 0 || (self.negative && self.magnitude == 0) {
            return Err(DecimalError::NotNumber);
        }
        let value = i128::from(self.magnitude);
        let value = if self.negative { -value } else { value };
        i64::try_from(value).map_err(|_| DecimalError::TooBig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NATS: DecimalRules = DecimalRules { negative: false, leading_zeros: true, max: 64 << 20 };
    const REDIS: DecimalRules = DecimalRules { negative: true, leading_zeros: false, max: i64::MAX as u64 };

    fn read(text: &[u8], rules: DecimalRules) -> Result<i64, DecimalError> {
        let mut d = Decimal::default();
        text.iter().for_each(|&b| d.push(b, rules));
        d.finish()
    }

    #[test]
    fn sizes_as_nats_reads_them() {
        assert_eq!(read(b"0", NATS), Ok(0));
        assert_eq!(read(b"007", NATS), Ok(7));
        assert_eq!(read(b"67108864", NATS), Ok(64 << 20));
        assert_eq!(read(b"67108865", NATS), Err(DecimalError::TooBig));
        assert_eq!(read(b"99999999999999999999999", NATS), Err(DecimalError::TooBig));
        assert_eq!(read(b"9999999999x", NATS), Err(DecimalError::NotNumber));
        assert_eq!(read(b"-1", NATS), Err(DecimalError::NotNumber));
        assert_eq!(read(b"", NATS), Err(DecimalError::NotNumber));
        assert_eq!(read(b"1a", NATS), Err(DecimalError::NotNumber));
    }

    #[test]
    fn integers_as_redis_string2ll_reads_them() {
        assert_eq!(read(b"-1", REDIS), Ok(-1));
        assert_eq!(read(b"0", REDIS), Ok(0));
        assert_eq!(read(b"9223372036854775807", REDIS), Ok(i64::MAX));
        assert_eq!(read(b"-9223372036854775808", REDIS), Ok(i64::MIN));
        assert!(read(b"-9223372036854775809", REDIS).is_err());
        assert!(read(b"9223372036854775808", REDIS).is_err());
        assert!(read(b"01", REDIS).is_err());
        assert!(read(b"-0", REDIS).is_err());
        assert!(read(b"-", REDIS).is_err());
        assert!(read(b"--1", REDIS).is_err());
        assert!(read(b"+1", REDIS).is_err());
        assert!(read(b"1-", REDIS).is_err());
    }

    #[test]
    fn failure_is_known_at_the_first_bad_byte() {
        let mut d = Decimal::default();
        b"922337203685477580".iter().for_each(|&b| d.push(b, REDIS));
        assert!(!d.has_failed());
        d.push(b'8', REDIS);
        assert!(d.has_failed() && !d.is_invalid(), "too big, not (yet) invalid");
        let mut d = Decimal::default();
        d.push(b'-', REDIS);
        assert!(!d.has_failed(), "a lone '-' may still become a number");
        d.push(b'x', REDIS);
        assert!(d.has_failed() && d.is_invalid());
    }
}
