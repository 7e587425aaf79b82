//! The JSON writer of message documents: one object written field by field into one
//! buffer, with a fast escaper for the text that is most of a sync's bytes.

use super::text::JsonText;
use super::time::write_iso;

/// Writes one JSON object field by field. Keys are ours (plain ASCII, never escaped);
/// values are escaped as JSON requires.
pub(super) struct ObjectWriter {
    out: Vec<u8>,
}

impl ObjectWriter {
    pub(super) fn with_capacity(capacity: usize) -> ObjectWriter {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        ObjectWriter { out }
    }

    pub(super) fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// Returns where the written value (quotes included) lies in the output, for [`Self::same`].
    pub(super) fn str(&mut self, key: &str, value: &str) -> std::ops::Range<usize> {
        self.str_parts(key, &[value])
    }

    /// One string value made of `parts`, concatenated; returns the value's span.
    pub(super) fn str_parts(&mut self, key: &str, parts: &[&str]) -> std::ops::Range<usize> {
        self.key(key);
        let start = self.out.len();
        self.out.push(b'"');
        for part in parts {
            escape_json_into(&mut self.out, part);
        }
        self.out.push(b'"');
        start..self.out.len()
    }

    /// `key` with a value already written at `value` (a span [`Self::str`] returned).
    pub(super) fn same(&mut self, key: &str, value: std::ops::Range<usize>) {
        self.key(key);
        self.out.extend_from_within(value);
    }

    /// A string value written piece by piece by `write`, escaped on the way.
    pub(super) fn text(&mut self, key: &str, write: impl FnOnce(&mut JsonText<'_>)) {
        self.key(key);
        self.out.push(b'"');
        write(&mut JsonText(&mut self.out));
        self.out.push(b'"');
    }

    /// An ISO-8601 timestamp of epoch microseconds, if it has one (nothing written, and
    /// `false`, otherwise: see [`super::set_timestamp`]).
    pub(super) fn timestamp(&mut self, key: &str, micros: Option<i64>) -> bool {
        let Some(micros) = micros else { return false };
        let mark = self.out.len();
        self.key(key);
        self.out.push(b'"');
        if write_iso(&mut self.out, micros) {
            self.out.push(b'"');
            true
        } else {
            self.out.truncate(mark);
            false
        }
    }

    pub(super) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => {
                self.str(key, value);
            }
            None => self.null(key),
        }
    }

    pub(super) fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        // Writing to a Vec cannot fail.
        let _ = std::io::Write::write_fmt(&mut self.out, format_args!("{value}"));
    }

    pub(super) fn null(&mut self, key: &str) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// Appends `s` JSON-escaped (without quotes): `"`, `\\` and control characters; the rest,
/// unicode included, is copied as is (JSON text is UTF-8). Message text is most of the
/// bytes we write, so clean runs are found eight bytes at a time.
pub(super) fn escape_json_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i..i + 8]);
            if !word_needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes of `word` is `"`, `\\` or below 0x20 (may say yes for a
/// byte that only looks close; the byte loop then decides exactly).
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The classic "has a byte below n" and "has a zero byte" tricks.
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let has_quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let has_backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    below_space | has_quote | has_backslash != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping_round_trips() {
        for text in [
            "plain",
            "quote \" backslash \\ slash /",
            "lines\nand\r\ttabs \u{0} \u{1f} \u{7f}",
            "unicode é 日本語 🎉 \u{2028}",
            "",
            "exactly8",
            "a longer clean run of text, then one \" quote, then more clean text\\",
            "\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\u{9}",
            "ééééé\"ééééé",
        ] {
            let mut out = b"\"".to_vec();
            escape_json_into(&mut out, text);
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
        }
    }

    /// No byte that needs escaping slips through the eight-byte scan, at any position and
    /// beside any neighbour.
    #[test]
    fn word_scan_never_misses_a_byte_to_escape() {
        for needs in (0u8..0x20).chain([b'"', b'\\']) {
            for filler in 0u8..=255 {
                for at in 0..8 {
                    let mut word = [filler; 8];
                    word[at] = needs;
                    assert!(
                        word_needs_escape(u64::from_le_bytes(word)),
                        "{needs} at {at}"
                    );
                }
            }
        }
        assert!(!word_needs_escape(u64::from_le_bytes(*b"clean ok")));
    }
}
