//! File documents (`sync_files`, off by default): one document per file shared in a synced
//! conversation, id `F…`, gathered from the `files` of the messages the sync reads (no
//! listing call), with its content when it can be had.
//!
//! Content: text-like files (plain text, markdown, CSV, JSON, source code, HTML stripped
//! to text) are downloaded from `url_private_download` (else `url_private`) with the token
//! in the `Authorization` header and extracted here into `body`; other types go to the
//! ingest pipeline as `_attachment` (base64) when the connector's pipeline extracts
//! binary content (`_extract_binary_content`, as Elastic's framework does), and are
//! otherwise indexed as metadata with `content_skipped: binary_without_pipeline`.
//!
//! Memory of content sent to the pipeline: a binary file's base64 is encoded from the
//! streamed chunks as they arrive (the raw body is never kept whole), and binaries are
//! sent only up to their own, lower cap (`max_pipeline_file_size_mb`, default
//! [`DEFAULT_PIPELINE_MAX_MB`]): the base64 is 4/3 of the file, and the document, the
//! engine's encoded op and its bulk body each hold a copy of it in turn, so this cap, not
//! `max_file_size_mb`, is what bounds the peak memory of a sync with a pipeline. A binary
//! over it is indexed as metadata with `content_skipped: too_large_for_pipeline`.
//!
//! Invariants: the token goes only to Slack's hosts (`https://*.slack.com`) or the API's
//! own origin (`SLACK_API_BASE_URL`), never into a log or an error; a download stops at
//! the size cap (`max_file_size_mb`; a `Content-Length` over it is not read at all);
//! downloads run one at a time per source (a semaphore), so at most one file's bytes are
//! in memory; a failed download (404, 403, a body shorter than its `Content-Length`, a
//! network error) never fails the sync: the file is indexed as metadata with
//! `content_skipped` naming why, and the job's `metadata.files` counts it. A download
//! answered 429 (after its `Retry-After`), 5xx or lost on the network is retried through
//! the service's one retry policy ([`crate::retry`], [`download_retry`]: the Slack
//! client's parameters, bounded to a few retries and two minutes) before it counts as
//! failed. Deleted files
//! (`mode: tombstone`) and files hidden by the plan's limit make no document.
//!
//! A file is written when the page of the message sharing it is (so a resumed sync has
//! the files of what it wrote before); a file seen again in another conversation is
//! written again with the union of its conversations and readers (DLS).

use super::filters::{check_types, toggle};
use super::transform::{epoch_timestamp, FileRef, Message, Names};
use crate::config::Secret;
use crate::retry::{RetryKind, RetryParams};
use crate::sources::{
    AccessControl, ConfigField, Configuration, ConfigurationExt, Document, DocumentWriter,
    SourceError,
};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Form keys and labels.
pub const FILES_KEY: &str = "sync_files";
pub const FILES_LABEL: &str = "Index files";
pub const MAX_SIZE_KEY: &str = "max_file_size_mb";
pub const MAX_SIZE_LABEL: &str = "Largest file content to index (MB)";
/// Default cap: 10 MB.
pub const DEFAULT_MAX_MB: u64 = 10;
/// Highest cap the form accepts.
pub const MAX_MB_LIMIT: i64 = 100;
/// Form key and label of the cap of binaries sent to the ingest pipeline.
pub const PIPELINE_MAX_KEY: &str = "max_pipeline_file_size_mb";
pub const PIPELINE_MAX_LABEL: &str = "Largest binary file sent to the ingest pipeline (MB)";
/// Default cap of binaries sent to the pipeline: 1 MB (the service's 25 MB memory budget;
/// see the module's comment).
pub const DEFAULT_PIPELINE_MAX_MB: u64 = 1;
/// Scopes file downloads need.
pub const FILES_SCOPES: &[&str] = &["files:read"];

/// What the form says about files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOptions {
    /// Index file documents.
    pub sync: bool,
    /// Largest content downloaded, in bytes (0: metadata only).
    pub max_bytes: u64,
    /// Largest binary file sent to the ingest pipeline as `_attachment`, in bytes (0: none).
    pub max_pipeline_bytes: u64,
}

impl Default for FileOptions {
    fn default() -> FileOptions {
        FileOptions {
            sync: false,
            max_bytes: DEFAULT_MAX_MB * 1_000_000,
            max_pipeline_bytes: DEFAULT_PIPELINE_MAX_MB * 1_000_000,
        }
    }
}

