//! The analyst's SQL session over the lake: read-only, bounded in memory and rows.
//!
//! Data flow: the catalog → for every dataset `<dept>.<dataset>` (its `current` table, or
//! with [`SessionOptions::as_of`] its state rebuilt from events at that time) and
//! `<dept>.<dataset>_events` → `profiles.citizen` / `profiles.enterprise` (the built tables,
//! or the profile SQL over this session's tables when they are not built or when reading as
//! of a date) → `system.dead_letters` → `catalog.datasets` / `catalog.fields` → a DataFusion
//! session with a spilling memory pool → [`LakeSession::query`] rejects DDL, DML, COPY,
//! external tables and SET, streams the result and stops at the row cap.

mod catalog_tables;
pub mod time_travel;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SQLOptions, SessionContext};
use futures::StreamExt;
use gdx_catalog::Catalog;
use url::Url;

use crate::engine::{DEFAULT_MEMORY_LIMIT, df_err, session};
use crate::fold::current_schema;
use crate::profiles::{self, Profile};
use crate::table::open;
use crate::{Error, LakeLocation, Result};
pub use time_travel::AsOf;

/// How a session reads the lake.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Read every dataset (and the profiles) as of this business time, rebuilt from events.
    pub as_of: Option<AsOf>,
    /// Memory budget of one query in bytes; sorts and aggregations spill beyond it.
    pub memory_limit: usize,
    /// At most this many rows are returned; the rest is cut off and reported.
    pub max_rows: usize,
    /// Register only the datasets' state tables (`<dept>.<dataset>`), as a profile build
    /// needs: no events, profiles, dead letters or catalog tables to open.
    pub state_only: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            as_of: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_rows: 10_000,
            state_only: false,
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

/// A read-only SQL session over one lake.
pub struct LakeSession {
    ctx: SessionContext,
    tables: Vec<String>,
    /// Delta version read, per session table backed by one.
    versions: BTreeMap<String, u64>,
    max_rows: usize,
}

impl std::fmt::Debug for LakeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeSession")
            .field("tables", &self.tables.len())
            .field("max_rows", &self.max_rows)
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

impl LakeSession {
    /// Opens every table of `lake` the catalog knows.
    pub async fn open(
        lake: &LakeLocation,
        catalog: &Catalog,
        opts: &SessionOptions,
    ) -> Result<Self> {
        let ctx = session(opts.memory_limit)?;
        let mut s = Self {
            ctx,
            tables: Vec::new(),
            versions: BTreeMap::new(),
            max_rows: opts.max_rows.max(1),
        };
        let mut delta_tables = BTreeMap::new();
        let schemas = catalog
            .datasets()
            .map(|d| d.id.department().to_owned())
            .chain(["profiles", "system", "catalog"].map(String::from))
            .collect::<std::collections::BTreeSet<_>>();
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

        for ds in catalog.datasets() {
            let name = format!("{}.{}", ds.id.department(), ds.id.name());
            let events_name = format!("{name}_events");
            let events_url = lake.events(&ds.id);
            let current_url = lake.current(&ds.id);
            if opts.state_only && opts.as_of.is_none() {
                let (current, version) = provider(&current_url, &current_schema(ds), &name).await?;
                if let Some(v) = version {
                    s.versions.insert(name.clone(), v);
                }
                s.register(&name, current)?;
                continue;
            }
            let events_schema = crate::schema::events_schema(ds);
            let (events, events_version) =
                provider(&events_url, &events_schema, &events_name).await?;
            if let Some(v) = events_version {
                s.versions.insert(events_name.clone(), v);
            }
            match &opts.as_of {
                None => {
                    s.register(&events_name, events)?;
                    let (current, version) =
                        provider(&current_url, &current_schema(ds), &name).await?;
                    if let Some(v) = version {
                        s.versions.insert(name.clone(), v);
                    }
                    s.register(&name, current)?;
                    delta_tables.insert(name.clone(), current_url);
                }
                Some(at) => {
                    let raw = format!("{}._{}_events_all", ds.id.department(), ds.id.name());
                    s.register(&raw, events)?;
                    let cut = s
                        .view(&format!(
                            "select * from {raw} where _event_time <= {}",
                            at.sql_literal()
                        ))
                        .await?;
                    s.register(&events_name, cut)?;
                    let cols = crate::fold::column_list(&current_schema(ds));
                    let state = s
                        .view(&time_travel::state_sql(&quoted(&events_name), &cols))
                        .await?;
                    s.register(&name, state)?;
                    s.tables.retain(|t| t != &raw);
                }
            }
            delta_tables.insert(events_name, events_url);
        }
        if opts.state_only {
            return Ok(s);
        }
        for p in Profile::ALL {
            let name = format!("profiles.{}", p.name());
            let url = lake.profile(p.name());
            let built = match opts.as_of {
                None => open(&url).await?,
                Some(_) => None,
            };
            let provider: Arc<dyn TableProvider> = match built {
                Some(t) => t.table_provider().await.map_err(|e| df_err(&name, e))?,
                None => {
                    let as_of_date = opts.as_of.map(|a| a.date()).unwrap_or_else(|| {
                        chrono::Utc::now()
                            .with_timezone(&time_travel::district_offset())
                            .date_naive()
                    });
                    s.view(&profiles::sql(p, as_of_date)).await?
                }
            };
            s.register(&name, provider)?;
            delta_tables.insert(name, url);
        }
        let dl = lake.dead_letters();
        let (dead, _) = provider(&dl, &crate::schema::dead_letter_schema(), "dead_letters").await?;
        s.register("system.dead_letters", dead)?;
        delta_tables.insert("system.dead_letters".into(), dl);
        s.register("catalog.datasets", catalog_tables::datasets(catalog)?)?;
        s.register("catalog.fields", catalog_tables::fields(catalog)?)?;
        s.ctx.register_udtf(
            "table_at",
            Arc::new(time_travel::TableAt {
                tables: Arc::new(delta_tables),
            }),
        );
        Ok(s)
    }

