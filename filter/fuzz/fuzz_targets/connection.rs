//! A worker with a fake transport driven by an event sequence, against a model of both streams (see src/connection.rs).
#![no_main]

use heartbeat_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    connection::run(data);
});
