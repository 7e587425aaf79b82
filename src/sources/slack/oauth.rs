//! The Slack app's OAuth v2 install, Slack's side of it: the bot scopes a connector's
//! configuration needs, the authorize URL with an unguessable `state`, the check of what the
//! browser brings back to the redirect, and the code exchange with `oauth.v2.access` (the
//! client authenticated with HTTP Basic, the answer decoded strictly, the one retry policy).
//!
//! Invariants: the client secret, the code and the tokens are [`Secret`]s or never leave
//! this module except in the [`Installed`] answer (whose `Debug` hides the tokens); a
//! callback is accepted only with the exact `state` this install made (CSRF), and a denied
//! authorization is an error that says so. The CLI (`connectors slack install`) owns the
//! loopback listener and the storing.
//!
//! Token rotation: an app with rotation on gets an access token that expires (12 h) and a
//! single-use refresh token. The install then adds four fields to the connector's
//! configuration ([`ROTATION_FIELDS`]: the refresh token, the client id and secret, the
//! expiry); [`renew`] (the factory's `renew_credentials`, called by the scheduler every
//! round) exchanges the refresh token for a new pair once the expiry is [`RENEW_BEFORE`]
//! away. Two replicas renewing at once cannot both win: the refresh token is single-use, so
//! the loser's call fails and it keeps the stored token (renewed by the winner).

use super::client::{resolve_base_url, ClientConfig, Head, SlackClient, SlackError, Verb};
use super::source::{required_scopes, SlackOptions};
use crate::config::Secret;
use crate::retry::RetryParams;
use crate::sources::schema::{ConfigField, Configuration, ConfigurationExt};
use crate::sources::SourceError;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The authorize page, relative to Slack's site (`https://slack.com`).
pub const AUTHORIZE_PATH: &str = "oauth/v2/authorize";

/// Retries of `oauth.v2.access`: a code or refresh token is single-use, and only transport
/// errors, 5xx and 429 (which never consumed it) are retried.
pub const ACCESS_RETRY: RetryParams = RetryParams {
    max_throttled: 3,
    max_elapsed: Some(Duration::from_secs(60)),
    ..RetryParams::exponential(Duration::from_secs(1), Duration::from_secs(10), 3)
};

/// The bot scopes a connector with these options needs (pure): the source's required
/// scopes, plus `channels:join` when it joins channels itself and the scopes of private
/// channels, DMs and document-level security when they are on.
pub fn bot_scopes(options: &SlackOptions) -> Vec<String> {
    required_scopes(options)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The options that decide the scopes, from a connector's stored configuration (its
/// `auto_join_channels`, `include_private_channels`, `include_direct_messages` and
/// `use_document_level_security` toggles; absent ones are off).
pub fn scope_options(configuration: &serde_json::Value) -> SlackOptions {
    let on = |key: &str| configuration[key]["value"] == true;
    let mut options = SlackOptions::new(Secret::new(String::new()));
    options.auto_join_channels = on("auto_join_channels");
    options.include_private_channels = on("include_private_channels");
    options.include_direct_messages = on("include_direct_messages");
    options.use_document_level_security = on("use_document_level_security");
    options
}

/// A fresh `state`: 128 random bits, hex.
pub fn new_state() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The authorize page's URL for the Web API at `api_url` (`https://slack.com/api` →
/// `https://slack.com/oauth/v2/authorize`), with the app, the scopes, the redirect and
/// `state` (pure).
pub fn authorize_url(
    api_url: &str,
    client_id: &str,
    scopes: &[String],
    redirect_uri: &str,
    state: &str,
) -> Result<url::Url, String> {
    let mut url = url::Url::parse(api_url.trim_end_matches('/'))
        .map_err(|e| format!("the Slack API URL `{api_url}` is not a URL: {e}"))?;
    let site = url.path().trim_end_matches('/');
    let site = site.strip_suffix("/api").unwrap_or(site).to_string();
    url.set_path(&format!("{site}/{AUTHORIZE_PATH}"));
    url.query_pairs_mut()
        .clear()
        .append_pair("client_id", client_id)
        .append_pair("scope", &scopes.join(","))
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    Ok(url)
}

/// Why the redirect did not bring a usable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// `state` missing or not this install's.
    #[error("the redirect's `state` does not match this install's: the request did not come from the authorize page this command opened (a stale tab or a forged link); nothing was stored: run the command again")]
    StateMismatch,
    /// The user (or a workspace policy) refused.
    #[error("the installation was not authorized in Slack ({0}): nothing was stored; run the command again and choose Allow, or ask a workspace admin to approve the app")]
    Denied(String),
    /// Neither `code` nor `error`.
    #[error("the redirect carried no `code`: nothing was stored; run the command again")]
    NoCode,
}

