//! The policy-wrapped table: the only kind of table a reader's session holds.
//!
//! Data flow: a table's provider (Delta table, as-of view, catalog table) and the reader's
//! [`TableAccess`] → [`PolicyTable`] exposes only the visible columns, with their stored
//! types → its scan asks the inner provider for the visible columns and those of the row
//! filter → [`PolicyExec`] filters each batch by the row filter, then applies the column
//! transforms, and only then hands rows upward. The reader's own predicates run above it,
//! on rows the row filter let through and on masked values; for a reader without a row
//! filter, a predicate on columns it sees as stored is also handed to the inner scan, which
//! skips files and row groups with it. `PolicyExec` passes no filter, limit or statistic
//! through it, so no optimizer rule can move the reader's expressions below the policy or
//! answer a query from the raw table's statistics. A scan that asks only for columns the
//! reader sees as stored, with no row filter to apply, needs no `PolicyExec`: the inner scan
//! is the answer (the operator's reads keep their statistics and the dynamic filters of
//! joins), and the guard still checks that the table was read through its `PolicyTable`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::{filter_record_batch, prep_null_mask_filter};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use gdx_catalog::pseudonym::Pseudonymizer;

use super::transform::Transform;
use super::{ColumnRule, PolicyError, ReadMode, TableAccess, TableInfo};

type DfResult<T> = datafusion::error::Result<T>;

/// The prefix of the hidden column an aggregate-only table carries into the plan, so that
/// the guard can count distinct people per group. Readers cannot name it: it exists only in
/// the copy of the table the guard puts into an already planned query.
pub(crate) const SUBJECT_COLUMN: &str = "__gdx_subject";

/// A table as one reader may see it.
#[derive(Debug, Clone)]
pub struct PolicyTable {
    name: String,
    inner: Arc<dyn TableProvider>,
    /// The visible columns (then the subject, in the guard's copy).
    schema: SchemaRef,
    /// Per column of `schema`: its index in the inner table and its transform.
    columns: Vec<(usize, Transform)>,
    rows: Option<Expr>,
    /// Whether `rows` is also handed to the inner scan ([`TableAccess::push_rows`]).
    push_rows: bool,
    mode: ReadMode,
    /// Index of the subject column in the inner table (aggregate-only tables).
    subject: Option<usize>,
    pseudonyms: Option<Arc<Pseudonymizer>>,
}

impl PolicyTable {
    /// Wraps `inner` (whose columns `info` describes) as `access` allows.
    pub fn new(
        info: &TableInfo,
        inner: Arc<dyn TableProvider>,
        access: &TableAccess,
        pseudonyms: Option<Arc<Pseudonymizer>>,
    ) -> Result<Self, PolicyError> {
        let inner_schema = inner.schema();
        let index = |column: &str| {
            inner_schema
                .index_of(column)
                .map_err(|_| PolicyError::UnknownColumn {
                    table: info.name.clone(),
                    column: column.to_owned(),
                })
        };
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        for (name, rule) in &access.columns {
            let col = info
                .column(name)
                .ok_or_else(|| PolicyError::UnknownColumn {
                    table: info.name.clone(),
                    column: name.clone(),
                })?;
            let Some(t) = Transform::resolve(&info.name, col, *rule)? else {
                continue;
            };
            if matches!(t, Transform::Pseudonym { .. }) && pseudonyms.is_none() {
                return Err(PolicyError::Rule {
                    table: info.name.clone(),
                    column: name.clone(),
                    rule: ColumnRule::Pseudonym.as_str(),
                    why: "no pseudonym key is configured",
                });
            }
            let i = index(name)?;
            let f = inner_schema.field(i);
            let nullable = f.is_nullable() || t != Transform::Raw;
            fields.push(Field::new(f.name(), f.data_type().clone(), nullable));
            columns.push((i, t));
        }
        if let Some(rows) = &access.rows {
            for c in rows.column_refs() {
                if inner_schema.index_of(&c.name).is_err() {
                    return Err(PolicyError::RowFilter {
                        table: info.name.clone(),
                        why: format!("no column {:?}", c.name),
                    });
                }
            }
        }
        if access.tap_subject
            && access.mode == ReadMode::Rows
            && let Some(s) = info.subject.as_deref()
        {
            let i = index(s)?;
            let f = inner_schema.field(i);
            fields.push(Field::new(super::SUBJECT_TAP, f.data_type().clone(), true));
            columns.push((i, Transform::Raw));
        }
        let subject = match access.mode {
            ReadMode::Rows => None,
            ReadMode::Aggregate { .. } => {
                let s = info
                    .subject
                    .as_deref()
                    .ok_or_else(|| PolicyError::NoSubject {
                        table: info.name.clone(),
                    })?;
                Some(index(s)?)
            }
        };
        Ok(Self {
            name: info.name.clone(),
            inner,
            schema: Arc::new(Schema::new(fields)),
            columns,
            rows: access.rows.clone(),
            push_rows: access.push_rows,
            mode: access.mode,
            subject,
            pseudonyms,
        })
    }

