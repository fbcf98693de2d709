//! Messages in, dead letters out, and the classification of why a message was refused.

use std::sync::Arc;

use arrow::error::ArrowError;
use gdx_catalog::{Dataset, DatasetId, FeedFormat};
use serde_json::Value;

/// One Kafka message as ingest sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Shared by the messages of a topic (one allocation per topic, not per message).
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Kafka timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    pub headers: Headers,
}

/// A message's headers, in order, stored flat: names and values in one buffer, and where
/// each ends (two allocations per message however many headers it has).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    bytes: Vec<u8>,
    /// Per header: end of its name, end of its value, in `bytes`.
    ends: Vec<(u32, u32)>,
}

impl Headers {
    pub fn with_capacity(headers: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(headers),
        }
    }

    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.bytes.extend_from_slice(name.as_bytes());
        let name_end = self.bytes.len() as u32;
        self.bytes.extend_from_slice(value);
        self.ends.push((name_end, self.bytes.len() as u32));
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// `(name, value)` as bytes, in order.
    fn spans(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0usize;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (n, v) = (name_end as usize, value_end as usize);
            let span = (&self.bytes[start..n], &self.bytes[n..v]);
            start = v;
            span
        })
    }

    /// `(name, value)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.spans()
            .map(|(n, v)| (std::str::from_utf8(n).expect("pushed as str"), v))
    }

    /// The first header called `name` (names compared as bytes: no UTF-8 check on the way).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.spans()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| v)
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Headers::default();
        for (n, v) in iter {
            h.push(n.as_ref(), v.as_ref());
        }
        h
    }
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn key_str(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }
}

/// The highest offset per partition of a run of messages.
pub fn last_offsets(msgs: &[Message]) -> std::collections::HashMap<i32, i64> {
    let mut last = std::collections::HashMap::new();
    for m in msgs {
        let e = last.entry(m.partition).or_insert(m.offset);
        *e = (*e).max(m.offset);
    }
    last
}

/// Why a message could not be accepted (a stable, queryable class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    NotJson,
    WrongType,
    MissingField,
    MissingKey,
    BadCheckDigit,
    BadIdentifier,
    Oversized,
    UnknownTopic,
    BadEnvelope,
    /// The event time is malformed, out of range, or far in the future.
    BadEventTime,
    /// A field the dataset's schema does not have (refused, never dropped).
    UnknownField,
    /// One field given twice in a record.
    DuplicateField,
    /// The value is not UTF-8 text (e.g. GBK-encoded).
    NotUtf8,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::NotJson => "not_json",
            ErrorClass::WrongType => "wrong_type",
            ErrorClass::MissingField => "missing_field",
            ErrorClass::MissingKey => "missing_key",
            ErrorClass::BadCheckDigit => "bad_check_digit",
            ErrorClass::BadIdentifier => "bad_identifier",
            ErrorClass::Oversized => "oversized",
            ErrorClass::UnknownTopic => "unknown_topic",
            ErrorClass::BadEnvelope => "bad_envelope",
            ErrorClass::BadEventTime => "bad_event_time",
            ErrorClass::UnknownField => "unknown_field",
            ErrorClass::DuplicateField => "duplicate_field",
            ErrorClass::NotUtf8 => "not_utf8",
        }
    }
}

/// A message that could not be accepted, with everything needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Headers,
    pub timestamp_ms: Option<i64>,
    pub class: ErrorClass,
    /// What is wrong; names fields, never their values.
    pub message: String,
    pub dataset: Option<String>,
}

impl DeadLetter {
    pub fn new(
        m: &Message,
        class: ErrorClass,
        message: String,
        dataset: Option<&DatasetId>,
    ) -> Self {
        DeadLetter {
            topic: m.topic.to_string(),
            partition: m.partition,
            offset: m.offset,
            key: m.key.clone(),
            value: m.value.clone(),
            headers: m.headers.clone(),
            timestamp_ms: m.timestamp_ms,
            class,
            message,
            dataset: dataset.map(ToString::to_string),
        }
    }
}

/// Prefix of decoder errors about a Debezium envelope.
pub(super) const BAD_ENVELOPE: &str = "bad Debezium envelope";

