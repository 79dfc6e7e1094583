//! The framed decoder on three protocols (the Netty heartbeat chat, a plain u32 length prefix, a little-endian
//! self-counting variant): every split of every stream, bad frames, bad configurations, bodies skipped by counting.

use super::config::decode_hex;
use super::*;
use crate::core::protocol::{check_skipping, client_view, frame_ends};

/// The Netty heartbeat chat: type byte 0x03 + big-endian i32 length + body; PING 0x01 and PONG 0x02 alone.
const NETTY: &str = r#"{"header_size": 5, "length_offset": 1, "length_size": 4, "length_endian": "big",
    "length_adjust": 0, "max_frame": 16777216, "short_frames": ["01", "02"], "ping": "01", "pong": "02"}"#;
/// u32 big-endian length, then the body; PING and PONG are ordinary frames.
const PLAIN: &str = r#"{"header_size": 4, "length_size": 4, "ping": "0000000450494e47", "pong": "00000004504f4e47"}"#;
/// Little-endian u16 length that counts the whole frame (itself and a type byte).
const LITTLE: &str = r#"{"header_size": 3, "length_offset": 1, "length_size": 2, "length_endian": "little",
    "length_adjust": -3, "max_frame": 1000, "ping": "0a0300", "pong": "0b0400ff"}"#;

fn config(json: &str) -> FramedConfig {
    serde_json::from_str(json).unwrap()
}

fn framed(json: &str) -> Framed {
    Framed::new(config(json).build().unwrap())
}

fn netty_message(body: &[u8]) -> Vec<u8> {
    let len = i32::try_from(body.len()).unwrap();
    [&[3u8][..], &len.to_be_bytes(), body].concat()
}

fn plain_frame(body: &[u8]) -> Vec<u8> {
    [&u32::try_from(body.len()).unwrap().to_be_bytes()[..], body].concat()
}

fn little_frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len() + 3).unwrap();
    [&[kind][..], &len.to_le_bytes(), body].concat()
}

/// Client frames for each protocol; bodies contain the PING's and PONG's bytes.
fn client_frames(json: &str) -> Vec<Vec<u8>> {
    match json {
        NETTY => {
            vec![netty_message(b"hello"), vec![1], netty_message(&[1, 2, 1, 2]), netty_message(b""), vec![2], vec![1]]
        }
        PLAIN => vec![
            plain_frame(b"hello"),
            hex("0000000450494e47"),
            plain_frame(&hex("0000000450494e47")),
            plain_frame(b""),
            plain_frame(b"PONG"),
            hex("0000000450494e47"),
        ],
        _ => vec![
            little_frame(7, b"hi"),
            hex("0a0300"),
            little_frame(10, &[0]),
            little_frame(11, &[0xff]),
            hex("0a0300"),
        ],
    }
}

fn hex(text: &str) -> Vec<u8> {
    decode_hex("test", text).unwrap()
}

const CLIENT_PINGS: u64 = 2;

#[test]
fn the_documented_example_config_builds() {
    let spec = config(NETTY).build().unwrap();
    assert_eq!(spec.ping(), [1]);
    assert_eq!(spec.pong(), [2]);
    assert_eq!(config(PLAIN).build().unwrap().pong(), b"\0\0\0\x04PONG");
}

#[test]
fn client_boundaries_after_every_byte() {
    for json in [NETTY, PLAIN, LITTLE] {
        let frames = client_frames(json);
        let ends = frame_ends(&frames);
        let mut framed = framed(json);
        assert_eq!(framed.can_inject(), Ok(()));
        for (at, byte) in frames.concat().iter().enumerate() {
            framed.on_client_bytes(std::slice::from_ref(byte)).unwrap();
            let expected = if ends.contains(&(at + 1)) { Ok(()) } else { Err(Defer::MidFrame) };
            assert_eq!(framed.can_inject(), expected, "{json}: after {} bytes", at + 1);
        }
        assert_eq!(framed.pairing.owners().total(), CLIENT_PINGS, "{json}");
    }
}

