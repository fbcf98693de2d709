//! A journal: a small, totally ordered log of state changes kept as a Delta table, written
//! by any number of processes with compare-and-swap.
//!
//! Data flow: a writer reads the journal's head (the sequence number of its last entry,
//! kept as the Delta application transaction `journal/<name>`) → checks its change against
//! the state folded up to that head → [`Journal::append`] commits the new entries with
//! sequence numbers head+1.. and moves the application transaction to the last of them, in
//! one commit → Delta refuses the commit when any other commit moved the same application
//! transaction since the head was read ([`Appended::Conflict`]): the writer reloads, checks
//! again against the newer state and retries. Readers fold entries in sequence order, so
//! every process that reads the journal reaches the same state.
//!
//! The exchange keeps principals and grants this way: their changes are rare, must never be
//! lost or applied twice, and every replica (local disk or S3) must agree on their order.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use url::Url;

use crate::table::{ColumnLayout, EventTable, PartitionTxn};
use crate::{Error, Result};

/// One entry of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// 1, 2, 3, … in commit order, without gaps.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// Who made the change (a principal id, or `operator` for the CLI).
    pub actor: String,
    /// What kind of change (`principal_added`, `grant_requested`, …).
    pub kind: String,
    /// The change itself, as JSON.
    pub body: String,
}

/// An entry to append: its sequence number is given at commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub body: String,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Committed; the journal's head is now this sequence number.
    Committed { head: i64 },
    /// Another writer appended since the head was read: nothing was written.
    Conflict,
}

/// A journal table.
#[derive(Debug)]
pub struct Journal {
    table: EventTable,
    app_id: String,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("actor", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("body", DataType::Utf8, false),
    ]))
}

impl Journal {
    /// Opens the journal at `url`, creating it when there is none.
    pub async fn open(url: Url, name: &str) -> Result<Self> {
        // Bodies can name people (an end user, a requester): no statistics for them.
        let layout = ColumnLayout {
            personal: vec!["actor".into(), "body".into()],
            statistics: Some(vec!["seq".into(), "at".into(), "kind".into()]),
            ..ColumnLayout::default()
        };
        let table = EventTable::open_or_create_with(url, schema(), name, layout).await?;
        Ok(Self {
            table: table.with_files_per_append(1),
            app_id: format!("journal/{name}"),
        })
    }

    pub fn url(&self) -> &Url {
        self.table.url()
    }

    /// The Delta version this handle has loaded.
    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// Loads the commits other writers made; true when there were any.
    pub async fn refresh(&mut self) -> Result<bool> {
        let before = self.table.version();
        self.table.refresh().await?;
        Ok(self.table.version() != before)
    }

    /// The sequence number of the last entry, as loaded (0 for an empty journal).
    pub async fn head(&self) -> Result<i64> {
        Ok(self.table.txn_version(&self.app_id).await?.unwrap_or(0))
    }

    /// Entries after sequence number `after`, in order, as loaded.
    pub async fn entries_after(&self, after: i64) -> Result<Vec<JournalEntry>> {
        let sql =
            format!("select seq, at, actor, kind, body from t where seq > {after} order by seq");
        let batches = self.table.query(&sql).await?;
        let mut out = Vec::new();
        for b in &batches {
            read_batch(self.url(), b, &mut out)?;
        }
        Ok(out)
    }

    /// Appends `entries` after `head`, the head the caller checked them against.
    pub async fn append(&mut self, head: i64, entries: Vec<NewEntry>) -> Result<Appended> {
        if entries.is_empty() {
            return Ok(Appended::Committed { head });
        }
        let last = head + entries.len() as i64;
        let batch = to_batch(head, &entries).map_err(|source| Error::Schema {
            table: self.url().to_string(),
            source,
        })?;
        let txn = PartitionTxn {
            app_id: self.app_id.clone(),
            offset: last,
        };
        match self.table.append(vec![batch], &[txn]).await {
            Ok(_) => Ok(Appended::Committed { head: last }),
            Err(e) if e.is_concurrent_commit() => {
                self.table.refresh().await?;
                Ok(Appended::Conflict)
            }
            Err(e) => Err(e),
        }
    }
}

