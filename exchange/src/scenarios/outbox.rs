//! A ledger as an outbox: every commit's outcomes sent to Kafka exactly once, in order.
//!
//! Data flow: a ledger ([`LedgerTable`]: commits numbered by its application transaction;
//! as further application transactions, how far publication got) → the commits not yet
//! published, in one round: a claim (an application transaction holding the first and the time,
//! a lease another publisher may take over only once it is [`LEASE_MS`] old; renewed between
//! chunks, and a renewal refused means another publisher took over: stop) → what the topics
//! already hold of this commit (each message names its outcome in the header
//! [`OUTCOME_HEADER`]; read back from the offsets recorded when the previous commit was
//! published — or, for a partition none has recorded, from its end, recorded before sending
//! — so a publisher killed between sending and recording resends nothing; a topic that lost
//! those offsets is a gap, refused) → the rest of the commit's messages
//! ([`OutcomeSource::messages`]) sent, each acknowledged → the last commit recorded as published
//! with the topics' new end offsets, in one commit that fails if another publisher recorded
//! anything meanwhile.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use gdx_lake::ledger::LedgerTable;
use serde::Serialize;

/// Where notifications go (for an SMS or app gateway to deliver).
pub const NOTIFICATIONS_TOPIC: &str = "gdx.notifications";
/// The Kafka header naming a message's outcome (the ledger's entry id).
pub const OUTCOME_HEADER: &str = "gdx-outcome-id";
/// A claim older than this may be taken over.
pub const LEASE_MS: i64 = 120_000;

/// A claim packs the commit and the claim's time (ms) into one number.
const CLAIM_SCALE: i64 = 10_000_000_000_000;
/// Messages sent between claim renewals.
const CHUNK: usize = 20_000;

/// One message out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    pub topic: &'static str,
    pub key: String,
    /// The outcome (the ledger's entry id), sent as [`OUTCOME_HEADER`].
    pub outcome: String,
    pub payload: Vec<u8>,
    /// The fact's business time (`event-time` header), for dataset topics.
    pub event_time: Option<String>,
}

/// Kafka, as the publisher needs it (the binary's implementation is the only one; blocking
/// calls, made off the async runtime).
pub trait OutcomeSink: std::fmt::Debug + Send + Sync {
    /// `(partition, low, high)` watermarks of each partition of `topic` (none: no topic yet).
    fn partitions(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, String>;
    /// The outcomes named by the messages of `topic` in `[from, to)` per partition.
    fn outcomes_in(
        &self,
        topic: &str,
        ranges: &[(i32, i64, i64)],
    ) -> Result<HashSet<String>, String>;
    /// Sends every message; returns once each is acknowledged.
    fn send_all(&self, messages: &[OutMessage]) -> Result<(), String>;
}

/// Why publication stopped.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("another publisher holds run {run}'s publication (claimed {age_ms} ms ago)")]
    Busy { run: i64, age_ms: i64 },
    #[error("another publisher recorded progress while run {run} was being published")]
    TakenOver { run: i64 },
    #[error(
        "{topic} partition {partition} no longer holds offset {from} (its oldest is {low}): what was already published cannot be told, so nothing is resent"
    )]
    Gap {
        topic: String,
        partition: i32,
        from: i64,
        low: i64,
    },
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("the ledger's column {0} is not what the ledger writes")]
    Column(&'static str),
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
}

/// What one publication did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PublishReport {
    /// The ledger's commits (the allowance's runs) published now.
    pub runs: Vec<i64>,
    pub notifications: u64,
    /// Messages to a dataset's topic (the allowance's payment facts).
    pub payment_facts: u64,
    /// Messages a killed publisher had already sent (found on the topics, not resent).
    pub already_sent: u64,
}

/// One ledger as an outbox: its marks and topics, and its messages.
#[async_trait::async_trait]
pub trait OutcomeSource: Send + Sync {
    /// The application transaction recording the last commit published; the offsets of
    /// each topic's partitions are recorded under `<published>/<topic>/<partition>`.
    fn published_mark(&self) -> &'static str;
    /// The application transaction of the publisher's claim.
    fn claim_mark(&self) -> &'static str;
    /// The topics its messages go to.
    fn topics(&self) -> &'static [&'static str];
    /// The messages of the commits `runs`, in order.
    async fn messages(
        &self,
        table: &LedgerTable,
        runs: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<OutMessage>, PublishError>;
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, PublishError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PublishError::Kafka(format!("the Kafka task failed: {e}")))?
        .map_err(PublishError::Kafka)
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn offset_mark(published: &str, topic: &str, partition: i32) -> String {
    format!("{published}/{topic}/{partition}")
}

