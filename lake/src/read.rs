//! Small read helpers over lake tables (row counts, grouped counts) for summaries.
//!
//! Data flow: table URL → Delta table provider → a DataFusion query → plain numbers.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::prelude::SessionContext;
use url::Url;

use crate::{Error, Result};

fn df_err(url: &Url, e: datafusion::error::DataFusionError) -> Error {
    Error::Delta {
        table: url.to_string(),
        source: Box::new(deltalake::DeltaTableError::from(e)),
    }
}

/// `(group value, rows)` of `select <column>, count(*) … group by <column>`; empty when the
/// table does not exist yet.
pub async fn count_by(url: &Url, column: &str) -> Result<Vec<(String, u64)>> {
    let Ok(table) = deltalake::open_table(url.clone()).await else {
        return Ok(Vec::new());
    };
    let ctx = SessionContext::new();
    let provider = table.table_provider().await.map_err(|e| df_err(url, e))?;
    ctx.register_table("t", provider)
        .map_err(|e| df_err(url, e))?;
    let sql = format!(
        "select cast(\"{column}\" as varchar) as g, count(*) as n from t group by 1 order by 1"
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| df_err(url, e))?
        .collect()
        .await
        .map_err(|e| df_err(url, e))?;
    let mut out = Vec::new();
    for b in batches {
        let g = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
            .map_err(|e| df_err(url, e.into()))?;
        let g = g.as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((g.value(i).to_owned(), n.value(i) as u64));
        }
    }
    Ok(out)
}

/// Rows in a table (0 when it does not exist yet).
pub async fn row_count(url: &Url) -> Result<u64> {
    let Ok(table) = deltalake::open_table(url.clone()).await else {
        return Ok(0);
    };
    let ctx = SessionContext::new();
    let provider = table.table_provider().await.map_err(|e| df_err(url, e))?;
    ctx.register_table("t", provider)
        .map_err(|e| df_err(url, e))?;
    let batches = ctx
        .sql("select count(*) from t")
        .await
        .map_err(|e| df_err(url, e))?
        .collect()
        .await
        .map_err(|e| df_err(url, e))?;
    Ok(batches.first().map_or(0, |b| {
        b.column(0).as_primitive::<Int64Type>().value(0) as u64
    }))
}

/// For one Kafka partition of an events table: (distinct offsets, highest offset).
pub async fn distinct_offsets(url: &Url, partition: i32) -> Result<(u64, i64)> {
    let table = deltalake::open_table(url.clone())
        .await
        .map_err(|e| Error::Delta {
            table: url.to_string(),
            source: Box::new(e),
        })?;
    let ctx = SessionContext::new();
    let provider = table.table_provider().await.map_err(|e| df_err(url, e))?;
    ctx.register_table("t", provider)
        .map_err(|e| df_err(url, e))?;
    let sql = format!(
        "select count(distinct _offset), max(_offset) from t where _partition = {partition}"
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| df_err(url, e))?
        .collect()
        .await
        .map_err(|e| df_err(url, e))?;
    let b = &batches[0];
    Ok((
        b.column(0).as_primitive::<Int64Type>().value(0) as u64,
        b.column(1).as_primitive::<Int64Type>().value(0),
    ))
}

/// Milliseconds from Kafka timestamp to ingestion for the rows ingested at or after
/// `since_us`, sorted ascending (for freshness percentiles).
pub async fn ingest_delays_ms(url: &Url, since_us: i64) -> Result<Vec<i64>> {
    let table = deltalake::open_table(url.clone())
        .await
        .map_err(|e| Error::Delta {
            table: url.to_string(),
            source: Box::new(e),
        })?;
    let ctx = SessionContext::new();
    let provider = table.table_provider().await.map_err(|e| df_err(url, e))?;
    ctx.register_table("t", provider)
        .map_err(|e| df_err(url, e))?;
    let sql = format!(
        "select (cast(_ingested_at as bigint) - cast(_kafka_ts as bigint)) / 1000 as d from t \
         where _kafka_ts is not null and cast(_ingested_at as bigint) >= {since_us} order by d"
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| df_err(url, e))?
        .collect()
        .await
        .map_err(|e| df_err(url, e))?;
    let mut out = Vec::new();
    for b in batches {
        let c = datafusion::arrow::compute::cast(b.column(0), &DataType::Int64)
            .map_err(|e| df_err(url, e.into()))?;
        out.extend(c.as_primitive::<Int64Type>().iter().flatten());
    }
    Ok(out)
}
