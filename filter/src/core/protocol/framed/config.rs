//! The operator's description of a framed protocol ([`FramedConfig`], the `"framed"` section of the plugin
//! configuration), checked and decoded once ([`FramedConfig::build`]) into a [`FramedSpec`] that every
//! connection shares.

use std::sync::Arc;

use serde::Deserialize;

use super::layout::{FramedSpec, Spec};
use super::reader::FrameReader;
use crate::core::protocol::toolkit::Reader;

/// Headers, short frames, PING and PONG are small fixed things; larger values are configuration mistakes.
const MAX_HEADER: u32 = 64;
pub(super) const MAX_FIXED_FRAME: usize = 64;
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

pub(super) fn decode_hex(field: &str, text: &str) -> Result<Vec<u8>, String> {
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
            // A byte indexes 256 entries: `get_mut` always finds one.
            let slot =
                short_len.get_mut(usize::from(first)).ok_or_else(|| format!("framed.{field}: bad first byte"))?;
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
        let spec = FramedSpec(Arc::new(spec));
        spec.check_one_frame("ping", spec.ping())?;
        spec.check_one_frame("pong", spec.pong())?;
        if spec.ping() == spec.pong() {
            return Err("framed.pong: equal to ping; the filter could not tell its PINGs from their answers".into());
        }
        Ok(spec)
    }
}

impl FramedSpec {
    fn check_one_frame(&self, field: &str, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() > MAX_FIXED_FRAME {
            return Err(format!("framed.{field}: must be at most {MAX_FIXED_FRAME} bytes (got {})", bytes.len()));
        }
        let mut reader = FrameReader::new(self.clone());
        match reader.feed(bytes) {
            Err(reason) => Err(format!("framed.{field}: not a valid frame: {reason}")),
            Ok((used, Some(()))) if used == bytes.len() => Ok(()),
            Ok((used, Some(()))) => Err(format!(
                "framed.{field}: must be exactly one frame, but its first frame ends after {used} of {} bytes",
                bytes.len()
            )),
            Ok((_, None)) => Err(format!(
                "framed.{field}: must be exactly one frame, but its {} bytes are an incomplete frame",
                bytes.len()
            )),
        }
    }
}
