//! MySQL (logged in), the upstream's stream: arbitrary bytes in arbitrary chunks behind injected PINGs.
#![no_main]

use heartbeat_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mut protocol, pieces) = sides::mysql();
    sides::upstream_side(protocol.as_mut(), &pieces, &mut Bytes::new(data));
});
