//! The Slack Web API methods, as pure functions from (workspace, token,
//! params) to a JSON body or a Slack error code.
//!
//! Invariants: every success body starts with `"ok":true`; paging follows
//! Slack's documented defaults and maxima; `conversations.list` applies its
//! filters after cutting the page; message timestamps are compared as exact
//! integers (`Ts`); views are serialized straight from the model under the
//! workspace read lock.

use crate::cursor;
use crate::model::{Channel, ConvKind, Kind, Loc, Workspace};
use crate::render::{
    channel_view, file_view, msg_view, user_view, ChannelView, FileView, MsgView, UserView, View,
};
use crate::state::{Sim, Token, RESTRICTED_PAGE};
use crate::ts::Ts;
use crate::types::TokenKind;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// A Slack `ok:false` answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Code(String),
    MissingScope {
        needed: String,
        provided: String,
    },
    /// `invalid_arguments` with `response_metadata.messages`.
    InvalidArgs(String),
}

impl ApiError {
    pub fn code(&self) -> &str {
        match self {
            ApiError::Code(c) => c,
            ApiError::MissingScope { .. } => "missing_scope",
            ApiError::InvalidArgs(_) => "invalid_arguments",
        }
    }
    pub fn body(&self) -> Vec<u8> {
        let v = match self {
            ApiError::Code(c) => json!({"ok": false, "error": c}),
            ApiError::MissingScope { needed, provided } => {
                json!({"ok": false, "error": "missing_scope", "needed": needed, "provided": provided})
            }
            ApiError::InvalidArgs(m) => json!({"ok": false, "error": "invalid_arguments",
                "response_metadata": {"messages": [format!("[ERROR] {m}")]}}),
        };
        v.to_string().into_bytes()
    }
}

fn err(code: &str) -> ApiError {
    ApiError::Code(code.to_string())
}

/// Request parameters (query string, form or JSON body merged).
#[derive(Debug, Default, Clone)]
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | "yes"))
    }
    fn required(&self, k: &str) -> Result<&str, ApiError> {
        self.get(k)
            .ok_or_else(|| ApiError::InvalidArgs(format!("missing required field: {k}")))
    }
    /// `limit`-like integer; absent or ≤0 → `default`; above `max` → `max`.
    fn limit(&self, k: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => {
                let n: i64 = v.trim().parse().map_err(|_| err("invalid_limit"))?;
                Ok(if n <= 0 {
                    default
                } else {
                    (n as usize).min(max)
                })
            }
        }
    }
    fn cursor(&self, kind: &str) -> Result<Option<i64>, ApiError> {
        match self.get("cursor") {
            None => Ok(None),
            Some(c) => cursor::decode(kind, c)
                .map(Some)
                .ok_or_else(|| err("invalid_cursor")),
        }
    }
}

/// Methods served (others → `unknown_method`).
pub const METHODS: &[&str] = &[
    "api.test",
    "auth.test",
    "team.info",
    "users.list",
    "users.info",
    "conversations.list",
    "conversations.info",
    "conversations.join",
    "conversations.history",
    "conversations.replies",
    "conversations.members",
    "usergroups.list",
    "files.list",
    "files.remote.list",
    "chat.getPermalink",
    "reactions.get",
    "chat.postMessage",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "oauth.v2.access",
    "apps.connections.open",
];

/// `x-accepted-oauth-scopes` per method.
pub fn accepted_scopes(method: &str) -> &'static str {
    match method {
        "conversations.history" | "conversations.replies" => {
            "channels:history,groups:history,im:history,mpim:history"
        }
        "conversations.list" | "conversations.info" | "conversations.members" => {
            "channels:read,groups:read,im:read,mpim:read"
        }
        "users.list" | "users.info" => "users:read",
        "team.info" => "team:read",
        "conversations.join" => "channels:join",
        "chat.postMessage" => "chat:write",
        "files.getUploadURLExternal" | "files.completeUploadExternal" => "files:write",
        "files.list" => "files:read",
        "files.remote.list" => "remote_files:read",
        "usergroups.list" => "usergroups:read",
        "reactions.get" => "reactions:read",
        "apps.connections.open" => "connections:write",
        _ => "",
    }
}

