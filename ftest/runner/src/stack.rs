//! The running stack (osmem, the shim, the simulator) and the connector's jobs as the run
//! sees them: raw Elasticsearch calls, Kibana's edits, waiting for jobs, canceling one.

use crate::cli::Cli;
use crate::report::process_cpu_seconds;
use crate::service::Service;
use crate::{CONNECTOR_ID, PIPELINE, PIPELINE_FIELDS};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use slack_sim::SimHandle;
use std::cell::RefCell;
use std::time::{Duration, Instant};

pub(crate) struct Stack {
    pub(crate) osmem: osmem::Osmem,
    pub(crate) shim: Option<es_shim::ShimHandle>,
    pub(crate) sim: SimHandle,
    pub(crate) es_url: String,
    pub(crate) http: reqwest::blocking::Client,
    /// What the report counts, sampled the moment a job's end is seen: the schedule (every
    /// 5 s) may start the next job before the report is taken, and its work must not be
    /// counted as this one's.
    pub(crate) job_end: RefCell<Option<JobEnd>>,
}

/// The CPU and Slack calls at a job's end ([`Stack::job_end`]).
pub(crate) struct JobEnd {
    pub(crate) job_id: Value,
    pub(crate) service_cpu: f64,
    pub(crate) osmem_cpu: f64,
    pub(crate) stats: slack_sim::SimStats,
}

