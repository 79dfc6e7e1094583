use std::time::Duration;

use super::*;
use crate::core::config::{Config, Timings};
use crate::core::protocol::{Owner, PongOwners};

/// A line protocol for tests: frames end in '\n', the PING is "PING\n" and its answer "PONG\n".
#[derive(Default)]
struct Lines {
    mid_line: bool,
    owners: PongOwners,
    upstream_line: Vec<u8>,
}

impl Protocol for Lines {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if data.contains(&0) {
            return Err(ProtocolError::client("NUL byte"));
        }
        for line in data.split_inclusive(|b| *b == b'\n') {
            if line == b"PING\n" && !self.mid_line {
                self.owners.push(Owner::Client);
            }
            self.mid_line = !line.ends_with(b"\n");
        }
        Ok(())
    }
    fn can_inject(&self) -> Result<(), Defer> {
        if self.mid_line {
            Err(Defer::MidFrame)
        } else {
            Ok(())
        }
    }
    fn ping(&self) -> &[u8] {
        b"PING\n"
    }
    fn on_ping_injected(&mut self) {
        self.owners.push(Owner::Filter);
    }
    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        // Whole lines only, for simplicity: every line is forwarded except a PONG owed to the filter; a line
        // starting with '!' is an error (after the lines before it were handled).
        let before = out.pongs();
        for line in data.split_inclusive(|b| *b == b'\n') {
            if line.first() == Some(&b'!') {
                return Err(ProtocolError::upstream("bang"));
            }
            self.upstream_line.extend_from_slice(line);
            if line == b"PONG\n" && self.owners.pop() == Some(Owner::Filter) {
                out.skip(line.len());
                out.pong_answered();
            } else {
                out.forward(line.len());
            }
        }
        Ok(out.pongs() - before)
    }
    fn release_held(&mut self, _: &mut Output) {}
}

