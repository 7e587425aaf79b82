//! Elasticsearch identity (`GET /`), licence and security stubs, and ES-style point in time.
//!
//! Invariants:
//! - `GET /` describes an ES 9.x (or whatever `--es-version` says) default-flavour cluster, so
//!   version checks of connectors and clients pass against osmem.
//! - `POST /{index}/_pit` and `DELETE /_pit` map onto osmem's OpenSearch-style PIT API; searches
//!   with a `pit` body already work on osmem and already return `pit_id`, so they pass through.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::body::{self, Query};
use crate::error::{ShimError, ShimResult};
use crate::upstream::encode;
use crate::App;

type Answer = ShimResult<(StatusCode, Value)>;

/// `GET /`.
pub fn root(app: &App) -> Value {
    let v = &app.es_version;
    let major: u32 = v
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(9);
    // What a real build of that major reports.
    let (lucene, wire, index_compat) = match major {
        9 => ("10.3.1", "8.19.0", "8.0.0"),
        8 => ("9.12.0", "7.17.0", "7.0.0"),
        _ => ("10.3.1", "8.19.0", "8.0.0"),
    };
    json!({
        "name": "es-shim",
        "cluster_name": "osmem",
        "cluster_uuid": app.cluster_uuid,
        "version": {
            "number": v,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "0000000000000000000000000000000000000000",
            "build_date": "2025-10-01T00:00:00.000000000Z",
            "build_snapshot": false,
            "lucene_version": lucene,
            "minimum_wire_compatibility_version": wire,
            "minimum_index_compatibility_version": index_compat,
        },
        "tagline": "You Know, for Search",
    })
}

/// `GET /_license`: an active trial (platinum features available, as the framework checks for
/// DLS).
pub fn license() -> Value {
    json!({"license": {
        "status": "active",
        "uid": "00000000-0000-0000-0000-000000000000",
        "type": "trial",
        "issue_date": "2025-01-01T00:00:00.000Z",
        "issue_date_in_millis": 1735689600000u64,
        "expiry_date": "2099-01-01T00:00:00.000Z",
        "expiry_date_in_millis": 4070908800000u64,
        "max_nodes": 1000,
        "max_resource_units": null,
        "issued_to": "es-shim",
        "issuer": "elasticsearch",
        "start_date_in_millis": -1,
    }})
}

/// `GET /_security/_authenticate`: whoever asks is the superuser.
pub fn authenticate() -> Value {
    json!({
        "username": "elastic",
        "roles": ["superuser"],
        "full_name": null,
        "email": null,
        "metadata": {"_reserved": true},
        "enabled": true,
        "authentication_realm": {"name": "reserved", "type": "reserved"},
        "lookup_realm": {"name": "reserved", "type": "reserved"},
        "authentication_type": "realm",
    })
}

/// `POST /{index}/_pit?keep_alive=`.
pub async fn open_pit(app: &App, index: &str, query: &Query) -> Answer {
    let Some(keep_alive) = body::param(query, "keep_alive") else {
        return Err(ShimError::validation(&[
            "[keep_alive] is not specified".to_string()
        ]));
    };
    let mut path = format!(
        "/{}/_search/point_in_time?keep_alive={}",
        encode_index(index),
        encode(keep_alive)
    );
    for p in [
        "routing",
        "preference",
        "expand_wildcards",
        "ignore_unavailable",
    ] {
        if let Some(v) = body::param(query, p) {
            path.push_str(&format!("&{p}={}", encode(v)));
        }
    }
    let answer = app.upstream.ok(Method::POST, &path, None).await?;
    let id = answer.get("pit_id").cloned().unwrap_or(Value::Null);
    let mut out = json!({"id": id});
    if let Some(shards) = answer.get("_shards") {
        out["_shards"] = shards.clone();
    }
    Ok((StatusCode::OK, out))
}

/// Index expressions keep `,` and `*` (ES accepts lists and wildcards here).
fn encode_index(index: &str) -> String {
    index
        .split(',')
        .map(|part| encode(part).replace("%2A", "*"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `DELETE /_pit {"id": …}`.
pub async fn close_pit(app: &App, raw: &Bytes) -> Answer {
    let b = body::required(raw, "close_point_in_time", &["id"])?;
    let id = body::opt_str(&b, "id", "close_point_in_time")?
        .ok_or_else(|| ShimError::validation(&["point in time id is not provided".to_string()]))?;
    let (status, answer) = app
        .upstream
        .send(
            Method::DELETE,
            "/_search/point_in_time",
            Some(&json!({"pit_id": [id]})),
        )
        .await?;
    if !status.is_success() && status != StatusCode::NOT_FOUND {
        return Err(ShimError::Upstream {
            status,
            body: answer,
        });
    }
    let freed = answer
        .get("pits")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|p| p["successful"] == Value::Bool(true))
                .count()
        })
        .unwrap_or(0);
    // ES answers 404 when nothing was freed.
    let code = if freed == 0 {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok((code, json!({"succeeded": true, "num_freed": freed})))
}
