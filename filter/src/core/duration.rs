//! Durations as operators write them in the plugin configuration: "10s", "1.5s", "500ms", "2m", "1h".

use std::time::Duration;

/// Parses a duration with a unit (`ms`, `s`, `m`, `h`) and an optional decimal fraction.
/// Resolution is one millisecond; anything finer, negative, or without a unit is an error.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s, m or h, e.g. \"10s\")"))?;
    let (number, unit) = text.split_at(split);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?} has unknown unit {unit:?} (use ms, s, m or h)")),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(format!("{text:?} has no number"));
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a number followed by a unit"));
    }
    let too_large = || format!("{text:?} is too large");
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let mut ms = whole.checked_mul(unit_ms).ok_or_else(too_large)?;
    // The fraction, in milliseconds, exactly: digits beyond the unit's millisecond resolution must be zero.
    let mut scale = unit_ms;
    for digit in fraction.bytes() {
        let d = u64::from(digit - b'0');
        if scale % 10 != 0 {
            if d != 0 {
                return Err(format!("{text:?} is finer than a millisecond"));
            }
            continue;
        }
        scale /= 10;
        ms = ms.checked_add(d * scale).ok_or_else(too_large)?;
    }
    Ok(Duration::from_millis(ms))
}

/// Writes a duration the way [`parse`] reads it: whole seconds as `"2s"`, anything else in milliseconds
/// (`"1500ms"`); what is finer than a millisecond is dropped.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("0.25m"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse(" 3s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_what_it_cannot_read_exactly() {
        for bad in
            ["", "10", "s", "-1s", "1.5.2s", "1,5s", "10 s", "1.0005s", "0.5ms", "5d", "99999999999999999999s", "1e3s"]
        {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn format_writes_what_parse_reads() {
        assert_eq!(format(Duration::from_secs(2)), "2s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        for d in [
            Duration::from_millis(10),
            Duration::from_secs(1),
            Duration::from_millis(2500),
            Duration::from_secs(86_400),
        ] {
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
