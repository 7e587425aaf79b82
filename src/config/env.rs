//! `${VAR}` and `${VAR:-default}` interpolation in configuration values, as EnvYAML does
//! for the Python service.
//!
//! Invariant: every problem is collected, never only the first, so one run of the daemon
//! shows the user every missing variable.

/// Replaces `${VAR}` and `${VAR:-default}` in `input` using `lookup`.
///
/// `$$` is not special; a `$` not followed by `{` is kept. Errors name the variable and the
/// fix; neither `input` nor the value of a variable is part of an error, and with `secret`
/// (the value of a password or API key) not even the text inside a malformed `${…}`.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    secret: bool,
) -> Result<String, Vec<String>> {
    let mut output = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        output.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            errors.push("unterminated `${`: close it with `}` or remove it".to_string());
            output.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.push(if secret {
                "invalid variable name in a `${…}` reference (not shown: the value is a secret): use letters, digits and `_`".to_string()
            } else {
                format!("invalid variable name `{name}` in `${{{expr}}}`: use letters, digits and `_`")
            });
        } else {
            match (lookup(name), default) {
                (Some(value), _) => output.push_str(&value),
                (None, Some(default)) => output.push_str(default),
                (None, None) => errors.push(format!(
                    "environment variable `{name}` is not set and no default value is provided: \
                     export it, or write `${{{name}:-default}}`"
                )),
            }
        }
        rest = &after[end + 1..];
    }
    output.push_str(rest);
    if errors.is_empty() {
        Ok(output)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("es.example:9200".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_defaults() {
        assert_eq!(
            interpolate("http://${HOST}", &env, false).unwrap(),
            "http://es.example:9200"
        );
        assert_eq!(
            interpolate("${NOPE:-fallback}", &env, false).unwrap(),
            "fallback"
        );
        assert_eq!(interpolate("${EMPTY:-x}", &env, false).unwrap(), "");
        assert_eq!(
            interpolate("no vars $ here", &env, false).unwrap(),
            "no vars $ here"
        );
        assert_eq!(interpolate("${NOPE:-}", &env, false).unwrap(), "");
    }

    #[test]
    fn collects_every_error() {
        let errors = interpolate("${A} and ${B} and ${bad-name}", &env, false).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("`A` is not set"));
        assert!(errors[2].contains("invalid variable name `bad-name`"));
        let open = interpolate("s3cret ${OPEN", &env, false).unwrap_err();
        assert!(open[0].contains("unterminated"));
        assert!(!open[0].contains("s3cret"), "{open:?}");
        let secret = interpolate("${s3cret!:-x}", &env, true).unwrap_err();
        assert!(!secret[0].contains("s3cret"), "{secret:?}");
    }
}
