//! File contents and downloads: what `url_private` / `url_private_download` of a shared
//! file serve (`GET /files-pri/<team>-<file id>/<name>[/download/<name>]`, Slack's shape,
//! under the workspace's `files_base`: the simulator's own address once it listens).
//!
//! Rules (the connector implements exactly these; `expected` rule 9):
//! - a download needs `Authorization: Bearer <token>` of a known token with `files:read`;
//!   anything else answers 403 (real Slack answers a login page);
//! - every file has a class from its id's hash ([`class`]): one in eight answers 404
//!   (deleted meanwhile), one in eight 403 (access revoked), one in eight a body cut short
//!   (`Content-Length` larger than what is sent), one in eight is larger than 10 MB
//!   (`size` says so; its body is generated, never stored); the rest answer their content;
//! - fault rules of method `files-pri` (`/_sim/faults`; a rule's `channel` names a file
//!   id) answer their HTTP status first (with `Retry-After` when given);
//! - one in eight binary files that answer their content is [`LARGE_SIZE`], just under the
//!   connector's default cap, and another one in eight [`PIPELINE_SIZE`], just under its
//!   default cap of binaries sent to the pipeline: what bounds the memory of content sent to
//!   the ingest pipeline (`max_pipeline_file_size_mb`) is exercised by the medium workspace;
//! - content is generated from the id (deterministic) and is exactly `size` bytes: text,
//!   markdown, CSV, JSON and HTML files are text ([`text_prefix`] is what a reader of the
//!   text sees first), PNG, PDF and SVG files are binary (SVG is XML but an image: not
//!   extracted as text, as Slack's own preview does not).

use crate::model::mix;

/// Above the connector's default cap (10 MB).
pub const HUGE_SIZE: u64 = 12_000_000;

/// Just under the connector's default cap (10 MB): a binary file a pipeline would extract.
pub const LARGE_SIZE: u64 = 9_000_000;
/// Just under the connector's default cap of binaries sent to the pipeline (1 MB).
pub const PIPELINE_SIZE: u64 = 950_000;

/// What a file's download does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ok,
    Huge,
    NotFound,
    Forbidden,
    Truncated,
}

fn id_hash(id: &str) -> u64 {
    mix(&[id
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))])
}

/// The class of file `id` (rules above).
pub fn class(id: &str) -> Class {
    match id_hash(id) % 8 {
        0 => Class::NotFound,
        1 => Class::Forbidden,
        2 => Class::Truncated,
        3 => Class::Huge,
        _ => Class::Ok,
    }
}

/// A file's size: huge ones 12 MB, one in eight binary files that answer 9 MB and
/// another one in eight 950 kB, the rest 200 B – 200 kB.
pub fn size(id: &str, filetype: &str) -> u64 {
    let binary_ok = class(id) == Class::Ok && !is_text(filetype);
    match class(id) {
        Class::Huge => HUGE_SIZE,
        _ if binary_ok && (id_hash(id) >> 40) % 16 < 2 => LARGE_SIZE,
        _ if binary_ok && (id_hash(id) >> 40) % 16 < 4 => PIPELINE_SIZE,
        _ => 200 + (id_hash(id) >> 8) % 200_000,
    }
}

/// Whether the file type is read as text.
pub fn is_text(filetype: &str) -> bool {
    matches!(filetype, "text" | "markdown" | "csv" | "json" | "html")
}

/// The head of a file's content, before the filler.
fn head(id: &str, filetype: &str) -> Vec<u8> {
    match filetype {
        "text" => format!("Notes {id}\n").into_bytes(),
        "markdown" => format!("# Notes {id}\n\n").into_bytes(),
        "csv" => format!("id,file\n1,{id}\n").into_bytes(),
        "json" => format!("{{\"file\": \"{id}\", \"rows\": [\n").into_bytes(),
        "html" => format!(
            "<html><head><style>p {{ color: red }}</style></head><body><h1>Notes {id}</h1>\n"
        )
        .into_bytes(),
        "png" => b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
        "pdf" => b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
        _ => format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- {id} -->").into_bytes(),
    }
}

/// What the text of a text file starts with (HTML: once stripped to text).
pub fn text_prefix(id: &str, filetype: &str) -> Option<String> {
    is_text(filetype).then(|| match filetype {
        "html" => format!("Notes {id}"),
        _ => String::from_utf8_lossy(&head(id, filetype)).into_owned(),
    })
}

/// The whole content: the head, then filler lines (text) or bytes (binary), `size` bytes.
pub fn content(id: &str, filetype: &str, size: u64) -> Vec<u8> {
    let size = size as usize;
    let mut out = head(id, filetype);
    out.reserve(size.saturating_sub(out.len()));
    let mut n = 0u64;
    while out.len() < size {
        if is_text(filetype) {
            let line = match filetype {
                "csv" => format!("{},row {n}\n", n + 2),
                "json" => format!("{{\"n\": {n}}},\n"),
                "html" => format!("<p>Paragraph {n} &amp; more</p>\n"),
                _ => format!("Line {n} of the notes.\n"),
            };
            out.extend_from_slice(line.as_bytes());
        } else {
            out.extend_from_slice(&mix(&[id_hash(id), n]).to_le_bytes());
        }
        n += 1;
    }
    out.truncate(size);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_and_sized() {
        for ft in [
            "text", "markdown", "csv", "json", "html", "png", "pdf", "svg",
        ] {
            let a = content("F123", ft, 5_000);
            assert_eq!(a.len(), 5_000);
            assert_eq!(a, content("F123", ft, 5_000));
            if let Some(prefix) = text_prefix("F123", ft) {
                if ft != "html" {
                    assert!(a.starts_with(prefix.as_bytes()), "{ft}");
                }
            }
        }
        let sizes: Vec<u64> = (0..400).map(|i| size(&format!("F{i:09}"), "pdf")).collect();
        assert!(sizes.contains(&LARGE_SIZE) && sizes.contains(&PIPELINE_SIZE));
        assert!((0..400)
            .map(|i| format!("F{i:09}"))
            .filter(|id| class(id) == Class::Ok)
            .all(|id| size(&id, "csv") < 1_000_000));
        let classes: Vec<Class> = (0..200).map(|i| class(&format!("F{i:09}"))).collect();
        for c in [
            Class::Ok,
            Class::Huge,
            Class::NotFound,
            Class::Forbidden,
            Class::Truncated,
        ] {
            assert!(classes.contains(&c), "{c:?}");
        }
    }
}
