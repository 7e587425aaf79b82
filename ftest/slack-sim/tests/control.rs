//! Control-plane behaviour: tier limiter, faults, mutations, stats, and the
//! `expected` specification checked against a reference API walker.

mod common;

use common::{s, start, start_with, Client};
use reqwest::Method;
use serde_json::{json, Value};
use slack_sim::{
    ExpectedDoc, ExpectedQuery, FaultAction, FaultRule, Mutation, SimHandle, WorkspaceSpec,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Walks the API the way the rules in `expected` describe (and the way
/// Elastic's connector does: time paging on history, cursor on replies).
async fn walk(c: &Client, q: &ExpectedQuery, now: i64) -> Vec<ExpectedDoc> {
    let mut docs = BTreeMap::new();
    if q.sync_users {
        for u in c.all("users.list", "members", &[("limit", "200")]).await {
            let id = s(&u["id"]).to_string();
            docs.insert(
                id.clone(),
                ExpectedDoc::User {
                    id,
                    name: s(&u["name"]).to_string(),
                    allow_access_control: None,
                },
            );
        }
    }
    for ch in c.channels().await {
        let cid = s(&ch["id"]).to_string();
        if ch["is_member"] != true {
            if !q.auto_join_channels {
                continue;
            }
            if !c.get("conversations.join", &[("channel", &cid)]).await.ok() {
                continue;
            }
        }
        let name = s(&ch["name"]).to_string();
        docs.insert(
            cid.clone(),
            ExpectedDoc::Channel {
                id: cid.clone(),
                name: Some(name.clone()),
                allow_access_control: None,
            },
        );
        let doc = |m: &Value| ExpectedDoc::Message {
            id: format!("{cid}-{}", s(&m["ts"])),
            channel: name.clone(),
            channel_id: cid.clone(),
            ts: s(&m["ts"]).to_string(),
            thread_ts: m["thread_ts"].as_str().map(str::to_string),
            reply_count: m["reply_count"].as_u64(),
            edited_ts: m["edited"]["ts"].as_str().map(str::to_string),
            reactions: None,
            allow_access_control: None,
        };
        let oldest = (now - i64::from(q.fetch_last_n_days) * 86_400).to_string();
        let mut latest = now.to_string();
        loop {
            let mut p = vec![
                ("channel", cid.as_str()),
                ("limit", "200"),
                ("latest", latest.as_str()),
            ];
            if q.fetch_last_n_days > 0 {
                p.push(("oldest", &oldest));
            }
            let r = c.get("conversations.history", &p).await;
            assert!(r.ok(), "{}", r.text);
            let msgs = r.json["messages"].as_array().unwrap().clone();
            for m in &msgs {
                if m["reply_count"].as_u64().unwrap_or(0) > 0 {
                    let replies = c
                        .all(
                            "conversations.replies",
                            "messages",
                            &[("channel", &cid), ("ts", s(&m["ts"])), ("limit", "200")],
                        )
                        .await;
                    for r in &replies {
                        let d = doc(r);
                        docs.insert(d.id().to_string(), d);
                    }
                } else {
                    let d = doc(m);
                    docs.insert(d.id().to_string(), d);
                }
            }
            if r.json["has_more"] != true {
                break;
            }
            latest = s(&msgs.last().unwrap()["ts"]).to_string();
        }
    }
    docs.into_values().collect()
}

async fn check_expected(sim: &SimHandle, q: ExpectedQuery) -> usize {
    let c = Client::new(sim);
    let now = sim.now();
    let q = ExpectedQuery {
        now: Some(now),
        ..q
    };
    let want = sim.expected(&q);
    let got = walk(&c, &q, now).await;
    assert_eq!(got.len(), want.docs.len(), "{q:?}");
    assert_eq!(got, want.docs, "{q:?}");
    assert_eq!(want.total, got.len());
    assert_eq!(want.counts.values().sum::<usize>(), want.total);
    want.total
}

#[tokio::test]
async fn expected_matches_reference_walker() {
    let sim = start();
    let n = check_expected(&sim, ExpectedQuery::default()).await;
    assert!((600..=800).contains(&n), "small ≈ 700 docs, got {n}");
    check_expected(
        &sim,
        ExpectedQuery {
            fetch_last_n_days: 30,
            sync_users: false,
            ..Default::default()
        },
    )
    .await;
    check_expected(
        &sim,
        ExpectedQuery {
            fetch_last_n_days: 0,
            ..Default::default()
        },
    )
    .await;
    // Auto-join changes membership: use a fresh simulator.
    let sim2 = start();
    let before = sim2.expected(&ExpectedQuery {
        auto_join_channels: true,
        ..Default::default()
    });
    let n2 = check_expected(
        &sim2,
        ExpectedQuery {
            auto_join_channels: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(before.total, n2);
    assert!(n2 > n);
}

#[tokio::test]
async fn expected_is_stable_within_an_hour_of_now() {
    let sim = start();
    let now = sim.now();
    for days in [1, 7, 30, 180, 364] {
        let q = |t: i64| ExpectedQuery {
            fetch_last_n_days: days,
            now: Some(t),
            ..Default::default()
        };
        let base = sim.expected(&q(now));
        for dt in [-3599, -1800, 1800, 3599] {
            assert_eq!(
                sim.expected(&q(now + dt)).docs,
                base.docs,
                "days={days} dt={dt}"
            );
        }
    }
}

#[tokio::test]
async fn expected_over_http_equals_in_process() {
    let sim = start();
    let c = Client::new(&sim);
    let now = sim.now();
    let q = ExpectedQuery {
        fetch_last_n_days: 30,
        sync_users: false,
        auto_join_channels: true,
        now: Some(now),
        ..ExpectedQuery::default()
    };
    let want = serde_json::to_value(sim.expected(&q)).unwrap();
    let via_post = c
        .sim(
            Method::POST,
            "expected",
            Some(&serde_json::to_value(&q).unwrap()),
        )
        .await;
    assert_eq!(via_post, want);
    let path = format!("expected?fetch_last_n_days=30&sync_users=false&auto_join_channels=true&now={now}&future_key=1");
    assert_eq!(c.sim(Method::GET, &path, None).await, want);
    let d = c.sim(Method::GET, "expected", None).await;
    assert!(d["docs"][0]["type"].as_str().is_some());
    assert_eq!(
        d["counts"]["user"].as_u64().unwrap() as usize,
        sim.workspace().users
    );
    let ws = c.sim(Method::GET, "workspace", None).await;
    assert!(ws["messages"].as_u64().unwrap() > 1000);
}

#[tokio::test]
async fn tier_limiter_answers_429_and_refills() {
    let sim = start();
    let c = Client::new(&sim);
    // Scaled: a Slack minute lasts 2 s → users.list (T2, 20/min, a minute's burst of 20)
    // refills one request per 100 ms.
    sim.set_rate_limits(true, 30.0);
    let mut limited = None;
    for i in 0..30 {
        let r = c.get("users.list", &[("limit", "1")]).await;
        if r.status == 429 {
            limited = Some((i, r));
            break;
        }
        assert!(r.ok());
    }
    let (i, r) = limited.expect("a 429 within 30 quick calls");
    assert!(i >= 20, "burst of 20 allowed, limited at {i}");
    assert_eq!(r.json, json!({"ok": false, "error": "ratelimited"}));
    let ra = r.header("retry-after").unwrap().to_string();
    assert!(ra.contains('.'), "{ra}");
    let secs: f64 = ra.parse().unwrap();
    assert!(secs > 0.0 && secs <= 0.1 + 1e-9, "{ra}");
    // Other methods have their own buckets.
    assert!(c.get("auth.test", &[]).await.ok());
    tokio::time::sleep(Duration::from_secs_f64(secs + 0.005)).await;
    assert!(c.get("users.list", &[("limit", "1")]).await.ok());
    let st = sim.stats();
    assert!(st.ratelimited["users.list"] >= 1);
    assert_eq!(st.ratelimited_total, st.ratelimited.values().sum::<u64>());
    assert!(st.status["users.list"]["429"] >= 1);
    // Real time scale: integer Retry-After, as Slack sends it.
    sim.set_rate_limits(true, 1.0);
    let mut ra = None;
    for _ in 0..25 {
        let r = c.get("conversations.list", &[("limit", "1")]).await;
        if r.status == 429 {
            ra = r.header("retry-after").map(str::to_string);
            break;
        }
    }
    let ra = ra.expect("429 at time scale 1");
    let n: u64 = ra.parse().expect("integer Retry-After");
    assert!((1..=3).contains(&n), "{ra}");
    // Disabled again: no limits.
    sim.set_rate_limits(false, 1.0);
    for _ in 0..15 {
        assert!(c.get("conversations.list", &[("limit", "1")]).await.ok());
    }
    // Control API toggles too.
    c.sim(
        Method::POST,
        "rate_limits",
        Some(&json!({"enabled": true, "time_scale": 60.0})),
    )
    .await;
    assert_eq!(
        c.sim(Method::GET, "rate_limits", None).await,
        json!({"enabled": true, "time_scale": 60.0, "grant": 1.0, "restricted_cohort": false})
    );
}

#[tokio::test]
async fn grants_multiply_the_tiers_and_stats_show_the_windows() {
    let sim = start();
    let c = Client::new(&sim);
    // Ten times Tier 2 at a 60× clock: a burst of 200 users.list calls, then 200 a second.
    c.sim(
        Method::POST,
        "rate_limits",
        Some(&json!({"enabled": true, "time_scale": 60.0, "grant": 10.0})),
    )
    .await;
    let mut first_429 = None;
    for i in 0..260 {
        if c.get("users.list", &[("limit", "1")]).await.status == 429 {
            first_429 = Some(i);
            break;
        }
    }
    let i = first_429.expect("a 429 past the grant");
    assert!(
        i >= 200,
        "a minute's burst of the grant allowed, limited at {i}"
    );
    let st = sim.stats();
    let w = st.windows["users.list"];
    assert!(w.last_s >= w.first_s && w.first_s >= 0.0, "{w:?}");
    // Within the first (scaled) minute: not a late 429.
    assert!(st.ratelimited_late.is_empty(), "{:?}", st.ratelimited_late);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // More than a Slack minute after the first call: a 429 now is late.
    let mut late = false;
    for _ in 0..400 {
        if c.get("users.list", &[("limit", "1")]).await.status == 429 {
            late = true;
            break;
        }
    }
    assert!(late);
    assert_eq!(sim.stats().ratelimited_late["users.list"], 1);
}

#[tokio::test]
async fn the_restricted_cohort_gets_pages_of_15_and_a_minute_between_calls() {
    let sim = start();
    let c = Client::new(&sim);
    let channel = c
        .channels()
        .await
        .into_iter()
        .find(|ch| ch["is_member"] == true)
        .unwrap();
    let cid = s(&channel["id"]).to_string();
    sim.set_rate_settings(&slack_sim::RateLimitSettings {
        restricted_cohort: true,
        ..slack_sim::RateLimitSettings::default()
    });
    // Pages of 15 at most, 15 by default, limits on or off.
    let page = c
        .get(
            "conversations.history",
            &[("channel", &cid), ("limit", "200")],
        )
        .await;
    assert!(page.ok());
    assert_eq!(page.json["messages"].as_array().unwrap().len(), 15);
    assert_eq!(page.json["has_more"], true);
    let page = c.get("conversations.history", &[("channel", &cid)]).await;
    assert_eq!(page.json["messages"].as_array().unwrap().len(), 15);
    // Other methods keep their tiers and page sizes.
    let users = c.get("users.list", &[("limit", "30")]).await;
    let members = users.json["members"].as_array().unwrap().len();
    assert!(members > 15, "users.list pages are not capped: {members}");
    // Limits on, real clock: one call a minute, then a Retry-After of about a minute.
    sim.set_rate_settings(&slack_sim::RateLimitSettings {
        enabled: true,
        restricted_cohort: true,
        ..slack_sim::RateLimitSettings::default()
    });
    assert!(c
        .get("conversations.history", &[("channel", &cid)])
        .await
        .ok());
    let refused = c
        .get("conversations.replies", &[("channel", &cid), ("ts", "1.0")])
        .await;
    assert!(
        refused.ok() || refused.status != 429,
        "replies has its own budget"
    );
    let refused = c.get("conversations.history", &[("channel", &cid)]).await;
    assert_eq!(refused.status, 429);
    let ra: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((55..=60).contains(&ra), "{ra}");
    assert_eq!(
        sim.rate_settings(),
        slack_sim::RateLimitSettings {
            enabled: true,
            time_scale: 1.0,
            grant: 1.0,
            restricted_cohort: true
        }
    );
}

fn rule(method: &str, after: u64, times: Option<u64>, action: FaultAction) -> FaultRule {
    FaultRule {
        method: method.into(),
        channel: None,
        after,
        times,
        action,
    }
}

#[tokio::test]
async fn faults_of_every_kind() {
    let sim = start();
    let c = Client::new(&sim);
    let chans = c.channels().await;
    let members: Vec<&str> = chans
        .iter()
        .filter(|c| c["is_member"] == true)
        .map(|c| s(&c["id"]))
        .collect();
    let (a, b) = (members[0], members[1]);
    // HTTP status after 1 call, once.
    sim.set_faults(vec![rule(
        "conversations.history",
        1,
        Some(1),
        FaultAction::HttpStatus {
            status: 503,
            retry_after: None,
        },
    )]);
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                c.get("conversations.history", &[("channel", a)])
                    .await
                    .status,
            );
        }
        v
    };
    assert_eq!(codes, vec![200, 503, 200]);
    // ok:false error code (e.g. ratelimited as a 200 body), forever.
    sim.set_faults(vec![rule(
        "users.list",
        0,
        None,
        FaultAction::Error {
            error: "ratelimited".into(),
        },
    )]);
    for _ in 0..2 {
        let r = c.get("users.list", &[]).await;
        assert_eq!((r.status, r.error()), (200, "ratelimited"));
    }
    // Malformed JSON.
    sim.set_faults(vec![rule("*", 0, Some(1), FaultAction::MalformedJson)]);
    let r = c.get("auth.test", &[]).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
    assert!(c.get("auth.test", &[]).await.ok());
    // Extra latency.
    sim.set_faults(vec![rule(
        "auth.test",
        0,
        Some(1),
        FaultAction::Latency { ms: 60 },
    )]);
    let t = Instant::now();
    assert!(c.get("auth.test", &[]).await.ok());
    assert!(t.elapsed() >= Duration::from_millis(60));
    // Dropped connection: no HTTP response at all.
    sim.set_faults(vec![rule(
        "auth.test",
        0,
        Some(1),
        FaultAction::DropConnection,
    )]);
    let res = c
        .http
        .get(format!("{}/auth.test", c.api))
        .bearer_auth(common::TOKEN)
        .send()
        .await;
    assert!(res.is_err(), "{res:?}");
    assert!(c.get("auth.test", &[]).await.ok());
    // Channel-scoped rule via the control API.
    let body = json!([{"method": "conversations.history", "channel": b, "kind": "error", "error": "not_in_channel"}]);
    c.sim(Method::POST, "faults", Some(&body)).await;
    let listed = c.sim(Method::GET, "faults", None).await;
    assert_eq!(
        (listed[0]["channel"].as_str(), listed[0]["after"].as_u64()),
        (Some(b), Some(0))
    );
    assert!(listed[0]["times"].is_null());
    assert!(c.get("conversations.history", &[("channel", a)]).await.ok());
    assert_eq!(
        c.get("conversations.history", &[("channel", b)])
            .await
            .error(),
        "not_in_channel"
    );
    c.sim(Method::DELETE, "faults", None).await;
    assert!(c.get("conversations.history", &[("channel", b)]).await.ok());
    let st = sim.stats();
    assert_eq!(st.faults["conversations.history"], 2);
    assert_eq!(st.status["auth.test"]["dropped"], 1);
    assert_eq!(st.status["conversations.history"]["503"], 1);
    assert_eq!(st.errors["users.list"]["ratelimited"], 2);
    // Global latency.
    sim.set_latency_ms(30);
    let t = Instant::now();
    c.get("auth.test", &[]).await;
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn answer_shape_faults_keep_ok_true_but_break_the_promise() {
    let sim = start();
    let c = Client::new(&sim);
    let chans = c.channels().await;
    let (a, b) = {
        let members: Vec<&str> = chans
            .iter()
            .filter(|c| c["is_member"] == true)
            .map(|c| s(&c["id"]))
            .collect();
        (members[0].to_string(), members[1].to_string())
    };
    // Per method: the method's own data by default.
    let once = |method: &'static str, action: FaultAction| {
        sim.set_faults(vec![rule(method, 0, Some(1), action)]);
        c.get(method, &[])
    };
    for (method, field) in [
        ("users.list", "members"),
        ("conversations.list", "channels"),
        ("auth.test", "url"),
    ] {
        let missing = once(method, FaultAction::MissingField { field: None }).await;
        assert!(
            missing.ok() && missing.json.get(field).is_none(),
            "{method}: {}",
            missing.text
        );
        let null = once(method, FaultAction::NullField { field: None }).await;
        assert!(
            null.ok() && null.json[field].is_null(),
            "{method}: {}",
            null.text
        );
        let wrong = once(method, FaultAction::WrongType { field: None }).await;
        let good = c.get(method, &[]).await;
        assert!(wrong.ok(), "{method}");
        assert_ne!(
            std::mem::discriminant(&wrong.json[field]),
            std::mem::discriminant(&good.json[field]),
            "{method}: {}",
            wrong.text
        );
    }
    // A named field, on one channel only; the others answer as usual.
    let body = json!([{"method": "conversations.history", "channel": b, "kind": "null_field", "field": "has_more"}]);
    c.sim(Method::POST, "faults", Some(&body)).await;
    assert!(c
        .get("conversations.history", &[("channel", &a)])
        .await
        .json["has_more"]
        .is_boolean());
    let hit = c.get("conversations.history", &[("channel", &b)]).await;
    assert!(hit.ok() && hit.json["has_more"].is_null() && hit.json["messages"].is_array());
    // has_more without a cursor.
    sim.set_faults(vec![rule(
        "conversations.history",
        0,
        Some(1),
        FaultAction::HasMoreWithoutCursor,
    )]);
    let more = c
        .get("conversations.history", &[("channel", &a), ("limit", "5")])
        .await;
    assert_eq!(more.json["has_more"], true);
    assert_eq!(more.next_cursor(), "");
    // A repeating cursor: page 2 names its own cursor as the next one, and following it
    // gives the same page again.
    let first = c
        .get("conversations.history", &[("channel", &a), ("limit", "5")])
        .await;
    let cursor = first.next_cursor();
    assert!(!cursor.is_empty());
    sim.set_faults(vec![rule(
        "conversations.history",
        0,
        None,
        FaultAction::RepeatCursor,
    )]);
    for _ in 0..2 {
        let again = c
            .get(
                "conversations.history",
                &[("channel", &a), ("limit", "5"), ("cursor", &cursor)],
            )
            .await;
        assert!(again.ok());
        assert_eq!(again.next_cursor(), cursor);
        assert_eq!(again.json["has_more"], true);
    }
    // On a first page the cursor leads back to the first page.
    let users = c.get("users.list", &[("limit", "5")]).await;
    sim.set_faults(vec![rule(
        "users.list",
        0,
        Some(1),
        FaultAction::RepeatCursor,
    )]);
    let looped = c.get("users.list", &[("limit", "5")]).await;
    let back = c
        .get(
            "users.list",
            &[("limit", "5"), ("cursor", &looped.next_cursor())],
        )
        .await;
    assert_eq!(back.json["members"], users.json["members"]);
    // ok:false answers are never rewritten; a faulted join still joins.
    sim.set_faults(vec![rule(
        "*",
        0,
        None,
        FaultAction::MissingField { field: None },
    )]);
    let refused = c
        .get("conversations.history", &[("channel", "C_NOPE")])
        .await;
    assert_eq!(refused.error(), "channel_not_found");
    let outside = chans
        .iter()
        .find(|c| c["is_member"] == false && c["is_archived"] == false && c["is_private"] == false)
        .map(|c| s(&c["id"]).to_string())
        .expect("a public channel the bot is not in");
    let joined = c
        .post_form("conversations.join", &[("channel", &outside)])
        .await;
    assert!(
        joined.ok() && joined.json.get("channel").is_none(),
        "{}",
        joined.text
    );
    c.sim(Method::DELETE, "faults", None).await;
    assert!(c
        .get("conversations.history", &[("channel", &outside)])
        .await
        .ok());
    assert!(sim.stats().faults["conversations.history"] >= 5);
}

#[tokio::test]
async fn stats_count_and_reset() {
    let sim = start();
    let c = Client::new(&sim);
    c.get("auth.test", &[]).await;
    c.get("auth.test", &[]).await;
    c.get("nope.nope", &[]).await;
    let st = c.sim(Method::GET, "stats", None).await;
    assert_eq!(st["calls"]["auth.test"], 2);
    assert_eq!(st["status"]["auth.test"]["200"], 2);
    assert_eq!(st["errors"]["nope.nope"]["unknown_method"], 1);
    assert_eq!(st["total_calls"], 3);
    c.sim(Method::POST, "stats/reset", None).await;
    assert_eq!(sim.stats().total_calls, 0);
}

#[tokio::test]
async fn mutations_show_in_api_and_expected() {
    let sim = start_with(WorkspaceSpec::default());
    let c = Client::new(&sim);
    let chans = c.channels().await;
    let ch = chans
        .iter()
        .find(|c| c["is_member"] == true && c["name"] != "general")
        .unwrap();
    let cid = s(&ch["id"]).to_string();
    let exp = |sim: &SimHandle| {
        sim.expected(&ExpectedQuery::default())
            .docs
            .into_iter()
            .map(|d| (d.id().to_string(), d))
            .collect::<BTreeMap<_, _>>()
    };
    // add_message.
    let r = sim
        .mutate(vec![Mutation::AddMessage {
            channel: cid.clone(),
            user: None,
            text: "brand new".into(),
            thread_ts: None,
            broadcast: false,
        }])
        .unwrap();
    let ts = s(&r[0]["ts"]).to_string();
    let h = c.history(&cid).await;
    assert_eq!(
        (s(&h[0]["ts"]), s(&h[0]["text"])),
        (ts.as_str(), "brand new")
    );
    assert!(exp(&sim).contains_key(&format!("{cid}-{ts}")));
    // add_reply to an old thread.
    let parent = h
        .iter()
        .find(|m| m["reply_count"].as_u64().unwrap_or(0) > 0)
        .unwrap()
        .clone();
    let pts = s(&parent["ts"]).to_string();
    let n = parent["reply_count"].as_u64().unwrap();
    let users = c.get("users.list", &[]).await.json["members"].clone();
    let poster = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["is_bot"] == false && u["deleted"] == false && u["id"] != "USLACKBOT")
        .unwrap();
    let r = sim
        .mutate(vec![Mutation::AddReply {
            channel: cid.clone(),
            thread_ts: pts.clone(),
            user: Some(s(&poster["id"]).to_string()),
            text: "late reply".into(),
            broadcast: false,
        }])
        .unwrap();
    let rts = s(&r[0]["ts"]).to_string();
    let h = c.history(&cid).await;
    let p2 = h.iter().find(|m| m["ts"] == parent["ts"]).unwrap();
    assert_eq!(p2["reply_count"].as_u64().unwrap(), n + 1);
    assert_eq!(s(&p2["latest_reply"]), rts);
    assert!(
        p2["reply_users"]
            .as_array()
            .unwrap()
            .contains(&poster["id"])
            || p2["reply_users_count"].as_u64().unwrap() > 5
    );
    let e = exp(&sim);
    assert!(e.contains_key(&format!("{cid}-{rts}")));
    match &e[&format!("{cid}-{pts}")] {
        ExpectedDoc::Message { reply_count, .. } => assert_eq!(*reply_count, Some(n + 1)),
        other => panic!("{other:?}"),
    }
    // edit_message.
    let target = s(&h[3]["ts"]).to_string();
    sim.mutate(vec![Mutation::EditMessage {
        channel: cid.clone(),
        ts: target.clone(),
        text: "edited!".into(),
    }])
    .unwrap();
    let h = c.history(&cid).await;
    let m = h.iter().find(|m| m["ts"] == target.as_str()).unwrap();
    assert_eq!(m["text"], "edited!");
    let ets = s(&m["edited"]["ts"]).to_string();
    match &exp(&sim)[&format!("{cid}-{target}")] {
        ExpectedDoc::Message { edited_ts, .. } => {
            assert_eq!(edited_ts.as_deref(), Some(ets.as_str()))
        }
        other => panic!("{other:?}"),
    }
    // delete_message of a parent removes the thread.
    sim.mutate(vec![Mutation::DeleteMessage {
        channel: cid.clone(),
        ts: pts.clone(),
    }])
    .unwrap();
    let h = c.history(&cid).await;
    assert!(h
        .iter()
        .all(|m| m["ts"] != pts.as_str() && m["thread_ts"] != pts.as_str()));
    let r = c
        .get("conversations.replies", &[("channel", &cid), ("ts", &pts)])
        .await;
    assert_eq!(r.error(), "thread_not_found");
    let e = exp(&sim);
    assert!(!e.contains_key(&format!("{cid}-{pts}")) && !e.contains_key(&format!("{cid}-{rts}")));
    // rename / archive / unarchive (via the HTTP control API).
    let res = c
        .sim(
            Method::POST,
            "mutate",
            Some(&json!([
                {"op": "rename_channel", "channel": cid, "name": "renamed-chan"},
                {"op": "archive_channel", "channel": cid},
                {"op": "delete_message", "channel": cid, "ts": "1.000001"}
            ])),
        )
        .await;
    assert_eq!(res[0]["ok"], true);
    assert_eq!(res[2], json!({"ok": false, "error": "message_not_found"}));
    let info = c.get("conversations.info", &[("channel", &cid)]).await;
    assert_eq!(info.json["channel"]["name"], "renamed-chan");
    assert_eq!(info.json["channel"]["previous_names"][0], ch["name"]);
    assert_eq!(info.json["channel"]["is_archived"], true);
    match &exp(&sim)[&cid] {
        ExpectedDoc::Channel { name, .. } => assert_eq!(name.as_deref(), Some("renamed-chan")),
        other => panic!("{other:?}"),
    }
    sim.mutate(vec![Mutation::UnarchiveChannel {
        channel: "renamed-chan".into(),
    }])
    .unwrap();
    assert_eq!(
        c.get("conversations.info", &[("channel", &cid)]).await.json["channel"]["is_archived"],
        false
    );
    // set_membership: the bot leaves → not_in_channel, channel leaves expected.
    sim.mutate(vec![Mutation::SetMembership {
        channel: cid.clone(),
        member: false,
        user: None,
    }])
    .unwrap();
    assert_eq!(
        c.get("conversations.history", &[("channel", &cid)])
            .await
            .error(),
        "not_in_channel"
    );
    assert!(!exp(&sim).contains_key(&cid));
    // deactivate_user, add_user, add_channel.
    let uid = s(&poster["id"]).to_string();
    let r = sim
        .mutate(vec![
            Mutation::DeactivateUser { user: uid.clone() },
            Mutation::AddUser {
                name: "newbie".into(),
                real_name: Some("New Bie".into()),
                is_bot: false,
            },
            Mutation::AddChannel {
                name: "fresh".into(),
                private: false,
                bot_member: true,
                archived: false,
            },
        ])
        .unwrap();
    let users = c.get("users.list", &[]).await.json["members"].clone();
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == uid.as_str() && u["deleted"] == true));
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == r[1]["id"] && u["name"] == "newbie"));
    let fresh = s(&r[2]["id"]).to_string();
    assert!(c
        .channels()
        .await
        .iter()
        .any(|c| c["id"] == fresh.as_str() && c["is_member"] == true));
    assert!(exp(&sim).contains_key(&fresh));
    // Still consistent with a full walk after all of that.
    check_expected(&sim, ExpectedQuery::default()).await;
    // Errors are reported.
    assert!(sim
        .mutate(vec![Mutation::ArchiveChannel {
            channel: "nope".into()
        }])
        .is_err());
}