    fn register(&mut self, name: &str, provider: Arc<dyn TableProvider>) -> Result<()> {
        self.ctx
            .register_table(name, provider)
            .map_err(|e| df_err(name, e))?;
        self.tables.push(name.replace('"', ""));
        Ok(())
    }

    async fn view(&self, sql: &str) -> Result<Arc<dyn TableProvider>> {
        let df = self.ctx.sql(sql).await.map_err(|e| df_err("<view>", e))?;
        Ok(df.into_view())
    }

    /// The Delta version the session reads of `table` (`schema.table`), if it is one.
    pub fn version(&self, table: &str) -> Option<u64> {
        self.versions.get(table).copied()
    }

    /// The tables of the session, `schema.table`.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The underlying DataFusion session (profile builds plan their SQL here).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one read-only statement and returns at most the row cap.
    pub async fn query(&self, sql: &str) -> Result<QueryOutput> {
        let stream = self.stream(sql).await?;
        let schema = stream.schema();
        let mut stream = stream;
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

    /// Plans one read-only statement and returns its stream (no row cap: for exports).
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = self
            .ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| self.explain(e))?;
        df.execute_stream().await.map_err(|e| self.explain(e))
    }

    /// Turns DataFusion's errors into ones that point at the problem.
    fn explain(&self, e: datafusion::error::DataFusionError) -> Error {
        let msg = e.to_string();
        if let Some(name) = msg
            .split("table '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .filter(|_| msg.contains("not found"))
        {
            let name = name
                .trim_start_matches("gdx.")
                .trim_start_matches("public.");
            let known: Vec<&str> = self.tables.iter().map(String::as_str).collect();
            return Error::UnknownTable {
                name: name.to_owned(),
                close: close_names(name, &known),
            };
        }
        // The refusals of `SQLOptions` (DDL, DML incl. COPY, SET and other statements);
        // other "not supported" errors are ordinary query errors.
        if [
            "DDL not supported",
            "DML not supported",
            "Statement not supported",
        ]
        .iter()
        .any(|r| msg.contains(r))
        {
            return Error::ReadOnly(msg);
        }
        df_err("<query>", e)
    }
}

fn quoted(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{s}.\"{t}\""),
        None => format!("\"{name}\""),
    }
}

/// The Delta table at `url` and its version, or an empty table of `schema` when it does
/// not exist yet.
async fn provider(
    url: &Url,
    schema: &SchemaRef,
    name: &str,
) -> Result<(Arc<dyn TableProvider>, Option<u64>)> {
    match open(url).await? {
        Some(t) => Ok((
            t.table_provider().await.map_err(|e| df_err(name, e))?,
            t.version(),
        )),
        None => Ok((
            Arc::new(MemTable::try_new(schema.clone(), vec![vec![]]).map_err(|e| df_err(name, e))?),
            None,
        )),
    }
}
