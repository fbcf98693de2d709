//! A reader's SQL session over the lake: only policy-wrapped tables, read-only, bounded.
//!
//! Data flow: the [`TableRegistry`]'s snapshot (the stored tables; or, with
//! [`SessionOptions::as_of`], the state rebuilt from events at that time, see [`as_of`]) →
//! for every table, the reader's [`TablePolicy`] decides: hidden tables are not registered
//! at all, the others are registered as [`PolicyTable`]s under `<dept>.<dataset>`,
//! `<dept>.<dataset>_events`, `<dept>.<dataset>_deleted`, `profiles.*`, `system.*`,
//! `catalog.*` → `table_at(...)` resolves names among the same visible tables and wraps
//! what it loads with the same policy → [`PolicyGuard`] refuses any plan that reads a table
//! around a policy → [`LakeSession::query`] rejects DDL, DML, COPY, external tables and SET,
//! streams the result under a memory pool, a timeout and a row cap.

mod as_of;
mod catalog_tables;
mod errors;
pub mod time_travel;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableProvider;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SQLOptions, SessionContext};
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use gdx_catalog::Catalog;

pub(crate) use catalog_tables::catalog_table;
pub use time_travel::AsOf;

use crate::engine::{DEFAULT_MEMORY_LIMIT, df_err, session};
use crate::entitlements::Benefit;
use crate::policy::guard::PolicyGuard;
use crate::policy::{Access, AllowAll, PolicyTable, TableInfo, TableKind, TablePolicy};
use crate::profiles::definition::{self as profiles, Profile};
use crate::registry::{Contents, OpenedTable, Snapshot, TableRegistry};
use crate::{Error, Result};

/// How a session reads the lake.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Read every dataset (and the profiles) as of this business time, rebuilt from events.
    pub as_of: Option<AsOf>,
    /// Memory budget of one query in bytes; sorts and aggregations spill beyond it.
    pub memory_limit: usize,
    /// At most this many rows are returned; the rest is cut off and reported.
    pub max_rows: usize,
    /// A query (planning, running and reading its rows) stops after this long.
    pub timeout: Option<Duration>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            as_of: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_rows: 10_000,
            timeout: None,
        }
    }
}

/// The rows of one query.
#[derive(Debug)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The query had more rows than the cap; only the first `max_rows` are here.
    pub truncated: bool,
}

impl QueryOutput {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// A planned statement: its rows, and the tables (`schema.table`) it reads.
pub struct Planned {
    pub stream: SendableRecordBatchStream,
    pub tables: Vec<String>,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// A statement as SQL text, or already parsed.
enum Source<'a> {
    Text(&'a str),
    Parsed(Box<Statement>),
}

/// A table as a session gets it, before the reader's policy.
#[derive(Debug, Clone)]
pub(crate) struct SourceTable {
    pub(crate) name: String,
    pub(crate) opened: OpenedTable,
}

/// A read-only SQL session over one lake, as one reader may see it.
pub struct LakeSession {
    ctx: SessionContext,
    /// The tables the reader sees, `schema.table`.
    tables: Vec<String>,
    /// Delta version read, per visible table backed by one.
    versions: Vec<(String, u64)>,
    max_rows: usize,
    timeout: Option<Duration>,
    governed: bool,
}

impl std::fmt::Debug for LakeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeSession")
            .field("tables", &self.tables.len())
            .field("max_rows", &self.max_rows)
            .field("governed", &self.governed)
            .finish()
    }
}

