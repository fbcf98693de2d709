//! The merging fold: it costs what changed, not what exists.
//!
//! Data flow: the event files added since the last fold → their rows (the change set; the
//! fold takes this path only while it is a small share of the table, see
//! [`super::fold`]) and the set of their keys → every data file of `current` and `deleted`
//! scanned for those keys ([`find`]): only the `_key` column is decoded for every row (row
//! groups whose key range holds none of them are skipped), the other columns only for the
//! rows that match (a Parquet row filter); each match keeps its file and position, rows an
//! earlier deletion vector removed never match → the matches ∪ the new events, sorted by key
//! and recency, decided by the same [`Resolver`] as a full fold → per table: decided rows
//! that are new go to one new file, sorted by key; the stored rows they supersede get
//! deletion vectors ([`super::dv`]) → one commit per table (`deleted` first, then `current`)
//! with the new file, the vectors and the fold's events version. Data files are never
//! rewritten here; a full fold (the fold's compaction) rewrites them when the vectors or the
//! files pile up.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, Int32Array, RecordBatch,
    UInt64Array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr, ident, lit};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{Action, Add};
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, RowFilter,
};
#[allow(deprecated)] // see `scan_file`
use deltalake::parquet::arrow::async_reader::{
    ParquetObjectReader, ParquetRecordBatchStreamBuilder,
};
use deltalake::parquet::file::statistics::Statistics;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::{StreamExt, TryStreamExt};
use url::Url;

use super::dv;
use super::resolve::{Keep, Resolver};
use crate::engine::{align, df_err};
use crate::schema::provenance;
use crate::table::{ColumnLayout, commit_txns_only, delta_err, keep_personal_stats_out};
use crate::{Error, Result};

/// The column of a match: the index of its data file in the table's file list.
const FILE: &str = "_fold_file";
/// The column of a match: its position in that file.
const ROW: &str = "_fold_row";

/// What a merging fold changed in one table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Merged {
    /// Rows written (new state of changed keys).
    pub(super) written: u64,
    /// Stored rows marked removed by deletion vectors.
    pub(super) superseded: u64,
}

/// The keys a fold looks for.
struct Keys {
    set: HashSet<String>,
    /// The same keys, ascending (row-group pruning by key range).
    sorted: Vec<String>,
}

impl Keys {
    /// Whether some key lies in `min..=max`.
    fn any_within(&self, min: &[u8], max: &[u8]) -> bool {
        let first = self.sorted.partition_point(|k| k.as_bytes() < min);
        self.sorted.get(first).is_some_and(|k| k.as_bytes() <= max)
    }
}

/// One stored data file: its `add` and the positions its deletion vector already removes.
struct StoredFile {
    add: Add,
    removed: Vec<u64>,
}

/// The stored rows of one table that hold a changed key.
struct Found {
    files: Vec<StoredFile>,
    /// The matched rows (the table's columns, then [`FILE`] and [`ROW`]).
    rows: Vec<RecordBatch>,
}

/// The new events' rows (target columns and `_op`) and their keys.
pub(super) struct Changes {
    pub(super) batches: Vec<RecordBatch>,
}

