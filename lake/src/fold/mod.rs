//! Folding a dataset's events into its current state.
//!
//! Data flow: the `events` table at its newest version M → the data files added since the
//! events version the `current` table last folded (its application transaction
//! [`FOLD_APP_ID`], version = that events version N), read from the commits N+1..M → those
//! events ∪ the rows of `current` ∪ the keys of `deleted`, sorted by key and recency
//! (`_event_time`, `_partition`, `_offset`) — one external sort that spills under the
//! session's memory budget; no hash join, no window operator buffering its input →
//! [`resolve::Resolver`] streams the sorted rows and decides each key → `deleted` rewritten
//! first (when deletes are involved), then `current`, each commit recording M; the writer
//! pulls the decided rows as a stream. A winning upsert whose fields equal the current row's
//! is a no-op: the current row (and its provenance) stays.
//!
//! Folding the same events onto a state that already holds them yields the same state, so a
//! fold that is repeated, or interrupted between its two commits, is harmless.

use std::collections::HashSet;
use std::sync::Arc;

mod dv;
mod merge;
mod resolve;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::logical_expr::{ident, lit};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use gdx_catalog::Dataset;
use url::Url;

use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use resolve::{Keep, Resolver};

use crate::engine::{align, df_err, session};
use crate::schema::{events_schema, personal_columns, provenance};
use crate::table::{
    ColumnLayout, commit_txns_only, delta_err, ensure_local_dir, keep_personal_stats_out, open,
    stats_rows,
};
use crate::{LakeLocation, Result};

/// The application transaction a fold records on `current` and `deleted`: the `events`
/// version folded so far.
pub const FOLD_APP_ID: &str = "gdx-fold";

/// What one fold did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoldReport {
    pub dataset: String,
    /// The events version folded up to (None: no events table yet).
    pub events_version: Option<u64>,
    /// The events version the previous fold had reached.
    pub previous: Option<u64>,
    /// Event data files read by this fold.
    pub files_read: usize,
    /// Whether every event file had to be read (first fold, or the log was compacted or
    /// cleaned up past the previous fold).
    pub full: bool,
    /// Rows in `current` after the fold.
    pub rows: u64,
    /// Keys in `deleted` after the fold.
    pub deleted: u64,
    /// Whether the fold merged: wrote only the changed keys' new state and marked the rows
    /// it superseded in deletion vectors, instead of rewriting `current` and `deleted`.
    pub merged: bool,
    /// Rows the fold wrote (both tables; every row on a rewrite).
    pub written: u64,
    /// Stored rows a merging fold marked removed.
    pub superseded: u64,
    /// Seconds from the oldest events commit this fold took in to the fold's own commit:
    /// how long a change waited before it was in `current` (incremental folds only).
    pub lag_seconds: Option<f64>,
}

impl FoldReport {
    /// Whether the fold found nothing new.
    pub fn up_to_date(&self) -> bool {
        self.files_read == 0 && !self.full
    }
}

/// The last events version folded into `table` (its [`FOLD_APP_ID`] transaction).
pub(crate) async fn folded_version(table: &DeltaTable, url: &Url) -> Result<Option<u64>> {
    let snapshot = table.snapshot().map_err(|e| delta_err(url, e))?;
    let v = snapshot
        .transaction_version(table.log_store().as_ref(), FOLD_APP_ID)
        .await
        .map_err(|e| delta_err(url, e))?;
    Ok(v.map(|v| v as u64))
}

