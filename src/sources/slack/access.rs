//! The Slack source's access-control sync: one identity document per user
//! ([`identity::identity_doc`]) for `.search-acl-filter-<index>`.
//!
//! Order and calls:
//! 1. `auth.test`: the workspace id (`team:` identities);
//! 2. every `users.list` page: the users, with their emails (`users:read.email`);
//! 3. every `conversations.list` page: the conversations the content sync reads (the same
//!    plan, [`plan_channel`](super::source::plan_channel));
//! 4. `conversations.members` (Tier 4) for each of them, a few at once: memberships come
//!    from Slack's member lists, never from walking messages, so a sync costs one call per
//!    conversation (plus one per 200 members), not per message;
//! 5. `users.info` (Tier 4) for members `users.list` does not have (Slack Connect members
//!    of other workspaces, as Slack advises);
//! 6. one identity document per user, members of other workspaces included.
//!
//! Invariants: `Ok` only when every listing succeeded; a conversation Slack refuses at its
//! first member page (`channel_not_found`, …) is skipped and reported, which only takes
//! that conversation from its members' identities (fail closed: nobody gains access);
//! a member unknown to `users.info` (`user_not_found`, `user_not_visible`) gets an
//! identity document with their user id and conversations, and no `team:`.

use super::answer::{protocol, Pager};
use super::client::{classify, Class, Head, SlackError, Verb};
use super::identity;
use super::source::{check_cancel, source_error, ChannelPlan, Inner};
use super::transform::{Channel, User};
use crate::sources::{DocOp, DocSender, SourceError};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// `users.info` codes that mean "this member cannot be looked up": the member keeps the
/// identities Slack's member lists give them, and no `team:`.
const UNKNOWN_USER_CODES: &[&str] = &["user_not_found", "user_not_visible"];

/// A `users.info` answer's user.
#[derive(Deserialize)]
struct UserInfo {
    user: User,
}

/// Decodes a `users.info` answer: the envelope and its required `user` first
/// ([`answer::shape`](super::answer::shape)), then the user itself.
pub fn decode_user_info(bytes: &[u8], head: &Head<'_>) -> Result<User, SlackError> {
    head.decode::<serde::de::IgnoredAny>(bytes)?;
    serde_json::from_slice::<UserInfo>(bytes)
        .map(|info| info.user)
        .map_err(|e| protocol(head.method, "user", format!("is not what Slack sends: {e}")))
}

impl Inner {
    /// Streams one identity document per user into `sink` (see the module docs).
    pub(super) async fn get_access_control(
        &self,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        if !self.options.use_document_level_security {
            return Err(SourceError::Configuration(
                "document level security is off: turn on 'Enable document level security' (use_document_level_security) to run access control syncs".into(),
            ));
        }
        let auth = self.auth_test(cancel).await?;
        let team_id = auth.team_id.unwrap_or_default();
        let mut users = Vec::new();
        self.fetch_users(&team_id, None, Some(&mut users), cancel)
            .await?;
        let channels = self.list_channels(cancel).await?;
        let readable: Vec<&Channel> = channels
            .iter()
            .filter(|(_, plan)| *plan != ChannelPlan::Ignore)
            .map(|(channel, _)| channel)
            .collect();
        let memberships = self.memberships(&readable, cancel).await?;
        let listed: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        let unknown: Vec<&str> = memberships
            .keys()
            .map(String::as_str)
            .filter(|id| !listed.contains(id))
            .collect();
        let others = self.look_up(&unknown, cancel).await?;
        users.extend(others);
        let ids = identity::identity_ids(&users);
        for user in &users {
            let conversations = memberships
                .get(&user.id)
                .into_iter()
                .flatten()
                .map(String::as_str);
            let identities = identity::user_identities(user, &team_id, conversations);
            let id = ids
                .get(&user.id)
                .cloned()
                .unwrap_or_else(|| user.id.clone());
            let doc = identity::identity_doc(id, user, &team_id, &identities);
            sink.send(DocOp::Index(doc)).await?;
            self.counters.identities.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// user id → the conversations (of `conversations`) they are a member of, sorted.
    async fn memberships(
        &self,
        conversations: &[&Channel],
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, Vec<String>>, SourceError> {
        let mut memberships: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut pending = conversations.iter();
        let mut tasks = FuturesUnordered::new();
        loop {
            while tasks.len() < self.options.channel_concurrency.max(1) {
                let Some(channel) = pending.next() else { break };
                tasks.push(async move {
                    let members = self.members(&channel.id, cancel).await;
                    (channel.id.as_str(), members)
                });
            }
            let Some((channel, members)) = tasks.next().await else {
                break;
            };
            for member in members?.unwrap_or_default() {
                memberships
                    .entry(member)
                    .or_default()
                    .push(channel.to_string());
            }
        }
        for conversations in memberships.values_mut() {
            conversations.sort_unstable();
            conversations.dedup();
        }
        Ok(memberships)
    }

    /// Every member id of one conversation (`None`: Slack refused it at the first page).
    pub(super) async fn members(
        &self,
        channel: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<String>>, SourceError> {
        let limit = self.options.page_size.clamp(1, 999).to_string();
        let mut pager = Pager::new();
        let mut members = Vec::new();
        self.counters.member_lists.fetch_add(1, Ordering::Relaxed);
        loop {
            check_cancel(cancel)?;
            let mut params = vec![("channel", channel), ("limit", limit.as_str())];
            if let Some(cursor) = pager.cursor() {
                params.push(("cursor", cursor));
            }
            let page = self
                .client
                .call_page::<String>("conversations.members", Verb::Get, &params, &pager, cancel)
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error) if members.is_empty() && classify(&error) == Class::Skip => {
                    self.skip(channel, error.code().unwrap_or("unreadable"));
                    return Ok(None);
                }
                Err(error) => {
                    return Err(source_error(
                        error,
                        &format!("listing the members of conversation {channel}"),
                    ))
                }
            };
            let more = pager.advance(page.body.next_cursor());
            members.extend(page.body.items);
            if !more {
                return Ok(Some(members));
            }
        }
    }

    /// `users.info` for members `users.list` did not give, a few at once.
    async fn look_up(
        &self,
        ids: &[&str],
        cancel: &CancellationToken,
    ) -> Result<Vec<User>, SourceError> {
        let mut users = Vec::with_capacity(ids.len());
        let mut pending = ids.iter();
        let mut tasks = FuturesUnordered::new();
        loop {
            while tasks.len() < self.options.channel_concurrency.max(1) {
                let Some(id) = pending.next() else { break };
                tasks.push(self.user_info(id, cancel));
            }
            match tasks.next().await {
                Some(user) => users.push(user?),
                None => break,
            }
        }
        self.counters
            .external_users
            .fetch_add(users.len() as u64, Ordering::Relaxed);
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users)
    }

    async fn user_info(&self, id: &str, cancel: &CancellationToken) -> Result<User, SourceError> {
        let found = self
            .client
            .call_with(
                "users.info",
                Verb::Get,
                &[("user", id)],
                cancel,
                decode_user_info,
            )
            .await;
        match found {
            Ok(user) => Ok(user),
            Err(SlackError::Api { code, .. }) if UNKNOWN_USER_CODES.contains(&code.as_str()) => {
                tracing::warn!(
                    user_id = id,
                    code,
                    "a conversation member slack cannot describe"
                );
                // Unknown: a stranger to the workspace, which gives no `team:`.
                Ok(User {
                    id: id.to_string(),
                    is_stranger: Some(true),
                    ..User::default()
                })
            }
            Err(error) => Err(source_error(error, &format!("looking up user {id}"))),
        }
    }
}