/// Finds out why one message failed to decode. Runs only on the slow path, per bad message.
pub(super) fn classify(ds: &Dataset, m: &Message, err: &ArrowError) -> (ErrorClass, String) {
    let Some(bytes) = &m.value else {
        return (ErrorClass::MissingKey, "tombstone without a key".into());
    };
    let bytes = super::shape::payload(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        return (
            ErrorClass::NotUtf8,
            format!(
                "value is not UTF-8 text (the first invalid byte is at {}; GBK or another \
                 encoding?)",
                e.valid_up_to()
            ),
        );
    }
    // gdx's own parse of a typed field failed (so the value is JSON): it names the field and
    // the rule.
    if let ArrowError::ParseError(why) = err
        && why.starts_with("field `")
    {
        return (ErrorClass::WrongType, why.clone());
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return (
                ErrorClass::NotJson,
                format!("value is not JSON: {}", redact(&e.to_string())),
            );
        }
    };
    let record = if ds.feed_format == FeedFormat::DebeziumJson {
        let op = value.get("op").and_then(Value::as_str);
        let side = match op {
            Some("c" | "u" | "r") => "after",
            Some("d") => "before",
            Some(_) => {
                return (
                    ErrorClass::BadEnvelope,
                    format!("{BAD_ENVELOPE}: `op` is not one of c, u, r, d"),
                );
            }
            None => return (ErrorClass::BadEnvelope, format!("{BAD_ENVELOPE}: no `op`")),
        };
        match value.get(side) {
            Some(r @ Value::Object(_)) => r.clone(),
            _ => {
                return (
                    ErrorClass::BadEnvelope,
                    format!(
                        "{BAD_ENVELOPE}: op {:?} needs an object in `{side}`",
                        op.unwrap_or("")
                    ),
                );
            }
        }
    } else {
        value
    };
    let Value::Object(obj) = &record else {
        return (ErrorClass::WrongType, "value is not a JSON object".into());
    };
    for k in &ds.primary_key {
        if obj.get(k).is_none_or(Value::is_null) {
            return (
                ErrorClass::MissingKey,
                format!("primary key field `{k}` is missing"),
            );
        }
    }
    for f in ds.fields.iter().filter(|f| !f.nullable) {
        if obj.get(&f.name).is_none_or(Value::is_null) {
            return (
                ErrorClass::MissingField,
                format!("required field `{}` is missing", f.name),
            );
        }
    }
    if let Some(why) = mismatch(ds, obj) {
        return (ErrorClass::WrongType, why);
    }
    let text = err.to_string();
    if text.contains(BAD_ENVELOPE) {
        return (ErrorClass::BadEnvelope, text);
    }
    (ErrorClass::WrongType, redact(&text))
}

/// The first field whose JSON kind its type never takes: an object or array for a scalar,
/// anything but `true`/`false` for a boolean. (Text fields take numbers and booleans as
/// their exact text; numbers, money, dates and times are parsed from text by gdx's rules.)
fn mismatch(ds: &Dataset, obj: &serde_json::Map<String, Value>) -> Option<String> {
    ds.fields.iter().find_map(|f| {
        let v = obj.get(&f.name)?;
        let kind = match v {
            Value::Object(_) => "an object",
            Value::Array(_) => "an array",
            Value::String(_) if f.ty == gdx_catalog::FieldType::Boolean => "text",
            Value::Number(_) if f.ty == gdx_catalog::FieldType::Boolean => "a number",
            _ => return None,
        };
        Some(format!(
            "field `{}`: expected {}, got {kind}",
            f.name,
            match f.ty {
                gdx_catalog::FieldType::Boolean => "true or false",
                other => other.as_str(),
            }
        ))
    })
}

/// Decoder messages may quote the offending value; keep only the part before any quote so a
/// dead-letter message never repeats personal data (the raw bytes are kept separately).
fn redact(text: &str) -> String {
    match text.find(['"', '\'']) {
        Some(i) if text[..i].contains("field") || i > 20 => format!("{}…", text[..i].trim_end()),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod headers_tests {
    use super::Headers;

    #[test]
    fn headers_keep_order_empty_and_binary_values_and_the_first_of_a_name_wins() {
        let h: Headers = [
            ("event-id", &b"e-1"[..]),
            ("empty", b""),
            ("bin", &[0xff, 0x00]),
            ("event-id", b"e-2"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [
                ("event-id", &b"e-1"[..]),
                ("empty", b""),
                ("bin", &[0xff, 0x00]),
                ("event-id", b"e-2")
            ]
        );
        assert_eq!(h.get("event-id"), Some(&b"e-1"[..]));
        assert_eq!(h.get("empty"), Some(&b""[..]));
        assert_eq!(h.get("missing"), None);
        assert!(!h.is_empty() && Headers::default().is_empty());
    }
}