/// Reads `sync_files`, `max_file_size_mb` and `max_pipeline_file_size_mb` (a bad value is
/// an error naming the field).
pub fn from_configuration(configuration: &Configuration) -> Result<FileOptions, SourceError> {
    check_types(configuration, &[FILES_KEY, MAX_SIZE_KEY, PIPELINE_MAX_KEY])?;
    let sync = configuration.bool_value(FILES_KEY).unwrap_or(false);
    let megabytes =
        |key: &str, label: &str, default: u64, zero: &str| match configuration.int_value(key) {
            None => Ok(default),
            Some(v) if (0..=MAX_MB_LIMIT).contains(&v) => Ok(v as u64),
            Some(v) => Err(SourceError::Configuration(format!(
                "'{label}' must be between 0 ({zero}) and {MAX_MB_LIMIT}, got {v}"
            ))),
        };
    let mb = megabytes(
        MAX_SIZE_KEY,
        MAX_SIZE_LABEL,
        DEFAULT_MAX_MB,
        "metadata only",
    )?;
    let pipeline_mb = megabytes(
        PIPELINE_MAX_KEY,
        PIPELINE_MAX_LABEL,
        DEFAULT_PIPELINE_MAX_MB,
        "no binary content",
    )?;
    Ok(FileOptions {
        sync,
        max_bytes: mb * 1_000_000,
        max_pipeline_bytes: pipeline_mb * 1_000_000,
    })
}

/// An advanced size field in MB (0..=[`MAX_MB_LIMIT`]), shown when files are on.
fn megabytes_field(label: &str, order: u32, default: u64, tooltip: &str) -> ConfigField {
    let mut field = ConfigField::new(label, "int", order)
        .display("numeric")
        .optional()
        .depends_on(FILES_KEY, json!(true))
        .validation("greater_than", json!(-1))
        .validation("less_than", json!(MAX_MB_LIMIT + 1))
        .ui_restrictions(&["advanced"])
        .tooltip(tooltip)
        .value(json!(default));
    field.default_value = json!(default);
    field
}

/// Adds the three fields to the form (orders 33–35).
pub fn add_fields(config: &mut Configuration) {
    config.insert(FILES_KEY.into(), toggle(FILES_LABEL, 33, "Index one document per file shared in an indexed conversation (name, title, type, size, author, conversations, permalink), id F…, with the text of text-like files (text, markdown, CSV, JSON, code, HTML) and, when the ingest pipeline extracts binary content, of the others. Needs the files:read scope."));
    let cap = megabytes_field(MAX_SIZE_LABEL, 34, DEFAULT_MAX_MB, "Files larger than this are indexed without their content (content_skipped: too_large). 0 indexes metadata only.");
    config.insert(MAX_SIZE_KEY.into(), cap);
    let pipeline = megabytes_field(PIPELINE_MAX_LABEL, 35, DEFAULT_PIPELINE_MAX_MB, "Binary files (PDF, images, office documents) larger than this are indexed without their content (content_skipped: too_large_for_pipeline) when the ingest pipeline extracts binary content. Their base64 is held in memory while it is sent: raising it raises the service's peak memory by a few times the value. 0 sends no binary content.");
    config.insert(PIPELINE_MAX_KEY.into(), pipeline);
}

/// A file as the sync saw it shared (owned: it outlives the page).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedFile {
    pub id: String,
    pub name: Option<String>,
    pub title: Option<String>,
    pub mimetype: Option<String>,
    pub filetype: Option<String>,
    pub size: Option<u64>,
    pub user: Option<String>,
    pub created: Option<i64>,
    pub permalink: Option<String>,
    pub url: Option<String>,
    pub external: bool,
    /// The conversation and message that shared it.
    pub channel_id: String,
    pub message_id: String,
    /// The thread it was shared in (the message's `thread_ts`).
    pub thread_ts: Option<String>,
}

impl SharedFile {
    /// The files of a message worth a document (not deleted, not hidden by the plan).
    pub fn of_message(message: &Message<'_>, channel_id: &str) -> Vec<SharedFile> {
        let own = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        message
            .files
            .iter()
            .flatten()
            .filter(|f| !matches!(f.mode.as_deref(), Some("tombstone" | "hidden_by_limit")))
            .map(|f: &FileRef<'_>| SharedFile {
                id: f.id.to_string(),
                name: own(&f.name),
                title: own(&f.title),
                mimetype: own(&f.mimetype),
                filetype: own(&f.filetype),
                size: f.size,
                user: own(&f.user),
                created: f.created,
                permalink: own(&f.permalink),
                url: own(&f.url_private_download).or_else(|| own(&f.url_private)),
                external: f.mode.as_deref() == Some("external"),
                channel_id: channel_id.to_string(),
                message_id: super::transform::message_id(channel_id, &message.ts),
                thread_ts: own(&message.thread_ts),
            })
            .collect()
    }
}

/// How a file's content is had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read as text here.
    Text,
    /// HTML: tags stripped here.
    Html,
    /// Anything else: the pipeline's attachment processor, if any.
    Binary,
}

