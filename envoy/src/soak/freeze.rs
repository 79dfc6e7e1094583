//! Freezes of one upstream and the connections each must close.
//!
//! A connection joins the tracker just before its client's first byte (from then on the filter watches it),
//! and tells it when each request went out. When the upstream is frozen, every connection that joined before
//! the freeze took effect must be closed by `max(frozen_at, its last request) + limit`. The filter's bound
//! counts from the upstream's last byte (which came before `frozen_at`) when nothing is owed, and from the
//! later of that byte and the request while a reply is owed (`reply_timeout`); the soak sets `reply_timeout`
//! to the bound, so `limit = bound + tick + slack` covers both. A close seen while the upstream is not frozen
//! is a false close.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
struct Window {
    pause_called: Option<Instant>,
    frozen_at: Option<Instant>,
    /// Watched connections when the freeze took effect: each must be closed within the limit.
    expected: HashSet<u64>,
}

#[derive(Default)]
struct Inner {
    /// Watched connections: id → (when the client's first byte went out, when its last request did).
    open: HashMap<u64, (Instant, Option<Instant>)>,
    window: Option<Window>,
    freezes: u64,
    expected_total: u64,
    /// Time from the later of the freeze and the connection's last request to the client seeing the close,
    /// for every expected connection.
    detections: Vec<Duration>,
    /// Time from the freeze itself to the client seeing the close.
    from_freeze: Vec<Duration>,
    /// Expected connections still open at their deadline.
    late: u64,
    /// Connections the filter closed during a freeze that were not yet watched when it began.
    closed_other: u64,
    /// Expected connections the client closed itself during the freeze before the filter did (a race at the
    /// end of a session).
    closed_by_client: u64,
}

pub struct Tracker {
    pub name: String,
    pub limit: Duration,
    inner: Mutex<Inner>,
}

/// What a tracker saw over the run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub freezes: u64,
    pub expected: u64,
    pub detections: Vec<Duration>,
    pub from_freeze: Vec<Duration>,
    pub closed_other: u64,
    pub closed_by_client: u64,
    pub late: u64,
}

