//! Property for `framed` (u32 big-endian length prefix, PING and PONG ordinary frames): over random
//! frames (bodies that may hold the PING or PONG bytes), random chunkings and idle times, the
//! upstream receives the client's frames with the filter's PING frames only between them, and the
//! client receives every server frame except the PONGs to the filter's PINGs.

use proptest::prelude::*;

use heartbeat_host_tests::HostOptions;

use super::common::heartbeat::start_with;
use super::support::{assert_exercised, ms, run_seeded, split_upstream, upstream_send_in_two, ClientStream};

/// The filter's example timings, u32 big-endian length prefix, PING and PONG ordinary frames.
fn config() -> String {
    let mut v = heartbeat::core::config::Timings::EXAMPLE.config_json("framed");
    v["framed"] = serde_json::json!({"header_size": 4, "length_size": 4, "ping": "0000000450494e47",
                                     "pong": "00000004504f4e47"});
    v.to_string()
}

fn frame(body: &[u8]) -> Vec<u8> {
    [&(body.len() as u32).to_be_bytes()[..], body].concat()
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(b"PINGO\0\x04x".to_vec()), 0..12),
        // Bodies holding a whole PING or PONG frame: only a frame boundary makes a PING a PING.
        1 => Just(frame(b"PING")),
        1 => Just(frame(b"PONG")),
    ]
}

#[derive(Clone, Debug)]
enum Event {
    ClientSend(usize),
    Idle(u64, Option<u8>),
    ServerFrame(Vec<u8>),
    ServerAnswers(u8),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (1usize..20).prop_map(Event::ClientSend),
        4 => (0u64..3500, prop::option::weighted(0.7, any::<u8>())).prop_map(|(t, a)| Event::Idle(t, a)),
        2 => body().prop_map(Event::ServerFrame),
        2 => any::<u8>().prop_map(Event::ServerAnswers),
    ]
}

fn run(bodies: Vec<Vec<u8>>, events: Vec<Event>) -> Result<(usize, usize), TestCaseError> {
    let ping = frame(b"PING");
    // The client's frames never equal the PING frame itself (that would be its own PING).
    let frames: Vec<Vec<u8>> = bodies.iter().map(|b| frame(b)).filter(|f| *f != ping).collect();
    let mut client = ClientStream::new(&frames);
    let mut h = start_with(&config(), HostOptions::default());
    let c = h.connect();
    let (mut pings_answered, mut stripped) = (0, 0);
    let mut expected = Vec::new();
    let mut answer = |h: &mut heartbeat_host_tests::testkit::TestHost, cut: u8| -> Result<(), TestCaseError> {
        let items = split_upstream(&h.upstream_received(c), &frames, &ping).map_err(TestCaseError::fail)?;
        let injected = items.iter().filter(|i| i.is_none()).count();
        let batch = frame(b"PONG").repeat(injected - pings_answered);
        stripped += injected - pings_answered;
        pings_answered = injected;
        upstream_send_in_two(h, c, &batch, cut);
        Ok(())
    };
    for event in events {
        if h.closed(c).is_some() {
            break;
        }
        match event {
            Event::ClientSend(n) => client.send(&mut h, c, n),
            Event::Idle(t, a) => {
                h.advance(ms(t));
                if let (Some(cut), None) = (a, h.closed(c)) {
                    answer(&mut h, cut)?;
                }
            }
            Event::ServerFrame(b) => {
                let f = frame(&b);
                if f == frame(b"PONG") {
                    continue; // a PONG nobody asked for would be taken for an answer
                }
                h.upstream_send(c, &f);
                expected.extend_from_slice(&f);
            }
            Event::ServerAnswers(cut) => answer(&mut h, cut)?,
        }
    }
    let items = split_upstream(&h.upstream_received(c), &frames, &ping).map_err(TestCaseError::fail)?;
    prop_assert_eq!(h.client_received(c), expected);
    Ok((items.iter().filter(|i| i.is_none()).count(), stripped))
}

#[test]
fn framed_streams_stay_byte_exact_with_pings_only_between_frames() {
    let strategy = (prop::collection::vec(body(), 1..10), prop::collection::vec(event(), 1..30));
    let (injected, stripped) = run_seeded(24, strategy, |(bodies, events)| run(bodies, events));
    assert_exercised("framed", injected, stripped);
}
