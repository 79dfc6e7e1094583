//! One worker's deadlines: a min-heap with at most one live entry per connection.
//!
//! Netty's IdleStateHandler, made cheap for many connections: traffic only writes a connection's
//! `last_read`/`last_write` and never touches the heap; when an entry comes due, the connection recomputes
//! its true deadline and is re-armed if it moved. A tick costs O(due x log n), and nothing for connections
//! that are not due. An entry is live only while it matches the connection's `scheduled` mark; others are
//! dropped when they surface (lazy deletion).

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
}
