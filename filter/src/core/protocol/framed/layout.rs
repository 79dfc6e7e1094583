//! The checked wire layout of a framed protocol: what the frame reader follows, built once from the operator's
//! configuration (`config`) and shared by every connection.

use std::sync::Arc;

/// The checked, decoded description of the protocol. Cheap to clone: one per connection.
#[derive(Clone, Debug)]
pub struct FramedSpec(pub(super) Arc<Spec>);

#[derive(Debug)]
pub(super) struct Spec {
    pub(super) header_size: u32,
    pub(super) length_offset: u32,
    pub(super) length_size: u32,
    pub(super) big_endian: bool,
    pub(super) length_adjust: i64,
    pub(super) max_frame: u64,
    /// Length of the short frame starting with each byte; 0: that byte starts a header.
    pub(super) short_len: [u8; 256],
    pub(super) ping: Vec<u8>,
    pub(super) pong: Vec<u8>,
}

impl FramedSpec {
    pub fn ping(&self) -> &[u8] {
        &self.0.ping
    }

    pub fn pong(&self) -> &[u8] {
        &self.0.pong
    }
}

impl Spec {
    /// Body length announced by a header's length field.
    pub(super) fn body_len(&self, field: u64) -> Result<u64, &'static str> {
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
