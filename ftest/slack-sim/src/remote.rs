//! Remote files (`files.remote.list`, scope `remote_files:read`): files an app added to
//! Slack by reference (a design document, a spreadsheet elsewhere), derived from the
//! workspace rather than stored, so every mutation of the model keeps them consistent.
//!
//! Rules (the connector implements exactly these; `expected` rule 10):
//! - about one public or private channel in three ([`remote_files`]: by the hash of the
//!   workspace seed and the channel) has one remote file shared in it, and two remote files
//!   are shared nowhere;
//! - `files.remote.list` lists those visible to the token: shared nowhere, in a public
//!   channel, or in a private channel the token's user is a member of; `channel` keeps
//!   those shared in that conversation, `ts_from` / `ts_to` (inclusive, epoch seconds)
//!   those created in that span; paged by `cursor` (`limit` default 100, at most 1000);
//! - a remote file's object is Slack's (`mode: external`, `is_external: true`,
//!   `external_id`, `external_url`, `channels` / `groups` / `ims`).

use crate::model::{make_id, mix, ConvKind, Workspace};
use serde_json::{json, Value};

/// One remote file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub id: String,
    pub title: String,
    pub external_id: String,
    pub external_url: String,
    pub filetype: &'static str,
    /// The user who added it (index).
    pub user: u32,
    /// Epoch seconds.
    pub created: i64,
    /// The channel it is shared in (index), if any.
    pub channel: Option<u32>,
}

const KINDS: &[(&str, &str)] = &[
    ("gdoc", "Design notes"),
    ("gsheet", "Budget"),
    ("gpres", "Roadmap"),
    ("pdf", "Contract"),
];

/// The workspace's remote files, in a stable order.
pub fn remote_files(ws: &Workspace) -> Vec<RemoteFile> {
    let make = |n: u64, channel: Option<u32>, created: i64| {
        let h = mix(&[ws.seed, 61, n]);
        let (filetype, title) = KINDS[(h % KINDS.len() as u64) as usize];
        let external_id = format!("doc-{:012x}", h >> 16);
        RemoteFile {
            id: make_id("F", h),
            title: format!("{title} {n}"),
            external_url: format!("https://docs.example.com/d/{external_id}"),
            external_id,
            filetype,
            user: (h >> 8) as u32 % ws.users.len().max(1) as u32,
            created,
            channel,
        }
    };
    let mut out: Vec<RemoteFile> = ws
        .channels
        .iter()
        .filter(|c| matches!(c.kind, ConvKind::Public | ConvKind::Private))
        .filter(|c| mix(&[ws.seed, 60, u64::from(c.idx)]).is_multiple_of(3))
        .map(|c| make(u64::from(c.idx), Some(c.idx), c.created + 3600))
        .collect();
    let first = ws.channels.first().map_or(0, |c| c.created);
    out.push(make(1_000_001, None, first + 7200));
    out.push(make(1_000_002, None, first + 10_800));
    out
}

/// Whether `user` (index) may see the remote file.
pub fn visible(ws: &Workspace, file: &RemoteFile, user: u32) -> bool {
    match file.channel.map(|c| &ws.channels[c as usize]) {
        None => true,
        Some(ch) => ch.kind == ConvKind::Public || ch.is_member(user),
    }
}

/// Slack's object of a remote file.
pub fn view(ws: &Workspace, file: &RemoteFile) -> Value {
    let user = &ws.users[file.user as usize].id;
    let ch = file.channel.map(|c| &ws.channels[c as usize]);
    let (channels, groups): (Vec<&str>, Vec<&str>) = match ch {
        Some(c) if c.kind == ConvKind::Public => (vec![c.id.as_str()], vec![]),
        Some(c) => (vec![], vec![c.id.as_str()]),
        None => (vec![], vec![]),
    };
    let name = format!(
        "{}.{}",
        file.title.replace(' ', "-").to_lowercase(),
        file.filetype
    );
    json!({
        "id": file.id, "created": file.created, "timestamp": file.created,
        "name": name, "title": file.title, "mimetype": "application/vnd.slack-remote",
        "filetype": file.filetype, "pretty_type": file.filetype, "user": user,
        "user_team": ws.team_id, "editable": false, "size": 0, "mode": "external",
        "is_external": true, "external_type": "app",
        "is_public": ch.is_some_and(|c| c.kind == ConvKind::Public),
        "public_url_shared": false, "display_as_bot": false, "username": "",
        "url_private": file.external_url,
        "permalink": format!("https://{}.slack.com/files/{}/{}/{}", ws.domain, user, file.id, name),
        "external_id": file.external_id, "external_url": file.external_url,
        "has_rich_preview": false, "channels": channels, "groups": groups, "ims": [],
        "comments_count": 0,
    })
}
