//! Slack time: message `ts` strings as exact integer microseconds, ISO-8601 of epochs, and
//! the history window's bound.
//!
//! Invariant: timestamps are handled as exact strings and integers, never floats (the bug
//! class of elastic/connectors#3032).

/// A Slack ts (`"1700000000.000100"`, or an integer) as exact microseconds.
pub fn ts_micros(ts: &str) -> Option<i64> {
    let ts = ts.trim();
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || secs.len() > 12 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros: i64 = 0;
    for i in 0..6 {
        let digit = frac
            .as_bytes()
            .get(i)
            .map(|b| i64::from(b - b'0'))
            .unwrap_or(0);
        micros = micros * 10 + digit;
    }
    Some(secs.parse::<i64>().ok()? * 1_000_000 + micros)
}

/// ISO-8601 UTC (`2023-11-14T22:13:20.000100Z`) of epoch microseconds.
pub fn iso_from_micros(micros: i64) -> Option<String> {
    let mut out = Vec::with_capacity(27);
    if write_iso(&mut out, micros) {
        return String::from_utf8(out).ok();
    }
    None
}

/// Appends [`iso_from_micros`] of `micros`: the fast writer for 1970..=9999, chrono beyond;
/// `false`, with nothing written, when the instant has no representation.
pub(super) fn write_iso(out: &mut Vec<u8>, micros: i64) -> bool {
    if write_iso_micros(out, micros) {
        return true;
    }
    match iso_from_micros_chrono(micros) {
        Some(iso) => {
            out.extend_from_slice(iso.as_bytes());
            true
        }
        None => false,
    }
}

/// Writes [`iso_from_micros`] for years 1970..=9999 (every Slack `ts`) without chrono's
/// general formatter, which was a visible share of a message's cost; `false` (nothing
/// written) outside that range. Days to civil date after Howard Hinnant's algorithm.
fn write_iso_micros(out: &mut Vec<u8>, micros: i64) -> bool {
    // 253402300800 s = 10000-01-01T00:00:00Z.
    if !(0..253_402_300_800_000_000).contains(&micros) {
        return false;
    }
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, rem / 3600, 2);
    out.push(b':');
    push_digits(out, rem / 60 % 60, 2);
    out.push(b':');
    push_digits(out, rem % 60, 2);
    out.push(b'.');
    push_digits(out, frac, 6);
    out.push(b'Z');
    true
}

/// `value` (non-negative) as exactly `width` (at most 6) zero-padded decimal digits.
fn push_digits(out: &mut Vec<u8>, value: i64, width: usize) {
    let mut buf = [b'0'; 6];
    let mut v = value;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// chrono's RFC 3339 with microseconds: the reference, and years past 9999.
fn iso_from_micros_chrono(micros: i64) -> Option<String> {
    let secs = micros.div_euclid(1_000_000);
    let nanos = (micros.rem_euclid(1_000_000) * 1000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// ISO-8601 UTC of an epoch that may be seconds or milliseconds (Slack's channel `updated`
/// is in milliseconds, `created` in seconds): values past year 5138 in seconds are ms.
pub fn iso_from_epoch(value: i64) -> Option<String> {
    if value <= 0 {
        return None;
    }
    let micros = if value >= 100_000_000_000 {
        value.checked_mul(1000)?
    } else {
        value.checked_mul(1_000_000)?
    };
    iso_from_micros(micros)
}

/// The history window's lower bound (`oldest`, exclusive), as an integer string:
/// `floor(now) - days * 86400`; `None` for 0 days (all history). Integer-exact on purpose.
pub fn window_oldest(now_secs: i64, days: u32) -> Option<String> {
    (days > 0).then(|| {
        now_secs
            .saturating_sub(i64::from(days) * 86_400)
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_exact() {
        assert_eq!(ts_micros("1700000000.000100"), Some(1_700_000_000_000_100));
        assert_eq!(ts_micros("1700000000"), Some(1_700_000_000_000_000));
        assert_eq!(ts_micros("1700000000.1"), Some(1_700_000_000_100_000));
        assert_eq!(ts_micros("1.7e9"), None);
        assert_eq!(ts_micros(""), None);
        assert_eq!(
            iso_from_micros(1_700_000_000_000_100).as_deref(),
            Some("2023-11-14T22:13:20.000100Z")
        );
        assert_eq!(
            iso_from_epoch(1_700_000_000).as_deref(),
            Some("2023-11-14T22:13:20.000000Z")
        );
        assert_eq!(
            iso_from_epoch(1_700_000_000_123).as_deref(),
            Some("2023-11-14T22:13:20.123000Z")
        );
        assert_eq!(iso_from_epoch(0), None);
    }

    #[test]
    fn fast_iso_agrees_with_chrono() {
        // Edges (epoch, leap days, century rules, the last representable instant) and a
        // deterministic sweep over 1970..10000 with odd strides, so every month, day and
        // time of day is hit.
        let mut cases = vec![
            0,
            1,
            999_999,
            951_782_400_000_000,   // 2000-02-29
            4_107_542_400_000_000, // 2100-03-01 (2100 is not a leap year)
            1_700_000_000_000_100,
            253_402_300_799_999_999,
        ];
        let mut x: i64 = 1;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            cases.push(((x as u64) >> 1) as i64 % 253_402_300_800_000_000);
        }
        for micros in cases {
            assert_eq!(
                iso_from_micros(micros),
                iso_from_micros_chrono(micros),
                "{micros}"
            );
        }
        // Outside the fast range: chrono's answer.
        assert_eq!(
            iso_from_micros(253_402_300_800_000_000).as_deref(),
            Some("+10000-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            iso_from_micros(-1).as_deref(),
            Some("1969-12-31T23:59:59.999999Z")
        );
    }

    #[test]
    fn window_bounds_are_integers() {
        assert_eq!(
            window_oldest(1_700_000_000, 180).as_deref(),
            Some("1684448000")
        );
        assert_eq!(
            window_oldest(1_700_000_000, 1).as_deref(),
            Some("1699913600")
        );
        assert_eq!(window_oldest(1_700_000_000, 0), None);
    }
}
