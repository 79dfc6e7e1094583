//! framed, the client's stream: a layout from the first bytes (fixed or derived), then arbitrary bytes.
#![no_main]

use heartbeat_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let (mut protocol, pieces) = sides::framed(layouts::from_bytes(&mut input));
    sides::client_side(protocol.as_mut(), &pieces, &mut input);
});
