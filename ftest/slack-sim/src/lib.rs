//! Slack Web API simulator for tests, ftests and benchmarks.
//!
//! Serves a deterministic, generated Slack workspace at `{base_url}/api/<method>`
//! with Slack's envelopes, paging, auth/scopes, tier rate limits and injectable
//! faults (transport, HTTP, `ok:false`, bad JSON, and `ok:true` answers that break
//! their promise: [`reshape`]), plus a control API under `{base_url}/_sim/...`
//! (stats, mutations, faults, rate limits, tokens, and `expected`: the exact
//! document set a correct connector indexes). Slack as a destination: what apps
//! post and upload ([`outbound`]: `chat.postMessage`, the external upload, incoming
//! webhooks) and the OAuth install ([`oauth`]: `/oauth/v2/authorize`,
//! `oauth.v2.access` with token rotation).
//!
//! Invariants:
//! * The server runs on its own OS thread with its own multi-thread tokio
//!   runtime, so a test's paused clock or current-thread runtime never stalls it.
//! * Same `WorkspaceSpec` + `now` ⇒ same workspace; message text is derived on
//!   demand, so memory stays ~40 bytes per message.
//! * `SimHandle::expected` and `GET /_sim/expected` run the same code.

pub mod api;
pub mod cursor;
pub mod events;
pub mod expected;
pub mod files;
pub mod model;
mod mutate;
pub mod oauth;
pub mod outbound;
pub mod remote;
pub mod render;
pub mod reshape;
pub mod server;
pub mod socket;
pub mod spec;
pub mod state;
pub mod ts;
pub mod types;

pub use spec::{DataSize, WorkspaceSpec};
pub use types::{
    CallWindow, ExpectedDoc, ExpectedIdentity, ExpectedQuery, ExpectedReaction, ExpectedSet,
    FaultAction, FaultRule, Mutation, RateLimitSettings, SimStats, TokenKind, TokenSpec,
    WorkspaceSummary, DEFAULT_BOT_SCOPES,
};

use state::Sim;
use std::sync::Arc;
use std::time::Duration;

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub spec: WorkspaceSpec,
    /// Epoch seconds the data is generated relative to; default: wall clock
    /// at start. The simulator clock then advances in real time from it.
    pub now: Option<i64>,
    pub rate_limits: bool,
    /// 1.0 = real Slack minutes; 60.0 = a Slack minute lasts 1 s.
    pub time_scale: f64,
    /// Multiple of the published tiers the workspace grants (1.0 = the tiers).
    pub rate_grant: f64,
    /// The app is in Slack's 2025 restricted cohort (history/replies: 1/min, 15 a page).
    pub restricted_cohort: bool,
    /// Added to every `/api` call.
    pub latency_ms: u64,
    pub bot_token: String,
    pub listen: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            spec: WorkspaceSpec::default(),
            now: None,
            rate_limits: false,
            time_scale: 1.0,
            rate_grant: 1.0,
            restricted_cohort: false,
            latency_ms: 0,
            bot_token: "xoxb-sim-bot-token".into(),
            listen: "127.0.0.1:0".into(),
        }
    }
}

/// A running simulator. Dropping it shuts the server down.
pub struct SimHandle {
    base_url: String,
    sim: Arc<Sim>,
    server: server_thread::ServerThread,
}