fn to_batch(
    head: i64,
    entries: &[NewEntry],
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let seq: Int64Array = (1..=entries.len() as i64).map(|i| head + i).collect();
    let at = TimestampMicrosecondArray::from(
        entries
            .iter()
            .map(|e| e.at.timestamp_micros())
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    let text =
        |f: fn(&NewEntry) -> &str| -> StringArray { entries.iter().map(|e| Some(f(e))).collect() };
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(seq),
            Arc::new(at),
            Arc::new(text(|e| &e.actor)),
            Arc::new(text(|e| &e.kind)),
            Arc::new(text(|e| &e.body)),
        ],
    )
}

fn read_batch(url: &Url, b: &RecordBatch, out: &mut Vec<JournalEntry>) -> Result<()> {
    let bad = |why: &str| Error::Failed(format!("journal {url}: {why}"));
    let seq = b
        .column(0)
        .as_primitive_opt::<arrow::datatypes::Int64Type>()
        .ok_or_else(|| bad("seq is not Int64"))?;
    let at = b
        .column(1)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| bad("at is not a timestamp"))?;
    // Delta scans may hand text back as Utf8View.
    let text = |i: usize| {
        arrow::compute::cast(b.column(i), &DataType::Utf8)
            .map_err(|_| bad("a text column is not text"))
    };
    let (actor, kind, body) = (text(2)?, text(3)?, text(4)?);
    let (actor, kind, body) = (
        actor.as_string::<i32>(),
        kind.as_string::<i32>(),
        body.as_string::<i32>(),
    );
    for i in 0..b.num_rows() {
        if seq.is_null(i) || at.is_null(i) {
            return Err(bad("an entry without seq or time"));
        }
        out.push(JournalEntry {
            seq: seq.value(i),
            at: DateTime::from_timestamp_micros(at.value(i))
                .ok_or_else(|| bad("time out of range"))?,
            actor: actor.value(i).to_owned(),
            kind: kind.value(i).to_owned(),
            body: body.value(i).to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str) -> NewEntry {
        NewEntry {
            at: Utc::now(),
            actor: "operator".into(),
            kind: kind.into(),
            body: "{}".into(),
        }
    }

    #[tokio::test]
    async fn appends_in_order_and_refuses_a_stale_head() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path().join("j")).unwrap();
        let mut a = Journal::open(url.clone(), "t").await.unwrap();
        let mut b = Journal::open(url.clone(), "t").await.unwrap();
        assert_eq!(a.head().await.unwrap(), 0);
        assert_eq!(
            a.append(0, vec![entry("one"), entry("two")]).await.unwrap(),
            Appended::Committed { head: 2 }
        );
        // b read head 0 before a's commit: its append must not land.
        assert_eq!(b.head().await.unwrap(), 0);
        assert_eq!(
            b.append(0, vec![entry("stale")]).await.unwrap(),
            Appended::Conflict
        );
        // After the conflict b has reloaded: head 2, and its retry lands as 3.
        assert_eq!(b.head().await.unwrap(), 2);
        assert_eq!(
            b.append(2, vec![entry("three")]).await.unwrap(),
            Appended::Committed { head: 3 }
        );
        assert!(a.refresh().await.unwrap());
        let all = a.entries_after(0).await.unwrap();
        let kinds: Vec<_> = all.iter().map(|e| (e.seq, e.kind.as_str())).collect();
        assert_eq!(kinds, vec![(1, "one"), (2, "two"), (3, "three")]);
        assert_eq!(a.entries_after(2).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn concurrent_writers_never_share_a_sequence_number() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path().join("j")).unwrap();
        Journal::open(url.clone(), "t").await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut j = Journal::open(url, "t").await.unwrap();
                let mut done = 0;
                while done < 3 {
                    j.refresh().await.unwrap();
                    let head = j.head().await.unwrap();
                    if let Appended::Committed { .. } =
                        j.append(head, vec![entry(&format!("w{w}"))]).await.unwrap()
                    {
                        done += 1;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let j = Journal::open(url, "t").await.unwrap();
        let seqs: Vec<i64> = j
            .entries_after(0)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    }
}
