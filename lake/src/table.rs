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
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use url::Url;

use crate::{Error, Result};

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
    /// Columns written without dictionary encoding (unique per row).
    unique_columns: Vec<String>,
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
        let delta = |source: deltalake::DeltaTableError| Error::Delta {
            table: url.to_string(),
            source: Box::new(source),
        };
        ensure_local_dir(&url).map_err(delta)?;
        let table = DeltaTable::try_from_url(url.clone()).await.map_err(delta)?;
        if table.version().is_some() {
            return Ok(Self::new(table, url));
        }
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
            .await;
        let table = match created {
            Ok(t) => t,
            // Someone else created it between our load and our create.
            Err(_) => {
                let t = DeltaTable::try_from_url(url.clone()).await.map_err(delta)?;
                if t.version().is_none() {
                    return Err(delta(deltalake::DeltaTableError::NotATable(
                        url.to_string(),
                    )));
                }
                t
            }
        };
        Ok(Self::new(table, url))
    }

    fn new(table: DeltaTable, url: Url) -> Self {
        Self {
            table,
            url,
            unique_columns: Vec::new(),
        }
    }

    /// Names columns whose values are unique per row (a dataset's primary key), written
    /// without dictionary encoding like the unique provenance columns.
    pub fn with_unique_columns(mut self, columns: &[String]) -> Self {
        self.unique_columns = columns.to_vec();
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
        if batches.iter().all(|b| b.num_rows() == 0) {
            return self.commit_offsets_only(props).await;
        }
        if batches.len() > 1
            && let Some(writers) = self.parallel_writers(&batches)
        {
            return self.append_files_in_parallel(batches, writers, props).await;
        }
        let table = self
            .table
            .clone()
            .write(batches)
            // Additive evolution: a field the catalog added (nullable, validated by the
            // catalog's evolution rules) becomes a new column; old rows read it as null.
            .with_schema_mode(SchemaMode::Merge)
            .with_writer_properties(writer_properties(&self.unique_columns))
            .with_commit_properties(props)
            .await
            .map_err(|e| self.err(e))?;
        self.table = table;
        Ok(self.table.version().unwrap_or(0))
    }

    /// One Parquet writer per batch, when every batch is in the table's own schema; `None`
    /// for a batch that adds a column (delta-rs's write evolves the schema) or a table with
    /// features delta-rs's RecordBatchWriter refuses to write.
    fn parallel_writers(&self, batches: &[RecordBatch]) -> Option<Vec<RecordBatchWriter>> {
        let props = writer_properties(&self.unique_columns);
        let writers = batches
            .iter()
            .map(|_| {
                RecordBatchWriter::for_table(&self.table)
                    .ok()
                    .map(|w| w.with_writer_properties(props.clone()))
            })
            .collect::<Option<Vec<_>>>()?;
        let schema = writers.first()?.arrow_schema();
        batches
            .iter()
            .all(|b| same_columns(&b.schema(), &schema))
            .then_some(writers)
    }

    /// One Parquet file per batch, encoded concurrently on the runtime's threads, then one
    /// commit with all of them and the offsets.
    async fn append_files_in_parallel(
        &mut self,
        batches: Vec<RecordBatch>,
        writers: Vec<RecordBatchWriter>,
        props: CommitProperties,
    ) -> Result<u64> {
        let writers: Vec<_> = batches
            .into_iter()
            .zip(writers)
            .map(|(batch, mut writer)| {
                tokio::spawn(async move {
                    writer.write(batch).await?;
                    writer.flush().await
                })
            })
            .collect();
        let mut adds = Vec::new();
        for w in writers {
            let written = w.await.map_err(|e| {
                self.err(deltalake::DeltaTableError::Generic(format!(
                    "a Parquet writer task failed: {e}"
                )))
            })?;
            adds.extend(
                written
                    .map_err(|e| self.err(e))?
                    .into_iter()
                    .map(Action::Add),
            );
        }
        commit_actions(&mut self.table, props, adds)
            .await
            .map_err(|e| self.err(e))
    }

    /// A commit that only moves offsets (every message of the run was dead-lettered).
    async fn commit_offsets_only(&mut self, props: CommitProperties) -> Result<u64> {
        commit_txns_only(&mut self.table, props)
            .await
            .map_err(|e| self.err(e))
    }

    /// The underlying table (for readers).
    pub fn delta(&self) -> &DeltaTable {
        &self.table
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
                .map(|f| f.num_records().unwrap_or(0) as u64)
                .sum()
        })
        .unwrap_or(0)
}

