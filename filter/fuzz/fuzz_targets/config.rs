//! The plugin configuration from arbitrary bytes: accepted within the documented limits, or refused with a reason.
#![no_main]

use heartbeat_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    configs::raw(data);
});
