//! Helpers shared by the scenarios: timings of the standard configuration and ways to find the
//! filter's PINGs in what the upstream received.

use std::time::Duration;

use heartbeat::core::config::Timings;
use heartbeat_host_tests::testkit::TestHost;
use heartbeat_host_tests::ConnId;

/// The standard configuration's timers (see `common::heartbeat::config`): the filter's example timings.
pub const READ_IDLE: Duration = Timings::EXAMPLE.read_idle_timeout;
pub const INTERVAL: Duration = Timings::EXAMPLE.ping_interval;
pub const MAX_MISSED: u32 = Timings::EXAMPLE.max_missed_pongs;
/// The standard configuration leaves `reply_timeout` at the filter's default.
pub const REPLY_TIMEOUT: Duration = heartbeat::core::config::DEFAULT_REPLY_TIMEOUT;
/// The root tick: a tenth of the shortest timer.
pub const TICK: Duration = Duration::from_millis(100);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Times at which the upstream received `needle` (one entry per occurrence inside a chunk).
pub fn arrivals(h: &TestHost, c: ConnId, needle: &[u8]) -> Vec<Duration> {
    let mut at = Vec::new();
    for chunk in h.upstream_chunks(c).unwrap() {
        let mut rest = chunk.bytes.as_slice();
        while let Some(pos) = find(rest, needle) {
            at.push(chunk.at);
            rest = &rest[pos + needle.len()..];
        }
    }
    at
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = haystack;
    while let Some(pos) = find(rest, needle) {
        n += 1;
        rest = &rest[pos + needle.len()..];
    }
    n
}

/// Advances in steps of `step` until `until`, calling `each` after every step.
pub fn run_for(h: &mut TestHost, until: Duration, step: Duration, mut each: impl FnMut(&mut TestHost)) {
    while h.now() + step <= until {
        h.advance(step);
        each(h);
    }
}

/// `t` lies within [`from`, `from + slack`].
#[track_caller]
pub fn assert_within(t: Duration, from: Duration, slack: Duration) {
    assert!(t >= from && t <= from + slack, "{t:?} not within [{from:?}, {:?}]", from + slack);
}

/// Splits what the upstream received into the client's frames (in order) and the filter's `ping`s,
/// which may only sit at frame boundaries: `Some(frame index)` or `None` for an injected PING.
/// A client frame may be cut short at the end (still on its way).
pub fn split_upstream(upstream: &[u8], frames: &[Vec<u8>], ping: &[u8]) -> Result<Vec<Option<usize>>, String> {
    let (mut i, mut f) = (0, 0);
    let mut items = Vec::new();
    while i < upstream.len() {
        let rest = &upstream[i..];
        if f < frames.len() && rest.starts_with(&frames[f]) {
            items.push(Some(f));
            i += frames[f].len();
            f += 1;
        } else if rest.starts_with(ping) {
            items.push(None);
            i += ping.len();
        } else if f < frames.len() && frames[f].starts_with(rest) {
            break;
        } else {
            return Err(format!(
                "upstream byte {i} is neither the client's frame {f} nor a PING at a boundary: {:?}",
                String::from_utf8_lossy(rest)
            ));
        }
    }
    Ok(items)
}

/// Runs `cases` random cases from a fixed seed (CI stays reproducible; `HOST_TESTS_SEED=<n>`
/// explores other cases), panicking with the shrunk failure; returns the summed counts each case
/// reported, so a test can check that its cases exercised what they claim to.
pub fn run_seeded<S: proptest::strategy::Strategy>(
    cases: u32,
    strategy: S,
    case: impl Fn(S::Value) -> Result<(usize, usize), proptest::test_runner::TestCaseError>,
) -> (usize, usize) {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let seed: u64 = std::env::var("HOST_TESTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let (a, b) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let result = runner.run(&strategy, |value| {
        let (x, y) = case(value)?;
        a.fetch_add(x, Relaxed);
        b.fetch_add(y, Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
    (a.load(Relaxed), b.load(Relaxed))
}

/// The client's side of a property run: its frames, sent in whatever pieces the run's events ask for.
pub struct ClientStream {
    ends: Vec<usize>,
    stream: Vec<u8>,
    sent: usize,
}

impl ClientStream {
    pub fn new(frames: &[Vec<u8>]) -> ClientStream {
        let ends = frames
            .iter()
            .scan(0, |at, f| {
                *at += f.len();
                Some(*at)
            })
            .collect();
        ClientStream { ends, stream: frames.concat(), sent: 0 }
    }

    /// Sends the next `n` bytes (fewer at the end of the stream), whatever frame they cut.
    pub fn send(&mut self, h: &mut TestHost, c: ConnId, n: usize) {
        self.send_to(h, c, (self.sent + n).min(self.stream.len()));
    }

    /// Sends the rest of the frame being sent, or the next whole frame.
    pub fn finish_frame(&mut self, h: &mut TestHost, c: ConnId) {
        if let Some(end) = self.ends.iter().copied().find(|end| *end > self.sent) {
            self.send_to(h, c, end);
        }
    }

    fn send_to(&mut self, h: &mut TestHost, c: ConnId, end: usize) {
        if end > self.sent {
            h.client_send(c, &self.stream[self.sent..end]);
            self.sent = end;
        }
    }
}

/// The upstream sends `batch` in two writes, cut at `cut`/256 of its length.
pub fn upstream_send_in_two(h: &mut TestHost, c: ConnId, batch: &[u8], cut: u8) {
    let at = batch.len() * usize::from(cut) / 256;
    for part in [&batch[..at], &batch[at..]] {
        if !part.is_empty() {
            h.upstream_send(c, part);
        }
    }
}

/// A property is only worth something if its runs exercised injection and stripping.
#[track_caller]
pub fn assert_exercised(property: &str, injected: usize, stripped: usize) {
    eprintln!("{property} property: {injected} PINGs injected, {stripped} PONGs stripped");
    assert!(injected >= 5, "only {injected} PINGs injected over all runs: the cases exercised too little");
    assert!(stripped >= 3, "only {stripped} PONGs stripped over all runs: the cases exercised too little");
}
