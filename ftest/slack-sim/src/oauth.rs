//! OAuth v2 as Slack runs it: the authorize page (`/oauth/v2/authorize`, answered with the
//! redirect the user's browser would follow), `oauth.v2.access` (the code exchange, and with
//! token rotation the refresh), and the tokens it mints (registered as simulator tokens
//! with the scopes asked for).
//!
//! Strict as Slack's docs: the client must authenticate (HTTP Basic, or `client_id` and
//! `client_secret` parameters): unknown `invalid_client_id`, wrong secret
//! `bad_client_secret`; a code is used once, by the app it was issued to, with the same
//! `redirect_uri` as the authorize request (`invalid_code`, `bad_redirect_uri`); `grant_type`
//! is `authorization_code` (default) or `refresh_token` (`invalid_grant_type`); a refresh
//! token is used once, and only when rotation is on (`invalid_refresh_token`). With rotation,
//! access tokens expire after `expires_in` seconds of simulator time (`token_expired`).

use crate::api::{ApiError, Params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// Seconds an access token lives with rotation on (Slack: 12 hours).
pub const EXPIRES_IN: i64 = 43_200;

/// What the user does on the authorize page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    #[default]
    Approve,
    Deny,
}

/// A Slack app that can be installed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    /// Token rotation on: expiring access tokens and refresh tokens.
    #[serde(default)]
    pub rotation: bool,
    /// The user's answer on the authorize page.
    #[serde(default)]
    pub decision: Decision,
    /// The app's redirect URLs; empty = any.
    #[serde(default)]
    pub redirect_urls: Vec<String>,
}

struct Code {
    client_id: String,
    scopes: Vec<String>,
    redirect_uri: Option<String>,
    used: bool,
}

struct Refresh {
    client_id: String,
    scopes: Vec<String>,
    used: bool,
}

/// Apps, codes, refresh tokens and token expiries.
#[derive(Default)]
pub struct OAuth {
    apps: HashMap<String, OAuthApp>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    /// Access token → expiry (simulator epoch seconds).
    expires: HashMap<String, i64>,
    next: u64,
    /// Exchanges and refreshes done.
    pub exchanges: u64,
    pub refreshes: u64,
}

/// A token to register with the simulator.
pub struct Minted {
    pub token: String,
    pub scopes: Vec<String>,
}

fn err(code: &str) -> ApiError {
    ApiError::Code(code.to_string())
}

/// Reads `Authorization: Basic base64(id:secret)`.
pub fn basic_credentials(header: Option<&str>) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = header?.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

impl OAuth {
    pub fn set_app(&mut self, app: OAuthApp) {
        self.apps.insert(app.client_id.clone(), app);
    }

    /// Whether `token` has expired at `now`.
    pub fn expired(&self, token: &str, now: i64) -> bool {
        self.expires.get(token).is_some_and(|&at| now >= at)
    }

    fn mint(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!(
            "{prefix}{:06}-{:016x}",
            self.next,
            self.next.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5eed
        )
    }

    /// The authorize page: where the browser is sent (`Ok(location)`), or an error page
    /// (`Err(status, text)`).
    pub fn authorize(&mut self, p: &Params) -> Result<String, (u16, String)> {
        let client_id = p
            .get("client_id")
            .ok_or((400, "missing client_id".to_string()))?;
        let app = self
            .apps
            .get(client_id)
            .cloned()
            .ok_or((400, "invalid_client_id".to_string()))?;
        let scope = p
            .get("scope")
            .ok_or((400, "invalid_scope: no scope".to_string()))?;
        let redirect = p
            .get("redirect_uri")
            .map(str::to_string)
            .or_else(|| app.redirect_urls.first().cloned())
            .ok_or((
                400,
                "bad_redirect_uri: none given or configured".to_string(),
            ))?;
        if !app.redirect_urls.is_empty() && !app.redirect_urls.contains(&redirect) {
            return Err((
                400,
                "bad_redirect_uri: not one of the app's redirect URLs".into(),
            ));
        }
        let mut url = redirect.clone();
        let state = p.get("state");
        match app.decision {
            Decision::Deny => {
                url.push_str(&query(&[("error", "access_denied")], state));
            }
            Decision::Approve => {
                let code = self.mint("code-");
                self.codes.insert(
                    code.clone(),
                    Code {
                        client_id: client_id.to_string(),
                        scopes: scope
                            .split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect(),
                        redirect_uri: p.get("redirect_uri").map(str::to_string),
                        used: false,
                    },
                );
                url.push_str(&query(&[("code", &code)], state));
            }
        }
        Ok(url)
    }

