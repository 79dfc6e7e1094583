//! Upstream silence that a command entitles the server to: a blocking command (Redis `BLPOP list 5`,
//! `XREAD BLOCK 5000`, `WAIT 1 100`) is answered only when its data arrives or its timeout runs out, so a
//! server that says nothing until then is alive. Timeout 0 means "block forever".

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// The server may stay silent this long (the command's timeout).
    For(Duration),
    /// No bound: timeout 0, or a timeout the decoder could not read (the server may accept what we cannot).
    Unbounded,
}

/// A timeout this large is "forever" in practice; keeps `Duration` arithmetic far from overflow.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Silence {
    /// Silence owed for `self`, then for `next` (the server handles pipelined commands one after another).
    pub fn then(self, next: Silence) -> Silence {
        match (self, next) {
            (Silence::For(a), Silence::For(b)) => Silence::For(a.saturating_add(b).min(LONGEST)),
            _ => Silence::Unbounded,
        }
    }

    /// A timeout argument in seconds, as Redis' blocking list and sorted-set commands take it (`"5"`,
    /// `"0.5"`). `None` for a negative timeout: the server answers it at once with an error.
    pub fn from_seconds(text: &[u8]) -> Option<Silence> {
        let Some(secs) = std::str::from_utf8(text).ok().and_then(|t| t.trim().parse::<f64>().ok()) else {
            return Some(Silence::Unbounded);
        };
        if secs < 0.0 {
            return None;
        }
        if secs == 0.0 || !secs.is_finite() || secs >= LONGEST.as_secs_f64() {
            return Some(Silence::Unbounded);
        }
        Some(Silence::For(Duration::from_secs_f64(secs)))
    }

    /// A timeout argument in milliseconds (`XREAD BLOCK 5000`, `WAIT 1 100`). `None` when negative.
    pub fn from_millis(text: &[u8]) -> Option<Silence> {
        let Some(ms) = std::str::from_utf8(text).ok().and_then(|t| t.trim().parse::<i64>().ok()) else {
            return Some(Silence::Unbounded);
        };
        match ms {
            ..0 => None,
            0 => Some(Silence::Unbounded),
            ms => Some(Silence::For(Duration::from_millis(ms.unsigned_abs()).min(LONGEST))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_timeouts_as_redis_writes_them() {
        assert_eq!(Silence::from_seconds(b"5"), Some(Silence::For(Duration::from_secs(5))));
        assert_eq!(Silence::from_seconds(b"0.25"), Some(Silence::For(Duration::from_millis(250))));
        assert_eq!(Silence::from_seconds(b"0"), Some(Silence::Unbounded));
        assert_eq!(Silence::from_seconds(b"-1"), None);
        assert_eq!(Silence::from_seconds(b"inf"), Some(Silence::Unbounded));
        assert_eq!(Silence::from_seconds(b"0x10"), Some(Silence::Unbounded), "unreadable: never a false close");
        assert_eq!(Silence::from_seconds(b"1e300"), Some(Silence::Unbounded));
        assert_eq!(Silence::from_millis(b"1500"), Some(Silence::For(Duration::from_millis(1500))));
        assert_eq!(Silence::from_millis(b"0"), Some(Silence::Unbounded));
        assert_eq!(Silence::from_millis(b"-5"), None);
        assert_eq!(Silence::from_millis(b"abc"), Some(Silence::Unbounded));
    }

    #[test]
    fn pipelined_timeouts_add_up_and_forever_wins() {
        let five = Silence::For(Duration::from_secs(5));
        assert_eq!(five.then(five), Silence::For(Duration::from_secs(10)));
        assert_eq!(five.then(Silence::Unbounded), Silence::Unbounded);
        assert_eq!(Silence::For(LONGEST).then(five), Silence::For(LONGEST));
    }
}