/// Slack `filetype`s of text (source code, markup, data).
const TEXT_FILETYPES: &[&str] = &[
    "text",
    "markdown",
    "md",
    "csv",
    "tsv",
    "json",
    "xml",
    "yaml",
    "yml",
    "toml",
    "ini",
    "log",
    "python",
    "javascript",
    "typescript",
    "rust",
    "go",
    "java",
    "c",
    "cpp",
    "csharp",
    "ruby",
    "php",
    "shell",
    "bash",
    "sql",
    "kotlin",
    "swift",
    "scala",
    "perl",
    "r",
    "lua",
    "css",
    "diff",
    "dockerfile",
    "makefile",
    "post",
    "space",
];

/// The kind of a file from its MIME type and Slack file type (pure).
pub fn kind(mimetype: Option<&str>, filetype: Option<&str>) -> Kind {
    let mime = mimetype.unwrap_or("").to_ascii_lowercase();
    let mime = mime.split(';').next().unwrap_or("").trim();
    let ftype = filetype.unwrap_or("").to_ascii_lowercase();
    if mime == "text/html" || ftype == "html" {
        return Kind::Html;
    }
    let text_mime = mime.starts_with("text/")
        || matches!(
            mime,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-yaml"
                | "application/yaml"
                | "application/x-sh"
                | "application/sql"
                | "application/toml"
        );
    if text_mime || TEXT_FILETYPES.contains(&ftype.as_str()) {
        Kind::Text
    } else {
        Kind::Binary
    }
}

/// HTML to its text (pure): tags dropped, `script` and `style` bodies dropped, the common
/// entities decoded, runs of whitespace made one space.
pub fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let skip_to = ["script", "style"].iter().find_map(|t| {
                lower[i + 1..]
                    .starts_with(t)
                    .then(|| lower[i..].find(&format!("</{t}")).map(|e| i + e))
                    .flatten()
            });
            let from = skip_to.unwrap_or(i);
            match lower[from..].find('>') {
                Some(end) => i = from + end + 1,
                None => break,
            }
            out.push(' ');
            continue;
        }
        let next = lower[i..].find('<').map_or(bytes.len(), |n| i + n);
        out.push_str(&decode_entities(&html[i..next]));
        i = next;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `content_skipped` of a binary over the pipeline's cap.
pub const TOO_LARGE_FOR_PIPELINE: &str = "too_large_for_pipeline";

/// What became of a file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text extracted here (`body`).
    Text(String),
    /// Base64 for the pipeline's attachment processor (`_attachment`).
    Attachment(String),
    /// None, and why (`content_skipped`).
    Skipped(&'static str),
}

/// Where a download's body goes as it streams in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The bytes, kept (text to extract).
    Bytes,
    /// Base64, encoded chunk by chunk (the raw bytes are never kept whole).
    Base64,
}

/// A download's body: its bytes, or their base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downloaded {
    Bytes(Vec<u8>),
    Base64(String),
}

/// Incremental base64 (standard alphabet, padded): chunks in, the same text out as
/// encoding their concatenation at once. Holds at most 2 bytes between chunks.
#[derive(Debug, Default)]
pub struct Base64Stream {
    out: String,
    carry: Vec<u8>,
    /// Raw bytes seen.
    len: u64,
}

impl Base64Stream {
    /// Room for the base64 of `expected` bytes (a `Content-Length`), reserved once.
    pub fn with_expected(expected: u64) -> Base64Stream {
        Base64Stream {
            // Room for the document around it ([`file_doc`] writes into this buffer).
            out: String::with_capacity((expected.div_ceil(3) * 4) as usize + DOC_ROOM),
            carry: Vec::with_capacity(3),
            len: 0,
        }
    }

    /// Adds a chunk.
    pub fn push(&mut self, mut chunk: &[u8]) {
        let engine = &base64::engine::general_purpose::STANDARD;
        self.len += chunk.len() as u64;
        if !self.carry.is_empty() {
            let take = (3 - self.carry.len()).min(chunk.len());
            self.carry.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.carry.len() < 3 {
                return;
            }
            engine.encode_string(&self.carry, &mut self.out);
            self.carry.clear();
        }
        let whole = chunk.len() / 3 * 3;
        engine.encode_string(&chunk[..whole], &mut self.out);
        self.carry.extend_from_slice(&chunk[whole..]);
    }

    /// Raw bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base64 text (the last bytes padded).
    pub fn finish(mut self) -> String {
        base64::engine::general_purpose::STANDARD.encode_string(&self.carry, &mut self.out);
        self.out
    }
}

/// Room left in a base64 buffer for the rest of its document (metadata, readers).
const DOC_ROOM: usize = 16 * 1024;

/// A body being received.
enum Receiving {
    Bytes(Vec<u8>),
    Base64(Base64Stream),
}

impl Receiving {
    fn len(&self) -> u64 {
        match self {
            Receiving::Bytes(b) => b.len() as u64,
            Receiving::Base64(s) => s.len(),
        }
    }
}