/// Names in `known` close to `name` (edit distance, or sharing a word), best first.
pub(crate) fn close_names(name: &str, known: &[&str]) -> Vec<String> {
    let name = name.to_lowercase();
    let words: Vec<&str> = name.split(['.', '_']).filter(|w| w.len() > 2).collect();
    let mut scored: Vec<(f64, &str)> = known
        .iter()
        .map(|k| {
            let mut s = strsim::jaro_winkler(&name, k);
            if words.iter().any(|w| k.contains(w)) {
                s += 0.2;
            }
            (s, *k)
        })
        .filter(|(s, _)| *s > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(5)
        .map(|(_, k)| k.to_owned())
        .collect()
}

/// The stored tables of a snapshot, profiles not built yet planned from their SQL.
async fn stored_tables(registry: &TableRegistry, snapshot: &Snapshot) -> Result<Vec<SourceTable>> {
    let mut out: Vec<SourceTable> = Vec::new();
    let mut unbuilt = Vec::new();
    let today = time_travel::district_today;
    for t in snapshot.tables() {
        match &t.opened {
            Some(o) => out.push(SourceTable {
                name: t.spec.name.clone(),
                opened: o.clone(),
            }),
            None => unbuilt.push(t),
        }
    }
    let gaps = snapshot
        .planned_gaps
        .get_or_try_init(|| plan_gaps(registry.catalog(), &out, today()))
        .await?
        .clone();
    if !unbuilt.is_empty() {
        let planned = snapshot
            .planned_profiles
            .get_or_try_init(|| plan_profiles(registry.catalog(), &out, today()))
            .await?;
        out.extend(planned.iter().map(|o| SourceTable {
            name: o.info.name.clone(),
            opened: o.clone(),
        }));
    }
    out.extend(gaps.into_iter().map(|o| SourceTable {
        name: o.info.name.clone(),
        opened: o,
    }));
    Ok(out)
}

/// The benefits' gaps views as of `day` over `tables` (planned as the operator, like the
/// profiles: the reader's policy applies to their findings); a benefit whose records are not
/// among `tables` (a registry of the lake's own tables only) has none.
pub(crate) async fn plan_gaps(
    catalog: &Catalog,
    tables: &[SourceTable],
    day: chrono::NaiveDate,
) -> Result<Vec<OpenedTable>> {
    let present = |name: &str| tables.iter().any(|t| t.name == name);
    let views = Benefit::ALL
        .into_iter()
        .filter(|b| b.inputs().into_iter().all(present))
        .map(|b| {
            let sql = crate::entitlements::sql(b, day);
            (b.table(), TableKind::Review, Contents::Gaps(b), sql)
        })
        .collect();
    plan_views(catalog, tables, views).await
}

/// The profiles as views of their SQL as of `day` over `tables` (the operator's view of
/// them: the reader's policy applies to the views' rows, as to built profiles).
pub(crate) async fn plan_profiles(
    catalog: &Catalog,
    tables: &[SourceTable],
    day: chrono::NaiveDate,
) -> Result<Vec<OpenedTable>> {
    let ledger = tables
        .iter()
        .any(|t| t.name == crate::profiles::definition::REWARDS_LEDGER);
    let views = Profile::ALL
        .into_iter()
        .map(|p| {
            let name = format!("profiles.{}", p.name());
            (
                name,
                TableKind::Profile,
                Contents::Profile(p),
                profiles::sql(p, day, ledger),
            )
        })
        .collect();
    plan_views(catalog, tables, views).await
}

/// Views of SQL over the operator's view of `tables`: (name, kind, contents, SQL) each, graded
/// by what they contain.
async fn plan_views(
    catalog: &Catalog,
    tables: &[SourceTable],
    views: Vec<(String, TableKind, Contents, String)>,
) -> Result<Vec<OpenedTable>> {
    let system =
        LakeSession::assemble(catalog, tables, &AllowAll, &SessionOptions::default(), None)?;
    let mut out = Vec::new();
    for (name, kind, contents, sql) in views {
        let view = system.view(&sql).await?;
        let info = Arc::new(crate::registry::table_info(
            catalog,
            &name,
            kind,
            &contents,
            &view.schema(),
        ));
        out.push(OpenedTable {
            info,
            provider: view,
            version: None,
        });
    }
    Ok(out)
}

impl LakeSession {
    /// Opens a session over the registry's tables as `policy` lets its reader see them.
    pub async fn open(
        registry: &TableRegistry,
        policy: Arc<dyn TablePolicy>,
        opts: &SessionOptions,
    ) -> Result<Self> {
        let snapshot = registry.snapshot();
        let tables = match opts.as_of {
            None => stored_tables(registry, &snapshot).await?,
            Some(at) => {
                let stored = stored_tables(registry, &snapshot).await?;
                as_of::tables(registry.catalog(), &stored, at).await?
            }
        };
        let table_at =
            time_travel::TableAt::new(registry.shared_catalog(), snapshot, policy.clone());
        let mut s = Self::assemble(
            registry.catalog(),
            &tables,
            policy.as_ref(),
            opts,
            Some(table_at),
        )?;
        s.governed = policy.governed();
        Ok(s)
    }

    /// A session holding `tables`, each wrapped by `policy` (hidden ones left out).
    pub(crate) fn assemble(
        catalog: &Catalog,
        tables: &[SourceTable],
        policy: &dyn TablePolicy,
        opts: &SessionOptions,
        table_at: Option<time_travel::TableAt>,
    ) -> Result<Self> {
        let ctx = session(opts.memory_limit)?;
        ctx.add_analyzer_rule(Arc::new(PolicyGuard));
        let mut s = Self {
            ctx,
            tables: Vec::new(),
            versions: Vec::new(),
            max_rows: opts.max_rows.max(1),
            timeout: opts.timeout,
            governed: true,
        };
        // Every schema exists whatever the reader may see, so that a hidden table and a
        // missing one fail alike.
        let schemas: BTreeSet<String> = catalog
            .datasets()
            .map(|d| d.id.department().to_owned())
            .chain(["profiles", "system", "scenarios", "catalog"].map(String::from))
            .collect();
        let gdx = s.ctx.catalog("gdx").ok_or_else(|| {
            df_err(
                "gdx",
                datafusion::error::DataFusionError::Plan("no default catalog".into()),
            )
        })?;
        for schema in schemas {
            gdx.register_schema(&schema, Arc::new(MemorySchemaProvider::new()))
                .map_err(|e| df_err(&schema, e))?;
        }
        let pseudonyms = policy.pseudonymizer();
        for t in tables {
            let Some(wrapped) = wrap(
                policy,
                &t.opened.info,
                t.opened.provider.clone(),
                &pseudonyms,
            )?
            else {
                continue;
            };
            s.register(&t.name, Arc::new(wrapped))?;
            if let Some(v) = t.opened.version {
                s.versions.push((t.name.clone(), v));
            }
        }
        if let Some(table_at) = table_at {
            s.ctx
                .register_udtf("table_at", Arc::new(table_at.visible(&s.tables)));
        }
        Ok(s)
    }

    fn register(&mut self, name: &str, provider: Arc<dyn TableProvider>) -> Result<()> {
        let (schema, table) = name.split_once('.').unwrap_or(("public", name));
        let reference = datafusion::common::TableReference::partial(schema, table);
        self.ctx
            .register_table(reference, provider)
            .map_err(|e| df_err(name, e))?;
        self.tables.push(name.to_owned());
        Ok(())
    }

    pub(crate) async fn view(&self, sql: &str) -> Result<Arc<dyn TableProvider>> {
        let df = self.ctx.sql(sql).await.map_err(|e| df_err("<view>", e))?;
        Ok(df.into_view())
    }

    /// The Delta version the session reads of `table` (`schema.table`), if it is one.
    pub fn version(&self, table: &str) -> Option<u64> {
        self.versions
            .iter()
            .find(|(n, _)| n == table)
            .map(|(_, v)| *v)
    }

    /// The tables the reader sees, `schema.table`.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The underlying DataFusion session (profile builds plan their SQL here).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one read-only statement and returns at most the row cap.
    pub async fn query(&self, sql: &str) -> Result<QueryOutput> {
        self.collect(self.stream(sql).await?).await
    }

    /// Reads at most the row cap of a stream this session planned; its errors are told as
    /// the session tells them (for a governed reader, a failure on stored values names only
    /// its kind).
    pub async fn collect(&self, mut stream: SendableRecordBatchStream) -> Result<QueryOutput> {
        let schema = stream.schema();
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let mut truncated = false;
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| self.explain(e))?;
            if rows + b.num_rows() > self.max_rows {
                batches.push(b.slice(0, self.max_rows - rows));
                truncated = true;
                break;
            }
            rows += b.num_rows();
            batches.push(b);
        }
        Ok(QueryOutput {
            schema,
            batches,
            truncated,
        })
    }

    /// Plans one read-only statement and returns its stream (no row cap: for exports); the
    /// session's timeout covers planning and every batch.
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        Ok(self.plan(sql, Vec::new()).await?.stream)
    }

    /// Plans one read-only statement with its positional parameters (`$1`, `$2`, … each
    /// converted to the type the statement gives it) and returns its stream and the tables
    /// it reads; the session's timeout covers planning and every batch.
    pub async fn plan(&self, sql: &str, params: Vec<ScalarValue>) -> Result<Planned> {
        self.plan_source(Source::Text(sql), params).await
    }

    /// [`LakeSession::plan`] for a statement already parsed (the PostgreSQL wire protocol
    /// parses with its own dialect).
    pub async fn plan_statement(
        &self,
        statement: Statement,
        params: Vec<ScalarValue>,
    ) -> Result<Planned> {
        self.plan_source(Source::Parsed(Box::new(statement)), params)
            .await
    }

    /// The logical plan of one read-only statement, not run: its result columns and the
    /// types of its parameters (the extended query protocol's Describe).
    pub async fn describe(&self, statement: Statement) -> Result<LogicalPlan> {
        self.logical_plan(Source::Parsed(Box::new(statement))).await
    }

    /// Parses (or takes) a statement and plans it under the read-only rules.
    async fn logical_plan(&self, source: Source<'_>) -> Result<LogicalPlan> {
        let state = self.ctx.state();
        let plan = match source {
            Source::Text(sql) => state.create_logical_plan(sql).await,
            Source::Parsed(s) => {
                state
                    .statement_to_plan(datafusion::sql::parser::Statement::Statement(s))
                    .await
            }
        }
        .map_err(|e| self.explain(e))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| self.explain(e))?;
        if self.governed && matches!(plan, LogicalPlan::Analyze(_)) {
            return Err(Error::ReadOnly(
                "EXPLAIN ANALYZE is for the operator: its row counts include rows a \
                 policy hides"
                    .into(),
            ));
        }
        Ok(plan)
    }

    async fn plan_source(&self, source: Source<'_>, params: Vec<ScalarValue>) -> Result<Planned> {
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tables = BTreeSet::new();
        let plan = async {
            let logical = self.logical_plan(source).await?;
            let mut df = self
                .ctx
                .execute_logical_plan(logical)
                .await
                .map_err(|e| self.explain(e))?;
            if !params.is_empty() {
                let types = df
                    .logical_plan()
                    .get_parameter_types()
                    .map_err(|e| self.explain(e))?;
                let values = params
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| match types.get(&format!("${}", i + 1)) {
                        // Converted only when nothing is lost (a string of digits to a
                        // number, yes; 1.9 to an integer, no).
                        Some(Some(t)) if v.data_type() != *t && !v.is_null() => v
                            .cast_to(t)
                            .ok()
                            .filter(|c| c.cast_to(&v.data_type()).ok().as_ref() == Some(&v))
                            .ok_or_else(|| {
                                Error::Parameter(format!(
                                    "parameter ${} is not a {t} as the statement needs \
                                     (or would change in the conversion)",
                                    i + 1
                                ))
                            }),
                        _ => Ok(v),
                    })
                    .collect::<Result<Vec<_>>>()?;
                df = df.with_param_values(values).map_err(|e| self.explain(e))?;
            }
            df.logical_plan()
                .apply_with_subqueries(|node| {
                    if let LogicalPlan::TableScan(scan) = node {
                        let t = &scan.table_name;
                        tables.insert(match t.schema() {
                            Some(schema) => format!("{schema}.{}", t.table()),
                            None => t.table().to_owned(),
                        });
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
                .map_err(|e| self.explain(e))?;
            df.execute_stream().await.map_err(|e| self.explain(e))
        };
        let stream = match deadline {
            Some(d) => tokio::time::timeout_at(d, plan)
                .await
                .map_err(|_| self.timed_out())??,
            None => plan.await?,
        };
        let tables: Vec<String> = tables.into_iter().collect();
        let Some(deadline) = deadline else {
            return Ok(Planned { stream, tables });
        };
        let schema = stream.schema();
        let seconds = self.timeout.unwrap_or_default().as_secs_f64();
        let bounded = futures::stream::unfold(Some(stream), move |state| async move {
            let mut s = state?;
            match tokio::time::timeout_at(deadline, s.next()).await {
                Ok(Some(item)) => Some((item, Some(s))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(datafusion::error::DataFusionError::ResourcesExhausted(
                        format!("the query ran past its time limit of {seconds} s"),
                    )),
                    None,
                )),
            }
        });
        Ok(Planned {
            stream: Box::pin(RecordBatchStreamAdapter::new(schema, bounded)),
            tables,
        })
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            seconds: self.timeout.unwrap_or_default().as_secs_f64(),
        }
    }

    /// Turns DataFusion's errors into ones that point at the problem (and, for governed
    /// readers, quote nothing a table holds).
    fn explain(&self, e: datafusion::error::DataFusionError) -> Error {
        errors::explain(e, &self.tables, self.governed)
    }
}

/// `provider` as `policy` lets its reader see table `info`; `None` when hidden.
pub(crate) fn wrap(
    policy: &dyn TablePolicy,
    info: &TableInfo,
    provider: Arc<dyn TableProvider>,
    pseudonyms: &Option<Arc<gdx_catalog::Pseudonymizer>>,
) -> Result<Option<PolicyTable>> {
    match policy.access(info) {
        Access::Hidden | Access::VerifyOnly => Ok(None),
        Access::Read(access) => Ok(Some(PolicyTable::new(
            info,
            provider,
            &access,
            pseudonyms.clone(),
        )?)),
    }
}
