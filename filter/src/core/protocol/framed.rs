//! A length-prefixed binary protocol described in configuration.
//!
//! A frame is either a *short frame*, a fixed number of bytes recognised by its first byte (the Netty
//! heartbeat chat's one-byte PING and PONG), or a header of `header_size` bytes holding a length field
//! followed by a body of `field + length_adjust` bytes. The filter's PING and the PONG that answers it are
//! given as the exact bytes of one frame each; a server frame equal to the PONG pops [`PongOwners`].
//!
//! [`FramedConfig`] is what the operator writes; [`FramedConfig::build`] checks it and decodes the hex once into
//! a [`FramedSpec`] that every connection shares. [`FrameReader`] follows one direction: header bytes one by
//! one (at most 64), bodies skipped by counting, nothing buffered.

use std::sync::Arc;

use serde::Deserialize;

use super::{Defer, Output, Owner, PongOwners, Protocol, ProtocolError};

/// Headers, short frames, PING and PONG are small fixed things; larger values are configuration mistakes.
const MAX_HEADER: u32 = 64;
const MAX_FIXED_FRAME: usize = 64;
/// Bodies are skipped by counting, so this bounds nothing in memory; above it is surely a mistake.
const MAX_MAX_FRAME: u64 = 1 << 31;
const DEFAULT_MAX_FRAME: u64 = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    #[default]
    Big,
    Little,
}

/// The `"framed"` section of the plugin configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FramedConfig {
    /// Bytes before the body, the length field included (short frames have no header).
    pub header_size: u32,
    /// Where the length field starts inside the header.
    #[serde(default)]
    pub length_offset: u32,
    /// 1, 2, 4 or 8 bytes.
    pub length_size: u32,
    #[serde(default)]
    pub length_endian: Endian,
    /// Added to the length field to get the body length (-4 when the field counts itself).
    #[serde(default)]
    pub length_adjust: i64,
    /// Largest body accepted; a larger one is a protocol error.
    #[serde(default = "default_max_frame")]
    pub max_frame: u64,
    /// Hex of fixed-size frames, each recognised by its first byte alone.
    #[serde(default)]
    pub short_frames: Vec<String>,
    /// Hex of the filter's PING: exactly one frame.
    pub ping: String,
    /// Hex of the server's answer to it: exactly one frame.
    pub pong: String,
}

fn default_max_frame() -> u64 {
    DEFAULT_MAX_FRAME
}

/// The checked, decoded description of the protocol. Cheap to clone: one per connection.
#[derive(Clone, Debug)]
pub struct FramedSpec(Arc<Spec>);

#[derive(Debug)]
struct Spec {
    header_size: u32,
    length_offset: u32,
    length_size: u32,
    big_endian: bool,
    length_adjust: i64,
    max_frame: u64,
    /// Length of the short frame starting with each byte; 0: that byte starts a header.
    short_len: [u8; 256],
    ping: Vec<u8>,
    pong: Vec<u8>,
}

impl FramedSpec {
    pub fn ping(&self) -> &[u8] {
        &self.0.ping
    }

    pub fn pong(&self) -> &[u8] {
        &self.0.pong
    }
}

fn decode_hex(field: &str, text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.is_empty() {
        return Err(format!("framed.{field}: empty; expected hex bytes such as \"01\" or \"0000000450494e47\""));
    }
    if digits.len() % 2 != 0 {
        return Err(format!("framed.{field}: bad hex {text:?}: odd number of digits"));
    }
    let nibble = |d: u8| (d as char).to_digit(16);
    digits
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => match (nibble(*hi), nibble(*lo)) {
                // Both are < 16, so the byte cannot overflow.
                (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
                _ => Err(format!("framed.{field}: bad hex {text:?}: not a hex digit")),
            },
            _ => Err(format!("framed.{field}: bad hex {text:?}")),
        })
        .collect()
}

impl FramedConfig {
    /// Checks the configuration; the error names the field and says why.
    pub fn validate(&self) -> Result<(), String> {
        self.build().map(|_| ())
    }

