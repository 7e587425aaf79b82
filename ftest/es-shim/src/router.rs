//! Request dispatch: decide per request whether the shim answers it or osmem does.
//!
//! Invariants:
//! - Matching is by method and decoded path segments; anything not listed here is forwarded
//!   unchanged ([`crate::proxy`]).
//! - Every `_connector` request is recorded, then checked against the conformance table
//!   ([`crate::conformance`]) before its handler runs: what Elasticsearch refuses, the shim
//!   refuses with the same error, and changes nothing.
//! - Every response, whoever produced it, carries `X-Elastic-Product: Elasticsearch`, and JSON
//!   responses to requests that used a vendor media type carry
//!   `application/vnd.elasticsearch+json;compatible-with=N`.
//! - Shim-handled request bodies are read whole (they are small JSON documents or bulk bodies
//!   the daemon bounds to a few MiB); passthrough bodies stream.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use serde_json::Value;

use crate::body::Query;
use crate::conformance::{self, Recorded};
use crate::error::{ShimError, ShimResult};
use crate::proxy::{forward, OutBody};
use crate::upstream::decode;
use crate::{connector, identity, ingest, media, sync_job, App};

/// Largest request body the shim reads whole (ES's default `http.max_content_length`).
const MAX_BODY: usize = 100 * 1024 * 1024;

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

pub fn bytes_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

fn error_response(err: &ShimError) -> Response<Body> {
    if let ShimError::Unreachable(msg) = err {
        tracing::warn!(error = %msg, "upstream unreachable");
    }
    json_response(err.status_code(), &err.body())
}

/// The axum entry point.
pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let compat = media::normalize_request(&mut parts.headers);
    let is_head = parts.method == Method::HEAD;
    let mut resp = match dispatch(&app, parts, body).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    let headers = resp.headers_mut();
    headers.insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    if let Some(compat) = compat {
        if media::is_json(headers.get(header::CONTENT_TYPE))
            || (is_head && !headers.contains_key(header::CONTENT_TYPE))
        {
            let major = app.es_version.split('.').next().unwrap_or("9").to_string();
            headers.insert(
                header::CONTENT_TYPE,
                media::vendor_response_type(&compat, &major),
            );
        }
    }
    resp
}

async fn read_body(body: Body) -> ShimResult<Bytes> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        ShimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "content_too_long_exception",
            format!("cannot read request body: {e}"),
        )
    })
}

