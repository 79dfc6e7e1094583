//! Time as a plain number. The core never reads a clock: every call that needs "now" takes it.

use std::time::Duration;

/// A point in time, in milliseconds on the host's clock (Envoy's wall clock in the filter, a simulated
/// clock in tests). Millisecond resolution is ample for second-scale timers and keeps state small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// Later than any deadline: what "no deadline" is in arithmetic that saturates.
    pub const NEVER: Instant = Instant(u64::MAX);

    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    pub fn from_nanos(ns: u64) -> Self {
        Instant(ns / 1_000_000)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating: a deadline far in the future is still a deadline.
    pub fn after(self, d: Duration) -> Instant {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ms))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later (a clock that stepped back).
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}
