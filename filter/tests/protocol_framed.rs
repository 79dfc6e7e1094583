//! Property tests for the `framed` decoder: the two protocols it must describe (the Netty heartbeat chat and
//! a plain u32 length prefix) plus a little-endian self-counting variant, random conversations cut into random
//! chunks, and arbitrary configurations.

use std::collections::VecDeque;

use heartbeat::core::protocol::framed::{Endian, Framed, FramedConfig, FramedSpec};
use heartbeat::core::protocol::{Output, Owner, Protocol};
use proptest::prelude::*;

mod common;
use common::{bench_ratio, feed_any_bytes, feed_client_checking_boundaries, feed_upstream};

#[derive(Clone, Copy, Debug)]
enum Proto {
    /// Type byte 0x03 + big-endian i32 length + body; PING 0x01 and PONG 0x02 are single bytes.
    Netty,
    /// u32 big-endian length + body; PING and PONG are ordinary frames.
    Plain,
    /// Type byte + little-endian u16 length counting the whole frame; a 2-byte short frame.
    Little,
}

impl Proto {
    fn config(self) -> &'static str {
        match self {
            Proto::Netty => {
                r#"{"header_size": 5, "length_offset": 1, "length_size": 4, "short_frames": ["01", "02"],
                    "ping": "01", "pong": "02"}"#
            }
            Proto::Plain => {
                r#"{"header_size": 4, "length_size": 4, "ping": "0000000450494e47", "pong": "00000004504f4e47"}"#
            }
            Proto::Little => {
                r#"{"header_size": 3, "length_offset": 1, "length_size": 2, "length_endian": "little",
                    "length_adjust": -3, "max_frame": 4096, "short_frames": ["ff00"],
                    "ping": "0a0300", "pong": "0b0400ff"}"#
            }
        }
    }

    fn spec(self) -> FramedSpec {
        serde_json::from_str::<FramedConfig>(self.config()).unwrap().build().unwrap()
    }

    /// An ordinary data frame with this body (`kind` picks the type byte where there is one).
    fn frame(self, kind: u8, body: &[u8]) -> Vec<u8> {
        match self {
            Proto::Netty => [&[3u8][..], &(body.len() as i32).to_be_bytes(), body].concat(),
            Proto::Plain => [&(body.len() as u32).to_be_bytes()[..], body].concat(),
            // 0xff starts the short frame: keep data frames off it.
            Proto::Little => [&[kind % 0xff][..], &((body.len() + 3) as u16).to_le_bytes(), body].concat(),
        }
    }

    /// Fixed frames other than PING and PONG.
    fn others(self) -> Vec<Vec<u8>> {
        match self {
            Proto::Netty => vec![],
            Proto::Plain => vec![vec![0, 0, 0, 4, b'P', b'O', b'N', b'X'], vec![0, 0, 0, 0]],
            Proto::Little => vec![vec![0xff, 0x00], vec![0x0b, 0x04, 0x00, 0xfe], vec![0x0b, 0x03, 0x00]],
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// A client frame (the PING or not).
    Client(Vec<u8>),
    Inject,
    /// A server frame (the PONG or not).
    Server(Vec<u8>),
}

/// Bodies that contain the PING's and PONG's bytes as often as not.
fn body(spec: &FramedSpec) -> impl Strategy<Value = Vec<u8>> {
    let piece =
        prop_oneof![Just(spec.ping().to_vec()), Just(spec.pong().to_vec()), prop::collection::vec(any::<u8>(), 0..6),];
    prop::collection::vec(piece, 0..4).prop_map(|pieces| pieces.concat())
}

fn frame(proto: Proto, spec: &FramedSpec) -> impl Strategy<Value = Vec<u8>> {
    let others = proto.others();
    let data = (any::<u8>(), body(spec)).prop_map(move |(kind, body)| proto.frame(kind, &body));
    if others.is_empty() {
        data.boxed()
    } else {
        prop_oneof![3 => data, 1 => prop::sample::select(others)].boxed()
    }
}

fn steps(proto: Proto) -> impl Strategy<Value = Vec<Step>> {
    let spec = proto.spec();
    let (ping, pong) = (spec.ping().to_vec(), spec.pong().to_vec());
    let step = prop_oneof![
        3 => frame(proto, &spec).prop_map(Step::Client),
        1 => Just(Step::Client(ping)),
        2 => Just(Step::Inject),
        3 => frame(proto, &spec).prop_map(Step::Server),
        3 => Just(Step::Server(pong)),
    ];
    prop::collection::vec(step, 0..40)
}

fn chunking() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..32, 32usize..1024], 1..12)
}