async fn dispatch(
    app: &App,
    parts: axum::http::request::Parts,
    body: Body,
) -> ShimResult<Response<Body>> {
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().map(String::from);
    let query: Query = raw_query
        .as_deref()
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.as_str();

    // Answers produced from a JSON value.
    macro_rules! answer {
        ($fut:expr) => {{
            let (status, value) = $fut?;
            return Ok(json_response(status, &value));
        }};
    }
    macro_rules! body {
        () => {
            read_body(body).await?
        };
    }

    if s.first() == Some(&"_connector") {
        let raw = body!();
        return dispatch_connector(app, &method, &s, &query, raw).await;
    }
    app.recorder.other(m, &s);

    match (m, s.as_slice()) {
        ("GET" | "HEAD", []) => {
            if method == Method::HEAD {
                let mut r = Response::new(Body::empty());
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=UTF-8"),
                );
                return Ok(r);
            }
            return Ok(json_response(StatusCode::OK, &identity::root(app)));
        }
        ("GET", ["_license"]) => return Ok(json_response(StatusCode::OK, &identity::license())),
        ("GET", ["_security", "_authenticate"]) => {
            return Ok(json_response(StatusCode::OK, &identity::authenticate()))
        }
        ("POST", [index, "_pit"]) if !index.starts_with('_') => {
            answer!(identity::open_pit(app, index, &query).await)
        }
        ("DELETE", ["_pit"]) => answer!(identity::close_pit(app, &body!()).await),

        // Ingest pipelines.
        ("GET", ["_ingest", "pipeline"]) => return Ok(get_pipelines(app, None)),
        ("GET", ["_ingest", "pipeline", id]) => return Ok(get_pipelines(app, Some(id))),
        ("PUT", ["_ingest", "pipeline", id]) => {
            let raw = body!();
            let def: Value = serde_json::from_slice(&raw).map_err(|e| {
                ShimError::new(
                    StatusCode::BAD_REQUEST,
                    "parse_exception",
                    format!("failed to parse pipeline: {e}"),
                )
            })?;
            app.pipelines.put(id, def)?;
            return Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({"acknowledged": true}),
            ));
        }
        ("DELETE", ["_ingest", "pipeline", id]) => {
            if app.pipelines.delete(id) == 0 {
                return Err(ShimError::not_found(format!("pipeline [{id}] is missing")));
            }
            return Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({"acknowledged": true}),
            ));
        }
        ("POST" | "PUT", ["_bulk"]) | ("POST" | "PUT", [_, "_bulk"]) => {
            let default_index = if s.len() == 2 { Some(s[0]) } else { None };
            let pipeline = crate::body::param(&query, "pipeline");
            let raw = body!();
            if let Some(answer) = app.sink.bulk(&raw, default_index) {
                return Ok(json_response(StatusCode::OK, &answer));
            }
            return ingest::bulk(
                &app.upstream,
                &app.pipelines,
                method,
                &path,
                raw_query.as_deref(),
                pipeline,
                default_index,
                &parts.headers,
                raw,
            )
            .await;
        }
        ("POST" | "PUT", [index, "_doc" | "_create", rest @ ..])
            if rest.len() <= 1 && !index.starts_with('_') =>
        {
            let pipeline =
                crate::body::param(&query, "pipeline").filter(|p| !p.is_empty() && *p != "_none");
            if let Some(pipeline) = pipeline {
                let raw = body!();
                return ingest::single(
                    &app.upstream,
                    &app.pipelines,
                    method,
                    &path,
                    raw_query.as_deref(),
                    pipeline,
                    index,
                    rest.first().copied(),
                    &parts.headers,
                    raw,
                )
                .await;
            }
            if crate::body::param(&query, "pipeline").is_some() {
                // `_none` or empty: drop the parameter, index as is.
                let pq = format!(
                    "{path}{}",
                    ingest::strip_param(raw_query.as_deref(), "pipeline")
                );
                return forward(
                    &app.upstream,
                    method,
                    &pq,
                    &parts.headers,
                    OutBody::Stream(body),
                )
                .await;
            }
        }

        _ => {}
    }

    let pq = match &raw_query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    forward(
        &app.upstream,
        method,
        &pq,
        &parts.headers,
        OutBody::Stream(body),
    )
    .await
}

