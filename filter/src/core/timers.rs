//! One worker's deadlines: a min-heap with at most one live entry per connection.
//!
//! Netty's IdleStateHandler, made cheap for many connections: traffic only writes a connection's
//! `last_read`/`last_write` and never touches the heap; when an entry comes due, the connection recomputes
//! its true deadline and is re-armed if it moved. A tick costs O(due x log n), and nothing for connections
//! that are not due. An entry is live only while it matches the connection's `scheduled` mark; others are
//! dropped when they surface (lazy deletion), or all at once when they come to outnumber the live ones
//! (a closed connection's entry could otherwise wait hours for its deadline).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::time::Instant;

pub type ConnId = u32;

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl Timers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, at: Instant, id: ConnId) {
        self.heap.push(Reverse((at, id)));
    }

    /// The earliest entry due at `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// Drops every entry `live` rejects. O(n): call it when stale entries have come to outnumber live ones,
    /// so that its cost is spread over the O(n) removals that made them stale.
    pub fn retain(&mut self, mut live: impl FnMut(Instant, ConnId) -> bool) {
        self.heap.retain(|Reverse((at, id))| live(*at, *id));
    }

    /// Entries held, live or stale.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_what_is_due_in_deadline_order() {
        let mut t = Timers::new();
        t.push(Instant::from_millis(30), 3);
        t.push(Instant::from_millis(10), 1);
        t.push(Instant::from_millis(20), 2);
        assert_eq!(t.pop_due(Instant::from_millis(5)), None);
        assert_eq!(t.pop_due(Instant::from_millis(20)), Some((Instant::from_millis(10), 1)));
        assert_eq!(t.pop_due(Instant::from_millis(20)), Some((Instant::from_millis(20), 2)));
        assert_eq!(t.pop_due(Instant::from_millis(20)), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn retain_drops_rejected_entries_and_keeps_order() {
        let mut t = Timers::new();
        for id in 0..10u32 {
            t.push(Instant::from_millis(u64::from(100 - id)), id);
        }
        t.retain(|_, id| id % 3 == 0);
        assert_eq!(t.len(), 4);
        let due: Vec<_> = std::iter::from_fn(|| t.pop_due(Instant::from_millis(1000))).map(|(_, id)| id).collect();
        assert_eq!(due, vec![9, 6, 3, 0]);
    }
}