fn play(spec: FramedSpec, steps: &[Step], sizes: &[usize]) -> Result<(), TestCaseError> {
    let mut framed = Framed::new(spec.clone());
    let mut owners = VecDeque::new();
    let mut out = Output::new();
    let mut run = 0;
    while run < steps.len() {
        match &steps[run] {
            Step::Inject => {
                prop_assert_eq!(framed.can_inject(), Ok(()));
                framed.on_ping_injected();
                owners.push_back(Owner::Filter);
                run += 1;
            }
            Step::Client(..) => {
                let mut stream = Vec::new();
                let mut ends = Vec::new();
                while let Some(Step::Client(frame)) = steps.get(run) {
                    // Judged by the bytes: a random data frame may equal the PING.
                    let is_ping = frame.as_slice() == spec.ping();
                    stream.extend_from_slice(frame);
                    ends.push(stream.len());
                    if is_ping {
                        owners.push_back(Owner::Client);
                    }
                    run += 1;
                }
                feed_client_checking_boundaries(&mut framed, &stream, &ends, sizes)?;
            }
            Step::Server(..) => {
                let mut stream = Vec::new();
                let mut expected = Vec::new();
                let mut filter_pongs = 0;
                while let Some(Step::Server(frame)) = steps.get(run) {
                    // Judged by the bytes: a random data frame may equal the PONG.
                    let is_pong = frame.as_slice() == spec.pong();
                    stream.extend_from_slice(frame);
                    if is_pong && owners.pop_front() == Some(Owner::Filter) {
                        filter_pongs += 1;
                    } else {
                        expected.extend_from_slice(frame);
                    }
                    run += 1;
                }
                let (seen, answered) = feed_upstream(&mut framed, &stream, sizes)?;
                prop_assert_eq!(seen, expected, "{:?}", spec);
                prop_assert_eq!(answered, filter_pongs);
            }
        }
    }
    out.clear();
    framed.release_held(&mut out);
    prop_assert!(!out.is_changed(), "nothing is held at a frame boundary");
    Ok(())
}

fn any_proto() -> impl Strategy<Value = Proto> {
    prop_oneof![Just(Proto::Netty), Just(Proto::Plain), Just(Proto::Little)]
}

/// Any configuration, valid or not, mostly near the valid ones.
fn any_config() -> impl Strategy<Value = FramedConfig> {
    let hex = || {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| b.iter().map(|x| format!("{x:02x}")).collect()),
            "[0-9a-fA-Fg ]{0,12}",
        ]
    };
    (
        (0u32..12, 0u32..12, prop_oneof![Just(1u32), Just(2), Just(4), Just(8), 0u32..10]),
        (any::<bool>(), prop_oneof![-8i64..8, any::<i64>()], prop_oneof![0u64..64, any::<u64>()]),
        (prop::collection::vec(hex(), 0..4), hex(), hex()),
    )
        .prop_map(
            |((header_size, length_offset, length_size), (little, length_adjust, max_frame), (short, ping, pong))| {
                let json = serde_json::json!({
                    "header_size": header_size, "length_offset": length_offset, "length_size": length_size,
                    "length_endian": if little { "little" } else { "big" }, "length_adjust": length_adjust,
                    "max_frame": max_frame, "short_frames": short, "ping": ping, "pong": pong,
                });
                serde_json::from_value(json).unwrap()
            },
        )
}

/// A configuration valid by construction: PING and PONG each one frame, short or with a header.
/// A configuration valid by construction (PING and PONG each one frame, short or with a header), with a
/// few more frames of that protocol.
fn valid_config() -> impl Strategy<Value = (FramedConfig, Vec<Vec<u8>>)> {
    let layout = (prop::sample::select(vec![1u32, 2, 4, 8]), 0u32..4, 0u32..3, any::<bool>(), -3i64..3);
    layout.prop_flat_map(|(length_size, length_offset, extra, little, length_adjust)| {
        let header_size = length_offset + length_size + extra;
        // Short frames start with 0xf0..=0xff; header frames never do (small lengths, low header bytes).
        let short = prop::collection::btree_map(0xf0u8..=0xff, prop::collection::vec(any::<u8>(), 0..3), 0..3);
        let frame = move |shorts: &Vec<Vec<u8>>| {
            let shorts = shorts.clone();
            prop_oneof![
                prop::sample::select(if shorts.is_empty() { vec![vec![]] } else { shorts }),
                (prop::collection::vec(0u8..0xf0, header_size as usize), prop::collection::vec(any::<u8>(), 0..4))
                    .prop_map(move |(mut header, mut body)| {
                        // A positive adjust means no body is shorter than it.
                        body.resize(body.len().max(length_adjust.max(0) as usize), 0);
                        let field = (body.len() as i64 - length_adjust).max(0) as u64;
                        let bytes = field.to_le_bytes();
                        for (k, byte) in bytes.iter().take(length_size as usize).enumerate() {
                            let at = length_offset as usize + if little { k } else { length_size as usize - 1 - k };
                            header[at] = *byte;
                        }
                        [header, body].concat()
                    }),
            ]
        };
        short
            .prop_flat_map(move |short| {
                let shorts: Vec<Vec<u8>> =
                    short.iter().map(|(first, rest)| [vec![*first], rest.clone()].concat()).collect();
                (Just(shorts.clone()), frame(&shorts), frame(&shorts), prop::collection::vec(frame(&shorts), 1..6))
            })
            .prop_map(move |(shorts, ping, pong, pool)| {
                let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                let config = FramedConfig {
                    header_size,
                    length_offset,
                    length_size,
                    length_endian: if little { Endian::Little } else { Endian::Big },
                    length_adjust,
                    max_frame: 1 << 20,
                    short_frames: shorts.iter().map(|s| hex(s)).collect(),
                    ping: hex(&ping),
                    pong: hex(&pong),
                };
                (config, pool.into_iter().filter(|f| !f.is_empty()).collect())
            })
    })
}

