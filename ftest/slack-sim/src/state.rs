//! Shared simulator state: the workspace (behind an `RwLock` so pages are
//! rendered concurrently), tokens, the tier rate limiter, fault rules, stats
//! and the simulator clock.
//!
//! Invariants: no lock is held across an `.await`; the workspace read lock is
//! the only one held while rendering a page; the small locks (stats, faults,
//! limiter) are held for a few map operations only.

use crate::model::Workspace;
use crate::types::{
    CallWindow, FaultAction, FaultRule, RateLimitSettings, SimStats, TokenKind, TokenSpec,
    DEFAULT_BOT_SCOPES,
};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// An accepted token, resolved against the workspace.
#[derive(Clone, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub scopes: Vec<String>,
    pub revoked: bool,
    /// User index the token acts as.
    pub user: u32,
}

impl Token {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
    pub fn scope_header(&self) -> String {
        self.scopes.join(",")
    }
}

/// Published tiers (requests per minute) and the burst we allow.
///
/// | method | tier | per min | burst |
/// |---|---|---|---|
/// | conversations.history / replies / info / join, team.info, files.list, reactions.get | T3 | 50 | 50 |
/// | conversations.list, users.list, usergroups.list | T2 | 20 | 20 |
/// | conversations.members, users.info | T4 | 100 | 100 |
/// | auth.test, chat.getPermalink | special | 600 | 600 |
/// | chat.postMessage | special (~1/s) | 60 | 5 |
///
/// Burst = one minute's budget: Slack publishes "50+ per minute" and tolerates
/// bursts, so a minute's calls may come at once, and then no more than the rate
/// (a client that sends two minutes' budget in its first minute sees 429s). The
/// grant ([`RateLimitSettings::grant`]) multiplies both.
pub fn tier(method: &str) -> Option<(f64, f64)> {
    Some(match method {
        "conversations.history"
        | "conversations.replies"
        | "conversations.info"
        | "conversations.join"
        | "team.info"
        | "files.list"
        | "reactions.get" => (50.0, 50.0),
        "conversations.list" | "users.list" | "usergroups.list" | "files.remote.list" => {
            (20.0, 20.0)
        }
        "conversations.members" | "users.info" => (100.0, 100.0),
        "auth.test" | "chat.getPermalink" => (600.0, 600.0),
        "chat.postMessage" => (60.0, 5.0),
        _ => return None,
    })
}

/// The methods Slack's 2025 limits restrict for commercially distributed
/// non-Marketplace apps: 1 request per minute (burst 1) and pages of 15.
pub const RESTRICTED_METHODS: &[&str] = &["conversations.history", "conversations.replies"];
/// Their page size in the restricted cohort (maximum and default of `limit`).
pub const RESTRICTED_PAGE: usize = 15;

/// The budget of `method` (requests per minute, burst) under `settings`.
pub fn budget(method: &str, settings: &RateLimitSettings) -> Option<(f64, f64)> {
    if settings.restricted_cohort && RESTRICTED_METHODS.contains(&method) {
        return Some((1.0, 1.0));
    }
    let grant = if settings.grant.is_finite() && settings.grant > 0.0 {
        settings.grant
    } else {
        1.0
    };
    tier(method).map(|(per_min, burst)| (per_min * grant, (burst * grant).max(1.0)))
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct Limiter {
    pub settings: RateLimitSettings,
    buckets: HashMap<(String, String), Bucket>,
}

impl Limiter {
    /// Takes one request from the (token, method) bucket; on refusal returns
    /// the real seconds until a request would be allowed.
    pub fn take(&mut self, token: &str, method: &str, now: Instant) -> Result<(), f64> {
        if !self.settings.enabled {
            return Ok(());
        }
        let Some((per_min, burst)) = budget(method, &self.settings) else {
            return Ok(());
        };
        let rate = per_min / 60.0 * self.settings.time_scale.max(1e-9); // per real second
        let b = self
            .buckets
            .entry((token.to_string(), method.to_string()))
            .or_insert(Bucket {
                tokens: burst,
                last: now,
            });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - b.tokens) / rate)
        }
    }

    /// `Retry-After`: whole seconds (≥1, rounded up) at time scale 1 as Slack
    /// does; at a faster scale, real seconds with millisecond precision
    /// (simulator liberty so scaled tests stay fast).
    pub fn retry_after(&self, wait: f64) -> String {
        if self.settings.time_scale <= 1.0 {
            format!("{}", (wait.ceil() as i64).max(1))
        } else {
            format!("{:.3}", (wait * 1000.0).ceil().max(1.0) / 1000.0)
        }
    }
}

