#![allow(dead_code)]
pub mod heartbeat;