/// The code in the redirect's query, once its `state` is `expected` (pure). The state is
/// checked first: an `error` with a foreign state is not this install's business either.
pub fn read_callback(query: &str, expected: &str) -> Result<Secret, CallbackError> {
    let mut state = None;
    let mut code = None;
    let mut error = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "state" => state = Some(value.into_owned()),
            "code" => code = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            _ => {}
        }
    }
    if state.as_deref() != Some(expected) || expected.is_empty() {
        return Err(CallbackError::StateMismatch);
    }
    if let Some(error) = error {
        return Err(CallbackError::Denied(error));
    }
    code.filter(|c| !c.is_empty())
        .map(Secret::new)
        .ok_or(CallbackError::NoCode)
}

/// What `oauth.v2.access` granted.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The bot token (`xoxb-…`, or `xoxe.xoxb-…` with token rotation).
    pub access_token: Secret,
    /// The bot scopes granted.
    pub scopes: Vec<String>,
    /// The bot user's id.
    pub bot_user_id: String,
    /// The app's id.
    pub app_id: String,
    /// The workspace's id.
    pub team_id: String,
    /// The workspace's name.
    pub team_name: Option<String>,
    /// With token rotation: the single-use refresh token.
    pub refresh_token: Option<Secret>,
    /// With token rotation: seconds until the access token expires.
    pub expires_in: Option<u64>,
}

/// The app's credentials and where its Web API is.
#[derive(Debug, Clone)]
pub struct App {
    /// The Web API base URL.
    pub api_url: String,
    /// The app's Client ID.
    pub client_id: String,
    /// The app's Client Secret.
    pub client_secret: Secret,
}

/// The fields of the answer beyond the required ones the strict decode checks.
#[derive(Deserialize)]
struct Extras {
    team: Team,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Team {
    id: String,
    name: Option<String>,
}

fn granted(bytes: &[u8], head: &Head<'_>) -> Result<Installed, SlackError> {
    let body = head.decode::<serde::de::IgnoredAny>(bytes)?;
    let extras: Extras = serde_json::from_slice(bytes).map_err(|e| SlackError::Malformed {
        method: head.method.into(),
        reason: e.to_string(),
    })?;
    if body.text("token_type") != Some("bot") {
        return Err(SlackError::Protocol {
            method: head.method.into(),
            field: "token_type".into(),
            problem: "is not `bot` (the install asked for bot scopes only)".into(),
        });
    }
    let text = |name| body.text(name).unwrap_or_default().to_string();
    Ok(Installed {
        access_token: Secret::new(text("access_token")),
        scopes: text("scope")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        bot_user_id: text("bot_user_id"),
        app_id: text("app_id"),
        team_id: extras.team.id,
        team_name: extras.team.name,
        refresh_token: extras.refresh_token.map(Secret::new),
        expires_in: extras.expires_in,
    })
}

/// Calls `oauth.v2.access` as the app with `params`.
async fn access(
    app: &App,
    params: &[(&str, &str)],
    retry: RetryParams,
    cancel: &CancellationToken,
) -> Result<Installed, SlackError> {
    let client = SlackClient::new(ClientConfig {
        base_url: app.api_url.clone(),
        token: Secret::new(""),
        timeout: Duration::from_secs(30),
        tier_scale: 1.0,
        budget: crate::sources::slack::ratelimit::BudgetMode::Published,
        pace: false,
        retry,
    })?
    .with_client_credentials(&app.client_id, &app.client_secret);
    client
        .call_with("oauth.v2.access", Verb::PostForm, params, cancel, granted)
        .await
}

/// Exchanges the redirect's `code` (with the same `redirect_uri` as the authorize request)
/// for the bot token.
pub async fn exchange(
    app: &App,
    code: &Secret,
    redirect_uri: &str,
    retry: RetryParams,
    cancel: &CancellationToken,
) -> Result<Installed, SlackError> {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri),
    ];
    access(app, &params, retry, cancel).await
}