/// NATS with the example timings (read idle 2 s, ping interval 1 s, 3 missed), a keepalive of `keepalive` ms.
fn config(keepalive: Option<u64>) -> Config {
    let mut json = Timings::EXAMPLE.config_json("nats");
    if let Some(k) = keepalive {
        json["write_idle_keepalive"] = format!("{k}ms").into();
    }
    Config::from_json(json.to_string().as_bytes()).unwrap()
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn conn() -> Connection {
    Connection::new(Box::new(Lines::default()), at(0))
}

/// Runs the connection's timers like the worker does, at every deadline up to `until`, writing PINGs.
fn run_until(c: &mut Connection, cfg: &Config, until: u64) -> Vec<(u64, Timeout)> {
    let mut seen = Vec::new();
    while let Some(deadline) = c.deadline(cfg) {
        if deadline.as_millis() > until {
            break;
        }
        let t = c.on_timeout(deadline, cfg);
        if let Timeout::Inject(_) = t {
            c.ping_written(deadline);
        }
        seen.push((deadline.as_millis(), t));
    }
    seen
}

#[test]
fn waits_for_the_clients_first_bytes() {
    let cfg = config(None);
    let mut c = conn();
    assert_eq!(c.phase(), Phase::Waiting);
    assert_eq!(c.deadline(&cfg), None);
    assert!(c.on_client_data(b"hello\n", false, at(500)).keep_buffer);
    assert_eq!(c.phase(), Phase::Monitoring);
    assert_eq!(c.deadline(&cfg), Some(at(2500)));
}

#[test]
fn a_silent_upstream_is_pinged_every_interval_then_declared_dead_within_the_bound() {
    let cfg = config(None);
    let mut c = conn();
    c.on_client_data(b"hello\n", false, at(0));
    let seen = run_until(&mut c, &cfg, 10_000);
    let probe = Timeout::Inject(PingKind::Probe);
    assert_eq!(seen[..3], [(2000, probe), (3000, probe), (4000, probe)]);
    assert_eq!(
        seen[3],
        (
            5000,
            Timeout::Dead(Dead {
                evidence: Evidence::PingsUnanswered,
                silent_for: Duration::from_secs(5),
                missed: 3,
                pings_unanswered: 3
            })
        )
    );
    assert_eq!(seen.len(), 4, "nothing after dead: {seen:?}");
    assert_eq!(c.phase(), Phase::Ended);
    assert_eq!(cfg.detection_bound(), Duration::from_secs(5));
}

#[test]
fn any_upstream_byte_resets_the_misses_and_writes_never_do() {
    let cfg = config(None);
    let mut c = conn();
    let mut out = Output::new();
    c.on_client_data(b"hello\n", false, at(0));
    run_until(&mut c, &cfg, 3000); // two PINGs out
    assert_eq!(c.pings_owed(), 2);
    c.on_client_data(b"more\n", false, at(3500)); // writes: no effect on liveness
    assert_eq!(c.deadline(&cfg), Some(at(4000)));
    let r = c.on_upstream_data(b"PONG\n", false, at(3600), &mut out);
    assert_eq!(r.pongs, 1);
    assert!(r.rearm);
    assert_eq!(out.apply(b"PONG\n").as_deref(), Some(&b""[..]), "the filter's PONG is stripped");
    assert_eq!(c.deadline(&cfg), Some(at(5600)), "read-idle counts again from the last upstream byte");
}

#[test]
fn a_client_mid_frame_is_no_evidence_against_the_upstream() {
    let cfg = config(None);
    let mut c = conn();
    // A slow upload: part of a frame every 100 ms for a minute, the upstream rightly silent all along.
    for t in (0..60_000).step_by(100) {
        c.on_client_data(b"part of a long line ", false, at(t));
        let seen = run_until(&mut c, &cfg, t + 99);
        assert!(seen.iter().all(|(_, t)| *t == Timeout::Deferred(PingKind::Probe, Defer::MidFrame)), "{seen:?}");
    }
    // Then a pause mid-frame (a slow source, the client's own network): still nothing counts.
    let seen = run_until(&mut c, &cfg, 600_000);
    assert!(seen.iter().all(|(_, t)| *t == Timeout::Deferred(PingKind::Probe, Defer::MidFrame)), "{seen:?}");
    assert_eq!(seen.first().map(|(t, _)| *t), Some(60_000), "tried every interval: {seen:?}");
    assert_eq!(c.phase(), Phase::Monitoring);
    // The frame ends: the next interval sends a PING, and a dead upstream is closed within the bound from then.
    c.on_client_data(b"end\n", false, at(600_500));
    let seen = run_until(&mut c, &cfg, 700_000);
    let probe = Timeout::Inject(PingKind::Probe);
    assert_eq!(seen[..3], [(601_000, probe), (602_000, probe), (603_000, probe)], "{seen:?}");
    assert!(matches!(seen[3], (604_000, Timeout::Dead(Dead { evidence: Evidence::PingsUnanswered, missed: 3, .. }))));
}

#[test]
fn an_unanswered_ping_keeps_counting_while_the_client_is_mid_frame() {
    let cfg = config(None);
    let mut c = conn();
    c.on_client_data(b"hello\n", false, at(0));
    assert_eq!(run_until(&mut c, &cfg, 2000), [(2000, Timeout::Inject(PingKind::Probe))]);
    c.on_client_data(b"half a li", false, at(2500)); // the PING went first: its answer is owed first
    let seen = run_until(&mut c, &cfg, 10_000);
    let deferred = Timeout::Deferred(PingKind::Probe, Defer::MidFrame);
    assert_eq!(seen[..2], [(3000, deferred), (4000, deferred)]);
    assert!(matches!(seen[2], (5000, Timeout::Dead(Dead { missed: 3, pings_unanswered: 1, .. }))), "{seen:?}");
}

#[test]
fn keepalive_goes_out_after_write_idle_and_is_retried_an_interval_after_a_deferral() {
    let cfg = config(Some(1500));
    let mut c = conn();
    let mut out = Output::new();
    c.on_client_data(b"hi\n", false, at(0));
    assert_eq!(c.deadline(&cfg), Some(at(1500)));
    assert_eq!(c.on_timeout(at(1500), &cfg), Timeout::Inject(PingKind::Keepalive));
    c.ping_written(at(1500));
    c.on_upstream_data(b"PONG\n", false, at(1510), &mut out);
    assert_eq!(c.pings_owed(), 0);
    assert_eq!(c.deadline(&cfg), Some(at(3000)));
    c.on_client_data(b"par", false, at(2000));
    assert_eq!(c.on_timeout(at(3500), &cfg), Timeout::Deferred(PingKind::Keepalive, Defer::MidFrame));
    assert_eq!(c.deadline(&cfg), Some(at(3510)), "read-idle from the PONG at 1510 comes first");
    c.on_upstream_data(b"x\n", false, at(3505), &mut out);
    assert_eq!(c.deadline(&cfg), Some(at(4500)), "the keepalive retry, an interval after the deferral");
}

#[test]
fn end_of_stream_and_protocol_errors_stop_the_watch() {
    let cfg = config(None);
    let mut c = conn();
    c.on_client_data(b"a\n", false, at(0));
    let r = c.on_client_data(b"\0", false, at(1));
    assert_eq!(r, ClientData { keep_buffer: false, error: Some(ProtocolError::client("NUL byte")) });
    assert_eq!(c.phase(), Phase::PassThrough);
    assert_eq!(c.deadline(&cfg), None);
    let mut out = Output::new();
    c.on_upstream_data(b"PONG\n", false, at(2), &mut out);
    assert_eq!(out.apply(b"PONG\n"), None, "passed through untouched");

    let mut c = conn();
    c.on_client_data(b"a\n", true, at(0));
    assert_eq!(c.phase(), Phase::Ended);
    assert_eq!(c.on_timeout(at(100_000), &cfg), Timeout::Nothing);
}

/// Holds the first byte of every upstream chunk until the next chunk; a chunk starting with '!' is an error.
#[derive(Default)]
struct HoldsOne {
    held: Option<u8>,
}

impl Protocol for HoldsOne {
    fn on_client_bytes(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if data == b"bad" {
            return Err(ProtocolError::client("bad"));
        }
        Ok(())
    }
    fn can_inject(&self) -> Result<(), Defer> {
        Ok(())
    }
    fn ping(&self) -> &[u8] {
        b"P"
    }
    fn on_ping_injected(&mut self) {}
    fn on_upstream_bytes(&mut self, data: &[u8], out: &mut Output) -> Result<u32, ProtocolError> {
        if data.first() == Some(&b'!') {
            // Fails before accounting for anything: the byte held from the last chunk is still held.
            return Err(ProtocolError::upstream("bang"));
        }
        self.release_held(out);
        if let Some((first, rest)) = data.split_first() {
            out.skip(1);
            out.forward(rest.len());
            self.held = Some(*first);
        }
        Ok(0)
    }
    fn release_held(&mut self, out: &mut Output) {
        if let Some(b) = self.held.take() {
            out.insert(&[b]);
        }
    }
}

fn client_gets(c: &mut Connection, chunk: &[u8]) -> Vec<u8> {
    let mut out = Output::new();
    c.on_upstream_data(chunk, false, at(1), &mut out);
    out.apply(chunk).unwrap_or_else(|| chunk.to_vec())
}

#[test]
fn held_bytes_come_back_in_order_when_the_connection_turns_pass_through() {
    // An upstream-side error: the held byte precedes the rest of the failing chunk.
    let mut c = Connection::new(Box::new(HoldsOne::default()), at(0));
    c.on_client_data(b"x", false, at(0));
    assert_eq!(client_gets(&mut c, b"ab"), b"b");
    assert_eq!(client_gets(&mut c, b"!ef"), b"a!ef");
    assert_eq!(c.phase(), Phase::PassThrough);
    assert_eq!(client_gets(&mut c, b"gh"), b"gh");

    // A client-side error: the byte held from the last upstream chunk is given back with the next one.
    let mut c = Connection::new(Box::new(HoldsOne::default()), at(0));
    c.on_client_data(b"x", false, at(0));
    assert_eq!(client_gets(&mut c, b"ab"), b"b");
    c.on_client_data(b"bad", false, at(1));
    assert_eq!(c.phase(), Phase::PassThrough);
    assert_eq!(client_gets(&mut c, b"cd"), b"acd");
}

fn redis_conn() -> Connection {
    Connection::new(Box::new(crate::core::protocol::redis::Redis::new()), at(0))
}

#[test]
fn a_blocking_command_postpones_the_first_probe_by_its_timeout() {
    let cfg = config(None);
    let mut c = redis_conn();
    c.on_client_data(b"BLPOP jobs 5\r\n", false, at(0));
    assert_eq!(c.deadline(&cfg), Some(at(7000)), "5 s of allowed silence, then read-idle");
    // The server is hung: the reply is owed (no PING can go), and the server has reply_timeout after the
    // command's own timeout to answer.
    let seen = run_until(&mut c, &cfg, 40_000);
    let deferred = Timeout::Deferred(PingKind::Probe, Defer::RepliesOutstanding);
    assert_eq!(seen[..3], [(7000, deferred), (8000, deferred), (9000, deferred)]);
    let (when, last) = seen.last().copied().unwrap();
    assert_eq!(when, 35_000, "{seen:?}");
    assert!(matches!(last, Timeout::Dead(Dead { evidence: Evidence::ReplyOverdue, missed: 0, .. })), "{seen:?}");
}

#[test]
fn a_blocking_command_answered_early_brings_the_deadline_back() {
    let cfg = config(None);
    let mut c = redis_conn();
    let mut out = Output::new();
    c.on_client_data(b"BLPOP jobs 30\r\n", false, at(0));
    assert_eq!(c.deadline(&cfg), Some(at(32_000)));
    let r = c.on_upstream_data(b"*2\r\n$4\r\njobs\r\n$1\r\nx\r\n", false, at(1000), &mut out);
    assert!(r.rearm, "the deadline moved earlier: the timer must be re-armed");
    assert_eq!(c.deadline(&cfg), Some(at(3000)));
    assert_eq!(run_until(&mut c, &cfg, 3000), [(3000, Timeout::Inject(PingKind::Probe))]);
}

#[test]
fn timeout_zero_suspends_probing_until_the_reply() {
    let cfg = config(None);
    let mut c = redis_conn();
    let mut out = Output::new();
    c.on_client_data(b"BRPOP a b 0\r\n", false, at(0));
    assert_eq!(run_until(&mut c, &cfg, 3_600_000), [], "an hour of silence is allowed");
    let r = c.on_upstream_data(b"*2\r\n$1\r\na\r\n$1\r\nx\r\n", false, at(3_600_000), &mut out);
    assert!(r.rearm);
    assert_eq!(c.deadline(&cfg), Some(at(3_602_000)));
}

#[test]
fn a_blocking_command_never_stops_probing_that_has_started() {
    let cfg = config(None);
    let mut c = redis_conn();
    c.on_client_data(b"GET k\r\n", false, at(0));
    c.on_upstream_data(b"$1\r\nv\r\n", false, at(10), &mut Output::new());
    assert_eq!(run_until(&mut c, &cfg, 2010), [(2010, Timeout::Inject(PingKind::Probe))]);
    // Queued behind the filter's PING: its answer comes first, so the silence is still the PING's.
    c.on_client_data(b"BLPOP jobs 0\r\n", false, at(2500));
    let seen = run_until(&mut c, &cfg, 20_000);
    assert!(matches!(seen.last(), Some((5010, Timeout::Dead(Dead { missed: 3, .. })))), "{seen:?}");
}

#[test]
fn a_slow_reply_is_judged_on_reply_timeout_not_on_the_bound() {
    let cfg = config(None);
    assert_eq!(cfg.reply_timeout, Duration::from_secs(30));
    // Answered after 29 s (a long EVAL): never closed.
    let mut c = redis_conn();
    c.on_client_data(b"EVAL long 0\r\n", false, at(1000));
    let seen = run_until(&mut c, &cfg, 30_000);
    assert!(seen.iter().all(|(_, t)| *t == Timeout::Deferred(PingKind::Probe, Defer::RepliesOutstanding)), "{seen:?}");
    c.on_upstream_data(b"+OK\r\n", false, at(30_000), &mut Output::new());
    assert_eq!(c.deadline(&cfg), Some(at(32_000)), "read-idle again from the reply");
    // Never answered: closed reply_timeout after the command, not after the 5 s bound.
    let mut c = redis_conn();
    c.on_client_data(b"EVAL long 0\r\n", false, at(1000));
    let seen = run_until(&mut c, &cfg, 60_000);
    let (when, last) = seen.last().copied().unwrap();
    assert_eq!(when, 31_000, "{seen:?}");
    assert!(matches!(last, Timeout::Dead(Dead { evidence: Evidence::ReplyOverdue, .. })), "{seen:?}");
    assert_eq!(c.phase(), Phase::Ended);
}

#[test]
fn silence_counts_from_the_request_when_it_came_after_the_last_upstream_byte() {
    let cfg = config(None);
    let mut c = redis_conn();
    let mut out = Output::new();
    c.on_client_data(b"GET a\r\n", false, at(0));
    c.on_upstream_data(b"$1\r\nv\r\n", false, at(5), &mut out);
    c.on_client_data(b"GET b\r\n", false, at(1500)); // before read-idle: no PING went
    let seen = run_until(&mut c, &cfg, 60_000);
    assert_eq!(seen.last().map(|(t, _)| *t), Some(31_500), "{seen:?}");
}

#[test]
fn a_client_that_may_be_holding_the_upstream_back_is_judged_on_reply_timeout() {
    let cfg = config(None);
    let mut c = conn();
    let mut out = Output::new();
    c.on_client_data(b"SUB big\n", false, at(0));
    // A quarter of a mebibyte arrives, then nothing: a client that stopped reading, or a server that hung.
    let line = vec![b'x'; 1023].into_iter().chain([b'\n']).collect::<Vec<u8>>();
    for i in 0..256u64 {
        c.on_upstream_data(&line, false, at(1000 + i), &mut out);
    }
    let seen = run_until(&mut c, &cfg, 60_000);
    let probes = seen.iter().filter(|(_, t)| *t == Timeout::Inject(PingKind::Probe)).count();
    assert_eq!(probes, 3, "PINGs still go, but three unanswered are not enough: {seen:?}");
    let (when, last) = seen.last().copied().unwrap();
    assert_eq!(when, 1255 + 30_000, "{seen:?}");
    assert!(matches!(last, Timeout::Dead(Dead { evidence: Evidence::ReplyOverdue, missed: 3, .. })), "{seen:?}");

    // Less than that before the silence: the usual bound.
    let mut c = conn();
    c.on_client_data(b"SUB small\n", false, at(0));
    for i in 0..200u64 {
        c.on_upstream_data(&line, false, at(1000 + i), &mut out);
    }
    let seen = run_until(&mut c, &cfg, 60_000);
    assert!(
        matches!(seen.last(), Some((6199, Timeout::Dead(Dead { evidence: Evidence::PingsUnanswered, .. })))),
        "{seen:?}"
    );

    // As much, but trickled over longer than reply_timeout (a line every 200 ms): no sign of back-pressure,
    // the usual bound.
    let mut c = conn();
    c.on_client_data(b"SUB trickle\n", false, at(0));
    for i in 0..256u64 {
        c.on_upstream_data(&line, false, at(1000 + i * 200), &mut out);
    }
    let last = 1000 + 255 * 200;
    let seen = run_until(&mut c, &cfg, last + 60_000);
    let dead = Timeout::Dead(Dead {
        evidence: Evidence::PingsUnanswered,
        silent_for: Duration::from_secs(5),
        missed: 3,
        pings_unanswered: 3,
    });
    assert_eq!(seen.last(), Some(&(last + 5000, dead)), "{seen:?}");
}

#[test]
fn pongs_before_an_upstream_error_in_the_same_chunk_are_counted() {
    let cfg = config(None);
    let mut c = conn();
    c.on_client_data(b"hello\n", false, at(0));
    run_until(&mut c, &cfg, 2000);
    assert_eq!(c.pings_owed(), 1);
    let mut out = Output::new();
    let r = c.on_upstream_data(b"PONG\n!garbage\n", false, at(2100), &mut out);
    assert_eq!(r.pongs, 1, "stripped, so answered");
    assert!(r.error.is_some());
    assert_eq!(c.pings_owed(), 0);
    assert_eq!(out.apply(b"PONG\n!garbage\n").as_deref(), Some(&b"!garbage\n"[..]));
}

/// A Redis connection with one filter PING injected and owed.
fn redis_with_ping_owed(cfg: &Config) -> Connection {
    let mut c = redis_conn();
    c.on_client_data(b"GET a\r\n", false, at(0));
    c.on_upstream_data(b"$1\r\nv\r\n", false, at(1), &mut Output::new());
    assert_eq!(run_until(&mut c, cfg, 2001), [(2001, Timeout::Inject(PingKind::Probe))]);
    c
}

/// What the client receives for `chunks` from the upstream, client chunks interleaved by `client(i)`.
fn client_view_of(c: &mut Connection, chunks: &[&[u8]], mut client: impl FnMut(usize, &mut Connection)) -> Vec<u8> {
    let mut seen = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        client(i, c);
        let mut out = Output::new();
        c.on_upstream_data(chunk, false, at(2100 + i as u64), &mut out);
        seen.extend(out.apply(chunk).unwrap_or_else(|| chunk.to_vec()));
    }
    seen
}