/// A commit without data that records application transactions (Kafka offsets, or the events
/// version a fold reached); reloads `table` to the new version.
pub(crate) async fn commit_txns_only(
    table: &mut DeltaTable,
    props: CommitProperties,
) -> std::result::Result<u64, deltalake::DeltaTableError> {
    commit_actions(table, props, Vec::new()).await
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

/// An append commit of `actions` (added files) with the application transactions of
/// `props`; reloads `table` to the new version.
async fn commit_actions(
    table: &mut DeltaTable,
    props: CommitProperties,
    actions: Vec<Action>,
) -> std::result::Result<u64, deltalake::DeltaTableError> {
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    let snapshot = table.snapshot()?;
    let committed = CommitBuilder::from(props)
        .with_actions(actions)
        .build(
            Some(snapshot as &dyn TableReference),
            table.log_store(),
            operation,
        )
        .await?;
    let version = committed.version();
    table.update_state().await?;
    Ok(version)
}

/// Parquet settings of appended files: delta-rs's (Snappy), minus dictionary encoding for
/// columns unique per row — the provenance columns and `unique` (their dictionaries
/// overflow and fall back to plain encoding after the writer has hashed every value for
/// nothing: 7 % less CPU per message in `gdx bench ingest`).
fn writer_properties(unique: &[String]) -> deltalake::parquet::file::properties::WriterProperties {
    use crate::schema::provenance as p;
    use deltalake::parquet::basic::Compression;
    use deltalake::parquet::schema::types::ColumnPath;
    let mut b = deltalake::parquet::file::properties::WriterProperties::builder()
        .set_created_by(format!("gdx {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(deltalake::parquet::file::properties::EnabledStatistics::Chunk);
    let provenance = [p::OFFSET, p::KAFKA_TS, p::EVENT_TIME, p::KEY, p::EVENT_ID];
    for c in provenance
        .into_iter()
        .chain(unique.iter().map(String::as_str))
    {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("_offset", DataType::Int64, false),
        ]))
    }

    fn batch(offsets: std::ops::Range<i64>) -> RecordBatch {
        let keys: Vec<String> = offsets.clone().map(|o| format!("k{o}")).collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from(offsets.collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    /// A new table `t` in a temp dir (kept alive by the returned guard).
    async fn fresh() -> (tempfile::TempDir, Url, EventTable) {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path().join("t")).unwrap();
        let t = EventTable::open_or_create(url.clone(), schema(), "t")
            .await
            .unwrap();
        (dir, url, t)
    }

    /// The Parquet footer of the table's first data file.
    fn first_file_metadata(t: &EventTable) -> deltalake::parquet::file::metadata::ParquetMetaData {
        use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
        let file = t.delta().get_file_uris().unwrap().next().unwrap();
        let file = std::fs::File::open(file.trim_start_matches("file://")).unwrap();
        SerializedFileReader::new(file).unwrap().metadata().clone()
    }

    #[tokio::test]
    async fn batches_become_files_written_side_by_side_in_one_commit() {
        let (_dir, url, mut t) = fresh().await;
        let txn = |offset| PartitionTxn {
            app_id: "a".into(),
            offset,
        };
        let v = t
            .append(vec![batch(0..10), batch(10..25), batch(25..40)], &[txn(39)])
            .await
            .unwrap();
        assert_eq!(v, 1, "one commit");
        assert_eq!(t.delta().get_file_uris().unwrap().count(), 3);
        assert_eq!(stats_rows(t.delta()), 40, "every file has its statistics");
        let reopened = EventTable::open_or_create(url, schema(), "t")
            .await
            .unwrap();
        assert_eq!(reopened.txn_version("a").await.unwrap(), Some(39));
        assert_eq!(crate::read::row_count(reopened.url()).await.unwrap(), 40);
    }

    #[tokio::test]
    async fn unique_columns_are_written_without_a_dictionary() {
        let (_dir, url, t) = fresh().await;
        let mut t = t.with_unique_columns(&["k".to_owned()]);
        t.append(vec![batch(0..100)], &[]).await.unwrap();
        let meta = first_file_metadata(&t);
        for c in meta.row_group(0).columns() {
            assert!(
                c.dictionary_page_offset().is_none(),
                "{} has a dictionary",
                c.column_path()
            );
        }
        // Other columns keep delta-rs's dictionary encoding.
        let mut t = EventTable::open_or_create(url.join("../u/").unwrap(), schema(), "u")
            .await
            .unwrap();
        t.append(vec![batch(0..100)], &[]).await.unwrap();
        let meta = first_file_metadata(&t);
        let k = meta.row_group(0).column(0);
        assert_eq!(k.column_path().string(), "k");
        assert!(k.dictionary_page_offset().is_some());
    }

    #[tokio::test]
    async fn a_field_added_by_the_catalog_becomes_a_new_column() {
        let (_dir, url, mut t) = fresh().await;
        t.append(
            vec![batch(0..3)],
            &[PartitionTxn {
                app_id: "a".into(),
                offset: 2,
            }],
        )
        .await
        .unwrap();
        let v2 = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("_offset", DataType::Int64, false),
            Field::new("phone", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            v2.clone(),
            vec![
                Arc::new(StringArray::from(vec!["k3"])),
                Arc::new(Int64Array::from(vec![3])),
                Arc::new(StringArray::from(vec![Some("13800138000")])),
            ],
        )
        .unwrap();
        let mut reopened = EventTable::open_or_create(url.clone(), v2, "t")
            .await
            .unwrap();
        // Two batches (a run decoded in chunks) that both carry the new column.
        reopened
            .append(
                vec![b.clone(), b],
                &[PartitionTxn {
                    app_id: "a".into(),
                    offset: 3,
                }],
            )
            .await
            .unwrap();
        let names: Vec<String> = reopened
            .delta()
            .snapshot()
            .unwrap()
            .schema()
            .fields()
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(names, vec!["k", "_offset", "phone"]);
        let ctx = deltalake::datafusion::prelude::SessionContext::new();
        ctx.register_table("t", reopened.delta().table_provider().await.unwrap())
            .unwrap();
        let n: usize = ctx
            .sql("select * from t where phone is null")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(n, 3, "old rows read the new column as null");
    }

    #[tokio::test]
    async fn offsets_commit_with_the_data_and_survive_reopening() {
        let (_dir, url, mut t) = fresh().await;
        let a = app_id("ingest", "cluster-1", "ps.x", 0);
        let b = app_id("ingest", "cluster-1", "ps.x", 1);
        assert_eq!(t.txn_version(&a).await.unwrap(), None);
        t.append(
            vec![batch(0..10)],
            &[PartitionTxn {
                app_id: a.clone(),
                offset: 9,
            }],
        )
        .await
        .unwrap();
        t.append(
            vec![batch(10..15)],
            &[
                PartitionTxn {
                    app_id: a.clone(),
                    offset: 14,
                },
                PartitionTxn {
                    app_id: b.clone(),
                    offset: 3,
                },
            ],
        )
        .await
        .unwrap();

        // A second handle (another worker, or a restart) sees the same offsets.
        let other = EventTable::open_or_create(url.clone(), schema(), "t")
            .await
            .unwrap();
        assert_eq!(other.txn_version(&a).await.unwrap(), Some(14));
        assert_eq!(other.txn_version(&b).await.unwrap(), Some(3));
        assert_eq!(
            other
                .txn_version(&app_id("ingest", "cluster-2", "ps.x", 0))
                .await
                .unwrap(),
            None
        );
        assert_eq!(other.version(), Some(2));
        let rows: usize = {
            let ctx = deltalake::datafusion::prelude::SessionContext::new();
            ctx.register_table("t", other.delta().table_provider().await.unwrap())
                .unwrap();
            ctx.sql("select * from t")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
                .iter()
                .map(|b| b.num_rows())
                .sum()
        };
        assert_eq!(rows, 15);

        // A commit without rows still records offsets (a run of messages that were all
        // dead-lettered must move the partition on).
        let mut other = other;
        let before = other.version().unwrap();
        other
            .append(
                Vec::new(),
                &[PartitionTxn {
                    app_id: b.clone(),
                    offset: 9,
                }],
            )
            .await
            .unwrap();
        assert_eq!(other.version(), Some(before + 1));
        assert_eq!(other.txn_version(&b).await.unwrap(), Some(9));

        // The first handle learns of commits made elsewhere after a refresh.
        let mut second = other;
        second
            .append(
                vec![batch(15..20)],
                &[PartitionTxn {
                    app_id: a.clone(),
                    offset: 19,
                }],
            )
            .await
            .unwrap();
        assert_eq!(t.txn_version(&a).await.unwrap(), Some(14));
        t.refresh().await.unwrap();
        assert_eq!(t.txn_version(&a).await.unwrap(), Some(19));
    }
}