/// The configuration fields token rotation adds (not in the default schema: only an app
/// with rotation has them): the refresh token, the app's client id and secret, and when the
/// access token expires (RFC 3339).
pub const ROTATION_FIELDS: [&str; 4] = [
    "oauth_refresh_token",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_token_expires_at",
];

/// How long before the access token expires it is renewed: the scheduler checks every
/// round (seconds apart), and a job created just before a renewal still has this long.
pub const RENEW_BEFORE: chrono::Duration = chrono::Duration::hours(2);

/// Whether a token expiring at `expires_at` is due for renewal at `now` (pure).
pub fn renewal_due(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= expires_at - RENEW_BEFORE
}

/// Writes what `installed` granted into a connector configuration (full field objects, as
/// stored): `token`, and with rotation the [`ROTATION_FIELDS`]; without rotation they are
/// removed (a reinstall of an app that turned rotation off). Pure.
pub fn store_grant(
    configuration: &mut Configuration,
    installed: &Installed,
    app: &App,
    now: DateTime<Utc>,
) {
    if let Some(token) = configuration.get_mut("token") {
        token.value = installed.access_token.expose().into();
    }
    let rotation = installed
        .refresh_token
        .as_ref()
        .zip(installed.expires_in)
        .map(|(refresh, expires_in)| {
            let expires_at =
                now + chrono::Duration::seconds(expires_in.min(i64::MAX as u64) as i64);
            [
                ("OAuth refresh token", refresh.expose().to_string(), true),
                ("OAuth client id", app.client_id.clone(), false),
                (
                    "OAuth client secret",
                    app.client_secret.expose().to_string(),
                    true,
                ),
                (
                    "OAuth access token expires at",
                    expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    false,
                ),
            ]
        });
    for name in ROTATION_FIELDS {
        configuration.remove(name);
    }
    let Some(fields) = rotation else { return };
    for (i, (name, (label, value, sensitive))) in ROTATION_FIELDS.iter().zip(fields).enumerate() {
        let mut field = ConfigField::new(label, "str", 100 + i as u32)
            .tooltip("Written by `connectors slack install` for an app with token rotation; the service renews the token with it.")
            .value(value.into());
        if sensitive {
            field = field.sensitive();
        }
        field.ui_restrictions = vec!["advanced".into()];
        configuration.insert(name.to_string(), field);
    }
}

