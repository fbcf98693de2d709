//! Publishing feed files (`<topic>.jsonl`, as `gdx simulate` writes them) to Kafka.
//!
//! Data flow: each line `{"key": …, "value": … | null, "event_time": …}` → parsed and its
//! value validated with the same decoder ingest uses (so what is refused here would be
//! dead-lettered there) → valid lines produced to the dataset's topic with the key and an
//! `event-time` header, invalid ones reported with their line number → producer queue full
//! and an optional [`LagGate`] give backpressure.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gdx_catalog::Dataset;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::broker::LagGate;
use crate::decode::{DatasetDecoder, Message};

/// Sends one record, waiting (and serving delivery reports) while the producer's queue is
/// full; any other error is returned.
pub fn send_blocking<K, P>(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, K, P>,
) -> rdkafka::error::KafkaResult<()>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((e, r))
                if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
            {
                producer.poll(Duration::from_millis(5));
                record = r;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Why a file could not be published at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// What a publish did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub produced: usize,
    /// (line number, reason) of every line not produced.
    pub rejected: Vec<(usize, String)>,
}

struct Line {
    number: usize,
    key: String,
    value: Option<String>,
    event_time: Option<String>,
}

/// A feed line as written: the value is kept as its exact JSON text (a parse into a JSON
/// tree and back would round long numbers, drop trailing zeros and merge repeated keys,
/// changing what the department sent before ingest could judge it).
#[derive(serde::Deserialize)]
struct Doc<'a> {
    key: Option<serde_json::Value>,
    /// Required: `null` for a delete, never left out.
    #[serde(borrow)]
    value: &'a serde_json::value::RawValue,
    event_time: Option<String>,
}

fn parse_line(number: usize, text: &str) -> Result<Line, String> {
    // A byte-order mark (the first line of a file some editors save) is not part of the line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc: Doc<'_> = serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        let at = e.column();
        match e.classify() {
            Category::Data if e.to_string().starts_with("missing field `value`") => {
                "no \"value\" (null for a delete)".to_owned()
            }
            // (serde's text would quote the value.)
            Category::Data => {
                format!("not a feed line: `key` and `event_time` are text (column {at})")
            }
            _ => format!("not JSON (column {at})"),
        }
    })?;
    let key = match doc.key {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        _ => return Err("no \"key\" string".into()),
    };
    let value = Some(doc.value.get().to_owned()).filter(|v| v != "null");
    Ok(Line {
        number,
        key,
        value,
        event_time: doc.event_time,
    })
}

/// One feed line as the Kafka message it would become at `partition`/`offset` (key, value,
/// `event-time` header) — for loading a feed straight into the lake in benchmarks.
pub fn feed_message(
    topic: &str,
    partition: i32,
    offset: i64,
    text: &str,
) -> Result<Message, String> {
    let line = parse_line(offset as usize + 1, text)?;
    Ok(Message {
        topic: topic.into(),
        partition,
        offset,
        key: Some(line.key.into_bytes()),
        value: line.value.map(String::into_bytes),
        timestamp_ms: None,
        headers: line
            .event_time
            .iter()
            .map(|t| ("event-time", t.as_bytes()))
            .collect(),
    })
}

/// Whether lines are checked before they are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Produce only lines whose value ingest would accept (`gdx publish`).
    Validate,
    /// Produce every well-formed line as it is, the way a department system would; bad
    /// values become dead letters at ingest (`gdx simulate --brokers`, `gdx demo`).
    AsIs,
}

/// Produces every line of `path` to the topic of `ds`.
pub fn publish_file(
    producer: &BaseProducer,
    ds: &Dataset,
    path: &Path,
    mode: Mode,
    gate: Option<&LagGate>,
    progress: &dyn Fn(usize),
) -> Result<Report, Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let validator = (mode == Mode::Validate).then(|| DatasetDecoder::new(Arc::new(ds.clone())));
    let mut report = Report::default();
    let mut chunk: Vec<Line> = Vec::with_capacity(2_000);
    for (i, line) in std::io::BufReader::with_capacity(1 << 20, file)
        .lines()
        .enumerate()
    {
        let text = line.map_err(io)?;
        if text.trim().is_empty() {
            continue;
        }
        match parse_line(i + 1, &text) {
            Ok(l) => chunk.push(l),
            Err(why) => report.rejected.push((i + 1, why)),
        }
        if chunk.len() == 2_000 {
            send_chunk(
                producer,
                ds,
                validator.as_ref(),
                &mut chunk,
                gate,
                &mut report,
            )?;
            progress(report.produced + report.rejected.len());
        }
    }
    send_chunk(
        producer,
        ds,
        validator.as_ref(),
        &mut chunk,
        gate,
        &mut report,
    )?;
    producer.flush(Duration::from_secs(60))?;
    progress(report.produced + report.rejected.len());
    report.rejected.sort();
    Ok(report)
}

fn send_chunk(
    producer: &BaseProducer,
    ds: &Dataset,
    decoder: Option<&DatasetDecoder>,
    chunk: &mut Vec<Line>,
    gate: Option<&LagGate>,
    report: &mut Report,
) -> Result<(), Error> {
    if chunk.is_empty() {
        return Ok(());
    }
    if let Some(g) = gate {
        g.wait(&ds.topic)?;
    }
    let bad: std::collections::HashMap<i64, String> = match decoder {
        None => Default::default(),
        Some(decoder) => {
            let topic: std::sync::Arc<str> = ds.topic.as_str().into();
            let msgs: Vec<Message> = chunk
                .iter()
                .map(|l| Message {
                    topic: topic.clone(),
                    offset: l.number as i64,
                    key: Some(l.key.clone().into_bytes()),
                    value: l.value.clone().map(String::into_bytes),
                    ..Message::default()
                })
                .collect();
            let decoded = decoder.decode(&msgs, 0);
            decoded
                .dead_letters
                .into_iter()
                .map(|d| (d.offset, format!("{}: {}", d.class.as_str(), d.message)))
                .collect()
        }
    };
    for l in chunk.drain(..) {
        if let Some(why) = bad.get(&(l.number as i64)) {
            report.rejected.push((l.number, why.clone()));
            continue;
        }
        let headers = OwnedHeaders::new().insert(Header {
            key: "event-time",
            value: l.event_time.as_deref(),
        });
        let mut record = BaseRecord::<str, str>::to(&ds.topic)
            .key(&l.key)
            .headers(headers);
        if let Some(v) = &l.value {
            record = record.payload(v);
        }
        send_blocking(producer, record)?;
        report.produced += 1;
    }
    producer.poll(Duration::ZERO);
    Ok(())
}
