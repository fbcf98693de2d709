//! An append-only Delta table whose commits remember the Kafka offsets they cover.
//!
//! Data flow: open (or create, from the catalog-derived schema) the table at a URL →
//! [`EventTable::txn_version`] reads, per Kafka partition, the last offset the lake holds
//! (a Delta application transaction, app id `<job>/<cluster>/<topic>/<partition>`) →
//! [`EventTable::append`] writes batches and the new offsets in one atomic commit. Because
//! data and offsets commit together, a worker killed at any point restarts exactly after the
//! last committed offset: nothing twice, nothing missing.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::operations::write::SchemaMode;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use url::Url;

use crate::{Error, Result};

mod commit;
mod layout;
mod stats_property;

use commit::commit_actions;
pub(crate) use commit::commit_txns_only;
pub use layout::ColumnLayout;
use layout::group_into_files;
pub(crate) use stats_property::keep_personal_stats_out;

/// The offset a commit records for one Kafka partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTxn {
    /// `<job>/<cluster id>/<topic>/<partition>`.
    pub app_id: String,
    /// The last Kafka offset of that partition included in the commit.
    pub offset: i64,
}

/// The application-transaction id of one Kafka partition for one ingest job and cluster.
pub fn app_id(job: &str, cluster: &str, topic: &str, partition: i32) -> String {
    format!("{job}/{cluster}/{topic}/{partition}")
}

/// One Delta table that is appended to with offset-carrying commits.
#[derive(Debug)]
pub struct EventTable {
    table: DeltaTable,
    url: Url,
    /// Which columns skip the Parquet dictionary and which are personal (no statistics).
    layout: ColumnLayout,
    /// Parquet files an append writes side by side.
    files_per_append: usize,
}

impl EventTable {
    fn err(&self, source: deltalake::DeltaTableError) -> Error {
        Error::Delta {
            table: self.url.to_string(),
            source: Box::new(source),
        }
    }

    /// Opens the table at `url`, creating it with `schema` if there is none yet. Two workers
    /// racing to create the same table both end up with it.
    pub async fn open_or_create(url: Url, schema: SchemaRef, name: &str) -> Result<Self> {
        Self::open_or_create_with(url, schema, name, ColumnLayout::default()).await
    }

    /// [`Self::open_or_create`] for a table whose columns are written as `layout` says; a
    /// table created here also lists its non-personal columns as the only ones with Delta
    /// statistics ([`ColumnLayout::personal`]), and an existing table whose property lets a
    /// personal column through is set right first.
    pub async fn open_or_create_with(
        url: Url,
        schema: SchemaRef,
        name: &str,
        layout: ColumnLayout,
    ) -> Result<Self> {
        let delta = |source: deltalake::DeltaTableError| Error::Delta {
            table: url.to_string(),
            source: Box::new(source),
        };
        ensure_local_dir(&url).map_err(delta)?;
        let table = DeltaTable::try_from_url(url.clone()).await.map_err(delta)?;
        if table.version().is_some() {
            let table = keep_personal_stats_out(table, &url, &layout).await?;
            return Ok(Self::new(table, url, layout));
        }
        let stats_columns = layout.stats_columns(&schema);
        let columns: StructType =
            schema
                .as_ref()
                .try_into_kernel()
                .map_err(|source| Error::Schema {
                    table: url.to_string(),
                    source,
                })?;
        let created = table
            .create()
            .with_table_name(name)
            .with_columns(columns.fields().cloned())
            .with_configuration_property(deltalake::TableProperty::AppendOnly, Some("true"))
            .with_configuration_property(
                deltalake::TableProperty::DataSkippingStatsColumns,
                stats_columns,
            )
            // A creator that loses the race must fail, not retry: delta-rs would otherwise
            // commit its create actions again as version 1, and that metadata change
            // aborts every other writer's concurrent append.
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        let table = match created {
            Ok(t) => t,
            // Someone else created it between our load and our create; if nobody did, the
            // create's own error (a store refusing the write, say) is the one to report.
            Err(create_error) => {
                let t = DeltaTable::try_from_url(url.clone()).await.map_err(delta)?;
                if t.version().is_none() {
                    return Err(delta(create_error));
                }
                t
            }
        };
        Ok(Self::new(table, url, layout))
    }

