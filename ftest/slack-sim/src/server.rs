//! HTTP front: the `/api/<method>` endpoint (auth, faults, rate limits,
//! dispatch), the `/_sim/...` control API, and the connection plumbing that
//! lets a fault drop a connection without answering.
//!
//! Invariants: every `/api` answer is JSON with `x-oauth-scopes` (when a token
//! was recognised) and `x-accepted-oauth-scopes`; `/_sim` calls are never
//! counted, delayed, faulted or rate limited.

use crate::api::{self, ApiError, Params};
use crate::expected;
use crate::model::ConvKind;
use crate::state::Sim;
use crate::types::{
    ExpectedQuery, FaultAction, FaultRule, Mutation, RateLimitSettings, TokenSpec, WorkspaceSummary,
};
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Per-connection kill switch, handed to handlers as `ConnectInfo`.
#[derive(Clone, Debug, Default)]
pub struct ConnCtl(Arc<AtomicBool>);

impl ConnCtl {
    fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A TCP stream whose I/O fails once its `ConnCtl` is killed, so hyper drops
/// the connection instead of writing the response.
pub struct KillableStream {
    inner: TcpStream,
    killed: ConnCtl,
}

fn killed_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "simulated dropped connection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed.0.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed.0.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.killed.0.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub struct SimListener(pub TcpListener);

impl Listener for SimListener {
    type Io = KillableStream;
    type Addr = ConnCtl;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((s, _)) => {
                    // Small JSON answers: no Nagle delay.
                    let _ = s.set_nodelay(true);
                    let ctl = ConnCtl::default();
                    return (
                        KillableStream {
                            inner: s,
                            killed: ctl.clone(),
                        },
                        ctl,
                    );
                }
                // EMFILE and friends: back off briefly, like axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnCtl::default())
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnCtl {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/api/{method}", any(api_handler))
        .route("/_sim/stats", get(stats_get))
        .route("/_sim/stats/reset", post(stats_reset))
        .route("/_sim/mutate", post(mutate))
        .route(
            "/_sim/faults",
            get(faults_get).post(faults_set).delete(faults_clear),
        )
        .route("/_sim/rate_limits", get(rate_get).post(rate_set))
        .route("/_sim/tokens", get(tokens_get).post(tokens_set))
        .route("/_sim/expected", get(expected_get).post(expected_post))
        .route("/_sim/workspace", get(workspace_get))
        .route("/_sim/posted", get(posted_get))
        .route("/_sim/files", get(files_get))
        .route("/_sim/oauth/apps", post(oauth_app_set))
        .route("/oauth/v2/authorize", get(authorize))
        .route("/_upload/{file_id}", post(upload))
        .route("/files-pri/{key}/{*rest}", get(file_download))
        .route("/services/{team}/{bot}/{id}", post(webhook))
        .route("/link/", get(crate::socket::link))
        .route("/link", get(crate::socket::link))
        .route("/_sim/socket", get(socket_stats))
        .route("/_sim/socket/disconnect", post(socket_disconnect))
        .route("/_sim/socket/drop", post(socket_drop))
        .with_state(sim)
}

/// Merges query string and body parameters (form-urlencoded or JSON).
fn parse_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, &'static str> {
    let mut p = Params::default();
    if let Some(q) = query {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(q).map_err(|_| "invalid_arguments")?;
        p.0.extend(pairs);
    }
    if body.is_empty() {
        return Ok(p);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        let obj: serde_json::Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| "invalid_json")?;
        for (k, v) in obj {
            let s = match v {
                Value::String(s) => s,
                Value::Null => continue,
                other => other.to_string(),
            };
            p.0.insert(k, s);
        }
    } else {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| "invalid_form_data")?;
        p.0.extend(pairs);
    }
    Ok(p)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