/// Folds `changes` into `current` and `deleted` by merging; commits both tables with `props`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn merge(
    ctx: &SessionContext,
    changes: Changes,
    target: &SchemaRef,
    fields: &[String],
    current: DeltaTable,
    deleted: Option<DeltaTable>,
    deleted_url: &Url,
    props: impl Fn() -> CommitProperties,
    personal: &[String],
    name: &str,
) -> Result<(DeltaTable, Option<DeltaTable>, Merged)> {
    let keys = Arc::new(keys_of(&changes.batches, name)?);
    let cur_found = find(&current, keys.clone(), target, name).await?;
    let del_found = match &deleted {
        Some(t) => Some(find(t, keys.clone(), target, name).await?),
        None => None,
    };

    let extra_schema = with_position(target);
    register(
        ctx,
        "merge_cur",
        &cur_found.rows,
        &extra_schema,
        target,
        0,
        name,
    )?;
    let empty = Vec::new();
    let del_rows = del_found.as_ref().map(|f| &f.rows).unwrap_or(&empty);
    register(ctx, "merge_del", del_rows, &extra_schema, target, 1, name)?;
    register(
        ctx,
        "merge_new",
        &changes.batches,
        &extra_schema,
        target,
        2,
        name,
    )?;
    let sorted = ctx
        .sql(&super::candidates_sql(
            "merge_cur",
            "merge_del",
            "merge_new",
        ))
        .await
        .map_err(|e| df_err(name, e))?
        .collect()
        .await
        .map_err(|e| df_err(name, e))?;

    let mut merged = Merged::default();
    let layout = ColumnLayout::folded(personal.to_vec());
    let decided = decide(&sorted, Keep::Deleted, fields, name)?;
    let deleted = match (deleted, del_found) {
        (Some(table), Some(found)) => {
            let (t, m) = apply(table, found, decided, target, &layout, props(), name).await?;
            merged.written += m.written;
            merged.superseded += m.superseded;
            Some(t)
        }
        _ => {
            let rows = new_rows(&decided, target, name)?;
            if rows.iter().all(|b| b.num_rows() == 0) {
                None
            } else {
                merged.written += rows.iter().map(|b| b.num_rows() as u64).sum::<u64>();
                let mem =
                    MemTable::try_new(target.clone(), vec![rows]).map_err(|e| df_err(name, e))?;
                let plan = ctx
                    .read_table(Arc::new(mem))
                    .map_err(|e| df_err(name, e))?
                    .logical_plan()
                    .clone();
                Some(
                    super::write_plan(ctx, plan, None, deleted_url, props(), name, personal)
                        .await?,
                )
            }
        }
    };
    let decided = decide(&sorted, Keep::Current, fields, name)?;
    let (current, m) = apply(current, cur_found, decided, target, &layout, props(), name).await?;
    merged.written += m.written;
    merged.superseded += m.superseded;
    Ok((current, deleted, merged))
}

/// The keys of the change set.
fn keys_of(batches: &[RecordBatch], name: &str) -> Result<Keys> {
    let mut set = HashSet::new();
    for b in batches {
        let i = b
            .schema()
            .index_of(provenance::KEY)
            .map_err(|e| schema_err(name, e))?;
        let keys = cast(b.column(i), &DataType::Utf8).map_err(|e| schema_err(name, e))?;
        let keys = keys.as_string::<i32>();
        set.extend(keys.iter().flatten().map(str::to_owned));
    }
    let mut sorted: Vec<String> = set.iter().cloned().collect();
    sorted.sort_unstable();
    Ok(Keys { set, sorted })
}

fn schema_err(name: &str, source: ArrowError) -> Error {
    Error::Schema {
        table: name.to_owned(),
        source,
    }
}

/// `target` with [`FILE`] and [`ROW`].
fn with_position(target: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = target.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(FILE, DataType::Int32, true));
    fields.push(Field::new(ROW, DataType::UInt64, true));
    Arc::new(Schema::new(fields))
}

/// Registers `rows` as `view`: the target columns, `_op`, `_src`, [`FILE`], [`ROW`].
fn register(
    ctx: &SessionContext,
    view: &str,
    rows: &[RecordBatch],
    stored_schema: &SchemaRef,
    target: &SchemaRef,
    src: i32,
    name: &str,
) -> Result<()> {
    let schema = match src {
        2 => rows.first().map(|b| b.schema()).unwrap_or_else(|| {
            let mut f: Vec<Field> = target.fields().iter().map(|f| f.as_ref().clone()).collect();
            f.push(Field::new(provenance::OP, DataType::Utf8, true));
            Arc::new(Schema::new(f))
        }),
        _ => stored_schema.clone(),
    };
    let mem = MemTable::try_new(schema, vec![rows.to_vec()]).map_err(|e| df_err(name, e))?;
    let df = ctx.read_table(Arc::new(mem)).map_err(|e| df_err(name, e))?;
    let null = |ty: DataType| -> Result<Expr> {
        Ok(lit(ScalarValue::try_from(&ty).map_err(|e| df_err(name, e))?))
    };
    let extra = match src {
        2 => vec![
            ident(provenance::OP),
            lit(src).alias("_src"),
            null(DataType::Int32)?.alias(FILE),
            null(DataType::UInt64)?.alias(ROW),
        ],
        _ => vec![
            lit(if src == 1 { "delete" } else { "upsert" }).alias(provenance::OP),
            lit(src).alias("_src"),
            ident(FILE),
            ident(ROW),
        ],
    };
    let df = align(df, target, extra, name)?;
    ctx.register_table(view, df.into_view())
        .map_err(|e| df_err(name, e))?;
    Ok(())
}

