//! Slack method behaviour over HTTP: response shapes, paging edges, auth and
//! scopes.

mod common;

use common::{s, start, Client, NOW, TOKEN};
use serde_json::{json, Value};
use slack_sim::{Mutation, TokenKind, TokenSpec};
use std::collections::HashSet;

fn has(v: &Value, fields: &[&str]) {
    for f in fields {
        assert!(v.get(f).is_some(), "missing {f} in {v}");
    }
}

/// Finds (channel id, history) of member public channels.
async fn member_histories(c: &Client) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for ch in c.channels().await {
        if ch["is_member"] == json!(true) {
            let id = s(&ch["id"]).to_string();
            let h = c.history(&id).await;
            out.push((id, h));
        }
    }
    out
}

#[tokio::test]
async fn auth_test_team_info_and_headers() {
    let sim = start();
    let c = Client::new(&sim);
    let r = c.get("auth.test", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.ok());
    has(
        &r.json,
        &[
            "url",
            "team",
            "user",
            "team_id",
            "user_id",
            "bot_id",
            "is_enterprise_install",
        ],
    );
    assert!(r
        .header("x-oauth-scopes")
        .unwrap()
        .contains("channels:history"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let t = c.get("team.info", &[]).await;
    assert!(t.ok());
    has(
        &t.json["team"],
        &["id", "name", "domain", "email_domain", "icon"],
    );
    assert_eq!(t.header("x-accepted-oauth-scopes"), Some("team:read"));
    // Unknown method: HTTP 200, as Slack answers it.
    let u = c.get("foo.bar", &[]).await;
    assert_eq!(u.status, 200);
    assert_eq!(
        u.json,
        json!({"ok": false, "error": "unknown_method", "req_method": "foo.bar"})
    );
}

#[tokio::test]
async fn users_list_shapes_and_paging() {
    let sim = start();
    let c = Client::new(&sim);
    let all = c.get("users.list", &[]).await;
    assert!(all.ok());
    has(&all.json, &["members", "cache_ts", "response_metadata"]);
    let members = all.json["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), sim.workspace().users);
    assert!(members
        .iter()
        .any(|m| m["id"] == "USLACKBOT" && m["is_bot"] == false));
    assert!(members
        .iter()
        .any(|m| m["is_bot"] == true && m["profile"]["bot_id"].is_string()));
    assert!(members.iter().any(|m| m["deleted"] == true));
    for m in &members {
        has(
            m,
            &[
                "id",
                "team_id",
                "name",
                "deleted",
                "real_name",
                "profile",
                "is_bot",
                "is_app_user",
                "updated",
            ],
        );
        has(
            &m["profile"],
            &[
                "display_name",
                "display_name_normalized",
                "real_name",
                "real_name_normalized",
                "first_name",
                "last_name",
            ],
        );
        if m["deleted"] == false {
            has(m, &["is_admin", "is_owner", "tz", "tz_label", "tz_offset"]);
            if m["is_bot"] == false && m["id"] != "USLACKBOT" {
                assert!(m["profile"]["email"].as_str().unwrap().contains('@'));
            }
        }
    }
    // Cursor paging: every user exactly once; cursors carry `=` padding.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut p = vec![("limit", "7")];
        if !cursor.is_empty() {
            p.push(("cursor", &cursor));
        }
        let r = c.get("users.list", &p).await;
        seen.extend(
            r.json["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| s(&m["id"]).to_string()),
        );
        cursor = r.next_cursor();
        if cursor.is_empty() {
            break;
        }
        assert!(cursor.ends_with('='), "{cursor}");
    }
    let want: Vec<String> = members.iter().map(|m| s(&m["id"]).to_string()).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn conversations_list_filters_after_cut() {
    let sim = start();
    let c = Client::new(&sim);
    let ws = sim.workspace();
    let public = c.channels().await;
    assert_eq!(public.len(), ws.public_channels);
    for ch in &public {
        has(
            ch,
            &[
                "id",
                "name",
                "name_normalized",
                "created",
                "updated",
                "creator",
                "is_archived",
                "is_private",
                "is_member",
                "is_channel",
                "is_group",
                "is_im",
                "is_mpim",
                "topic",
                "purpose",
                "num_members",
            ],
        );
        has(&ch["topic"], &["value", "creator", "last_set"]);
        assert!(s(&ch["id"]).starts_with('C'));
        assert_eq!(ch["is_private"], false);
    }
    assert!(public.iter().any(|c| c["is_archived"] == true));
    // limit=1 walks the full conversation list: pages holding a DM or a
    // private channel come back empty while the cursor continues.
    let mut empty_with_cursor = 0;
    let mut found = 0;
    let mut cursor = String::new();
    loop {
        let mut p = vec![("limit", "1")];
        if !cursor.is_empty() {
            p.push(("cursor", &cursor));
        }
        let r = c.get("conversations.list", &p).await;
        let n = r.json["channels"].as_array().unwrap().len();
        found += n;
        cursor = r.next_cursor();
        if n == 0 && !cursor.is_empty() {
            empty_with_cursor += 1;
        }
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(found, public.len());
    assert!(empty_with_cursor > 0);
    // exclude_archived and other types.
    let live = c
        .all(
            "conversations.list",
            "channels",
            &[("exclude_archived", "true"), ("limit", "200")],
        )
        .await;
    assert_eq!(
        live.len(),
        public.iter().filter(|c| c["is_archived"] == false).count()
    );
    let others = c
        .all(
            "conversations.list",
            "channels",
            &[("types", "private_channel,im,mpim"), ("limit", "200")],
        )
        .await;
    assert!(others
        .iter()
        .any(|c| c["is_im"] == true && c["user"].is_string()));
    assert!(others.iter().any(|c| c["is_mpim"] == true));
    assert!(others
        .iter()
        .any(|c| c["is_private"] == true && c["is_mpim"] == false));
    assert!(others
        .iter()
        .all(|c| c["is_im"] == true || c["is_member"] == true));
    let bad = c.get("conversations.list", &[("types", "nope")]).await;
    assert_eq!(bad.error(), "invalid_types");
}

#[tokio::test]
async fn history_shapes_cover_slack_message_kinds() {
    let sim = start();
    let c = Client::new(&sim);
    let hs = member_histories(&c).await;
    let all: Vec<&Value> = hs.iter().flat_map(|(_, h)| h.iter()).collect();
    for m in &all {
        assert_eq!(m["type"], "message");
        let ts = s(&m["ts"]);
        assert!(ts.len() == 17 && ts.as_bytes()[10] == b'.', "{ts}");
        assert!(m["text"].is_string());
    }
    let sub = |st: &str| all.iter().filter(|m| m["subtype"] == st).count();
    assert!(sub("bot_message") > 0 && sub("channel_join") > 0 && sub("file_share") > 0);
    assert!(sub("thread_broadcast") > 0 && sub("me_message") > 0);
    let bot = all.iter().find(|m| m["subtype"] == "bot_message").unwrap();
    has(bot, &["bot_id", "username", "attachments"]);
    let file = all.iter().find(|m| m["subtype"] == "file_share").unwrap();
    has(
        &file["files"][0],
        &[
            "id",
            "name",
            "mimetype",
            "url_private",
            "url_private_download",
            "permalink",
        ],
    );
    let parent = all
        .iter()
        .find(|m| m["reply_count"].as_u64().unwrap_or(0) > 0)
        .unwrap();
    has(
        parent,
        &[
            "thread_ts",
            "reply_count",
            "reply_users",
            "reply_users_count",
            "latest_reply",
        ],
    );
    assert_eq!(parent["thread_ts"], parent["ts"]);
    let bc = all
        .iter()
        .find(|m| m["subtype"] == "thread_broadcast")
        .unwrap();
    assert_ne!(bc["thread_ts"], bc["ts"]);
    assert!(all
        .iter()
        .any(|m| m["edited"]["ts"].is_string() && m["edited"]["user"].is_string()));
    assert!(all.iter().any(|m| m["reactions"][0]["count"].is_u64()));
    assert!(all.iter().any(|m| m["blocks"][0]["type"] == "rich_text"));
    assert!(all.iter().any(|m| s(&m["text"]).contains("<@U")));
    assert!(all.iter().any(|m| s(&m["text"]).contains("<#C")));
    assert!(all.iter().any(|m| s(&m["text"]).contains("<https://")));
    assert!(all.iter().any(|m| !s(&m["text"]).is_ascii()));
    // History never shows ordinary replies.
    assert!(all
        .iter()
        .all(|m| m["parent_user_id"].is_null() || m["subtype"] == "thread_broadcast"));
    // Newest first, unique.
    for (_, h) in &hs {
        let ts: Vec<&str> = h.iter().map(|m| s(&m["ts"])).collect();
        assert!(ts.windows(2).all(|w| w[0] > w[1]));
    }
}

async fn busiest_channel(c: &Client) -> (String, Vec<Value>) {
    member_histories(c)
        .await
        .into_iter()
        .max_by_key(|(_, h)| h.len())
        .unwrap()
}

#[tokio::test]
async fn history_cursor_paging_returns_each_message_once() {
    let sim = start();
    let c = Client::new(&sim);
    let (ch, full) = busiest_channel(&c).await;
    assert!(full.len() > 50);
    let mut got = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let mut p = vec![("channel", ch.as_str()), ("limit", "7")];
        if !cursor.is_empty() {
            p.push(("cursor", &cursor));
        }
        let r = c.get("conversations.history", &p).await;
        assert!(r.ok(), "{}", r.text);
        got.extend(
            r.json["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| s(&m["ts"]).to_string()),
        );
        pages += 1;
        cursor = r.next_cursor();
        assert_eq!(r.json["has_more"].as_bool().unwrap(), !cursor.is_empty());
        if cursor.is_empty() {
            assert_eq!(r.json["response_metadata"]["next_cursor"], "");
            break;
        }
    }
    let want: Vec<String> = full.iter().map(|m| s(&m["ts"]).to_string()).collect();
    assert_eq!(got, want);
    assert_eq!(pages, want.len().div_ceil(7));
    // Time paging the way Elastic's connector does (latest = last ts seen).
    let mut latest = (NOW + 3600).to_string();
    let mut got2 = Vec::new();
    loop {
        let r = c
            .get(
                "conversations.history",
                &[
                    ("channel", &ch),
                    ("limit", "200"),
                    ("oldest", "0"),
                    ("latest", &latest),
                ],
            )
            .await;
        let msgs = r.json["messages"].as_array().unwrap();
        got2.extend(msgs.iter().map(|m| s(&m["ts"]).to_string()));
        if r.json["has_more"] == false {
            break;
        }
        latest = s(&msgs.last().unwrap()["ts"]).to_string();
    }
    assert_eq!(got2, want);
    // Limit clamps: default 100, max 999.
    let d = c.get("conversations.history", &[("channel", &ch)]).await;
    assert_eq!(
        d.json["messages"].as_array().unwrap().len(),
        100.min(want.len())
    );
}

#[tokio::test]
async fn oldest_latest_are_exclusive_unless_inclusive() {
    let sim = start();
    let c = Client::new(&sim);
    let (ch, full) = busiest_channel(&c).await;
    let x = s(&full[10]["ts"]).to_string();
    let first = |r: &common::Resp| s(&r.json["messages"][0]["ts"]).to_string();
    let last = |r: &common::Resp| {
        s(&r.json["messages"].as_array().unwrap().last().unwrap()["ts"]).to_string()
    };
    let r = c
        .get("conversations.history", &[("channel", &ch), ("latest", &x)])
        .await;
    assert_eq!(first(&r), s(&full[11]["ts"]));
    let r = c
        .get(
            "conversations.history",
            &[("channel", &ch), ("latest", &x), ("inclusive", "true")],
        )
        .await;
    assert_eq!(first(&r), x);
    let r = c
        .get(
            "conversations.history",
            &[("channel", &ch), ("oldest", &x), ("limit", "999")],
        )
        .await;
    assert_eq!(last(&r), s(&full[9]["ts"]));
    let r = c
        .get(
            "conversations.history",
            &[
                ("channel", &ch),
                ("oldest", &x),
                ("inclusive", "1"),
                ("limit", "999"),
            ],
        )
        .await;
    assert_eq!(last(&r), x);
    // Both bounds equal + inclusive → exactly that message.
    let r = c
        .get(
            "conversations.history",
            &[
                ("channel", &ch),
                ("oldest", &x),
                ("latest", &x),
                ("inclusive", "true"),
            ],
        )
        .await;
    assert_eq!(r.json["messages"].as_array().unwrap().len(), 1);
    // Integer bounds; an empty range is an empty, final page.
    let secs = x.split('.').next().unwrap().to_string();
    let r = c
        .get(
            "conversations.history",
            &[("channel", &ch), ("oldest", &secs), ("latest", &secs)],
        )
        .await;
    assert!(r.ok());
    assert_eq!(r.json["messages"], json!([]));
    assert_eq!(r.json["has_more"], false);
    assert_eq!(r.next_cursor(), "");
    let bad = c
        .get(
            "conversations.history",
            &[("channel", &ch), ("oldest", "yesterday")],
        )
        .await;
    assert_eq!(bad.error(), "invalid_ts_oldest");
}

#[tokio::test]
async fn mangled_cursor_is_invalid() {
    let sim = start();
    let c = Client::new(&sim);
    let (ch, _) = busiest_channel(&c).await;
    let r = c
        .get("conversations.history", &[("channel", &ch), ("limit", "5")])
        .await;
    let cursor = r.next_cursor();
    assert!(cursor.ends_with('='), "{cursor}");
    // Properly encoded: fine. Raw `=` in a query value survives form decoding.
    let ok = c
        .get(
            "conversations.history",
            &[("channel", &ch), ("limit", "5"), ("cursor", &cursor)],
        )
        .await;
    assert!(ok.ok());
    // Padding lost, double-encoded, `+` turned into a space: invalid_cursor.
    for bad in [
        cursor.trim_end_matches('=').to_string(),
        cursor.replace('=', "%253D"),
        format!("{cursor}+x"),
    ] {
        let r = c
            .get_raw(
                "conversations.history",
                &format!("channel={ch}&limit=5&cursor={bad}"),
            )
            .await;
        assert_eq!(r.error(), "invalid_cursor", "{bad}");
    }
}

#[tokio::test]
async fn replies_paging_parent_first_then_oldest_first() {
    let sim = start();
    let c = Client::new(&sim);
    let hs = member_histories(&c).await;
    let (ch, parent) = hs
        .iter()
        .flat_map(|(ch, h)| h.iter().map(move |m| (ch.clone(), m.clone())))
        .max_by_key(|(_, m)| m["reply_count"].as_u64().unwrap_or(0))
        .unwrap();
    let n = parent["reply_count"].as_u64().unwrap() as usize;
    assert!(n >= 3);
    let pts = s(&parent["ts"]).to_string();
    let full = c
        .get("conversations.replies", &[("channel", &ch), ("ts", &pts)])
        .await;
    let msgs = full.json["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), n + 1);
    assert_eq!(msgs[0]["ts"], parent["ts"]);
    assert_eq!(full.json["has_more"], false);
    for r in &msgs[1..] {
        assert_eq!(r["thread_ts"], parent["ts"]);
        assert!(r["parent_user_id"].is_string());
    }
    assert!(msgs.windows(2).all(|w| s(&w[0]["ts"]) < s(&w[1]["ts"])));
    assert_eq!(msgs.last().unwrap()["ts"], parent["latest_reply"]);
    // limit=2 paging: each message once, parent only on the first page.
    let mut got = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut p = vec![
            ("channel", ch.as_str()),
            ("ts", pts.as_str()),
            ("limit", "2"),
        ];
        if !cursor.is_empty() {
            p.push(("cursor", &cursor));
        }
        let r = c.get("conversations.replies", &p).await;
        got.extend(
            r.json["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| s(&m["ts"]).to_string()),
        );
        cursor = r.next_cursor();
        if cursor.is_empty() {
            break;
        }
    }
    let want: Vec<String> = msgs.iter().map(|m| s(&m["ts"]).to_string()).collect();
    assert_eq!(got, want);
    // ts of a reply → the same thread; unknown ts → thread_not_found.
    let via_reply = c
        .get(
            "conversations.replies",
            &[("channel", &ch), ("ts", s(&msgs[2]["ts"]))],
        )
        .await;
    assert_eq!(via_reply.json["messages"].as_array().unwrap().len(), n + 1);
    let nf = c
        .get(
            "conversations.replies",
            &[("channel", &ch), ("ts", "1000000000.000001")],
        )
        .await;
    assert_eq!(nf.error(), "thread_not_found");
    // oldest exclusive on replies (parent still first).
    let o = c
        .get(
            "conversations.replies",
            &[
                ("channel", &ch),
                ("ts", &pts),
                ("oldest", s(&msgs[1]["ts"])),
            ],
        )
        .await;
    assert_eq!(o.json["messages"].as_array().unwrap().len(), n);
}

#[tokio::test]
async fn other_methods_shapes() {
    let sim = start();
    let c = Client::new(&sim);
    let chans = c.channels().await;
    let gen = chans.iter().find(|c| c["name"] == "general").unwrap();
    let id = s(&gen["id"]);
    let info = c
        .get(
            "conversations.info",
            &[("channel", id), ("include_num_members", "true")],
        )
        .await;
    assert!(info.ok());
    assert_eq!(info.json["channel"]["id"], gen["id"]);
    assert!(info.json["channel"]["num_members"].as_u64().unwrap() > 1);
    let mem = c
        .all(
            "conversations.members",
            "members",
            &[("channel", id), ("limit", "3")],
        )
        .await;
    assert_eq!(
        mem.len() as u64,
        info.json["channel"]["num_members"].as_u64().unwrap()
    );
    let ug = c
        .get(
            "usergroups.list",
            &[("include_users", "true"), ("include_count", "true")],
        )
        .await;
    assert!(ug.ok());
    has(
        &ug.json["usergroups"][0],
        &[
            "id",
            "team_id",
            "name",
            "handle",
            "users",
            "user_count",
            "date_create",
        ],
    );
    // files.list legacy paging.
    let f = c.get("files.list", &[("count", "2"), ("page", "1")]).await;
    assert!(f.ok(), "{}", f.text);
    let paging = &f.json["paging"];
    has(paging, &["count", "total", "page", "pages"]);
    let total = paging["total"].as_u64().unwrap();
    assert!(total > 2);
    let pages = paging["pages"].as_u64().unwrap();
    assert_eq!(pages, total.div_ceil(2));
    let mut ids = HashSet::new();
    for page in 1..=pages {
        let r = c
            .get("files.list", &[("count", "2"), ("page", &page.to_string())])
            .await;
        for f in r.json["files"].as_array().unwrap() {
            assert!(ids.insert(s(&f["id"]).to_string()));
        }
    }
    assert_eq!(ids.len() as u64, total);
    // Permalink.
    let h = c.history(id).await;
    let plain = h.iter().find(|m| m["thread_ts"].is_null()).unwrap();
    let ts = s(&plain["ts"]);
    let p = c
        .get("chat.getPermalink", &[("channel", id), ("message_ts", ts)])
        .await;
    assert!(s(&p.json["permalink"]).ends_with(&format!("/archives/{id}/p{}", ts.replace('.', ""))));
    let p = c
        .get(
            "chat.getPermalink",
            &[("channel", id), ("message_ts", "1.000001")],
        )
        .await;
    assert_eq!(p.error(), "message_not_found");
    // chat.postMessage via JSON body; the message shows up first in history.
    let r = c
        .post_json(
            "chat.postMessage",
            &json!({"channel": id, "text": "hello <world> & co"}),
        )
        .await;
    assert!(r.ok(), "{}", r.text);
    has(&r.json, &["channel", "ts", "message"]);
    let h2 = c.history(id).await;
    assert_eq!(h2[0]["ts"], r.json["ts"]);
    assert_eq!(h2[0]["text"], "hello &lt;world&gt; &amp; co");
    assert_eq!(h2.len(), h.len() + 1);
    // POST form with the token as a parameter also works.
    let anon = Client::with_token(&sim, None);
    let r = anon
        .post_form(
            "conversations.history",
            &[("token", TOKEN), ("channel", id), ("limit", "1")],
        )
        .await;
    assert!(r.ok(), "{}", r.text);
    assert_eq!(r.json["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn auth_errors_scopes_and_membership() {
    let sim = start();
    let c = Client::new(&sim);
    let none = Client::with_token(&sim, None);
    assert_eq!(none.get("auth.test", &[]).await.error(), "not_authed");
    let bad = Client::with_token(&sim, Some("xoxb-nope"));
    let r = bad.get("users.list", &[]).await;
    assert_eq!((r.status, r.error()), (200, "invalid_auth"));
    sim.set_token(TokenSpec {
        token: "xoxb-revoked".into(),
        kind: TokenKind::Bot,
        scopes: vec!["users:read".into()],
        revoked: true,
        user: None,
    });
    let rev = Client::with_token(&sim, Some("xoxb-revoked"));
    assert_eq!(rev.get("users.list", &[]).await.error(), "token_revoked");
    sim.set_token(TokenSpec {
        token: "xoxb-narrow".into(),
        kind: TokenKind::Bot,
        scopes: vec!["users:read".into(), "channels:read".into()],
        revoked: false,
        user: None,
    });
    let narrow = Client::with_token(&sim, Some("xoxb-narrow"));
    assert!(narrow.get("users.list", &[]).await.ok());
    let chans = c.channels().await;
    let member = chans.iter().find(|c| c["is_member"] == true).unwrap();
    let r = narrow
        .get("conversations.history", &[("channel", s(&member["id"]))])
        .await;
    assert_eq!(r.error(), "missing_scope");
    assert_eq!(r.json["needed"], "channels:history");
    assert_eq!(r.json["provided"], "users:read,channels:read");
    assert_eq!(r.header("x-oauth-scopes"), Some("users:read,channels:read"));
    assert!(r
        .header("x-accepted-oauth-scopes")
        .unwrap()
        .contains("channels:history"));
    let r = narrow
        .get("conversations.list", &[("types", "public_channel,im")])
        .await;
    assert_eq!(
        (r.error(), s(&r.json["needed"])),
        ("missing_scope", "im:read")
    );
    assert_eq!(
        narrow
            .get("conversations.join", &[("channel", s(&member["id"]))])
            .await
            .json["needed"],
        "channels:join"
    );
    // Bot not in a public channel: not_in_channel; join it, then read.
    let outside = chans
        .iter()
        .find(|c| c["is_member"] == false && c["is_archived"] == false)
        .unwrap();
    let oid = s(&outside["id"]);
    assert_eq!(
        c.get("conversations.history", &[("channel", oid)])
            .await
            .error(),
        "not_in_channel"
    );
    let j = c.get("conversations.join", &[("channel", oid)]).await;
    assert!(j.ok() && j.json["channel"]["is_member"] == true && j.json.get("warning").is_none());
    assert!(c
        .get("conversations.history", &[("channel", oid)])
        .await
        .ok());
    let again = c.get("conversations.join", &[("channel", oid)]).await;
    assert!(again.ok());
    assert_eq!(again.json["warning"], "already_in_channel");
    // Archived → is_archived; private → method_not_supported; unknown.
    let ids = sim
        .mutate(vec![
            Mutation::AddChannel {
                name: "old-stuff".into(),
                private: false,
                bot_member: false,
                archived: true,
            },
            Mutation::AddChannel {
                name: "secret".into(),
                private: true,
                bot_member: false,
                archived: false,
            },
        ])
        .unwrap();
    let (arch, private) = (s(&ids[0]["id"]).to_string(), s(&ids[1]["id"]).to_string());
    assert_eq!(
        c.get("conversations.join", &[("channel", &arch)])
            .await
            .error(),
        "is_archived"
    );
    assert_eq!(
        c.get("conversations.join", &[("channel", &private)])
            .await
            .error(),
        "method_not_supported_for_channel_type"
    );
    assert_eq!(
        c.get("conversations.history", &[("channel", &private)])
            .await
            .error(),
        "channel_not_found"
    );
    assert_eq!(
        c.get("conversations.info", &[("channel", &private)])
            .await
            .error(),
        "channel_not_found"
    );
    assert_eq!(
        c.get("conversations.history", &[("channel", "C0NOPE")])
            .await
            .error(),
        "channel_not_found"
    );
    assert_eq!(
        c.get("conversations.history", &[]).await.error(),
        "invalid_arguments"
    );
    // A user token reads public channels without joining.
    sim.set_token(TokenSpec {
        token: "xoxp-user".into(),
        kind: TokenKind::User,
        scopes: vec!["channels:history".into(), "channels:read".into()],
        revoked: false,
        user: None,
    });
    let user = Client::with_token(&sim, Some("xoxp-user"));
    let other = chans.iter().find(|c| c["is_member"] == false).unwrap();
    assert!(user
        .get("conversations.history", &[("channel", s(&other["id"]))])
        .await
        .ok());
    let me = user.get("auth.test", &[]).await;
    assert!(me.json.get("bot_id").is_none());
}

#[tokio::test]
async fn guests_and_slack_connect_members() {
    let sim = start();
    let c = Client::new(&sim);
    let summary = sim.workspace();
    assert!(
        summary.guests >= 3 && summary.external_users >= 2,
        "{summary:?}"
    );
    let listed = c.all("users.list", "members", &[]).await;
    assert_eq!(listed.len(), summary.users);
    let listed_ids: HashSet<&str> = listed.iter().map(|u| s(&u["id"])).collect();
    let guests: Vec<&Value> = listed
        .iter()
        .filter(|u| u["is_restricted"] == json!(true))
        .collect();
    assert_eq!(guests.len(), summary.guests);
    assert!(guests
        .iter()
        .any(|u| u["is_ultra_restricted"] == json!(true)));
    // Members of another workspace: in shared channels' member lists, not in users.list;
    // users.info answers them, with their own team.
    let mut externals = HashSet::new();
    for ch in c
        .all(
            "conversations.list",
            "channels",
            &[("types", "public_channel,private_channel")],
        )
        .await
        .iter()
        .filter(|ch| ch["is_ext_shared"] == json!(true))
    {
        let members = c
            .all(
                "conversations.members",
                "members",
                &[("channel", s(&ch["id"]))],
            )
            .await;
        for m in members.iter().map(|m| s(m).to_string()) {
            if !listed_ids.contains(m.as_str()) {
                externals.insert(m);
            }
        }
    }
    assert_eq!(externals.len(), summary.external_users, "{externals:?}");
    for id in &externals {
        let info = c.get("users.info", &[("user", id)]).await;
        assert!(info.ok(), "{}", info.json);
        assert_eq!(s(&info.json["user"]["id"]), id);
        assert_ne!(info.json["user"]["team_id"], json!(summary.team_id));
    }
    let missing = c.get("users.info", &[("user", "U0NOBODY")]).await;
    assert_eq!(missing.error(), "user_not_found");
    let unnamed = c.get("users.info", &[]).await;
    assert!(!unnamed.ok());
}

/// `reactions.get` as Slack's method docs describe it: `channel` + `timestamp` name a
/// message; history lists at most `LISTED_REACTION_USERS` users per reaction (`count` is
/// every user), so does `reactions.get` without `full`, and `full=true` lists them all
/// (the listed ones first); its errors and scope.
#[tokio::test]
async fn reactions_get_lists_every_user_with_full() {
    use slack_sim::render::LISTED_REACTION_USERS;
    let sim = start();
    let c = Client::new(&sim);
    let mut cut = None;
    let mut distinct = true;
    for (channel, history) in member_histories(&c).await {
        for m in &history {
            for r in m["reactions"].as_array().into_iter().flatten() {
                let users: Vec<&str> = r["users"].as_array().unwrap().iter().map(s).collect();
                distinct &= users.iter().collect::<HashSet<_>>().len() == users.len();
                assert!(users.len() <= LISTED_REACTION_USERS, "{r}");
                let count = r["count"].as_u64().unwrap() as usize;
                assert!(users.len() <= count, "{r}");
                if count > users.len() && cut.is_none() {
                    cut = Some((channel.clone(), s(&m["ts"]).to_string(), r.clone()));
                }
            }
        }
    }
    assert!(distinct, "a reaction lists a user twice");
    let (channel, ts, listed) = cut.expect("a reaction whose users history cuts short");
    let get = |full: Option<&'static str>| {
        let (channel, ts, c) = (channel.clone(), ts.clone(), &c);
        async move {
            let mut params = vec![("channel", channel.as_str()), ("timestamp", ts.as_str())];
            params.extend(full.map(|f| ("full", f)));
            c.get("reactions.get", &params).await
        }
    };
    let short = get(None).await;
    assert!(short.ok(), "{}", short.text);
    assert_eq!(
        short.header("x-accepted-oauth-scopes"),
        Some("reactions:read")
    );
    assert_eq!(short.json["type"], "message");
    assert_eq!(short.json["channel"], json!(channel));
    assert_eq!(short.json["message"]["ts"], json!(ts));
    // The answer's reaction of the same emoji.
    let same = |answer: &Value| {
        let reactions = answer["message"]["reactions"].as_array().unwrap();
        let found = reactions.iter().find(|r| r["name"] == listed["name"]);
        found.unwrap().clone()
    };
    assert_eq!(same(&short.json), listed);
    let full = get(Some("true")).await;
    assert!(full.ok(), "{}", full.text);
    let reaction = same(&full.json);
    let users = reaction["users"].as_array().unwrap();
    assert_eq!(users.len() as u64, reaction["count"].as_u64().unwrap());
    assert_eq!(reaction["count"], listed["count"]);
    let prefix = &users[..listed["users"].as_array().unwrap().len()];
    assert_eq!(prefix, listed["users"].as_array().unwrap().as_slice());
    // Errors, from the method's documentation.
    for (params, error) in [
        (vec![], "no_item_specified"),
        (vec![("channel", channel.as_str())], "no_item_specified"),
        (vec![("file", "F0123456")], "file_not_found"),
        (
            vec![("file_comment", "Fc0123456")],
            "file_comment_not_found",
        ),
        (
            vec![("channel", "C0NOSUCHONE"), ("timestamp", ts.as_str())],
            "channel_not_found",
        ),
        (
            vec![("channel", channel.as_str()), ("timestamp", "yesterday")],
            "bad_timestamp",
        ),
        (
            vec![("channel", channel.as_str()), ("timestamp", "1.000001")],
            "message_not_found",
        ),
    ] {
        let r = c.get("reactions.get", &params).await;
        assert_eq!(
            (r.status, r.error()),
            (200, error),
            "{params:?}: {}",
            r.text
        );
    }
    sim.set_token(TokenSpec {
        token: "xoxb-no-reactions".into(),
        kind: TokenKind::Bot,
        scopes: vec!["channels:history".into(), "channels:read".into()],
        revoked: false,
        user: None,
    });
    let narrow = Client::with_token(&sim, Some("xoxb-no-reactions"));
    let r = narrow
        .get(
            "reactions.get",
            &[("channel", channel.as_str()), ("timestamp", ts.as_str())],
        )
        .await;
    assert_eq!(
        (r.error(), s(&r.json["needed"])),
        ("missing_scope", "reactions:read")
    );
    // A message deleted since: message_not_found.
    sim.mutate(vec![Mutation::DeleteMessage {
        channel: channel.clone(),
        ts: ts.clone(),
    }])
    .unwrap();
    assert_eq!(get(Some("true")).await.error(), "message_not_found");
}