/// Why a download gave no content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Over the cap (by `Content-Length` or while reading).
    TooLarge,
    /// An HTTP status other than 200 (429 is [`Failure::Throttled`]).
    Status(u16),
    /// HTTP 429, with its `Retry-After`.
    Throttled(Option<Duration>),
    /// The sync was cancelled while waiting to retry.
    Cancelled,
    /// Fewer bytes than `Content-Length` said.
    Truncated,
    /// The token may not go to this URL's host.
    UntrustedHost,
    /// Network or protocol error (its text, without the request).
    Other(String),
}

impl Failure {
    /// The `content_skipped` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::TooLarge => "too_large",
            Failure::Status(404) => "not_found",
            Failure::Status(403) => "forbidden",
            Failure::Status(_) | Failure::Throttled(_) | Failure::Cancelled => "download_failed",
            Failure::Truncated => "truncated",
            Failure::UntrustedHost => "untrusted_host",
            Failure::Other(_) => "download_failed",
        }
    }
}

impl crate::retry::Retryable for Failure {
    /// 429 is Slack pacing us; 5xx and network errors may pass; the rest will not.
    fn retry_kind(&self) -> RetryKind {
        match self {
            Failure::Throttled(_) => RetryKind::Throttled,
            Failure::Status(status) if *status >= 500 => RetryKind::Transient,
            Failure::Other(_) => RetryKind::Transient,
            _ => RetryKind::Permanent,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Throttled(after) => *after,
            _ => None,
        }
    }
}

/// Retries of one download (pure): the Slack client's backoff, bounded (a file is not
/// worth a long stall of the sync; it is indexed without content after these).
pub fn download_retry(client: &RetryParams) -> RetryParams {
    const MAX_ELAPSED: Duration = Duration::from_secs(120);
    RetryParams {
        max_retries: client.max_retries.min(3),
        max_throttled: client.max_throttled.min(5),
        max_elapsed: Some(
            client
                .max_elapsed
                .map_or(MAX_ELAPSED, |m| m.min(MAX_ELAPSED)),
        ),
        ..*client
    }
}

/// Whether the token may be sent to `url` (pure): `https` on `slack.com` or a subdomain
/// of it, or the origin of the API base URL (a proxy or the simulator).
pub fn trusted(url: &str, api_base: &str) -> bool {
    let Ok(target) = reqwest::Url::parse(url) else {
        return false;
    };
    let slack = target.scheme() == "https"
        && target
            .host_str()
            .is_some_and(|h| h == "slack.com" || h.ends_with(".slack.com"));
    let same_origin = reqwest::Url::parse(api_base)
        .is_ok_and(|base| base.origin() == target.origin() && base.scheme() == target.scheme());
    slack || same_origin
}

/// Reads `url` with the token, stopping at `cap` bytes (a `Content-Length` over the cap
/// is not read), into `body`'s form. The token is a sensitive header (never in a Debug of
/// the request).
pub async fn download(
    http: &reqwest::Client,
    url: &str,
    api_base: &str,
    token: &Secret,
    cap: u64,
    body: Body,
) -> Result<Downloaded, Failure> {
    if !trusted(url, api_base) {
        return Err(Failure::UntrustedHost);
    }
    let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| Failure::Other("the token is not a valid header value".into()))?;
    auth.set_sensitive(true);
    let mut response = http
        .get(url)
        .header(reqwest::header::AUTHORIZATION, auth)
        .send()
        .await
        .map_err(|e| Failure::Other(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    if status == 429 {
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(super::client::parse_retry_after);
        return Err(Failure::Throttled(after));
    }
    if status != 200 {
        return Err(Failure::Status(status));
    }
    let length = response.content_length();
    if length.is_some_and(|n| n > cap) {
        return Err(Failure::TooLarge);
    }
    let expected = length.unwrap_or(0);
    let mut received = match body {
        Body::Bytes => Receiving::Bytes(Vec::with_capacity(expected as usize)),
        Body::Base64 => Receiving::Base64(Base64Stream::with_expected(expected)),
    };
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if received.len() + chunk.len() as u64 > cap {
                    return Err(Failure::TooLarge);
                }
                match &mut received {
                    Receiving::Bytes(bytes) => bytes.extend_from_slice(&chunk),
                    Receiving::Base64(stream) => stream.push(&chunk),
                }
            }
            Ok(None) => break,
            // A body cut short surfaces as a read error (hyper knows the length).
            Err(_) if length.is_some_and(|n| received.len() < n) => return Err(Failure::Truncated),
            Err(e) => return Err(Failure::Other(e.without_url().to_string())),
        }
    }
    if length.is_some_and(|n| received.len() < n) {
        return Err(Failure::Truncated);
    }
    Ok(match received {
        Receiving::Bytes(bytes) => Downloaded::Bytes(bytes),
        Receiving::Base64(stream) => Downloaded::Base64(stream.finish()),
    })
}

