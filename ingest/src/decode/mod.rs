//! Decoding feed messages straight from their raw bytes into Arrow event rows.
//!
//! Data flow: a run of Kafka [`Message`]s of one topic → size and tombstone checks → the
//! keys of each value checked ([`shape`]: no unknown field, none twice) → the values,
//! concatenated, through one arrow-json decoder built from the catalog schema (`json`
//! records, or Debezium envelopes whose `before`/`after` are that schema), numbers, money,
//! dates and times read as text and parsed by gdx's own rules ([`text`]: never a lossy
//! coercion) → coded
//! identifiers checked and normalised per the field's policy (`reject` dead-letters the row,
//! `flag` keeps it and names the field in `_flags`) → the provenance columns → one
//! [`RecordBatch`] in the `events` table schema, plus a [`DeadLetter`] for every message that
//! could not be accepted. When the fast path fails, the run is decoded message by message so
//! only the bad messages are dead-lettered, each with a precise error class.
//!
//! Invariant: every input message ends up as exactly one event row or one dead letter.

mod identifiers;
mod message;
mod rows;
mod shape;
mod text;

pub use message::{DeadLetter, ErrorClass, Headers, Message, last_offsets};

use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::ReaderBuilder;
use arrow::json::reader::Decoder;
use gdx_catalog::{Dataset, FeedFormat};
use gdx_lake::schema::{events_schema, record_schema};

/// Default limit on one message's value.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Decodes the messages of one dataset's topic.
#[derive(Debug, Clone)]
pub struct DatasetDecoder {
    ds: Arc<Dataset>,
    /// The record as stored (dates and timestamps typed).
    record: SchemaRef,
    /// The record as read off the wire: numbers, money, dates and timestamps as text (a JSON
    /// number keeps its exact text), parsed by [`text`]'s rules after decoding: arrow-json
    /// would truncate `1.9` into an integer, round money, and take a bare number as a date.
    wire: SchemaRef,
    /// The keys a value may have.
    shape: shape::Shape,
    envelope: SchemaRef,
    events: SchemaRef,
    max_bytes: usize,
    /// arrow-json decoders kept between runs (shared by clones): a fresh one grows its tape
    /// from nothing, reallocating and faulting in pages for every run.
    pool: Arc<Mutex<Vec<(usize, Decoder)>>>,
}

/// Decoders kept per [`DatasetDecoder`]: one per chunk in flight is enough.
const POOLED_DECODERS: usize = 4;
/// Runs smaller than this get a fresh decoder.
const MIN_POOLED_BATCH: usize = 1_024;

/// Messages decoded together. arrow-json's tape for this many (~2 MB) and the arrays built
/// from it stay in the CPU caches; a whole run at once (25,000 messages a core) made every
/// copy out of the tape a cache miss: 12 % more CPU per message in `gdx bench ingest`.
pub const DECODE_SLICE: usize = 4_096;

/// Rows decoded from one run of messages.
#[derive(Debug)]
pub struct Decoded {
    /// Event rows in the `events` schema, one batch per [`DECODE_SLICE`] messages (none for
    /// a slice whose every message was dead-lettered).
    pub batches: Vec<RecordBatch>,
    pub dead_letters: Vec<DeadLetter>,
}

/// One message's content after the envelope is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Upsert,
    Delete,
}

