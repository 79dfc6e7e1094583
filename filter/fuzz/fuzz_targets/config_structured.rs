//! The plugin configuration assembled from field choices: the outcome and the values as predicted.
#![no_main]

use heartbeat_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    configs::structured(data);
});
