//! Property tests for the NATS decoder: random conversations, cut into random chunks.
//!
//! A conversation is a sequence of client frames, filter PINGs and server frames. A model queue of PONG
//! owners says which server PONGs answer the filter; the client must receive the server's bytes minus
//! exactly those, and the client's stream may take a PING exactly at its frame ends.

use std::collections::VecDeque;

use heartbeat::core::protocol::nats::Nats;
use heartbeat::core::protocol::{Output, Owner, Protocol};
use proptest::prelude::*;

mod common;
use common::{bench_ratio, feed_any_bytes, feed_client_checking_boundaries, feed_upstream};

#[derive(Clone, Debug)]
enum Step {
    /// A client frame, and whether it is a PING.
    Client(Vec<u8>, bool),
    /// The filter appends its PING to the client's stream.
    Inject,
    /// A server frame, and whether it is a PONG.
    Server(Vec<u8>, bool),
}

/// Payload bytes that look like control lines as often as not.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"PING\r\n".to_vec()),
        Just(b"PONG\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"MSG a 1 3\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..6),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|pieces| pieces.concat())
}

fn subject() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_]{1,6}(\\.[a-z*>]{1,4}){0,2}"
}

fn reply() -> impl Strategy<Value = Option<String>> {
    prop::option::of("_INBOX\\.[a-z0-9]{1,8}")
}

/// `VERB subject [sid] [reply] [hdr] total\r\n<headers><payload>\r\n`.
fn with_payload(verb: &str, args: &[&str], headers: Option<Vec<u8>>, payload: Vec<u8>) -> Vec<u8> {
    let mut line = vec![verb.to_string()];
    line.extend(args.iter().filter(|a| !a.is_empty()).map(|a| a.to_string()));
    let total = headers.as_ref().map_or(0, Vec::len) + payload.len();
    if let Some(h) = &headers {
        line.push(h.len().to_string());
    }
    line.push(total.to_string());
    let mut frame = format!("{}\r\n", line.join(" ")).into_bytes();
    frame.extend(headers.unwrap_or_default());
    frame.extend(payload);
    frame.extend_from_slice(b"\r\n");
    frame
}

fn headers() -> impl Strategy<Value = Vec<u8>> {
    payload().prop_map(|p| [b"NATS/1.0\r\nX: ".as_slice(), &p, b"\r\n\r\n"].concat())
}

fn client_frame() -> impl Strategy<Value = Step> {
    prop_oneof![
        (subject(), reply(), payload()).prop_map(|(s, r, p)| {
            let verb = if s.len() % 2 == 0 { "PUB" } else { "pub" };
            Step::Client(with_payload(verb, &[&s, r.as_deref().unwrap_or("")], None, p), false)
        }),
        (subject(), reply(), headers(), payload()).prop_map(|(s, r, h, p)| Step::Client(
            with_payload("HPUB", &[&s, r.as_deref().unwrap_or("")], Some(h), p),
            false
        )),
        (subject(), 1u32..99).prop_map(|(s, sid)| Step::Client(format!("SUB {s} {sid}\r\n").into_bytes(), false)),
        (1u32..99).prop_map(|sid| Step::Client(format!("UNSUB {sid}\n").into_bytes(), false)),
        prop_oneof![Just(&b"PING\r\n"[..]), Just(&b"ping\r\n"[..]), Just(&b"PING\n"[..])]
            .prop_map(|p| Step::Client(p.to_vec(), true)),
        Just(Step::Client(b"PONG\r\n".to_vec(), false)),
    ]
}

fn server_frame() -> impl Strategy<Value = Step> {
    prop_oneof![
        (subject(), 1u32..99, reply(), payload()).prop_map(|(s, sid, r, p)| {
            Step::Server(with_payload("MSG", &[&s, &sid.to_string(), r.as_deref().unwrap_or("")], None, p), false)
        }),
        (subject(), 1u32..99, reply(), headers(), payload()).prop_map(|(s, sid, r, h, p)| {
            Step::Server(with_payload("HMSG", &[&s, &sid.to_string(), r.as_deref().unwrap_or("")], Some(h), p), false)
        }),
        Just(Step::Server(b"INFO {\"server_id\":\"N\",\"headers\":true}\r\n".to_vec(), false)),
        Just(Step::Server(b"+OK\r\n".to_vec(), false)),
        Just(Step::Server(b"-ERR 'Permissions Violation for Publish to PONG'\r\n".to_vec(), false)),
        Just(Step::Server(b"PING\r\n".to_vec(), false)),
        prop_oneof![Just(&b"PONG\r\n"[..]), Just(&b"pong\r\n"[..]), Just(&b"PONG\n"[..])]
            .prop_map(|p| Step::Server(p.to_vec(), true)),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(prop_oneof![3 => client_frame(), 2 => Just(Step::Inject), 4 => server_frame()], 0..40)
}

/// Chunk sizes, used in turn.
fn chunking() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..64, 64usize..4096], 1..12)
}

