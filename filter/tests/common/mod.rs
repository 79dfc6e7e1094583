//! Helpers shared by the protocol property tests and decoder benchmarks (each test binary uses some of them).
#![allow(dead_code)]

use heartbeat::core::protocol::testing::{ClientView, ViewError};
use heartbeat::core::protocol::{Defer, Output, Protocol};

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

/// Feeds `bytes`, cut by `sizes`, to both sides of `protocol` as a network would, with a PING offered after
/// every client chunk: each call either fails with an error or accounts for every byte of its chunk. Bad bytes
/// may give errors; they must never give a panic or a partial account. Held bytes are given back at the end.
pub fn feed_any_bytes(
    protocol: &mut dyn Protocol,
    bytes: &[u8],
    sizes: &[usize],
) -> Result<(), proptest::test_runner::TestCaseError> {
    let mut out = Output::new();
    for chunk in chunks(bytes, sizes) {
        if protocol.on_client_bytes(chunk).is_ok() && protocol.can_inject().is_ok() {
            protocol.on_ping_injected();
        }
        out.clear();
        if protocol.on_upstream_bytes(chunk, &mut out).is_ok() {
            proptest::prop_assert_eq!(out.accounted(), chunk.len());
        }
        let _ = out.apply(chunk);
    }
    out.clear();
    protocol.release_held(&mut out);
    Ok(())
}

/// Decoder speed against the cheapest pass over the same bytes, as a ratio measured side by side in one run
/// (printed, never asserted: these machines are noisy). `decode` and `baseline` each do one round over
/// `bytes_per_round` bytes.
pub fn bench_ratio(
    name: &str,
    baseline_name: &str,
    bytes_per_round: usize,
    decode: impl FnMut(),
    baseline: impl FnMut(),
) {
    use std::time::Instant;
    fn time(rounds: usize, mut f: impl FnMut()) -> f64 {
        let start = Instant::now();
        for _ in 0..rounds {
            f();
        }
        start.elapsed().as_secs_f64()
    }
    const ROUNDS: usize = 8;
    let decoder = time(ROUNDS, decode);
    let base = time(ROUNDS, baseline);
    let mb = (bytes_per_round * ROUNDS) as f64 / 1e6;
    println!(
        "{name:<44} decoder {:>6.0} MB/s, {baseline_name} {:>6.0} MB/s, time ratio {:.4}",
        mb / decoder,
        mb / base,
        decoder / base
    );
}

/// Feeds the client's valid `stream`, cut by `sizes`: after every chunk a PING may go in exactly where one of
/// the frames ends (`ends`, offsets in `stream`), and nowhere else.
pub fn feed_client_checking_boundaries(
    protocol: &mut dyn Protocol,
    stream: &[u8],
    ends: &[usize],
    sizes: &[usize],
) -> Result<(), proptest::test_runner::TestCaseError> {
    let mut fed = 0;
    for chunk in chunks(stream, sizes) {
        protocol.on_client_bytes(chunk).expect("valid client bytes parse");
        fed += chunk.len();
        let expected = if ends.contains(&fed) { Ok(()) } else { Err(Defer::MidFrame) };
        proptest::prop_assert_eq!(
            protocol.can_inject(),
            expected,
            "after {} of {:?}",
            fed,
            String::from_utf8_lossy(stream)
        );
    }
    Ok(())
}

/// Feeds the upstream's valid `stream`, cut by `sizes`, with every byte of every chunk accounted for; returns
/// what the client receives and how many replies to the filter's PINGs were stripped (held bytes are not given
/// back: a valid stream ends at a frame boundary, where nothing is held).
pub fn feed_upstream(
    protocol: &mut dyn Protocol,
    stream: &[u8],
    sizes: &[usize],
) -> Result<(Vec<u8>, u32), proptest::test_runner::TestCaseError> {
    let mut view = ClientView::new();
    let mut answered = 0;
    for chunk in chunks(stream, sizes) {
        match view.feed(protocol, chunk) {
            Ok(n) => answered += n,
            Err(ViewError::Protocol(error)) => panic!("valid upstream bytes parse: {error}"),
            Err(broken) => return Err(proptest::test_runner::TestCaseError::fail(broken.to_string())),
        }
    }
    Ok((view.into_seen(), answered))
}
