//! Faults that keep the HTTP 200 and `ok:true` but break the promise of the answer: a
//! method's data missing, `null` or of the wrong type, `has_more` without a cursor, a cursor
//! that repeats. These are the shapes that once made a connector take a broken answer for
//! an empty last page and delete what it had not seen.
//!
//! Invariant: the rewrite starts from the method's real answer, so the call still takes
//! effect (a join joins) and every other field is what a good answer carries; an `ok:false`
//! answer is never rewritten.

use crate::cursor;
use crate::types::FaultAction;
use serde_json::{json, Value};

/// The field holding a method's data: what a client cannot do without.
pub fn main_field(method: &str) -> &'static str {
    match method {
        "users.list" | "conversations.members" => "members",
        "conversations.list" => "channels",
        "conversations.history" | "conversations.replies" => "messages",
        "conversations.join" | "conversations.info" => "channel",
        "users.info" => "user",
        "auth.test" => "url",
        "team.info" => "team",
        "usergroups.list" => "usergroups",
        "files.list" | "files.remote.list" => "files",
        "chat.getPermalink" => "permalink",
        "chat.postMessage" | "reactions.get" => "message",
        "files.getUploadURLExternal" => "upload_url",
        "files.completeUploadExternal" => "files",
        "oauth.v2.access" => "access_token",
        _ => "args",
    }
}

/// A cursor that asks for the first page again (paged methods only).
fn first_page_cursor(method: &str) -> Option<String> {
    Some(match method {
        "users.list" => cursor::encode("users", 0),
        "conversations.list" => cursor::encode("offset", 0),
        "conversations.members" => cursor::encode("members", 0),
        // History pages back from the cursor's ts; replies forward from it.
        "conversations.history" => cursor::encode("next_ts", i64::MAX),
        "conversations.replies" => cursor::encode("next_ts", i64::MIN),
        _ => return None,
    })
}

/// A value of another JSON type than `value`'s.
fn wrong_type(value: Option<&Value>) -> Value {
    match value {
        Some(Value::String(_)) => json!(42),
        _ => json!("not what Slack sends"),
    }
}

/// Rewrites a good answer `body` of `method` (asked with `request_cursor`) per `fault`;
/// anything but an `ok:true` object, and faults that do not reshape, pass unchanged.
pub fn reshape(
    method: &str,
    request_cursor: Option<&str>,
    body: Vec<u8>,
    fault: &FaultAction,
) -> Vec<u8> {
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    if answer.get("ok") != Some(&Value::Bool(true)) {
        return body;
    }
    let field = |named: &Option<String>| {
        named
            .clone()
            .unwrap_or_else(|| main_field(method).to_string())
    };
    match fault {
        FaultAction::MissingField { field: named } => {
            answer.remove(&field(named));
        }
        FaultAction::NullField { field: named } => {
            answer.insert(field(named), Value::Null);
        }
        FaultAction::WrongType { field: named } => {
            let key = field(named);
            let value = wrong_type(answer.get(&key));
            answer.insert(key, value);
        }
        FaultAction::HasMoreWithoutCursor => {
            answer.insert("has_more".into(), json!(true));
            answer.insert("response_metadata".into(), json!({"next_cursor": ""}));
        }
        FaultAction::RepeatCursor => {
            let Some(again) = request_cursor
                .map(str::to_string)
                .or_else(|| first_page_cursor(method))
            else {
                return body;
            };
            answer.insert("response_metadata".into(), json!({"next_cursor": again}));
            if answer.contains_key("has_more") {
                answer.insert("has_more".into(), json!(true));
            }
        }
        _ => return body,
    }
    serde_json::to_vec(&answer).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(method: &str, cursor: Option<&str>, body: Value, fault: FaultAction) -> Value {
        let out = reshape(method, cursor, body.to_string().into_bytes(), &fault);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn each_fault_breaks_one_promise() {
        let page = json!({"ok": true, "messages": [{"ts": "1.000001"}], "has_more": false,
            "response_metadata": {"next_cursor": ""}});
        let h = "conversations.history";
        let missing = apply(
            h,
            None,
            page.clone(),
            FaultAction::MissingField { field: None },
        );
        assert!(missing.get("messages").is_none());
        assert_eq!(missing["has_more"], false);
        let null = apply(
            h,
            None,
            page.clone(),
            FaultAction::NullField { field: None },
        );
        assert!(null["messages"].is_null());
        let wrong = apply(
            h,
            None,
            page.clone(),
            FaultAction::WrongType { field: None },
        );
        assert!(wrong["messages"].is_string());
        let named = apply(
            h,
            None,
            page.clone(),
            FaultAction::WrongType {
                field: Some("has_more".into()),
            },
        );
        assert!(named["has_more"].is_string());
        assert!(named["messages"].is_array());
        let more = apply(h, None, page.clone(), FaultAction::HasMoreWithoutCursor);
        assert_eq!(more["has_more"], true);
        assert_eq!(more["response_metadata"]["next_cursor"], "");
        let again = apply(h, Some("Yz0x"), page.clone(), FaultAction::RepeatCursor);
        assert_eq!(again["response_metadata"]["next_cursor"], "Yz0x");
        assert_eq!(again["has_more"], true);
        let first = apply(h, None, page.clone(), FaultAction::RepeatCursor);
        let cursor = first["response_metadata"]["next_cursor"].as_str().unwrap();
        assert_eq!(crate::cursor::decode("next_ts", cursor), Some(i64::MAX));
        // A string field gets a number.
        let auth = json!({"ok": true, "url": "https://a.slack.com/", "team_id": "T1"});
        let wrong = apply(
            "auth.test",
            None,
            auth,
            FaultAction::WrongType { field: None },
        );
        assert_eq!(wrong["url"], 42);
    }

    #[test]
    fn failures_and_garbage_pass_unchanged() {
        let failed = br#"{"ok":false,"error":"not_in_channel"}"#.to_vec();
        let fault = FaultAction::MissingField { field: None };
        assert_eq!(
            reshape("conversations.history", None, failed.clone(), &fault),
            failed
        );
        assert_eq!(reshape("x", None, b"[1]".to_vec(), &fault), b"[1]".to_vec());
        // Unpaged methods have no cursor to repeat.
        let auth = br#"{"ok":true,"url":"u"}"#.to_vec();
        assert_eq!(
            reshape("auth.test", None, auth.clone(), &FaultAction::RepeatCursor),
            auth
        );
    }
}
