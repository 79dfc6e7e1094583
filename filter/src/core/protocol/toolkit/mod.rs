//! The streaming pieces every protocol decoder is built from, in the manner of Envoy's `redis_proxy` codec
//! and mini-redis's frame cursor: each piece is resumable (it keeps its place across chunks, never buffering
//! a payload), never panics, and is small enough that a new protocol is mostly their composition.
//!
//! - [`Countdown`]: a body of known size, skipped by counting down (and able to say how many of the next
//!   bytes need not be looked at);
//! - [`LineEnd`]: the `\r\n` (or bare `\n`) after a body; [`find_line_end`]: the end of a line skipped whole;
//! - [`Decimal`]: a decimal size or integer, byte by byte, within the protocol's rules;
//! - [`Driver`]: one direction's feed loop around a [`Reader`], with the sticky error;
//! - [`Pairing`]: who is owed each reply, and the upstream frame withheld while it may be the filter's reply
//!   ([`ReplyHold`]), the protocol saying only what its reply looks like ([`ReplyShape`]).

mod countdown;
mod decimal;
mod driver;
mod line_end;
mod reply_hold;

pub use countdown::Countdown;
pub use decimal::{Decimal, DecimalError, DecimalRules};
pub use driver::{Driver, Reader};
pub use line_end::{find_line_end, LineEnd, LineEndStep};
pub use reply_hold::{Pairing, ReplyHold, ReplyShape, MAX_HELD};
