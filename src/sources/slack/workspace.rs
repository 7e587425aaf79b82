//! Workspace documents beyond users, channels and messages, each switched on in the
//! connector's form: the team (`team.info`, id `T…`, scope `team:read`), user groups
//! (`usergroups.list` with `include_users`, ids `S…`, scope `usergroups:read`) and channel
//! members (`conversations.members`, ids `<channel>-<user>`).
//!
//! Invariants: each is off by default (a sync asks Slack for nothing more than before);
//! an answer without what the method promises (`team`, `usergroups`) is a protocol error
//! naming the method (`answer::shape`), never an empty list; with document-level security
//! the team and user groups are readable by the workspace's full members, a member
//! document by whoever may read its conversation.

use super::answer::protocol;
use super::client::{Head, SlackError, Verb};
use super::filters::{check_types, toggle};
use super::identity;
use super::source::{check_cancel, source_error, Inner};
use super::transform::{Channel, Names};
use crate::sources::{
    AccessControl, Configuration, ConfigurationExt, DocOp, DocSender, Document, SourceError,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Form keys and labels.
pub const TEAM_KEY: &str = "sync_team";
pub const TEAM_LABEL: &str = "Index the workspace (team)";
pub const GROUPS_KEY: &str = "sync_user_groups";
pub const GROUPS_LABEL: &str = "Index user groups";
pub const MEMBERS_KEY: &str = "sync_channel_members";
pub const MEMBERS_LABEL: &str = "Index channel members";

/// Scopes each needs.
pub const TEAM_SCOPES: &[&str] = &["team:read"];
pub const GROUPS_SCOPES: &[&str] = &["usergroups:read"];

/// `team.info`'s team.
#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub email_domain: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// One `usergroups.list` group.
#[derive(Debug, Clone, Deserialize)]
pub struct UserGroup {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Member ids (`include_users=true`).
    #[serde(default)]
    pub users: Option<Vec<String>>,
    #[serde(default)]
    pub date_create: Option<i64>,
    #[serde(default)]
    pub date_update: Option<i64>,
}

#[derive(Deserialize)]
struct TeamInfo {
    team: Team,
}

/// Decodes a `team.info` answer: the envelope and its required `team`, then the team.
pub fn decode_team_info(bytes: &[u8], head: &Head<'_>) -> Result<Team, SlackError> {
    head.decode::<serde::de::IgnoredAny>(bytes)?;
    serde_json::from_slice::<TeamInfo>(bytes)
        .map(|info| info.team)
        .map_err(|e| protocol(head.method, "team", format!("is not what Slack sends: {e}")))
}

fn opt(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::from)
}

fn dated(body: &mut Map<String, Value>, epoch: Option<i64>) {
    if let Some(ts) = epoch
        .filter(|t| *t > 0)
        .and_then(super::transform::iso_from_epoch)
    {
        body.insert("_timestamp".into(), json!(ts));
    }
}

/// The team document (pure).
pub fn team_doc(team: &Team) -> Document {
    let mut body = Map::new();
    body.insert("type".into(), json!("team"));
    body.insert("name".into(), opt(team.name.as_deref()));
    body.insert("domain".into(), opt(team.domain.as_deref()));
    body.insert("email_domain".into(), opt(team.email_domain.as_deref()));
    body.insert("url".into(), opt(team.url.as_deref()));
    Document::from_fields(team.id.clone(), body)
}

/// A user group document (pure): members by id and by name.
pub fn usergroup_doc(group: &UserGroup, names: &Names) -> Document {
    let users = group.users.clone().unwrap_or_default();
    let user_names: Vec<&str> = users.iter().map(|u| names.user(u).unwrap_or(u)).collect();
    let mut body = Map::new();
    body.insert("type".into(), json!("usergroup"));
    body.insert("name".into(), opt(group.name.as_deref()));
    body.insert("handle".into(), opt(group.handle.as_deref()));
    body.insert("description".into(), opt(group.description.as_deref()));
    body.insert("user_count".into(), json!(users.len()));
    body.insert("user_names".into(), json!(user_names));
    body.insert("users".into(), json!(users));
    dated(&mut body, group.date_update.or(group.date_create));
    Document::from_fields(group.id.clone(), body)
}

/// A channel member document (pure), id `<channel>-<user>`.
pub fn member_doc(channel: &Channel, user: &str, names: &Names) -> Document {
    let mut body = Map::new();
    body.insert("type".into(), json!("channel_member"));
    body.insert("channel_id".into(), json!(channel.id));
    body.insert("channel".into(), opt(channel.name.as_deref()));
    body.insert("user_id".into(), json!(user));
    body.insert("user".into(), opt(names.user(user)));
    Document::from_fields(format!("{}-{user}", channel.id), body)
}

/// What the form switches on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    pub team: bool,
    pub user_groups: bool,
    pub channel_members: bool,
}

