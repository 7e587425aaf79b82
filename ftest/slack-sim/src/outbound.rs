//! Slack as a destination: what apps post (`chat.postMessage` with Block Kit), the
//! three-step external upload (`files.getUploadURLExternal`, the upload to the URL it
//! gives, `files.completeUploadExternal`) and incoming webhooks; everything delivered is
//! kept for tests (`/_sim/posted`, `/_sim/files`).
//!
//! Strict as Slack's method docs: `blocks` must be a JSON array of known blocks (a section
//! text at most 3000 characters, at most 50 blocks), else `invalid_blocks`; a message needs
//! `text` or `blocks` (`no_text`); an upload needs `filename` and a positive integer
//! `length` (`missing_argument` for 0), the bytes sent must be exactly `length`, a file is
//! completed once, by the token that asked for it (`file_not_found`), into a channel the
//! bot is in (`channel_not_found`, `not_in_channel`).

use crate::api::{ApiError, Params};
use crate::state::Token;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A message delivered to a channel, a DM or a webhook.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Posted {
    /// Channel id (`C…`), DM id (`D…`), or `webhook:<id>`.
    pub channel: String,
    /// The `text` fallback (empty when only blocks were sent).
    pub text: String,
    /// The Block Kit blocks, when sent.
    pub blocks: Option<Value>,
    /// The message's ts (empty for webhooks).
    pub ts: String,
    /// The thread it was posted in.
    pub thread_ts: Option<String>,
}

/// A file shared with `files.completeUploadExternal`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SharedFile {
    pub id: String,
    pub filename: String,
    pub title: Option<String>,
    pub channel_id: Option<String>,
    pub thread_ts: Option<String>,
    pub initial_comment: Option<String>,
    /// The bytes uploaded (UTF-8 text here: reports).
    pub content: String,
}

struct Pending {
    /// The user (index) of the token that asked: files belong to a user.
    owner: String,
    filename: String,
    length: usize,
    content: Option<Vec<u8>>,
    completed: bool,
}

/// What was delivered, and uploads in flight.
#[derive(Default)]
pub struct Outbound {
    pub posted: Vec<Posted>,
    pub files: Vec<SharedFile>,
    pending: HashMap<String, Pending>,
    next_file: u64,
    /// Webhook ids (the last path segment of a webhook URL) → the channel they post to.
    pub webhooks: HashMap<String, String>,
}

fn err(code: &str) -> ApiError {
    ApiError::Code(code.to_string())
}

/// Checks `blocks` as Block Kit (the blocks a notifier sends, strictly).
pub fn check_blocks(raw: &str) -> Result<Value, ApiError> {
    let blocks: Value = serde_json::from_str(raw).map_err(|_| err("invalid_blocks_format"))?;
    let list = blocks
        .as_array()
        .ok_or_else(|| err("invalid_blocks_format"))?;
    if list.len() > 50 {
        return Err(err("invalid_blocks"));
    }
    let text_ok = |t: &Value| {
        matches!(t["type"].as_str(), Some("mrkdwn" | "plain_text"))
            && t["text"]
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.chars().count() <= 3000)
    };
    for block in list {
        let ok = match block["type"].as_str() {
            Some("section") => {
                let text = block.get("text");
                let fields = block.get("fields").and_then(Value::as_array);
                (text.is_some() || fields.is_some())
                    && text.is_none_or(text_ok)
                    && fields.is_none_or(|f| {
                        f.len() <= 10
                            && f.iter().all(|x| {
                                text_ok(x)
                                    && x["text"]
                                        .as_str()
                                        .is_some_and(|s| s.chars().count() <= 2000)
                            })
                    })
            }
            Some("divider") => true,
            Some("header") => block["text"]["type"] == "plain_text" && text_ok(&block["text"]),
            Some("context") => block["elements"]
                .as_array()
                .is_some_and(|e| !e.is_empty() && e.len() <= 10),
            _ => false,
        };
        if !ok {
            return Err(err("invalid_blocks"));
        }
    }
    Ok(blocks)
}