impl Stack {
    pub(crate) fn es(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.es_url);
        let request = match method {
            "GET" => self.http.get(&url),
            "PUT" => self.http.put(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url),
        };
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text()?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) fn put_pipeline(&self) -> Result<()> {
        let processors: Vec<Value> =
            vec![json!({"remove": {"field": PIPELINE_FIELDS, "ignore_missing": true}})];
        self.es(
            "PUT",
            &format!("/_ingest/pipeline/{PIPELINE}"),
            Some(json!({
                "description": "Default ingest pipeline for search indices (ftest)",
                "processors": processors
            })),
        )?;
        Ok(())
    }

    /// The first sync came from the schedule, so the scheduler's round went through: the
    /// heartbeat reached the connector, it was validated and shown `connected`, and a job was
    /// scheduled.
    pub(crate) fn check_scheduled_and_connected(&self, job: &Value) -> Result<()> {
        let connector = self.es(
            "GET",
            &format!("/.elastic-connectors/_doc/{CONNECTOR_ID}"),
            None,
        )?;
        let c = &connector["_source"];
        println!(
            "  connector: status {}, last_seen {}, last_sync_scheduled_at {}; first job {}",
            c["status"], c["last_seen"], c["last_sync_scheduled_at"], job["trigger_method"]
        );
        if job["trigger_method"] != "scheduled" || c["last_sync_scheduled_at"].is_null() {
            bail!("the first job was not created by the schedule: {job}");
        }
        if c["status"] != "connected" || !c["error"].is_null() {
            bail!("the connector is not connected: {c}");
        }
        if !c["last_seen"].is_string() {
            bail!(
                "no heartbeat reached the connector (last_seen is {})",
                c["last_seen"]
            );
        }
        Ok(())
    }

    /// Marks the draft sync rules `edited`, as Kibana's editor leaves them; the scheduler must
    /// validate them and, valid, activate them before it creates the first job.
    pub(crate) fn edit_draft_rules(&self) -> Result<()> {
        let path = format!("/.elastic-connectors/_doc/{CONNECTOR_ID}");
        let mut filtering = self.es("GET", &path, None)?["_source"]["filtering"].clone();
        filtering[0]["draft"]["validation"] = json!({"state": "edited", "errors": []});
        self.es(
            "POST",
            &format!("/.elastic-connectors/_update/{CONNECTOR_ID}?refresh=true"),
            Some(json!({"doc": {"filtering": filtering}})),
        )?;
        Ok(())
    }

    /// A job canceled right after it is started (`connectors job cancel`): it must end
    /// `canceled`, unless the service finished it before the cancel arrived.
    pub(crate) fn cancel_a_job(
        &self,
        cli: &Cli,
        previous: &Value,
        timeout: u64,
        service: &mut Service,
    ) -> Result<()> {
        let started = cli.run(&[
            "-o",
            "json",
            "job",
            "start",
            "-i",
            CONNECTOR_ID,
            "-t",
            "full",
        ])?;
        let id: Value = serde_json::from_str(started.trim())?;
        let id = id["id"].as_str().unwrap_or_default().to_string();
        if let Err(error) = cli.run(&["job", "cancel", &id]) {
            let job = self.job(&id)?;
            if job["status"] != "completed" {
                return Err(error);
            }
            println!("  job {id} completed before the cancel arrived");
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(timeout);
        loop {
            service.sample();
            service.check_alive()?;
            let job = self.job(&id)?;
            match job["status"].as_str() {
                Some("canceled") => {
                    println!("  job {id} canceled");
                    return Ok(());
                }
                Some("pending" | "in_progress" | "canceling") => {}
                other => bail!(
                    "canceled job {id} ended {other:?} (previous job {})",
                    previous["id"]
                ),
            }
            if Instant::now() > deadline {
                bail!("job {id} not canceled within {timeout} s");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub(crate) fn job(&self, id: &str) -> Result<Value> {
        let found = self.es(
            "GET",
            &format!("/.elastic-connectors-sync-jobs/_doc/{id}"),
            None,
        )?;
        Ok(found["_source"].clone())
    }

    /// The newest job of the connector.
    pub(crate) fn latest_job(&self) -> Result<Option<Value>> {
        let body = json!({
            "size": 1,
            "query": {"term": {"connector.id": CONNECTOR_ID}},
            "sort": [{"created_at": {"order": "desc"}}]
        });
        let found = match self.es(
            "POST",
            "/.elastic-connectors-sync-jobs/_search?expand_wildcards=all",
            Some(body),
        ) {
            Ok(found) => found,
            Err(error) if error.to_string().contains("index_not_found") => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok(found["hits"]["hits"].get(0).map(|hit| {
            let mut job = hit["_source"].clone();
            job["id"] = hit["_id"].clone();
            job
        }))
    }

    /// Waits for a job newer than `after` to end; fails on error/canceled or timeout.
    pub(crate) fn wait_for_job(
        &self,
        after: Option<&Value>,
        timeout: u64,
        service: &mut Service,
    ) -> Result<Value> {
        let job = self.wait_for_job_end(after, timeout, service)?;
        match job["status"].as_str() {
            Some("completed") => Ok(job),
            status => bail!(
                "sync job {} ended {}: {}",
                job["id"],
                status.unwrap_or("?"),
                job["error"].as_str().unwrap_or("no error text")
            ),
        }
    }

    /// Waits for a job newer than `after` to end (completed, error or canceled); fails on
    /// timeout. The first such job seen is the one waited for: the schedule may create the
    /// next job within milliseconds of its end, and that one must not be taken for it.
    pub(crate) fn wait_for_job_end(
        &self,
        after: Option<&Value>,
        timeout: u64,
        service: &mut Service,
    ) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let after_id = after.map(|job| job["id"].clone());
        let mut last_status = String::new();
        let mut tracked: Option<Value> = None;
        loop {
            service.sample();
            service.check_alive()?;
            let job = match &tracked {
                Some(id) => {
                    let mut job = self.job(id.as_str().unwrap_or_default())?;
                    job["id"] = id.clone();
                    Some(job)
                }
                None => self.latest_job()?,
            };
            if let Some(job) = job {
                let status = job["status"].as_str().unwrap_or("").to_string();
                if Some(&job["id"]) != after_id.as_ref() {
                    tracked.get_or_insert_with(|| job["id"].clone());
                    if status != last_status {
                        println!("  job {} {}", job["id"].as_str().unwrap_or("?"), status);
                        last_status = status.clone();
                    }
                    if matches!(status.as_str(), "completed" | "error" | "canceled") {
                        service.sample();
                        *self.job_end.borrow_mut() = Some(JobEnd {
                            job_id: job["id"].clone(),
                            service_cpu: service.cpu_seconds,
                            osmem_cpu: process_cpu_seconds(self.osmem.pid()),
                            stats: self.sim.stats(),
                        });
                        return Ok(job);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("no sync job completed within {timeout} s (last status `{last_status}`)");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until no job of the connector is pending or running; returns the newest job.
    pub(crate) fn wait_idle(&self, timeout: u64, service: &mut Service) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        loop {
            service.sample();
            let job = self.latest_job()?.ok_or_else(|| anyhow!("no job"))?;
            if matches!(
                job["status"].as_str(),
                Some("completed" | "error" | "canceled")
            ) {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!("jobs still running after {timeout} s");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