    /// `oauth.v2.access`: the answer body and the token to register.
    pub fn access(
        &mut self,
        p: &Params,
        basic: Option<(String, String)>,
        team: (&str, &str),
        bot_user_id: &str,
        now: i64,
    ) -> Result<(Vec<u8>, Minted), ApiError> {
        let (client_id, secret) = match basic {
            Some(pair) => pair,
            None => (
                p.get("client_id")
                    .ok_or_else(|| err("invalid_client_id"))?
                    .to_string(),
                p.get("client_secret")
                    .ok_or_else(|| err("bad_client_secret"))?
                    .to_string(),
            ),
        };
        let app = self
            .apps
            .get(&client_id)
            .cloned()
            .ok_or_else(|| err("invalid_client_id"))?;
        if app.client_secret != secret {
            return Err(err("bad_client_secret"));
        }
        let scopes = match p.get("grant_type").unwrap_or("authorization_code") {
            "authorization_code" => {
                let code = p.get("code").ok_or_else(|| err("invalid_code"))?;
                let grant = self
                    .codes
                    .get_mut(code)
                    .ok_or_else(|| err("invalid_code"))?;
                if grant.used || grant.client_id != client_id {
                    return Err(err("invalid_code"));
                }
                if grant.redirect_uri.is_some()
                    && grant.redirect_uri.as_deref() != p.get("redirect_uri")
                {
                    return Err(err("bad_redirect_uri"));
                }
                grant.used = true;
                self.exchanges += 1;
                grant.scopes.clone()
            }
            "refresh_token" => {
                let token = p
                    .get("refresh_token")
                    .ok_or_else(|| err("invalid_refresh_token"))?;
                let grant = self
                    .refresh
                    .get_mut(token)
                    .ok_or_else(|| err("invalid_refresh_token"))?;
                if grant.used || grant.client_id != client_id || !app.rotation {
                    return Err(err("invalid_refresh_token"));
                }
                grant.used = true;
                self.refreshes += 1;
                grant.scopes.clone()
            }
            _ => return Err(err("invalid_grant_type")),
        };
        let scope = scopes.join(",");
        let access = if app.rotation {
            self.mint("xoxe.xoxb-sim-")
        } else {
            self.mint("xoxb-sim-")
        };
        let mut body = json!({"ok": true, "app_id": format!("A{}", client_id.replace('.', "").chars().take(9).collect::<String>().to_uppercase()),
            "authed_user": {"id": "U00000000"}, "scope": scope, "token_type": "bot",
            "access_token": access, "bot_user_id": bot_user_id,
            "team": {"id": team.0, "name": team.1}, "enterprise": null, "is_enterprise_install": false});
        if app.rotation {
            let refresh = self.mint("xoxe-1-sim-");
            self.refresh.insert(
                refresh.clone(),
                Refresh {
                    client_id: client_id.clone(),
                    scopes: scopes.clone(),
                    used: false,
                },
            );
            self.expires.insert(access.clone(), now + EXPIRES_IN);
            body["refresh_token"] = json!(refresh);
            body["expires_in"] = json!(EXPIRES_IN);
        }
        Ok((
            body.to_string().into_bytes(),
            Minted {
                token: access,
                scopes,
            },
        ))
    }
}

