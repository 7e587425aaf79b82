//! Remote files (`sync_remote_files`, off by default, scope `remote_files:read`): one
//! document per remote file (`files.remote.list`: a file an app added to Slack by reference,
//! such as a document kept elsewhere) shared in a conversation the sync reads; id `F…`,
//! type `remote_file`.
//!
//! Invariants: off by default (a sync asks Slack for nothing more than before); an answer
//! without its `files` list is a protocol error naming the method (`answer::shape`), and a
//! file object without its `id` or `external_url`, or with a field of the wrong type, is
//! refused (strict decoding), never an empty page; a remote file is indexed only when it is
//! shared in a conversation the sync reads (the channel filters apply; one shared nowhere,
//! or only in conversations the sync leaves out, makes no document: who may read it is not
//! known), and with DLS it is readable by whoever may read one of those conversations.
//! Listed once per sync (Tier 2), after the conversations, in pages of the sync's page size.

use super::client::Verb;
use super::filters::{check_types, toggle};
use super::source::{check_cancel, source_error, Inner};
use super::transform::{epoch_timestamp, Names};
use crate::sources::{
    AccessControl, Configuration, ConfigurationExt, DocOp, DocSender, Document, DocumentWriter,
    SourceError,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// Form key and label.
pub const REMOTE_KEY: &str = "sync_remote_files";
pub const REMOTE_LABEL: &str = "Index remote files";
/// Scopes it needs.
pub const REMOTE_SCOPES: &[&str] = &["remote_files:read"];
/// The method.
pub const METHOD: &str = "files.remote.list";

/// One `files.remote.list` file: `id` and `external_url` are required (a remote file is its
/// link), the rest typed and optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteFile {
    pub id: String,
    pub external_url: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub filetype: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub permalink: Option<String>,
    /// Public channels, private channels and DMs it is shared in.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub ims: Option<Vec<String>>,
}

impl RemoteFile {
    /// Every conversation it is shared in.
    pub fn conversations(&self) -> impl Iterator<Item = &String> {
        [&self.channels, &self.groups, &self.ims]
            .into_iter()
            .flatten()
            .flatten()
    }
}

/// Reads the toggle (an uncoercible value is an error naming the field).
pub fn from_configuration(configuration: &Configuration) -> Result<bool, SourceError> {
    check_types(configuration, &[REMOTE_KEY])?;
    Ok(configuration.bool_value(REMOTE_KEY).unwrap_or(false))
}

/// Adds the toggle to the form (order 36).
pub fn add_fields(config: &mut Configuration) {
    config.insert(REMOTE_KEY.into(), toggle(REMOTE_LABEL, 36, "Index one document per remote file (a file an app added to Slack by reference, such as a document kept elsewhere) shared in an indexed conversation: title, type, author, link, conversations; id F…. One more Slack call per 200 remote files (Tier 2). Needs the remote_files:read scope."));
}

/// The remote file document (pure): `channels` are the read conversations it is shared in.
pub fn remote_file_doc(
    file: &RemoteFile,
    channels: &BTreeSet<&str>,
    names: &Names,
    channel_names: &HashMap<String, String>,
) -> Document {
    let mut doc = DocumentWriter::with_capacity(512);
    doc.str("type", "remote_file");
    doc.opt_str("title", file.title.as_deref());
    doc.opt_str("name", file.name.as_deref());
    doc.opt_str("filetype", file.filetype.as_deref());
    let author = file.user.as_deref().map(|u| names.user(u).unwrap_or(u));
    doc.opt_str("author", author);
    doc.opt_str("author_id", file.user.as_deref());
    doc.opt_str("external_id", file.external_id.as_deref());
    doc.str("url", &file.external_url);
    doc.opt_str("permalink", file.permalink.as_deref());
    doc.json("channel_ids", &json!(channels));
    let channel_list: Vec<&str> = channels
        .iter()
        .map(|c| channel_names.get(*c).map_or(*c, String::as_str))
        .collect();
    doc.json("channels", &json!(channel_list));
    doc.opt_i64("created", file.created);
    doc.timestamp(file.created.and_then(epoch_timestamp));
    doc.finish(file.id.clone())
}

