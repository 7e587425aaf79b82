//! Slack as a destination and the OAuth install, over HTTP: `chat.postMessage` with Block
//! Kit (and to a user id), the three-step external upload, incoming webhooks, the authorize
//! redirect and `oauth.v2.access` with rotation, each with the errors Slack documents.

mod common;

use common::{start, Client};
use serde_json::{json, Value};
use slack_sim::oauth::{Decision, OAuthApp};
use slack_sim::TokenSpec;

const UPLOADER: &str = "xoxb-uploader";

async fn member_channel(c: &Client) -> (String, String) {
    let r = c.get("conversations.list", &[("limit", "1000")]).await;
    let ch = r.json["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["is_member"] == true && c["is_archived"] == false)
        .unwrap()
        .clone();
    (
        ch["id"].as_str().unwrap().to_string(),
        ch["name"].as_str().unwrap().to_string(),
    )
}

fn blocks() -> String {
    json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]).to_string()
}

#[tokio::test]
async fn post_message_takes_blocks_and_checks_them() {
    let sim = start();
    let c = Client::new(&sim);
    let (id, name) = member_channel(&c).await;
    let r = c
        .post_form(
            "chat.postMessage",
            &[
                ("channel", &id),
                ("text", "fallback"),
                ("blocks", &blocks()),
            ],
        )
        .await;
    assert!(r.ok(), "{}", r.text);
    assert_eq!(r.json["channel"], id.as_str());
    let by_name = c
        .post_form(
            "chat.postMessage",
            &[("channel", &format!("#{name}")), ("blocks", &blocks())],
        )
        .await;
    assert_eq!(
        by_name.json["channel"],
        id.as_str(),
        "a name resolves to the id"
    );
    let posted = sim.posted();
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[0].text, "fallback");
    assert_eq!(posted[0].blocks.as_ref().unwrap()[0]["type"], "section");
    for (params, code) in [
        (vec![("channel", id.as_str())], "no_text"),
        (
            vec![
                ("channel", id.as_str()),
                ("blocks", "[{\"type\":\"section\"}]"),
            ],
            "invalid_blocks",
        ),
        (
            vec![("channel", id.as_str()), ("blocks", "{")],
            "invalid_blocks_format",
        ),
        (
            vec![("channel", "C_NOPE"), ("text", "x")],
            "channel_not_found",
        ),
        (
            vec![("channel", "U_NOPE"), ("text", "x")],
            "channel_not_found",
        ),
    ] {
        let r = c.post_form("chat.postMessage", &params).await;
        assert_eq!(r.error(), code, "{params:?}");
    }
    let bad = Client::with_token(&sim, Some("xoxb-unknown"));
    assert_eq!(
        bad.post_form("chat.postMessage", &[("channel", &id), ("text", "x")])
            .await
            .error(),
        "invalid_auth"
    );
    // A user id: the app's DM with them.
    let user = sim.workspace().bot_user_id;
    let users = c.get("users.list", &[]).await;
    let human = users.json["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["is_bot"] == false && u["deleted"] == false && u["id"] != user.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dm = c
        .post_form("chat.postMessage", &[("channel", &human), ("text", "psst")])
        .await;
    assert!(dm.ok(), "{}", dm.text);
    assert!(dm.json["channel"].as_str().unwrap().starts_with('D'));
}

#[tokio::test]
async fn the_external_upload_takes_three_steps() {
    let sim = start();
    let c = Client::new(&sim);
    let (channel, _) = member_channel(&c).await;
    // The default bot token has no files:write.
    let r = c
        .post_form(
            "files.getUploadURLExternal",
            &[("filename", "r.csv"), ("length", "3")],
        )
        .await;
    assert_eq!(r.error(), "missing_scope");
    assert_eq!(r.json["needed"], "files:write");
    sim.set_token(TokenSpec {
        token: UPLOADER.into(),
        kind: Default::default(),
        scopes: vec!["chat:write".into(), "files:write".into()],
        revoked: false,
        user: None,
    });
    let c = Client::with_token(&sim, Some(UPLOADER));
    assert_eq!(
        c.post_form("files.getUploadURLExternal", &[("filename", "r.csv")])
            .await
            .error(),
        "invalid_arguments"
    );
    assert_eq!(
        c.post_form(
            "files.getUploadURLExternal",
            &[("filename", "r.csv"), ("length", "0")]
        )
        .await
        .error(),
        "missing_argument"
    );
    let r = c
        .post_form(
            "files.getUploadURLExternal",
            &[("filename", "r.csv"), ("length", "3")],
        )
        .await;
    assert!(r.ok(), "{}", r.text);
    let url = r.json["upload_url"].as_str().unwrap().to_string();
    let id = r.json["file_id"].as_str().unwrap().to_string();
    let files = json!([{"id": id, "title": "Report"}]).to_string();
    // Not uploaded yet.
    let early = c
        .post_form(
            "files.completeUploadExternal",
            &[("files", &files), ("channel_id", &channel)],
        )
        .await;
    assert_eq!(early.error(), "file_not_found");
    let short = c.http.post(&url).body("ab").send().await.unwrap();
    assert_eq!(short.status(), 400);
    let up = c.http.post(&url).body("a,b").send().await.unwrap();
    assert_eq!(up.status(), 200);
    assert_eq!(up.text().await.unwrap(), "OK - 3");
    let wrong = c
        .post_form(
            "files.completeUploadExternal",
            &[("files", &files), ("channel_id", "C_NOPE")],
        )
        .await;
    assert_eq!(wrong.error(), "channel_not_found");
    assert_eq!(
        c.post_form("files.completeUploadExternal", &[("channel_id", &channel)])
            .await
            .error(),
        "invalid_arguments"
    );
    let done = c
        .post_form(
            "files.completeUploadExternal",
            &[
                ("files", &files),
                ("channel_id", &channel),
                ("initial_comment", "here"),
            ],
        )
        .await;
    assert!(done.ok(), "{}", done.text);
    assert_eq!(done.json["files"][0]["id"], id.as_str());
    let again = c
        .post_form(
            "files.completeUploadExternal",
            &[("files", &files), ("channel_id", &channel)],
        )
        .await;
    assert_eq!(again.error(), "file_not_found", "a file is completed once");
    let shared = sim.files();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].content, "a,b");
    assert_eq!(shared[0].channel_id.as_deref(), Some(channel.as_str()));
    assert_eq!(shared[0].initial_comment.as_deref(), Some("here"));
}