    /// Checks the configuration and decodes it into the form connections use.
    pub fn build(&self) -> Result<FramedSpec, String> {
        if self.header_size == 0 || self.header_size > MAX_HEADER {
            return Err(format!("framed.header_size: must be 1 to {MAX_HEADER} (got {})", self.header_size));
        }
        if ![1, 2, 4, 8].contains(&self.length_size) {
            return Err(format!("framed.length_size: must be 1, 2, 4 or 8 (got {})", self.length_size));
        }
        let field_end = u64::from(self.length_offset) + u64::from(self.length_size);
        if field_end > u64::from(self.header_size) {
            return Err(format!(
                "framed.length_offset: the length field (bytes {} to {}) lies outside the header of {} bytes",
                self.length_offset,
                field_end - 1,
                self.header_size
            ));
        }
        if self.max_frame == 0 || self.max_frame > MAX_MAX_FRAME {
            return Err(format!("framed.max_frame: must be 1 to {MAX_MAX_FRAME} (got {})", self.max_frame));
        }
        if self.length_adjust.unsigned_abs() > MAX_MAX_FRAME {
            return Err(format!("framed.length_adjust: must be within ±{MAX_MAX_FRAME} (got {})", self.length_adjust));
        }
        let mut short_len = [0u8; 256];
        for (i, hex) in self.short_frames.iter().enumerate() {
            let field = format!("short_frames[{i}]");
            let bytes = decode_hex(&field, hex)?;
            let (len, first) = match (u8::try_from(bytes.len()), bytes.first()) {
                (Ok(len), Some(&first)) if bytes.len() <= MAX_FIXED_FRAME => (len, first),
                _ => return Err(format!("framed.{field}: must be 1 to {MAX_FIXED_FRAME} bytes")),
            };
            let slot = &mut short_len[usize::from(first)];
            if *slot != 0 {
                return Err(format!(
                    "framed.{field}: another short frame already starts with byte {first:02x}; short frames are \
                     recognised by their first byte, so first bytes must differ"
                ));
            }
            *slot = len;
        }
        let mut spec = Spec {
            header_size: self.header_size,
            length_offset: self.length_offset,
            length_size: self.length_size,
            big_endian: self.length_endian == Endian::Big,
            length_adjust: self.length_adjust,
            max_frame: self.max_frame,
            short_len,
            ping: Vec::new(),
            pong: Vec::new(),
        };
        spec.ping = decode_hex("ping", &self.ping)?;
        spec.pong = decode_hex("pong", &self.pong)?;
        spec.check_one_frame("ping", &spec.ping)?;
        spec.check_one_frame("pong", &spec.pong)?;
        if spec.ping == spec.pong {
            return Err("framed.pong: equal to ping; the filter could not tell its PINGs from their answers".into());
        }
        Ok(FramedSpec(Arc::new(spec)))
    }
}

impl Spec {
    fn check_one_frame(&self, field: &str, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() > MAX_FIXED_FRAME {
            return Err(format!("framed.{field}: must be at most {MAX_FIXED_FRAME} bytes (got {})", bytes.len()));
        }
        let mut reader = FrameReader::default();
        match reader.feed(self, bytes) {
            Err(reason) => Err(format!("framed.{field}: not a valid frame: {reason}")),
            Ok((used, true)) if used == bytes.len() => Ok(()),
            Ok((used, true)) => Err(format!(
                "framed.{field}: must be exactly one frame, but its first frame ends after {used} of {} bytes",
                bytes.len()
            )),
            Ok((_, false)) => Err(format!(
                "framed.{field}: must be exactly one frame, but its {} bytes are an incomplete frame",
                bytes.len()
            )),
        }
    }

    /// Body length announced by a header's length field.
    fn body_len(&self, field: u64) -> Result<u64, &'static str> {
        let body = i128::from(field) + i128::from(self.length_adjust);
        if body < 0 {
            return Err("negative frame length");
        }
        match u64::try_from(body) {
            Ok(body) if body <= self.max_frame => Ok(body),
            _ => Err("frame larger than max_frame"),
        }
    }
}

/// Where one direction's stream is inside the current frame.
#[derive(Clone, Copy, Debug, Default)]
enum Pos {
    /// No byte of the next frame seen: a frame boundary.
    #[default]
    Start,
    /// Inside a short frame.
    Short { left: u8 },
    /// `at` bytes of the header seen; `field` holds the length field's bytes seen so far.
    Header { at: u32, field: u64 },
    /// Inside a body.
    Body { left: u64 },
}

/// Follows one direction of the protocol frame by frame.
#[derive(Clone, Copy, Debug, Default)]
struct FrameReader {
    pos: Pos,
}

impl FrameReader {
    fn at_boundary(&self) -> bool {
        matches!(self.pos, Pos::Start)
    }