/// The counts for the job's `metadata.remote_files`.
#[derive(Debug, Default)]
pub struct RemoteCounters {
    documents: AtomicU64,
    not_in_indexed_conversation: AtomicU64,
}

impl RemoteCounters {
    /// `metadata.remote_files`.
    pub fn to_value(&self) -> Value {
        json!({
            "documents": self.documents.load(Ordering::Relaxed),
            "not_in_indexed_conversation": self.not_in_indexed_conversation.load(Ordering::Relaxed),
        })
    }
}

impl Inner {
    /// The remote file documents: `read` maps each conversation the sync reads to its
    /// readers (with DLS).
    pub(super) async fn fetch_remote_files(
        &self,
        read: &HashMap<String, Option<AccessControl>>,
        names: &Names,
        channel_names: &HashMap<String, String>,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let limit = self.options.page_size.to_string();
        let mut pager = super::answer::Pager::new();
        loop {
            check_cancel(cancel)?;
            let mut params = vec![("limit", limit.as_str())];
            if let Some(c) = pager.cursor() {
                params.push(("cursor", c));
            }
            let reply = self
                .client
                .call_page::<RemoteFile>(METHOD, Verb::Get, &params, &pager, cancel)
                .await
                .map_err(|e| source_error(e, "listing remote files (files.remote.list)"))?;
            for file in &reply.body.items {
                let shared: BTreeSet<&str> = file
                    .conversations()
                    .filter(|c| read.contains_key(*c))
                    .map(String::as_str)
                    .collect();
                if shared.is_empty() {
                    self.remote
                        .not_in_indexed_conversation
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut doc = remote_file_doc(file, &shared, names, channel_names);
                if self.options.use_document_level_security {
                    let identities: BTreeSet<&String> = shared
                        .iter()
                        .filter_map(|c| read.get(*c).and_then(Option::as_ref))
                        .flat_map(AccessControl::identities)
                        .collect();
                    let readers = AccessControl::new(identities.into_iter().cloned());
                    doc = doc.with_access_control(&readers);
                }
                sink.send(DocOp::Index(doc)).await?;
                self.remote.documents.fetch_add(1, Ordering::Relaxed);
            }
            if !pager.advance(reply.body.next_cursor()) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_options_and_strict_objects() {
        let file: RemoteFile = serde_json::from_value(json!({
            "id": "F1", "external_url": "https://docs.example.com/d/1", "external_id": "d1",
            "title": "Roadmap", "filetype": "gdoc", "user": "U1", "created": 1_700_000_000,
            "channels": ["C1", "C9"], "groups": ["G1"], "ims": []
        }))
        .unwrap();
        assert_eq!(file.conversations().count(), 3);
        let shared: BTreeSet<&str> = ["C1", "G1"].into();
        let names: HashMap<String, String> = [("C1".into(), "general".into())].into();
        let doc = remote_file_doc(&file, &shared, &Names::default(), &names);
        assert_eq!(doc.id(), "F1");
        let f = doc.fields();
        assert_eq!(f["type"], "remote_file");
        assert_eq!(f["url"], "https://docs.example.com/d/1");
        assert_eq!(f["channel_ids"], json!(["C1", "G1"]));
        assert_eq!(f["channels"], json!(["general", "G1"]));
        assert_eq!(f["author_id"], "U1");
        assert_eq!(f["_timestamp"], json!("2023-11-14T22:13:20.000000Z"));
        for bad in [
            json!({"external_url": "https://x"}),
            json!({"id": "F1"}),
            json!({"id": "F1", "external_url": null}),
            json!({"id": "F1", "external_url": "https://x", "channels": "C1"}),
            json!({"id": "F1", "external_url": "https://x", "created": "yesterday"}),
        ] {
            assert!(
                serde_json::from_value::<RemoteFile>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let mut config = Configuration::new();
        add_fields(&mut config);
        assert!(!from_configuration(&config).unwrap());
        config.get_mut(REMOTE_KEY).unwrap().value = json!("maybe");
        let e = from_configuration(&config).unwrap_err().to_string();
        assert!(e.contains(REMOTE_LABEL), "{e}");
        config.get_mut(REMOTE_KEY).unwrap().value = json!(true);
        assert!(from_configuration(&config).unwrap());
    }
}
