//! Skipping the bytes the decoder says need not be looked at leaves it exactly as feeding them would.

use super::*;
use crate::core::protocol::check_skipping;

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).into_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bulk(body: &[u8]) -> Vec<u8> {
    [format!("${}\r\n", body.len()).as_bytes(), body, b"\r\n"].concat()
}

#[test]
fn argument_bodies_nobody_reads_are_skippable() {
    let value = [b'x'; 40];
    let client = [
        multibulk(&[b"SET", b"key", &value]),
        multibulk(&[b"SET", b"long-key-long-key-long-key", b"v", b"EX", b"100"]),
        b"GET k\r\n".to_vec(),
        multibulk(&[b"RPUSH", b"l", &value, &value]),
    ]
    .concat();
    let (client_skipped, _) = check_skipping(Redis::new, &client, b"");
    assert!(client_skipped > 0);

    // The name, the first argument, and every argument of a blocking command are read.
    let read = [multibulk(&[&value, &value]), multibulk(&[b"BLPOP", &value, &value, b"5"])].concat();
    assert_eq!(check_skipping(Redis::new, &read, b""), (0, 0));
}

#[test]
fn forwarded_bulk_bodies_are_skippable() {
    let value = [b'v'; 40];
    let make = || {
        let mut redis = Redis::new();
        redis.on_client_bytes(b"GET a\r\nLRANGE l 0 -1\r\nGET c\r\n").unwrap();
        redis
    };
    let upstream = [bulk(&value), b"*2\r\n".to_vec(), bulk(&value), bulk(b""), b"$-1\r\n".to_vec()].concat();
    let (_, upstream_skipped) = check_skipping(make, b"", &upstream);
    assert!(upstream_skipped > 0);
}

#[test]
fn withheld_replies_and_names_are_never_skippable() {
    let long_pong: &[u8] = b"$20\r\nnot-quite-a-pong-xyz\r\n";
    // The reply to the filter's PING is withheld whole.
    let make = || {
        let mut redis = Redis::new();
        redis.on_ping_injected();
        redis
    };
    assert_eq!(check_skipping(make, b"", long_pong), (0, 0));
    // In subscribe mode the first element of an array may be a push's name: read; the rest is forwarded.
    let make = || {
        let mut redis = Redis::new();
        redis.on_client_bytes(b"SUBSCRIBE news\r\n").unwrap();
        let mut out = Output::new();
        redis.on_upstream_bytes(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n", &mut out).unwrap();
        redis.on_ping_injected();
        redis
    };
    let message = [b"*3\r\n".to_vec(), bulk(b"message"), bulk(b"news"), bulk(&[b'm'; 30])].concat();
    let pong = [b"*2\r\n".to_vec(), bulk(b"pong"), bulk(b"")].concat();
    let (_, upstream_skipped) = check_skipping(make, b"", &[message.clone(), pong].concat());
    assert_eq!(upstream_skipped, (1..=4).sum::<u64>() + (1..=30).sum::<u64>(), "the channel and the payload");
}