/// Whether the method mutates the workspace (needs the write lock).
pub fn is_write(method: &str) -> bool {
    matches!(method, "conversations.join" | "chat.postMessage")
}

fn need(tok: &Token, scope: &str) -> Result<(), ApiError> {
    if tok.has(scope) {
        Ok(())
    } else {
        Err(ApiError::MissingScope {
            needed: scope.to_string(),
            provided: tok.scope_header(),
        })
    }
}

#[derive(Serialize)]
struct Meta {
    next_cursor: String,
}

fn meta(next: Option<String>) -> Meta {
    Meta {
        next_cursor: next.unwrap_or_default(),
    }
}

fn to_body<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|_| err("internal_error"))
}

/// Looks up a channel and checks the token may see it and has the scope for
/// `what` ("read" or "history") on its type. Private conversations the token's
/// user is not in are invisible (`channel_not_found`); a bot reading history
/// of a public channel it is not in gets `not_in_channel`.
fn channel_for<'w>(
    ws: &'w Workspace,
    tok: &Token,
    p: &Params,
    what: &str,
) -> Result<&'w Channel, ApiError> {
    let id = p.required("channel")?;
    let ch = ws.chan_by_id.get(id).map(|&i| &ws.channels[i as usize]);
    let Some(ch) = ch else {
        // Without any scope of the family Slack answers missing_scope first.
        let any = ["channels", "groups", "im", "mpim"]
            .iter()
            .any(|f| tok.has(&format!("{f}:{what}")));
        return Err(if any {
            err("channel_not_found")
        } else {
            ApiError::MissingScope {
                needed: format!("channels:{what}"),
                provided: tok.scope_header(),
            }
        });
    };
    let member = ch.is_member(tok.user);
    if ch.kind != ConvKind::Public && !member {
        return Err(err("channel_not_found"));
    }
    need(tok, &format!("{}:{what}", ch.kind.scope_prefix()))?;
    if what == "history" && tok.kind == TokenKind::Bot && !member {
        return Err(err("not_in_channel"));
    }
    Ok(ch)
}

/// Parses `oldest`/`latest` (integer or exact decimal ts).
fn ts_param(p: &Params, k: &str) -> Result<Option<i64>, ApiError> {
    match p.get(k) {
        None => Ok(None),
        Some(v) => Ts::parse(v)
            .map(|t| Some(t.0))
            .ok_or_else(|| err(&format!("invalid_ts_{k}"))),
    }
}

