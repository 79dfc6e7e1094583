//! RESP3, as after `HELLO 3`: every reply type, pushes out of band, attributes refused, subscriptions stop
//! injection.

use super::*;
use crate::core::protocol::client_view;

fn hello3() -> Redis {
    let mut redis = Redis::new();
    redis.on_client_bytes(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n").unwrap();
    let reply: &[u8] = b"%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n";
    let mut out = Output::new();
    assert_eq!(redis.on_upstream_bytes(reply, &mut out), Ok(0));
    assert!(!out.is_changed(), "HELLO's map reply reaches the client");
    assert_eq!(redis.can_inject(), Ok(()));
    redis
}

/// `stream` cut in two at every position and byte by byte gives the client `expect` and strips `answered`
/// filter replies, and the decoder is at a reply boundary again.
fn at_every_split(make: impl Fn() -> Redis, stream: &[u8], expect: &[u8], answered: u32) {
    super::tests::at_every_split_then(make, stream, expect, answered, |redis| {
        assert_eq!(redis.can_inject(), Ok(()));
    });
}

const RESP3_REPLIES: &[&[u8]] = &[
    b"_\r\n",
    b",3.14\r\n",
    b"#t\r\n",
    b"(3492890328409238509324850943850943825024385\r\n",
    b"!21\r\nSYNTAX invalid syntax\r\n",
    b"=15\r\ntxt:Some string\r\n",
    b"~2\r\n:1\r\n+a\r\n",
    b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n%1\r\n_\r\n#f\r\n",
];

#[test]
fn every_resp3_type_is_a_reply_in_order_and_the_filter_pong_is_stripped() {
    let make = || {
        let mut redis = hello3();
        redis.on_ping_injected();
        for _ in RESP3_REPLIES {
            redis.on_client_bytes(b"GET k\r\n").unwrap();
        }
        redis
    };
    let stream = [&[&b"+PONG\r\n"[..]], RESP3_REPLIES].concat().concat();
    at_every_split(make, &stream, &RESP3_REPLIES.concat(), 1);
}

#[test]
fn pushes_take_no_place_among_the_replies() {
    let invalidate: &[u8] = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n";
    let message: &[u8] = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    let make = || {
        let mut redis = hello3();
        redis.on_client_bytes(b"GET a\r\n").unwrap();
        redis
    };
    // A push before and after the GET's reply: both forwarded, the reply still the GET's.
    let stream = [invalidate, b"$1\r\nv\r\n", message].concat();
    at_every_split(make, &stream, &stream, 0);
    // A push between a filter PING and its PONG: the push is forwarded, the PONG stripped.
    let make = || {
        let mut redis = hello3();
        redis.on_ping_injected();
        redis
    };
    let stream = [invalidate, b"+PONG\r\n", message].concat();
    at_every_split(make, &stream, &[invalidate, message].concat(), 1);
}

#[test]
fn attributes_and_nested_pushes_are_errors_never_misread() {
    for bytes in [&b"|1\r\n+key-popularity\r\n%0\r\n$1\r\nv\r\n"[..], b"*2\r\n>1\r\n+x\r\n:1\r\n"] {
        let mut redis = hello3();
        redis.on_client_bytes(b"GET k\r\n").unwrap();
        let mut out = Output::new();
        assert!(redis.on_upstream_bytes(bytes, &mut out).is_err(), "{bytes:?}");
        assert_eq!(redis.can_inject(), Err(Defer::Mode));
    }
}

#[test]
fn a_resp3_subscription_stops_injection_but_an_owed_pong_is_still_stripped() {
    let mut redis = hello3();
    redis.on_ping_injected();
    redis.on_client_bytes(b"SUBSCRIBE news\r\n").unwrap();
    assert_eq!(redis.can_inject(), Err(Defer::Mode));
    let confirm: &[u8] = b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
    let message: &[u8] = b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n";
    let stream = [b"+PONG\r\n", confirm, message].concat();
    let (seen, answered) = client_view(&mut redis, &[&stream]);
    assert_eq!(seen, [confirm, message].concat());
    assert_eq!(answered, 1);
    assert_eq!(redis.can_inject(), Err(Defer::Mode), "for good");
}

#[test]
fn hello_2_and_reset_go_back_to_resp2_subscriptions() {
    for back in [&b"HELLO 2\r\n"[..], b"RESET\r\n"] {
        let mut redis = hello3();
        redis.on_client_bytes(back).unwrap();
        let mut out = Output::new();
        redis.on_upstream_bytes(b"+OK\r\n", &mut out).unwrap();
        redis.on_client_bytes(b"SUBSCRIBE news\r\n").unwrap();
        redis.on_upstream_bytes(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n", &mut out).unwrap();
        assert_eq!(redis.can_inject(), Ok(()), "RESP2 subscribe mode pings: {back:?}");
    }
}

#[test]
fn a_quiet_resp3_subscriber_owes_no_reply_so_its_silence_is_never_judged() {
    let mut redis = hello3();
    redis.on_client_bytes(b"SUBSCRIBE news\r\n").unwrap();
    let confirm: &[u8] = b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
    let (_seen, _) = client_view(&mut redis, &[confirm]);
    assert!(!redis.reply_owed(), "a quiet RESP3 subscriber owes nothing");
    let mut redis = hello3();
    redis.on_client_bytes(b"GET a\r\nSUBSCRIBE news\r\n").unwrap();
    let (_seen, _) = client_view(&mut redis, &[b"$-1\r\n", confirm]);
    assert!(!redis.reply_owed(), "after GET's reply, a quiet RESP3 subscriber owes nothing");
}