    fn new(table: DeltaTable, url: Url, layout: ColumnLayout) -> Self {
        Self {
            table,
            url,
            layout,
            files_per_append: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// How many Parquet files one append writes side by side, each encoded on its own
    /// thread (default: one per core; never more than the batches appended).
    pub fn with_files_per_append(mut self, files: usize) -> Self {
        self.files_per_append = files.max(1);
        self
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The table's current version as this handle knows it.
    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// Reloads the table state (other workers may have committed).
    pub async fn refresh(&mut self) -> Result<()> {
        self.table.update_state().await.map_err(|e| self.err(e))
    }

    /// The last offset committed for `app_id`, as of the loaded state.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>> {
        let snapshot = self.table.snapshot().map_err(|e| self.err(e))?;
        snapshot
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(|e| self.err(e))
    }

    /// Appends `batches` and records `txns` in the same commit; returns the new version.
    ///
    /// Another writer may change the table's schema or protocol meanwhile (a worker that
    /// applies a field the catalog added); Delta then refuses this commit. The table is
    /// reloaded and the append retried, unless that writer also moved one of `txns`'
    /// partitions: then this worker no longer owns it, and committing would duplicate rows.
    pub async fn append(
        &mut self,
        batches: Vec<RecordBatch>,
        txns: &[PartitionTxn],
    ) -> Result<u64> {
        let props = CommitProperties::default().with_application_transactions(
            txns.iter()
                .map(|t| Transaction::new(&t.app_id, t.offset))
                .collect(),
        );
        let mut attempt = 1;
        loop {
            match self.append_once(batches.clone(), props.clone()).await {
                Err(e) if attempt < commit::MAX_ATTEMPTS && commit::table_changed_under(&e) => {
                    // delta-rs has just logged the refusal as an error: say it is handled.
                    tracing::warn!(
                        table = %self.url,
                        attempt,
                        "another writer changed the table's schema; retrying the append"
                    );
                    self.reload_keeping(txns).await?;
                    attempt += 1;
                }
                done => return done.map_err(|e| self.err(e)),
            }
        }
    }

    async fn append_once(
        &mut self,
        batches: Vec<RecordBatch>,
        props: CommitProperties,
    ) -> std::result::Result<u64, deltalake::DeltaTableError> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return commit_txns_only(&mut self.table, props).await;
        }
        let files = group_into_files(batches, self.files_per_append);
        if files.len() > 1
            && let Some(writers) = self.parallel_writers(&files)
        {
            return self.append_files_in_parallel(files, writers, props).await;
        }
        let table = self
            .table
            .clone()
            .write(files.into_iter().flatten())
            // Additive evolution: a field the catalog added (nullable, validated by the
            // catalog's evolution rules) becomes a new column; old rows read it as null.
            .with_schema_mode(SchemaMode::Merge)
            .with_writer_properties(self.layout.writer_properties())
            .with_commit_properties(props)
            .await?;
        self.table = table;
        Ok(self.table.version().unwrap_or(0))
    }

    /// Reloads the table after a refused commit; fails when a commit in between moved one
    /// of `txns`' partitions (another worker took it over).
    async fn reload_keeping(&mut self, txns: &[PartitionTxn]) -> Result<()> {
        let mut before = Vec::with_capacity(txns.len());
        for t in txns {
            before.push(self.txn_version(&t.app_id).await?);
        }
        self.refresh().await?;
        for (t, was) in txns.iter().zip(before) {
            let now = self.txn_version(&t.app_id).await?;
            if now != was {
                return Err(Error::PartitionTakenOver {
                    table: self.url.to_string(),
                    app_id: t.app_id.clone(),
                    was,
                    now,
                });
            }
        }
        Ok(())
    }