#[test]
fn client_split_at_every_position() {
    for json in [NETTY, PLAIN, LITTLE] {
        let frames = client_frames(json);
        let ends = frame_ends(&frames);
        let stream = frames.concat();
        for cut in 0..=stream.len() {
            let mut framed = framed(json);
            framed.on_client_bytes(&stream[..cut]).unwrap();
            assert_eq!(framed.can_inject().is_ok(), cut == 0 || ends.contains(&cut), "{json}: cut {cut}");
            framed.on_client_bytes(&stream[cut..]).unwrap();
            assert_eq!(framed.can_inject(), Ok(()));
            assert_eq!(framed.pairing.owners().total(), CLIENT_PINGS, "{json}: cut {cut}");
        }
    }
}

/// Server frames, each with whether the client must receive it; owners queued Filter, Client, Filter.
fn server_frames(json: &str) -> Vec<(Vec<u8>, bool)> {
    match json {
        NETTY => vec![
            (netty_message(&[2, 2]), true),
            (vec![2], false),
            (netty_message(b"x"), true),
            (vec![1], true),
            (vec![2], true),
            (vec![2], false),
            (vec![2], true),
        ],
        PLAIN => vec![
            (plain_frame(&hex("00000004504f4e47")), true),
            (hex("00000004504f4e47"), false),
            (plain_frame(b"PONX"), true),
            (plain_frame(b"PON"), true),
            (hex("00000004504f4e47"), true),
            (plain_frame(b""), true),
            (hex("00000004504f4e47"), false),
            (hex("00000004504f4e47"), true),
        ],
        _ => vec![
            (little_frame(11, &[0xfe]), true),
            (hex("0b0400ff"), false),
            (little_frame(11, &[0xff, 0]), true),
            (hex("0b0400ff"), true),
            (hex("0b0400ff"), false),
            (hex("0b0400ff"), true),
        ],
    }
}

fn with_owners(json: &str) -> Framed {
    let mut framed = framed(json);
    framed.on_ping_injected();
    let ping = framed.ping().to_vec();
    framed.on_client_bytes(&ping).unwrap();
    framed.on_ping_injected();
    framed
}

fn stream_and_expected(json: &str) -> (Vec<u8>, Vec<u8>) {
    let frames = server_frames(json);
    let stream = frames.iter().flat_map(|(f, _)| f.clone()).collect();
    let expected = frames.iter().filter(|(_, keep)| *keep).flat_map(|(f, _)| f.clone()).collect();
    (stream, expected)
}

#[test]
fn strips_filter_pongs_at_every_pair_of_splits() {
    for json in [NETTY, PLAIN, LITTLE] {
        let (stream, expected) = stream_and_expected(json);
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut framed = with_owners(json);
                let (seen, answered) = client_view(&mut framed, &[&stream[..a], &stream[a..b], &stream[b..]]);
                assert!(seen == expected && answered == 2, "{json}: cuts at {a}, {b}: {seen:?}");
                assert!(framed.pairing.owners().is_empty());
            }
        }
    }
}

#[test]
fn strips_filter_pongs_byte_by_byte() {
    for json in [NETTY, PLAIN, LITTLE] {
        let (stream, expected) = stream_and_expected(json);
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(client_view(&mut with_owners(json), &chunks), (expected, 2), "{json}");
    }
}

#[test]
fn held_pong_prefix_is_given_back() {
    let mut framed = with_owners(PLAIN);
    let mut out = Output::new();
    let start = hex("00000004504f");
    assert_eq!(framed.on_upstream_bytes(&start, &mut out), Ok(0));
    assert_eq!(out.apply(&start).unwrap(), b"");
    out.clear();
    framed.release_held(&mut out);
    assert_eq!(out.apply(&[]).unwrap(), start);
    // The frame goes on being forwarded, and is not taken for a PONG it was not allowed to strip.
    out.clear();
    assert_eq!(framed.on_upstream_bytes(b"NG", &mut out), Ok(1));
    assert!(!out.is_changed());
}