/// Read-only methods (run under the read lock).
pub fn call_read(
    sim: &Sim,
    ws: &Workspace,
    method: &str,
    tok: &Token,
    p: &Params,
) -> Result<Vec<u8>, ApiError> {
    match method {
        "auth.test" => {
            let u = &ws.users[tok.user as usize];
            let mut v = json!({"ok": true, "url": format!("https://{}.slack.com/", ws.domain),
                "team": ws.team_name, "user": u.name, "team_id": ws.team_id, "user_id": u.id,
                "is_enterprise_install": false});
            if let (TokenKind::Bot, Some(b)) = (tok.kind, &u.bot_id) {
                v["bot_id"] = json!(b);
            }
            Ok(v.to_string().into_bytes())
        }
        "team.info" => {
            need(tok, "team:read")?;
            Ok(json!({"ok": true, "team": {"id": ws.team_id, "name": ws.team_name,
                "url": format!("https://{}.slack.com/", ws.domain), "domain": ws.domain,
                "email_domain": "example.com",
                "icon": {"image_default": true,
                    "image_34": "https://a.slack-edge.com/80588/img/avatars-teams/ava_0001-34.png",
                    "image_44": "https://a.slack-edge.com/80588/img/avatars-teams/ava_0001-44.png",
                    "image_68": "https://a.slack-edge.com/80588/img/avatars-teams/ava_0001-68.png",
                    "image_132": "https://a.slack-edge.com/80588/img/avatars-teams/ava_0001-132.png"},
                "avatar_base_url": "https://ca.slack-edge.com/", "is_verified": false,
                "lob_sales_home_enabled": false}})
            .to_string()
            .into_bytes())
        }
        "users.list" => users_list(sim, ws, tok, p),
        "users.info" => {
            need(tok, "users:read")?;
            let id = p.required("user")?;
            let user = ws
                .user_by_id
                .get(id)
                .map(|&i| &ws.users[i as usize])
                .ok_or_else(|| err("user_not_found"))?;
            #[derive(Serialize)]
            struct R<'a> {
                ok: bool,
                user: UserView<'a>,
            }
            to_body(&R {
                ok: true,
                user: user_view(ws, user, tok.has("users:read.email")),
            })
        }
        "conversations.list" => conversations_list(ws, tok, p),
        "conversations.info" => {
            let ch = channel_for(ws, tok, p, "read")?;
            #[derive(Serialize)]
            struct R<'a> {
                ok: bool,
                channel: ChannelView<'a>,
            }
            to_body(&R {
                ok: true,
                channel: channel_view(ws, ch, tok.user, p.flag("include_num_members")),
            })
        }
        "conversations.history" => history(sim, ws, tok, p),
        "conversations.replies" => replies(sim, ws, tok, p),
        "conversations.members" => {
            let ch = channel_for(ws, tok, p, "read")?;
            let limit = p.limit("limit", 100, 1000)?;
            let start = p.cursor("members")?.unwrap_or(0).max(0) as usize;
            let end = (start + limit).min(ch.members.len());
            let ids: Vec<&str> = ch
                .members
                .get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|&u| ws.users[u as usize].id.as_str())
                .collect();
            let next = (end < ch.members.len()).then(|| cursor::encode("members", end as i64));
            Ok(
                json!({"ok": true, "members": ids, "response_metadata": meta(next)})
                    .to_string()
                    .into_bytes(),
            )
        }
        "usergroups.list" => {
            need(tok, "usergroups:read")?;
            let with_users = p.flag("include_users");
            let with_count = p.flag("include_count");
            let groups: Vec<_> = ws
                .usergroups
                .iter()
                .map(|g| {
                    let mut v = json!({"id": g.id, "team_id": ws.team_id, "is_usergroup": true,
                        "is_subteam": true, "name": g.name, "description": g.description, "handle": g.handle,
                        "is_external": false, "date_create": g.created, "date_update": g.created,
                        "date_delete": 0, "auto_type": null, "auto_provision": false, "enterprise_subteam_id": "",
                        "created_by": ws.users[g.creator as usize].id, "updated_by": ws.users[g.creator as usize].id,
                        "deleted_by": null, "prefs": {"channels": [], "groups": []}});
                    if with_users {
                        v["users"] = json!(g.users.iter().map(|&u| &ws.users[u as usize].id).collect::<Vec<_>>());
                    }
                    if with_count {
                        v["user_count"] = json!(g.users.len());
                    }
                    v
                })
                .collect();
            Ok(json!({"ok": true, "usergroups": groups})
                .to_string()
                .into_bytes())
        }
        "files.list" => files_list(ws, tok, p),
        "files.remote.list" => remote_files_list(ws, tok, p),
        "reactions.get" => reactions_get(ws, tok, p),
        "chat.getPermalink" => {
            let ch_id = p.required("channel")?;
            let ts =
                Ts::parse(p.required("message_ts")?).ok_or_else(|| err("message_not_found"))?;
            let ch = ws
                .chan_by_id
                .get(ch_id)
                .map(|&i| &ws.channels[i as usize])
                .ok_or_else(|| err("channel_not_found"))?;
            if ch.kind != ConvKind::Public && !ch.is_member(tok.user) {
                return Err(err("channel_not_found"));
            }
            let loc = ch.locate(ts.0).ok_or_else(|| err("message_not_found"))?;
            let digits = ts.to_string().replace('.', "");
            let mut link = format!(
                "https://{}.slack.com/archives/{}/p{}",
                ws.domain, ch.id, digits
            );
            if let Loc::Reply(t, _) = loc {
                link.push_str(&format!(
                    "?thread_ts={}&cid={}",
                    Ts(ch.threads[t].parent_ts),
                    ch.id
                ));
            }
            Ok(json!({"ok": true, "channel": ch.id, "permalink": link})
                .to_string()
                .into_bytes())
        }
        _ => Err(err("unknown_method")),
    }
}

