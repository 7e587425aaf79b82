//! Who may read what in a Slack workspace, as document-level-security identities: the one
//! place that decides it, for content documents and for identity documents alike (files,
//! user groups and member documents build on the same functions).
//!
//! Identities (prefixed, so kinds never collide: `crate::sources::access_control`):
//! - `team:<team id>`: every full member of the workspace;
//! - `channel:<conversation id>`: the members of one conversation;
//! - `user:<user id>` and `email:<email>`: one person.
//!
//! Readers of content:
//! - a public channel and its messages: `team:` and `channel:` (every full member may read
//!   a public channel; a guest only if they are in it);
//! - a private channel, DM or group DM and its messages: `channel:` only;
//! - a user document: `team:` and the user themself.
//!
//! A user's identities: `user:`, `email:` (when Slack gives it), `channel:` for every
//! conversation they are a member of (`conversations.members`), and `team:` only for full
//! members: not guests (`is_restricted`, `is_ultra_restricted`), not deactivated users,
//! not members of another workspace (Slack Connect). A deactivated user has no identity
//! at all, so reads nothing.
//!
//! Invariants, fail-closed: a conversation counts as public only when Slack says so
//! explicitly (`is_private: false`, not a DM or group DM); anything unclear reads as
//! members-only. A user counts as a full member only when Slack says so explicitly
//! (`is_restricted: false` and `is_ultra_restricted: false`, as it does for every active
//! member of the workspace); anything unclear reads as a guest.

use super::transform::{Channel, User};
use crate::sources::access_control::{access_control_query, prefix_identity};
use crate::sources::{AccessControl, Document};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Who may read a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every full member of the workspace (public channels).
    Workspace,
    /// Its members only (private channels, DMs, group DMs, and anything unclear).
    Members,
}

/// Who may read `channel` (pure; see the module's fail-closed rule).
pub fn audience(channel: &Channel) -> Audience {
    let direct =
        channel.is_im == Some(true) || channel.is_mpim == Some(true) || channel.id.starts_with('D');
    if channel.is_private == Some(false) && !direct {
        Audience::Workspace
    } else {
        Audience::Members
    }
}

/// How a user belongs to the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A full member: reads every public channel.
    Member,
    /// A guest (multi- or single-channel): reads only their conversations.
    Guest,
    /// Deactivated: reads nothing.
    Deactivated,
    /// A member of another workspace (Slack Connect): reads only the shared conversations.
    External,
}

impl Standing {
    /// The identity document's `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Member => "member",
            Standing::Guest => "guest",
            Standing::Deactivated => "deactivated",
            Standing::External => "external",
        }
    }
}

/// How `user` belongs to workspace `team_id` (pure).
pub fn standing(user: &User, team_id: &str) -> Standing {
    if user.deleted == Some(true) {
        Standing::Deactivated
    } else if user.is_stranger == Some(true)
        || user.team_id.as_deref().is_some_and(|t| t != team_id)
    {
        Standing::External
    } else if user.is_restricted == Some(false) && user.is_ultra_restricted == Some(false) {
        Standing::Member
    } else {
        Standing::Guest
    }
}

fn team(team_id: &str) -> String {
    prefix_identity("team", team_id)
}

fn channel(id: &str) -> String {
    prefix_identity("channel", id)
}

/// The readers of a conversation's channel document and messages (pure).
pub fn conversation_readers(conversation: &Channel, team_id: &str) -> AccessControl {
    let mut readers = vec![channel(&conversation.id)];
    if audience(conversation) == Audience::Workspace {
        readers.push(team(team_id));
    }
    AccessControl::new(readers)
}

/// The readers of workspace-wide documents (the team, user groups): its full members (pure).
pub fn workspace_readers(team_id: &str) -> AccessControl {
    AccessControl::new([team(team_id)])
}

/// The readers of a user document: the workspace's full members and the user (pure).
pub fn user_doc_readers(user: &User, team_id: &str) -> AccessControl {
    AccessControl::new([team(team_id), prefix_identity("user", &user.id)])
}

/// A user's identities given the conversations they are a member of (pure; none for a
/// deactivated user).
pub fn user_identities<'a>(
    user: &User,
    team_id: &str,
    conversations: impl IntoIterator<Item = &'a str>,
) -> AccessControl {
    let standing = standing(user, team_id);
    if standing == Standing::Deactivated {
        return AccessControl::default();
    }
    let mut identities = vec![prefix_identity("user", &user.id)];
    if let Some(email) = email(user) {
        identities.push(prefix_identity("email", email));
    }
    if standing == Standing::Member {
        identities.push(team(team_id));
    }
    identities.extend(conversations.into_iter().map(channel));
    AccessControl::new(identities)
}

fn email(user: &User) -> Option<&str> {
    user.profile
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
}

/// The `_id` of each user's identity document: the email, as Elastic's sources use it (an
/// application finds a signed-in user's document by email), else the user id; an email
/// two users share is used by neither, so one can never receive the other's access (pure).
pub fn identity_ids<'a>(users: impl IntoIterator<Item = &'a User>) -> HashMap<String, String> {
    let users: Vec<&User> = users.into_iter().collect();
    let mut emails: HashMap<String, usize> = HashMap::new();
    for user in &users {
        if let Some(email) = email(user) {
            *emails.entry(email.to_lowercase()).or_default() += 1;
        }
    }
    users
        .iter()
        .map(|user| {
            let id = match email(user) {
                Some(email) if emails.get(&email.to_lowercase()) == Some(&1) => email.to_string(),
                _ => user.id.clone(),
            };
            (user.id.clone(), id)
        })
        .collect()
}