    /// `inner` as the operator reads it (every column and row as stored), for the lake's
    /// own summaries: even they read through a policy.
    pub fn operator(name: &str, inner: Arc<dyn TableProvider>) -> Self {
        let schema = inner.schema();
        let info = TableInfo {
            name: name.to_owned(),
            dataset: None,
            kind: super::TableKind::System,
            columns: schema
                .fields()
                .iter()
                .map(|f| super::ColumnInfo {
                    name: f.name().clone(),
                    data_type: f.data_type().clone(),
                    grade: super::ColumnGrade::public(),
                })
                .collect(),
            subject: None,
        };
        let access = TableAccess::raw(&info);
        Self::new(&info, inner, &access, None).expect("raw access fits every column")
    }

    /// The table's name as the reader knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rows already read from the inner table (all its columns, as stored) as this reader
    /// sees them: what a scan of this table would have answered for those rows. For
    /// services that find rows without a scan (a point lookup by key); an aggregate-only
    /// reader sees no rows this way.
    pub(crate) fn apply(&self, state: &dyn Session, batch: &RecordBatch) -> DfResult<RecordBatch> {
        if self.mode != ReadMode::Rows {
            return Err(DataFusionError::Plan(format!(
                "{}: this reader sees aggregates only",
                self.name
            )));
        }
        let predicate = match &self.rows {
            Some(rows) => {
                let df_schema = DFSchema::try_from(batch.schema())?;
                Some(state.create_physical_expr(rows.clone(), &df_schema)?)
            }
            None => None,
        };
        rows_as_seen(
            batch,
            predicate.as_ref(),
            &self.columns,
            &self.schema,
            self.pseudonyms.as_deref(),
        )
    }

    pub(crate) fn mode(&self) -> ReadMode {
        self.mode
    }

    /// Columns the reader sees.
    pub(crate) fn schema_len(&self) -> usize {
        self.schema.fields().len()
    }

    /// The guard's copy of an aggregate-only table: the visible columns and, last, the
    /// subject column as stored, named `column`.
    pub(crate) fn with_subject(&self, column: &str) -> Option<Self> {
        let i = self.subject?;
        let mut t = self.clone();
        let mut fields: Vec<Field> = t
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let f = self.inner.schema().field(i).clone();
        fields.push(Field::new(column, f.data_type().clone(), true));
        t.schema = Arc::new(Schema::new(fields));
        t.columns.push((i, Transform::Raw));
        // This copy is never asked again whether it must be aggregated.
        t.mode = ReadMode::Rows;
        Some(t)
    }

    /// True when `expr` reads only columns the reader sees as stored.
    fn on_raw_columns(&self, expr: &Expr) -> bool {
        expr.column_refs().iter().all(|c| {
            self.schema.index_of(&c.name).ok().is_some_and(|i| {
                self.columns[i].1 == Transform::Raw && !c.name.starts_with(SUBJECT_COLUMN)
            })
        })
    }
}

#[async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        match self.inner.table_type() {
            TableType::Temporary => TableType::Base,
            t => t,
        }
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // A Delta scan evaluates pushed predicates row by row while it reads: with a row
        // filter, the reader's predicates would run on hidden rows (and an error, such as a
        // division by zero, would tell of them), so they stay above the policy.
        Ok(filters
            .iter()
            .map(|f| {
                if self.rows.is_none() && self.on_raw_columns(f) {
                    // Kept above the policy as well: the inner scan only skips data.
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.columns.len()).collect(),
        };
        // Rows and columns as stored (the operator, or a reader's raw columns without a row
        // filter): the inner scan is the answer, with its statistics, orderings and the
        // dynamic filters of joins and top-k pushed into it.
        let inner_schema = self.inner.schema();
        let stored = self.rows.is_none()
            && self.mode == ReadMode::Rows
            && wanted.iter().all(|&i| {
                let (inner, t) = &self.columns[i];
                // (The guard's subject column is a stored column under another name.)
                *t == Transform::Raw
                    && self.schema.field(i).name() == inner_schema.field(*inner).name()
            });
        if stored {
            let inner: Vec<usize> = wanted.iter().map(|&i| self.columns[i].0).collect();
            return self.inner.scan(state, Some(&inner), filters, limit).await;
        }
        // The inner columns to read: the visible ones asked for, then the row filter's.
        let mut inner_cols: Vec<usize> = wanted.iter().map(|&i| self.columns[i].0).collect();
        if let Some(rows) = &self.rows {
            for c in rows.column_refs() {
                inner_cols.push(inner_schema.index_of(&c.name)?);
            }
        }
        inner_cols.sort_unstable();
        inner_cols.dedup();
        let position = |inner: usize| inner_cols.iter().position(|&c| c == inner);
        let outputs: Vec<(usize, Transform)> = wanted
            .iter()
            .map(|&i| {
                let (inner, t) = &self.columns[i];
                (position(*inner).unwrap_or_default(), t.clone())
            })
            .collect();
        // Filters reach the inner scan only as `supports_filters_pushdown` allowed; a limit
        // only when no row filter could drop rows after it. Where the policy allows it, its
        // own row filter goes down too (as a hint: PolicyExec still applies it), so that a
        // lookup by key or a row scope skips the files and row groups that cannot hold its
        // rows; it is the policy's expression, not the reader's, so evaluating it on hidden
        // rows tells the reader nothing.
        let inner_limit = if self.rows.is_none() { limit } else { None };
        let mut inner_filters = filters.to_vec();
        if let Some(rows) = self.rows.as_ref().filter(|_| self.push_rows) {
            inner_filters.push(rows.clone());
        }
        let input = self
            .inner
            .scan(state, Some(&inner_cols), &inner_filters, inner_limit)
            .await?;
        let predicate = match &self.rows {
            Some(rows) => {
                let df_schema = DFSchema::try_from(input.schema())?;
                Some(state.create_physical_expr(rows.clone(), &df_schema)?)
            }
            None => None,
        };
        let schema = Arc::new(self.schema.project(&wanted)?);
        Ok(Arc::new(PolicyExec::new(
            self.name.clone(),
            input,
            predicate,
            Arc::new(outputs),
            schema,
            self.pseudonyms.clone(),
        )))
    }
}

