//! `framed`: the two protocols the README documents. (a) the Netty heartbeat chat: a message is type
//! byte 3, a big-endian i32 length and the body; PING and PONG are the single bytes 1 and 2.
//! (b) plain u32 big-endian length-prefixed frames whose PING and PONG are ordinary frames.

use heartbeat_host_tests::HostOptions;

use super::common::heartbeat::start_with;
use super::support::*;

/// The filter's example timings with the `framed` section `framed`.
fn config(framed: &str) -> String {
    let mut v = heartbeat::core::config::Timings::EXAMPLE.config_json("framed");
    v["framed"] = serde_json::from_str(framed).unwrap();
    v.to_string()
}

const CHAT: &str =
    r#"{"header_size":5,"length_offset":1,"length_size":4,"short_frames":["01","02"],"ping":"01","pong":"02"}"#;
const U32: &str = r#"{"header_size":4,"length_size":4,"ping":"0000000450494e47","pong":"00000004504f4e47"}"#;

fn chat_message(body: &[u8]) -> Vec<u8> {
    let mut frame = vec![3];
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

fn u32_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

#[test]
fn netty_chat_ping_byte_after_idle_and_pong_byte_stripped() {
    let mut h = start_with(&config(CHAT), HostOptions::default());
    let c = h.connect();
    let hello = chat_message(b"hello");
    h.client_send(c, &hello);
    h.upstream_send(c, chat_message(b"welcome"));
    h.advance(secs(2));
    assert_eq!(h.upstream_received(c), [hello.clone(), vec![1]].concat());
    let reply = [vec![2], chat_message(b"news")].concat();
    h.upstream_send(c, &reply);
    assert_eq!(h.client_received(c), [chat_message(b"welcome"), chat_message(b"news")].concat());
    h.assert_no_faults();
}

#[test]
fn netty_chat_no_ping_inside_a_message() {
    let mut h = start_with(&config(CHAT), HostOptions::default());
    let c = h.connect();
    let message = chat_message(b"a longer message body");
    for split in [1, 3, 5, 9] {
        h.client_send(c, &message[..split]);
        h.advance(ms(2500));
        h.client_send(c, &message[split..]);
        let up = h.upstream_received(c);
        let ping_inside = up.windows(message.len()).all(|w| w != message.as_slice());
        assert!(!ping_inside, "split at {split}: a PING cut the message: {up:?}");
        h.upstream_send(c, chat_message(b"ok")); // upstream life: start the next round fresh
    }
}

#[test]
fn u32_frames_ping_frame_after_idle_and_pong_frame_stripped() {
    let mut h = start_with(&config(U32), HostOptions::default());
    let c = h.connect();
    let request = u32_frame(b"request");
    h.client_send(c, &request);
    h.upstream_send(c, u32_frame(b"response"));
    h.advance(secs(2));
    assert_eq!(h.upstream_received(c), [request, u32_frame(b"PING")].concat());
    // The PONG frame split over three writes, followed by a real frame.
    let pong = u32_frame(b"PONG");
    h.upstream_send(c, &pong[..3]);
    h.upstream_send(c, &pong[3..6]);
    h.upstream_send(c, [&pong[6..], &u32_frame(b"data")[..]].concat());
    assert_eq!(h.client_received(c), [u32_frame(b"response"), u32_frame(b"data")].concat());
}

#[test]
fn u32_frames_a_dead_upstream_is_closed_within_the_bound() {
    let mut h = start_with(&config(U32), HostOptions::default());
    let c = h.connect();
    h.client_send(c, u32_frame(b"x"));
    h.advance(secs(10));
    let closed = h.closed(c).expect("closed");
    assert_within(closed.at, READ_IDLE + INTERVAL * MAX_MISSED, TICK);
    assert_eq!(count(&h.upstream_received(c), &u32_frame(b"PING")), MAX_MISSED as usize);
}
