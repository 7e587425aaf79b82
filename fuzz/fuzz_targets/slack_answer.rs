//! A Slack answer for one of the methods the source calls (first byte), decoded strictly
//! and made into documents: an error or documents, never a panic, and never an `ok:true`
//! page without the method's list.
#![no_main]

use connectors::sources::slack::answer::decode;
use connectors::sources::slack::transform::{
    channel_doc, message_json, user_doc, Channel, Message, MessageContext, Names, User,
};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

const METHODS: [&str; 6] = [
    "auth.test",
    "users.list",
    "conversations.list",
    "conversations.join",
    "conversations.history",
    "conversations.replies",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(pick) % METHODS.len()];
    let mut names = Names::default();
    match method {
        "users.list" => {
            if let Ok(page) = decode::<User>(method, body) {
                for user in &page.items {
                    names.add(user);
                    let _ = user_doc(user);
                }
            }
        }
        "conversations.list" => {
            if let Ok(page) = decode::<Channel>(method, body) {
                for channel in &page.items {
                    let _ = channel_doc(channel, &names, Some("https://a.slack.com"));
                }
            }
        }
        "conversations.history" | "conversations.replies" => {
            if let Ok(page) = decode::<Message<'_>>(method, body) {
                let channels = HashMap::new();
                let ctx = MessageContext {
                    channel_id: "C1",
                    channel_name: "general",
                    names: &names,
                    channels: &channels,
                    base: Some("https://a.slack.com"),
                };
                for message in &page.items {
                    let (json, _) = message_json(message, &ctx);
                    assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
                }
                if page.ok {
                    assert!(!(page.has_more && page.next_cursor().is_none()));
                }
            }
        }
        _ => {
            let _ = decode::<serde_json::Value>(method, body);
        }
    }
});