/// Renews the access token of a configuration written by an install with token rotation
/// when it is due at `now`: the configuration with the new token, refresh token and expiry,
/// or `None` when there is no rotation or nothing is due. The API URL is
/// `SLACK_API_BASE_URL`'s, as for the source.
pub async fn renew(
    configuration: &Configuration,
    now: DateTime<Utc>,
    retry: RetryParams,
) -> Result<Option<Configuration>, SourceError> {
    let value = |name: &str| configuration.str_value(name).filter(|v| !v.is_empty());
    let (Some(refresh), Some(client_id), Some(secret), Some(expires_at)) = (
        value(ROTATION_FIELDS[0]),
        value(ROTATION_FIELDS[1]),
        value(ROTATION_FIELDS[2]),
        value(ROTATION_FIELDS[3]),
    ) else {
        return Ok(None);
    };
    let expires_at = DateTime::parse_from_rfc3339(&expires_at)
        .map_err(|e| {
            SourceError::Configuration(format!(
                "'OAuth access token expires at' is not an RFC 3339 time ({e}): run `connectors slack install` again"
            ))
        })?
        .with_timezone(&Utc);
    if !renewal_due(expires_at, now) {
        return Ok(None);
    }
    let app = App {
        api_url: resolve_base_url(std::env::var(super::client::BASE_URL_ENV).ok().as_deref()),
        client_id,
        client_secret: Secret::new(secret),
    };
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let installed = access(&app, &params, retry, &CancellationToken::new())
        .await
        .map_err(|e| {
            SourceError::Auth(format!(
                "the Slack token could not be renewed: {e}; if this persists, run `connectors slack install` again"
            ))
        })?;
    if installed.refresh_token.is_none() {
        return Err(SourceError::Auth(
            "the Slack token was renewed without a new refresh token: run `connectors slack install` again".into(),
        ));
    }
    let mut renewed = configuration.clone();
    store_grant(&mut renewed, &installed, &app, now);
    Ok(Some(renewed))
}