/// `?a=b&state=…` (the redirect URLs of a loopback install have no query of their own).
fn query(pairs: &[(&str, &str)], state: Option<&str>) -> String {
    let mut all: Vec<(&str, &str)> = pairs.to_vec();
    if let Some(state) = state {
        all.push(("state", state));
    }
    format!("?{}", serde_urlencoded::to_string(&all).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn app(rotation: bool, decision: Decision) -> OAuthApp {
        OAuthApp {
            client_id: "1.2".into(),
            client_secret: "s3".into(),
            rotation,
            decision,
            redirect_urls: vec![],
        }
    }

    fn code_of(location: &str) -> String {
        let q = location.split_once('?').unwrap().1;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
        pairs.into_iter().find(|(k, _)| k == "code").unwrap().1
    }

    #[test]
    fn codes_are_used_once_by_their_app() {
        let mut o = OAuth::default();
        o.set_app(app(false, Decision::Approve));
        let loc = o
            .authorize(&params(&[
                ("client_id", "1.2"),
                ("scope", "channels:read"),
                ("state", "st"),
                ("redirect_uri", "http://127.0.0.1:1/cb"),
            ]))
            .unwrap();
        assert!(loc.starts_with("http://127.0.0.1:1/cb?code="), "{loc}");
        assert!(loc.ends_with("&state=st"));
        let code = code_of(&loc);
        let good = params(&[("code", &code), ("redirect_uri", "http://127.0.0.1:1/cb")]);
        let creds = || Some(("1.2".to_string(), "s3".to_string()));
        let wrong = Some(("1.2".to_string(), "nope".to_string()));
        assert_eq!(
            o.access(&good, wrong, ("T1", "t"), "UB", 0).err(),
            Some(err("bad_client_secret"))
        );
        let other = params(&[("code", &code), ("redirect_uri", "http://else/cb")]);
        assert_eq!(
            o.access(&other, creds(), ("T1", "t"), "UB", 0).err(),
            Some(err("bad_redirect_uri"))
        );
        let (body, minted) = o.access(&good, creds(), ("T1", "t"), "UB", 0).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["access_token"], minted.token.as_str());
        assert!(v.get("refresh_token").is_none());
        assert_eq!(
            o.access(&good, creds(), ("T1", "t"), "UB", 0).err(),
            Some(err("invalid_code"))
        );
    }

    #[test]
    fn rotation_refreshes_once_and_expires() {
        let mut o = OAuth::default();
        o.set_app(app(true, Decision::Approve));
        let loc = o
            .authorize(&params(&[("client_id", "1.2"), ("scope", "a,b")]))
            .err();
        assert_eq!(loc.map(|e| e.0), Some(400), "no redirect uri anywhere");
        let loc = o
            .authorize(&params(&[
                ("client_id", "1.2"),
                ("scope", "a,b"),
                ("redirect_uri", "http://x/cb"),
            ]))
            .unwrap();
        let code = code_of(&loc);
        let p = params(&[
            ("client_id", "1.2"),
            ("client_secret", "s3"),
            ("code", &code),
            ("redirect_uri", "http://x/cb"),
        ]);
        let (body, minted) = o.access(&p, None, ("T1", "t"), "UB", 100).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["expires_in"], EXPIRES_IN);
        assert!(o.expired(&minted.token, 100 + EXPIRES_IN));
        assert!(!o.expired(&minted.token, 99 + EXPIRES_IN));
        let refresh = v["refresh_token"].as_str().unwrap().to_string();
        let r = params(&[
            ("client_id", "1.2"),
            ("client_secret", "s3"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
        ]);
        let (body, _) = o.access(&r, None, ("T1", "t"), "UB", 200).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_ne!(v["refresh_token"], refresh.as_str());
        assert_eq!(
            o.access(&r, None, ("T1", "t"), "UB", 200).err(),
            Some(err("invalid_refresh_token"))
        );
        let bad = params(&[
            ("client_id", "1.2"),
            ("client_secret", "s3"),
            ("grant_type", "password"),
        ]);
        assert_eq!(
            o.access(&bad, None, ("T1", "t"), "UB", 0).err(),
            Some(err("invalid_grant_type"))
        );
    }

    #[test]
    fn denial_redirects_with_access_denied() {
        let mut o = OAuth::default();
        o.set_app(app(false, Decision::Deny));
        let loc = o
            .authorize(&params(&[
                ("client_id", "1.2"),
                ("scope", "a"),
                ("state", "s"),
                ("redirect_uri", "http://x/cb"),
            ]))
            .unwrap();
        assert_eq!(loc, "http://x/cb?error=access_denied&state=s");
        assert_eq!(
            o.authorize(&params(&[("client_id", "9"), ("scope", "a")]))
                .err()
                .map(|e| e.0),
            Some(400)
        );
    }
}
