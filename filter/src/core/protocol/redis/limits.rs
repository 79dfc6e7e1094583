//! The limits the decoder applies, Redis' own where Redis has one.

/// Longest inline command and longest `+ - :` or header line: Redis' PROTO_INLINE_MAX_SIZE.
pub(super) const MAX_LINE: u32 = 64 * 1024;
/// Longest bulk string: Redis' default `proto-max-bulk-len`.
pub(super) const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Most arguments in one multibulk command: Redis 7 accepts up to INT_MAX.
pub(super) const MAX_ARGS: i64 = i32::MAX as i64;
/// Most elements per array level in a reply.
pub(super) const MAX_ARRAY: i64 = 1024 * 1024;
/// Deepest nesting of arrays in a reply.
pub(super) const MAX_DEPTH: usize = 16;
/// Longest first element of a push or subscription reply (`punsubscribe`, `sunsubscribe`).
pub(super) const MAX_REPLY_NAME: usize = 12;
/// Bytes held back at most while deciding whether an array is a push: its header (`*1000000\r\n` at most)
/// and its first element up to a 12-byte name (`$12\r\n` and 14 bytes) or a header that rules a name out
/// (`$536870912\r\n`). Longer headers are invalid anyway, and an error.
pub(super) const MAX_HELD: usize = 32;
/// Bytes of a reply to the filter's PING withheld at most before it ends (`+PONG`, the subscribe-mode pong
/// array, or an error line such as `-MISCONF ...`). A longer one is a protocol error: the connection is passed
/// through and the client gets it whole.
pub(super) const MAX_STRIPPED: usize = 4096;
