//! `notifications.*` in `config.yml`: where sync alerts and reports go and which triggers are
//! on (this service's addition; Elastic's Python service has no such keys).
//!
//! Invariants: the bot token and the webhook URL are [`Secret`]s, never quoted in a message
//! (the loader's secret keys include `bot_token` and `webhook_url`); validation does no IO
//! and reports every problem at once, each naming its key.

use crate::config::Secret;
use serde::{Deserialize, Serialize};

/// `notifications.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationsConfig {
    /// Kibana's base URL (`https://kibana.example.com:5601`): alerts link to the connector.
    pub kibana_url: Option<String>,
    /// `notifications.slack.*`.
    pub slack: SlackNotifyConfig,
}

/// `notifications.slack.*`: posting to Slack with a bot token or an incoming webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SlackNotifyConfig {
    /// A bot token (`xoxb-…`, scopes `chat:write`, and `files:write` for reports).
    pub bot_token: Option<Secret>,
    /// An incoming-webhook URL (posts to the channel chosen when it was made; no reports).
    pub webhook_url: Option<Secret>,
    /// Channel ids (`C…`), channel names (`#ops`) or user ids (`U…`, a DM from the app).
    pub targets: Vec<String>,
    /// The Web API base URL (default: `SLACK_API_BASE_URL`, else `https://slack.com/api`).
    pub api_url: Option<String>,
    /// Which events post a message.
    pub triggers: TriggersConfig,
    /// Notifications waiting to be sent; when full, new ones are dropped (and counted).
    pub queue_size: usize,
}

impl Default for SlackNotifyConfig {
    fn default() -> SlackNotifyConfig {
        SlackNotifyConfig {
            bot_token: None,
            webhook_url: None,
            targets: Vec::new(),
            api_url: None,
            triggers: TriggersConfig::default(),
            queue_size: 100,
        }
    }
}

/// `notifications.slack.triggers.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TriggersConfig {
    /// A job ended in error: one alert per failing episode, one "recovered" after it.
    pub job_error: bool,
    /// Alert when this many jobs of a connector failed in a row (0 = off).
    pub consecutive_failures: u32,
    /// Alert when a connector has not checked in for this many seconds (0 = off).
    pub stopped_checking_in: f64,
    /// A summary of every completed sync.
    pub sync_summary: bool,
    /// The job's figures as a CSV file after every completed sync (needs `bot_token`).
    pub csv_report: bool,
}

impl Default for TriggersConfig {
    fn default() -> TriggersConfig {
        TriggersConfig {
            job_error: true,
            consecutive_failures: 3,
            stopped_checking_in: 1800.0,
            sync_summary: false,
            csv_report: false,
        }
    }
}

/// Where Slack notifications go, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `chat.postMessage` (and the upload flow) with a bot token, to each target.
    Bot {
        /// The token.
        token: Secret,
        /// The targets.
        targets: Vec<String>,
    },
    /// An incoming webhook.
    Webhook {
        /// The URL (a secret: it is the credential).
        url: Secret,
    },
}

impl SlackNotifyConfig {
    /// Where to post, or `None` when Slack notifications are off (neither credential set).
    pub fn destination(&self) -> Option<Destination> {
        let set = |s: &Option<Secret>| s.clone().filter(|s| !s.expose().trim().is_empty());
        if let Some(token) = set(&self.bot_token) {
            return Some(Destination::Bot {
                token,
                targets: self.targets.clone(),
            });
        }
        set(&self.webhook_url).map(|url| Destination::Webhook { url })
    }
}

/// Whether `target` is a channel id, a user id or a channel name Slack accepts (pure).
pub fn valid_target(target: &str) -> bool {
    let id = |s: &str| {
        s.len() >= 2
            && matches!(s.as_bytes()[0], b'C' | b'G' | b'D' | b'U' | b'W')
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    let name = target.strip_prefix('#').unwrap_or(target);
    id(target)
        || (!name.is_empty()
            && name.len() <= 80
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)))
}