#[tokio::test]
async fn incoming_webhooks_post_or_say_why_not() {
    let sim = start();
    let url = sim.webhook_url("hook1", "C_ALERTS");
    let http = reqwest::Client::new();
    let ok = http
        .post(&url)
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (ok.status().as_u16(), ok.text().await.unwrap()),
        (200, "ok".to_string())
    );
    let empty = http.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(
        (empty.status().as_u16(), empty.text().await.unwrap()),
        (400, "no_text".to_string())
    );
    let bad = http.post(&url).body("{").send().await.unwrap();
    assert_eq!(bad.text().await.unwrap(), "invalid_payload");
    let gone = http
        .post(url.replace("hook1", "hook2"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (gone.status().as_u16(), gone.text().await.unwrap()),
        (404, "no_service".to_string())
    );
    assert_eq!(sim.posted().len(), 1);
    assert_eq!(sim.posted()[0].channel, "webhook:C_ALERTS");
}

#[tokio::test]
async fn oauth_install_exchange_and_rotation() {
    let sim = start();
    sim.set_oauth_app(OAuthApp {
        client_id: "111.222".into(),
        client_secret: "app-secret".into(),
        rotation: true,
        decision: Decision::Approve,
        redirect_urls: vec!["http://127.0.0.1:9/cb".into()],
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!("{}/oauth/v2/authorize", sim.base_url());
    let r = http
        .get(&authorize)
        .query(&[
            ("client_id", "111.222"),
            ("scope", "channels:read,channels:history"),
            ("state", "xyz"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("http://127.0.0.1:9/cb?code="),
        "{location}"
    );
    assert!(location.ends_with("&state=xyz"));
    let unlisted = http
        .get(&authorize)
        .query(&[
            ("client_id", "111.222"),
            ("scope", "a"),
            ("redirect_uri", "http://evil/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unlisted.status(), 400);
    let code: Vec<(String, String)> =
        serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap();
    let code = code[0].1.clone();
    let access = format!("{}/oauth.v2.access", sim.api_url());
    let exchange = |secret: &'static str, code: String| {
        let http = http.clone();
        let access = access.clone();
        async move {
            let r = http
                .post(&access)
                .basic_auth("111.222", Some(secret))
                .form(&[
                    ("code", code.as_str()),
                    ("redirect_uri", "http://127.0.0.1:9/cb"),
                ])
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        exchange("wrong", code.clone()).await["error"],
        "bad_client_secret"
    );
    let v = exchange("app-secret", code.clone()).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["token_type"], "bot");
    assert_eq!(v["expires_in"], 43_200);
    let token = v["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("xoxe.xoxb-"));
    assert_eq!(exchange("app-secret", code).await["error"], "invalid_code");
    // The minted token works with the scopes asked for.
    let c = Client::with_token(&sim, Some(&token));
    assert!(c.get("conversations.list", &[]).await.ok());
    assert_eq!(c.get("users.list", &[]).await.error(), "missing_scope");
    let refresh = v["refresh_token"].as_str().unwrap();
    let renewed: Value = http
        .post(&access)
        .form(&[
            ("client_id", "111.222"),
            ("client_secret", "app-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(renewed["ok"], true, "{renewed}");
    assert_ne!(renewed["access_token"], token.as_str());
    assert_eq!(sim.oauth_counts(), (1, 1));
}