    /// One Parquet writer per file, when every batch is in the table's own schema; `None`
    /// for a batch that adds a column (delta-rs's write evolves the schema) or a table with
    /// features delta-rs's RecordBatchWriter refuses to write.
    fn parallel_writers(&self, files: &[Vec<RecordBatch>]) -> Option<Vec<RecordBatchWriter>> {
        let props = self.layout.writer_properties();
        let writers = files
            .iter()
            .map(|_| {
                RecordBatchWriter::for_table(&self.table)
                    .ok()
                    .map(|w| w.with_writer_properties(props.clone()))
            })
            .collect::<Option<Vec<_>>>()?;
        let schema = writers.first()?.arrow_schema();
        files
            .iter()
            .flatten()
            .all(|b| same_columns(&b.schema(), &schema))
            .then_some(writers)
    }

    /// The files encoded concurrently on the runtime's threads, then one commit with all of
    /// them and the offsets.
    async fn append_files_in_parallel(
        &mut self,
        files: Vec<Vec<RecordBatch>>,
        writers: Vec<RecordBatchWriter>,
        props: CommitProperties,
    ) -> std::result::Result<u64, deltalake::DeltaTableError> {
        let writers: Vec<_> = files
            .into_iter()
            .zip(writers)
            .map(|(batches, mut writer)| {
                tokio::spawn(async move {
                    for batch in batches {
                        writer.write(batch).await?;
                    }
                    writer.flush().await
                })
            })
            .collect();
        let mut adds = Vec::new();
        for w in writers {
            let written = w.await.map_err(|e| {
                deltalake::DeltaTableError::Generic(format!("a Parquet writer task failed: {e}"))
            })?;
            adds.extend(written?.into_iter().map(Action::Add));
        }
        commit_actions(&mut self.table, props, adds).await
    }

    /// The underlying table (for readers).
    pub fn delta(&self) -> &DeltaTable {
        &self.table
    }

    /// `sql` over the table as loaded (registered as `t`, read as the operator reads it);
    /// nothing when the table has no version yet.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        if self.table.version().is_none() {
            return Ok(Vec::new());
        }
        let provider = self
            .table
            .table_provider()
            .await
            .map_err(|e| delta_err(&self.url, e.into()))?;
        crate::read::query_provider(&self.url, provider, sql).await
    }
}

pub(crate) fn delta_err(url: &Url, e: deltalake::DeltaTableError) -> Error {
    Error::Delta {
        table: url.to_string(),
        source: Box::new(e),
    }
}

/// Creates the directory of a local table (object stores need no directories).
pub(crate) fn ensure_local_dir(url: &Url) -> std::result::Result<(), deltalake::DeltaTableError> {
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        std::fs::create_dir_all(&path)?;
    }
    Ok(())
}

/// Opens the table at `url`; `None` when there is no table there yet (any other failure,
/// such as a store that refuses access, is an error).
pub(crate) async fn open(url: &Url) -> Result<Option<DeltaTable>> {
    if url.scheme() == "file"
        && let Ok(p) = url.to_file_path()
        && !p.join("_delta_log").exists()
    {
        return Ok(None);
    }
    match deltalake::open_table(url.clone()).await {
        Ok(t) => Ok(Some(t)),
        Err(deltalake::DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(delta_err(url, e)),
    }
}

/// Total rows of a table according to its file statistics.
pub(crate) fn stats_rows(table: &DeltaTable) -> u64 {
    table
        .snapshot()
        .map(|s| {
            s.log_data()
                .iter()
                .map(|f| {
                    // Rows a deletion vector removes are no longer in the table.
                    let removed = f.deletion_vector_descriptor().map_or(0, |d| d.cardinality);
                    (f.num_records().unwrap_or(0) as u64).saturating_sub(removed.max(0) as u64)
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Whether two schemas have the same columns (names and types, in order); nullability and
/// metadata may differ.
fn same_columns(a: &arrow::datatypes::Schema, b: &arrow::datatypes::Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

#[cfg(test)]
mod tests;
