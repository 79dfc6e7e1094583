//! Blocking commands: the timeout each one carries, read from the client's stream however it is split.

use std::time::Duration;

use super::*;

fn secs(s: f64) -> Option<Silence> {
    Some(Silence::For(Duration::from_secs_f64(s)))
}

fn ms(n: u64) -> Option<Silence> {
    Some(Silence::For(Duration::from_millis(n)))
}

/// A command in RESP multibulk form.
fn multibulk(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
    }
    out
}

/// The silence `command` earns, sent whole, split at every byte, and (for inline) as one line.
fn silence_of(args: &[&str]) -> Option<Silence> {
    let wire = multibulk(args);
    let mut whole = Redis::new();
    whole.on_client_bytes(&wire).expect("parses");
    let expect = whole.take_allowed_silence();
    assert_eq!(whole.take_allowed_silence(), None, "drained once");
    for cut in 0..=wire.len() {
        let mut redis = Redis::new();
        redis.on_client_bytes(&wire[..cut]).expect("parses");
        let early = redis.take_allowed_silence();
        redis.on_client_bytes(&wire[cut..]).expect("parses");
        let late = redis.take_allowed_silence();
        assert_eq!(early.or(late), expect, "{args:?} cut at {cut}");
    }
    let mut inline = Redis::new();
    inline.on_client_bytes(format!("{}\r\n", args.join(" ")).as_bytes()).expect("parses");
    assert_eq!(inline.take_allowed_silence(), expect, "{args:?} inline");
    expect
}

#[test]
fn blocking_commands_earn_their_timeout() {
    assert_eq!(silence_of(&["BLPOP", "jobs", "5"]), secs(5.0));
    assert_eq!(silence_of(&["brpop", "a", "b", "c", "0.25"]), secs(0.25));
    assert_eq!(silence_of(&["BRPOPLPUSH", "src", "dst", "2"]), secs(2.0));
    assert_eq!(silence_of(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "1.5"]), secs(1.5));
    assert_eq!(silence_of(&["BZPOPMIN", "z", "3"]), secs(3.0));
    assert_eq!(silence_of(&["BLMPOP", "4", "2", "a", "b", "LEFT", "COUNT", "10"]), secs(4.0));
    assert_eq!(silence_of(&["BZMPOP", "0.5", "1", "z", "MAX"]), secs(0.5));
    assert_eq!(silence_of(&["XREAD", "COUNT", "10", "BLOCK", "1500", "STREAMS", "s", "$"]), ms(1500));
    assert_eq!(silence_of(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "200", "NOACK", "STREAMS", "s", ">"]), ms(200));
    assert_eq!(silence_of(&["WAIT", "1", "100"]), ms(100));
    assert_eq!(silence_of(&["WAITAOF", "1", "0", "250"]), ms(250));
}

#[test]
fn timeout_zero_or_unreadable_is_unbounded_and_negative_is_none() {
    assert_eq!(silence_of(&["BLPOP", "jobs", "0"]), Some(Silence::Unbounded));
    assert_eq!(silence_of(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]), Some(Silence::Unbounded));
    assert_eq!(silence_of(&["BLPOP", "jobs", "0x1p3"]), Some(Silence::Unbounded));
    assert_eq!(silence_of(&["BLPOP", "jobs", "12345678901234567890123456789"]), Some(Silence::Unbounded));
    assert_eq!(silence_of(&["BLPOP", "jobs", "-1"]), None, "answered at once with an error");
}

#[test]
fn other_commands_earn_nothing() {
    assert_eq!(silence_of(&["GET", "5"]), None);
    assert_eq!(silence_of(&["LPOP", "jobs", "5"]), None);
    assert_eq!(silence_of(&["XREAD", "COUNT", "5", "STREAMS", "s", "0"]), None, "XREAD without BLOCK");
    assert_eq!(silence_of(&["BLOCK", "5"]), None);
}

#[test]
fn pipelined_blocking_commands_add_up_and_are_owed_until_the_last_reply_starts() {
    let mut redis = Redis::new();
    let wire = [multibulk(&["BLPOP", "a", "1"]), multibulk(&["GET", "k"]), multibulk(&["BLPOP", "b", "2"])].concat();
    redis.on_client_bytes(&wire).unwrap();
    assert_eq!(redis.take_allowed_silence(), secs(3.0));
    assert!(redis.silence_owed());
    let mut out = Output::new();
    redis.on_upstream_bytes(b"*2\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\nv\r\n", &mut out).unwrap();
    assert!(redis.silence_owed(), "the second BLPOP is still owed");
    redis.on_upstream_bytes(b"*", &mut out).unwrap();
    assert!(!redis.silence_owed(), "its reply has begun");
    redis.on_upstream_bytes(b"-1\r\n", &mut out).unwrap();
    redis.on_client_bytes(&multibulk(&["GET", "k"])).unwrap();
    assert!(!redis.silence_owed());
    assert_eq!(redis.take_allowed_silence(), None);
}

#[test]
fn inside_multi_blocking_commands_do_not_block() {
    let mut redis = Redis::new();
    redis.on_client_bytes(b"MULTI\r\nBLPOP jobs 5\r\n").unwrap();
    assert_eq!(redis.take_allowed_silence(), None);
    assert!(!redis.silence_owed());
    redis.on_client_bytes(b"EXEC\r\nBLPOP jobs 5\r\n").unwrap();
    assert_eq!(redis.take_allowed_silence(), secs(5.0), "after EXEC they block again");
}