/// A random valid protocol and a conversation in it.
fn random_protocol_steps() -> impl Strategy<Value = (FramedSpec, Vec<Step>)> {
    valid_config()
        .prop_filter_map("PING equal to PONG, or no other frame", |(config, pool)| {
            config.build().ok().filter(|_| !pool.is_empty()).map(|spec| (spec, pool))
        })
        .prop_flat_map(|(spec, pool)| {
            let (ping, pong) = (spec.ping().to_vec(), spec.pong().to_vec());
            let step = prop_oneof![
                3 => prop::sample::select(pool.clone()).prop_map(Step::Client),
                1 => Just(Step::Client(ping)),
                2 => Just(Step::Inject),
                3 => prop::sample::select(pool).prop_map(Step::Server),
                3 => Just(Step::Server(pong)),
            ];
            (Just(spec), prop::collection::vec(step, 0..40))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn client_sees_the_server_minus_the_filters_pongs(
        (proto, steps) in any_proto().prop_flat_map(|p| (Just(p), steps(p))),
        sizes in chunking(),
    ) {
        play(proto.spec(), &steps, &sizes).map_err(|e| TestCaseError::fail(format!("{proto:?}: {e}")))?;
    }

    /// The same over random protocols that configuration can describe.
    #[test]
    fn any_protocol_client_sees_the_server_minus_the_filters_pongs(
        (spec, steps) in random_protocol_steps(),
        sizes in chunking(),
    ) {
        play(spec, &steps, &sizes)?;
    }

    /// Configurations valid by construction are accepted (unless PING and PONG came out equal).
    #[test]
    fn valid_configs_build((config, _) in valid_config()) {
        let built = config.build();
        if config.ping == config.pong || config.ping.is_empty() || config.pong.is_empty() {
            prop_assert!(built.is_err());
        } else {
            prop_assert!(built.is_ok(), "{:?}: {:?}", config, built.err());
        }
    }

    /// Any configuration is refused with a message naming a field, or describes a protocol whose PING and
    /// PONG are each one whole frame; and any bytes then give an error or a full account, never a panic.
    #[test]
    fn any_config_and_any_bytes(config in prop_oneof![any_config(), valid_config().prop_map(|(c, _)| c)], junk in prop::collection::vec(any::<u8>(), 0..256),
                                sizes in chunking()) {
        match config.build() {
            Err(message) => prop_assert!(message.starts_with("framed."), "{}", message),
            Ok(spec) => {
                let mut framed = Framed::new(spec.clone());
                prop_assert_eq!(framed.can_inject(), Ok(()));
                framed.on_client_bytes(spec.ping()).unwrap();
                prop_assert_eq!(framed.can_inject(), Ok(()), "ping is one whole frame");
                framed.on_ping_injected();
                let mut out = Output::new();
                prop_assert_eq!(framed.on_upstream_bytes(spec.pong(), &mut out), Ok(0), "pong answers the client");
                prop_assert!(!out.is_changed());
                out.clear();
                prop_assert_eq!(framed.on_upstream_bytes(spec.pong(), &mut out), Ok(1), "then the filter");
                prop_assert_eq!(out.apply(spec.pong()), Some(vec![]));
                feed_any_bytes(&mut framed, &junk, &sizes)?;
            }
        }
    }
}

/// Decoder speed against a byte scan of the same bytes, printed as ratios (a benchmark, not a timed test):
/// `cargo test --release -p heartbeat --test protocol_framed -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_upstream_throughput() {
    use std::hint::black_box;

    const CHUNK: usize = 64 * 1024;
    let big = Proto::Plain.frame(0, &vec![b'x'; 15 * 1024 * 1024]).repeat(4);
    let small: Vec<u8> = (0..200_000u32).flat_map(|i| Proto::Netty.frame(0, &i.to_be_bytes().repeat(4))).collect();
    for (name, proto, stream) in
        [("framed 4 x 15 MiB frames", Proto::Plain, &big), ("framed 200k 16-byte frames", Proto::Netty, &small)]
    {
        let spec = proto.spec();
        let mut out = Output::new();
        let decode = || {
            let mut framed = Framed::new(spec.clone());
            framed.on_ping_injected();
            for chunk in stream.chunks(CHUNK) {
                out.clear();
                black_box(framed.on_upstream_bytes(black_box(chunk), &mut out).unwrap());
            }
        };
        let scan = || {
            black_box(stream.chunks(CHUNK).map(|c| black_box(c).iter().filter(|&&b| b == 0).count()).sum::<usize>());
        };
        bench_ratio(name, "byte scan", stream.len(), decode, scan);
    }
}