#[test]
fn binary_prints_ready_line_and_exits_on_stdin_close() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_slack-sim"))
        .args(["--size", "small", "--now", "1700000000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn slack-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let v: Value = serde_json::from_str(&line).expect("json line");
    assert!(s(&v["url"]).starts_with("http://127.0.0.1:"));
    assert_eq!(s(&v["api_url"]), format!("{}/api", s(&v["url"])));
    assert_eq!(v["pid"].as_u64(), Some(u64::from(child.id())));
    let sim = start();
    assert_eq!(
        v["documents"].as_u64(),
        Some(sim.expected(&ExpectedQuery::default()).total as u64)
    );
    drop(child.stdin.take());
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "slack-sim did not exit after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Socket Mode: `apps.connections.open` takes only an app token; its URL is single use; the
/// socket says hello, sends envelopes, takes acks, redelivers what is not acknowledged
/// (retry_attempt 1) and warns before it closes (`disconnect`).
#[tokio::test]
async fn socket_mode_is_strict_and_redelivers_unacknowledged_envelopes() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let sim = start();
    for (token, error) in [
        (None, "not_authed"),
        (Some("xapp-unknown"), "invalid_auth"),
        (Some(common::TOKEN), "not_allowed_token_type"),
    ] {
        let r = Client::with_token(&sim, token)
            .post_form("apps.connections.open", &[])
            .await;
        assert_eq!(r.error(), error, "{token:?}");
    }
    let app = Client::with_token(&sim, Some(slack_sim::socket::DEFAULT_APP_TOKEN));
    let r = app.post_form("apps.connections.open", &[]).await;
    assert!(r.ok(), "{}", r.text);
    let url = s(&r.json["url"]).to_string();
    assert!(
        url.starts_with("ws://") && url.contains("/link/?ticket="),
        "{url}"
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    assert!(
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .is_err(),
        "a ticket is single use"
    );
    async fn next(
        ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    ) -> Value {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
                Ok(Some(Ok(_))) => continue,
                other => panic!("no message: {other:?}"),
            }
        }
    }
    assert_eq!(next(&mut ws).await["type"], "hello");
    let bodies = sim
        .mutate_with_events(vec![Mutation::AddUser {
            name: "socketeer".into(),
            real_name: None,
            is_bot: false,
        }])
        .unwrap();
    sim.socket_deliver(&bodies[0], false);
    let first = next(&mut ws).await;
    assert_eq!(first["type"], "events_api");
    assert_eq!(first["retry_attempt"], 0);
    assert_eq!(first["payload"], bodies[0][0]);
    // Not acknowledged: sent again after the 3 s deadline, as a retry.
    let again = next(&mut ws).await;
    assert_eq!(again["envelope_id"], first["envelope_id"]);
    assert_eq!(again["retry_attempt"], 1);
    ws.send(Message::Text(
        json!({"envelope_id": again["envelope_id"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Text("not an ack".into())).await.unwrap();
    sim.socket_disconnect("refresh_requested");
    let warning = next(&mut ws).await;
    assert_eq!(warning["type"], "disconnect");
    assert_eq!(warning["reason"], "refresh_requested");
    let mut stats = sim.socket_stats();
    for _ in 0..50 {
        if stats.acked + stats.malformed == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = sim.socket_stats();
    }
    assert_eq!(
        (
            stats.urls,
            stats.connections,
            stats.refused,
            stats.delivered,
            stats.redelivered
        ),
        (1, 1, 1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(
        (stats.acked, stats.late_acks, stats.malformed, stats.pending),
        (1, 0, 1, 0)
    );
    assert_eq!(stats.disconnects, 1);
}