/// Methods that change the workspace (run under the write lock).
pub fn call_write(
    sim: &Sim,
    ws: &mut Workspace,
    method: &str,
    tok: &Token,
    p: &Params,
) -> Result<Vec<u8>, ApiError> {
    match method {
        "conversations.join" => {
            let scope = if tok.kind == TokenKind::Bot {
                "channels:join"
            } else {
                "channels:write"
            };
            need(tok, scope)?;
            let id = p.required("channel")?;
            let &ci = ws
                .chan_by_id
                .get(id)
                .ok_or_else(|| err("channel_not_found"))?;
            let ch = &ws.channels[ci as usize];
            if ch.kind != ConvKind::Public {
                return Err(err("method_not_supported_for_channel_type"));
            }
            if ch.archived {
                return Err(err("is_archived"));
            }
            let already = ch.is_member(tok.user);
            if !already {
                ws.set_member(ci, tok.user, true);
            }
            let ch = &ws.channels[ci as usize];
            let mut v = json!({"ok": true, "channel": channel_view(ws, ch, tok.user, false)});
            if already {
                v["warning"] = json!("already_in_channel");
                v["response_metadata"] = json!({"warnings": ["already_in_channel"]});
            }
            Ok(v.to_string().into_bytes())
        }
        "chat.postMessage" => {
            need(tok, "chat:write")?;
            let target = p.required("channel")?;
            let blocks = match p.get("blocks") {
                Some(raw) => Some(crate::outbound::check_blocks(raw)?),
                None => None,
            };
            if p.get("text").is_none() && blocks.is_none() {
                return Err(err("no_text"));
            }
            let text = p.get("text").unwrap_or("").to_string();
            if let Some(dm) = direct_message(sim, ws, tok, target, &text, &blocks)? {
                return Ok(dm);
            }
            let ci = ws
                .channel_ref(target)
                .ok_or_else(|| err("channel_not_found"))?;
            let ch = &ws.channels[ci as usize];
            let member = ch.is_member(tok.user);
            if ch.kind != ConvKind::Public && !member {
                return Err(err("channel_not_found"));
            }
            if !member && !tok.has("chat:write.public") {
                return Err(err("not_in_channel"));
            }
            if ch.archived {
                return Err(err("is_archived"));
            }
            let thread = match p.get("thread_ts") {
                Some(t) => Some(Ts::parse(t).ok_or_else(|| err("thread_not_found"))?.0),
                None => None,
            };
            let ts = ws
                .post_message(
                    ci,
                    tok.user,
                    &text,
                    thread,
                    p.flag("reply_broadcast"),
                    sim.now_us(),
                )
                .map_err(err)?;
            let ch = &ws.channels[ci as usize];
            let msg = match ch.locate(ts) {
                Some(Loc::Top(i)) => ch.top[i].clone(),
                Some(Loc::Reply(t, j)) => ch.threads[t].replies[j].clone(),
                None => return Err(err("internal_error")),
            };
            #[derive(Serialize)]
            struct R<'a> {
                ok: bool,
                channel: &'a str,
                ts: Ts,
                message: MsgView<'a>,
            }
            crate::state::lock(&sim.outbound)
                .posted
                .push(crate::outbound::Posted {
                    channel: ch.id.clone(),
                    text,
                    blocks,
                    ts: ts_text(ts),
                    thread_ts: p.get("thread_ts").map(str::to_string),
                });
            to_body(&R {
                ok: true,
                channel: &ch.id,
                ts: Ts(ts),
                message: msg_view(ws, ch, &msg, View::Replies),
            })
        }
        _ => Err(err("unknown_method")),
    }
}

