//! `framed` layouts: the three the property tests use (the README's two and a little-endian self-counting
//! one), and layouts derived from fuzzer bytes.

use heartbeat::core::protocol::framed::{Endian, FramedConfig, FramedSpec};

use crate::{hex, Bytes};

/// The fixed layouts, as the JSON of the plugin's `framed` section.
pub const FIXED: [&str; 3] = [
    // Netty heartbeat chat: type byte 0x03 + big-endian i32 length + body; PING 01 and PONG 02 are one byte.
    r#"{"header_size": 5, "length_offset": 1, "length_size": 4, "short_frames": ["01", "02"], "ping": "01", "pong": "02"}"#,
    // u32 big-endian length + body; PING and PONG are ordinary frames.
    r#"{"header_size": 4, "length_size": 4, "ping": "0000000450494e47", "pong": "00000004504f4e47"}"#,
    // Type byte + little-endian u16 length counting the whole frame; a 2-byte short frame starting ff.
    r#"{"header_size": 3, "length_offset": 1, "length_size": 2, "length_endian": "little", "length_adjust": -3, "max_frame": 4096, "short_frames": ["ff00"], "ping": "0a0300", "pong": "0b0400ff"}"#,
];

/// The fixed layouts as `FramedConfig` values (the same as `FIXED`).
pub fn fixed_config(i: usize) -> FramedConfig {
    let base = FramedConfig {
        header_size: 5,
        length_offset: 1,
        length_size: 4,
        length_endian: Endian::Big,
        length_adjust: 0,
        max_frame: 16 * 1024 * 1024,
        short_frames: vec!["01".into(), "02".into()],
        ping: "01".into(),
        pong: "02".into(),
    };
    match i % FIXED.len() {
        0 => base,
        1 => FramedConfig {
            header_size: 4,
            length_offset: 0,
            short_frames: vec![],
            ping: "0000000450494e47".into(),
            pong: "00000004504f4e47".into(),
            ..base
        },
        _ => FramedConfig {
            header_size: 3,
            length_offset: 1,
            length_size: 2,
            length_endian: Endian::Little,
            length_adjust: -3,
            max_frame: 4096,
            short_frames: vec!["ff00".into()],
            ping: "0a0300".into(),
            pong: "0b0400ff".into(),
        },
    }
}

pub fn fixed(i: usize) -> FramedSpec {
    fixed_config(i).build().expect("fixed layouts build")
}

/// A data frame of fixed layout `i` (never equal to its PING or PONG).
pub fn data_frame(i: usize, body: &[u8]) -> Vec<u8> {
    match i % FIXED.len() {
        0 => [&[3u8][..], &(body.len() as u32).to_be_bytes(), body].concat(),
        1 => {
            let body = if body == b"PING" || body == b"PONG" { b"PONX".as_slice() } else { body };
            [&(body.len() as u32).to_be_bytes()[..], body].concat()
        }
        _ => [&[0x0cu8][..], &((body.len() + 3) as u16).to_le_bytes(), body].concat(),
    }
}

/// Fixed frames of layout `i` other than its PING and PONG.
pub fn other_frames(i: usize) -> Vec<Vec<u8>> {
    match i % FIXED.len() {
        0 => vec![],
        1 => vec![vec![0, 0, 0, 0], vec![0, 0, 0, 4, b'P', b'O', b'N', b'X']],
        _ => vec![vec![0xff, 0x00], vec![0x0b, 0x04, 0x00, 0xfe], vec![0x0b, 0x03, 0x00]],
    }
}

/// A layout from the fuzzer's bytes: a fixed one, or one derived from the next bytes (header size, length
/// field, endianness, adjustment, limit, short frames, PING and PONG). Falls back to a fixed layout when the
/// derived one does not build (the `config` targets cover refusals).
pub fn from_bytes(input: &mut Bytes) -> FramedSpec {
    let choice = input.u8();
    if choice < 0x80 {
        return fixed(usize::from(choice));
    }
    let config = derived(input);
    config.build().unwrap_or_else(|_| fixed(usize::from(choice)))
}

pub fn derived(input: &mut Bytes) -> FramedConfig {
    let header_size = 1 + u32::from(input.u8() % 12);
    let mut length_size = [1u32, 2, 4, 8][input.pick(4)];
    while length_size > header_size {
        length_size /= 2;
    }
    let length_offset = u32::from(input.u8()) % (header_size - length_size + 1);
    let little = input.u8() & 1 == 1;
    let length_adjust = i64::from(input.u8() as i8);
    let max_frame = [1u64, 255, 4096, 1 << 20, 1 << 31][input.pick(5)];
    // Short frames start with 0xf0.., data frames with other bytes.
    let short: Vec<Vec<u8>> = (0..input.pick(3))
        .map(|k| {
            let len = 1 + input.pick(3);
            let mut f = vec![0xf0 + k as u8];
            f.extend(std::iter::repeat_n(0x5a, len - 1));
            f
        })
        .collect();
    let frame = |tag: u8, body_len: u64| -> Vec<u8> {
        let field = i128::from(body_len) - i128::from(length_adjust);
        let field = u64::try_from(field.max(0)).unwrap_or(0);
        let mut header = vec![tag; header_size as usize];
        let bytes = field.to_be_bytes();
        let field_bytes = &bytes[8 - length_size as usize..];
        for (k, b) in field_bytes.iter().enumerate() {
            let at = if little { length_size as usize - 1 - k } else { k };
            header[length_offset as usize + at] = *b;
        }
        let body_len = usize::try_from(body_len).unwrap_or(0);
        header.extend(std::iter::repeat_n(tag, body_len));
        header
    };
    let ping_kind = input.u8();
    let pong_kind = input.u8();
    let ping = if ping_kind & 0x80 != 0 && !short.is_empty() {
        short[0].clone()
    } else {
        frame(0x11, u64::from(ping_kind % 4))
    };
    let pong =
        if pong_kind & 0x80 != 0 && short.len() > 1 { short[1].clone() } else { frame(0x22, u64::from(pong_kind % 4)) };
    FramedConfig {
        header_size,
        length_offset,
        length_size,
        length_endian: if little { Endian::Little } else { Endian::Big },
        length_adjust,
        max_frame,
        short_frames: short.iter().map(|f| hex(f)).collect(),
        ping: hex(&ping),
        pong: hex(&pong),
    }
}
