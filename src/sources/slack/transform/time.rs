//! Slack time: message `ts` strings as exact integer microseconds, ISO-8601 of epochs, and
//! the history window's bound.
//!
//! Invariant: timestamps are handled as exact strings and integers, never floats (the bug
//! class of elastic/connectors#3032).

use crate::sources::Timestamp;

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
    Timestamp::from_micros(micros).iso()
}

/// The instant of an epoch that may be seconds or milliseconds (Slack's channel `updated`
/// is in milliseconds, `created` in seconds): values past year 5138 in seconds are ms;
/// `None` for 0 and below (Slack's "never").
pub fn epoch_timestamp(value: i64) -> Option<Timestamp> {
    if value <= 0 {
        return None;
    }
    let micros = if value >= 100_000_000_000 {
        value.checked_mul(1000)?
    } else {
        value.checked_mul(1_000_000)?
    };
    Some(Timestamp::from_micros(micros))
}

/// ISO-8601 UTC of [`epoch_timestamp`].
pub fn iso_from_epoch(value: i64) -> Option<String> {
    epoch_timestamp(value)?.iso()
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
