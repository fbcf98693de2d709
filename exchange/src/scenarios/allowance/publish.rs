//! The allowance's outcomes leave gdx: notifications on `gdx.notifications` (notice, payment,
//! stop, recovery: for an SMS or app gateway) and the payments as facts of
//! `mca.elderly_allowance_payment` (so the lake, the profiles and the reports see them), each
//! exactly once, from the ledger.
//!
//! Data flow: the ledger (the outbox: runs committed, and as application transactions how far
//! publication got) → per run not yet published, in order: a claim (an application
//! transaction holding the run and the time, a lease another publisher may take over only
//! once it is [`LEASE_MS`] old; renewed between chunks, and a renewal refused means another
//! publisher took over: stop) → what the topics already hold of this run (each message names
//! its outcome in the header [`OUTCOME_HEADER`]; read back from the offsets recorded when the
//! previous run was published — or, for a partition none has recorded, from its end, recorded
//! before sending — so a publisher killed between sending and recording resends nothing; a
//! topic that lost those offsets is a gap, refused) → the rest sent, each
//! acknowledged → the run recorded as published with the topics' new end offsets, in one
//! commit that fails if another publisher recorded anything meanwhile.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type};
use gdx_catalog::PiiKind;
use gdx_catalog::Pseudonymizer;
use gdx_lake::LakeLocation;
use gdx_lake::ledger::{self, LedgerTable, column as col};
use serde::Serialize;

use super::run::yuan;

/// Where notifications go.
pub const NOTIFICATIONS_TOPIC: &str = "gdx.notifications";
/// Where the payments go, as the dataset's facts.
pub const PAYMENTS_TOPIC: &str = "mca.elderly_allowance_payment";
/// The Kafka header naming a message's outcome (the ledger's entry id).
pub const OUTCOME_HEADER: &str = "gdx-outcome-id";
/// A claim older than this may be taken over.
pub const LEASE_MS: i64 = 120_000;

const PUBLISHED: &str = "elderly_allowance/published";
const CLAIM: &str = "elderly_allowance/publishing";
/// A claim packs the run and the claim's time (ms) into one number.
const CLAIM_SCALE: i64 = 10_000_000_000_000;
/// Messages sent between claim renewals.
const CHUNK: usize = 20_000;

fn offset_mark(topic: &str, partition: i32) -> String {
    format!("{PUBLISHED}/{topic}/{partition}")
}

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
    /// The runs published now.
    pub runs: Vec<i64>,
    pub notifications: u64,
    pub payment_facts: u64,
    /// Messages a killed publisher had already sent (found on the topics, not resent).
    pub already_sent: u64,
}

/// A notification as the gateway reads it: who (a pseudonym when gdx has a pseudonym key,
/// and masked ID and name), what, how much.
#[derive(Debug, Serialize)]
struct Notification<'a> {
    outcome_id: &'a str,
    scenario: &'static str,
    /// `notice`, `payment`, `stop` or `recovery`.
    kind: &'a str,
    run: i64,
    period: &'a str,
    band: Option<&'a str>,
    amount: String,
    reason: &'a str,
    recipient: Option<String>,
    recipient_masked: String,
    name_masked: Option<String>,
    as_of: &'a str,
}

/// One ledger line as published.
struct Outcome {
    id: String,
    kind: String,
    resident_id: String,
    name: Option<String>,
    period: String,
    band: Option<String>,
    fen: i64,
    reason: String,
    as_of: String,
}

