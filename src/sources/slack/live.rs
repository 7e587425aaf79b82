//! Live updates of a Slack connector: its configuration (`live_updates`, `app_token`,
//! `signing_secret`) and the [`SlackReceiver`](super::events::SlackReceiver) the service
//! routes Events API deliveries to (HTTP) or that opens its own connection (Socket Mode,
//! [`super::socket`]).
//!
//! Invariants: both secrets are [`Secret`]s (never in a log line or `Debug`); a receiver
//! starts only from a configuration that passes [`LiveConfig::from_configuration`] (http
//! needs a signing secret; document-level security is refused for now, because live
//! documents would need each channel's readers); its translation context (names,
//! channels the sync reads, permalink base) comes from one `auth.test`, `users.list` and
//! `conversations.list` pass at start.

use super::events::{EventContext, SlackReceiver};
use super::socket::SocketOptions;
use super::source::ChannelPlan;
use super::{SlackOptions, SlackSource};
use crate::config::Secret;
use crate::live::receive::LiveReceiver;
use crate::sources::{Configuration, ConfigurationExt, SourceError};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Label of `live_updates`, for messages.
pub const LIVE_LABEL: &str = "Live updates";

/// How events reach the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No live updates (the default): syncs only.
    Off,
    /// Socket Mode with an app-level token ([`super::socket`]).
    SocketMode,
    /// The HTTP Events API on `service.http.listen`.
    Http,
}

/// A connector's live-update settings.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// The transport.
    pub transport: Transport,
    /// `xapp-…` (Socket Mode).
    pub app_token: Secret,
    /// The app's signing secret (HTTP).
    pub signing_secret: Secret,
}

impl LiveConfig {
    /// Reads and checks the live fields; messages name the field to fix.
    pub fn from_configuration(configuration: &Configuration) -> Result<LiveConfig, SourceError> {
        let mode = configuration.str_value("live_updates").unwrap_or_default();
        let transport = match mode.as_str() {
            "" | "off" => Transport::Off,
            "socket_mode" => Transport::SocketMode,
            "http" => Transport::Http,
            other => {
                return Err(SourceError::Configuration(format!(
                    "'{LIVE_LABEL}' must be 'off', 'socket_mode' or 'http', got '{other}'"
                )))
            }
        };
        let config = LiveConfig {
            transport,
            app_token: Secret::new(configuration.str_value("app_token").unwrap_or_default()),
            signing_secret: Secret::new(
                configuration
                    .str_value("signing_secret")
                    .unwrap_or_default(),
            ),
        };
        match transport {
            Transport::Http if config.signing_secret.is_empty() => Err(SourceError::Configuration(
                "live updates over http need the app's 'Signing secret' (Slack app settings → Basic Information)".into(),
            )),
            Transport::SocketMode if !config.app_token.expose().starts_with("xapp-") => {
                Err(SourceError::Configuration(
                    "live updates over Socket Mode need an app-level token ('App-level token', xapp-…, scope connections:write)".into(),
                ))
            }
            _ => Ok(config),
        }
    }
}

/// The receiver of `connector_id`'s Events API deliveries, or `None` when its live updates
/// are off.
pub async fn receiver(
    connector_id: &str,
    configuration: &Configuration,
    cancel: &CancellationToken,
) -> Result<Option<Arc<dyn LiveReceiver>>, SourceError> {
    let live = LiveConfig::from_configuration(configuration)?;
    if live.transport == Transport::Off {
        return Ok(None);
    }
    let mut options = SlackOptions::from_configuration(configuration)?;
    options.connector_id = connector_id.to_string();
    if options.use_document_level_security {
        return Err(SourceError::Unsupported(
            "live updates are not available with document level security yet: turn one of them off"
                .into(),
        ));
    }
    let socket = SocketOptions::new(&options.base_url, live.app_token.clone(), options.retry);
    let context = context(options, cancel).await?;
    Ok(Some(Arc::new(match live.transport {
        Transport::SocketMode => SlackReceiver::socket_mode(socket, context),
        _ => SlackReceiver::new(live.signing_secret, context),
    })))
}

/// The translation context, read from Slack once.
pub async fn context(
    options: SlackOptions,
    cancel: &CancellationToken,
) -> Result<EventContext, SourceError> {
    let source = SlackSource::new(options.clone())?;
    let (names, channels, base) = source.directory(cancel).await?;
    let channels = channels
        .into_iter()
        .filter(|(channel, plan)| *plan != ChannelPlan::Ignore && channel.name.is_some())
        .map(|(channel, _)| (channel.id, channel.name.unwrap_or_default()))
        .collect();
    let bot_user = source.own_user(cancel).await?;
    Ok(EventContext {
        names,
        channels,
        base,
        now: options.now,
        options: Some(options),
        bot_user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ConfigField;
    use serde_json::json;

    fn config(mode: &str, secret: &str) -> Configuration {
        let mut c = super::super::default_configuration();
        c.insert(
            "live_updates".into(),
            ConfigField::new("x", "str", 1).value(json!(mode)),
        );
        c.insert(
            "signing_secret".into(),
            ConfigField::new("x", "str", 1).value(json!(secret)),
        );
        c
    }

    #[test]
    fn live_configuration() {
        let off = LiveConfig::from_configuration(&super::super::default_configuration()).unwrap();
        assert_eq!(off.transport, Transport::Off);
        let http = LiveConfig::from_configuration(&config("http", "shh-secret")).unwrap();
        assert_eq!(http.transport, Transport::Http);
        assert!(!format!("{http:?}").contains("shh-secret"));
        let error = LiveConfig::from_configuration(&config("http", "")).unwrap_err();
        assert!(error.to_string().contains("Signing secret"), "{error}");
        let mut socket = config("socket_mode", "");
        socket.insert(
            "app_token".into(),
            ConfigField::new("x", "str", 1).value(json!("xapp-1-A1-1-app-secret")),
        );
        let live = LiveConfig::from_configuration(&socket).unwrap();
        assert_eq!(live.transport, Transport::SocketMode);
        assert!(!format!("{live:?}").contains("app-secret"));
        let error = LiveConfig::from_configuration(&config("socket_mode", "")).unwrap_err();
        assert!(error.to_string().contains("xapp-"), "{error}");
        let error = LiveConfig::from_configuration(&config("carrier_pigeon", "")).unwrap_err();
        assert!(
            error.to_string().contains("'off', 'socket_mode' or 'http'"),
            "{error}"
        );
    }
}
