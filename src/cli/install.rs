//! `connectors slack install`: connects a workspace to a connector without copying tokens by
//! hand. It prints Slack's authorize URL (the bot scopes the connector's configuration
//! needs), listens on a loopback port for Slack's redirect, checks `state`, exchanges the
//! code with `oauth.v2.access` and stores the bot token in the connector's configuration
//! (`token`, a sensitive field) through the connector store, in either protocol mode; with
//! token rotation also the refresh token, the client credentials and the expiry
//! ([`oauth::store_grant`]), which the scheduler uses to renew the token.
//!
//! Invariants: the listener binds 127.0.0.1 only and serves one callback; nothing is stored
//! unless the redirect carried this run's `state` and a code Slack exchanged; the client
//! secret and the token are [`Secret`]s: never printed, logged or in an error.

use super::{apply_values, connector_factory_defaults, require_connector, CliError};
use crate::config::Secret;
use crate::es::EsClient;
use crate::protocol::connector as conn;
use crate::protocol::indices::CONNECTORS_INDEX;
use crate::protocol::store::{self, ConnectorStore};
use crate::sources::slack::client::{resolve_base_url, BASE_URL_ENV};
use crate::sources::slack::oauth::{self, App, CallbackError};
use crate::sources::slack::source::missing_scopes;
use crate::sources::ConfigurationExt;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clap::{Args, Subcommand};
use serde_json::json;
use std::future::IntoFuture;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where the loopback listener expects Slack's redirect.
pub const CALLBACK_PATH: &str = "/slack/oauth/callback";

/// `slack …`.
#[derive(Debug, Subcommand)]
pub enum SlackCmd {
    /// Install the Slack app in a workspace (OAuth) and store its bot token in a connector.
    Install(InstallArgs),
}

fn secret(value: &str) -> Result<Secret, String> {
    if value.trim().is_empty() {
        return Err("empty".into());
    }
    Ok(Secret::new(value.trim()))
}

/// `slack install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The app's Client ID (Basic Information → App Credentials).
    #[arg(long, env = "SLACK_CLIENT_ID")]
    pub client_id: String,
    /// The app's Client Secret; prefer the environment variable (a command line is visible
    /// to other users of the machine).
    #[arg(long, env = "SLACK_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub client_secret: Secret,
    /// Bot scopes to ask for, comma-separated (default: what the connector's configuration
    /// needs: channels:history, channels:read, users:read, channels:join with
    /// auto_join_channels, and those of private channels, DMs and DLS when they are on).
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// The connector to store the token in (default: the only slack connector).
    #[arg(long, allow_hyphen_values = true)]
    pub connector_id: Option<String>,
    /// Loopback port for Slack's redirect (0: any free port).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// The redirect URL registered in the app, when it is not
    /// http://127.0.0.1:<port>/slack/oauth/callback (an https tunnel to that port).
    #[arg(long)]
    pub redirect_url: Option<String>,
    /// Seconds to wait for Slack's redirect.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// The Slack Web API base URL.
    #[arg(long, env = BASE_URL_ENV)]
    pub api_url: Option<String>,
}

/// Why the install did not complete (nothing was stored).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The redirect was refused (state, denial, no code).
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// No redirect in time.
    #[error("no redirect from Slack within {0} s: nothing was stored; open the printed URL in a browser signed in to the workspace (or raise --timeout)")]
    Timeout(u64),
    /// The loopback port could not be opened.
    #[error("cannot listen on {addr} for Slack's redirect: {reason}; pick another --port (and register that redirect URL in the app)")]
    Listen {
        /// The address.
        addr: String,
        /// The OS's reason.
        reason: String,
    },
    /// `oauth.v2.access` refused the code or failed.
    #[error("the code exchange failed: {0}; nothing was stored")]
    Exchange(String),
    /// Bad arguments.
    #[error("{0}")]
    Invalid(String),
}

impl From<InstallError> for CliError {
    fn from(error: InstallError) -> CliError {
        CliError::Invalid(error.to_string())
    }
}

