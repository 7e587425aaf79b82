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

use super::client::{ClientConfig, Head, SlackClient, SlackError, Verb};
use super::source::REQUIRED_SCOPES;
use crate::config::Secret;
use crate::retry::RetryParams;
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The authorize page, relative to Slack's site (`https://slack.com`).
pub const AUTHORIZE_PATH: &str = "oauth/v2/authorize";

/// The bot scopes a connector with this `auto_join_channels` needs (pure): the source's
/// required scopes, plus `channels:join` when it joins channels itself.
pub fn bot_scopes(auto_join_channels: bool) -> Vec<String> {
    REQUIRED_SCOPES
        .iter()
        .copied()
        .chain(auto_join_channels.then_some("channels:join"))
        .map(str::to_string)
        .collect()
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

/// Exchanges the redirect's `code` (with the same `redirect_uri` as the authorize request)
/// for the bot token.
pub async fn exchange(
    app: &App,
    code: &Secret,
    redirect_uri: &str,
    retry: RetryParams,
    cancel: &CancellationToken,
) -> Result<Installed, SlackError> {
    let client = SlackClient::new(ClientConfig {
        base_url: app.api_url.clone(),
        token: Secret::new(""),
        timeout: Duration::from_secs(30),
        tier_scale: 1.0,
        pace: false,
        retry,
    })?
    .with_client_credentials(&app.client_id, &app.client_secret);
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri),
    ];
    client
        .call_with("oauth.v2.access", Verb::PostForm, &params, cancel, granted)
        .await
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
            bot_scopes(false),
            ["channels:history", "channels:read", "users:read"]
        );
        assert_eq!(
            bot_scopes(true).last().map(String::as_str),
            Some("channels:join")
        );
    }

    #[test]
    fn the_authorize_page_is_beside_the_api() {
        let scopes = bot_scopes(false);
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