/// The counts for the job's `metadata.files`.
#[derive(Debug, Default)]
pub struct Counters {
    documents: AtomicU64,
    downloaded: AtomicU64,
    bytes_downloaded: AtomicU64,
    extracted: AtomicU64,
    sent_to_pipeline: AtomicU64,
    skipped_too_large: AtomicU64,
    skipped_too_large_for_pipeline: AtomicU64,
    skipped_binary_without_pipeline: AtomicU64,
    skipped_other: AtomicU64,
    failed_404: AtomicU64,
    failed_403: AtomicU64,
    failed_other: AtomicU64,
    truncated: AtomicU64,
    download_retries: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a download failure.
    pub fn failed(&self, failure: &Failure) {
        let counter = match failure {
            Failure::TooLarge => &self.skipped_too_large,
            Failure::Status(404) => &self.failed_404,
            Failure::Status(403) => &self.failed_403,
            Failure::Truncated => &self.truncated,
            Failure::UntrustedHost => &self.skipped_other,
            Failure::Status(_) | Failure::Throttled(_) | Failure::Other(_) | Failure::Cancelled => {
                &self.failed_other
            }
        };
        Counters::add(counter, 1);
    }

    /// `metadata.files`.
    pub fn to_value(&self) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "documents": get(&self.documents),
            "downloaded": get(&self.downloaded),
            "bytes_downloaded": get(&self.bytes_downloaded),
            "extracted": get(&self.extracted),
            "sent_to_pipeline": get(&self.sent_to_pipeline),
            "skipped_too_large": get(&self.skipped_too_large),
            "skipped_too_large_for_pipeline": get(&self.skipped_too_large_for_pipeline),
            "skipped_binary_without_pipeline": get(&self.skipped_binary_without_pipeline),
            "skipped_other": get(&self.skipped_other),
            "failed_404": get(&self.failed_404),
            "failed_403": get(&self.failed_403),
            "failed_other": get(&self.failed_other),
            "truncated": get(&self.truncated),
            "download_retries": get(&self.download_retries),
        })
    }
}

/// The file document (pure). `channels` are the conversations it was seen in (ids, with
/// their names beside). It takes the content: a binary's base64 becomes its buffer.
pub fn file_doc(
    file: &SharedFile,
    channels: &BTreeSet<String>,
    names: &Names,
    channel_names: &HashMap<String, String>,
    content: Content,
) -> Document {
    // The base64 of a binary becomes the document's buffer (it is not held twice).
    let (mut doc, content) = match content {
        Content::Attachment(b64) => (
            DocumentWriter::starting_with_string("_attachment", b64),
            None,
        ),
        other => (DocumentWriter::with_capacity(1024), Some(other)),
    };
    doc.str("type", "file");
    doc.opt_str("name", file.name.as_deref());
    doc.opt_str("title", file.title.as_deref());
    doc.opt_str("mimetype", file.mimetype.as_deref());
    doc.opt_str("filetype", file.filetype.as_deref());
    match file.size {
        Some(size) => doc.u64("size", size),
        None => doc.null("size"),
    }
    let author = file.user.as_deref().map(|u| names.user(u).unwrap_or(u));
    doc.opt_str("author", author);
    doc.opt_str("author_id", file.user.as_deref());
    doc.json("channel_ids", &json!(channels));
    let channel_list: Vec<&str> = channels
        .iter()
        .map(|c| channel_names.get(c).map_or(c.as_str(), String::as_str))
        .collect();
    doc.json("channels", &json!(channel_list));
    doc.opt_i64("created", file.created);
    doc.opt_str("url", file.permalink.as_deref());
    doc.opt_str("message_id", Some(&file.message_id));
    doc.opt_str("thread_ts", file.thread_ts.as_deref());
    match &content {
        Some(Content::Text(text)) => {
            doc.str("body", text);
        }
        Some(Content::Skipped(reason)) => {
            doc.str("content_skipped", reason);
        }
        Some(Content::Attachment(_)) | None => {}
    }
    doc.timestamp(file.created.and_then(epoch_timestamp));
    doc.finish(file.id.clone())
}

/// A file's conversations and readers' identities so far.
type Sightings = (BTreeSet<String>, BTreeSet<String>);

/// Which conversations (and readers) each file was seen in during this sync.
#[derive(Debug, Default)]
pub struct Seen {
    files: Mutex<HashMap<String, Sightings>>,
}

impl Seen {
    /// Adds a sighting; `Some` (the conversations and readers so far) when it is new for
    /// this file (the document must be written), `None` when nothing changed.
    pub fn note(
        &self,
        file: &str,
        channel: &str,
        readers: Option<&AccessControl>,
    ) -> Option<(BTreeSet<String>, Option<AccessControl>)> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let entry = files.entry(file.to_string()).or_default();
        if !entry.0.insert(channel.to_string()) {
            return None;
        }
        if let Some(r) = readers {
            entry.1.extend(r.identities().iter().cloned());
        }
        let readers = readers.map(|_| AccessControl::new(entry.1.iter().cloned()));
        Some((entry.0.clone(), readers))
    }
}