async fn api_handler(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCtl>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    sim.record_call(&method);
    let latency = sim.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let (resp, error, ratelimited, fault) =
        answer(&sim, &conn, &method, &headers, query.as_deref(), &body).await;
    let status = match &resp {
        None => "dropped".to_string(),
        Some(r) => r.status().as_u16().to_string(),
    };
    sim.record_outcome(&method, &status, error.as_deref(), ratelimited, fault);
    match resp {
        Some(r) => r,
        None => {
            conn.kill();
            // Never written: the killed stream fails the write.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Returns (response or None = drop the connection, error code, was a 429
/// from the limiter, was a fault).
async fn answer(
    sim: &Sim,
    _conn: &ConnCtl,
    method: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> (Option<Response>, Option<String>, bool, bool) {
    let accepted = api::accepted_scopes(method);
    let fail = |e: ApiError, scopes: Option<String>| {
        let mut r = json_response(StatusCode::OK, e.body());
        if let Some(s) = scopes.and_then(|s| HeaderValue::from_str(&s).ok()) {
            r.headers_mut().insert("x-oauth-scopes", s);
        }
        r.headers_mut().insert(
            "x-accepted-oauth-scopes",
            HeaderValue::from_static(accepted),
        );
        (Some(r), Some(e.code().to_string()), false, false)
    };
    let params = match parse_params(query, headers, body) {
        Ok(p) => p,
        Err(code) => return fail(ApiError::Code(code.into()), None),
    };
    let mut faulted = false;
    // A fault that rewrites the real answer waits for it.
    let mut reshape: Option<FaultAction> = None;
    if let Some(action) = sim.fault_for(method, params.get("channel")) {
        faulted = true;
        match action {
            action if action.reshapes() => reshape = Some(action),
            FaultAction::Latency { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultAction::HttpStatus {
                status,
                retry_after,
            } => {
                let code =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut r = Response::new(Body::from(format!("simulated HTTP {status}")));
                *r.status_mut() = code;
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return (Some(r), None, false, true);
            }
            FaultAction::Error { error } => {
                let (r, e, _, _) = fail(ApiError::Code(error), None);
                return (r, e, false, true);
            }
            FaultAction::MalformedJson => {
                let r = json_response(
                    StatusCode::OK,
                    br#"{"ok":true,"messages":[{"type":"mess"#.to_vec(),
                );
                return (Some(r), None, false, true);
            }
            FaultAction::DropConnection => return (None, None, false, true),
            _ => {}
        }
    }
    let with_fault = |mut t: (Option<Response>, Option<String>, bool, bool)| {
        t.3 = faulted;
        t
    };
    if !api::METHODS.contains(&method) {
        let body =
            json!({"ok": false, "error": "unknown_method", "req_method": method}).to_string();
        return with_fault((
            Some(json_response(StatusCode::OK, body.into_bytes())),
            Some("unknown_method".into()),
            false,
            false,
        ));
    }
    if method == "api.test" {
        if let Some(e) = params.get("error") {
            return with_fault(fail(ApiError::Code(e.to_string()), None));
        }
        let args: serde_json::Map<String, Value> = params
            .0
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let body = json!({"ok": true, "args": args}).to_string();
        return with_fault((
            Some(json_response(StatusCode::OK, body.into_bytes())),
            None,
            false,
            false,
        ));
    }
    // Socket Mode's URL: an app-level token, not a bot or user token.
    if method == "apps.connections.open" {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").map(str::trim))
            .or(params.get("token"));
        let body = crate::socket::open(sim, token);
        let error = body["error"].as_str().map(str::to_string);
        let r = json_response(StatusCode::OK, body.to_string().into_bytes());
        return with_fault((Some(r), error, false, false));
    }
    // The OAuth exchange authenticates the app (client id and secret), not a token.
    if method == "oauth.v2.access" {
        let basic = crate::oauth::basic_credentials(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        );
        let (team, bot) = {
            let ws = sim.read();
            (
                (ws.team_id.clone(), ws.team_name.clone()),
                ws.users[ws.bot_user as usize].id.clone(),
            )
        };
        let exchanged = crate::state::lock(&sim.oauth).access(
            &params,
            basic,
            (&team.0, &team.1),
            &bot,
            sim.now_secs(),
        );
        return with_fault(match exchanged {
            Ok((body, minted)) => {
                sim.set_token(&TokenSpec {
                    token: minted.token,
                    kind: crate::types::TokenKind::Bot,
                    scopes: minted.scopes,
                    revoked: false,
                    user: None,
                });
                let body = match &reshape {
                    Some(fault) => crate::reshape::reshape(method, None, body, fault),
                    None => body,
                };
                (
                    Some(json_response(StatusCode::OK, body)),
                    None,
                    false,
                    false,
                )
            }
            Err(e) => fail(e, None),
        });
    }
    // Authentication: bearer header first, then a `token` parameter.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(str::trim))
        .filter(|t| !t.is_empty());
    let token_str = match bearer.or(params.get("token")) {
        Some(t) => t.to_string(),
        None => return with_fault(fail(ApiError::Code("not_authed".into()), None)),
    };
    let Some(tok) = sim.token(&token_str) else {
        return with_fault(fail(ApiError::Code("invalid_auth".into()), None));
    };
    if tok.revoked {
        return with_fault(fail(ApiError::Code("token_revoked".into()), None));
    }
    if crate::state::lock(&sim.oauth).expired(&token_str, sim.now_secs()) {
        return with_fault(fail(ApiError::Code("token_expired".into()), None));
    }
    let scopes = tok.scope_header();
    if let Err(retry) = sim.rate_limit(&token_str, method) {
        let mut r = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"ok":false,"error":"ratelimited"}"#.to_vec(),
        );
        if let Ok(v) = HeaderValue::from_str(&retry) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&scopes) {
            r.headers_mut().insert("x-oauth-scopes", v);
        }
        r.headers_mut().insert(
            "x-accepted-oauth-scopes",
            HeaderValue::from_static(accepted),
        );
        return (Some(r), Some("ratelimited".into()), true, faulted);
    }
    let result = if api::is_write(method) {
        let mut ws = sim.write();
        api::call_write(sim, &mut ws, method, &tok, &params)
    } else if method.starts_with("files.") && method.ends_with("UploadExternal")
        || method == "files.getUploadURLExternal"
    {
        let ws = sim.read();
        api::call_files(sim, &ws, method, &tok, &params)
    } else {
        let ws = sim.read();
        api::call_read(sim, &ws, method, &tok, &params)
    };
    match result {
        Ok(body) => {
            let body = match &reshape {
                Some(fault) => crate::reshape::reshape(method, params.get("cursor"), body, fault),
                None => body,
            };
            let mut r = json_response(StatusCode::OK, body);
            if let Ok(v) = HeaderValue::from_str(&scopes) {
                r.headers_mut().insert("x-oauth-scopes", v);
            }
            r.headers_mut().insert(
                "x-accepted-oauth-scopes",
                HeaderValue::from_static(accepted),
            );
            (Some(r), None, false, faulted)
        }
        Err(e) => with_fault(fail(e, Some(scopes))),
    }
}

async fn socket_stats(State(sim): State<Arc<Sim>>) -> Json<crate::socket::SocketStats> {
    Json(sim.socket.stats())
}

async fn socket_disconnect(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.socket.disconnect("refresh_requested");
    Json(json!({"ok": true}))
}

async fn socket_drop(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.socket.drop_connections();
    Json(json!({"ok": true}))
}

async fn stats_get(State(sim): State<Arc<Sim>>) -> Json<crate::types::SimStats> {
    Json(sim.stats())
}

async fn stats_reset(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.reset_stats();
    Json(json!({"ok": true}))
}

/// Applies mutations in order; per-op results (`ok:false` + `error` on failure).
pub fn apply_mutations(sim: &Sim, ops: &[Mutation]) -> Vec<Value> {
    let mut ws = sim.write();
    ops.iter()
        .map(|op| match ws.apply(op, sim.now_us()) {
            Ok(v) => v,
            Err(e) => json!({"ok": false, "error": e}),
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
        }
    }
}

async fn mutate(
    State(sim): State<Arc<Sim>>,
    Json(ops): Json<OneOrMany<Mutation>>,
) -> Json<Vec<Value>> {
    Json(apply_mutations(&sim, &ops.into_vec()))
}

async fn faults_get(State(sim): State<Arc<Sim>>) -> Json<Vec<FaultRule>> {
    Json(sim.faults())
}

async fn faults_set(
    State(sim): State<Arc<Sim>>,
    Json(rules): Json<OneOrMany<FaultRule>>,
) -> Json<Value> {
    let rules = rules.into_vec();
    let n = rules.len();
    sim.set_faults(rules);
    Json(json!({"ok": true, "rules": n}))
}

async fn faults_clear(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.set_faults(Vec::new());
    Json(json!({"ok": true}))
}

async fn rate_get(State(sim): State<Arc<Sim>>) -> Json<RateLimitSettings> {
    Json(sim.rate_settings())
}

async fn rate_set(State(sim): State<Arc<Sim>>, Json(s): Json<RateLimitSettings>) -> Json<Value> {
    sim.set_rate_settings(&s);
    Json(json!({"ok": true}))
}

async fn tokens_get(State(sim): State<Arc<Sim>>) -> Json<Vec<TokenSpec>> {
    Json(sim.token_specs())
}

async fn tokens_set(
    State(sim): State<Arc<Sim>>,
    Json(t): Json<OneOrMany<TokenSpec>>,
) -> Json<Value> {
    for spec in t.into_vec() {
        sim.set_token(&spec);
    }
    Json(json!({"ok": true}))
}

async fn expected_get(State(sim): State<Arc<Sim>>, Query(q): Query<ExpectedQuery>) -> Response {
    expected_json(&sim, &q)
}

async fn expected_post(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let q: ExpectedQuery = if body.iter().all(u8::is_ascii_whitespace) {
        ExpectedQuery::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(q) => q,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    };
    expected_json(&sim, &q)
}

fn expected_json(sim: &Sim, q: &ExpectedQuery) -> Response {
    let set = expected::compute(&sim.read(), q, sim.now_secs());
    match serde_json::to_vec(&set) {
        Ok(b) => json_response(StatusCode::OK, b),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub fn workspace_summary(sim: &Sim) -> WorkspaceSummary {
    let ws = sim.read();
    let chans = |k: ConvKind| ws.channels.iter().filter(|c| c.kind == k).count();
    WorkspaceSummary {
        team_id: ws.team_id.clone(),
        bot_user_id: ws.users[ws.bot_user as usize].id.clone(),
        users: ws.users.iter().filter(|u| !u.external).count(),
        deleted_users: ws.users.iter().filter(|u| u.deleted).count(),
        guests: ws.users.iter().filter(|u| u.is_restricted).count(),
        external_users: ws.users.iter().filter(|u| u.external).count(),
        bots: ws.users.iter().filter(|u| u.is_bot).count(),
        public_channels: chans(ConvKind::Public),
        private_channels: chans(ConvKind::Private),
        archived_channels: ws.channels.iter().filter(|c| c.archived).count(),
        bot_member_channels: ws
            .channels
            .iter()
            .filter(|c| {
                matches!(c.kind, ConvKind::Public | ConvKind::Private) && c.is_member(ws.bot_user)
            })
            .count(),
        dms: chans(ConvKind::Im),
        group_dms: chans(ConvKind::Mpim),
        messages: ws.total_messages(),
        threads: ws
            .channels
            .iter()
            .map(|c| c.threads.iter().filter(|t| !t.replies.is_empty()).count())
            .sum(),
        replies: ws
            .channels
            .iter()
            .map(|c| c.threads.iter().map(|t| t.replies.len()).sum::<usize>())
            .sum(),
        now: sim.now_secs(),
    }
}

async fn workspace_get(State(sim): State<Arc<Sim>>) -> Json<WorkspaceSummary> {
    Json(workspace_summary(&sim))
}

async fn posted_get(State(sim): State<Arc<Sim>>) -> Json<Vec<crate::outbound::Posted>> {
    Json(crate::state::lock(&sim.outbound).posted.clone())
}

/// A shared file's content (`crate::files`): the token in `Authorization`, then the
/// file's class decides the answer. Counted in the stats as the method `files-pri`.
async fn file_download(
    State(sim): State<Arc<Sim>>,
    Path((key, rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    use crate::files::{self, Class};
    const METHOD: &str = "files-pri";
    sim.record_call(METHOD);
    let answer = |status: StatusCode, body: Body, length: Option<u64>| {
        sim.record_outcome(METHOD, status.as_str(), None, false, false);
        let mut response = Response::new(body);
        *response.status_mut() = status;
        if let Some(length) = length {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        response
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| sim.token(t));
    if !token.is_some_and(|t| t.has("files:read")) {
        return answer(StatusCode::FORBIDDEN, Body::from("forbidden"), None);
    }
    let team = sim
        .ws
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .team_id
        .clone();
    let name = rest.rsplit('/').next().unwrap_or_default();
    let id = key.strip_prefix(&format!("{team}-")).unwrap_or_default();
    let Some((mime, filetype)) = crate::render::file_kind(name).filter(|_| id.starts_with('F'))
    else {
        return answer(StatusCode::NOT_FOUND, Body::from("not found"), None);
    };
    // Fault rules of method `files-pri` (their `channel` names a file id): an HTTP status,
    // with `Retry-After` when given (429s and 5xx a download must retry).
    if let Some(crate::types::FaultAction::HttpStatus {
        status,
        retry_after,
    }) = sim.fault_for(METHOD, Some(id))
    {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = answer(code, Body::from(format!("simulated HTTP {status}")), None);
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let size = files::size(id, filetype);
    let mut response = match files::class(id) {
        Class::NotFound => return answer(StatusCode::NOT_FOUND, Body::from("not found"), None),
        Class::Forbidden => return answer(StatusCode::FORBIDDEN, Body::from("forbidden"), None),
        Class::Truncated => {
            // Half the promised bytes, then the stream ends: the connection is cut short.
            let mut bytes = files::content(id, filetype, size);
            bytes.truncate((size / 2) as usize);
            // The pause lets the server send what it has before the body ends short (it
            // then closes the connection).
            let bytes = Bytes::from(bytes);
            let stream = futures::stream::unfold(0u8, move |step| {
                let bytes = bytes.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(bytes), 1)),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            None
                        }
                    }
                }
            });
            answer(StatusCode::OK, Body::from_stream(stream), Some(size))
        }
        // Generated in pieces, never held whole.
        Class::Huge | Class::Ok if size > 1 << 20 => {
            let id = id.to_string();
            let stream = futures::StreamExt::map(
                futures::stream::iter(0..size.div_ceil(1 << 20)),
                move |i| {
                    let piece = (size - i * (1 << 20)).min(1 << 20);
                    Ok::<_, std::io::Error>(Bytes::from(files::content(&id, filetype, piece)))
                },
            );
            answer(StatusCode::OK, Body::from_stream(stream), Some(size))
        }
        Class::Ok | Class::Huge => answer(
            StatusCode::OK,
            Body::from(files::content(id, filetype, size)),
            Some(size),
        ),
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    response
}

async fn files_get(State(sim): State<Arc<Sim>>) -> Json<Vec<crate::outbound::SharedFile>> {
    Json(crate::state::lock(&sim.outbound).files.clone())
}

async fn oauth_app_set(
    State(sim): State<Arc<Sim>>,
    Json(app): Json<crate::oauth::OAuthApp>,
) -> Json<Value> {
    crate::state::lock(&sim.oauth).set_app(app);
    Json(json!({"ok": true}))
}

/// The authorize page: the user's decision, as the redirect their browser follows.
async fn authorize(State(sim): State<Arc<Sim>>, RawQuery(query): RawQuery) -> Response {
    let params = match parse_params(query.as_deref(), &HeaderMap::new(), &[]) {
        Ok(p) => p,
        Err(code) => return (StatusCode::BAD_REQUEST, code).into_response(),
    };
    let decided = crate::state::lock(&sim.oauth).authorize(&params);
    match decided {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(v) => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::FOUND;
                r.headers_mut().insert(header::LOCATION, v);
                r
            }
            Err(_) => (StatusCode::BAD_REQUEST, "bad_redirect_uri").into_response(),
        },
        Err((status, text)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            text,
        )
            .into_response(),
    }
}

/// The upload URL of `files.getUploadURLExternal`: the file's bytes, exactly `length`.
async fn upload(State(sim): State<Arc<Sim>>, Path(file_id): Path<String>, body: Bytes) -> Response {
    sim.record_call("files.upload_url");
    let uploaded = crate::state::lock(&sim.outbound).upload(&file_id, &body);
    match uploaded {
        Ok(text) => (StatusCode::OK, text).into_response(),
        Err((status, text)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            text,
        )
            .into_response(),
    }
}

/// An incoming webhook: `ok`, or Slack's status and short reason. Faults of method
/// `webhook` apply (a 429 with `Retry-After`, a 5xx).
async fn webhook(
    State(sim): State<Arc<Sim>>,
    Path((_team, _bot, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    sim.record_call("webhook");
    if let Some(FaultAction::HttpStatus {
        status,
        retry_after,
    }) = sim.fault_for("webhook", None)
    {
        let mut r = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "rate_limited",
        )
            .into_response();
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let posted = crate::state::lock(&sim.outbound).webhook(&id, &body);
    match posted {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err((status, reason)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            reason,
        )
            .into_response(),
    }
}
