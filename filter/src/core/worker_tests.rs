use super::*;
use crate::core::config::Config;

#[derive(Default)]
struct Recorder {
    injected: Vec<(ConnId, Vec<u8>)>,
    closed: Vec<(ConnId, Dead)>,
    refuse: bool,
}

impl Transport for Recorder {
    fn inject(&mut self, id: ConnId, bytes: &[u8]) -> bool {
        if self.refuse {
            return false;
        }
        self.injected.push((id, bytes.to_vec()));
        true
    }
    fn close(&mut self, id: ConnId, dead: &Dead, _why: &str) {
        self.closed.push((id, *dead));
    }
}

fn worker() -> Worker {
    Worker::new(
        Config::from_json(br#"{"protocol":"nats","read_idle_timeout":"2s","ping_interval":"1s","max_missed_pongs":2}"#)
            .unwrap(),
    )
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

const CONNECT: &[u8] = b"CONNECT {}\r\n";

#[test]
fn ticks_visit_only_due_connections_and_reads_do_not_touch_the_heap() {
    let mut w = worker();
    let mut t = Recorder::default();
    for id in 0..10_000 {
        w.open(id, at(0));
        w.client_data(id, CONNECT, false, at(0));
    }
    assert_eq!(w.timer_entries(), 10_000);
    assert_eq!(w.stats().get(Stat::ConnectionsMonitored), 10_000);
    for ms in (0..2000).step_by(100) {
        for id in 0..10_000 {
            w.upstream_data(id, b"+OK\r\n", false, at(ms));
        }
        w.tick(at(ms), &mut t);
    }
    assert!(t.injected.is_empty());
    assert_eq!(w.timer_entries(), 10_000, "traffic must not add heap entries");
    // Connection 7 goes silent; the others keep talking. Only 7 is pinged and closed.
    for ms in (2000..6000).step_by(100) {
        for id in (0..10_000).filter(|id| *id != 7) {
            w.upstream_data(id, b"+OK\r\n", false, at(ms));
        }
        w.tick(at(ms), &mut t);
    }
    assert_eq!(t.injected, vec![(7, b"PING\r\n".to_vec()), (7, b"PING\r\n".to_vec())]);
    assert_eq!(t.closed.len(), 1);
    assert_eq!(t.closed[0].0, 7);
    assert_eq!(t.closed[0].1.missed, 2);
    assert_eq!(w.stats().get(Stat::PingsInjected), 2);
    assert_eq!(w.stats().get(Stat::DeadClosed), 1);
    assert_eq!(w.stats().get(Stat::ConnectionsMonitored), 9_999);
    assert!(w.timer_entries() <= 10_000);
    w.closed(7);
    assert_eq!(w.stats().get(Stat::PingsUnanswered), 2);
    assert_eq!(w.connection_count(), 9_999);
}

/// A PING Envoy had no buffer for never reached the upstream: no evidence, so no miss. It is counted as
/// deferred and tried again each interval; once a PING goes, the usual bound applies from there.
#[test]
fn a_refused_injection_is_counted_as_deferred_and_is_no_evidence() {
    let mut w = worker();
    let mut t = Recorder { refuse: true, ..Default::default() };
    w.open(1, at(0));
    w.client_data(1, CONNECT, false, at(0));
    for ms in (0..=10_000).step_by(10) {
        w.tick(at(ms), &mut t);
    }
    assert_eq!(w.stats().get(Stat::InjectionsDeferred), 9, "at 2 s, then every interval");
    assert!(t.closed.is_empty(), "closed without a PING ever reaching the upstream: {:?}", t.closed);
    t.refuse = false;
    for ms in (10_010..=20_000).step_by(10) {
        w.tick(at(ms), &mut t);
    }
    assert_eq!(t.injected.len(), 2, "two PINGs (max_missed_pongs 2), then the verdict");
    assert_eq!(t.closed.len(), 1);
    assert_eq!(t.closed[0].1.silent_for, std::time::Duration::from_secs(13));
}

#[test]
fn an_answer_after_misses_rearms_read_idle() {
    let mut w = worker();
    let mut t = Recorder::default();
    w.open(1, at(0));
    w.client_data(1, CONNECT, false, at(0));
    w.tick(at(2000), &mut t);
    assert_eq!(t.injected.len(), 1);
    assert_eq!(w.upstream_data(1, b"PONG\r\n", false, at(2100)), Some(Vec::new()), "own PONG stripped");
    assert_eq!(w.stats().get(Stat::PongsStripped), 1);
    for ms in (2100..4100).step_by(10) {
        w.tick(at(ms), &mut t);
    }
    assert_eq!(t.injected.len(), 1, "next PING at 2100 + 2000 = 4100, not before");
    w.tick(at(4100), &mut t);
    assert_eq!(t.injected.len(), 2);
    assert!(t.closed.is_empty());
}

#[test]
fn closing_unknown_or_reused_ids_is_harmless() {
    let mut w = worker();
    w.closed(42);
    assert_eq!(w.upstream_data(42, b"x", false, at(0)), None);
    assert!(!w.client_data(42, b"x", false, at(0)));
    w.open(1, at(0));
    w.client_data(1, CONNECT, false, at(0));
    w.open(1, at(1));
    assert_eq!(w.stats().get(Stat::ConnectionsMonitored), 0);
    assert_eq!(w.connection_count(), 1);
}

#[test]
fn closed_connections_do_not_leave_their_timers_behind() {
    // Hour-long keepalive timers on connections that live a moment: without compaction every one of them
    // would stay in the heap for an hour.
    let config = Config::from_json(
        br#"{"protocol":"nats","read_idle_timeout":"1h","write_idle_keepalive":"1h","reply_timeout":"2h"}"#,
    )
    .unwrap();
    let mut worker = Worker::new(config);
    let mut open = std::collections::VecDeque::new();
    for id in 0..100_000u32 {
        let now = Instant::from_millis(u64::from(id));
        worker.open(id, now);
        worker.client_data(id, b"CONNECT {}\r\n", false, now);
        open.push_back(id);
        if open.len() > 10 {
            worker.closed(open.pop_front().unwrap());
        }
        assert!(worker.timer_entries() <= 2 * worker.connection_count() + 64 + 1, "{} entries", worker.timer_entries());
    }
    assert_eq!(worker.connection_count(), 10);
}

#[test]
fn forget_all_counts_every_connection_as_closed() {
    let mut w = worker();
    let mut t = Recorder::default();
    for id in 0..3 {
        w.open(id, at(0));
        w.client_data(id, CONNECT, false, at(0));
    }
    w.tick(at(2000), &mut t);
    assert_eq!(w.stats().get(Stat::ConnectionsMonitored), 3);
    w.forget_all();
    assert_eq!(w.stats().get(Stat::ConnectionsMonitored), 0);
    assert_eq!(w.stats().get(Stat::PingsUnanswered), 3, "the PINGs still out are accounted for");
    assert_eq!((w.connection_count(), w.timer_entries()), (0, 0));
}
