//! One direction's feed loop around a frame reader, with the sticky error (rustls-style: after the first
//! protocol error the direction stays failed, and every later call returns that same error).

use crate::core::protocol::{ProtocolError, Side};

/// Follows one direction of a protocol frame by frame.
pub trait Reader {
    /// What the reader tells about a frame that ended (its op, or `()` when nothing matters).
    type Frame;

    /// Consumes bytes of `data` up to and including the end of the current frame: how many, and the frame
    /// when one ended there. Must consume at least one byte of a non-empty `data` unless a frame ended, and
    /// stops early only at a frame end.
    fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Self::Frame>), &'static str>;

    /// No byte of the next frame has been seen.
    fn at_boundary(&self) -> bool;

    /// How many of the next bytes belong to a body the reader only counts down ([`Countdown::left`]), and so
    /// need not be looked at: feeding them changes nothing but the count. A reader whose body end is also a
    /// frame end keeps the body's last byte out of it, so that frame ends are always reported by `feed`.
    ///
    /// [`Countdown::left`]: super::Countdown::left
    fn skippable(&self) -> u64 {
        0
    }

    /// Counts `n` (at most [`Reader::skippable`]) bytes without looking at them: the same state as feeding
    /// them. Returns how many were counted.
    fn skip(&mut self, n: u64) -> u64 {
        let _ = n;
        0
    }
}

/// A [`Reader`] and its sticky error.
#[derive(Clone, Debug)]
pub struct Driver<R> {
    reader: R,
    side: Side,
    error: Option<ProtocolError>,
}

impl<R: Reader> Driver<R> {
    pub fn new(side: Side, reader: R) -> Self {
        Driver { reader, side, error: None }
    }

    pub fn reader(&self) -> &R {
        &self.reader
    }

    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// The error this direction failed with, if it did.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// At a frame boundary, and not failed.
    pub fn at_boundary(&self) -> bool {
        self.error.is_none() && self.reader.at_boundary()
    }

    /// Bytes that need not be looked at ([`Reader::skippable`]); none once failed.
    pub fn skippable(&self) -> u64 {
        if self.error.is_some() {
            return 0;
        }
        self.reader.skippable()
    }

    /// Counts up to `n` bytes without looking at them (no more than [`Driver::skippable`]); returns how many.
    pub fn skip(&mut self, n: u64) -> u64 {
        let n = n.min(self.skippable());
        if n == 0 {
            return 0;
        }
        self.reader.skip(n)
    }

    /// Fails this direction (a reason found outside the reader, or the reader's own); returns the error.
    pub fn fail(&mut self, reason: &'static str) -> ProtocolError {
        let error = self.error.get_or_insert(ProtocolError { side: self.side, reason });
        error.clone()
    }

    /// Returns the sticky error if this direction has failed.
    pub fn check(&self) -> Result<(), ProtocolError> {
        match &self.error {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// One step of the reader on `data` (up to and including the end of the current frame), with the error
    /// made sticky.
    pub fn step(&mut self, data: &[u8]) -> Result<(usize, Option<R::Frame>), ProtocolError> {
        self.check()?;
        self.reader.feed(data).map_err(|reason| self.fail(reason))
    }

    /// Feeds all of `data`, calling `on_step` with the bytes of every step and the frame that ended there
    /// (if any). An error from `on_step` fails the direction as the reader's own would.
    pub fn feed(
        &mut self,
        data: &[u8],
        mut on_step: impl FnMut(&[u8], Option<R::Frame>) -> Result<(), &'static str>,
    ) -> Result<(), ProtocolError> {
        // Sticky even for an empty `data`, which reaches no step.
        self.check()?;
        let mut rest = data;
        while !rest.is_empty() {
            let (used, frame) = self.step(rest)?;
            let (stepped, after) = rest.split_at_checked(used).unwrap_or((rest, &[]));
            let ended = frame.is_some();
            on_step(stepped, frame).map_err(|reason| self.fail(reason))?;
            if used == 0 && !ended {
                break;
            }
            rest = after;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames are runs of bytes ended by `;`; `!` is not allowed.
    #[derive(Default)]
    struct Semicolons {
        open: bool,
    }

    impl Reader for Semicolons {
        type Frame = ();
        fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<()>), &'static str> {
            for (i, &b) in data.iter().enumerate() {
                match b {
                    b'!' => return Err("bang"),
                    b';' => {
                        self.open = false;
                        return Ok((i + 1, Some(())));
                    }
                    _ => self.open = true,
                }
            }
            Ok((data.len(), None))
        }
        fn at_boundary(&self) -> bool {
            !self.open
        }
    }

    #[test]
    fn feeds_every_frame_and_its_bytes() {
        let mut driver = Driver::new(Side::Client, Semicolons::default());
        let mut steps = Vec::new();
        driver
            .feed(b"ab;c;de", |bytes, frame| {
                steps.push((bytes.to_vec(), frame.is_some()));
                Ok(())
            })
            .unwrap();
        assert_eq!(steps, [(b"ab;".to_vec(), true), (b"c;".to_vec(), true), (b"de".to_vec(), false)]);
        assert!(!driver.at_boundary());
    }

    #[test]
    fn the_first_error_sticks() {
        let mut driver = Driver::new(Side::Upstream, Semicolons::default());
        let first = driver.feed(b"a;!", |_, _| Ok(())).unwrap_err();
        assert_eq!(first, ProtocolError::upstream("bang"));
        assert_eq!(driver.feed(b"fine;", |_, _| panic!("a failed direction reads nothing")), Err(first.clone()));
        assert_eq!(driver.feed(b"", |_, _| Ok(())), Err(first.clone()), "even nothing");
        assert_eq!(driver.fail("another"), first);
        assert!(!driver.at_boundary());
    }

    #[test]
    fn an_error_of_the_caller_fails_the_direction() {
        let mut driver = Driver::new(Side::Client, Semicolons::default());
        let error = driver.feed(b"a;b;", |_, _| Err("refused")).unwrap_err();
        assert_eq!(error, ProtocolError::client("refused"));
        assert_eq!(driver.check(), Err(error));
    }
}