/// The connector to install into: `id`, or the only slack connector.
async fn target_connector(es: &EsClient, id: Option<String>) -> Result<String, CliError> {
    if let Some(id) = id {
        return Ok(id);
    }
    let found = store::search_docs(
        es,
        CONNECTORS_INDEX,
        json!({"size": 100, "query": {"bool": {
            "filter": [{"term": {"service_type": "slack"}}],
            "must_not": [{"term": {"deleted": true}}]}}}),
    )
    .await?;
    match found.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(CliError::Invalid("no slack connector to install into: create one with `connectors connector create --service-type slack --index-name …`, or pass --connector-id".into())),
        many => Err(CliError::Invalid(format!(
            "several slack connectors ({}): choose one with --connector-id",
            many.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Runs `slack install`.
pub async fn install(
    store: &Arc<dyn ConnectorStore>,
    es: &EsClient,
    args: InstallArgs,
    json_out: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let id = target_connector(es, args.connector_id.clone()).await?;
    let connector = require_connector(store, &id).await?;
    if connector.source.service_type.as_deref() != Some("slack") {
        return Err(CliError::Invalid(format!(
            "connector [{id}] is not a slack connector"
        )));
    }
    let scope_options = oauth::scope_options(&connector.source.configuration);
    let scopes = if args.scopes.is_empty() {
        oauth::bot_scopes(&scope_options)
    } else {
        args.scopes
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let api_url = resolve_base_url(args.api_url.as_deref());
    let addr = format!("127.0.0.1:{}", args.port);
    let listener =
        tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| InstallError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    let redirect = args
        .redirect_url
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{port}{CALLBACK_PATH}"));
    let state = oauth::new_state();
    let url = oauth::authorize_url(&api_url, &args.client_id, &scopes, &redirect, &state)
        .map_err(InstallError::Invalid)?;
    writeln!(
        out,
        "Open this URL in a browser signed in to the Slack workspace and choose Allow:\n\n  {url}\n\nWaiting for Slack's redirect to {redirect} (listening on 127.0.0.1:{port}, {} s; Ctrl-C to stop)…",
        args.timeout
    )?;
    out.flush()?;
    let code = wait_for_callback(listener, state, Duration::from_secs(args.timeout)).await?;
    let app = App {
        api_url,
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
    };
    let cancel = CancellationToken::new();
    let installed = oauth::exchange(&app, &code, &redirect, oauth::ACCESS_RETRY, &cancel)
        .await
        .map_err(|e| InstallError::Exchange(oauth::exchange_advice(&e, &redirect)))?;
    // The schema (the factory's when the connector has none yet), then the grant.
    let (configuration, _) = apply_values(
        &connector.source.configuration,
        &[],
        connector_factory_defaults(&connector.source),
    )?;
    let mut configuration = conn::configuration(&configuration).map_err(CliError::Invalid)?;
    oauth::store_grant(&mut configuration, &installed, &app, chrono::Utc::now());
    store
        .set_configuration(&id, conn::to_value(&configuration))
        .await?;
    let mut shown = vec!["token=******".to_string()];
    if installed.refresh_token.is_some() {
        shown.extend(oauth::ROTATION_FIELDS.iter().map(|f| {
            let sensitive = configuration.get(*f).is_some_and(|c| c.sensitive);
            let value = configuration.str_value(f).unwrap_or_default();
            format!("{f}={}", if sensitive { "******".into() } else { value })
        }));
    }
    let missing = missing_scopes(&installed.scopes.join(","), &scope_options);
    let team = installed.team_name.as_deref().unwrap_or("the workspace");
    if json_out {
        writeln!(
            out,
            "{}",
            json!({"id": id, "team_id": installed.team_id, "team_name": installed.team_name,
                   "app_id": installed.app_id, "bot_user_id": installed.bot_user_id,
                   "scopes": installed.scopes, "missing_scopes": missing,
                   "token_rotation": installed.refresh_token.is_some(), "updated": shown})
        )?;
    } else {
        writeln!(
            out,
            "connector {id}: the Slack app {} is installed in {team} ({}) as bot user {}, scopes {}; stored {}",
            installed.app_id,
            installed.team_id,
            installed.bot_user_id,
            installed.scopes.join(","),
            shown.join(", ")
        )?;
    }
    if json_out {
        return Ok(());
    }
    if !missing.is_empty() {
        writeln!(out, "warning: the token lacks {} which the connector's configuration needs: its syncs will fail until the app is reinstalled with them", missing.join(", "))?;
    }
    if installed.refresh_token.is_some() {
        writeln!(out, "token rotation: the token expires in {} s; the service renews it ({} before it expires) with the stored refresh token", installed.expires_in.unwrap_or(0), humanize(oauth::RENEW_BEFORE))?;
    }
    Ok(())
}

fn humanize(duration: chrono::Duration) -> String {
    format!("{} h", duration.num_hours())
}

/// The loopback listener's state.
struct Callback {
    state: String,
    tx: mpsc::Sender<Result<Secret, CallbackError>>,
}

/// Serves the callback path until one redirect arrived (other paths get 404: browsers ask
/// for a favicon), answers the browser, and returns the code.
async fn wait_for_callback(
    listener: tokio::net::TcpListener,
    state: String,
    timeout: Duration,
) -> Result<Secret, InstallError> {
    let (tx, mut rx) = mpsc::channel(1);
    let app = axum::Router::new()
        .fallback(on_callback)
        .with_state(Arc::new(Callback { state, tx }));
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    let received = tokio::time::timeout(timeout, rx.recv()).await;
    stop.cancel();
    // Lets the answer to the browser go out; an idle keep-alive connection is closed.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    match received {
        Ok(Some(result)) => Ok(result?),
        _ => Err(InstallError::Timeout(timeout.as_secs())),
    }
}

async fn on_callback(State(callback): State<Arc<Callback>>, uri: Uri) -> Response {
    if uri.path() != CALLBACK_PATH {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let result = oauth::read_callback(uri.query().unwrap_or(""), &callback.state);
    let page = match &result {
        Ok(_) => (
            StatusCode::OK,
            "Slack authorized the app: return to the terminal (this tab can be closed)."
                .to_string(),
        ),
        Err(error) => (StatusCode::BAD_REQUEST, format!("Not installed: {error}")),
    };
    let _ = callback.tx.try_send(result);
    page.into_response()
}
