//! Transparent forwarding of every request the shim does not implement itself.
//!
//! Invariants:
//! - Method, path, query, headers (minus hop-by-hop ones and `Host`), and body are forwarded
//!   unchanged; the body streams in both directions, so large `_bulk` bodies and scroll answers
//!   are never held whole in the shim.
//! - Status, headers (minus hop-by-hop ones) and body of osmem's answer come back unchanged;
//!   the media-type and product-header fix-ups happen later, in one place (`router`).
//! - An unreachable osmem is a 502 with an ES-shaped body, never a panic or a hung request.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Method, Response};
use futures::TryStreamExt;

use crate::error::{ShimError, ShimResult};
use crate::upstream::Upstream;

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus those the HTTP
/// client sets itself.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "expect"
    )
}

/// Copies headers, leaving hop-by-hop ones out.
pub fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !is_hop_by_hop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// What to send upstream.
pub enum OutBody {
    Stream(Body),
    Bytes(Bytes),
}

/// Forwards a request to osmem and turns its answer into a streaming response.
pub async fn forward(
    upstream: &Upstream,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: OutBody,
) -> ShimResult<Response<Body>> {
    let url = format!("{}{}", upstream.base(), path_and_query);
    let mut out_headers = end_to_end(headers);
    if let OutBody::Bytes(b) = &body {
        // The length is exact now; the client's Content-Length may describe another body
        // (a rewritten bulk), and `RequestBuilder::header` would append a second one.
        out_headers.insert(
            axum::http::header::CONTENT_LENGTH,
            axum::http::HeaderValue::from(b.len()),
        );
    }
    let mut req = upstream
        .client()
        .request(method.clone(), &url)
        .headers(out_headers);
    req = match body {
        OutBody::Bytes(b) => req.body(b),
        OutBody::Stream(b) => {
            if method == Method::GET || method == Method::HEAD || method == Method::DELETE {
                // Bodies on these are rare but legal in ES (GET _search with a body); a stream
                // would turn into chunked encoding, so only stream when a length is known or the
                // method normally carries a body.
                if headers.contains_key(axum::http::header::CONTENT_LENGTH)
                    || headers.contains_key(axum::http::header::TRANSFER_ENCODING)
                {
                    req.body(reqwest::Body::wrap_stream(b.into_data_stream()))
                } else {
                    req
                }
            } else {
                req.body(reqwest::Body::wrap_stream(b.into_data_stream()))
            }
        }
    };
    let resp = req
        .send()
        .await
        .map_err(|e| ShimError::Unreachable(format!("{url}: {e}")))?;
    let mut builder = Response::builder().status(resp.status());
    if let Some(h) = builder.headers_mut() {
        *h = end_to_end(resp.headers());
    }
    let stream = resp.bytes_stream().map_err(std::io::Error::other);
    builder
        .body(Body::from_stream(stream))
        .map_err(|e| ShimError::Unreachable(format!("cannot build response: {e}")))
}
