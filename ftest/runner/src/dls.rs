//! The document-level security round (issue 18, `--dls`): the connector indexes private
//! channels, DMs and group DMs with DLS on (the first sync's documents, readers included,
//! are verified like any other), then an access-control job writes one identity document
//! per user into `.search-acl-filter-<index>`, which must equal the simulator's expected
//! identities. Then a member leaves a private channel: the next access-control job must
//! rewrite exactly that member's identity document, and the content index must not change
//! (memberships live in the identity documents, not in the messages).

use crate::cli::Cli;
use crate::report::job_calls;
use crate::service::Service;
use crate::stack::Stack;
use crate::{Args, CONNECTOR_ID, INDEX};
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use slack_sim::{ExpectedIdentity, ExpectedQuery, Mutation};
use std::collections::BTreeMap;
use std::time::Instant;

/// The connector fields `--dls` sets.
pub(crate) const DLS_FIELDS: &[&str] = &[
    "use_document_level_security=true",
    "include_private_channels=true",
    "include_direct_messages=true",
];

/// The expected query with DLS and every private option on.
pub(crate) fn dls_query(query: ExpectedQuery) -> ExpectedQuery {
    ExpectedQuery {
        use_document_level_security: true,
        include_private_channels: true,
        include_direct_messages: true,
        ..query
    }
}

impl Stack {
    /// Every identity document: `_id` → the sorted `params.access_control`.
    fn identity_docs(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let index = format!(".search-acl-filter-{INDEX}");
        self.es("POST", &format!("/{index}/_refresh"), None)?;
        let found = self.es(
            "POST",
            &format!("/{index}/_search?expand_wildcards=all"),
            Some(json!({"size": 10_000, "query": {"match_all": {}}})),
        )?;
        let hits = found["hits"]["hits"]
            .as_array()
            .ok_or_else(|| anyhow!("no hits in {found}"))?;
        hits.iter()
            .map(|hit| {
                let id = hit["_id"].as_str().unwrap_or("").to_string();
                let params = &hit["_source"]["query"]["template"]["params"]["access_control"];
                let mut list: Vec<String> = serde_json::from_value(params.clone())
                    .map_err(|e| anyhow!("identity document {id}: access_control {params}: {e}"))?;
                list.sort();
                Ok((id, list))
            })
            .collect()
    }

    fn verify_identities(&self, expected: &[ExpectedIdentity]) -> Result<()> {
        let stored = self.identity_docs()?;
        let want: BTreeMap<String, Vec<String>> = expected
            .iter()
            .map(|i| (i.id.clone(), i.access_control.clone()))
            .collect();
        if stored != want {
            let differ: Vec<&String> = want
                .keys()
                .chain(stored.keys())
                .filter(|id| stored.get(*id) != want.get(*id))
                .take(5)
                .collect();
            bail!(
                "{} identity documents, {} expected; first differences: {differ:?}",
                stored.len(),
                want.len()
            );
        }
        Ok(())
    }

    /// Runs one access-control job on demand and verifies the identity documents.
    fn access_control_job(
        &self,
        cli: &Cli,
        service: &mut Service,
        args: &Args,
        query: &ExpectedQuery,
    ) -> Result<Value> {
        let last = self.wait_idle(args.timeout, service)?;
        self.sim.reset_stats();
        let started = Instant::now();
        cli.run(&["job", "start", "-i", CONNECTOR_ID, "-t", "access_control"])?;
        let job = self.wait_for_job(Some(&last), args.timeout, service)?;
        if job["job_type"] != "access_control" {
            bail!("expected an access_control job, got {}", job["job_type"]);
        }
        let expected = self.sim.expected(query);
        self.verify_identities(&expected.identities)?;
        let stats = self.sim.stats();
        println!(
            "access-control sync: {} identity documents ({} written, {} deleted), {:.2} s, {} Slack calls (auth.test counted once) {:?}",
            expected.identities.len(),
            job["indexed_document_count"],
            job["deleted_document_count"],
            started.elapsed().as_secs_f64(),
            job_calls(&stats, 1),
            stats.calls
        );
        Ok(job)
    }

    /// The DLS round (see the module docs).
    pub(crate) fn dls_round(
        &self,
        cli: &Cli,
        service: &mut Service,
        args: &Args,
        query: &ExpectedQuery,
    ) -> Result<()> {
        self.access_control_job(cli, service, args, query)?;
        let before = self.sim.expected(query);
        let bot = self.sim.workspace().bot_user_id;
        let (member, channel) = before
            .identities
            .iter()
            .filter(|i| i.status == "member" && i.user_id != bot)
            .find_map(|i| {
                let private = i
                    .access_control
                    .iter()
                    .find_map(|a| a.strip_prefix("channel:").filter(|c| c.starts_with('G')))?;
                Some((i.clone(), private.to_string()))
            })
            .ok_or_else(|| anyhow!("no member of a private channel in the workspace"))?;
        let content = self.index_docs()?;
        self.sim.mutate(vec![Mutation::SetMembership {
            channel: channel.clone(),
            member: false,
            user: Some(member.user_id.clone()),
        }])?;
        println!(
            "membership change: {} leaves the private channel {channel}",
            member.user_id
        );
        let job = self.access_control_job(cli, service, args, query)?;
        if job["indexed_document_count"] != 1 || job["deleted_document_count"] != 0 {
            bail!(
                "the access-control job after one member left wrote {} and deleted {} identity documents; expected 1 and 0",
                job["indexed_document_count"],
                job["deleted_document_count"]
            );
        }
        if self.index_docs()? != content {
            bail!("the access-control job changed the content index");
        }
        println!(
            "membership change reflected: one identity document rewritten, no content document"
        );
        Ok(())
    }
}