impl DatasetDecoder {
    pub fn new(ds: Arc<Dataset>) -> Self {
        let record = record_schema(&ds);
        let wire = Arc::new(Schema::new(
            record
                .fields()
                .iter()
                .map(|f| match text::read_as_text(f.data_type()) {
                    true => Field::new(f.name(), DataType::Utf8, f.is_nullable()),
                    false => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
        ));
        let nullable_record = DataType::Struct(wire.fields().clone());
        let envelope = Arc::new(Schema::new(vec![
            Field::new("before", nullable_record.clone(), true),
            Field::new("after", nullable_record, true),
            Field::new("op", DataType::Utf8, false),
            Field::new("ts_ms", DataType::Int64, true),
        ]));
        let events = events_schema(&ds);
        let shape = shape::Shape::new(
            ds.fields.iter().map(|f| f.name.clone()).collect(),
            ds.schema_version,
            ds.feed_format == FeedFormat::DebeziumJson,
        );
        Self {
            ds,
            record,
            wire,
            shape,
            envelope,
            events,
            max_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            pool: Arc::default(),
        }
    }

    pub fn with_max_message_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }

    pub fn events_schema(&self) -> &SchemaRef {
        &self.events
    }

    /// Decodes `msgs` (all of this dataset's topic), a slice of [`DECODE_SLICE`] at a time;
    /// `ingested_at_us` stamps the rows.
    pub fn decode(&self, msgs: &[Message], ingested_at_us: i64) -> Decoded {
        let mut out = Decoded {
            batches: Vec::with_capacity(msgs.len().div_ceil(DECODE_SLICE)),
            dead_letters: Vec::new(),
        };
        for slice in msgs.chunks(DECODE_SLICE) {
            let (batch, mut dead) = self.decode_slice(slice, ingested_at_us);
            out.batches.extend(batch);
            out.dead_letters.append(&mut dead);
        }
        out
    }

    fn decode_slice(
        &self,
        msgs: &[Message],
        ingested_at_us: i64,
    ) -> (Option<RecordBatch>, Vec<DeadLetter>) {
        let mut dead = Vec::new();
        let mut candidates: Vec<&Message> = Vec::with_capacity(msgs.len());
        let mut seen = Vec::new();
        for m in msgs {
            let refused = match &m.value {
                Some(v) if v.len() > self.max_bytes => Some((
                    ErrorClass::Oversized,
                    format!(
                        "value is {} bytes, the limit is {}",
                        v.len(),
                        self.max_bytes
                    ),
                )),
                Some(v) => self.shape.flaw(shape::payload(v), &mut seen),
                None if m.key.as_ref().is_none_or(|k| k.is_empty()) => Some((
                    ErrorClass::MissingKey,
                    "tombstone without a key: nothing to delete".into(),
                )),
                None => None,
            };
            match refused {
                Some((class, why)) => dead.push(DeadLetter::new(m, class, why, Some(&self.ds.id))),
                None => candidates.push(m),
            }
        }
        let (values, mut rejected) = self.decode_values(&candidates);
        dead.append(&mut rejected);
        let batch = values.and_then(|v| rows::assemble(self, v, ingested_at_us, &mut dead));
        (batch, dead)
    }

    /// Decodes the values of `msgs` into records; returns the accepted rows and the rejects.
    fn decode_values<'m>(
        &self,
        msgs: &[&'m Message],
    ) -> (Option<rows::Values<'m>>, Vec<DeadLetter>) {
        if msgs.is_empty() {
            return (None, Vec::new());
        }
        if let Ok(v) = self.decode_run(msgs) {
            return (Some(v), Vec::new());
        }
        // Slow path: one message at a time, so only the bad ones are rejected.
        let mut good: Vec<rows::Values<'m>> = Vec::new();
        let mut dead = Vec::new();
        for m in msgs {
            match self.decode_run(std::slice::from_ref(m)) {
                Ok(v) => good.push(v),
                Err(e) => {
                    let (class, why) = message::classify(&self.ds, m, &e);
                    dead.push(DeadLetter::new(m, class, why, Some(&self.ds.id)));
                }
            }
        }
        (rows::Values::concat(good), dead)
    }

    /// Decodes a run of messages in one go; fails if any message is bad.
    fn decode_run<'m>(
        &self,
        msgs: &[&'m Message],
    ) -> Result<rows::Values<'m>, arrow::error::ArrowError> {
        let debezium = self.ds.feed_format == FeedFormat::DebeziumJson;
        let schema = if debezium { &self.envelope } else { &self.wire };
        let batch_size = msgs.len().max(1);
        let pooled = {
            let mut pool = self.pool.lock().expect("decoder pool");
            let at = pool.iter().position(|(size, _)| *size == batch_size);
            at.map(|i| pool.swap_remove(i).1)
        };
        let mut decoder = match pooled {
            Some(d) => d,
            // Numbers and booleans into text columns keep their exact JSON text.
            None => ReaderBuilder::new(schema.clone())
                .with_batch_size(batch_size)
                .with_coerce_primitive(true)
                .build_decoder()?,
        };
        let mut ops = Vec::with_capacity(msgs.len());
        let mut decoded_msgs = Vec::with_capacity(msgs.len());
        for m in msgs {
            let Some(v) = &m.value else {
                // Tombstone: delete by key, no record.
                ops.push(Op::Delete);
                decoded_msgs.push((*m, false));
                continue;
            };
            let v = shape::payload(v);
            let used = decoder.decode(v)?;
            if used != v.len() || decoder.has_partial_record() {
                return Err(arrow::error::ArrowError::JsonError(
                    "value is not one complete JSON document".into(),
                ));
            }
            decoded_msgs.push((*m, true));
            ops.push(Op::Upsert);
        }
        let batch = decoder.flush()?;
        // Flushed, the decoder is empty again (an error above drops it, state and all).
        // Small ones (the message-by-message slow path) are cheap to make: not kept.
        if batch_size >= MIN_POOLED_BATCH {
            let mut pool = self.pool.lock().expect("decoder pool");
            if pool.len() >= POOLED_DECODERS {
                pool.remove(0);
            }
            pool.push((batch_size, decoder));
        }
        let rows_decoded = decoded_msgs.iter().filter(|(_, d)| *d).count();
        let batch = match batch {
            Some(b) if b.num_rows() == rows_decoded => Some(b),
            None if rows_decoded == 0 => None,
            _ => {
                return Err(arrow::error::ArrowError::JsonError(
                    "a value held more or fewer than one JSON document".into(),
                ));
            }
        };
        let values = if debezium {
            rows::Values::debezium(decoded_msgs, batch, &self.wire, &self.ds.primary_key)?
        } else {
            rows::Values::plain(msgs.to_vec(), ops, batch, &self.wire)
        };
        values.typed(&self.record)
    }
}

/// Null-masks a struct's children by the struct's own nulls (a null `after` has no values).
fn masked_children(s: &StructArray) -> Vec<ArrayRef> {
    match s.logical_nulls() {
        None => s.columns().to_vec(),
        Some(nulls) => s
            .columns()
            .iter()
            .map(|c| {
                let keep = arrow::array::BooleanArray::from(nulls.iter().collect::<Vec<bool>>());
                arrow::compute::nullif(c, &arrow::compute::not(&keep).expect("boolean"))
                    .expect("same length")
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
