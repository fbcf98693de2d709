//! From decoded records to event rows: operations, keys, provenance, filtering of rejects.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray, StringBuilder,
    StructArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::{cast, concat, filter, take};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;

use super::message::{BAD_ENVELOPE, DeadLetter, ErrorClass, Message};
use super::{DatasetDecoder, Op, identifiers, masked_children};

/// Decoded records of a run of messages, one entry per message.
pub(super) struct Values<'m> {
    msgs: Vec<&'m Message>,
    ops: Vec<Op>,
    /// Typed columns (record schema order), one value per message; null for deletes.
    columns: Vec<ArrayRef>,
    /// For Debezium deletes: the key taken from `before`.
    delete_keys: Vec<Option<String>>,
}

/// `take` indices: message i → row of the decoded batch, or null when it has none.
fn positions(has_row: impl Iterator<Item = bool>) -> UInt32Array {
    let mut next = 0u32;
    has_row
        .map(|h| {
            h.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

fn null_columns(schema: &SchemaRef, n: usize) -> Vec<ArrayRef> {
    schema
        .fields()
        .iter()
        .map(|f| arrow::array::new_null_array(f.data_type(), n))
        .collect()
}

/// The primary key of each row as text (`|`-joined), null where a part is null. A key of
/// one text column is that column itself, not a copy.
fn key_column(columns: &[ArrayRef], schema: &SchemaRef, pk: &[String]) -> StringArray {
    let rows = columns.first().map_or(0, |c| c.len());
    let parts: Vec<StringArray> = pk
        .iter()
        .filter_map(|k| schema.index_of(k).ok())
        .map(|i| {
            let c = cast(&columns[i], &DataType::Utf8).expect("primitive columns cast to text");
            c.as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .clone()
        })
        .collect();
    if let [only] = parts.as_slice() {
        return only.clone();
    }
    let mut keys = StringBuilder::with_capacity(rows, rows * 24);
    for r in 0..rows {
        if parts.iter().any(|p| p.is_null(r)) {
            keys.append_null();
            continue;
        }
        for (j, p) in parts.iter().enumerate() {
            if j > 0 {
                keys.write_str("|").expect("in memory");
            }
            keys.write_str(p.value(r)).expect("in memory");
        }
        keys.append_value("");
    }
    keys.finish()
}

impl<'m> Values<'m> {
    pub(super) fn plain(
        msgs: Vec<&'m Message>,
        ops: Vec<Op>,
        batch: Option<RecordBatch>,
        record: &SchemaRef,
    ) -> Self {
        let n = msgs.len();
        let columns = match batch {
            None => null_columns(record, n),
            // Every message an upsert (the usual run): the decoded rows are the messages,
            // in order; no copy.
            Some(b) if b.num_rows() == n && ops.iter().all(|o| *o == Op::Upsert) => {
                b.columns().to_vec()
            }
            Some(b) => {
                let idx = positions(ops.iter().map(|o| *o == Op::Upsert));
                b.columns()
                    .iter()
                    .map(|c| take(c, &idx, None).expect("indices in range"))
                    .collect()
            }
        };
        Values {
            msgs,
            ops,
            columns,
            delete_keys: vec![None; n],
        }
    }

    pub(super) fn debezium(
        decoded: Vec<(&'m Message, bool)>,
        batch: Option<RecordBatch>,
        record: &SchemaRef,
        pk: &[String],
    ) -> Result<Self, ArrowError> {
        let n = decoded.len();
        let msgs: Vec<&Message> = decoded.iter().map(|(m, _)| *m).collect();
        let Some(batch) = batch else {
            // Only tombstones.
            return Ok(Values {
                msgs,
                ops: vec![Op::Delete; n],
                columns: null_columns(record, n),
                delete_keys: vec![None; n],
            });
        };
        let as_struct = |name: &str| -> StructArray {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StructArray>())
                .expect("envelope schema")
                .clone()
        };
        let (before, after) = (as_struct("before"), as_struct("after"));
        let op_col = batch
            .column_by_name("op")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .expect("envelope schema")
            .clone();
        let before_cols = masked_children(&before);
        let mut ops = Vec::with_capacity(n);
        let mut delete_keys = Vec::with_capacity(n);
        let mut row = 0usize;
        let mut upsert_rows = Vec::with_capacity(n);
        for (_, has_row) in &decoded {
            if !has_row {
                ops.push(Op::Delete);
                delete_keys.push(None);
                upsert_rows.push(None);
                continue;
            }
            let op = op_col.value(row);
            match op {
                "c" | "u" | "r" => {
                    if after.is_null(row) {
                        return Err(ArrowError::InvalidArgumentError(format!(
                            "{BAD_ENVELOPE}: op {op:?} without `after`"
                        )));
                    }
                    ops.push(Op::Upsert);
                    delete_keys.push(None);
                    upsert_rows.push(Some(row as u32));
                }
                "d" => {
                    if before.is_null(row) {
                        return Err(ArrowError::InvalidArgumentError(format!(
                            "{BAD_ENVELOPE}: op \"d\" without `before`"
                        )));
                    }
                    ops.push(Op::Delete);
                    delete_keys.push(Some(row));
                    upsert_rows.push(None);
                }
                other => {
                    return Err(ArrowError::InvalidArgumentError(format!(
                        "{BAD_ENVELOPE}: unknown op {other:?}"
                    )));
                }
            }
            row += 1;
        }
        let idx: UInt32Array = upsert_rows.into_iter().collect();
        let columns = masked_children(&after)
            .iter()
            .map(|c| take(c, &idx, None).expect("indices in range"))
            .collect();
        // Keys of deletes come from `before`'s primary key.
        let before_keys = key_column(&before_cols, record, pk);
        let delete_keys = delete_keys
            .into_iter()
            .map(|r| {
                r.and_then(|r| {
                    before_keys
                        .is_valid(r)
                        .then(|| before_keys.value(r).to_owned())
                })
            })
            .collect();
        Ok(Values {
            msgs,
            ops,
            columns,
            delete_keys,
        })
    }

    /// Parses the text-on-the-wire columns (numbers, money, dates, timestamps) into their
    /// stored types by [`super::text`]'s rules; a value refused fails the run with the field
    /// and the rule (a `ParseError`, which the slow path reports as it is).
    pub(super) fn typed(mut self, record: &SchemaRef) -> Result<Self, ArrowError> {
        for (i, f) in record.fields().iter().enumerate() {
            if self.columns[i].data_type() == f.data_type() {
                continue;
            }
            let text = self.columns[i]
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("typed fields travel as text");
            self.columns[i] =
                super::text::parse_column(text, f.data_type()).map_err(|(_, refusal)| {
                    ArrowError::ParseError(format!(
                        "field `{}`: {}",
                        f.name(),
                        refusal.rule(f.data_type())
                    ))
                })?;
        }
        Ok(self)
    }

    pub(super) fn concat(parts: Vec<Values<'m>>) -> Option<Values<'m>> {
        let first = parts.first()?;
        let ncols = first.columns.len();
        let columns = (0..ncols)
            .map(|i| {
                let arrays: Vec<&dyn Array> = parts.iter().map(|p| p.columns[i].as_ref()).collect();
                concat(&arrays).expect("same types")
            })
            .collect();
        let mut out = Values {
            msgs: Vec::new(),
            ops: Vec::new(),
            columns,
            delete_keys: Vec::new(),
        };
        for p in parts {
            out.msgs.extend(p.msgs);
            out.ops.extend(p.ops);
            out.delete_keys.extend(p.delete_keys);
        }
        Some(out)
    }
}

/// Turns decoded values into event rows; rejected rows become dead letters.
pub(super) fn assemble(
    dec: &DatasetDecoder,
    v: Values<'_>,
    ingested_at_us: i64,
    dead: &mut Vec<DeadLetter>,
) -> Option<RecordBatch> {
    let ds = &dec.ds;
    let n = v.msgs.len();
    let is_upsert: Vec<bool> = v.ops.iter().map(|o| *o == Op::Upsert).collect();
    let checked = identifiers::check(ds, &v.columns, &is_upsert);
    let record_keys = key_column(&checked.columns, &dec.record, &ds.primary_key);

    let mut keep = Vec::with_capacity(n);
    // `_key` is the record key column itself while every row is a kept upsert; the first
    // other row switches to building it (rows not kept get an empty key, filtered out below).
    let mut built: Option<StringBuilder> = None;
    let times: Vec<Result<i64, &'static str>> = v
        .msgs
        .iter()
        .map(|m| event_time_us(m, ingested_at_us))
        .collect();
    for (r, m) in v.msgs.iter().copied().enumerate() {
        if let Some((class, why)) = &checked.rejects[r] {
            dead.push(DeadLetter::new(m, *class, why.clone(), Some(&ds.id)));
            keep.push(false);
            keys_from(&mut built, &record_keys, r).append_value("");
            continue;
        }
        if let Err(why) = times[r] {
            dead.push(DeadLetter::new(
                m,
                ErrorClass::BadEventTime,
                why.into(),
                Some(&ds.id),
            ));
            keep.push(false);
            keys_from(&mut built, &record_keys, r).append_value("");
            continue;
        }
        let key: Option<std::borrow::Cow<'_, str>> = match v.ops[r] {
            Op::Upsert => record_keys.is_valid(r).then(|| record_keys.value(r).into()),
            Op::Delete => v.delete_keys[r]
                .as_deref()
                .map(Into::into)
                .or_else(|| m.key_str().map(|k| canonical_key(ds, &k).into())),
        };
        match key {
            Some(k) if !k.is_empty() => {
                keep.push(true);
                if v.ops[r] == Op::Delete || built.is_some() {
                    keys_from(&mut built, &record_keys, r).append_value(k);
                }
            }
            _ => {
                dead.push(DeadLetter::new(
                    m,
                    ErrorClass::MissingKey,
                    "no primary key to identify the record".into(),
                    Some(&ds.id),
                ));
                keep.push(false);
                keys_from(&mut built, &record_keys, r).append_value("");
            }
        }
    }
    let keys: ArrayRef = match built {
        Some(mut b) => Arc::new(b.finish()),
        None => Arc::new(record_keys),
    };
    let kept = keep.iter().filter(|k| **k).count();
    if kept == 0 {
        return None;
    }
    let utc = |a: TimestampMicrosecondArray| -> ArrayRef { Arc::new(a.with_timezone("UTC")) };
    let mut columns: Vec<ArrayRef> = checked.columns;
    columns.push(Arc::new(StringArray::from(
        v.msgs.iter().map(|m| &*m.topic).collect::<Vec<_>>(),
    )));
    columns.push(Arc::new(Int32Array::from(
        v.msgs.iter().map(|m| m.partition).collect::<Vec<_>>(),
    )));
    columns.push(Arc::new(Int64Array::from(
        v.msgs.iter().map(|m| m.offset).collect::<Vec<_>>(),
    )));
    columns.push(utc(TimestampMicrosecondArray::from(
        v.msgs
            .iter()
            .map(|m| m.timestamp_ms.and_then(|t| t.checked_mul(1000)))
            .collect::<Vec<_>>(),
    )));
    // (A row whose time was refused is a dead letter, filtered out below.)
    columns.push(utc(TimestampMicrosecondArray::from(
        times
            .iter()
            .map(|t| *t.as_ref().unwrap_or(&0))
            .collect::<Vec<_>>(),
    )));
    columns.push(utc(TimestampMicrosecondArray::from(vec![
        ingested_at_us;
        n
    ])));
    columns.push(Arc::new(StringArray::from(
        v.ops
            .iter()
            .map(|o| if *o == Op::Upsert { "upsert" } else { "delete" })
            .collect::<Vec<_>>(),
    )));
    columns.push(keys);
    columns.push(Arc::new(Int32Array::from(vec![
        ds.schema_version as i32;
        n
    ])));
    columns.push(Arc::new(StringArray::from(
        v.msgs
            .iter()
            .map(|m| m.header_str("event-id"))
            .collect::<Vec<_>>(),
    )));
    columns.push(Arc::new(StringArray::from(
        v.msgs
            .iter()
            .map(|m| m.header_str("source-system"))
            .collect::<Vec<_>>(),
    )));
    columns.push(Arc::new(StringArray::from(
        checked
            .flags
            .iter()
            .map(|f| {
                (!f.is_empty()).then(|| {
                    f.iter()
                        .map(|&i| ds.fields[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
            })
            .collect::<Vec<_>>(),
    )));
    let batch = RecordBatch::try_new(dec.events.clone(), columns)
        .expect("columns follow the events schema");
    if kept == n {
        return Some(batch);
    }
    let mask = BooleanArray::from(keep);
    let cols = batch
        .columns()
        .iter()
        .map(|c| filter(c, &mask).expect("same length"))
        .collect();
    Some(RecordBatch::try_new(dec.events.clone(), cols).expect("filtered columns"))
}

/// The `_key` builder, started on row `r` with the record keys of the rows before it.
fn keys_from<'b>(
    built: &'b mut Option<StringBuilder>,
    record_keys: &StringArray,
    r: usize,
) -> &'b mut StringBuilder {
    built.get_or_insert_with(|| {
        let mut b = StringBuilder::with_capacity(record_keys.len(), record_keys.value_data().len());
        for i in 0..r {
            b.append_value(record_keys.value(i));
        }
        b
    })
}

/// A tombstone's key in the canonical form upserts use (normalised identifiers).
fn canonical_key(ds: &gdx_catalog::Dataset, key: &str) -> String {
    match ds.primary_key.as_slice() {
        [only] => match ds.field(only).and_then(|f| f.id_kind()) {
            Some(kind) => kind.check(key).unwrap_or_else(|_| key.to_owned()),
            None => key.to_owned(),
        },
        _ => key.to_owned(),
    }
}

/// How far past its arrival an event time may lie (clocks drift; a day more is a clock or
/// unit error, and would win the fold over every later change).
pub(crate) const MAX_AHEAD_US: i64 = 24 * 3600 * 1_000_000;

/// A record's event time in microseconds: its `event-time` header (RFC 3339, or milliseconds
/// since the epoch), else its Kafka timestamp, else its arrival. A header that says neither,
/// a time out of range, or one more than a day after the record arrived is refused with
/// the rule it breaks (never the value): a record is never given another time silently.
pub(crate) fn event_time_us(m: &Message, ingested_at_us: i64) -> Result<i64, &'static str> {
    let t = match m.header_str("event-time").map(str::trim) {
        Some(s) => match s.parse::<i64>() {
            Ok(ms) => ms
                .checked_mul(1000)
                .ok_or("header event-time: milliseconds since the epoch out of range")?,
            Err(_) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    "header event-time: neither an RFC 3339 time nor milliseconds since the epoch"
                })?
                .timestamp_micros(),
        },
        None => match m.timestamp_ms {
            Some(ms) => ms
                .checked_mul(1000)
                .ok_or("the Kafka timestamp is out of range")?,
            None => ingested_at_us,
        },
    };
    if t > ingested_at_us.saturating_add(MAX_AHEAD_US) {
        return Err(
            "event time more than 24 hours after the record arrived (a clock or unit error)",
        );
    }
    Ok(t)
}