/// Applies a reader's row filter and column transforms to the rows of one table scan.
#[derive(Debug)]
pub(crate) struct PolicyExec {
    table: String,
    input: Arc<dyn ExecutionPlan>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    /// Per output column: its index in the input and its transform.
    columns: Arc<Vec<(usize, Transform)>>,
    schema: SchemaRef,
    pseudonyms: Option<Arc<Pseudonymizer>>,
    cache: Arc<PlanProperties>,
}

impl PolicyExec {
    fn new(
        table: String,
        input: Arc<dyn ExecutionPlan>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        columns: Arc<Vec<(usize, Transform)>>,
        schema: SchemaRef,
        pseudonyms: Option<Arc<Pseudonymizer>>,
    ) -> Self {
        // No ordering or equivalence survives a mask; the partitioning is the input's.
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            input.pipeline_behavior(),
            input.boundedness(),
        ));
        Self {
            table,
            input,
            predicate,
            columns,
            schema,
            pseudonyms,
            cache,
        }
    }
}

impl DisplayAs for PolicyExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        // Names and rules only: never a literal of the policy.
        write!(f, "PolicyExec: table={}", self.table)?;
        if self.predicate.is_some() {
            write!(f, ", rows=filtered")?;
        }
        let transformed: Vec<String> = self
            .columns
            .iter()
            .zip(self.schema.fields())
            .filter_map(|((_, t), field)| t.label().map(|l| format!("{}:{l}", field.name())))
            .collect();
        if !transformed.is_empty() {
            write!(f, ", columns=[{}]", transformed.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for PolicyExec {
    fn name(&self) -> &str {
        "PolicyExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        // The row filter is the policy's: no optimizer rule may see or rewrite it.
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal("PolicyExec has one input".into()));
        }
        Ok(Arc::new(Self::new(
            self.table.clone(),
            children.swap_remove(0),
            self.predicate.clone(),
            self.columns.clone(),
            self.schema.clone(),
            self.pseudonyms.clone(),
        )))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::execution_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let predicate = self.predicate.clone();
        let columns = self.columns.clone();
        let schema = self.schema.clone();
        let pseudonyms = self.pseudonyms.clone();
        let out_schema = schema.clone();
        let stream = input.map(move |batch| {
            rows_as_seen(
                &batch?,
                predicate.as_ref(),
                &columns,
                &schema,
                pseudonyms.as_deref(),
            )
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, stream)))
    }
}

/// The rows of `batch` a reader may see, as it sees them: the row filter first (on stored
/// values), then each output column's transform. `columns` index into `batch`.
fn rows_as_seen(
    batch: &RecordBatch,
    predicate: Option<&Arc<dyn PhysicalExpr>>,
    columns: &[(usize, Transform)],
    schema: &SchemaRef,
    pseudonyms: Option<&Pseudonymizer>,
) -> DfResult<RecordBatch> {
    let filtered;
    let batch = match predicate {
        Some(p) => {
            let keep = p.evaluate(batch)?.into_array(batch.num_rows())?;
            let keep = keep
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| {
                    DataFusionError::Execution("the policy's row filter is not a predicate".into())
                })?;
            let keep = if keep.null_count() > 0 {
                prep_null_mask_filter(keep)
            } else {
                keep.clone()
            };
            filtered = filter_record_batch(batch, &keep)?;
            &filtered
        }
        None => batch,
    };
    let arrays = columns
        .iter()
        .map(|(i, t)| t.apply(batch.column(*i), pseudonyms))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &options,
    )?)
}
