//! Scheduling: Quartz cron expressions ([`cron`]) and the loop that creates scheduled sync jobs.

pub mod cron;
