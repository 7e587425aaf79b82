//! `Secret`: a string that never shows itself.
//!
//! Invariant: the wrapped value is reachable only through [`Secret::expose`]; `Debug`,
//! `Display` and `Serialize` all print `**REDACTED**`, so a secret that ends up in a log
//! line, an error message or a `{:?}` dump is harmless. Call `expose` only where the value
//! goes on the wire (an `Authorization` header).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// What every redacted value prints as.
pub const REDACTED: &str = "**REDACTED**";

/// A sensitive string (Slack token, API key, password).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The real value, for the wire only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty (an unset secret).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let secret = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(secret.expose(), "xoxb-very-secret");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let dump = format!("{:?}", Holder { token: secret });
        assert!(!dump.contains("very-secret"), "{dump}");
    }
}
