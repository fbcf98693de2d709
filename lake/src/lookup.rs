//! Point lookups by key that plan no query: a keyed table's newest version held in memory,
//! each answer made by the reader's policy exactly as a scan would make it.
//!
//! Data flow: the registry's table at version v → [`KeyIndex::build`] reads it once as the
//! operator (through [`PolicyTable::operator`], like the lake's own folds) into Arrow
//! batches and a hash map from the subject as stored to its rows, within a memory budget
//! (a table that does not fit is not indexed; its readers keep the scan) → per call
//! [`KeyIndex::lookup`] asks the reader's [`TablePolicy`] for its access to the table,
//! takes the key's rows (zero-copy slices) and hands them to the same [`PolicyTable`] a
//! session would wrap the table in: the row filter on stored values, then the column
//! transforms → the rows as the reader sees them. A lookup by the subject reads nothing
//! and plans nothing; a newer version of the table is served by the scan until the index
//! of that version is built ([`KeyIndex::is_current`]).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::execution::{SendableRecordBatchStream, SessionState};
use futures::TryStreamExt;

use crate::engine::df_err;
use crate::policy::{Access, PolicyTable, ReadMode, TableInfo};
use crate::{Result, TablePolicy, TableRegistry};

/// A whole table at the registry's newest version, read as the operator reads it (allow-all,
/// through [`PolicyTable::operator`], like the lake's own folds): what the exchange's
/// in-memory indexes are built from.
pub struct OperatorScan {
    /// The Delta version read (`None`: the table is not written yet and reads as empty).
    pub version: Option<u64>,
    pub info: Arc<TableInfo>,
    /// The table as stored at `version` (its schema, and for wrapping by a reader's policy).
    pub provider: Arc<dyn TableProvider>,
    pub stream: SendableRecordBatchStream,
    /// The session state the scan ran in (type coercion for later row filters).
    pub state: SessionState,
}

impl std::fmt::Debug for OperatorScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorScan")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl OperatorScan {
    /// Starts reading `table`; `None` when the registry has no such table or it is not open.
    pub async fn open(registry: &TableRegistry, table: &str) -> Result<Option<Self>> {
        let snapshot = registry.snapshot();
        let Some(opened) = snapshot.get(table).and_then(|t| t.opened.clone()) else {
            return Ok(None);
        };
        let ctx = crate::engine::session(256 << 20)?;
        let operator = Arc::new(PolicyTable::operator(table, opened.provider.clone()));
        let stream = ctx
            .read_table(operator)
            .map_err(|e| df_err(table, e))?
            .execute_stream()
            .await
            .map_err(|e| df_err(table, e))?;
        Ok(Some(Self {
            version: opened.version,
            info: opened.info.clone(),
            provider: opened.provider.clone(),
            stream,
            state: ctx.state(),
        }))
    }

    /// Every batch of the table.
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        let table = self.info.name.clone();
        self.stream
            .try_collect()
            .await
            .map_err(|e| df_err(&table, e))
    }
}

/// Where one row is: batch and row within it.
type RowRef = (u32, u32);

/// One table's rows at one version, found by their subject.
#[derive(Debug)]
pub struct KeyIndex {
    table: String,
    version: u64,
    info: Arc<TableInfo>,
    /// The table as stored at `version` (never scanned here: its schema, for the policy).
    provider: Arc<dyn TableProvider>,
    batches: Vec<RecordBatch>,
    /// Subject as stored (as text) → its row; a subject with several rows is in `more`.
    rows: HashMap<Box<str>, RowRef>,
    more: HashMap<Box<str>, Vec<RowRef>>,
    bytes: usize,
    /// For the policy's row filter (type coercion as a session would do it).
    state: SessionState,
}

/// What [`KeyIndex::build`] made.
#[derive(Debug)]
pub enum Built {
    Index(Box<KeyIndex>),
    /// The table has no subject column, or is not written yet.
    NotKeyed,
    /// The table does not fit in `budget` bytes.
    TooLarge {
        budget: usize,
    },
}