#[test]
fn a_filter_reply_cut_by_a_fall_back_to_pass_through_reaches_the_client_whole() {
    let cfg = config(None);
    let mut c = redis_with_ping_owed(&cfg);
    // `+PO` is withheld; then MONITOR (whose replies cannot be counted) turns the connection pass-through.
    let seen = client_view_of(&mut c, &[b"+PO", b"NG\r\n+OK\r\n"], |i, c| {
        if i == 1 {
            c.on_client_data(b"MONITOR\r\n", false, at(2050));
        }
    });
    assert_eq!(c.phase(), Phase::PassThrough);
    assert_eq!(seen, b"+PONG\r\n+OK\r\n", "never a fragment of the filter's reply");
    assert_eq!(c.pings_owed(), 1, "not stripped: counted as unanswered");
}

#[test]
fn an_invalid_reply_in_the_filters_slot_reaches_the_client_the_same_however_it_is_cut() {
    let cfg = config(None);
    let stream: &[u8] = b"=9\x92rest";
    let mut views = Vec::new();
    for cut in 0..=stream.len() {
        let mut c = redis_with_ping_owed(&cfg);
        views.push(client_view_of(&mut c, &[&stream[..cut], &stream[cut..]], |_, _| {}));
        assert_eq!(c.phase(), Phase::PassThrough);
    }
    let mut c = redis_with_ping_owed(&cfg);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    views.push(client_view_of(&mut c, &bytes, |_, _| {}));
    assert!(views.iter().all(|v| v == stream), "{views:?}");
}

