//! How a top-level reply looks, read as it streams by: what subscribe-mode pairing needs to know.

use super::kinds::{Class, Kind};
use super::limits::MAX_REPLY_NAME;
use super::word::Word;

/// How a top-level reply looks, as far as pairing it needs: is it a push, a subscription reply, other?
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    /// The reply's type byte.
    top: u8,
    /// Element count, for an array.
    len: i64,
    /// Top-level elements begun so far.
    begun: u64,
    /// The first element, when it is a short bulk string.
    name: Word<MAX_REPLY_NAME>,
    /// `Some(true)` once the first element was read whole as a short bulk string, `Some(false)` once it is
    /// known not to be one.
    name_known: Option<bool>,
    /// The third element, when it is an integer (a subscription reply's count).
    count: Option<i64>,
}

impl Shape {
    pub(super) const fn new() -> Self {
        Shape { top: 0, len: 0, begun: 0, name: Word::new(), name_known: None, count: None }
    }

    fn element(&self) -> u64 {
        self.begun.saturating_sub(1)
    }

    pub(super) fn on_type(&mut self, level: usize, t: u8) {
        if level == 0 {
            self.top = t;
        } else if level == 1 {
            self.begun = self.begun.saturating_add(1);
            if self.element() == 0 && t != b'$' {
                self.name_known = Some(false);
            }
        }
    }

    pub(super) fn on_number(&mut self, level: usize, t: u8, n: i64) {
        match (level, t) {
            (0, b'*') => self.len = n,
            (1, b'$') if self.element() == 0 && !(0..=MAX_REPLY_NAME as i64).contains(&n) => {
                self.name_known = Some(false)
            }
            (1, b':') if self.element() == 2 => self.count = Some(n),
            _ => {}
        }
    }

    /// Whether the bytes of a bulk string at `level` are read (the first element's, while it may be a name).
    pub(super) fn reads_body(&self, level: usize) -> bool {
        level == 1 && self.element() == 0 && self.name_known.is_none()
    }

    pub(super) fn on_body(&mut self, level: usize, bytes: &[u8]) {
        if self.reads_body(level) {
            self.name.extend(bytes);
        }
    }

    pub(super) fn on_bulk_end(&mut self, level: usize) {
        if level == 1 && self.element() == 0 && self.name_known.is_none() {
            self.name_known = Some(true);
        }
    }

    /// Whether `class` can be told already.
    pub(super) fn known(&self) -> bool {
        self.top != b'*' || self.name_known.is_some()
    }

    pub(super) fn class(&self) -> Class {
        if self.top != b'*' || self.name_known != Some(true) {
            return Class::Other;
        }
        let name = &self.name;
        if (self.len == 3 && (name.is(b"MESSAGE") || name.is(b"SMESSAGE"))) || (self.len == 4 && name.is(b"PMESSAGE")) {
            return Class::Push;
        }
        match Kind::of(name) {
            Some(kind) if self.len == 3 => Class::Subscription(kind, self.count),
            _ => Class::Other,
        }
    }
}