    /// Consumes bytes up to and including the end of the current frame: how many, and whether a frame ended
    /// there. Stops early only at a frame end.
    fn feed(&mut self, spec: &Spec, data: &[u8]) -> Result<(usize, bool), &'static str> {
        let mut i = 0usize;
        while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
            match &mut self.pos {
                Pos::Start => {
                    let first = rest.first().copied().unwrap_or_default();
                    match spec.short_len[usize::from(first)] {
                        0 => self.pos = Pos::Header { at: 0, field: 0 },
                        1 => {
                            self.pos = Pos::Start;
                            return Ok((i + 1, true));
                        }
                        len => {
                            i += 1;
                            self.pos = Pos::Short { left: len - 1 };
                        }
                    }
                }
                Pos::Short { left } => {
                    let take = usize::from(*left).min(rest.len());
                    i += take;
                    // take <= *left, which is a u8.
                    *left -= take as u8;
                    if *left == 0 {
                        self.pos = Pos::Start;
                        return Ok((i, true));
                    }
                }
                Pos::Header { at, field } => {
                    let field_start = spec.length_offset;
                    let field_end = spec.length_offset + spec.length_size;
                    for &b in rest {
                        if *at >= spec.header_size {
                            break;
                        }
                        if (field_start..field_end).contains(at) {
                            *field = if spec.big_endian {
                                (*field << 8) | u64::from(b)
                            } else {
                                // at - field_start < length_size <= 8: the shift stays below 64.
                                *field | (u64::from(b) << (8 * (*at - field_start)))
                            };
                        }
                        *at += 1;
                        i += 1;
                    }
                    if *at >= spec.header_size {
                        let body = spec.body_len(*field)?;
                        if body == 0 {
                            self.pos = Pos::Start;
                            return Ok((i, true));
                        }
                        self.pos = Pos::Body { left: body };
                    }
                }
                Pos::Body { left } => {
                    let take = (*left).min(rest.len() as u64);
                    *left -= take;
                    // take <= rest.len(), so it fits a usize.
                    i += take as usize;
                    if *left == 0 {
                        self.pos = Pos::Start;
                        return Ok((i, true));
                    }
                }
            }
        }
        Ok((i, false))
    }
}

/// How much of the current frame equals a given frame (`None`: it differs).
fn extend_match(matched: Option<usize>, frame: &[u8], bytes: &[u8]) -> Option<usize> {
    let at = matched?;
    let end = at.checked_add(bytes.len())?;
    (frame.get(at..end)? == bytes).then_some(end)
}

/// One connection of the configured protocol.
#[derive(Debug)]
pub struct Framed {
    spec: FramedSpec,
    client: FrameReader,
    /// How much of the client's current frame equals the PING.
    client_ping_match: Option<usize>,
    client_error: Option<ProtocolError>,
    upstream: FrameReader,
    upstream_error: Option<ProtocolError>,
    /// A byte of the current server frame has been seen (its hold decision is made).
    frame_open: bool,
    /// How much of the server's current frame equals the PONG.
    pong_match: Option<usize>,
    /// Bytes of the current server frame withheld while it may be the filter's PONG: always `pong[..held]`.
    held: usize,
    owners: PongOwners,
}

impl Framed {
    pub fn new(spec: FramedSpec) -> Self {
        Framed {
            spec,
            client: FrameReader::default(),
            client_ping_match: Some(0),
            client_error: None,
            upstream: FrameReader::default(),
            upstream_error: None,
            frame_open: false,
            pong_match: Some(0),
            held: 0,
            owners: PongOwners::new(),
        }
    }

    fn release(&mut self, out: &mut Output) {
        out.insert(self.spec.0.pong.get(..self.held).unwrap_or(&[]));
        self.held = 0;
    }

    /// A server frame ended: if it was the PONG, it answers whoever is owed the next one (counted in `out`
    /// when that is the filter).
    fn end_upstream_frame(&mut self, out: &mut Output) {
        let is_pong = self.pong_match == Some(self.spec.0.pong.len());
        self.frame_open = false;
        self.pong_match = Some(0);
        let owner = if is_pong { self.owners.pop() } else { None };
        if self.held > 0 {
            if owner == Some(Owner::Filter) {
                self.held = 0;
            } else {
                self.release(out);
            }
        }
        if owner == Some(Owner::Filter) {
            out.pong_answered();
        }
    }

    fn upstream_error(&mut self, reason: &'static str, out: &mut Output) -> ProtocolError {
        self.release(out);
        let error = ProtocolError::upstream(reason);
        self.upstream_error = Some(error.clone());
        error
    }
}