impl SimHandle {
    /// Generates the workspace, binds, and returns once listening.
    pub fn start(cfg: SimConfig) -> anyhow::Result<SimHandle> {
        let now = cfg.now.unwrap_or_else(state::wall_now);
        let ws = model::Workspace::generate(&cfg.spec, now);
        let sim = Arc::new(Sim::new(
            ws,
            now,
            &cfg.bot_token,
            cfg.rate_limits,
            cfg.time_scale,
            cfg.latency_ms,
        ));
        sim.set_rate_settings(&RateLimitSettings {
            enabled: cfg.rate_limits,
            time_scale: cfg.time_scale,
            grant: cfg.rate_grant,
            restricted_cohort: cfg.restricted_cohort,
        });
        let app = server::router(sim.clone());
        let options = server_thread::Options {
            name: "slack-sim".into(),
            listen: cfg.listen.clone(),
            workers: std::thread::available_parallelism()
                .map(|n| n.get().clamp(2, 4))
                .unwrap_or(2),
            shutdown_timeout: Duration::from_millis(200),
        };
        let server = server_thread::ServerThread::start(options, |serving| async move {
            serving.ready.ready();
            let serve = axum::serve(
                server::SimListener(serving.listener),
                app.into_make_service_with_connect_info::<server::ConnCtl>(),
            );
            tokio::select! {
                _ = serve => {}
                _ = serving.stop => {}
            }
        })?;
        let _ = sim.base_url.set(server.url());
        sim.ws.write().unwrap_or_else(|e| e.into_inner()).files_base = server.url();
        Ok(SimHandle {
            base_url: server.url(),
            sim,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`; the control API lives under `{base_url}/_sim`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// What a client uses in place of `https://slack.com/api`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url)
    }

    /// The documents a correct connector indexes (same as `/_sim/expected`).
    pub fn expected(&self, q: &ExpectedQuery) -> ExpectedSet {
        expected::compute(&self.sim.read(), q, self.sim.now_secs())
    }

    pub fn stats(&self) -> SimStats {
        self.sim.stats()
    }

    pub fn reset_stats(&self) {
        self.sim.reset_stats()
    }

    /// Applies mutations in order; per-op results (e.g. `{"ok":true,"ts":…}`).
    /// Errors if any op failed (ops before it stay applied).
    pub fn mutate(&self, ops: Vec<Mutation>) -> anyhow::Result<Vec<serde_json::Value>> {
        let results = server::apply_mutations(&self.sim, &ops);
        for (op, r) in ops.iter().zip(&results) {
            if r.get("ok") != Some(&serde_json::Value::Bool(true)) {
                anyhow::bail!("mutation {op:?} failed: {r}");
            }
        }
        Ok(results)
    }

    /// Applies mutations like [`mutate`](Self::mutate) and returns, per mutation, the
    /// Events API bodies Slack would deliver for it ([`events`]: `event_callback`
    /// envelopes, each with a fresh `event_id`). Errors if any op failed.
    pub fn mutate_with_events(
        &self,
        ops: Vec<Mutation>,
    ) -> anyhow::Result<Vec<Vec<serde_json::Value>>> {
        static EVENT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut ws = self.sim.write();
        let mut out = Vec::with_capacity(ops.len());
        for op in &ops {
            let now = self.sim.now_us();
            let before = events::before(&ws, op);
            let result = ws
                .apply(op, now)
                .unwrap_or_else(|e| serde_json::json!({"ok": false, "error": e}));
            if result.get("ok") != Some(&serde_json::Value::Bool(true)) {
                anyhow::bail!("mutation {op:?} failed: {result}");
            }
            let bodies = events::events_for(&ws, op, &result, before, now)
                .into_iter()
                .map(|event| {
                    let seq = EVENT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    events::envelope(&ws, event, &format!("Ev{seq:010}"), now)
                })
                .collect();
            out.push(bodies);
        }
        Ok(out)
    }

    /// Socket Mode: sends `bodies` (`event_callback` bodies, as
    /// [`mutate_with_events`](Self::mutate_with_events) returns them) as `events_api`
    /// envelopes over the open connections, each twice with `duplicate`.
    pub fn socket_deliver(&self, bodies: &[serde_json::Value], duplicate: bool) {
        self.sim.socket.deliver(bodies, duplicate)
    }

    /// Socket Mode: a `disconnect` message (`reason`) on every open connection.
    pub fn socket_disconnect(&self, reason: &str) {
        self.sim.socket.disconnect(reason)
    }

    /// Socket Mode: every connection dropped without a word.
    pub fn socket_drop(&self) {
        self.sim.socket.drop_connections()
    }

    /// Socket Mode: lose what is sent while no connection is open.
    pub fn socket_lose_while_down(&self, lose: bool) {
        self.sim.socket.set_lose_while_down(lose)
    }

    /// Socket Mode: refuse every new connection (an outage) while on.
    pub fn socket_refuse(&self, refusing: bool) {
        self.sim.socket.set_refusing(refusing)
    }

    /// Socket Mode counters.
    pub fn socket_stats(&self) -> socket::SocketStats {
        self.sim.socket.stats()
    }

    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        self.sim.set_faults(faults)
    }

    pub fn set_rate_limits(&self, enabled: bool, time_scale: f64) {
        self.sim.set_rate_limits(enabled, time_scale)
    }

    /// Every rate-limit setting at once: limits, time scale, grant, restricted cohort.
    pub fn set_rate_settings(&self, settings: &RateLimitSettings) {
        self.sim.set_rate_settings(settings)
    }

    pub fn rate_settings(&self) -> RateLimitSettings {
        self.sim.rate_settings()
    }

    /// Adds or replaces a token.
    pub fn set_token(&self, token: TokenSpec) {
        self.sim.set_token(&token)
    }

    pub fn set_latency_ms(&self, ms: u64) {
        self.sim
            .latency_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn workspace(&self) -> WorkspaceSummary {
        server::workspace_summary(&self.sim)
    }

    /// Simulator clock (epoch seconds).
    pub fn now(&self) -> i64 {
        self.sim.now_secs()
    }

    /// Messages apps delivered (`chat.postMessage`, incoming webhooks), in order.
    pub fn posted(&self) -> Vec<outbound::Posted> {
        state::lock(&self.sim.outbound).posted.clone()
    }

    /// Files shared with `files.completeUploadExternal`, in order.
    pub fn files(&self) -> Vec<outbound::SharedFile> {
        state::lock(&self.sim.outbound).files.clone()
    }

    /// An incoming webhook posting to `channel`: its URL (the credential).
    pub fn webhook_url(&self, id: &str, channel: &str) -> String {
        state::lock(&self.sim.outbound)
            .webhooks
            .insert(id.to_string(), channel.to_string());
        format!("{}/services/T0SIM/B0SIM/{id}", self.base_url)
    }

    /// Registers (or replaces) an app that can be installed with OAuth.
    pub fn set_oauth_app(&self, app: oauth::OAuthApp) {
        state::lock(&self.sim.oauth).set_app(app)
    }

    /// OAuth exchanges and refreshes done so far.
    pub fn oauth_counts(&self) -> (u64, u64) {
        let o = state::lock(&self.sim.oauth);
        (o.exchanges, o.refreshes)
    }

    /// Stops the server and waits for its thread (dropping the handle does the same).
    pub fn shutdown(self) {
        self.server.shutdown();
    }
}
