//! Small read helpers over lake tables (row counts, grouped counts, offsets, ingest delays)
//! for summaries, benchmarks and tests.
//!
//! Data flow: table URL → Delta table provider, wrapped as the operator reads it (allow-all,
//! like every read of the lake, through a policy) and registered as `t` → one DataFusion
//! query → plain numbers.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::prelude::SessionContext;
use url::Url;

use crate::{Error, Result};

fn df_err(url: &Url, e: datafusion::error::DataFusionError) -> Error {
    Error::Delta {
        table: url.to_string(),
        source: Box::new(deltalake::DeltaTableError::from(e)),
    }
}

/// Runs `sql` over the table at `url` (registered as `t`); `None` when there is no table yet.
pub(crate) async fn query(url: &Url, sql: &str) -> Result<Option<Vec<RecordBatch>>> {
    let Some(table) = crate::table::open(url).await? else {
        return Ok(None);
    };
    let provider = table.table_provider().await.map_err(|e| df_err(url, e))?;
    query_provider(url, provider, sql).await.map(Some)
}

/// Runs `sql` over `provider` (the table at `url`, registered as `t`, read as the operator).
pub(crate) async fn query_provider(
    url: &Url,
    provider: std::sync::Arc<dyn datafusion::datasource::TableProvider>,
    sql: &str,
) -> Result<Vec<RecordBatch>> {
    let ctx = SessionContext::new();
    ctx.add_analyzer_rule(std::sync::Arc::new(crate::policy::guard::PolicyGuard));
    let wrapped = crate::policy::PolicyTable::operator(url.as_str(), provider);
    ctx.register_table("t", std::sync::Arc::new(wrapped))
        .map_err(|e| df_err(url, e))?;
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| df_err(url, e))?
        .collect()
        .await
        .map_err(|e| df_err(url, e))?;
    Ok(batches)
}

/// A column as Int64 values (nulls skipped).
fn int64s(url: &Url, c: &dyn Array) -> Result<Vec<i64>> {
    let c =
        datafusion::arrow::compute::cast(c, &DataType::Int64).map_err(|e| df_err(url, e.into()))?;
    Ok(c.as_primitive::<Int64Type>().iter().flatten().collect())
}

/// `(group value, rows)` of `select <column>, count(*) … group by <column>`; empty when the
/// table does not exist yet.
pub async fn count_by(url: &Url, column: &str) -> Result<Vec<(String, u64)>> {
    let sql = format!(
        "select cast(\"{column}\" as varchar) as g, count(*) as n from t group by 1 order by 1"
    );
    let mut out = Vec::new();
    for b in query(url, &sql).await?.unwrap_or_default() {
        let g = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
            .map_err(|e| df_err(url, e.into()))?;
        let g = g.as_string::<i32>();
        let n = int64s(url, b.column(1))?;
        for (i, n) in n.into_iter().enumerate() {
            out.push((g.value(i).to_owned(), n as u64));
        }
    }
    Ok(out)
}

/// The first row of `sql` over the table at `url` (registered as `t`), its values as text
/// joined by commas (nulls empty): a check two engines can answer alike.
pub async fn first_row_text(url: &Url, sql: &str) -> Result<Option<String>> {
    let batches = query(url, sql).await?.unwrap_or_default();
    let rows = text_rows(&batches).map_err(|e| df_err(url, e.into()))?;
    Ok(rows.into_iter().next().map(|row| {
        row.into_iter()
            .map(|v| if v == NULL_TEXT { String::new() } else { v })
            .collect::<Vec<_>>()
            .join(",")
    }))
}

/// Every row of `sql` over the table at `url` (registered as `t`) as text ([`text_rows`]);
/// empty when the table does not exist: for tests and tools that compare two lakes.
pub async fn all_rows_text(url: &Url, sql: &str) -> Result<Vec<Vec<String>>> {
    let batches = query(url, sql).await?.unwrap_or_default();
    text_rows(&batches).map_err(|e| df_err(url, e.into()))
}

/// How [`text_rows`] writes a null.
const NULL_TEXT: &str = "NULL";

/// Every value of `batches` as text, one vector per row (nulls as `NULL`): for tests,
/// benchmarks and tools that compare answers.
pub fn text_rows(batches: &[RecordBatch]) -> std::result::Result<Vec<Vec<String>>, ArrowError> {
    let mut rows = Vec::new();
    for b in batches {
        let cols = b
            .columns()
            .iter()
            .map(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| {
                        if c.is_null(i) {
                            NULL_TEXT.to_owned()
                        } else {
                            c.as_string::<i32>().value(i).to_owned()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Rows in a table (0 when it does not exist yet).
pub async fn row_count(url: &Url) -> Result<u64> {
    let batches = query(url, "select count(*) from t")
        .await?
        .unwrap_or_default();
    Ok(match batches.first() {
        Some(b) => int64s(url, b.column(0))?.first().copied().unwrap_or(0) as u64,
        None => 0,
    })
}

/// For one Kafka partition of an events table: (distinct offsets, highest offset).
pub async fn distinct_offsets(url: &Url, partition: i32) -> Result<(u64, i64)> {
    let sql = format!(
        "select count(distinct _offset), max(_offset) from t where _partition = {partition}"
    );
    let batches = query(url, &sql).await?.unwrap_or_default();
    let Some(b) = batches.first() else {
        return Ok((0, -1));
    };
    let distinct = int64s(url, b.column(0))?.first().copied().unwrap_or(0);
    let max = int64s(url, b.column(1))?.first().copied().unwrap_or(-1);
    Ok((distinct as u64, max))
}

/// Milliseconds from Kafka timestamp to ingestion for the rows ingested at or after
/// `since_us`, sorted ascending (for freshness percentiles).
pub async fn ingest_delays_ms(url: &Url, since_us: i64) -> Result<Vec<i64>> {
    let sql = format!(
        "select (cast(_ingested_at as bigint) - cast(_kafka_ts as bigint)) / 1000 as d from t \
         where _kafka_ts is not null and cast(_ingested_at as bigint) >= {since_us} order by d"
    );
    let mut out = Vec::new();
    for b in query(url, &sql).await?.unwrap_or_default() {
        out.extend(int64s(url, b.column(0))?);
    }
    Ok(out)
}

/// Rows per ingestion stamp of an events table (every run a worker hands over shares one
/// `_ingested_at`), oldest first: `(microseconds since the epoch, rows)`.
pub async fn ingest_runs(url: &Url) -> Result<Vec<(i64, u64)>> {
    let sql = "select cast(_ingested_at as bigint), count(*) from t group by 1 order by 1";
    let mut out = Vec::new();
    for b in query(url, sql).await?.unwrap_or_default() {
        let (at, n) = (int64s(url, b.column(0))?, int64s(url, b.column(1))?);
        out.extend(at.into_iter().zip(n.into_iter().map(|n| n as u64)));
    }
    Ok(out)
}

/// Paths of the data files of the table's newest version (local tables; empty when there
/// is no table) — for handing the same Parquet files to another engine.
pub async fn active_files(url: &Url) -> Result<Vec<String>> {
    let Some(t) = crate::table::open(url).await? else {
        return Ok(Vec::new());
    };
    let uris = t
        .get_file_uris()
        .map_err(|e| crate::table::delta_err(url, e))?
        .map(|u| u.strip_prefix("file://").map(str::to_owned).unwrap_or(u))
        .collect();
    Ok(uris)
}