fn ts_text(ts: i64) -> String {
    serde_json::to_value(Ts(ts))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `chat.postMessage` to a user id: the app's DM with that user, which Slack opens on the
/// first message (`D` + the user id's rest here). `None` when `target` is no user id.
fn direct_message(
    sim: &Sim,
    ws: &Workspace,
    tok: &Token,
    target: &str,
    text: &str,
    blocks: &Option<serde_json::Value>,
) -> Result<Option<Vec<u8>>, ApiError> {
    if !(target.starts_with('U') || target.starts_with('W')) {
        return Ok(None);
    }
    let Some(&ui) = ws.user_by_id.get(target) else {
        return Err(err("channel_not_found"));
    };
    if ws.users[ui as usize].deleted {
        return Err(err("user_disabled"));
    }
    let channel = format!("D{}", &target[1..]);
    let ts = ts_text(sim.now_us());
    crate::state::lock(&sim.outbound)
        .posted
        .push(crate::outbound::Posted {
            channel: channel.clone(),
            text: text.to_string(),
            blocks: blocks.clone(),
            ts: ts.clone(),
            thread_ts: None,
        });
    let bot = &ws.users[tok.user as usize].id;
    let body = json!({"ok": true, "channel": channel, "ts": ts,
        "message": {"type": "message", "text": text, "user": bot, "ts": ts}});
    Ok(Some(body.to_string().into_bytes()))
}

/// `files.getUploadURLExternal` and `files.completeUploadExternal` (the upload's own
/// state, not the workspace's).
pub fn call_files(
    sim: &Sim,
    ws: &Workspace,
    method: &str,
    tok: &Token,
    p: &Params,
) -> Result<Vec<u8>, ApiError> {
    let mut out = crate::state::lock(&sim.outbound);
    match method {
        "files.getUploadURLExternal" => {
            let base = sim.base_url.get().map(String::as_str).unwrap_or("");
            out.get_upload_url(base, tok, p)
        }
        _ => out.complete_upload(tok, p, |channel| {
            let Some(&ci) = ws.chan_by_id.get(channel) else {
                return Err(err("channel_not_found"));
            };
            let ch = &ws.channels[ci as usize];
            if ch.kind != ConvKind::Public && !ch.is_member(tok.user) {
                return Err(err("channel_not_found"));
            }
            if !ch.is_member(tok.user) {
                return Err(err("not_in_channel"));
            }
            Ok(())
        }),
    }
}

fn users_list(sim: &Sim, ws: &Workspace, tok: &Token, p: &Params) -> Result<Vec<u8>, ApiError> {
    need(tok, "users:read")?;
    // Slack: no limit → the whole list (fine for small teams).
    let limit = p.limit("limit", usize::MAX, 1000)?;
    let start = p.cursor("users")?.unwrap_or(0).max(0) as usize;
    let end = start.saturating_add(limit).min(ws.users.len());
    let email = tok.has("users:read.email");
    // Members of other workspaces are not listed (Slack: look them up with users.info).
    let members: Vec<UserView<'_>> = ws
        .users
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .filter(|u| !u.external)
        .map(|u| user_view(ws, u, email))
        .collect();
    let next = (end < ws.users.len()).then(|| cursor::encode("users", end as i64));
    #[derive(Serialize)]
    struct R<'a> {
        ok: bool,
        members: Vec<UserView<'a>>,
        cache_ts: i64,
        response_metadata: Meta,
    }
    to_body(&R {
        ok: true,
        members,
        cache_ts: sim.now_secs(),
        response_metadata: meta(next),
    })
}