impl Tracker {
    pub fn new(name: &str, limit: Duration) -> Tracker {
        Tracker { name: name.to_string(), limit, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True from just before the freeze until just before the thaw: no new connection is opened meanwhile.
    pub fn frozen(&self) -> bool {
        self.lock().window.is_some()
    }

    /// The client is about to send its first byte on connection `id`.
    pub fn watch(&self, id: u64) {
        self.lock().open.insert(id, (Instant::now(), None));
    }

    /// The client has just sent a request on connection `id` (a reply is owed).
    pub fn request(&self, id: u64) {
        if let Some(w) = self.lock().open.get_mut(&id) {
            w.1 = Some(Instant::now());
        }
    }

    /// The client closed connection `id` itself.
    pub fn client_closed(&self, id: u64) {
        let mut g = self.lock();
        g.open.remove(&id);
        let removed = g.window.as_mut().is_some_and(|w| w.expected.remove(&id));
        if removed {
            g.closed_by_client += 1;
        }
    }

    /// Connection `id` was closed from the other side at `at`. Ok(Some(d)): a close the freeze required, `d`
    /// after the freeze took effect; Ok(None): a close during a freeze of a connection opened too late to be
    /// required; Err: a close while the upstream was not frozen.
    pub fn peer_closed(&self, id: u64, at: Instant) -> Result<Option<Duration>, String> {
        let mut guard = self.lock();
        let g = &mut *guard;
        let watched = g.open.remove(&id);
        let Some(w) = g.window.as_mut() else {
            return Err(format!(
                "{}: connection c{id} closed while its upstream was not frozen (a false close; watched for {:?})",
                self.name,
                watched.map(|s| at.saturating_duration_since(s.0)).unwrap_or_default()
            ));
        };
        if w.expected.remove(&id) {
            let from = w.frozen_at.max(watched.and_then(|s| s.1));
            let d = from.map(|f| at.saturating_duration_since(f)).unwrap_or_default();
            g.detections.push(d);
            g.from_freeze.push(w.frozen_at.map(|f| at.saturating_duration_since(f)).unwrap_or_default());
            Ok(Some(d))
        } else {
            g.closed_other += 1;
            Ok(None)
        }
    }

    /// Called just before the upstream is frozen.
    pub fn freeze_begins(&self) {
        let mut g = self.lock();
        g.window = Some(Window { pause_called: Some(Instant::now()), ..Window::default() });
    }

    /// Called when the freeze has taken effect; returns the number of connections it must close.
    pub fn frozen_now(&self) -> usize {
        let mut guard = self.lock();
        let g = &mut *guard;
        let now = Instant::now();
        let expected: HashSet<u64> = g.open.iter().filter(|(_, w)| w.0 < now).map(|(id, _)| *id).collect();
        let n = expected.len();
        g.freezes += 1;
        g.expected_total += n as u64;
        if let Some(w) = g.window.as_mut() {
            w.frozen_at = Some(now);
            w.expected = expected;
        }
        n
    }

    /// The required connections still open past their deadline (each one a failure; they are reported once),
    /// and how many are still open within theirs.
    pub fn overdue(&self) -> (Vec<u64>, usize) {
        let mut guard = self.lock();
        let g = &mut *guard;
        let Some(w) = g.window.as_mut() else { return (Vec::new(), 0) };
        let Some(frozen_at) = w.frozen_at else { return (Vec::new(), 0) };
        let now = Instant::now();
        let mut late: Vec<u64> = w
            .expected
            .iter()
            .copied()
            .filter(|id| {
                let last_request = g.open.get(id).and_then(|s| s.1);
                now > frozen_at.max(last_request.unwrap_or(frozen_at)) + self.limit
            })
            .collect();
        late.sort_unstable();
        for id in &late {
            w.expected.remove(id);
        }
        g.late += late.len() as u64;
        (late, w.expected.len())
    }

    /// The required connections still open, whatever their deadline (reported as late).
    pub fn give_up(&self) -> Vec<u64> {
        let mut guard = self.lock();
        let g = &mut *guard;
        let mut ids: Vec<u64> = g.window.as_mut().map(|w| w.expected.drain().collect()).unwrap_or_default();
        ids.sort_unstable();
        g.late += ids.len() as u64;
        ids
    }

    /// How long after `pause_called` the freeze took effect (docker pause or SIGSTOP latency).
    pub fn pause_latency(&self) -> Option<Duration> {
        let g = self.lock();
        let w = g.window.as_ref()?;
        Some(w.frozen_at?.saturating_duration_since(w.pause_called?))
    }

    /// Called just before the thaw: from now on a close is a false close.
    pub fn freeze_ends(&self) {
        self.lock().window = None;
    }

    pub fn summary(&self) -> Summary {
        let g = self.lock();
        Summary {
            freezes: g.freezes,
            expected: g.expected_total,
            detections: g.detections.clone(),
            from_freeze: g.from_freeze.clone(),
            closed_other: g.closed_other,
            closed_by_client: g.closed_by_client,
            late: g.late,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_judged_by_the_freeze_window() {
        let t = Tracker::new("up", Duration::from_secs(2));
        t.watch(1);
        t.watch(2);
        assert!(t.peer_closed(1, Instant::now()).is_err(), "no freeze: a false close");
        t.freeze_begins();
        assert!(t.frozen());
        assert_eq!(t.frozen_now(), 1);
        t.watch(3);
        assert_eq!(t.overdue(), (vec![], 1), "2 is open within its deadline");
        t.request(2);
        assert!(matches!(t.peer_closed(2, Instant::now()), Ok(Some(_))));
        assert!(matches!(t.peer_closed(3, Instant::now()), Ok(None)));
        assert_eq!(t.overdue(), (vec![], 0));
        t.freeze_ends();
        let s = t.summary();
        assert_eq!((s.freezes, s.expected, s.detections.len(), s.closed_other), (1, 1, 1, 1));
    }

    #[test]
    fn a_connection_open_past_its_deadline_is_reported_once() {
        let t = Tracker::new("up", Duration::ZERO);
        t.watch(5);
        t.freeze_begins();
        assert_eq!(t.frozen_now(), 1);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(t.overdue(), (vec![5], 0));
        assert_eq!(t.overdue(), (vec![], 0));
        assert_eq!(t.summary().late, 1);
    }
}
