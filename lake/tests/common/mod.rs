//! Helpers shared by the lake's integration tests: events of `ps.household_registration`
//! written as ingest would write them, and rows read back.

#![allow(dead_code)]

pub(crate) mod district;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use gdx_catalog::Dataset;
use gdx_lake::schema::events_schema;
use gdx_lake::{EventTable, LakeLocation, PartitionTxn};

pub(crate) fn dataset() -> Dataset {
    gdx_catalog::district::catalog()
        .get("ps.household_registration")
        .unwrap()
        .clone()
}

/// One event: (key, name, event time as "HH:MM" on 2026-03-01 +08:00 or RFC 3339, partition,
/// offset, op).
pub(crate) type Ev<'a> = (&'a str, &'a str, &'a str, i32, i64, &'a str);

pub(crate) fn batch(ds: &Dataset, events: &[Ev<'_>]) -> RecordBatch {
    let mut json = String::new();
    for (key, name, at, partition, offset, op) in events {
        let name = if *op == "delete" {
            "null".to_owned()
        } else {
            format!("\"{name}\"")
        };
        let at = if at.len() == 5 {
            format!("2026-03-01T{at}:00+08:00")
        } else {
            at.to_string()
        };
        json.push_str(&format!(
            "{{\"resident_id\":\"{key}\",\"name\":{name},\"status\":\"active\",\
             \"_topic\":\"ps.household_registration\",\"_partition\":{partition},\"_offset\":{offset},\
             \"_event_time\":\"{at}\",\"_ingested_at\":\"2026-03-01T12:00:00Z\",\
             \"_op\":\"{op}\",\"_key\":\"{key}\",\"_schema_version\":1}}\n"
        ));
    }
    let mut r = arrow_json_reader(ds, json.as_bytes());
    r.next().unwrap().unwrap()
}

fn arrow_json_reader<'a>(
    ds: &Dataset,
    bytes: &'a [u8],
) -> impl Iterator<Item = Result<RecordBatch, datafusion::arrow::error::ArrowError>> + 'a {
    datafusion::arrow::json::ReaderBuilder::new(events_schema(ds))
        .build(std::io::Cursor::new(bytes))
        .unwrap()
}

pub(crate) async fn append(lake: &LakeLocation, ds: &Dataset, events: &[Ev<'_>]) {
    let mut t = EventTable::open_or_create(lake.events(&ds.id), events_schema(ds), "t")
        .await
        .unwrap();
    let last = events.iter().map(|e| e.4).max().unwrap();
    // One JSON batch holds at most 1,024 events.
    t.append(
        events.chunks(1000).map(|c| batch(ds, c)).collect(),
        &[PartitionTxn {
            app_id: "test/c/ps.household_registration/0".into(),
            offset: last,
        }],
    )
    .await
    .unwrap();
}

/// `(key, name, offset)` of every row of a table, sorted by key.
pub(crate) async fn rows(url: url::Url) -> Vec<(String, Option<String>, i64)> {
    let t = deltalake::open_table(url).await.unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.table_provider().await.unwrap())
        .unwrap();
    let batches = ctx
        .sql("select _key, name, _offset from t order by _key")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        let utf8 = |i: usize| cast(b.column(i), &DataType::Utf8).unwrap();
        let (k, n) = (utf8(0), utf8(1));
        let (k, n) = (k.as_string::<i32>(), n.as_string::<i32>());
        let o = b.column(2).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((
                k.value(i).to_owned(),
                (!n.is_null(i)).then(|| n.value(i).to_owned()),
                o.value(i),
            ));
        }
    }
    out
}

pub(crate) fn row(k: &str, n: &str, o: i64) -> (String, Option<String>, i64) {
    (k.to_owned(), Some(n.to_owned()), o)
}
