//! A probe network filter written in WAT (`probe.wat`) for testing a host against Envoy: the first
//! byte of its plugin configuration picks a behaviour (pause and continue, set-buffer rules, close
//! from the tick...), and it reports the statuses it gets back as stats, so the same run on this
//! host and on real Envoy can be compared stat by stat.
//!
//! In the template, `@"text"` stands for `(i32.const OFFSET) (i32.const LEN)` of a data segment
//! holding the text (WAT escapes such as `\0d\0a` allowed): readable without hand-counted offsets.

use crate::error::Result;
use crate::plugin::Plugin;

const TEMPLATE: &str = include_str!("probe.wat");
const STRINGS_AT: usize = 1024;
const STRINGS_END: usize = 4096;

/// Length in bytes of a WAT string literal body (`\hh` is one byte; `\\`, `\"`, `\n`, `\t` too).
fn literal_len(body: &str) -> usize {
    let bytes = body.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let next = bytes.get(i + 1).copied().unwrap_or(b' ');
            i += if next.is_ascii_hexdigit() { 3 } else { 2 };
        } else {
            i += 1;
        }
        n += 1;
    }
    n
}

/// Replaces every `@"text"` by a reference to a data segment appended to the module.
pub fn expand(template: &str) -> String {
    let mut out = String::new();
    let mut data = String::new();
    let mut offset = STRINGS_AT;
    let mut rest = template;
    while let Some(start) = rest.find("@\"") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('"') else { break };
        let body = &after[..end];
        let len = literal_len(body);
        out.push_str(&format!("(i32.const {offset}) (i32.const {len})"));
        data.push_str(&format!("  (data (i32.const {offset}) \"{body}\")\n"));
        offset += len;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    assert!(offset <= STRINGS_END, "the probe's strings overflow their area");
    match out.rfind(')') {
        Some(close) => format!("{}{}{}", &out[..close], data, &out[close..]),
        None => out,
    }
}

/// The probe as WAT text.
pub fn wat() -> String {
    expand(TEMPLATE)
}

/// The probe compiled for this host.
pub fn plugin() -> Result<Plugin> {
    Plugin::from_bytes(wat().as_bytes())
}
