//! The lake side of a worker: one events table per dataset and the dead-letter table, each
//! commit carrying the Kafka offsets it covers.
//!
//! Data flow per flush and topic: buffered messages → decoder → dead letters (filtered by
//! the offsets the dead-letter table already holds, so a replay never duplicates them) are
//! committed first → then the event rows with the offsets of every partition in the run.
//! A partition resumes after the events table's offset; dead letters committed just before a
//! crash are filtered out on the replay, so neither table sees an offset twice.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use gdx_catalog::Catalog;
use gdx_lake::schema::{dead_letter_schema, events_schema};
use gdx_lake::table::ColumnLayout;
use gdx_lake::table::app_id;
use gdx_lake::{EventTable, LakeLocation, PartitionTxn};

use super::decoding::{Run, RunContent};
use super::{Error, Result, dead_letters};
use crate::decode::{DeadLetter, ErrorClass, Message};

/// What one flush committed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub messages: usize,
    pub rows: usize,
    pub dead_letters: usize,
    pub commits: usize,
}

pub(crate) struct Sinks {
    lake: LakeLocation,
    catalog: Arc<Catalog>,
    job: String,
    cluster: String,
    tables: HashMap<String, EventTable>,
    dead: Option<EventTable>,
    /// Last offset the dead-letter table holds, per app id.
    dead_versions: HashMap<String, i64>,
}

impl Sinks {
    pub(crate) fn new(
        lake: LakeLocation,
        catalog: Arc<Catalog>,
        job: String,
        cluster: String,
    ) -> Self {
        Self {
            lake,
            catalog,
            job,
            cluster,
            tables: HashMap::new(),
            dead: None,
            dead_versions: HashMap::new(),
        }
    }

    fn app_id(&self, topic: &str, partition: i32) -> String {
        app_id(&self.job, &self.cluster, topic, partition)
    }

    async fn table(&mut self, topic: &str) -> Result<&mut EventTable> {
        if !self.tables.contains_key(topic) {
            let ds = self
                .catalog
                .by_topic(topic)
                .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
            let t = EventTable::open_or_create_with(
                self.lake.events(&ds.id),
                events_schema(ds),
                ds.id.as_str(),
                ColumnLayout::events(ds),
            )
            .await?;
            self.tables.insert(topic.to_owned(), t);
        }
        Ok(self.tables.get_mut(topic).expect("inserted above"))
    }

    async fn dead(&mut self) -> Result<&mut EventTable> {
        if self.dead.is_none() {
            self.dead = Some(
                EventTable::open_or_create_with(
                    self.lake.dead_letters(),
                    dead_letter_schema(),
                    "dead_letters",
                    ColumnLayout::dead_letters(),
                )
                .await?,
            );
        }
        Ok(self.dead.as_mut().expect("set above"))
    }

    /// For every `(topic, partition)`, the first offset the lake does not hold yet (None:
    /// from the beginning), read fresh from the tables (another worker may have committed
    /// it). Each table is reloaded once per call, however many of its partitions are asked.
    pub(crate) async fn resume_offsets(
        &mut self,
        parts: &[(String, i32)],
    ) -> Result<Vec<Option<i64>>> {
        let mut topics: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        for topic in topics {
            if self.catalog.by_topic(topic).is_some() {
                self.table(topic).await?.refresh().await?;
            }
        }
        self.dead().await?.refresh().await?;
        let ids: Vec<String> = parts.iter().map(|(t, p)| self.app_id(t, *p)).collect();
        let dead = self.dead.as_ref().expect("opened above");
        let tables = &self.tables;
        let lookups = parts.iter().zip(&ids).map(|((topic, _), id)| async move {
            let events = match tables.get(topic.as_str()) {
                Some(t) => Some(t.txn_version(id).await?),
                None => None,
            };
            Ok::<_, Error>((events, dead.txn_version(id).await?))
        });
        // Each lookup replays the table's log on a blocking thread: a few at a time.
        let found: Vec<(Option<Option<i64>>, Option<i64>)> = futures::stream::iter(lookups)
            .buffered(8)
            .try_collect()
            .await?;
        let mut offsets = Vec::with_capacity(parts.len());
        for (id, (events, dead_version)) in ids.into_iter().zip(found) {
            match dead_version {
                Some(v) => self.dead_versions.insert(id, v),
                None => self.dead_versions.remove(&id),
            };
            // A topic outside the catalog only ever lands in the dead-letter table.
            offsets.push(events.unwrap_or(dead_version).map(|v| v + 1));
        }
        Ok(offsets)
    }