fn conversations_list(ws: &Workspace, tok: &Token, p: &Params) -> Result<Vec<u8>, ApiError> {
    let mut types = Vec::new();
    for t in p
        .get("types")
        .unwrap_or("public_channel")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let k = match t {
            "public_channel" => ConvKind::Public,
            "private_channel" => ConvKind::Private,
            "im" => ConvKind::Im,
            "mpim" => ConvKind::Mpim,
            _ => return Err(err("invalid_types")),
        };
        need(tok, &format!("{}:read", k.scope_prefix()))?;
        types.push(k);
    }
    let exclude_archived = p.flag("exclude_archived");
    let limit = p.limit("limit", 100, 1000)?;
    let start = p.cursor("offset")?.unwrap_or(0).max(0) as usize;
    let end = (start + limit).min(ws.channels.len());
    // The page is cut first and filtered afterwards, as Slack does: pages
    // may be short or empty while a cursor remains.
    let channels: Vec<ChannelView<'_>> = ws
        .channels
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .filter(|c| types.contains(&c.kind))
        .filter(|c| !(exclude_archived && c.archived))
        .filter(|c| c.kind == ConvKind::Public || c.is_member(tok.user))
        .map(|c| channel_view(ws, c, tok.user, true))
        .collect();
    let next = (end < ws.channels.len()).then(|| cursor::encode("offset", end as i64));
    #[derive(Serialize)]
    struct R<'a> {
        ok: bool,
        channels: Vec<ChannelView<'a>>,
        response_metadata: Meta,
    }
    to_body(&R {
        ok: true,
        channels,
        response_metadata: meta(next),
    })
}

#[derive(Serialize)]
struct HistoryResp<'a> {
    ok: bool,
    messages: Vec<MsgView<'a>>,
    has_more: bool,
    pin_count: u32,
    channel_actions_ts: Option<()>,
    channel_actions_count: u32,
    response_metadata: Meta,
}

/// Newest first. `oldest`/`latest` exclusive unless `inclusive`; the cursor
/// carries the (inclusive) ts upper bound of the next page.
fn history(sim: &Sim, ws: &Workspace, tok: &Token, p: &Params) -> Result<Vec<u8>, ApiError> {
    let ch = channel_for(ws, tok, p, "history")?;
    let inclusive = p.flag("inclusive");
    let oldest = ts_param(p, "oldest")?;
    let latest = ts_param(p, "latest")?.unwrap_or_else(|| sim.now_us());
    let limit = if sim.restricted_cohort() {
        p.limit("limit", RESTRICTED_PAGE, RESTRICTED_PAGE)?
    } else {
        p.limit("limit", 100, 999)?
    };
    let cur = p.cursor("next_ts")?;
    let lo = match oldest {
        Some(o) if inclusive => ch.top.partition_point(|m| m.ts < o),
        Some(o) => ch.top.partition_point(|m| m.ts <= o),
        None => 0,
    };
    let mut hi = if inclusive {
        ch.top.partition_point(|m| m.ts <= latest)
    } else {
        ch.top.partition_point(|m| m.ts < latest)
    };
    if let Some(c) = cur {
        hi = hi.min(ch.top.partition_point(|m| m.ts <= c));
    }
    let hi = hi.max(lo);
    let start = hi.saturating_sub(limit).max(lo);
    let messages: Vec<MsgView<'_>> = ch.top[start..hi]
        .iter()
        .rev()
        .map(|m| msg_view(ws, ch, m, View::History))
        .collect();
    let has_more = start > lo;
    let next = has_more.then(|| cursor::encode("next_ts", ch.top[start - 1].ts));
    to_body(&HistoryResp {
        ok: true,
        messages,
        has_more,
        pin_count: 0,
        channel_actions_ts: None,
        channel_actions_count: 0,
        response_metadata: meta(next),
    })
}