async fn claim(
    table: &mut LedgerTable,
    mark: &str,
    run: i64,
    ours: bool,
) -> Result<(), PublishError> {
    if !ours && let Some(c) = table.mark(mark).await? {
        let age_ms = now_ms() - c % CLAIM_SCALE;
        if c / CLAIM_SCALE == run && age_ms < LEASE_MS {
            return Err(PublishError::Busy { run, age_ms });
        }
    }
    match table
        .set_marks(&[(mark.to_owned(), run * CLAIM_SCALE + now_ms())])
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_concurrent_commit() => Err(PublishError::TakenOver { run }),
        Err(e) => Err(e.into()),
    }
}

/// Publishes every commit of `table` not published yet, in order.
pub async fn publish_outbox(
    table: &mut LedgerTable,
    source: &dyn OutcomeSource,
    sink: std::sync::Arc<dyn OutcomeSink>,
) -> Result<PublishReport, PublishError> {
    let (published_mark, claim_mark) = (source.published_mark(), source.claim_mark());
    let mut report = PublishReport::default();
    loop {
        let last = table.last_run().await?;
        let published = table.mark(published_mark).await?.unwrap_or(0);
        if published >= last {
            return Ok(report);
        }
        // Every commit not published yet, in one round; the claim names the first (a
        // publisher that finds it claimed, whatever has been committed since, stays out).
        let run = published + 1;
        claim(table, claim_mark, run, false).await?;
        // What the topics already hold of this run. A partition no publication has recorded
        // yet (the first run, a new partition) starts where it ends now: that is recorded
        // before anything is sent, so a publisher killed after sending finds its messages
        // after it (and the feed's older messages, which the embedded broker may already
        // have dropped, are never needed).
        let mut present: BTreeMap<&'static str, HashSet<String>> = BTreeMap::new();
        let mut starts = Vec::new();
        for &topic in source.topics() {
            let parts = blocking({
                let sink = sink.clone();
                move || sink.partitions(topic)
            })
            .await?;
            let mut ranges = Vec::new();
            for (partition, low, high) in parts {
                let mark = offset_mark(published_mark, topic, partition);
                let Some(from) = table.mark(&mark).await? else {
                    starts.push((mark, high));
                    continue;
                };
                if low > from {
                    return Err(PublishError::Gap {
                        topic: topic.to_owned(),
                        partition,
                        from,
                        low,
                    });
                }
                if high > from {
                    ranges.push((partition, from, high));
                }
            }
            let ids = blocking({
                let sink = sink.clone();
                move || sink.outcomes_in(topic, &ranges)
            })
            .await?;
            present.insert(topic, ids);
        }
        if !starts.is_empty() {
            starts.push((claim_mark.to_owned(), run * CLAIM_SCALE + now_ms()));
            match table.set_marks(&starts).await {
                Ok(_) => {}
                Err(e) if e.is_concurrent_commit() => {
                    return Err(PublishError::TakenOver { run });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let all = source.messages(table, run..=last).await?;
        let total = all.len();
        let todo: Vec<OutMessage> = all
            .into_iter()
            .filter(|m| !present.get(m.topic).is_some_and(|s| s.contains(&m.outcome)))
            .collect();
        report.already_sent += (total - todo.len()) as u64;
        for chunk in todo.chunks(CHUNK) {
            let chunk = chunk.to_vec();
            blocking({
                let sink = sink.clone();
                move || sink.send_all(&chunk)
            })
            .await?;
            // Still ours? (a refused renewal: another publisher took over after the lease)
            claim(table, claim_mark, run, true).await?;
        }
        report.notifications += todo
            .iter()
            .filter(|m| m.topic == NOTIFICATIONS_TOPIC)
            .count() as u64;
        report.payment_facts += todo
            .iter()
            .filter(|m| m.topic != NOTIFICATIONS_TOPIC)
            .count() as u64;
        // Done: the run and where the topics end now, in one commit.
        let mut marks = vec![(published_mark.to_owned(), last)];
        for &topic in source.topics() {
            let parts = blocking({
                let sink = sink.clone();
                move || sink.partitions(topic)
            })
            .await?;
            marks.extend(
                parts
                    .into_iter()
                    .map(|(p, _, high)| (offset_mark(published_mark, topic, p), high)),
            );
        }
        match table.set_marks(&marks).await {
            Ok(_) => {}
            Err(e) if e.is_concurrent_commit() => return Err(PublishError::TakenOver { run }),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(
            run,
            sent = todo.len(),
            mark = published_mark,
            "ledger commit published"
        );
        report.runs.extend(run..=last);
    }
}