impl NotificationsConfig {
    /// Semantic checks (no IO): every problem at once, secrets never quoted.
    pub fn validate(&self, problems: &mut Vec<String>) {
        const AT: &str = "notifications.slack";
        let slack = &self.slack;
        let set = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.expose().trim().is_empty());
        let (token, webhook) = (set(&slack.bot_token), set(&slack.webhook_url));
        if let Some(url) = &self.kibana_url {
            if !is_http_url(url) {
                problems.push(format!(
                    "`notifications.kibana_url`: `{url}` is not an http(s) URL: write it like `https://kibana.example.com:5601`"
                ));
            }
        }
        if let Some(url) = &slack.api_url {
            if !is_http_url(url) {
                problems.push(format!(
                    "`{AT}.api_url`: `{url}` is not an http(s) URL: remove it to use https://slack.com/api"
                ));
            }
        }
        if token && webhook {
            problems.push(format!("`{AT}`: both `bot_token` and `webhook_url` are set: keep one (a bot token can post to several targets and upload reports)"));
        }
        if token {
            let value = slack.bot_token.as_ref().map(Secret::expose).unwrap_or("");
            if !(value.starts_with("xoxb-") || value.starts_with("xoxe.xoxb-")) {
                problems.push(format!("`{AT}.bot_token`: not a bot token (not shown: the value is a secret): use the app's Bot User OAuth Token, which starts with xoxb-"));
            }
            if slack.targets.is_empty() {
                problems.push(format!("`{AT}.targets`: empty: list where alerts go, e.g. [C0123ABCD] (a channel id), ['#ops'] (a channel name) or [U0123ABCD] (a user id, for a DM)"));
            }
        }
        if webhook {
            let value = slack.webhook_url.as_ref().map(Secret::expose).unwrap_or("");
            // http only on loopback (a local relay, the simulator): the URL is the credential.
            let secure = url::Url::parse(value).is_ok_and(|u| {
                u.scheme() == "https"
                    || (u.scheme() == "http"
                        && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
            });
            if !secure {
                problems.push(format!("`{AT}.webhook_url`: not an https URL (not shown: the value is a secret): paste the app's Incoming Webhook URL (https://hooks.slack.com/services/…)"));
            }
            if !slack.targets.is_empty() {
                problems.push(format!("`{AT}.targets`: an incoming webhook posts to the channel chosen when it was created: remove `targets`, or use a `bot_token` to choose them"));
            }
            if slack.triggers.csv_report {
                problems.push(format!("`{AT}.triggers.csv_report`: reports are uploaded as files, which an incoming webhook cannot do: set a `bot_token` (scope files:write) instead of `webhook_url`, or turn the report off"));
            }
        }
        if !token && !webhook && !slack.targets.is_empty() {
            problems.push(format!("`{AT}.targets`: set but nothing to post with: set `{AT}.bot_token` (or `webhook_url`)"));
        }
        for (i, target) in slack.targets.iter().enumerate() {
            if !valid_target(target) {
                problems.push(format!("`{AT}.targets[{i}]`: `{target}` is neither a channel id (C…), a user id (U…) nor a channel name (#name, lowercase)"));
            }
        }
        let stale = slack.triggers.stopped_checking_in;
        if !(stale.is_finite() && stale >= 0.0) {
            problems.push(format!(
                "`{AT}.triggers.stopped_checking_in`: must be 0 (off) or a number of seconds, got {stale}"
            ));
        }
        if slack.queue_size == 0 {
            problems.push(format!("`{AT}.queue_size`: must be at least 1"));
        }
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_ids_or_names() {
        for good in [
            "C0123ABCD",
            "U012AB",
            "G1",
            "D0AB",
            "#ops",
            "ops-alerts",
            "a.b_c",
        ] {
            assert!(valid_target(good), "{good}");
        }
        for bad in ["", "#", "Ops", "Cx", "C01 23", "@user", "#Ops"] {
            assert!(!valid_target(bad), "{bad}");
        }
    }

    fn problems(notifications: &str) -> Vec<String> {
        let yaml = format!(
            "connectors:\n  - {{connector_id: abc, service_type: slack}}\nnotifications:\n{notifications}"
        );
        match crate::config::Config::from_yaml_str(&yaml, std::path::Path::new("c.yml"), &|_| None)
        {
            Err(crate::config::ConfigError::Invalid { problems, .. }) => problems,
            Ok(_) => Vec::new(),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_key_and_no_secret() {
        let p = problems(
            "  kibana_url: kibana\n  slack:\n    bot_token: SECRET-TOKEN\n    webhook_url: SECRET-HOOK\n    targets: ['#Ops']\n    triggers: {csv_report: true, stopped_checking_in: -1}\n    queue_size: 0\n",
        );
        let text = p.join("\n");
        for expected in [
            "`notifications.kibana_url`",
            "both `bot_token` and `webhook_url` are set",
            "`notifications.slack.bot_token`: not a bot token",
            "`notifications.slack.webhook_url`: not an https URL",
            "`notifications.slack.targets`: an incoming webhook",
            "`notifications.slack.triggers.csv_report`",
            "`notifications.slack.targets[0]`: `#Ops`",
            "`notifications.slack.triggers.stopped_checking_in`",
            "`notifications.slack.queue_size`",
        ] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
        assert!(!text.contains("SECRET"), "{text}");
        let typo = problems("  slack:\n    trigers: {job_error: false}\n");
        assert_eq!(
            typo,
            ["`notifications.slack.trigers`: unknown key; did you mean `notifications.slack.triggers`?"]
        );
        let mistyped = problems("  slack:\n    bot_token: [SECRET-LIST]\n");
        assert!(!mistyped.join("").contains("SECRET"), "{mistyped:?}");
        assert_eq!(problems("  slack:\n    targets: [C1]\n").len(), 1);
        assert!(
            problems("  slack:\n    bot_token: xoxb-1\n    targets: [C1, '#ops', U2]\n").is_empty()
        );
        assert!(problems("  slack:\n    webhook_url: https://hooks.example/T/B/x\n").is_empty());
    }

    #[test]
    fn destination_prefers_the_token() {
        let mut config = SlackNotifyConfig::default();
        assert_eq!(config.destination(), None);
        config.webhook_url = Some(Secret::new("https://hooks.example/x"));
        assert!(matches!(
            config.destination(),
            Some(Destination::Webhook { .. })
        ));
        config.bot_token = Some(Secret::new("xoxb-1"));
        assert!(matches!(
            config.destination(),
            Some(Destination::Bot { .. })
        ));
    }
}