/// The decided rows of `sorted` for `keep` (target columns, [`FILE`], [`ROW`]).
fn decide(
    sorted: &[RecordBatch],
    keep: Keep,
    fields: &[String],
    name: &str,
) -> Result<Vec<RecordBatch>> {
    let Some(first) = sorted.first() else {
        return Ok(Vec::new());
    };
    let mut resolver =
        Resolver::new(keep, first.schema(), fields).map_err(|e| schema_err(name, e))?;
    let mut out = Vec::new();
    for b in sorted {
        out.extend(resolver.push(b.clone()).map_err(|e| schema_err(name, e))?);
    }
    out.extend(resolver.finish().map_err(|e| schema_err(name, e))?);
    Ok(out)
}

/// The decided rows that are new (no stored position), in the target's columns.
fn new_rows(decided: &[RecordBatch], target: &SchemaRef, name: &str) -> Result<Vec<RecordBatch>> {
    decided
        .iter()
        .map(|b| {
            let file = b.column(b.num_columns() - 2);
            let is_new =
                datafusion::arrow::compute::is_null(file).map_err(|e| schema_err(name, e))?;
            let kept = filter_record_batch(b, &is_new).map_err(|e| schema_err(name, e))?;
            let cols: Vec<usize> = (0..target.fields().len()).collect();
            kept.project(&cols).map_err(|e| schema_err(name, e))
        })
        .collect()
}

/// The stored place ([`FILE`], [`ROW`]: its last two columns) of each row of `b`; `None`
/// for a new row.
fn places(b: &RecordBatch) -> impl Iterator<Item = Option<(i32, u64)>> + '_ {
    let file = b
        .column(b.num_columns() - 2)
        .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
    let row = b
        .column(b.num_columns() - 1)
        .as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
    (0..b.num_rows()).map(move |i| file.is_valid(i).then(|| (file.value(i), row.value(i))))
}

/// Writes the new rows of `decided` into `table` and marks the found rows it does not keep
/// removed; one commit with `props`.
async fn apply(
    mut table: DeltaTable,
    found: Found,
    decided: Vec<RecordBatch>,
    target: &SchemaRef,
    layout: &ColumnLayout,
    props: CommitProperties,
    name: &str,
) -> Result<(DeltaTable, Merged)> {
    let url = table.table_url().clone();
    let rows = new_rows(&decided, target, name)?;
    let kept: HashSet<(i32, u64)> = decided.iter().flat_map(places).flatten().collect();
    // Found rows not kept: superseded, per file.
    let mut superseded: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for b in &found.rows {
        for (file, row) in places(b).flatten() {
            if !kept.contains(&(file, row)) {
                superseded.entry(file).or_default().push(row);
            }
        }
    }
    let mut merged = Merged {
        written: rows.iter().map(|b| b.num_rows() as u64).sum(),
        superseded: superseded.values().map(|v| v.len() as u64).sum(),
    };
    let mut actions = Vec::new();
    if merged.written > 0 {
        // A table made by an older gdx is set right before its log gets new statistics.
        table = keep_personal_stats_out(table, &url, layout).await?;
        let mut writer = RecordBatchWriter::for_table(&table)
            .map_err(|e| delta_err(&url, e))?
            .with_writer_properties(layout.writer_properties());
        let schema = writer.arrow_schema();
        for b in rows {
            let b = conform(&b, &schema).map_err(|e| schema_err(name, e))?;
            writer.write(b).await.map_err(|e| delta_err(&url, e))?;
        }
        actions.extend(
            writer
                .flush()
                .await
                .map_err(|e| delta_err(&url, e))?
                .into_iter()
                .map(Action::Add),
        );
    }
    if !superseded.is_empty() {
        table = enable_deletion_vectors(table, &url).await?;
        let mut files = Vec::new();
        let mut vectors = Vec::new();
        for (i, mut rows) in superseded {
            let stored = &found.files[i as usize];
            rows.extend(stored.removed.iter().copied());
            rows.sort_unstable();
            rows.dedup();
            files.push(stored.add.clone());
            vectors.push(rows);
        }
        let descriptors = dv::write(&table, &vectors).await?;
        for (add, d) in files.into_iter().zip(descriptors) {
            actions.extend(dv::replace(add, d));
        }
    }
    if actions.is_empty() {
        merged = Merged::default();
        commit_txns_only(&mut table, props)
            .await
            .map_err(|e| delta_err(&url, e))?;
        return Ok((table, merged));
    }
    let snapshot = table.snapshot().map_err(|e| delta_err(&url, e))?;
    let committed = CommitBuilder::from(props)
        .with_actions(actions)
        .build(
            Some(snapshot as &dyn TableReference),
            table.log_store(),
            DeltaOperation::Update {
                predicate: Some("gdx fold: changed keys".into()),
            },
        )
        .await
        .map_err(|e| delta_err(&url, e))?;
    table.state = Some(committed.snapshot());
    Ok((table, merged))
}