/// The identity document of `user` (`_id` from [`identity_ids`]): `identity` (user id,
/// email, handle, workspace), `status` ([`Standing`]) and the DLS `query` with the user's
/// identities as its parameters.
pub fn identity_doc(
    id: String,
    user: &User,
    team_id: &str,
    identities: &AccessControl,
) -> Document {
    let mut body = Map::new();
    body.insert(
        "identity".into(),
        json!({
            "user_id": user.id,
            "email": email(user),
            "username": user.name,
            "team_id": user.team_id.as_deref().unwrap_or(team_id),
        }),
    );
    body.insert("status".into(), json!(standing(user, team_id).as_str()));
    body.insert(
        "query".into(),
        access_control_query(identities.identities()),
    );
    Document::from_fields(id, body)
}

/// The parameters of an identity document's query: its identities (tests and tools).
pub fn identities_of(identity_doc: &Value) -> Vec<String> {
    identity_doc["query"]["template"]["params"]["access_control"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::slack::transform::Profile;

    fn conversation(id: &str, private: Option<bool>, im: bool, mpim: bool) -> Channel {
        Channel {
            id: id.into(),
            is_private: private,
            is_im: im.then_some(true),
            is_mpim: mpim.then_some(true),
            ..Channel::default()
        }
    }

    fn person(id: &str, email: Option<&str>) -> User {
        User {
            id: id.into(),
            name: Some(id.to_lowercase()),
            team_id: Some("T1".into()),
            is_restricted: Some(false),
            is_ultra_restricted: Some(false),
            profile: Profile {
                email: email.map(str::to_string),
                ..Profile::default()
            },
            ..User::default()
        }
    }

    #[test]
    fn only_explicitly_public_channels_are_read_by_the_workspace() {
        let public = conversation("C1", Some(false), false, false);
        assert_eq!(audience(&public), Audience::Workspace);
        assert_eq!(
            conversation_readers(&public, "T1").identities(),
            ["channel:C1", "team:T1"]
        );
        for members_only in [
            conversation("C2", Some(true), false, false),
            conversation("G3", Some(true), false, true),
            conversation("D4", None, true, false),
            conversation("D5", Some(false), false, false),
            // Unclear answers read as members-only.
            conversation("C6", None, false, false),
            conversation("C7", Some(false), true, false),
        ] {
            assert_eq!(
                audience(&members_only),
                Audience::Members,
                "{members_only:?}"
            );
            assert_eq!(
                conversation_readers(&members_only, "T1").identities(),
                [format!("channel:{}", members_only.id)]
            );
        }
        let user = person("U1", None);
        assert_eq!(
            user_doc_readers(&user, "T1").identities(),
            ["team:T1", "user:U1"]
        );
    }

    #[test]
    fn full_members_guests_deactivated_and_external_users() {
        let member = person("U1", Some("a@x.com"));
        assert_eq!(standing(&member, "T1"), Standing::Member);
        assert_eq!(
            user_identities(&member, "T1", ["G2", "C1"]).identities(),
            [
                "channel:C1",
                "channel:G2",
                "email:a@x.com",
                "team:T1",
                "user:U1"
            ]
        );
        for (field, value) in [("is_restricted", true), ("is_ultra_restricted", true)] {
            let mut guest = person("U2", None);
            match field {
                "is_restricted" => guest.is_restricted = Some(value),
                _ => guest.is_ultra_restricted = Some(value),
            }
            assert_eq!(standing(&guest, "T1"), Standing::Guest);
            assert_eq!(
                user_identities(&guest, "T1", ["C1"]).identities(),
                ["channel:C1", "user:U2"]
            );
        }
        let mut gone = person("U3", Some("gone@x.com"));
        gone.deleted = Some(true);
        assert_eq!(standing(&gone, "T1"), Standing::Deactivated);
        assert!(user_identities(&gone, "T1", ["C1"]).is_empty());
        let mut external = person("U4", Some("b@other.com"));
        external.team_id = Some("T9".into());
        assert_eq!(standing(&external, "T1"), Standing::External);
        assert_eq!(
            user_identities(&external, "T1", ["C1"]).identities(),
            ["channel:C1", "email:b@other.com", "user:U4"]
        );
        let mut stranger = person("U5", None);
        stranger.is_stranger = Some(true);
        assert_eq!(standing(&stranger, "T1"), Standing::External);
        // A user Slack says nothing about reads as a guest.
        let bare = User {
            id: "U6".into(),
            ..User::default()
        };
        assert_eq!(standing(&bare, "T1"), Standing::Guest);
    }

    #[test]
    fn identity_documents_use_unique_emails_as_ids() {
        let users = [
            person("U1", Some("a@x.com")),
            person("U2", None),
            person("U3", Some("Shared@x.com")),
            person("U4", Some("shared@x.com")),
            person("U5", Some(" ")),
        ];
        let ids = identity_ids(&users);
        assert_eq!(ids["U1"], "a@x.com");
        assert_eq!(ids["U2"], "U2");
        assert_eq!(ids["U3"], "U3");
        assert_eq!(ids["U4"], "U4");
        assert_eq!(ids["U5"], "U5");
        let identities = user_identities(&users[0], "T1", ["C1"]);
        let doc = identity_doc(ids["U1"].clone(), &users[0], "T1", &identities);
        assert_eq!(doc.id(), "a@x.com");
        assert!(!doc.access_controlled());
        let fields = Value::Object(doc.fields());
        assert_eq!(fields["identity"]["user_id"], "U1");
        assert_eq!(fields["identity"]["email"], "a@x.com");
        assert_eq!(fields["identity"]["team_id"], "T1");
        assert_eq!(fields["status"], "member");
        assert_eq!(identities_of(&fields), identities.identities());
        assert_eq!(
            fields["query"]["template"]["source"],
            crate::sources::access_control::DLS_QUERY
        );
    }
}
