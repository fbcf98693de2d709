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

use gdx_catalog::Catalog;
use gdx_lake::schema::dead_letter_schema;
use gdx_lake::table::app_id;
use gdx_lake::{EventTable, LakeLocation, PartitionTxn};

use super::{Error, Result, dead_letters};
use crate::decode::{DatasetDecoder, DeadLetter, ErrorClass, Message, last_offsets};

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
    max_message_bytes: usize,
    tables: HashMap<String, EventTable>,
    decoders: HashMap<String, DatasetDecoder>,
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
        max_message_bytes: usize,
    ) -> Self {
        Self {
            lake,
            catalog,
            job,
            cluster,
            max_message_bytes,
            tables: HashMap::new(),
            decoders: HashMap::new(),
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
            let decoder = DatasetDecoder::new(Arc::new(ds.clone()))
                .with_max_message_bytes(self.max_message_bytes);
            let t = EventTable::open_or_create(
                self.lake.events(&ds.id),
                decoder.events_schema().clone(),
                ds.id.as_str(),
            )
            .await?;
            self.decoders.insert(topic.to_owned(), decoder);
            self.tables.insert(topic.to_owned(), t);
        }
        Ok(self.tables.get_mut(topic).expect("inserted above"))
    }

    async fn dead(&mut self) -> Result<&mut EventTable> {
        if self.dead.is_none() {
            self.dead = Some(
                EventTable::open_or_create(
                    self.lake.dead_letters(),
                    dead_letter_schema(),
                    "dead_letters",
                )
                .await?,
            );
        }
        Ok(self.dead.as_mut().expect("set above"))
    }

    /// The first offset of `partition` the lake does not hold yet (None: from the beginning),
    /// read fresh from the tables (another worker may have committed it).
    pub(crate) async fn resume_offset(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>> {
        let id = self.app_id(topic, partition);
        let events = if self.catalog.by_topic(topic).is_some() {
            let table = self.table(topic).await?;
            table.refresh().await?;
            Some(table.txn_version(&id).await?)
        } else {
            None
        };
        let dead = self.dead().await?;
        dead.refresh().await?;
        let dead_version = dead.txn_version(&id).await?;
        match dead_version {
            Some(v) => self.dead_versions.insert(id, v),
            None => self.dead_versions.remove(&id),
        };
        // A topic outside the catalog only ever lands in the dead-letter table.
        Ok(events.unwrap_or(dead_version).map(|v| v + 1))
    }

    /// Every message of a topic the catalog does not know becomes a dead letter.
    async fn flush_unknown(
        &mut self,
        topic: &str,
        msgs: &[Message],
        now_us: i64,
    ) -> Result<FlushStats> {
        let why = format!("topic {topic} is not in the catalog");
        let fresh: Vec<DeadLetter> = msgs
            .iter()
            .filter(|m| {
                self.dead_versions
                    .get(&self.app_id(&m.topic, m.partition))
                    .is_none_or(|v| m.offset > *v)
            })
            .map(|m| DeadLetter::new(m, ErrorClass::UnknownTopic, why.clone(), None))
            .collect();
        let last = last_offsets(msgs);
        let txns: Vec<PartitionTxn> = last
            .iter()
            .map(|(p, o)| PartitionTxn {
                app_id: self.app_id(topic, *p),
                offset: *o,
            })
            .collect();
        let batch = dead_letters::batch(&fresh, now_us);
        self.dead().await?.append(vec![batch], &txns).await?;
        for t in txns {
            self.dead_versions.insert(t.app_id, t.offset);
        }
        Ok(FlushStats {
            messages: msgs.len(),
            rows: 0,
            dead_letters: fresh.len(),
            commits: 1,
        })
    }

    /// Decodes and commits one topic's buffered messages (in offset order per partition).
    pub(crate) async fn flush_topic(
        &mut self,
        topic: &str,
        msgs: &[Message],
        now_us: i64,
    ) -> Result<FlushStats> {
        if msgs.is_empty() {
            return Ok(FlushStats::default());
        }
        if self.catalog.by_topic(topic).is_none() {
            return self.flush_unknown(topic, msgs, now_us).await;
        }
        self.table(topic).await?;
        let decoded = self.decoders[topic].decode(msgs, now_us);
        let last = last_offsets(msgs);
        let mut stats = FlushStats {
            messages: msgs.len(),
            ..FlushStats::default()
        };

        let fresh: Vec<_> = decoded
            .dead_letters
            .into_iter()
            .filter(|d| {
                self.dead_versions
                    .get(&self.app_id(&d.topic, d.partition))
                    .is_none_or(|v| d.offset > *v)
            })
            .collect();
        if !fresh.is_empty() {
            let mut parts: Vec<i32> = fresh.iter().map(|d| d.partition).collect();
            parts.sort_unstable();
            parts.dedup();
            let txns: Vec<PartitionTxn> = parts
                .iter()
                .map(|p| PartitionTxn {
                    app_id: self.app_id(topic, *p),
                    offset: last[p],
                })
                .collect();
            let batch = dead_letters::batch(&fresh, now_us);
            self.dead().await?.append(vec![batch], &txns).await?;
            for t in txns {
                self.dead_versions.insert(t.app_id, t.offset);
            }
            stats.dead_letters = fresh.len();
            stats.commits += 1;
        }

        let txns: Vec<PartitionTxn> = last
            .iter()
            .map(|(p, o)| PartitionTxn {
                app_id: self.app_id(topic, *p),
                offset: *o,
            })
            .collect();
        let batches: Vec<_> = decoded.batch.into_iter().collect();
        stats.rows = batches.iter().map(|b| b.num_rows()).sum();
        self.tables
            .get_mut(topic)
            .expect("opened above")
            .append(batches, &txns)
            .await?;
        stats.commits += 1;
        Ok(stats)
    }
}