/// What to do about a failed exchange, for the user (pure).
pub fn exchange_advice(error: &SlackError, redirect_uri: &str) -> String {
    let fix = match error.code() {
        Some("invalid_client_id") => "check --client-id: the app's Client ID (Basic Information → App Credentials)".to_string(),
        Some("bad_client_secret") => "check --client-secret (or SLACK_CLIENT_SECRET): the app's Client Secret (Basic Information → App Credentials)".to_string(),
        Some("bad_redirect_uri") => format!("add {redirect_uri} to the app's Redirect URLs (OAuth & Permissions), or pass the registered one with --redirect-url"),
        Some("invalid_code") | Some("code_already_used") | Some("code_expired") => "the code was used or expired: run the command again".to_string(),
        _ => "run the command again; if it persists, check the app's settings".to_string(),
    };
    format!("{error}: {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_configuration() {
        assert_eq!(
            bot_scopes(&scope_options(&serde_json::json!({}))),
            ["channels:history", "channels:read", "users:read"]
        );
        let join = serde_json::json!({"auto_join_channels": {"value": true}});
        assert_eq!(
            bot_scopes(&scope_options(&join)).last().map(String::as_str),
            Some("channels:join")
        );
        let dms = serde_json::json!({
            "include_direct_messages": {"value": true},
            "use_document_level_security": {"value": true},
        });
        let scopes = bot_scopes(&scope_options(&dms));
        for scope in ["im:history", "mpim:read", "users:read.email"] {
            assert!(scopes.iter().any(|s| s == scope), "{scope}: {scopes:?}");
        }
    }

    #[test]
    fn the_authorize_page_is_beside_the_api() {
        let scopes = bot_scopes(&scope_options(&serde_json::json!({})));
        let url = authorize_url(
            "https://slack.com/api",
            "1.2",
            &scopes,
            "http://127.0.0.1:8765/slack/oauth/callback",
            "s",
        )
        .unwrap();
        assert_eq!(url.as_str(), "https://slack.com/oauth/v2/authorize?client_id=1.2&scope=channels%3Ahistory%2Cchannels%3Aread%2Cusers%3Aread&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fslack%2Foauth%2Fcallback&state=s");
        let sim = authorize_url("http://127.0.0.1:9/api/", "1", &scopes, "r", "s").unwrap();
        assert_eq!(sim.path(), "/oauth/v2/authorize");
        assert!(authorize_url("not a url", "1", &scopes, "r", "s").is_err());
    }

    fn grant(rotation: bool) -> Installed {
        Installed {
            access_token: Secret::new("xoxe.xoxb-new"),
            scopes: bot_scopes(&scope_options(&serde_json::json!({}))),
            bot_user_id: "U1".into(),
            app_id: "A1".into(),
            team_id: "T1".into(),
            team_name: None,
            refresh_token: rotation.then(|| Secret::new("xoxe-1-next")),
            expires_in: rotation.then_some(43_200),
        }
    }

    #[test]
    fn grants_are_stored_with_rotation_fields_only_when_rotating() {
        let app = App {
            api_url: "http://127.0.0.1:9/api".into(),
            client_id: "1.2".into(),
            client_secret: Secret::new("shh"),
        };
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut configuration = super::super::default_configuration();
        configuration.get_mut("fetch_last_n_days").unwrap().value = 7.into();
        store_grant(&mut configuration, &grant(true), &app, now);
        assert_eq!(
            configuration.str_value("token").as_deref(),
            Some("xoxe.xoxb-new")
        );
        assert_eq!(
            configuration.str_value("oauth_token_expires_at").as_deref(),
            Some("2026-01-01T12:00:00Z")
        );
        for (name, sensitive) in ROTATION_FIELDS.iter().zip([true, false, true, false]) {
            assert_eq!(configuration[*name].sensitive, sensitive, "{name}");
        }
        assert!(crate::protocol::connector::validate_configuration(&configuration).is_ok());
        store_grant(&mut configuration, &grant(false), &app, now);
        assert!(ROTATION_FIELDS
            .iter()
            .all(|f| !configuration.contains_key(*f)));
    }

    #[test]
    fn renewal_is_due_two_hours_before_expiry() {
        let expires = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(!renewal_due(
            expires,
            expires - chrono::Duration::minutes(121)
        ));
        assert!(renewal_due(
            expires,
            expires - chrono::Duration::minutes(120)
        ));
        assert!(renewal_due(expires, expires + chrono::Duration::hours(1)));
    }

    #[tokio::test]
    async fn nothing_to_renew_without_rotation_or_before_it_is_due() {
        let mut configuration = super::super::default_configuration();
        let now = Utc::now();
        assert!(renew(&configuration, now, ACCESS_RETRY)
            .await
            .unwrap()
            .is_none());
        let app = App {
            api_url: "http://127.0.0.1:9/api".into(),
            client_id: "1.2".into(),
            client_secret: Secret::new("shh"),
        };
        store_grant(&mut configuration, &grant(true), &app, now);
        // Not due: no call is made (the API URL would refuse it).
        assert!(renew(&configuration, now, ACCESS_RETRY)
            .await
            .unwrap()
            .is_none());
        configuration
            .get_mut("oauth_token_expires_at")
            .unwrap()
            .value = "soon".into();
        assert!(matches!(
            renew(&configuration, now, ACCESS_RETRY).await,
            Err(SourceError::Configuration(_))
        ));
    }

    #[test]
    fn callbacks_need_this_install_s_state() {
        assert_eq!(
            read_callback("code=c1&state=s1", "s1").map(|c| c.expose().to_string()),
            Ok("c1".to_string())
        );
        for query in [
            "code=c1&state=s2",
            "code=c1",
            "state=",
            "error=access_denied",
        ] {
            assert_eq!(
                read_callback(query, "s1").map(|_| ()),
                Err(CallbackError::StateMismatch),
                "{query}"
            );
        }
        assert_eq!(
            read_callback("code=c1", "").map(|_| ()),
            Err(CallbackError::StateMismatch)
        );
        assert_eq!(
            read_callback("error=access_denied&state=s1", "s1").map(|_| ()),
            Err(CallbackError::Denied("access_denied".into()))
        );
        assert_eq!(
            read_callback("state=s1", "s1").map(|_| ()),
            Err(CallbackError::NoCode)
        );
        assert_ne!(new_state(), new_state());
        assert_eq!(new_state().len(), 32);
    }
}