struct FaultState {
    rule: FaultRule,
    matched: u64,
    fired: u64,
}

pub struct Sim {
    pub ws: RwLock<Workspace>,
    tokens: RwLock<HashMap<String, Token>>,
    limiter: Mutex<Limiter>,
    faults: Mutex<Vec<FaultState>>,
    stats: Mutex<SimStats>,
    pub latency_ms: AtomicU64,
    /// Simulator clock = `base_now_us` + real time since `start`.
    base_now_us: i64,
    start: Instant,
    /// What apps posted and uploaded (Slack as a destination).
    pub outbound: Mutex<crate::outbound::Outbound>,
    /// OAuth apps, codes and rotating tokens.
    pub oauth: Mutex<crate::oauth::OAuth>,
    /// `http://127.0.0.1:PORT`, once bound (upload URLs point at it).
    pub base_url: std::sync::OnceLock<String>,
    /// Socket Mode: app tokens, tickets, connections, pending envelopes.
    pub socket: crate::socket::Hub,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    pub fn new(
        ws: Workspace,
        now: i64,
        bot_token: &str,
        rate_limits: bool,
        time_scale: f64,
        latency_ms: u64,
    ) -> Sim {
        let sim = Sim {
            ws: RwLock::new(ws),
            tokens: RwLock::new(HashMap::new()),
            limiter: Mutex::new(Limiter {
                settings: RateLimitSettings {
                    enabled: rate_limits,
                    time_scale,
                    ..RateLimitSettings::default()
                },
                buckets: HashMap::new(),
            }),
            faults: Mutex::new(Vec::new()),
            stats: Mutex::new(SimStats::default()),
            latency_ms: AtomicU64::new(latency_ms),
            base_now_us: now * 1_000_000,
            start: Instant::now(),
            outbound: Mutex::new(crate::outbound::Outbound::default()),
            oauth: Mutex::new(crate::oauth::OAuth::default()),
            base_url: std::sync::OnceLock::new(),
            socket: crate::socket::Hub::default(),
        };
        sim.set_token(&TokenSpec {
            token: bot_token.to_string(),
            kind: TokenKind::Bot,
            scopes: DEFAULT_BOT_SCOPES.iter().map(|s| s.to_string()).collect(),
            revoked: false,
            user: None,
        });
        sim
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Workspace> {
        self.ws.read().unwrap_or_else(|e| e.into_inner())
    }
    pub fn write(&self) -> RwLockWriteGuard<'_, Workspace> {
        self.ws.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulator time in microseconds.
    pub fn now_us(&self) -> i64 {
        self.base_now_us + self.start.elapsed().as_micros() as i64
    }
    pub fn now_secs(&self) -> i64 {
        self.now_us().div_euclid(1_000_000)
    }

    pub fn set_token(&self, spec: &TokenSpec) {
        let user = {
            let ws = self.read();
            match spec.kind {
                TokenKind::Bot => ws.bot_user,
                TokenKind::User => spec
                    .user
                    .as_deref()
                    .and_then(|u| ws.user_ref(u))
                    .unwrap_or(ws.owner_user),
            }
        };
        let tok = Token {
            kind: spec.kind,
            scopes: spec.scopes.clone(),
            revoked: spec.revoked,
            user,
        };
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.token.clone(), tok);
    }