    /// One application transaction per partition: `(partition, last offset)` → app id and offset.
    fn txns<'a>(
        &self,
        topic: &str,
        last: impl IntoIterator<Item = (&'a i32, &'a i64)>,
    ) -> Vec<PartitionTxn> {
        last.into_iter()
            .map(|(p, o)| PartitionTxn {
                app_id: self.app_id(topic, *p),
                offset: *o,
            })
            .collect()
    }

    /// Whether the dead-letter table already holds this offset (a replay after a crash).
    fn dead_letter_done(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.dead_versions
            .get(&self.app_id(topic, partition))
            .is_some_and(|v| offset <= *v)
    }

    /// Commits dead letters with `txns` and remembers the offsets the table now holds.
    async fn commit_dead_letters(
        &mut self,
        fresh: &[DeadLetter],
        txns: Vec<PartitionTxn>,
        now_us: i64,
    ) -> Result<()> {
        let batch = dead_letters::batch(fresh, now_us);
        self.dead().await?.append(vec![batch], &txns).await?;
        for t in txns {
            self.dead_versions.insert(t.app_id, t.offset);
        }
        Ok(())
    }

    /// Every message of a topic the catalog does not know becomes a dead letter.
    async fn flush_unknown(
        &mut self,
        topic: &str,
        msgs: &[Message],
        last: &HashMap<i32, i64>,
        now_us: i64,
    ) -> Result<FlushStats> {
        let why = format!("topic {topic} is not in the catalog");
        let fresh: Vec<DeadLetter> = msgs
            .iter()
            .filter(|m| !self.dead_letter_done(&m.topic, m.partition, m.offset))
            .map(|m| DeadLetter::new(m, ErrorClass::UnknownTopic, why.clone(), None))
            .collect();
        let txns = self.txns(topic, last);
        self.commit_dead_letters(&fresh, txns, now_us).await?;
        Ok(FlushStats {
            messages: msgs.len(),
            rows: 0,
            dead_letters: fresh.len(),
            commits: 1,
        })
    }

    /// Commits one topic's run: its dead letters, then its event rows, each commit carrying
    /// the offsets of every partition in the run.
    pub(crate) async fn flush_run(&mut self, run: Run, now_us: i64) -> Result<FlushStats> {
        let Run {
            topic,
            last,
            messages,
            content,
        } = run;
        let topic = topic.as_str();
        // How long the run's decoding still took once the previous run had landed.
        let waited = std::time::Instant::now();
        let decoded = match content {
            RunContent::Unknown(msgs) => {
                return self.flush_unknown(topic, &msgs, &last, now_us).await;
            }
            RunContent::Decoding(task) => task.await.map_err(|e| Error::Task(e.to_string()))??,
        };
        let decode_wait_ms = waited.elapsed().as_millis() as u64;
        self.table(topic).await?;
        let started = std::time::Instant::now();
        let mut stats = FlushStats {
            messages,
            ..FlushStats::default()
        };

        let fresh: Vec<_> = decoded
            .dead_letters
            .into_iter()
            .filter(|d| !self.dead_letter_done(&d.topic, d.partition, d.offset))
            .collect();
        if !fresh.is_empty() {
            let mut parts: Vec<i32> = fresh.iter().map(|d| d.partition).collect();
            parts.sort_unstable();
            parts.dedup();
            let txns = self.txns(topic, parts.iter().map(|p| (p, &last[p])));
            self.commit_dead_letters(&fresh, txns, now_us).await?;
            stats.dead_letters = fresh.len();
            stats.commits += 1;
        }

        let txns = self.txns(topic, &last);
        let batches = decoded.batches;
        stats.rows = batches.iter().map(|b| b.num_rows()).sum();
        self.tables
            .get_mut(topic)
            .expect("opened above")
            .append(batches, &txns)
            .await?;
        stats.commits += 1;
        tracing::debug!(
            topic,
            messages,
            rows = stats.rows,
            decode_wait_ms,
            write_ms = started.elapsed().as_millis() as u64,
            "flushed"
        );
        Ok(stats)
    }
}