impl Outbound {
    /// `files.getUploadURLExternal`.
    pub fn get_upload_url(
        &mut self,
        base_url: &str,
        tok: &Token,
        p: &Params,
    ) -> Result<Vec<u8>, ApiError> {
        need_files_write(tok)?;
        let filename = p
            .get("filename")
            .ok_or_else(|| ApiError::InvalidArgs("missing required field: filename".into()))?;
        let length = p
            .get("length")
            .ok_or_else(|| ApiError::InvalidArgs("missing required field: length".into()))?;
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| ApiError::InvalidArgs("invalid length".into()))?;
        if length == 0 {
            return Err(err("missing_argument"));
        }
        self.next_file += 1;
        let id = format!("F{:09}", self.next_file);
        self.pending.insert(
            id.clone(),
            Pending {
                owner: tok.user.to_string(),
                filename: filename.to_string(),
                length,
                content: None,
                completed: false,
            },
        );
        let body =
            json!({"ok": true, "upload_url": format!("{base_url}/_upload/{id}"), "file_id": id});
        Ok(body.to_string().into_bytes())
    }

    /// The upload itself: `Ok(answer text)` or an HTTP status and text.
    pub fn upload(&mut self, file_id: &str, bytes: &[u8]) -> Result<String, (u16, String)> {
        let Some(pending) = self.pending.get_mut(file_id) else {
            return Err((404, "file not found".into()));
        };
        if pending.completed || pending.content.is_some() {
            return Err((400, "already uploaded".into()));
        }
        if bytes.len() != pending.length {
            return Err((
                400,
                format!("expected {} bytes, got {}", pending.length, bytes.len()),
            ));
        }
        pending.content = Some(bytes.to_vec());
        Ok(format!("OK - {}", bytes.len()))
    }

    /// `files.completeUploadExternal`; `channel_ok` checks a `channel_id` for the token.
    pub fn complete_upload(
        &mut self,
        tok: &Token,
        p: &Params,
        channel_ok: impl Fn(&str) -> Result<(), ApiError>,
    ) -> Result<Vec<u8>, ApiError> {
        need_files_write(tok)?;
        let raw = p
            .get("files")
            .ok_or_else(|| ApiError::InvalidArgs("missing required field: files".into()))?;
        let files: Vec<Value> = serde_json::from_str(raw)
            .map_err(|_| ApiError::InvalidArgs("files must be a JSON array".into()))?;
        if files.is_empty() {
            return Err(ApiError::InvalidArgs("files must not be empty".into()));
        }
        let channel_id = p.get("channel_id");
        if let Some(channel) = channel_id {
            channel_ok(channel)?;
        }
        let mut ids = Vec::new();
        for file in &files {
            let id = file["id"]
                .as_str()
                .ok_or_else(|| ApiError::InvalidArgs("each file needs an id".into()))?;
            match self.pending.get(id) {
                Some(f)
                    if f.owner == tok.user.to_string() && f.content.is_some() && !f.completed => {}
                _ => return Err(err("file_not_found")),
            }
            ids.push((id.to_string(), file["title"].as_str().map(str::to_string)));
        }
        let mut answer = Vec::new();
        for (id, title) in ids {
            let Some(pending) = self.pending.get_mut(&id) else {
                return Err(err("file_not_found"));
            };
            pending.completed = true;
            let content =
                String::from_utf8_lossy(pending.content.as_deref().unwrap_or(&[])).into_owned();
            answer.push(json!({"id": id, "name": pending.filename,
                "title": title.clone().unwrap_or_else(|| pending.filename.clone()),
                "size": pending.length}));
            self.files.push(SharedFile {
                id: id.clone(),
                filename: pending.filename.clone(),
                title,
                channel_id: channel_id.map(str::to_string),
                thread_ts: p.get("thread_ts").map(str::to_string),
                initial_comment: p.get("initial_comment").map(str::to_string),
                content,
            });
        }
        Ok(json!({"ok": true, "files": answer})
            .to_string()
            .into_bytes())
    }

    /// An incoming webhook post: `Ok(())` or Slack's HTTP status and short reason.
    pub fn webhook(&mut self, id: &str, body: &[u8]) -> Result<(), (u16, &'static str)> {
        let Some(channel) = self.webhooks.get(id).cloned() else {
            return Err((404, "no_service"));
        };
        let payload: Value = serde_json::from_slice(body).map_err(|_| (400, "invalid_payload"))?;
        let text = payload["text"].as_str().unwrap_or("").to_string();
        let blocks = match &payload["blocks"] {
            Value::Null => None,
            blocks => Some(check_blocks(&blocks.to_string()).map_err(|_| (400, "invalid_blocks"))?),
        };
        if text.is_empty() && blocks.is_none() {
            return Err((400, "no_text"));
        }
        self.posted.push(Posted {
            channel: format!("webhook:{channel}"),
            text,
            blocks,
            ts: String::new(),
            thread_ts: None,
        });
        Ok(())
    }
}

fn need_files_write(tok: &Token) -> Result<(), ApiError> {
    if tok.has("files:write") {
        Ok(())
    } else {
        Err(ApiError::MissingScope {
            needed: "files:write".into(),
            provided: tok.scope_header(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_checked() {
        let good = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}},
                          {"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}]}]);
        assert!(check_blocks(&good.to_string()).is_ok());
        for bad in [
            "not json".to_string(),
            json!({"type": "section"}).to_string(),
            json!([{"type": "section"}]).to_string(),
            json!([{"type": "nope", "text": {"type": "mrkdwn", "text": "x"}}]).to_string(),
            json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}}])
                .to_string(),
            json!([{"type": "section", "text": {"type": "bold", "text": "x"}}]).to_string(),
        ] {
            assert!(check_blocks(&bad).is_err(), "{bad}");
        }
    }
}