impl Protocol for Framed {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if let Some(error) = &self.client_error {
            return Err(error.clone());
        }
        let spec = Arc::clone(&self.spec.0);
        let mut rest = data;
        while !rest.is_empty() {
            let (used, ended) = match self.client.feed(&spec, rest) {
                Ok(step) => step,
                Err(reason) => {
                    let error = ProtocolError::client(reason);
                    self.client_error = Some(error.clone());
                    return Err(error);
                }
            };
            let (frame, after) = rest.split_at(used.min(rest.len()));
            self.client_ping_match = extend_match(self.client_ping_match, &spec.ping, frame);
            if ended {
                if self.client_ping_match == Some(spec.ping.len()) {
                    self.owners.push(Owner::Client);
                }
                self.client_ping_match = Some(0);
            }
            if used == 0 {
                break;
            }
            rest = after;
        }
        Ok(())
    }

    fn can_inject(&self) -> Result<(), Defer> {
        if self.client_error.is_some() || !self.client.at_boundary() {
            return Err(Defer::MidFrame);
        }
        Ok(())
    }

    fn ping(&self) -> &[u8] {
        self.spec.ping()
    }

    fn on_ping_injected(&mut self) {
        self.owners.push(Owner::Filter);
    }

    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        if let Some(error) = &self.upstream_error {
            return Err(error.clone());
        }
        let spec = Arc::clone(&self.spec.0);
        let before = out.pongs();
        let mut rest = data;
        while !rest.is_empty() {
            let holding = if self.frame_open {
                self.held > 0
            } else {
                self.frame_open = true;
                self.owners.front() == Some(Owner::Filter)
            };
            // While holding, feed only the bytes that still match the PONG. A difference within this chunk
            // ends the hold before anything of the chunk is withheld, so a frame that merely starts like the
            // PONG costs no edit unless a chunk ends inside that start.
            let feed = if holding {
                let pong_rest = spec.pong.get(self.held..).unwrap_or(&[]);
                let same = rest.iter().zip(pong_rest).take_while(|(a, b)| a == b).count();
                if (same < rest.len() && same < pong_rest.len()) || pong_rest.is_empty() {
                    self.release(out);
                    self.pong_match = None;
                    continue;
                }
                rest.get(..same).unwrap_or(rest)
            } else {
                rest
            };
            let (used, ended) = match self.upstream.feed(&spec, feed) {
                Ok(step) => step,
                Err(reason) => return Err(self.upstream_error(reason, out)),
            };
            let (frame, after) = rest.split_at(used.min(rest.len()));
            self.pong_match = extend_match(self.pong_match, &spec.pong, frame);
            if holding {
                out.skip(used);
                self.held += used;
            } else {
                out.forward(used);
            }
            if ended {
                self.end_upstream_frame(out);
            }
            if used == 0 {
                break;
            }
            rest = after;
        }
        Ok(out.pongs() - before)
    }

    fn release_held(&mut self, out: &mut Output) {
        self.release(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::{client_view, frame_ends};

    /// The Netty heartbeat chat: type byte 0x03 + big-endian i32 length + body; PING 0x01 and PONG 0x02 alone.
    const NETTY: &str = r#"{"header_size": 5, "length_offset": 1, "length_size": 4, "length_endian": "big",
        "length_adjust": 0, "max_frame": 16777216, "short_frames": ["01", "02"], "ping": "01", "pong": "02"}"#;
    /// u32 big-endian length, then the body; PING and PONG are ordinary frames.
    const PLAIN: &str =
        r#"{"header_size": 4, "length_size": 4, "ping": "0000000450494e47", "pong": "00000004504f4e47"}"#;
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
            NETTY => vec![
                netty_message(b"hello"),
                vec![1],
                netty_message(&[1, 2, 1, 2]),
                netty_message(b""),
                vec![2],
                vec![1],
            ],
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
            assert_eq!(framed.owners.total(), CLIENT_PINGS, "{json}");
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
                assert_eq!(framed.owners.total(), CLIENT_PINGS, "{json}: cut {cut}");
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
                    assert!(framed.owners.is_empty());
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
        assert_eq!(
            netty.on_upstream_bytes(&huge, &mut out),
            Err(ProtocolError::upstream("frame larger than max_frame"))
        );
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
            (
                r#"{"header_size":4,"length_size":3,"ping":"01","pong":"02"}"#,
                "framed.length_size: must be 1, 2, 4 or 8",
            ),
            (r#"{"header_size":5,"length_offset":2,"length_size":4,"ping":"01","pong":"02"}"#, "framed.length_offset"),
            (r#"{"header_size":0,"length_size":1,"ping":"01","pong":"02"}"#, "framed.header_size"),
            (r#"{"header_size":65,"length_size":1,"ping":"01","pong":"02"}"#, "framed.header_size"),
            (r#"{"header_size":4,"length_size":4,"max_frame":0,"ping":"01","pong":"02"}"#, "framed.max_frame"),
            (
                r#"{"header_size":4,"length_size":4,"max_frame":99999999999,"ping":"01","pong":"02"}"#,
                "framed.max_frame",
            ),
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
}
