//! Slack timestamps (`"1700000000.000100"`) as exact integer microseconds.
//!
//! Invariant: every comparison of message timestamps in the simulator is done on
//! `Ts` (an `i64` of microseconds), never on floats, so `oldest`/`latest`
//! boundaries are exact (the bug class behind elastic/connectors#3032).

use serde::{Serialize, Serializer};
use std::fmt;

/// Microseconds since the Unix epoch; rendered as `"<secs>.<6 digits>"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

pub const MICROS: i64 = 1_000_000;

impl Ts {
    pub fn from_secs(secs: i64) -> Ts {
        Ts(secs * MICROS)
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(MICROS)
    }

    /// Parses an integer (`"1700000000"`) or a decimal with up to 6 fractional
    /// digits (`"1700000000.0001"` == `"1700000000.000100"`). Extra fractional
    /// digits are truncated (documented liberty). Anything else is `None`.
    pub fn parse(s: &str) -> Option<Ts> {
        let s = s.trim();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs: i64 = int.parse().ok()?;
        let mut micros: i64 = 0;
        for i in 0..6 {
            let d = frac
                .as_bytes()
                .get(i)
                .map(|b| i64::from(b - b'0'))
                .unwrap_or(0);
            micros = micros * 10 + d;
        }
        Some(Ts(secs * MICROS + micros))
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}",
            self.0.div_euclid(MICROS),
            self.0.rem_euclid(MICROS)
        )
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_are_exact() {
        assert_eq!(Ts::parse("1700000000"), Some(Ts(1_700_000_000_000_000)));
        assert_eq!(
            Ts::parse("1700000000.0001"),
            Some(Ts(1_700_000_000_000_100))
        );
        assert_eq!(
            Ts::parse("1700000000.000100"),
            Some(Ts(1_700_000_000_000_100))
        );
        assert_eq!(
            Ts::parse("1700000000.1234569"),
            Some(Ts(1_700_000_000_123_456))
        );
        assert_eq!(Ts::parse("abc"), None);
        assert_eq!(Ts::parse("1.7e9"), None);
        assert_eq!(Ts::parse("-5"), None);
        assert_eq!(Ts(1_700_000_000_000_100).to_string(), "1700000000.000100");
    }
}