/// What a reader gets from a lookup.
#[derive(Debug)]
pub enum Lookup {
    /// The reader may not read this table's rows (hidden, verification only, or
    /// aggregates only): the same answer a session would give, "no such table".
    NotReadable,
    /// The key's rows as the reader sees them (none when there are none, or none the
    /// reader's row filter lets through).
    Rows(RecordBatch),
}

impl KeyIndex {
    /// Reads `table`'s current version into an index by its subject column, unless it
    /// takes more than `budget` bytes.
    pub async fn build(registry: &TableRegistry, table: &str, budget: usize) -> Result<Built> {
        let Some(OperatorScan {
            version: Some(version),
            info,
            provider,
            mut stream,
            state,
        }) = OperatorScan::open(registry, table).await?
        else {
            return Ok(Built::NotKeyed);
        };
        let Some(subject) = info.subject.clone() else {
            return Ok(Built::NotKeyed);
        };
        let key_at = provider
            .schema()
            .index_of(&subject)
            .map_err(|e| crate::Error::Schema {
                table: table.to_owned(),
                source: e,
            })?;
        let mut index = KeyIndex {
            table: table.to_owned(),
            version,
            info,
            provider,
            batches: Vec::new(),
            rows: HashMap::new(),
            more: HashMap::new(),
            bytes: 0,
            state,
        };
        while let Some(batch) = stream.try_next().await.map_err(|e| df_err(table, e))? {
            index.bytes += batch.get_array_memory_size();
            if index.bytes > budget {
                return Ok(Built::TooLarge { budget });
            }
            let keys =
                cast(batch.column(key_at), &DataType::Utf8).map_err(|e| crate::Error::Schema {
                    table: table.to_owned(),
                    source: e,
                })?;
            let keys = keys.as_string::<i32>();
            let b = u32::try_from(index.batches.len()).unwrap_or(u32::MAX);
            for (row, key) in keys.iter().enumerate() {
                let Some(key) = key else { continue };
                let at = (b, u32::try_from(row).unwrap_or(u32::MAX));
                index.bytes += key.len() + 32;
                if let Some(first) = index.rows.get(key) {
                    index
                        .more
                        .entry(key.into())
                        .or_insert_with(|| vec![*first])
                        .push(at);
                } else {
                    index.rows.insert(key.into(), at);
                }
            }
            index.batches.push(batch);
        }
        if index.bytes > budget {
            return Ok(Built::TooLarge { budget });
        }
        Ok(Built::Index(Box::new(index)))
    }

    /// The table version this index holds.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Memory the index holds, in bytes (batches and keys).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Subjects indexed.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// True when `registry`'s snapshot still holds the version this index was built from
    /// (a reader's session opened now would read the same rows).
    pub fn is_current(&self, registry: &TableRegistry) -> bool {
        registry.snapshot().version(&self.table) == Some(self.version)
    }

    /// The rows of subject `key` (as stored) as `policy`'s reader sees them.
    pub fn lookup(&self, policy: &dyn TablePolicy, key: &str) -> Result<Lookup> {
        let access = match policy.access(&self.info) {
            Access::Read(a) if a.mode == ReadMode::Rows => a,
            Access::Read(_) | Access::Hidden | Access::VerifyOnly => {
                return Ok(Lookup::NotReadable);
            }
        };
        let refs: &[RowRef] = match self.more.get(key) {
            Some(all) => all,
            None => match self.rows.get(key) {
                Some(one) => std::slice::from_ref(one),
                None => &[],
            },
        };
        let slices: Vec<RecordBatch> = refs
            .iter()
            .map(|&(b, r)| self.batches[b as usize].slice(r as usize, 1))
            .collect();
        let stored =
            concat_batches(&self.provider.schema(), &slices).map_err(|e| crate::Error::Schema {
                table: self.table.clone(),
                source: e,
            })?;
        // The table the reader's session would hold; only its schema is used here.
        let table = PolicyTable::new(
            &self.info,
            self.provider.clone(),
            &access,
            policy.pseudonymizer(),
        )?;
        let seen = table
            .apply(&self.state, &stored)
            .map_err(|e| df_err(&self.table, e))?;
        Ok(Lookup::Rows(seen))
    }
}
