//! MySQL (logged in), the client's stream: arbitrary bytes in arbitrary chunks, PINGs injected where allowed.
#![no_main]

use heartbeat_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mut protocol, pieces) = sides::mysql();
    sides::client_side(protocol.as_mut(), &pieces, &mut Bytes::new(data));
});