async fn outcomes(table: &LedgerTable, run: i64) -> Result<Vec<Outcome>, PublishError> {
    let batches = table
        .query(&format!(
            "select {}, {}, {}, {}, {}, {}, {}, {}, cast({} as varchar) from t \
             where {} = {run} and {} <> 'run' order by {}",
            col::ENTRY_ID,
            col::KIND,
            col::RESIDENT_ID,
            col::NAME,
            col::PERIOD,
            col::BAND,
            col::AMOUNT,
            col::REASON,
            col::AS_OF,
            col::RUN,
            col::KIND,
            col::ENTRY_ID
        ))
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let text = |i: usize, name: &'static str| {
            datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8)
                .map_err(|_| PublishError::Column(name))
        };
        let cols = [
            text(0, col::ENTRY_ID)?,
            text(1, col::KIND)?,
            text(2, col::RESIDENT_ID)?,
            text(3, col::NAME)?,
            text(4, col::PERIOD)?,
            text(5, col::BAND)?,
            text(7, col::REASON)?,
            text(8, col::AS_OF)?,
        ];
        let s: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        let fen = b
            .column(6)
            .as_primitive_opt::<Decimal128Type>()
            .ok_or(PublishError::Column(col::AMOUNT))?;
        for i in 0..b.num_rows() {
            let v = |c: usize| s[c].is_valid(i).then(|| s[c].value(i).to_owned());
            out.push(Outcome {
                id: v(0).unwrap_or_default(),
                kind: v(1).unwrap_or_default(),
                resident_id: v(2).ok_or(PublishError::Column(col::RESIDENT_ID))?,
                name: v(3),
                period: v(4).unwrap_or_default(),
                band: v(5),
                fen: fen.value(i) as i64,
                reason: v(6).unwrap_or_default(),
                as_of: v(7).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

fn messages(
    run: i64,
    outcomes: &[Outcome],
    pseudonyms: Option<&Pseudonymizer>,
) -> Result<Vec<OutMessage>, PublishError> {
    let json = |r: serde_json::Result<Vec<u8>>| r.map_err(|e| PublishError::Kafka(e.to_string()));
    let mut out = Vec::with_capacity(outcomes.len() * 2);
    for o in outcomes {
        let recipient = pseudonyms.map(|p| p.pseudonym(PiiKind::IdNumber, &o.resident_id));
        let masked = gdx_catalog::mask::mask(PiiKind::IdNumber, &o.resident_id);
        let n = Notification {
            outcome_id: &o.id,
            scenario: "elderly_allowance",
            kind: &o.kind,
            run,
            period: &o.period,
            band: o.band.as_deref(),
            amount: yuan(o.fen),
            reason: &o.reason,
            recipient: recipient.clone(),
            recipient_masked: masked.clone(),
            name_masked: o
                .name
                .as_deref()
                .map(|n| gdx_catalog::mask::mask(PiiKind::Name, n)),
            as_of: &o.as_of,
        };
        out.push(OutMessage {
            topic: NOTIFICATIONS_TOPIC,
            key: recipient.unwrap_or(masked),
            outcome: o.id.clone(),
            payload: json(serde_json::to_vec(&n))?,
            event_time: None,
        });
        if o.kind == "payment" {
            let paid_on = o.as_of.get(..10).unwrap_or_default().to_owned();
            let fact = serde_json::json!({
                "payment_id": o.id,
                "resident_id": o.resident_id,
                "name": o.name,
                "period": o.period,
                "band": o.band,
                "amount": o.fen as f64 / 100.0,
                "bank_card": null,
                "paid_on": paid_on,
                "status": "paid",
            });
            out.push(OutMessage {
                topic: PAYMENTS_TOPIC,
                key: o.id.clone(),
                outcome: o.id.clone(),
                payload: json(serde_json::to_vec(&fact))?,
                event_time: Some(o.as_of.replace(' ', "T")),
            });
        }
    }
    Ok(out)
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

async fn claim(table: &mut LedgerTable, run: i64, ours: bool) -> Result<(), PublishError> {
    if !ours && let Some(c) = table.mark(CLAIM).await? {
        let age_ms = now_ms() - c % CLAIM_SCALE;
        if c / CLAIM_SCALE == run && age_ms < LEASE_MS {
            return Err(PublishError::Busy { run, age_ms });
        }
    }
    match table
        .set_marks(&[(CLAIM.to_owned(), run * CLAIM_SCALE + now_ms())])
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_concurrent_commit() => Err(PublishError::TakenOver { run }),
        Err(e) => Err(e.into()),
    }
}

/// Publishes every run of the ledger not published yet, in order.
pub async fn publish(
    lake: &LakeLocation,
    sink: std::sync::Arc<dyn OutcomeSink>,
    pseudonyms: Option<&Pseudonymizer>,
) -> Result<PublishReport, PublishError> {
    let mut table = LedgerTable::open(lake.scenario(ledger::ELDERLY_ALLOWANCE)).await?;
    let mut report = PublishReport::default();
    loop {
        let last = table.last_run().await?;
        let published = table.mark(PUBLISHED).await?.unwrap_or(0);
        if published >= last {
            return Ok(report);
        }
        let run = published + 1;
        claim(&mut table, run, false).await?;
        // What the topics already hold of this run. A partition no publication has recorded
        // yet (the first run, a new partition) starts where it ends now: that is recorded
        // before anything is sent, so a publisher killed after sending finds its messages
        // after it (and the feed's older messages, which the embedded broker may already
        // have dropped, are never needed).
        let mut present: BTreeMap<&'static str, HashSet<String>> = BTreeMap::new();
        let mut starts = Vec::new();
        for topic in [NOTIFICATIONS_TOPIC, PAYMENTS_TOPIC] {
            let parts = blocking({
                let sink = sink.clone();
                move || sink.partitions(topic)
            })
            .await?;
            let mut ranges = Vec::new();
            for (partition, low, high) in parts {
                let mark = offset_mark(topic, partition);
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
            starts.push((CLAIM.to_owned(), run * CLAIM_SCALE + now_ms()));
            match table.set_marks(&starts).await {
                Ok(_) => {}
                Err(e) if e.is_concurrent_commit() => {
                    return Err(PublishError::TakenOver { run });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let all = messages(run, &outcomes(&table, run).await?, pseudonyms)?;
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
            claim(&mut table, run, true).await?;
        }
        report.notifications += todo
            .iter()
            .filter(|m| m.topic == NOTIFICATIONS_TOPIC)
            .count() as u64;
        report.payment_facts += todo.iter().filter(|m| m.topic == PAYMENTS_TOPIC).count() as u64;
        // Done: the run and where the topics end now, in one commit.
        let mut marks = vec![(PUBLISHED.to_owned(), run)];
        for topic in [NOTIFICATIONS_TOPIC, PAYMENTS_TOPIC] {
            let parts = blocking({
                let sink = sink.clone();
                move || sink.partitions(topic)
            })
            .await?;
            marks.extend(
                parts
                    .into_iter()
                    .map(|(p, _, high)| (offset_mark(topic, p), high)),
            );
        }
        match table.set_marks(&marks).await {
            Ok(_) => {}
            Err(e) if e.is_concurrent_commit() => return Err(PublishError::TakenOver { run }),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(run, sent = todo.len(), "elderly allowance run published");
        report.runs.push(run);
    }
}
