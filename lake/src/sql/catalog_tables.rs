//! `catalog.datasets` and `catalog.fields`: the catalog itself, queryable beside the data.
//!
//! Data flow: the loaded [`Catalog`] → one JSON object per dataset / field → Arrow batches
//! through arrow-json → in-memory tables.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::datasource::MemTable;
use gdx_catalog::Catalog;
use serde_json::json;

use crate::Result;
use crate::engine::df_err;

fn schema(cols: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

fn table(schema: SchemaRef, rows: Vec<serde_json::Value>) -> Result<Arc<MemTable>> {
    let arrow = |e: datafusion::arrow::error::ArrowError| df_err("catalog", e.into());
    let mut decoder = ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(arrow)?;
    decoder.serialize(&rows).map_err(arrow)?;
    let batch = decoder.flush().map_err(arrow)?;
    let batches = batch.into_iter().collect();
    MemTable::try_new(schema, vec![batches])
        .map(Arc::new)
        .map_err(|e| df_err("catalog", e))
}

fn text<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The catalog table `name` (`catalog.datasets` or `catalog.fields`).
pub(crate) fn catalog_table(
    catalog: &Catalog,
    name: &str,
) -> Result<Arc<dyn datafusion::datasource::TableProvider>> {
    Ok(match name {
        "catalog.datasets" => datasets(catalog)?,
        _ => fields(catalog)?,
    })
}

/// `catalog.datasets`: one row per dataset.
fn datasets(catalog: &Catalog) -> Result<Arc<MemTable>> {
    use DataType::*;
    let s = schema(&[
        ("id", Utf8),
        ("name", Utf8),
        ("department", Utf8),
        ("provider", Utf8),
        ("resource_code", Utf8),
        ("topic", Utf8),
        ("feed_format", Utf8),
        ("primary_key", Utf8),
        ("level", Int32),
        ("sharing_type", Utf8),
        ("open_type", Utf8),
        ("update_cycle", Utf8),
        ("schema_version", Int32),
        ("fields", Int32),
        ("summary", Utf8),
    ]);
    let rows = catalog
        .datasets()
        .map(|d| {
            json!({
                "id": d.id.as_str(),
                "name": d.name,
                "department": d.id.department(),
                "provider": d.provider.name,
                "resource_code": d.resource_code,
                "topic": d.topic,
                "feed_format": text(&d.feed_format),
                "primary_key": d.primary_key.join(","),
                "level": d.level().get(),
                "sharing_type": d.sharing.as_ref().map(|s| text(&s.kind)),
                "open_type": d.open.as_ref().map(|o| text(&o.kind)),
                "update_cycle": d.update_cycle,
                "schema_version": d.schema_version,
                "fields": d.fields.len(),
                "summary": d.summary,
            })
        })
        .collect();
    table(s, rows)
}

/// `catalog.fields`: one row per field of every dataset, with its grading.
fn fields(catalog: &Catalog) -> Result<Arc<MemTable>> {
    use DataType::*;
    let s = schema(&[
        ("dataset", Utf8),
        ("position", Int32),
        ("name", Utf8),
        ("type", Utf8),
        ("nullable", Boolean),
        ("level", Int32),
        ("category", Utf8),
        ("pii", Utf8),
        ("check_policy", Utf8),
        ("primary_key", Boolean),
        ("description", Utf8),
    ]);
    let rows = catalog
        .datasets()
        .flat_map(|d| {
            d.fields.iter().enumerate().map(move |(i, f)| {
                json!({
                    "dataset": d.id.as_str(),
                    "position": i + 1,
                    "name": f.name,
                    "type": f.ty.as_str(),
                    "nullable": f.nullable,
                    "level": f.level_or_max().get(),
                    "category": f.category,
                    "pii": f.pii.map(|p| p.as_str()),
                    "check_policy": f.check.as_ref().map(text),
                    "primary_key": d.primary_key.contains(&f.name),
                    "description": f.description,
                })
            })
        })
        .collect();
    table(s, rows)
}