/// What the source needs to read files: its HTTP client, the download gate (one file at
/// a time), the counts and the sightings.
pub struct Files {
    pub options: FileOptions,
    /// Retries of one download ([`download_retry`]).
    pub retry: RetryParams,
    pub http: reqwest::Client,
    pub gate: tokio::sync::Semaphore,
    pub counters: Counters,
    pub seen: Seen,
    /// Whether the connector's pipeline extracts binary content.
    pub pipeline_extracts: std::sync::atomic::AtomicBool,
}

impl Files {
    /// Ready for a sync with `options`.
    pub fn new(
        options: FileOptions,
        timeout: Duration,
        client_retry: &RetryParams,
    ) -> Result<Files, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            // Slack may redirect a download; reqwest drops `Authorization` across hosts.
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("elastic-connectors-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Configuration(format!("file download client: {e}")))?;
        Ok(Files {
            options,
            retry: download_retry(client_retry),
            http,
            gate: tokio::sync::Semaphore::new(1),
            counters: Counters::default(),
            seen: Seen::default(),
            pipeline_extracts: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The content of `file` (never an error: failures are counted and named).
    pub async fn content(
        &self,
        file: &SharedFile,
        api_base: &str,
        token: &Secret,
        cancel: &CancellationToken,
    ) -> Content {
        let kind = kind(file.mimetype.as_deref(), file.filetype.as_deref());
        let binary_ok = self.pipeline_extracts.load(Ordering::Relaxed);
        let skipped = if self.options.max_bytes == 0 {
            Some("content_disabled")
        } else if file.external {
            Some("external")
        } else if kind == Kind::Binary && !binary_ok {
            Some("binary_without_pipeline")
        } else if file.size.is_some_and(|s| s > self.options.max_bytes) {
            Some("too_large")
        } else if kind == Kind::Binary
            && file
                .size
                .is_some_and(|s| s > self.options.max_pipeline_bytes)
        {
            Some(TOO_LARGE_FOR_PIPELINE)
        } else if file.url.is_none() {
            Some("no_url")
        } else {
            None
        };
        if let Some(reason) = skipped {
            let counter = match reason {
                "binary_without_pipeline" => &self.counters.skipped_binary_without_pipeline,
                "too_large" => &self.counters.skipped_too_large,
                TOO_LARGE_FOR_PIPELINE => &self.counters.skipped_too_large_for_pipeline,
                _ => &self.counters.skipped_other,
            };
            Counters::add(counter, 1);
            return Content::Skipped(reason);
        }
        let url = file.url.as_deref().unwrap_or_default();
        // A binary is read as base64 up to the pipeline's cap (when that is the lower one).
        let (cap, body, pipeline_cap) = match kind {
            Kind::Binary => {
                let cap = self.options.max_bytes.min(self.options.max_pipeline_bytes);
                (cap, Body::Base64, cap < self.options.max_bytes)
            }
            Kind::Text | Kind::Html => (self.options.max_bytes, Body::Bytes, false),
        };
        // One file's bytes in memory at a time.
        let _permit = self.gate.acquire().await;
        let attempt = || download(&self.http, url, api_base, token, cap, body);
        let on_retry = |failure: &Failure, n: u32, delay: Duration| {
            Counters::add(&self.counters.download_retries, 1);
            tracing::debug!(file_id = %file.id, retry = n, ?delay, detail = ?failure, "retrying a slack file download");
        };
        let cancelled = async {
            cancel.cancelled().await;
            Failure::Cancelled
        };
        let result = crate::retry::retry(&self.retry, attempt, on_retry, cancelled).await;
        let downloaded = match result {
            Ok(downloaded) => downloaded,
            Err(Failure::TooLarge) if pipeline_cap => {
                Counters::add(&self.counters.skipped_too_large_for_pipeline, 1);
                return Content::Skipped(TOO_LARGE_FOR_PIPELINE);
            }
            Err(failure) => {
                tracing::warn!(
                    file_id = %file.id,
                    reason = failure.reason(),
                    detail = ?failure,
                    "slack file content skipped"
                );
                self.counters.failed(&failure);
                return Content::Skipped(failure.reason());
            }
        };
        Counters::add(&self.counters.downloaded, 1);
        match downloaded {
            Downloaded::Base64(b64) => {
                // 4 base64 characters per 3 bytes, less the padding.
                let padding = b64.bytes().rev().take_while(|b| *b == b'=').count();
                let bytes = (b64.len() / 4 * 3).saturating_sub(padding);
                Counters::add(&self.counters.bytes_downloaded, bytes as u64);
                Counters::add(&self.counters.sent_to_pipeline, 1);
                Content::Attachment(b64)
            }
            Downloaded::Bytes(bytes) => {
                Counters::add(&self.counters.bytes_downloaded, bytes.len() as u64);
                Counters::add(&self.counters.extracted, 1);
                // Valid UTF-8 (the usual case) becomes the text without a copy.
                let text = String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                match kind {
                    Kind::Html => Content::Text(html_text(&text)),
                    _ => Content::Text(text),
                }
            }
        }
    }

    /// Counts a document written.
    pub fn written(&self) {
        Counters::add(&self.counters.documents, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind(Some("text/plain"), Some("text")), Kind::Text);
        assert_eq!(kind(Some("text/csv"), None), Kind::Text);
        assert_eq!(kind(Some("application/json"), Some("json")), Kind::Text);
        assert_eq!(
            kind(Some("application/octet-stream"), Some("rust")),
            Kind::Text
        );
        assert_eq!(kind(Some("text/html; charset=utf-8"), None), Kind::Html);
        assert_eq!(kind(Some("image/png"), Some("png")), Kind::Binary);
        assert_eq!(kind(None, None), Kind::Binary);
    }

    #[test]
    fn base64_from_chunks_equals_base64_at_once() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let at_once = base64::engine::general_purpose::STANDARD.encode(&data);
        for split in [1usize, 2, 3, 4, 5, 7, 64, 999, 1000] {
            for len in [0usize, 1, 2, 3, 10, 1000] {
                let mut stream = Base64Stream::with_expected(len as u64);
                for chunk in data[..len].chunks(split) {
                    stream.push(chunk);
                }
                assert_eq!(stream.len(), len as u64);
                let expected = base64::engine::general_purpose::STANDARD.encode(&data[..len]);
                assert_eq!(stream.finish(), expected, "split {split} len {len}");
            }
        }
        let mut stream = Base64Stream::default();
        stream.push(&data);
        assert_eq!(stream.finish(), at_once);
        // The base64 becomes the document's buffer, in place (no second copy).
        let mut stream = Base64Stream::with_expected(data.len() as u64);
        stream.push(&data);
        let b64 = stream.finish();
        let (at, capacity) = (b64.as_ptr(), b64.capacity());
        let file = SharedFile {
            id: "F1".into(),
            channel_id: "C1".into(),
            message_id: "C1-1.1".into(),
            ..SharedFile::default()
        };
        let channels = BTreeSet::from(["C1".to_string()]);
        let doc = file_doc(
            &file,
            &channels,
            &Names::default(),
            &HashMap::new(),
            Content::Attachment(b64),
        );
        assert_eq!(doc.fields()["_attachment"], at_once.as_str());
        assert_eq!(doc.fields()["type"], "file");
        assert_eq!(
            (doc.body().as_ptr(), doc.body().len() <= capacity),
            (at, true)
        );
        // A value that needs escaping is written the ordinary way.
        let doc = DocumentWriter::starting_with_string("k", "a\"b".into()).finish("x".into());
        assert_eq!(doc.fields()["k"], "a\"b");
    }

    #[test]
    fn download_retries_are_bounded_and_by_kind() {
        use crate::retry::Retryable;
        let client = crate::sources::slack::client::DEFAULT_RETRY;
        let params = download_retry(&client);
        assert_eq!(params.max_retries, 3);
        assert_eq!(params.max_throttled, 5);
        assert_eq!(params.max_elapsed, Some(Duration::from_secs(120)));
        assert_eq!(params.base_delay, client.base_delay);
        let after = Some(Duration::from_secs(2));
        assert_eq!(Failure::Throttled(after).retry_kind(), RetryKind::Throttled);
        assert_eq!(Failure::Throttled(after).retry_after(), after);
        assert_eq!(Failure::Status(503).retry_kind(), RetryKind::Transient);
        assert_eq!(
            Failure::Other("reset".into()).retry_kind(),
            RetryKind::Transient
        );
        for permanent in [
            Failure::Status(404),
            Failure::Status(403),
            Failure::TooLarge,
            Failure::Truncated,
            Failure::UntrustedHost,
            Failure::Cancelled,
        ] {
            assert_eq!(
                permanent.retry_kind(),
                RetryKind::Permanent,
                "{permanent:?}"
            );
        }
        let counters = Counters::default();
        counters.failed(&Failure::Throttled(None));
        counters.failed(&Failure::Status(502));
        assert_eq!(counters.to_value()["failed_other"], 2);
        assert_eq!(Failure::Throttled(None).reason(), "download_failed");
    }

    #[test]
    fn html_to_text() {
        let html = "<html><head><style>p{}</style><script>var a='<b>';</script></head>\
                    <body><h1>Title</h1><p>a &amp; b&nbsp;&lt;c&gt; &#233;&#x41;</p></body></html>";
        assert_eq!(html_text(html), "Title a & b <c> éA");
        assert_eq!(html_text("no tags"), "no tags");
        assert_eq!(html_text("<unclosed"), "");
        assert_eq!(html_text("x &unknown; &"), "x &unknown; &");
    }

    #[test]
    fn trusted_hosts() {
        let api = "https://slack.com/api";
        assert!(trusted("https://files.slack.com/files-pri/T1-F1/x", api));
        assert!(!trusted("http://files.slack.com/x", api));
        assert!(!trusted("https://files.slack.com.evil.io/x", api));
        assert!(!trusted("https://evil.io/slack.com", api));
        assert!(trusted(
            "http://127.0.0.1:9/_files/F1",
            "http://127.0.0.1:9/api"
        ));
        assert!(!trusted(
            "http://127.0.0.1:8/_files/F1",
            "http://127.0.0.1:9/api"
        ));
        assert!(!trusted("not a url", api));
    }

    #[test]
    fn options_and_documents() {
        let mut config = Configuration::new();
        add_fields(&mut config);
        assert_eq!(from_configuration(&config).unwrap(), FileOptions::default());
        config.get_mut(MAX_SIZE_KEY).unwrap().value = json!(101);
        let e = from_configuration(&config).unwrap_err().to_string();
        assert!(e.contains(MAX_SIZE_LABEL), "{e}");
        config.get_mut(MAX_SIZE_KEY).unwrap().value = json!(10);
        config.get_mut(PIPELINE_MAX_KEY).unwrap().value = json!(-1);
        let e = from_configuration(&config).unwrap_err().to_string();
        assert!(e.contains(PIPELINE_MAX_LABEL), "{e}");
        config.get_mut(PIPELINE_MAX_KEY).unwrap().value = json!("many");
        let e = from_configuration(&config).unwrap_err().to_string();
        assert!(e.contains(PIPELINE_MAX_LABEL), "{e}");
        config.get_mut(PIPELINE_MAX_KEY).unwrap().value = json!(3);
        assert_eq!(
            from_configuration(&config).unwrap().max_pipeline_bytes,
            3_000_000
        );
        config.get_mut(MAX_SIZE_KEY).unwrap().value = json!(0);
        config.get_mut(FILES_KEY).unwrap().value = json!(true);
        let options = from_configuration(&config).unwrap();
        assert!(options.sync);
        assert_eq!(options.max_bytes, 0);

        let message: Message<'_> = serde_json::from_str(
            r#"{"ts": "2.000001", "thread_ts": "1.000001", "files": [
                {"id": "F1", "name": "a.txt", "mimetype": "text/plain", "size": 3,
                 "user": "U1", "created": 1700000000, "url_private": "https://files.slack.com/a",
                 "permalink": "https://x.slack.com/files/U1/F1/a.txt"},
                {"id": "F2", "mode": "tombstone"}, {"id": "F3", "mode": "hidden_by_limit"}]}"#,
        )
        .unwrap();
        let files = SharedFile::of_message(&message, "C1");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].message_id, "C1-2.000001");
        assert_eq!(files[0].thread_ts.as_deref(), Some("1.000001"));
        let channels: BTreeSet<String> = ["C1".to_string()].into();
        let names: HashMap<String, String> = [("C1".into(), "general".into())].into();
        let doc = file_doc(
            &files[0],
            &channels,
            &Names::default(),
            &names,
            Content::Skipped("too_large"),
        );
        assert_eq!(doc.id(), "F1");
        let f = doc.fields();
        assert_eq!(f["type"], "file");
        assert_eq!(f["channels"], json!(["general"]));
        assert_eq!(f["channel_ids"], json!(["C1"]));
        assert_eq!(f["content_skipped"], "too_large");
        assert_eq!(f["size"], 3);
        assert_eq!(f["_timestamp"], json!("2023-11-14T22:13:20.000000Z"));
        assert!(f.get("body").is_none());
        // A file object without its id is refused (strict decoding).
        assert!(
            serde_json::from_str::<Message<'_>>(r#"{"ts":"1.1","files":[{"name":"x"}]}"#).is_err()
        );
    }

    #[test]
    fn sightings() {
        let seen = Seen::default();
        let a = AccessControl::new(["channel:C1".to_string()]);
        let b = AccessControl::new(["channel:C2".to_string()]);
        let (channels, readers) = seen.note("F1", "C1", Some(&a)).unwrap();
        assert_eq!(channels.len(), 1);
        assert_eq!(readers.unwrap().identities(), ["channel:C1"]);
        assert!(seen.note("F1", "C1", Some(&a)).is_none());
        let (channels, readers) = seen.note("F1", "C2", Some(&b)).unwrap();
        assert_eq!(channels.len(), 2);
        assert_eq!(readers.unwrap().identities().len(), 2);
    }
}
