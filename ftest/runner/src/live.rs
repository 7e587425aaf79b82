//! The live round (issue 17, `--live`): after the first full sync (schedule disabled), the
//! connector's live updates are turned on over HTTP (`live_updates=http`, a signing secret;
//! the service listens on `service.http.listen`), then [`MUTATIONS`] mutations reach the
//! service only as signed Events API deliveries from the simulator — new messages, replies
//! to new and old threads, edits (some pairs delivered newest first), deletions — with
//! faults: a request with a bad signature (must get 401), and every seventh delivery sent
//! again as Slack's retry (must get 200 and change nothing). No sync job may run, and the
//! index must equal the simulator's expected set within [`DEADLINE`] of the last delivery.

use crate::cli::Cli;
use crate::service::Service;
use crate::stack::Stack;
use crate::{Args, CONNECTOR_ID};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use slack_sim::{ExpectedDoc, ExpectedQuery, Mutation};
use std::time::{Duration, Instant};

/// Mutations of the round.
pub(crate) const MUTATIONS: usize = 200;
/// The index must match this long after the last delivery.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);
const SECRET: &str = "ftest-signing-secret";

/// A free local port for `service.http.listen`.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Stack {
    fn deliver(&self, url: &str, body: &Value, secret: &str, retry: bool) -> Result<u16> {
        let bytes = body.to_string();
        let now = chrono::Utc::now().timestamp();
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", now.to_string())
            .header(
                "x-slack-signature",
                slack_sim::events::sign(secret, now, bytes.as_bytes()),
            )
            .body(bytes);
        if retry {
            request = request.header("x-slack-retry-num", "1");
        }
        Ok(request.send()?.status().as_u16())
    }

    /// See the module docs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn live_round(
        &self,
        cli: &Cli,
        service: &mut Service,
        args: &Args,
        query: &ExpectedQuery,
        check_pipeline: bool,
        port: u16,
    ) -> Result<()> {
        let last = self.wait_idle(args.timeout, service)?;
        let secret = format!("signing_secret={SECRET}");
        cli.run(&[
            "connector",
            "config",
            "set",
            "-i",
            CONNECTOR_ID,
            "live_updates=http",
            &secret,
        ])?;
        let url = format!("http://127.0.0.1:{port}/live/{CONNECTOR_ID}");
        let started = Instant::now();
        let hello = json!({"type": "url_verification", "token": "t", "challenge": "ready?"});
        loop {
            service.check_alive()?;
            if self.deliver(&url, &hello, SECRET, false).unwrap_or(0) == 200 {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the live endpoint {url} did not come up within 60 s");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        println!(
            "live round: endpoint up {:.1} s after live_updates=http",
            started.elapsed().as_secs_f64()
        );
        if self.deliver(&url, &hello, "a-wrong-secret", false)? != 401 {
            bail!("a wrongly signed delivery was not refused with 401");
        }
        let expected = self.sim.expected(query);
        let plan = Plan::new(&expected.docs);
        let (mut sent, mut retried, mut mutations) = (0, 0, 0);
        let mut added: Vec<(String, String)> = Vec::new();
        let mut step = 0;
        while mutations < MUTATIONS {
            let (ops, reversed) = plan.step(step, &added);
            step += 1;
            if ops.is_empty() {
                continue;
            }
            mutations += ops.len();
            let mut bodies = self.sim.mutate_with_events(ops)?;
            if reversed {
                bodies.reverse();
            }
            for body in bodies.into_iter().flatten() {
                let event = &body["event"];
                if event["type"] == "message"
                    && event["subtype"].is_null()
                    && event["thread_ts"].is_null()
                {
                    added.push((
                        event["channel"].as_str().unwrap_or_default().to_string(),
                        event["ts"].as_str().unwrap_or_default().to_string(),
                    ));
                }
                let status = self.deliver(&url, &body, SECRET, false)?;
                if status != 200 {
                    bail!("delivery {} answered {status}", body["event_id"]);
                }
                sent += 1;
                if sent % 7 == 0 {
                    if self.deliver(&url, &body, SECRET, true)? != 200 {
                        bail!("Slack's retry of {} was not answered 200", body["event_id"]);
                    }
                    retried += 1;
                }
            }
        }
        let last_delivery = Instant::now();
        let expected = self.sim.expected(query);
        loop {
            std::thread::sleep(Duration::from_millis(250));
            match self.verify(&expected.docs, check_pipeline) {
                Ok(()) => break,
                Err(error) if last_delivery.elapsed() > DEADLINE => {
                    bail!(
                        "the index did not match within {DEADLINE:?} of the last event: {error:#}"
                    )
                }
                Err(_) => {}
            }
        }
        let after = last_delivery.elapsed().as_secs_f64();
        if self.latest_job()?.map(|j| j["id"].clone()) != Some(last["id"].clone()) {
            bail!("a sync job ran during the live round");
        }
        println!(
            "live round: {mutations} mutations as {sent} signed events (+{retried} Slack retries, 1 bad signature refused), no sync job; index equal to the expected set {after:.2} s after the last event (limit {:.0} s)",
            DEADLINE.as_secs_f64()
        );
        if args.live_freshness > 0 {
            let channel = plan.channels[0].clone();
            self.freshness(&url, &channel, args.live_freshness)?;
        }
        Ok(())
    }

    /// Freshness: `samples` times, a message is posted, edited and deleted in the simulator
    /// and its event delivered; each time from the delivery to the change being visible in
    /// Elasticsearch (polled every 10 ms), p50 and p95 per kind.
    fn freshness(&self, url: &str, channel: &str, samples: usize) -> Result<()> {
        let mut times: [Vec<f64>; 3] = Default::default();
        let index = crate::INDEX;
        for i in 0..samples {
            let bodies = self.sim.mutate_with_events(vec![Mutation::AddMessage {
                channel: channel.to_string(),
                user: None,
                text: format!("fresh {i}"),
                thread_ts: None,
                broadcast: false,
            }])?;
            let body = &bodies[0][0];
            let ts = body["event"]["ts"].as_str().unwrap_or_default().to_string();
            let id = format!("{channel}-{ts}");
            times[0].push(self.visible(url, body, index, &id, |doc| doc.is_some())?);
            let bodies = self.sim.mutate_with_events(vec![Mutation::EditMessage {
                channel: channel.to_string(),
                ts: ts.clone(),
                text: format!("fresh edit {i}"),
            }])?;
            let body = &bodies[0][0];
            let edited = body["event"]["message"]["edited"]["ts"].clone();
            times[1].push(self.visible(url, body, index, &id, |doc| {
                doc.is_some_and(|d| d["_source"]["edited_ts"] == edited)
            })?);
            let bodies = self.sim.mutate_with_events(vec![Mutation::DeleteMessage {
                channel: channel.to_string(),
                ts,
            }])?;
            times[2].push(self.visible(url, &bodies[0][0], index, &id, |doc| doc.is_none())?);
        }
        for (kind, mut t) in ["message", "edit", "deletion"].into_iter().zip(times) {
            t.sort_by(f64::total_cmp);
            let at = |q: f64| t[((t.len() as f64 * q).ceil() as usize).clamp(1, t.len()) - 1];
            println!(
                "live freshness (http): {kind}: p50 {:.3} s, p95 {:.3} s, max {:.3} s ({} samples, delivery -> visible in Elasticsearch)",
                at(0.5),
                at(0.95),
                t[t.len() - 1],
                t.len()
            );
        }
        Ok(())
    }

    /// Delivers `body`, then polls document `id` until `seen` holds; seconds it took.
    fn visible(
        &self,
        url: &str,
        body: &Value,
        index: &str,
        id: &str,
        seen: impl Fn(Option<&Value>) -> bool,
    ) -> Result<f64> {
        let started = Instant::now();
        if self.deliver(url, body, SECRET, false)? != 200 {
            bail!("delivery {} refused", body["event_id"]);
        }
        loop {
            let doc = match self.es("GET", &format!("/{index}/_doc/{id}"), None) {
                Ok(doc) => Some(doc),
                Err(error) if error.to_string().contains("404") => None,
                Err(error) => return Err(error),
            };
            if seen(doc.as_ref()) {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{id} did not change within 30 s of its event");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Which messages the round touches, from the expected set after the first sync.
struct Plan {
    channels: Vec<String>,
    /// Top-level messages to edit (and reply to when they are parents).
    edits: Vec<(String, String)>,
    /// Top-level messages to delete (disjoint from `edits`).
    deletes: Vec<(String, String)>,
    /// Thread parents (within `edits`).
    parents: Vec<(String, String)>,
}

impl Plan {
    fn new(docs: &[ExpectedDoc]) -> Plan {
        let mut tops = Vec::new();
        let mut parents = Vec::new();
        for doc in docs {
            if let ExpectedDoc::Message {
                channel_id,
                ts,
                thread_ts,
                reply_count,
                ..
            } = doc
            {
                if thread_ts.as_deref().is_none_or(|t| t == ts) {
                    tops.push((channel_id.clone(), ts.clone()));
                    if reply_count.unwrap_or(0) > 0 {
                        parents.push((channel_id.clone(), ts.clone()));
                    }
                }
            }
        }
        let half = tops.len() / 2;
        let deletes = tops.split_off(half);
        parents.retain(|p| tops.contains(p));
        let mut channels: Vec<String> = tops.iter().map(|(c, _)| c.clone()).collect();
        channels.sort();
        channels.dedup();
        Plan {
            channels,
            edits: tops,
            deletes,
            parents,
        }
    }

    /// The mutations of step `i`, and whether their events go newest first.
    fn step(&self, i: usize, added: &[(String, String)]) -> (Vec<Mutation>, bool) {
        let pick = |list: &[(String, String)], n: usize| list.get(n % list.len().max(1)).cloned();
        let round = i / 5;
        match i % 5 {
            0 => {
                let channel = self.channels[round % self.channels.len()].clone();
                (
                    vec![Mutation::AddMessage {
                        channel,
                        user: None,
                        text: format!("live {i}"),
                        thread_ts: None,
                        broadcast: false,
                    }],
                    false,
                )
            }
            1 => match pick(added, round) {
                Some((channel, ts)) => (
                    vec![Mutation::AddReply {
                        channel,
                        thread_ts: ts,
                        user: None,
                        text: format!("live reply {i}"),
                        broadcast: round.is_multiple_of(3),
                    }],
                    false,
                ),
                None => (Vec::new(), false),
            },
            2 => match pick(&self.parents, round) {
                Some((channel, ts)) => (
                    vec![Mutation::AddReply {
                        channel,
                        thread_ts: ts,
                        user: None,
                        text: format!("late reply {i}"),
                        broadcast: false,
                    }],
                    false,
                ),
                None => (Vec::new(), false),
            },
            3 => match self.edits.get(round) {
                // Every other edit is a pair whose events arrive newest first.
                Some((channel, ts)) if round.is_multiple_of(2) => (
                    vec![
                        Mutation::EditMessage {
                            channel: channel.clone(),
                            ts: ts.clone(),
                            text: format!("edit a {i}"),
                        },
                        Mutation::EditMessage {
                            channel: channel.clone(),
                            ts: ts.clone(),
                            text: format!("edit b {i}"),
                        },
                    ],
                    true,
                ),
                Some((channel, ts)) => (
                    vec![Mutation::EditMessage {
                        channel: channel.clone(),
                        ts: ts.clone(),
                        text: format!("edit {i}"),
                    }],
                    false,
                ),
                None => (Vec::new(), false),
            },
            _ => match self.deletes.get(round) {
                Some((channel, ts)) => (
                    vec![Mutation::DeleteMessage {
                        channel: channel.clone(),
                        ts: ts.clone(),
                    }],
                    false,
                ),
                None => (Vec::new(), false),
            },
        }
    }
}