/// `batch`'s columns of `schema`, found by name and cast to its types (null where missing).
fn by_name(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.schema().index_of(f.name()) {
            Ok(i) => cast(batch.column(i), f.data_type()),
            Err(_) => Ok(datafusion::arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// `batch` with the writer's column types (the same columns, in order).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let cols = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(schema.clone(), cols)
}

/// `table` with deletion vectors enabled (its protocol upgraded to the feature once).
async fn enable_deletion_vectors(table: DeltaTable, url: &Url) -> Result<DeltaTable> {
    let on = table
        .snapshot()
        .map(|s| {
            s.metadata()
                .configuration()
                .get(dv::ENABLE)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
        .unwrap_or(false);
    if on {
        return Ok(table);
    }
    tracing::info!(table = %url, "deletion vectors enabled: folds merge changes from now on");
    table
        .set_tbl_properties()
        .with_properties([(dv::ENABLE.to_owned(), "true".to_owned())].into())
        .await
        .map_err(|e| delta_err(url, e))
}

/// Whether the table's columns are `target`'s (by name, in order): a table a catalog change
/// has not reached yet is folded in full.
pub(super) fn same_columns(table: &DeltaTable, target: &SchemaRef) -> bool {
    let Ok(snapshot) = table.snapshot() else {
        return false;
    };
    let schema = snapshot.schema();
    let names: Vec<&str> = schema.fields().map(|f| f.name().as_str()).collect();
    names.len() == target.fields().len()
        && names
            .iter()
            .zip(target.fields())
            .all(|(a, b)| *a == b.name().as_str())
}

/// Every stored row of `table` whose key is in `keys`, with its file and position.
async fn find(
    table: &DeltaTable,
    keys: Arc<Keys>,
    target: &SchemaRef,
    name: &str,
) -> Result<Found> {
    let url = table.table_url().clone();
    let snapshot = table.snapshot().map_err(|e| delta_err(&url, e))?;
    let mut files = Vec::new();
    for f in snapshot.log_data().iter() {
        #[allow(deprecated)] // the commit needs the file's `add` to remove and add it again
        let add = f.add_action();
        files.push((add, f.deletion_vector_descriptor()));
    }
    let mut stored = Vec::with_capacity(files.len());
    for (add, d) in files {
        let removed = dv::deleted_rows(table, d).await?;
        stored.push(StoredFile { add, removed });
    }
    let store = table.object_store();
    let out_schema = with_position(target);
    let tasks = stored.iter().enumerate().map(|(i, f)| {
        let store = store.clone();
        let keys = keys.clone();
        let removed = Arc::new(f.removed.clone());
        let path = deltalake::Path::from_url_path(&f.add.path)
            .unwrap_or_else(|_| deltalake::Path::from(f.add.path.as_str()));
        let size = f.add.size as u64;
        tokio::spawn(async move { scan_file(store, path, size, keys, removed, i as i32).await })
    });
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results: Vec<_> = futures::stream::iter(tasks).buffered(cores).collect().await;
    let generic = |m: String| delta_err(&url, deltalake::DeltaTableError::Generic(m));
    let mut rows = Vec::new();
    for r in results {
        let batches = r
            .map_err(|e| generic(format!("a scan task failed: {e}")))?
            .map_err(|e| generic(format!("cannot scan a data file: {e}")))?;
        for b in batches {
            rows.push(by_name(&b, &out_schema).map_err(|e| schema_err(name, e))?);
        }
    }
    Ok(Found {
        files: stored,
        rows,
    })
}

/// The rows of one data file whose key is in `keys` (and not in `removed`), each with
/// [`FILE`] = `file` and [`ROW`] = its position.
#[allow(deprecated)]
async fn scan_file(
    store: Arc<dyn object_store::ObjectStore>,
    path: deltalake::Path,
    size: u64,
    keys: Arc<Keys>,
    removed: Arc<Vec<u64>>,
    file: i32,
) -> std::result::Result<Vec<RecordBatch>, Box<dyn std::error::Error + Send + Sync>> {
    // parquet 59 deprecates its object-store reader in favour of readers of one's own; it is
    // still the one that reads ranges of an object store file, which is all this needs.
    #[allow(deprecated)]
    let mut reader = ParquetObjectReader::new(store, path).with_file_size(size);
    // The page index lets the row filter's selection skip whole pages of the other columns.
    let options = ArrowReaderOptions::new().with_page_index(true);
    let meta = ArrowReaderMetadata::load_async(&mut reader, options).await?;
    let descr = meta.metadata().file_metadata().schema_descr_ptr();
    let key_leaf = descr
        .columns()
        .iter()
        .position(|c| c.path().string() == provenance::KEY)
        .ok_or("the data file has no _key column")?;
    let mut out = Vec::new();
    let mut start = 0u64;
    for (g, group) in meta.metadata().row_groups().iter().enumerate() {
        let first = start;
        start += group.num_rows() as u64;
        let may_hold = match group.column(key_leaf).statistics() {
            Some(Statistics::ByteArray(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(min), Some(max)) if s.max_is_exact() => {
                    keys.any_within(min.data(), max.data())
                }
                _ => true,
            },
            _ => true,
        };
        if !may_hold {
            continue;
        }
        let positions = Arc::new(Mutex::new(Vec::new()));
        let (keys2, removed2, found) = (keys.clone(), removed.clone(), positions.clone());
        let mut next = first;
        let predicate = ArrowPredicateFn::new(
            ProjectionMask::leaves(&descr, [key_leaf]),
            move |batch: RecordBatch| {
                let col = cast(batch.column(0), &DataType::Utf8)?;
                let col = col.as_string::<i32>();
                let mut hits = BooleanBufferBuilder::new(col.len());
                let mut found = found
                    .lock()
                    .map_err(|_| ArrowError::ComputeError("poisoned".into()))?;
                for i in 0..col.len() {
                    let at = next;
                    next += 1;
                    let hit = col.is_valid(i)
                        && keys2.set.contains(col.value(i))
                        && removed2.binary_search(&at).is_err();
                    if hit {
                        found.push(at);
                    }
                    hits.append(hit);
                }
                Ok(BooleanArray::new(hits.finish(), None))
            },
        );
        let stream =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), meta.clone())
                .with_row_groups(vec![g])
                .with_row_filter(RowFilter::new(vec![Box::new(predicate)]))
                .build()?;
        let batches: Vec<RecordBatch> = stream.try_collect().await?;
        let positions = std::mem::take(&mut *positions.lock().map_err(|_| "poisoned")?);
        let schema = meta.schema().clone();
        let matched = concat_batches(&schema, &batches)?;
        if matched.num_rows() != positions.len() {
            return Err(format!(
                "matched {} rows but recorded {} positions",
                matched.num_rows(),
                positions.len()
            )
            .into());
        }
        if matched.num_rows() == 0 {
            continue;
        }
        let mut cols = matched.columns().to_vec();
        cols.push(Arc::new(Int32Array::from(vec![file; positions.len()])));
        cols.push(Arc::new(UInt64Array::from(positions)));
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(FILE, DataType::Int32, true));
        fields.push(Field::new(ROW, DataType::UInt64, true));
        out.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?);
    }
    Ok(out)
}
