//! Workspace mutations (control API `POST /_sim/mutate`, and the write
//! methods `chat.postMessage` / `conversations.join`).
//!
//! Invariants kept: `top` and thread replies stay sorted with unique ts (new
//! messages get `max(now, channel max ts + 1µs)`), a broadcast reply exists
//! in both its thread and `top` and is edited/deleted in both, and deleting a
//! parent deletes its whole thread.

use crate::model::{
    make_id, mix, Channel, ConvKind, Kind, Loc, Msg, Override, Thread, TopicInfo, User, Workspace,
    NONE,
};
use crate::ts::{Ts, MICROS};
use crate::types::Mutation;
use serde_json::{json, Value};

/// Error code of a failed mutation (Slack-like: `channel_not_found`, …).
pub type MutError = &'static str;

impl Workspace {
    fn chan_mut(&mut self, r: &str) -> Result<&mut Channel, MutError> {
        let i = self.channel_ref(r).ok_or("channel_not_found")?;
        Ok(&mut self.channels[i as usize])
    }

    fn new_override(&mut self, o: Override) -> u32 {
        self.overrides.push(o);
        (self.overrides.len() - 1) as u32
    }

    /// Posts a message or (with `thread_ts`) a reply; returns its ts.
    pub fn post_message(
        &mut self,
        chan: u32,
        user: u32,
        text: &str,
        thread_ts: Option<i64>,
        broadcast: bool,
        now_us: i64,
    ) -> Result<i64, MutError> {
        let ovr = self.new_override(Override {
            text: Some(text.to_string()),
            edited: None,
        });
        let ch = &mut self.channels[chan as usize];
        let ts = now_us.max(ch.max_ts + 1);
        let gen = ch.next_gen;
        let mut msg = Msg {
            ts,
            gen,
            user,
            thread: NONE,
            ovr,
            kind: Kind::Plain,
        };
        match thread_ts {
            None => {
                ch.top.push(msg);
            }
            Some(pts) => {
                let t = match ch.locate(pts).ok_or("thread_not_found")? {
                    Loc::Reply(t, _) => t,
                    Loc::Top(i) => {
                        let parent = &ch.top[i];
                        if parent.kind == Kind::Join {
                            return Err("cannot_reply_to_message");
                        }
                        if parent.thread == NONE {
                            let (pts, pu) = (parent.ts, parent.user);
                            ch.threads.push(Thread {
                                parent_ts: pts,
                                parent_user: pu,
                                replies: Vec::new(),
                            });
                            ch.top[i].thread = (ch.threads.len() - 1) as u32;
                        }
                        ch.top[i].thread as usize
                    }
                };
                msg.thread = t as u32;
                msg.kind = if broadcast {
                    Kind::Broadcast
                } else {
                    Kind::Reply
                };
                if broadcast {
                    ch.top.push(msg.clone());
                }
                ch.threads[t].replies.push(msg);
            }
        }
        ch.max_ts = ts;
        ch.next_gen += 1;
        Ok(ts)
    }

    pub fn edit_message(
        &mut self,
        chan: u32,
        ts: i64,
        text: &str,
        now_us: i64,
    ) -> Result<(), MutError> {
        let ch = &self.channels[chan as usize];
        let loc = ch.locate(ts).ok_or("message_not_found")?;
        let msg = match loc {
            Loc::Top(i) => ch.top[i].clone(),
            Loc::Reply(t, j) => ch.threads[t].replies[j].clone(),
        };
        let edited = Some((msg.user, now_us.max(msg.ts + 1)));
        let ovr = if msg.ovr == NONE {
            self.new_override(Override {
                text: Some(text.to_string()),
                edited,
            })
        } else {
            let o = &mut self.overrides[msg.ovr as usize];
            o.text = Some(text.to_string());
            o.edited = edited;
            msg.ovr
        };
        let ch = &mut self.channels[chan as usize];
        match loc {
            Loc::Top(i) => ch.top[i].ovr = ovr,
            Loc::Reply(t, j) => {
                ch.threads[t].replies[j].ovr = ovr;
                if let Ok(k) = ch.top.binary_search_by_key(&ts, |m| m.ts) {
                    ch.top[k].ovr = ovr;
                }
            }
        }
        Ok(())
    }