#[test]
fn frames_seen_whole_are_not_edited_while_a_pong_is_owed() {
    let mut plain = with_owners(PLAIN);
    let mut out = Output::new();
    let frames = [plain_frame(b"PONX"), plain_frame(b"hello")].concat();
    assert_eq!(plain.on_upstream_bytes(&frames, &mut out), Ok(0));
    assert!(!out.is_changed());
}

#[test]
fn bad_frames_are_errors_and_give_held_bytes_back() {
    let mut netty = with_owners(NETTY);
    let mut out = Output::new();
    let huge = [3u8, 0x7f, 0xff, 0xff, 0xff];
    assert_eq!(netty.on_upstream_bytes(&huge, &mut out), Err(ProtocolError::upstream("frame larger than max_frame")));
    assert!(netty.on_upstream_bytes(&[2], &mut out).is_err(), "errors are sticky");

    let mut little = framed(LITTLE);
    assert_eq!(little.on_client_bytes(&[7, 2, 0]), Err(ProtocolError::client("negative frame length")));
    assert_eq!(little.can_inject(), Err(Defer::MidFrame));

    // A header announcing too much while its first bytes were held: they come back before the error.
    let mut little = with_owners(LITTLE);
    out.clear();
    little.on_upstream_bytes(&[0x0b], &mut out).unwrap();
    assert_eq!(out.apply(&[0x0b]).unwrap(), b"");
    out.clear();
    let err = little.on_upstream_bytes(&[0x02, 0], &mut out).unwrap_err();
    assert_eq!(err.reason, "negative frame length");
    assert_eq!(out.apply(&[0x02, 0]).unwrap(), [0x0b, 0x02, 0]);
}

fn error_of(json: &str) -> String {
    match serde_json::from_str::<FramedConfig>(json) {
        Ok(config) => config.validate().unwrap_err(),
        Err(e) => format!("serde: {e}"),
    }
}

