//! The soak (`make soak`, `make soak-smoke`, `--bin soak`): thousands of connections through one Envoy with
//! two workers, over NATS, Redis and framed listeners, each protocol with an "always healthy" upstream and a
//! "will be frozen" one. Every reply is checked byte for byte; the frozen upstreams' connections must be
//! closed within the filter's bound; at the end the filter's gauges and counters must settle and balance, and
//! Envoy's memory and the filter's wasm heap must stay flat.
//!
//! - `client`: raw protocol clients that check every byte they receive.
//! - `freeze`: which connections a freeze must close, and when each one closed.
//! - `memory`: Envoy's resident memory (process or container) and the flatness check.

pub mod client;
pub mod freeze;
pub mod memory;

/// A small deterministic generator (splitmix64): the soak prints its seed, and `--seed` replays the same
/// choices (timing on a busy machine still differs from run to run).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from the clock, for runs without `--seed`.
    pub fn clock_seed() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        nanos ^ u64::from(std::process::id()).rotate_left(32)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A new generator for a task, derived from this one.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo)
        }
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> std::time::Duration {
        std::time::Duration::from_millis(self.range(lo, hi))
    }

    /// A payload length: mostly small, sometimes a few KiB, rarely up to 64 KiB (several TCP chunks).
    pub fn payload_len(&mut self) -> usize {
        let n = match self.range(0, 100) {
            0..=69 => self.range(0, 256),
            70..=94 => self.range(256, 8192),
            _ => self.range(8192, 65536),
        };
        n as usize
    }

    /// Random bytes of length `len`, often carrying the byte sequences a decoder could mistake for a frame
    /// boundary or for a PONG (`PING\r\n`, `+PONG\r\n`, a subscribe-mode pong, the framed PING/PONG frames).
    pub fn payload(&mut self, len: usize) -> Vec<u8> {
        const TRICKY: [&[u8]; 7] = [
            b"PING\r\n",
            b"PONG\r\n",
            b"+PONG\r\n",
            b"\r\n",
            b"*2\r\n$4\r\npong\r\n$0\r\n\r\n",
            &[0, 0, 0, 4, b'P', b'I', b'N', b'G'],
            &[0, 0, 0, 4, b'P', b'O', b'N', b'G'],
        ];
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            if self.chance(20) {
                let t = TRICKY[self.range(0, TRICKY.len() as u64) as usize];
                out.extend_from_slice(t);
            } else {
                out.extend_from_slice(&self.next_u64().to_le_bytes());
            }
        }
        out.truncate(len);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_generator_replays_from_its_seed_and_stays_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let r = a.range(3, 9);
            assert!((3..9).contains(&r));
            b.range(3, 9);
        }
        assert_eq!(a.range(5, 5), 5);
        for n in [0, 1, 7, 300] {
            assert_eq!(a.payload(n).len(), n);
        }
    }
}