/// Oldest first; the parent is the first item of the first page (later
/// pages omit it, as Slack does); `oldest`/`latest` filter the replies.
fn replies(sim: &Sim, ws: &Workspace, tok: &Token, p: &Params) -> Result<Vec<u8>, ApiError> {
    let ch = channel_for(ws, tok, p, "history")?;
    let ts = Ts::parse(p.required("ts")?)
        .ok_or_else(|| err("thread_not_found"))?
        .0;
    let inclusive = p.flag("inclusive");
    let oldest = ts_param(p, "oldest")?;
    let latest = ts_param(p, "latest")?.unwrap_or_else(|| sim.now_us());
    let limit = if sim.restricted_cohort() {
        p.limit("limit", RESTRICTED_PAGE, RESTRICTED_PAGE)?
    } else {
        p.limit("limit", 1000, 1000)?
    };
    let cur = p.cursor("next_ts")?;
    let (parent, thread) = match ch.locate(ts).ok_or_else(|| err("thread_not_found"))? {
        Loc::Top(i) => {
            let m = &ch.top[i];
            (m, crate::render::thread_of(ch, m))
        }
        Loc::Reply(t, _) => {
            let th = &ch.threads[t];
            let i = ch
                .top
                .binary_search_by_key(&th.parent_ts, |m| m.ts)
                .map_err(|_| err("thread_not_found"))?;
            (&ch.top[i], Some(th))
        }
    };
    let replies = thread.map(|t| t.replies.as_slice()).unwrap_or(&[]);
    let mut lo = match oldest {
        Some(o) if inclusive => replies.partition_point(|m| m.ts < o),
        Some(o) => replies.partition_point(|m| m.ts <= o),
        None => 0,
    };
    if let Some(c) = cur {
        lo = lo.max(replies.partition_point(|m| m.ts < c));
    }
    let hi = if inclusive {
        replies.partition_point(|m| m.ts <= latest)
    } else {
        replies.partition_point(|m| m.ts < latest)
    }
    .max(lo);
    let mut messages = Vec::with_capacity(limit.min(hi - lo + 1));
    let mut room = limit;
    if cur.is_none() {
        messages.push(msg_view(ws, ch, parent, View::Replies));
        room = room.saturating_sub(1);
    }
    let end = (lo + room).min(hi);
    messages.extend(
        replies[lo..end]
            .iter()
            .map(|m| msg_view(ws, ch, m, View::Replies)),
    );
    let has_more = end < hi;
    let next = has_more.then(|| cursor::encode("next_ts", replies[end].ts));
    #[derive(Serialize)]
    struct R<'a> {
        ok: bool,
        messages: Vec<MsgView<'a>>,
        has_more: bool,
        response_metadata: Meta,
    }
    to_body(&R {
        ok: true,
        messages,
        has_more,
        response_metadata: meta(next),
    })
}

/// `reactions.get` (scope `reactions:read`, Tier 3), as Slack's method docs describe it:
/// the item is given by `channel` and `timestamp` (a message; files carry no reactions
/// here, so `file` answers `file_not_found` and `file_comment` `file_comment_not_found`),
/// neither given is `no_item_specified`, an unknown or hidden conversation
/// `channel_not_found`, a `timestamp` that is not one `bad_timestamp`, no message at it
/// `message_not_found`. The answer is `{type: "message", channel, message}`, the message
/// as history and replies render it, whose reactions list at most
/// [`LISTED_REACTION_USERS`](crate::render::LISTED_REACTION_USERS) users each unless
/// `full` is true ("If true always return the complete reaction list").
fn reactions_get(ws: &Workspace, tok: &Token, p: &Params) -> Result<Vec<u8>, ApiError> {
    need(tok, "reactions:read")?;
    if p.get("file").is_some() {
        return Err(err("file_not_found"));
    }
    if p.get("file_comment").is_some() {
        return Err(err("file_comment_not_found"));
    }
    let (Some(channel), Some(timestamp)) = (p.get("channel"), p.get("timestamp")) else {
        return Err(err("no_item_specified"));
    };
    let ch = ws
        .chan_by_id
        .get(channel)
        .map(|&i| &ws.channels[i as usize])
        .filter(|ch| ch.kind == ConvKind::Public || ch.is_member(tok.user))
        .ok_or_else(|| err("channel_not_found"))?;
    let ts = Ts::parse(timestamp).ok_or_else(|| err("bad_timestamp"))?;
    let (msg, view) = match ch.locate(ts.0).ok_or_else(|| err("message_not_found"))? {
        Loc::Top(i) => (&ch.top[i], View::History),
        Loc::Reply(t, j) => (&ch.threads[t].replies[j], View::Replies),
    };
    let mut message = msg_view(ws, ch, msg, view);
    if p.flag("full") {
        let reactions = crate::render::reactions_of(ws, ch, msg);
        if !reactions.is_empty() {
            message.reactions = Some(crate::render::reaction_views(ws, &reactions, usize::MAX));
        }
    }
    #[derive(Serialize)]
    struct R<'a> {
        ok: bool,
        #[serde(rename = "type")]
        kind: &'static str,
        channel: &'a str,
        message: MsgView<'a>,
    }
    to_body(&R {
        ok: true,
        kind: "message",
        channel: &ch.id,
        message,
    })
}