/// The schema of `current` (and `deleted`): the events columns without `_op`.
pub fn current_schema(ds: &Dataset) -> SchemaRef {
    let ev = events_schema(ds);
    Arc::new(Schema::new(
        ev.fields()
            .iter()
            .filter(|f| f.name() != provenance::OP)
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

/// Data files that commits `from+1 ..= to` added with new data (compaction rewrites carry
/// `dataChange: false` and hold nothing new). `None` when a commit is no longer readable
/// (log cleaned up) or a file it added is gone again (compacted): the caller reads all.
async fn added_files(events: &DeltaTable, from: u64, to: u64) -> Result<Option<Added>> {
    let store = events.log_store();
    let mut paths = Vec::new();
    let mut oldest_ms: Option<i64> = None;
    for v in from + 1..=to {
        let Some(bytes) = store
            .read_commit_entry(v as _)
            .await
            .map_err(|e| delta_err(&events.table_url().clone(), e))?
        else {
            return Ok(None);
        };
        let (mut commit_ms, before) = (None, paths.len());
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                return Ok(None);
            };
            if let Some(add) = action.get("add")
                && add.get("dataChange").and_then(|d| d.as_bool()) != Some(false)
                && let Some(p) = add.get("path").and_then(|p| p.as_str())
            {
                paths.push(p.to_owned());
            }
            if let Some(ts) = action
                .pointer("/commitInfo/timestamp")
                .and_then(|t| t.as_i64())
            {
                commit_ms = Some(ts);
            }
        }
        if paths.len() > before
            && let Some(ts) = commit_ms
        {
            oldest_ms = Some(oldest_ms.map_or(ts, |o: i64| o.min(ts)));
        }
    }
    let snapshot = events
        .snapshot()
        .map_err(|e| delta_err(&events.table_url().clone(), e))?;
    let active: HashSet<String> = snapshot
        .log_data()
        .iter()
        .map(|f| f.path().into_owned())
        .collect();
    Ok(paths
        .iter()
        .all(|p| active.contains(p))
        .then_some(Added { paths, oldest_ms }))
}

/// The event files new since the last fold, and when the oldest of their commits happened.
struct Added {
    paths: Vec<String>,
    oldest_ms: Option<i64>,
}

/// Options of a fold.
#[derive(Debug, Clone)]
pub struct FoldOptions {
    /// Memory budget of the fold's query; sorts spill beyond it.
    pub memory_limit: usize,
    /// Whether a small change may be merged ([`merge`]); `false` always rewrites both
    /// tables (which also compacts them).
    pub merge: bool,
}

impl Default for FoldOptions {
    fn default() -> Self {
        Self {
            memory_limit: crate::engine::DEFAULT_MEMORY_LIMIT,
            merge: true,
        }
    }
}

/// Folds the events of `ds` committed since the last fold into `current` (and `deleted`).
pub async fn fold(lake: &LakeLocation, ds: &Dataset, opts: &FoldOptions) -> Result<FoldReport> {
    let id = &ds.id;
    let events_url = lake.events(id);
    let current_url = lake.current(id);
    let deleted_url = lake.table(id, crate::location::TableKind::Deleted);
    let mut report = FoldReport {
        dataset: ds.id.to_string(),
        ..FoldReport::default()
    };
    let Some(events) = open(&events_url).await? else {
        return Ok(report);
    };
    let Some(to) = events.version() else {
        return Ok(report);
    };
    report.events_version = Some(to);
    let current = open(&current_url).await?;
    let deleted = open(&deleted_url).await?;
    let previous = match &current {
        Some(t) => folded_version(t, &current_url).await?,
        None => None,
    };
    report.previous = previous;
    let txn = || {
        CommitProperties::default()
            .with_application_transactions(vec![Transaction::new(FOLD_APP_ID, to as i64)])
            .with_metadata([("gdx.events_version".to_owned(), serde_json::json!(to))])
    };
    let added = match previous {
        Some(prev) if prev < to => added_files(&events, prev, to).await?,
        _ => None,
    };
    if let (Some(mut cur), Some(prev)) = (current.clone(), previous) {
        if prev == to {
            report.rows = stats_rows(&cur);
            report.deleted = deleted.as_ref().map(stats_rows).unwrap_or(0);
            return Ok(report);
        }
        if added.as_ref().is_some_and(|a| a.paths.is_empty()) {
            // Only offset commits since: record that the fold has seen them.
            commit_txns_only(&mut cur, txn())
                .await
                .map_err(|e| delta_err(&current_url, e))?;
            report.rows = stats_rows(&cur);
            report.deleted = deleted.as_ref().map(stats_rows).unwrap_or(0);
            return Ok(report);
        }
    }
    let oldest_ms = added.as_ref().and_then(|a| a.oldest_ms);
    let files = added.map(|a| a.paths);
    report.full = files.is_none();
    report.files_read = match &files {
        Some(f) => f.len(),
        None => events
            .snapshot()
            .map(|s| s.log_data().iter().count())
            .unwrap_or(0),
    };

    let ctx = session(opts.memory_limit)?;
    let target = current_schema(ds);
    let name = ds.id.as_str();
    let fields: Vec<String> = ds.fields.iter().map(|f| f.name.clone()).collect();
    let personal = personal_columns(ds);
    let mergeable = match (&files, &current) {
        (Some(paths), Some(cur)) if opts.merge => {
            merge_fits(&events, paths, cur, deleted.as_ref(), &target)
        }
        _ => false,
    };
    let mut new_provider = events.table_provider();
    if let Some(files) = files {
        new_provider = new_provider.with_file_paths(files);
    }
    let new_provider = new_provider.await.map_err(|e| df_err(name, e))?;
    register_source(&ctx, "fold_new", new_provider, &target, Source::New, name)?;
    if mergeable && let Some(cur) = current {
        let mut batches = ctx
            .sql("select * from fold_new")
            .await
            .map_err(|e| df_err(name, e))?
            .collect()
            .await
            .map_err(|e| df_err(name, e))?;
        // Drop `_src` (the merge marks its sources itself).
        for b in &mut batches {
            let keep: Vec<usize> = (0..b.num_columns() - 1).collect();
            *b = b.project(&keep).map_err(|e| crate::Error::Schema {
                table: name.to_owned(),
                source: e,
            })?;
        }
        let (cur, del, merged) = merge::merge(
            &ctx,
            merge::Changes { batches },
            &target,
            &fields,
            cur,
            deleted,
            &deleted_url,
            txn,
            &personal,
            name,
        )
        .await?;
        report.merged = true;
        report.written = merged.written;
        report.superseded = merged.superseded;
        report.rows = stats_rows(&cur);
        report.deleted = del.as_ref().map(stats_rows).unwrap_or(0);
        record_lag(&mut report, oldest_ms, ds);
        return Ok(report);
    }
    let cur_provider = provider_or_empty(current.as_ref(), &target, name).await?;
    register_source(
        &ctx,
        "fold_cur",
        cur_provider,
        &target,
        Source::Current,
        name,
    )?;
    let del_provider = provider_or_empty(deleted.as_ref(), &target, name).await?;
    register_source(
        &ctx,
        "fold_del",
        del_provider,
        &target,
        Source::Deleted,
        name,
    )?;

    let has_deletes = deleted.as_ref().is_some_and(|t| stats_rows(t) > 0)
        || count(
            &ctx,
            "select count(*) from fold_new where _op = 'delete'",
            name,
        )
        .await?
            > 0;
    // A physical plan executes once (repartitioning keeps state): one per pass.
    let sorted = async || -> Result<Arc<dyn ExecutionPlan>> {
        ctx.sql(&candidates_sql("fold_cur", "fold_del", "fold_new"))
            .await
            .map_err(|e| df_err(name, e))?
            .create_physical_plan()
            .await
            .map_err(|e| df_err(name, e))
    };
    if has_deletes {
        let plan = resolved(&ctx, sorted().await?, Keep::Deleted, &fields, name)?;
        let table = write_plan(&ctx, plan, deleted, &deleted_url, txn(), name, &personal).await?;
        report.deleted = stats_rows(&table);
    }
    let plan = resolved(&ctx, sorted().await?, Keep::Current, &fields, name)?;
    let table = write_plan(&ctx, plan, current, &current_url, txn(), name, &personal).await?;
    report.rows = stats_rows(&table);
    report.written = report.rows + report.deleted;
    record_lag(&mut report, oldest_ms, ds);
    Ok(report)
}

/// The candidates of a fold (stored rows of `current` and `deleted`, new events), sorted by
/// key, then newest first; on a tie a stored row before a new event.
fn candidates_sql(current: &str, deleted: &str, new: &str) -> String {
    format!(
        "select * from {current} union all select * from {deleted} union all select * from {new} \
         order by _key, _event_time desc, _partition desc, _offset desc, _src asc"
    )
}

/// Records how long the oldest change waited (incremental folds only).
fn record_lag(report: &mut FoldReport, oldest_ms: Option<i64>, ds: &Dataset) {
    if let Some(ms) = oldest_ms {
        let lag = (chrono::Utc::now().timestamp_millis() - ms).max(0) as f64 / 1000.0;
        report.lag_seconds = Some(lag);
        metrics::histogram!("gdx_fold_lag_seconds", "dataset" => ds.id.to_string()).record(lag);
    }
}

/// A merging fold holds the change set in memory and leaves the stored files as they are:
/// it is taken while the change is small beside the table and the tables are still in
/// shape. Otherwise the fold rewrites both tables, which also compacts them.
pub const MERGE_MAX_SHARE: f64 = 0.2;
/// Most new event rows a merging fold takes in (beyond: a rewrite, which streams and spills).
pub const MERGE_MAX_ROWS: u64 = 2_000_000;
/// Most data files `current` may hold before the next fold rewrites it (each merge adds one).
pub const MERGE_MAX_FILES: usize = 128;

fn merge_fits(
    events: &DeltaTable,
    paths: &[String],
    current: &DeltaTable,
    deleted: Option<&DeltaTable>,
    target: &SchemaRef,
) -> bool {
    let Ok(snapshot) = events.snapshot() else {
        return false;
    };
    let wanted: HashSet<&str> = paths.iter().map(String::as_str).collect();
    let new_rows: u64 = snapshot
        .log_data()
        .iter()
        .filter(|f| wanted.contains(f.path().as_ref()))
        .map(|f| f.num_records().unwrap_or(usize::MAX / 4) as u64)
        .sum();
    let shape = |t: &DeltaTable| -> Option<(u64, u64, usize)> {
        let s = t.snapshot().ok()?;
        let (mut physical, mut removed, mut files) = (0u64, 0u64, 0usize);
        for f in s.log_data().iter() {
            physical += f.num_records()? as u64;
            removed += f
                .deletion_vector_descriptor()
                .map_or(0, |d| d.cardinality.max(0) as u64);
            files += 1;
        }
        Some((physical, removed, files))
    };
    let Some((physical, removed, files)) = shape(current) else {
        return false;
    };
    let live = physical.saturating_sub(removed);
    let healthy = |(physical, removed, files): (u64, u64, usize)| {
        (removed as f64) <= MERGE_MAX_SHARE * physical as f64 && files <= MERGE_MAX_FILES
    };
    live > 0
        && new_rows <= MERGE_MAX_ROWS
        && (new_rows as f64) <= MERGE_MAX_SHARE * live as f64
        && healthy((physical, removed, files))
        && merge::same_columns(current, target)
        && deleted.is_none_or(|d| shape(d).is_some_and(healthy) && merge::same_columns(d, target))
}

/// The decided rows of `sorted` as a logical plan the Delta writer can pull from.
fn resolved(
    ctx: &SessionContext,
    sorted: Arc<dyn ExecutionPlan>,
    keep: Keep,
    fields: &[String],
    name: &str,
) -> Result<LogicalPlan> {
    let probe = Resolver::new(keep, sorted.schema(), fields).map_err(|e| df_err(name, e.into()))?;
    let partition = Arc::new(ResolvedPartition {
        sorted,
        keep,
        fields: fields.to_vec(),
        schema: probe.output_schema(),
    });
    let table = StreamingTable::try_new(probe.output_schema(), vec![partition])
        .map_err(|e| df_err(name, e))?;
    let df = ctx
        .read_table(Arc::new(table))
        .map_err(|e| df_err(name, e))?;
    Ok(df.logical_plan().clone())
}

/// One partition: the sorted candidates, resolved key by key as they stream.
#[derive(Debug)]
struct ResolvedPartition {
    sorted: Arc<dyn ExecutionPlan>,
    keep: Keep,
    fields: Vec<String>,
    schema: SchemaRef,
}

impl PartitionStream for ResolvedPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, task: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let input = self.sorted.execute(0, task);
        let resolver = Resolver::new(self.keep, self.sorted.schema(), &self.fields);
        let stream = futures::stream::once(async move {
            let (input, resolver) = (input?, resolver?);
            Ok::<_, datafusion::error::DataFusionError>(futures::stream::unfold(
                (input, resolver, false),
                |(mut input, mut resolver, done)| async move {
                    if done {
                        return None;
                    }
                    loop {
                        match input.next().await {
                            Some(Ok(batch)) => match resolver.push(batch) {
                                Ok(Some(out)) => return Some((Ok(out), (input, resolver, false))),
                                Ok(None) => continue,
                                Err(e) => return Some((Err(e.into()), (input, resolver, true))),
                            },
                            Some(Err(e)) => return Some((Err(e), (input, resolver, true))),
                            None => {
                                let last = resolver.finish().map_err(Into::into).transpose()?;
                                return Some((last, (input, resolver, true)));
                            }
                        }
                    }
                },
            ))
        })
        .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

#[derive(Clone, Copy)]
enum Source {
    Current = 0,
    Deleted = 1,
    New = 2,
}

async fn provider_or_empty(
    table: Option<&DeltaTable>,
    target: &SchemaRef,
    name: &str,
) -> Result<Arc<dyn TableProvider>> {
    match table {
        Some(t) => t.table_provider().await.map_err(|e| df_err(name, e)),
        None => Ok(Arc::new(
            MemTable::try_new(target.clone(), vec![vec![]]).map_err(|e| df_err(name, e))?,
        )),
    }
}

/// Registers `provider` as `view`: the target columns, `_op` and `_src` (0 current, 1
/// deleted, 2 new).
fn register_source(
    ctx: &SessionContext,
    view: &str,
    provider: Arc<dyn TableProvider>,
    target: &SchemaRef,
    source: Source,
    name: &str,
) -> Result<()> {
    let df = ctx.read_table(provider).map_err(|e| df_err(name, e))?;
    let op = match source {
        Source::New => ident(provenance::OP),
        Source::Current => lit("upsert"),
        Source::Deleted => lit("delete"),
    };
    let extra = vec![op.alias(provenance::OP), lit(source as i32).alias("_src")];
    let df = align(df, target, extra, name)?;
    ctx.register_table(view, df.into_view())
        .map_err(|e| df_err(name, e))?;
    Ok(())
}

pub(crate) fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn count(ctx: &SessionContext, sql: &str, name: &str) -> Result<u64> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| df_err(name, e))?
        .collect()
        .await
        .map_err(|e| df_err(name, e))?;
    let Some(b) = batches.first() else {
        return Ok(0);
    };
    use datafusion::arrow::array::AsArray;
    let c = b
        .column(0)
        .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>();
    Ok(c.map(|c| c.value(0) as u64).unwrap_or(0))
}