/// Plays a conversation; client steps and server steps in runs, each run cut by `sizes`.
fn play(steps: &[Step], sizes: &[usize]) -> Result<(), TestCaseError> {
    let mut nats = Nats::new();
    let mut owners = VecDeque::new();
    let mut out = Output::new();
    let connect = b"CONNECT {\"verbose\":false,\"headers\":true}\r\n";
    nats.on_client_bytes(connect).unwrap();
    let mut run = 0;
    while run < steps.len() {
        match &steps[run] {
            Step::Inject => {
                prop_assert_eq!(nats.can_inject(), Ok(()));
                nats.on_ping_injected();
                owners.push_back(Owner::Filter);
                run += 1;
            }
            Step::Client(..) => {
                let mut stream = Vec::new();
                let mut ends = Vec::new();
                while let Some(Step::Client(frame, is_ping)) = steps.get(run) {
                    stream.extend_from_slice(frame);
                    ends.push(stream.len());
                    if *is_ping {
                        owners.push_back(Owner::Client);
                    }
                    run += 1;
                }
                feed_client_checking_boundaries(&mut nats, &stream, &ends, sizes)?;
            }
            Step::Server(..) => {
                let mut stream = Vec::new();
                let mut expected = Vec::new();
                let mut filter_pongs = 0;
                while let Some(Step::Server(frame, is_pong)) = steps.get(run) {
                    stream.extend_from_slice(frame);
                    if *is_pong && owners.pop_front() == Some(Owner::Filter) {
                        filter_pongs += 1;
                    } else {
                        expected.extend_from_slice(frame);
                    }
                    run += 1;
                }
                let (seen, answered) = feed_upstream(&mut nats, &stream, sizes)?;
                prop_assert_eq!(String::from_utf8_lossy(&seen), String::from_utf8_lossy(&expected));
                prop_assert_eq!(answered, filter_pongs);
            }
        }
    }
    out.clear();
    nats.release_held(&mut out);
    prop_assert!(!out.is_changed(), "nothing is held at a frame boundary");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn client_sees_the_server_minus_the_filters_pongs(steps in steps(), sizes in chunking()) {
        play(&steps, &sizes)?;
    }

    /// Garbage, and valid streams with one byte changed: an error or a full account, never a panic.
    #[test]
    fn any_bytes_are_an_error_or_accounted(
        junk in prop::collection::vec(any::<u8>(), 0..512),
        steps in steps(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        sizes in chunking(),
    ) {
        let mut valid: Vec<u8> = steps.iter().flat_map(|s| match s {
            Step::Client(f, _) | Step::Server(f, _) => f.clone(),
            Step::Inject => b"PING\r\n".to_vec(),
        }).collect();
        if !valid.is_empty() {
            let at = flip.index(valid.len());
            valid[at] = byte;
        }
        for stream in [&junk, &valid] {
            let mut nats = Nats::new();
            nats.on_client_bytes(b"CONNECT {}\r\n").unwrap();
            nats.on_ping_injected();
            feed_any_bytes(&mut nats, stream, &sizes)?;
        }
    }
}

/// Decoder speed against a newline scan of the same bytes, printed as ratios (a benchmark, not a timed test):
/// `cargo test --release -p heartbeat --test protocol_nats -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_upstream_throughput() {
    use std::hint::black_box;

    const CHUNK: usize = 64 * 1024;
    // Large messages: the payload must cost O(1) per chunk, far below touching its bytes.
    let payload = 60 * 1024 * 1024;
    let mut big = format!("MSG big 1 {payload}\r\n").into_bytes();
    big.resize(big.len() + payload, b'x');
    big.extend_from_slice(b"\r\n");
    // Small messages: header lines dominate.
    let small: Vec<u8> =
        (0..200_000).flat_map(|i| format!("MSG orders.eu.{i} 7 16\r\n0123456789abcdef\r\n").into_bytes()).collect();

    for (name, stream) in [("nats 60 MiB message", &big), ("nats 200k small messages", &small)] {
        let mut out = Output::new();
        let decode = || {
            let mut nats = Nats::new();
            nats.on_client_bytes(b"CONNECT {}\r\n").unwrap();
            nats.on_ping_injected();
            for chunk in stream.chunks(CHUNK) {
                out.clear();
                black_box(nats.on_upstream_bytes(black_box(chunk), &mut out).unwrap());
            }
        };
        let scan = || {
            black_box(
                stream.chunks(CHUNK).map(|c| black_box(c).iter().filter(|&&b| b == b'\n').count()).sum::<usize>(),
            );
        };
        bench_ratio(name, "newline scan", stream.len(), decode, scan);
    }
}