    pub fn delete_message(&mut self, chan: u32, ts: i64) -> Result<(), MutError> {
        let ch = &mut self.channels[chan as usize];
        match ch.locate(ts).ok_or("message_not_found")? {
            Loc::Top(i) => {
                let msg = ch.top.remove(i);
                if msg.thread != NONE {
                    let t = msg.thread as usize;
                    ch.threads[t].replies.clear();
                    ch.top
                        .retain(|m| !(m.kind == Kind::Broadcast && m.thread as usize == t));
                }
            }
            Loc::Reply(t, j) => {
                let r = ch.threads[t].replies.remove(j);
                if r.kind == Kind::Broadcast {
                    if let Ok(k) = ch.top.binary_search_by_key(&ts, |m| m.ts) {
                        ch.top.remove(k);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn set_member(&mut self, chan: u32, user: u32, member: bool) {
        let ch = &mut self.channels[chan as usize];
        match (ch.members.binary_search(&user), member) {
            (Err(pos), true) => ch.members.insert(pos, user),
            (Ok(pos), false) => {
                ch.members.remove(pos);
            }
            _ => {}
        }
    }

    fn user_or_default(&self, user: &Option<String>) -> Result<u32, MutError> {
        match user {
            Some(u) => self.user_ref(u).ok_or("user_not_found"),
            None => Ok(self.owner_user),
        }
    }

    /// Applies one mutation at simulator time `now_us`.
    pub fn apply(&mut self, op: &Mutation, now_us: i64) -> Result<Value, MutError> {
        let parse_ts = |s: &str| Ts::parse(s).map(|t| t.0).ok_or("invalid_ts");
        match op {
            Mutation::AddMessage {
                channel,
                user,
                text,
                thread_ts,
                broadcast,
            } => {
                let c = self.channel_ref(channel).ok_or("channel_not_found")?;
                let u = self.user_or_default(user)?;
                let tts = thread_ts.as_deref().map(parse_ts).transpose()?;
                let ts = self.post_message(c, u, text, tts, *broadcast, now_us)?;
                Ok(json!({"ok": true, "channel": self.channels[c as usize].id, "ts": Ts(ts)}))
            }
            Mutation::AddReply {
                channel,
                thread_ts,
                user,
                text,
                broadcast,
            } => self.apply(
                &Mutation::AddMessage {
                    channel: channel.clone(),
                    user: user.clone(),
                    text: text.clone(),
                    thread_ts: Some(thread_ts.clone()),
                    broadcast: *broadcast,
                },
                now_us,
            ),
            Mutation::EditMessage { channel, ts, text } => {
                let c = self.channel_ref(channel).ok_or("channel_not_found")?;
                self.edit_message(c, parse_ts(ts)?, text, now_us)?;
                Ok(json!({"ok": true}))
            }
            Mutation::DeleteMessage { channel, ts } => {
                let c = self.channel_ref(channel).ok_or("channel_not_found")?;
                self.delete_message(c, parse_ts(ts)?)?;
                Ok(json!({"ok": true}))
            }
            Mutation::RenameChannel { channel, name } => {
                let ch = self.chan_mut(channel)?;
                let old = std::mem::replace(&mut ch.name, name.clone());
                ch.previous_names.insert(0, old);
                ch.updated_ms = now_us / 1000;
                Ok(json!({"ok": true, "id": ch.id}))
            }
            Mutation::ArchiveChannel { channel } | Mutation::UnarchiveChannel { channel } => {
                let archive = matches!(op, Mutation::ArchiveChannel { .. });
                let ch = self.chan_mut(channel)?;
                ch.archived = archive;
                ch.updated_ms = now_us / 1000;
                Ok(json!({"ok": true, "id": ch.id}))
            }
            Mutation::DeactivateUser { user } => {
                let u = self.user_ref(user).ok_or("user_not_found")?;
                let u = &mut self.users[u as usize];
                u.deleted = true;
                u.updated = now_us / MICROS;
                Ok(json!({"ok": true, "id": u.id}))
            }
            Mutation::SetMembership {
                channel,
                member,
                user,
            } => {
                let c = self.channel_ref(channel).ok_or("channel_not_found")?;
                let u = match user {
                    Some(u) => self.user_ref(u).ok_or("user_not_found")?,
                    None => self.bot_user,
                };
                self.set_member(c, u, *member);
                Ok(json!({"ok": true}))
            }
            Mutation::AddChannel {
                name,
                private,
                bot_member,
                archived,
            } => {
                if self.channels.iter().any(|c| &c.name == name) {
                    return Err("name_taken");
                }
                let idx = self.channels.len() as u32;
                let id = make_id(
                    if *private { "G" } else { "C" },
                    mix(&[self.seed, 90, u64::from(idx)]),
                );
                let mut members = vec![self.owner_user];
                if *bot_member {
                    members.push(self.bot_user);
                }
                members.sort_unstable();
                let now = now_us / MICROS;
                self.channels.push(Channel {
                    idx,
                    id: id.clone(),
                    name: name.clone(),
                    previous_names: Vec::new(),
                    kind: if *private {
                        ConvKind::Private
                    } else {
                        ConvKind::Public
                    },
                    legacy_group: *private,
                    is_general: false,
                    created: now,
                    updated_ms: now_us / 1000,
                    creator: self.owner_user,
                    archived: *archived,
                    members,
                    im_user: NONE,
                    shared: false,
                    topic: TopicInfo {
                        value: String::new(),
                        creator: NONE,
                        last_set: 0,
                    },
                    purpose: TopicInfo {
                        value: String::new(),
                        creator: NONE,
                        last_set: 0,
                    },
                    top: Vec::new(),
                    threads: Vec::new(),
                    max_ts: 0,
                    next_gen: 0,
                });
                self.chan_by_id.insert(id.clone(), idx);
                Ok(json!({"ok": true, "id": id}))
            }
            Mutation::AddUser {
                name,
                real_name,
                is_bot,
            } => {
                if self.users.iter().any(|u| &u.name == name) {
                    return Err("name_taken");
                }
                let i = self.users.len() as u32;
                let mut u: User = self.users[self.owner_user as usize].clone();
                u.id = make_id("U", mix(&[self.seed, 91, u64::from(i)]));
                u.name = name.clone();
                u.real_name = real_name.clone().unwrap_or_else(|| name.clone());
                u.display_name = String::new();
                u.first_name = u.real_name.clone();
                u.last_name = String::new();
                u.email = (!*is_bot).then(|| format!("{name}@example.com"));
                u.is_bot = *is_bot;
                u.bot_id = is_bot.then(|| make_id("B", mix(&[self.seed, 92, u64::from(i)])));
                u.is_admin = false;
                u.is_owner = false;
                u.is_primary_owner = false;
                u.is_restricted = false;
                u.is_ultra_restricted = false;
                u.external = false;
                u.deleted = false;
                u.updated = now_us / MICROS;
                let id = u.id.clone();
                self.user_by_id.insert(id.clone(), i);
                self.users.push(u);
                Ok(json!({"ok": true, "id": id}))
            }
        }
    }
}