    pub fn token(&self, t: &str) -> Option<Token> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(t)
            .cloned()
    }

    pub fn token_specs(&self) -> Vec<TokenSpec> {
        let ws = self.read();
        let mut v: Vec<TokenSpec> = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, t)| TokenSpec {
                token: k.clone(),
                kind: t.kind,
                scopes: t.scopes.clone(),
                revoked: t.revoked,
                user: ws.users.get(t.user as usize).map(|u| u.id.clone()),
            })
            .collect();
        v.sort_by(|a, b| a.token.cmp(&b.token));
        v
    }

    pub fn rate_limit(&self, token: &str, method: &str) -> Result<(), String> {
        let mut l = lock(&self.limiter);
        match l.take(token, method, Instant::now()) {
            Ok(()) => Ok(()),
            Err(wait) => Err(l.retry_after(wait)),
        }
    }

    /// Limits on or off and the time scale (grant and cohort unchanged).
    pub fn set_rate_limits(&self, enabled: bool, time_scale: f64) {
        let settings = RateLimitSettings {
            enabled,
            time_scale,
            ..self.rate_settings()
        };
        self.set_rate_settings(&settings);
    }

    pub fn rate_limit_settings(&self) -> (bool, f64) {
        let s = self.rate_settings();
        (s.enabled, s.time_scale)
    }

    /// Every limiter setting at once; the buckets start full again.
    pub fn set_rate_settings(&self, settings: &RateLimitSettings) {
        let positive = |v: f64| if v.is_finite() && v > 0.0 { v } else { 1.0 };
        let mut l = lock(&self.limiter);
        l.settings = RateLimitSettings {
            time_scale: positive(settings.time_scale),
            grant: positive(settings.grant),
            ..settings.clone()
        };
        l.buckets.clear();
    }

    pub fn rate_settings(&self) -> RateLimitSettings {
        lock(&self.limiter).settings.clone()
    }

    /// Whether the app is in the restricted cohort (pages of 15 on history/replies).
    pub fn restricted_cohort(&self) -> bool {
        lock(&self.limiter).settings.restricted_cohort
    }

    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        *lock(&self.faults) = rules
            .into_iter()
            .map(|rule| FaultState {
                rule,
                matched: 0,
                fired: 0,
            })
            .collect();
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.faults).iter().map(|f| f.rule.clone()).collect()
    }

    /// The fault to inject for this call, if any (first firing rule wins).
    pub fn fault_for(&self, method: &str, channel: Option<&str>) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let mut hit = None;
        for f in faults.iter_mut() {
            let r = &f.rule;
            if !(r.method == "*" || r.method == method) {
                continue;
            }
            if let Some(c) = &r.channel {
                if channel != Some(c.as_str()) {
                    continue;
                }
            }
            f.matched += 1;
            if hit.is_none() && f.matched > r.after && r.times.is_none_or(|t| f.fired < t) {
                f.fired += 1;
                hit = Some(r.action.clone());
            }
        }
        hit
    }

    pub fn stats(&self) -> SimStats {
        lock(&self.stats).clone()
    }
    pub fn reset_stats(&self) {
        *lock(&self.stats) = SimStats::default();
    }

    pub fn record_call(&self, method: &str) {
        let at = self.start.elapsed().as_secs_f64();
        let mut s = lock(&self.stats);
        s.total_calls += 1;
        *s.calls.entry(method.to_string()).or_default() += 1;
        let window = s.windows.entry(method.to_string()).or_insert(CallWindow {
            first_s: at,
            last_s: at,
        });
        window.last_s = at;
    }

    /// Records the outcome of a call: HTTP status (or "dropped"), error code.
    pub fn record_outcome(
        &self,
        method: &str,
        status: &str,
        error: Option<&str>,
        ratelimited: bool,
        fault: bool,
    ) {
        let at = self.start.elapsed().as_secs_f64();
        let slack_minute = 60.0 / self.rate_settings().time_scale;
        let mut s = lock(&self.stats);
        *s.status
            .entry(method.to_string())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
        if let Some(e) = error {
            *s.errors
                .entry(method.to_string())
                .or_default()
                .entry(e.to_string())
                .or_default() += 1;
        }
        if ratelimited {
            *s.ratelimited.entry(method.to_string()).or_default() += 1;
            s.ratelimited_total += 1;
            let first = s.windows.get(method).map_or(at, |w| w.first_s);
            if at - first > slack_minute {
                *s.ratelimited_late.entry(method.to_string()).or_default() += 1;
            }
        }
        if fault {
            *s.faults.entry(method.to_string()).or_default() += 1;
        }
    }
}

/// Wall clock, epoch seconds.
pub fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
