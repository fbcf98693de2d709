//! Dead letters as rows of the `_system/dead_letters` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use gdx_lake::schema::dead_letter_schema;

use crate::decode::{DeadLetter, Headers};

/// Headers as a JSON object; values that are not UTF-8 are written as hex.
fn headers_json(h: &Headers) -> Option<String> {
    if h.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = h
        .iter()
        .map(|(k, v)| {
            let text = std::str::from_utf8(v)
                .map(str::to_owned)
                .unwrap_or_else(|_| v.iter().map(|b| format!("{b:02x}")).collect());
            (k.to_owned(), serde_json::Value::String(text))
        })
        .collect();
    Some(serde_json::Value::Object(map).to_string())
}

pub(crate) fn batch(rows: &[DeadLetter], ingested_at_us: i64) -> RecordBatch {
    let utc = |a: TimestampMicrosecondArray| -> ArrayRef { Arc::new(a.with_timezone("UTC")) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(
            rows.iter().map(|d| d.topic.as_str()).collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            rows.iter().map(|d| d.partition).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|d| d.offset).collect::<Vec<_>>(),
        )),
        Arc::new(BinaryArray::from(
            rows.iter().map(|d| d.key.as_deref()).collect::<Vec<_>>(),
        )),
        Arc::new(BinaryArray::from(
            rows.iter().map(|d| d.value.as_deref()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|d| headers_json(&d.headers))
                .collect::<Vec<_>>(),
        )),
        utc(TimestampMicrosecondArray::from(
            rows.iter()
                .map(|d| d.timestamp_ms.and_then(|t| t.checked_mul(1000)))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|d| d.class.as_str()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|d| d.message.as_str()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|d| d.dataset.as_deref())
                .collect::<Vec<_>>(),
        )),
        utc(TimestampMicrosecondArray::from(vec![
            ingested_at_us;
            rows.len()
        ])),
    ];
    RecordBatch::try_new(dead_letter_schema(), columns)
        .expect("columns follow the dead-letter schema")
}