/// The `_connector` API: recorded, checked against the conformance table (parameters, body
/// or none, body fields and types, with Elasticsearch's errors), then answered.
async fn dispatch_connector(
    app: &App,
    method: &Method,
    s: &[&str],
    query: &Query,
    raw: Bytes,
) -> ShimResult<Response<Body>> {
    let m = method.as_str();
    // Elasticsearch names the decoded path in its errors.
    let path = format!("/{}", s.join("/"));
    app.recorder.connector(Recorded {
        method: m.to_string(),
        segments: s.iter().map(|x| x.to_string()).collect(),
        path: path.clone(),
        query: query.clone(),
        body: raw.clone(),
    });
    let table = conformance::table();
    let Some(endpoint) = table.find(m, s) else {
        return Err(no_handler(method, &path));
    };
    conformance::check(table, endpoint, m, &path, query, &raw)?;
    let raw = &raw;

    macro_rules! answer {
        ($fut:expr) => {{
            let (status, value) = $fut?;
            return Ok(json_response(status, &value));
        }};
    }

    match (m, s) {
        // Connector secrets.
        ("POST", ["_connector", "_secret"]) => answer!(sync_job::secret_post(app, raw).await),
        ("GET", ["_connector", "_secret", id]) => answer!(sync_job::secret_get(app, id).await),
        ("PUT", ["_connector", "_secret", id]) => {
            answer!(sync_job::secret_put(app, id, raw).await)
        }
        ("DELETE", ["_connector", "_secret", id]) => {
            answer!(sync_job::secret_delete(app, id).await)
        }

        // Sync jobs.
        ("POST", ["_connector", "_sync_job"]) => answer!(sync_job::create(app, raw).await),
        ("GET", ["_connector", "_sync_job"]) => answer!(sync_job::list(app, query).await),
        ("GET", ["_connector", "_sync_job", id]) => answer!(sync_job::get(app, id).await),
        ("DELETE", ["_connector", "_sync_job", id]) => answer!(sync_job::delete(app, id).await),
        ("PUT", ["_connector", "_sync_job", id, action]) => match *action {
            "_check_in" => answer!(sync_job::check_in(app, id).await),
            "_claim" => answer!(sync_job::claim(app, id, raw).await),
            "_stats" => answer!(sync_job::stats(app, id, raw).await),
            "_cancel" => answer!(sync_job::cancel(app, id).await),
            "_error" => answer!(sync_job::error(app, id, raw).await),
            _ => Err(no_handler(method, &path)),
        },

        // Connectors.
        ("GET", ["_connector"]) => answer!(connector::list(app, query).await),
        ("POST" | "PUT", ["_connector"]) => answer!(connector::create(app, None, raw).await),
        ("PUT", ["_connector", id]) => answer!(connector::create(app, Some(id), raw).await),
        ("GET", ["_connector", id]) => answer!(connector::get(app, id, query).await),
        ("DELETE", ["_connector", id]) => answer!(connector::delete(app, id, query).await),
        ("PUT", ["_connector", id, "_filtering", "_validation"]) => {
            answer!(connector::filtering_validation(app, id, raw).await)
        }
        ("PUT", ["_connector", id, "_filtering", "_activate"]) => {
            answer!(connector::filtering_activate(app, id).await)
        }
        ("PUT", ["_connector", id, action]) => match *action {
            "_check_in" => answer!(connector::check_in(app, id).await),
            "_configuration" => answer!(connector::configuration(app, id, raw).await),
            "_scheduling" => answer!(connector::scheduling(app, id, raw).await),
            "_filtering" => answer!(connector::filtering(app, id, raw).await),
            "_status" => answer!(connector::status(app, id, raw).await),
            "_error" => answer!(connector::error(app, id, raw).await),
            "_last_sync" => answer!(connector::last_sync(app, id, raw).await),
            "_index_name" => answer!(connector::index_name(app, id, raw).await),
            "_name" => answer!(connector::name(app, id, raw).await),
            "_pipeline" => answer!(connector::pipeline(app, id, raw).await),
            "_service_type" => answer!(connector::service_type(app, id, raw).await),
            "_native" => answer!(connector::native(app, id, raw).await),
            "_features" => answer!(connector::features(app, id, raw).await),
            "_api_key_id" => answer!(connector::api_key_id(app, id, raw).await),
            _ => Err(no_handler(method, &path)),
        },
        _ => Err(no_handler(method, &path)),
    }
}

/// ES's answer for a path/method it has no handler for.
fn no_handler(method: &Method, path: &str) -> ShimError {
    ShimError::new(
        StatusCode::BAD_REQUEST,
        "illegal_argument_exception",
        format!("no handler found for uri [{path}] and method [{method}]"),
    )
}

/// `GET /_ingest/pipeline[/{id}]`: 404 with `{}` when nothing matches an explicit id, as ES.
fn get_pipelines(app: &App, ids: Option<&str>) -> Response<Body> {
    let found = app.pipelines.matching(ids);
    let status = if ids.is_some() && found.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    let map: serde_json::Map<String, Value> = found.into_iter().collect();
    json_response(status, &Value::Object(map))
}