/// Overwrites (or creates) the table at `url` with the result of `sql`, streaming: the
/// query runs inside the write under the session's memory budget. `personal` columns get
/// no statistics in the Delta log ([`ColumnLayout::personal`]).
pub(crate) async fn write_sql(
    ctx: &SessionContext,
    sql: &str,
    table: Option<DeltaTable>,
    url: &Url,
    props: CommitProperties,
    name: &str,
    personal: &[String],
) -> Result<DeltaTable> {
    let plan = ctx
        .sql(sql)
        .await
        .map_err(|e| df_err(name, e))?
        .logical_plan()
        .clone();
    write_plan(ctx, plan, table, url, props, name, personal).await
}

/// Overwrites (or creates) the table at `url` with the rows of `plan`; `personal` columns
/// get no statistics in the Delta log (a table created here lists the others as its
/// statistics columns).
pub(crate) async fn write_plan(
    ctx: &SessionContext,
    plan: LogicalPlan,
    table: Option<DeltaTable>,
    url: &Url,
    props: CommitProperties,
    name: &str,
    personal: &[String],
) -> Result<DeltaTable> {
    let table = match table {
        Some(t) => t,
        None => {
            ensure_local_dir(url).map_err(|e| delta_err(url, e))?;
            DeltaTable::try_from_url(url.clone())
                .await
                .map_err(|e| delta_err(url, e))?
        }
    };
    let layout = ColumnLayout::folded(personal.to_vec());
    let stats_columns = layout.stats_columns(plan.schema().as_arrow());
    // An overwrite keeps the table's properties: one made by an older gdx is set right
    // before this write logs statistics under them (a table not made yet has none).
    let table = keep_personal_stats_out(table, url, &layout).await?;
    table
        .write(Vec::new())
        .with_input_plan(plan)
        .with_session_state(Arc::new(ctx.state()))
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .with_table_name(name)
        .with_writer_properties(layout.writer_properties())
        .with_configuration(stats_columns.map(|c| {
            (
                deltalake::TableProperty::DataSkippingStatsColumns
                    .as_ref()
                    .to_owned(),
                Some(c),
            )
        }))
        .with_commit_properties(props)
        .await
        .map_err(|e| delta_err(url, e))
}

/// Folds every dataset in turn (one sort at a time keeps memory to one budget).
pub async fn fold_all<'a>(
    lake: &LakeLocation,
    datasets: impl IntoIterator<Item = &'a Dataset>,
    opts: &FoldOptions,
) -> Result<Vec<FoldReport>> {
    let mut out = Vec::new();
    for ds in datasets {
        out.push(fold(lake, ds, opts).await?);
    }
    Ok(out)
}
