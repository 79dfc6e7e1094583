//! Who is owed the next answer: the client or the filter.
//!
//! Servers answer in order. Each PING (or, for Redis, each command) the client sends and each PING the
//! filter injects takes its place in one queue; an answer goes to the front entry. Runs of the same owner
//! are merged, so a client that pipelines thousands of commands costs one entry.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Client,
    Filter,
}

#[derive(Debug, Default)]
pub struct PongOwners {
    runs: VecDeque<(Owner, u32)>,
    filter: u32,
}

impl PongOwners {
    pub fn new() -> Self {
        Self::default()
    }

    /// One more answer is owed to `owner`, after all those owed so far.
    pub fn push(&mut self, owner: Owner) {
        if owner == Owner::Filter {
            self.filter = self.filter.saturating_add(1);
        }
        match self.runs.back_mut() {
            Some((last, n)) if *last == owner && *n < u32::MAX => *n += 1,
            _ => self.runs.push_back((owner, 1)),
        }
    }

    /// An answer arrived: whose is it? `None` when nobody is owed one (an unsolicited answer).
    pub fn pop(&mut self) -> Option<Owner> {
        let (owner, n) = self.runs.front_mut()?;
        let owner = *owner;
        *n -= 1;
        if *n == 0 {
            self.runs.pop_front();
        }
        if owner == Owner::Filter {
            self.filter -= 1;
        }
        Some(owner)
    }

    /// Whose answer comes next, without taking it.
    pub fn front(&self) -> Option<Owner> {
        self.runs.front().map(|(owner, _)| *owner)
    }

    /// Answers owed to the filter.
    pub fn filter_owed(&self) -> u32 {
        self.filter
    }

    /// Whether any answer is owed at all.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Answers owed in total (client and filter).
    pub fn total(&self) -> u64 {
        self.runs.iter().map(|(_, n)| u64::from(*n)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_go_to_owners_in_order() {
        let mut q = PongOwners::new();
        q.push(Owner::Client);
        q.push(Owner::Client);
        q.push(Owner::Filter);
        q.push(Owner::Client);
        assert_eq!(q.runs.len(), 3);
        assert_eq!(q.filter_owed(), 1);
        assert_eq!(q.total(), 4);
        assert_eq!(q.pop(), Some(Owner::Client));
        assert_eq!(q.pop(), Some(Owner::Client));
        assert_eq!(q.front(), Some(Owner::Filter));
        assert_eq!(q.pop(), Some(Owner::Filter));
        assert_eq!(q.filter_owed(), 0);
        assert_eq!(q.pop(), Some(Owner::Client));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }
}