/// Reads the three toggles (an uncoercible value is an error naming the field).
pub fn from_configuration(configuration: &Configuration) -> Result<Switches, SourceError> {
    check_types(configuration, &[TEAM_KEY, GROUPS_KEY, MEMBERS_KEY])?;
    let flag = |key: &str| configuration.bool_value(key).unwrap_or(false);
    Ok(Switches {
        team: flag(TEAM_KEY),
        user_groups: flag(GROUPS_KEY),
        channel_members: flag(MEMBERS_KEY),
    })
}

/// Adds the toggles to the form (orders 30–32).
pub fn add_fields(config: &mut Configuration) {
    config.insert(TEAM_KEY.into(), toggle(TEAM_LABEL, 30, "Index one document for the workspace (name, domain, email domain, address), id T…. Needs the team:read scope."));
    config.insert(GROUPS_KEY.into(), toggle(GROUPS_LABEL, 31, "Index one document per user group (name, handle, description, members), id S…. Needs the usergroups:read scope."));
    config.insert(MEMBERS_KEY.into(), toggle(MEMBERS_LABEL, 32, "Index one document per member of each indexed channel, id <channel>-<user>: who is in which channel. One more Slack call per channel (per 200 members). Members who left disappear at the next full sync."));
}

impl Inner {
    /// The team and user group documents the switches ask for.
    pub(super) async fn fetch_workspace(
        &self,
        team_id: &str,
        names: &Names,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let dls = self.options.use_document_level_security;
        let readers = dls.then(|| identity::workspace_readers(team_id));
        let protect = |doc: Document| match &readers {
            Some(r) => doc.with_access_control(r),
            None => doc,
        };
        if self.options.workspace.team {
            check_cancel(cancel)?;
            let team = self
                .client
                .call_with("team.info", Verb::Get, &[], cancel, decode_team_info)
                .await
                .map_err(|e| source_error(e, "reading the workspace (team.info)"))?;
            sink.send(DocOp::Index(protect(team_doc(&team)))).await?;
            self.counters.workspace_docs.fetch_add(1, Ordering::Relaxed);
        }
        if self.options.workspace.user_groups {
            check_cancel(cancel)?;
            // Not paged (Slack's docs): one answer holds every group.
            let reply = self
                .client
                .call::<UserGroup>(
                    "usergroups.list",
                    Verb::Get,
                    &[("include_users", "true")],
                    cancel,
                )
                .await
                .map_err(|e| source_error(e, "listing user groups"))?;
            for group in &reply.body.items {
                sink.send(DocOp::Index(protect(usergroup_doc(group, names))))
                    .await?;
                self.counters.workspace_docs.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// One member document per member of each conversation read (a conversation Slack
    /// refuses is skipped and reported, as for its messages).
    pub(super) async fn fetch_channel_members(
        &self,
        channels: &[(Channel, Option<AccessControl>)],
        names: &Names,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        for (channel, readers) in channels {
            let Some(members) = self.members(&channel.id, cancel).await? else {
                continue;
            };
            for user in members {
                let doc = member_doc(channel, &user, names);
                let doc = match readers {
                    Some(r) => doc.with_access_control(r),
                    None => doc,
                };
                sink.send(DocOp::Index(doc)).await?;
                self.counters.workspace_docs.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_switches() {
        let team: Team = serde_json::from_value(
            json!({"id": "T1", "name": "Acme", "domain": "acme", "email_domain": "acme.com"}),
        )
        .unwrap();
        let doc = team_doc(&team);
        assert_eq!(doc.id(), "T1");
        let fields = doc.fields();
        assert_eq!(fields["type"], "team");
        assert_eq!(fields["url"], Value::Null);
        let group: UserGroup = serde_json::from_value(json!({"id": "S1", "name": "Eng",
            "handle": "eng", "users": ["U1", "U2"], "date_update": 1_700_000_000}))
        .unwrap();
        let fields = usergroup_doc(&group, &Names::default()).fields();
        assert_eq!(fields["users"], json!(["U1", "U2"]));
        assert_eq!(fields["user_count"], 2);
        assert_eq!(fields["_timestamp"], json!("2023-11-14T22:13:20.000000Z"));
        let channel = Channel {
            id: "C1".into(),
            name: Some("general".into()),
            ..Channel::default()
        };
        let doc = member_doc(&channel, "U1", &Names::default());
        assert_eq!(doc.id(), "C1-U1");
        assert_eq!(doc.fields()["user_id"], "U1");
        let mut config = Configuration::new();
        add_fields(&mut config);
        assert_eq!(from_configuration(&config).unwrap(), Switches::default());
        config.get_mut(GROUPS_KEY).unwrap().value = json!("yes");
        assert!(from_configuration(&config).unwrap().user_groups);
        config.get_mut(TEAM_KEY).unwrap().value = json!("perhaps");
        let e = from_configuration(&config).unwrap_err().to_string();
        assert!(e.contains(TEAM_LABEL), "{e}");
    }
}