/// `files.remote.list` (rules in [`crate::remote`]).
fn remote_files_list(ws: &Workspace, tok: &Token, p: &Params) -> Result<Vec<u8>, ApiError> {
    need(tok, "remote_files:read")?;
    let limit = p.limit("limit", 100, 1000)?;
    let start = p.cursor("remote_files")?.unwrap_or(0).max(0) as usize;
    let chan = p.get("channel");
    let bound = |k: &str| p.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    let ts_from = bound("ts_from").unwrap_or(f64::MIN);
    let ts_to = bound("ts_to").unwrap_or(f64::MAX);
    let files: Vec<_> = crate::remote::remote_files(ws)
        .into_iter()
        .filter(|f| crate::remote::visible(ws, f, tok.user))
        .filter(|f| chan.is_none_or(|c| f.channel.is_some_and(|i| ws.channels[i as usize].id == c)))
        .filter(|f| (ts_from..=ts_to).contains(&(f.created as f64)))
        .collect();
    let end = (start + limit).min(files.len());
    let page: Vec<serde_json::Value> = files
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|f| crate::remote::view(ws, f))
        .collect();
    let next = (end < files.len()).then(|| cursor::encode("remote_files", end as i64));
    Ok(
        json!({"ok": true, "files": page, "response_metadata": meta(next)})
            .to_string()
            .into_bytes(),
    )
}

fn files_list(ws: &Workspace, tok: &Token, p: &Params) -> Result<Vec<u8>, ApiError> {
    need(tok, "files:read")?;
    let count = p.limit("count", 100, 1000)?;
    let page = p
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let chan = p.get("channel");
    let user = p.get("user").and_then(|u| ws.user_by_id.get(u).copied());
    if p.get("user").is_some() && user.is_none() {
        return Err(err("user_not_found"));
    }
    let ts_from = p
        .get("ts_from")
        .and_then(Ts::parse)
        .map(|t| t.0)
        .unwrap_or(i64::MIN);
    let ts_to = p
        .get("ts_to")
        .and_then(Ts::parse)
        .map(|t| t.0)
        .unwrap_or(i64::MAX);
    let mut found: Vec<(i64, &Channel, &crate::model::Msg)> = Vec::new();
    for ch in &ws.channels {
        let visible =
            ch.is_member(tok.user) || (tok.kind == TokenKind::User && ch.kind == ConvKind::Public);
        if !visible || chan.is_some_and(|c| c != ch.id) {
            continue;
        }
        for m in ch.top.iter().filter(|m| m.kind == Kind::FileShare) {
            if user.is_some_and(|u| u != m.user) || m.ts < ts_from || m.ts > ts_to {
                continue;
            }
            found.push((m.ts, ch, m));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let total = found.len();
    let pages = total.div_ceil(count).max(1);
    let files: Vec<FileView<'_>> = found
        .iter()
        .skip((page - 1) * count)
        .take(count)
        .map(|(_, ch, m)| file_view(ws, ch, m, true))
        .collect();
    #[derive(Serialize)]
    struct Paging {
        count: usize,
        total: usize,
        page: usize,
        pages: usize,
    }
    #[derive(Serialize)]
    struct R<'a> {
        ok: bool,
        files: Vec<FileView<'a>>,
        paging: Paging,
    }
    to_body(&R {
        ok: true,
        files,
        paging: Paging {
            count,
            total,
            page,
            pages,
        },
    })
}