#[test]
fn bad_configs_are_rejected_naming_the_field() {
    let cases = [
        (r#"{"header_size":4,"length_size":4,"ping":"0g","pong":"02"}"#, "framed.ping: bad hex"),
        (r#"{"header_size":4,"length_size":4,"ping":"000","pong":"02"}"#, "framed.ping: bad hex"),
        (r#"{"header_size":4,"length_size":4,"ping":"","pong":"02"}"#, "framed.ping: empty"),
        (r#"{"header_size":4,"length_size":3,"ping":"01","pong":"02"}"#, "framed.length_size: must be 1, 2, 4 or 8"),
        (r#"{"header_size":5,"length_offset":2,"length_size":4,"ping":"01","pong":"02"}"#, "framed.length_offset"),
        (r#"{"header_size":0,"length_size":1,"ping":"01","pong":"02"}"#, "framed.header_size"),
        (r#"{"header_size":65,"length_size":1,"ping":"01","pong":"02"}"#, "framed.header_size"),
        (r#"{"header_size":4,"length_size":4,"max_frame":0,"ping":"01","pong":"02"}"#, "framed.max_frame"),
        (r#"{"header_size":4,"length_size":4,"max_frame":99999999999,"ping":"01","pong":"02"}"#, "framed.max_frame"),
        (
            r#"{"header_size":4,"length_size":4,"length_adjust":-99999999999,"ping":"01","pong":"02"}"#,
            "framed.length_adjust",
        ),
        (
            r#"{"header_size":4,"length_size":4,"ping":"00000004","pong":"00000000"}"#,
            "framed.ping: must be exactly one frame, but its 4 bytes are an incomplete",
        ),
        (
            r#"{"header_size":4,"length_size":4,"ping":"0000000050","pong":"00000000"}"#,
            "framed.ping: must be exactly one frame, but its first frame ends after 4 of 5",
        ),
        (
            r#"{"header_size":4,"length_size":4,"ping":"00000000","pong":"00000001"}"#,
            "framed.pong: must be exactly one frame",
        ),
        (
            r#"{"header_size":4,"length_size":4,"max_frame":2,"ping":"00000003414243","pong":"00000000"}"#,
            "framed.ping: not a valid frame: frame larger than max_frame",
        ),
        (r#"{"header_size":4,"length_size":4,"ping":"00000000","pong":"00000000"}"#, "framed.pong: equal to ping"),
        (
            r#"{"header_size":4,"length_size":4,"short_frames":["01","0102"],"ping":"01","pong":"02"}"#,
            "framed.short_frames[1]: another short frame already starts with byte 01",
        ),
        (
            r#"{"header_size":4,"length_size":4,"short_frames":["01","zz"],"ping":"01","pong":"02"}"#,
            "framed.short_frames[1]: bad hex",
        ),
        (
            r#"{"header_size":4,"length_size":4,"short_frames":["0102"],"ping":"01","pong":"0000000102"}"#,
            "framed.ping: must be exactly one frame, but its 1 bytes are an incomplete",
        ),
        (r#"{"header_size":4,"length_size":4,"ping":"01","pong":"02","extra":1}"#, "serde: unknown field `extra`"),
        (
            r#"{"header_size":4,"length_size":4,"length_endian":"middle","ping":"01","pong":"02"}"#,
            "serde: unknown variant `middle`",
        ),
    ];
    for (json, expected) in cases {
        let error = error_of(json);
        assert!(error.starts_with(expected), "{json}\n  gave: {error}\n  want: {expected}");
    }
}

#[test]
fn hex_accepts_case_and_spaces() {
    assert_eq!(hex("00 0a FF"), [0, 10, 255]);
}

const TEN_MB: usize = 10 * 1024 * 1024;

#[test]
fn ten_megabyte_body_passes_through_unchanged() {
    for json in [NETTY, PLAIN] {
        let mut framed = with_owners(json);
        let pong = framed.spec.pong().to_vec();
        let body: Vec<u8> = pong.iter().copied().cycle().take(TEN_MB).collect();
        let stream = if json == NETTY { netty_message(&body) } else { plain_frame(&body) };
        let mut out = Output::new();
        for chunk in stream.chunks(64 * 1024) {
            out.clear();
            assert_eq!(framed.on_upstream_bytes(chunk, &mut out), Ok(0));
            assert!(!out.is_changed(), "{json}");
            assert_eq!(out.accounted(), chunk.len());
        }
        assert!(framed.upstream.at_boundary());
        out.clear();
        assert_eq!(framed.on_upstream_bytes(&pong, &mut out), Ok(1));
        assert_eq!(out.apply(&pong).unwrap(), b"");
    }
}

#[test]
fn ten_megabyte_client_frame_defers_injection() {
    let mut framed = framed(PLAIN);
    let stream = plain_frame(&vec![0x50; TEN_MB]);
    for chunk in stream.chunks(64 * 1024) {
        framed.on_client_bytes(chunk).unwrap();
        assert_eq!(framed.can_inject().is_ok(), chunk.as_ptr_range().end == stream.as_ptr_range().end);
    }
}

#[test]
fn skipping_what_may_be_skipped_is_feeding_it() {
    for json in [NETTY, PLAIN, LITTLE] {
        let (upstream, _) = stream_and_expected(json);
        let (client, upstream) = check_skipping(|| with_owners(json), &client_frames(json).concat(), &upstream);
        assert!(client > 0 && upstream > 0, "{json}: bodies were skippable: {client}, {upstream}");
    }
    let mut plain = framed(PLAIN);
    plain.on_client_bytes(&plain_frame(b"PONG")[..5]).unwrap();
    assert_eq!(plain.client_skippable(), 0, "a frame that may still be the PING is read");
    plain.on_client_bytes(b"O").unwrap();
    assert_eq!(plain.client_skippable(), 1, "the body but its last byte, which ends the frame");
    assert_eq!(plain.skip_client(100), 1);
    assert_eq!(plain.can_inject(), Err(Defer::MidFrame));
    plain.on_client_bytes(b"G").unwrap();
    assert_eq!(plain.can_inject(), Ok(()));
}