#[test]
fn an_unanswered_keepalive_counts_like_a_probe_when_no_new_ping_can_go() {
    // Redis cannot queue a probe behind the keepalive's reply: the keepalive itself is the evidence, and the
    // dead upstream is closed within the usual bound of its last byte.
    let cfg = config(Some(1000));
    let mut c = redis_conn();
    c.on_client_data(b"PING\r\n", false, at(0));
    c.on_upstream_data(b"+PONG\r\n", false, at(5), &mut Output::new());
    let seen = run_until(&mut c, &cfg, 20_000);
    assert_eq!(seen[0], (1000, Timeout::Inject(PingKind::Keepalive)), "{seen:?}");
    let probes: Vec<_> = seen.iter().filter(|(_, t)| !matches!(t, Timeout::Deferred(PingKind::Keepalive, _))).collect();
    let deferred = Timeout::Deferred(PingKind::Probe, Defer::RepliesOutstanding);
    assert_eq!(probes[1..4], [&(2005, deferred), &(3005, deferred), &(4005, deferred)], "{seen:?}");
    assert!(
        matches!(
            probes[4],
            (5005, Timeout::Dead(Dead { evidence: Evidence::PingsUnanswered, missed: 3, pings_unanswered: 1, .. }))
        ),
        "{seen:?}"
    );
    assert_eq!(probes.len(), 5, "{seen:?}");
}
