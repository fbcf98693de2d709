//! The keys of a record, checked before arrow-json reads it: arrow-json would skip a field
//! the catalog does not know and keep the last of two values for one key, both silently.
//!
//! Data flow: a message value → [`payload`] (a leading UTF-8 byte-order mark is not part
//! of the JSON text: RFC 8259 lets a parser ignore it, and gdx does) → [`Shape::flaw`]
//! walks the top-level keys (for Debezium, the envelope's keys and those of `before` and
//! `after`) with serde_json, skipping values unread → an unknown field or a key given twice
//! is a dead letter naming the field (a name that is not an identifier is not shown: it
//! could be a value) → otherwise arrow-json decodes the value. A value serde_json cannot
//! walk is left to arrow-json, whose refusal is classified the usual way.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::message::{BAD_ENVELOPE, ErrorClass};

/// The UTF-8 encoding of U+FEFF.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The JSON text of a value: without a leading byte-order mark.
pub(super) fn payload(value: &[u8]) -> &[u8] {
    value.strip_prefix(BOM).unwrap_or(value)
}

/// The keys a dataset's records may have.
#[derive(Debug, Clone)]
pub(super) struct Shape {
    names: Vec<String>,
    schema_version: u32,
    debezium: bool,
}

/// Keys of a Debezium envelope (the change event's value).
const ENVELOPE: [&str; 8] = [
    "before",
    "after",
    "op",
    "source",
    "ts_ms",
    "ts_us",
    "ts_ns",
    "transaction",
];

#[derive(Debug, PartialEq, Eq)]
enum Flaw {
    /// A field not in the schema; its name when that is an identifier.
    Unknown(Option<String>),
    /// The index of a field given twice.
    Twice(usize),
    EnvelopeUnknown(Option<String>),
    EnvelopeTwice(&'static str),
}

impl Shape {
    pub(super) fn new(names: Vec<String>, schema_version: u32, debezium: bool) -> Self {
        Self {
            names,
            schema_version,
            debezium,
        }
    }

    /// Why the keys of `value` (its [`payload`]) cannot be accepted, if they cannot.
    /// `seen` is scratch space kept between calls.
    pub(super) fn flaw(&self, value: &[u8], seen: &mut Vec<bool>) -> Option<(ErrorClass, String)> {
        // (Values are not checked for UTF-8 here, only keys: arrow-json checks the whole
        // value, and its refusal is classified as `not_utf8`.)
        let mut de = serde_json::Deserializer::from_slice(value);
        let found = if self.debezium {
            de.deserialize_map(EnvelopeKeys {
                names: &self.names,
                seen,
            })
        } else {
            de.deserialize_map(RecordKeys {
                names: &self.names,
                seen,
            })
        };
        // Not walkable (not JSON, not an object): arrow-json refuses it and says why.
        let flaw = found.ok().flatten()?;
        Some(match flaw {
            Flaw::Unknown(Some(name)) => (
                ErrorClass::UnknownField,
                format!(
                    "field `{name}` is not in the catalog's schema (version {}): refused, not \
                     dropped, until the catalog adds it",
                    self.schema_version
                ),
            ),
            Flaw::Unknown(None) => (
                ErrorClass::UnknownField,
                format!(
                    "a field not in the catalog's schema (version {}); its name is not an \
                     identifier and is not shown",
                    self.schema_version
                ),
            ),
            Flaw::Twice(i) => (
                ErrorClass::DuplicateField,
                format!(
                    "field `{}` is given more than once: which value counts is ambiguous",
                    self.names[i]
                ),
            ),
            Flaw::EnvelopeUnknown(name) => (
                ErrorClass::BadEnvelope,
                match name {
                    Some(n) => format!("{BAD_ENVELOPE}: unknown envelope field `{n}`"),
                    None => format!("{BAD_ENVELOPE}: an unknown envelope field (name not shown)"),
                },
            ),
            Flaw::EnvelopeTwice(n) => (
                ErrorClass::BadEnvelope,
                format!("{BAD_ENVELOPE}: envelope field `{n}` is given more than once"),
            ),
        })
    }
}

/// A name shown in a message only when it looks like a field name, not like data.
fn shown(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let identifier = (1..=64).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    identifier.then(|| name.to_owned())
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Walks one record object: every key known, none twice.
struct RecordKeys<'a> {
    names: &'a [String],
    seen: &'a mut Vec<bool>,
}

impl<'de> DeserializeSeed<'de> for RecordKeys<'_> {
    type Value = Option<Flaw>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordKeys<'_> {
    type Value = Option<Flaw>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Flaw>, A::Error> {
        self.seen.clear();
        self.seen.resize(self.names.len(), false);
        let mut flaw = None;
        // Records mostly list their fields in the catalog's order: try the next one first.
        let mut next = 0;
        while let Some(Key(k)) = map.next_key()? {
            if flaw.is_none() {
                let at = match self.names.get(next) {
                    Some(n) if *n == k => Some(next),
                    _ => self.names.iter().position(|n| *n == k),
                };
                if let Some(i) = at {
                    next = i + 1;
                }
                match at {
                    Some(i) if self.seen[i] => flaw = Some(Flaw::Twice(i)),
                    Some(i) => self.seen[i] = true,
                    None => flaw = Some(Flaw::Unknown(shown(&k))),
                }
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(flaw)
    }

    // `before` or `after` may be null.
    fn visit_unit<E>(self) -> Result<Option<Flaw>, E> {
        Ok(None)
    }
}

/// Walks a Debezium envelope and the records in it.
struct EnvelopeKeys<'a> {
    names: &'a [String],
    seen: &'a mut Vec<bool>,
}

impl<'de> Visitor<'de> for EnvelopeKeys<'_> {
    type Value = Option<Flaw>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Debezium envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Flaw>, A::Error> {
        let mut given = [false; ENVELOPE.len()];
        let mut flaw = None;
        while let Some(Key(k)) = map.next_key()? {
            let at = ENVELOPE.iter().position(|n| *n == k);
            if flaw.is_none() {
                match at {
                    Some(i) if given[i] => flaw = Some(Flaw::EnvelopeTwice(ENVELOPE[i])),
                    Some(i) => given[i] = true,
                    None => flaw = Some(Flaw::EnvelopeUnknown(shown(&k))),
                }
            }
            match at {
                Some(0 | 1) => {
                    let inner = map.next_value_seed(RecordKeys {
                        names: self.names,
                        seen: self.seen,
                    })?;
                    flaw = flaw.or(inner);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(flaw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Shape {
        Shape::new(vec!["id".into(), "n".into()], 3, false)
    }

    fn flaw(shape: &Shape, value: &str) -> Option<(ErrorClass, String)> {
        shape.flaw(payload(value.as_bytes()), &mut Vec::new())
    }

    #[test]
    fn known_keys_once_pass_and_the_rest_is_left_to_arrow_json() {
        let s = plain();
        assert_eq!(flaw(&s, r#"{"id":"a","n":1}"#), None);
        assert_eq!(flaw(&s, r#"{"n":{"x":[1,{"y":2}]},"id":null}"#), None);
        assert_eq!(flaw(&s, r#"{"\u0069d":"a"}"#), None, "escaped key");
        // Not objects, not JSON: arrow-json's refusal classifies them.
        for v in ["[1,2]", "12", "{not json", "", "null"] {
            assert_eq!(flaw(&s, v), None, "{v}");
        }
    }

    #[test]
    fn an_unknown_field_and_a_field_twice_are_refused_by_name() {
        let s = plain();
        let (class, why) = flaw(&s, r#"{"id":"a","n":1,"extra_field":"张三"}"#).unwrap();
        assert_eq!(class, ErrorClass::UnknownField);
        assert!(
            why.contains("`extra_field`") && why.contains("version 3"),
            "{why}"
        );
        assert!(!why.contains("张三"));
        let (class, why) = flaw(&s, r#"{"id":"a","11010519491231002X":1}"#).unwrap();
        assert_eq!(class, ErrorClass::UnknownField);
        assert!(
            !why.contains("110105"),
            "a key that may be data is not shown: {why}"
        );
        let (class, why) = flaw(&s, r#"{"id":"a","n":1,"n":2}"#).unwrap();
        assert_eq!(class, ErrorClass::DuplicateField);
        assert!(why.contains("`n`"), "{why}");
        // Scratch space is reset between records.
        let mut seen = Vec::new();
        assert!(s.flaw(br#"{"id":"a"}"#, &mut seen).is_none());
        assert!(s.flaw(br#"{"id":"b"}"#, &mut seen).is_none());
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_json_text() {
        let v = b"\xEF\xBB\xBF{\"id\":\"a\"}";
        assert_eq!(payload(v), br#"{"id":"a"}"#);
        assert_eq!(payload(br#"{"id":"a"}"#), br#"{"id":"a"}"#);
        assert_eq!(plain().flaw(payload(v), &mut Vec::new()), None);
    }

    #[test]
    fn debezium_envelopes_and_their_records_are_checked() {
        let s = Shape::new(vec!["id".into(), "n".into()], 1, true);
        let ok = r#"{"before":null,"after":{"id":"a","n":1},"op":"c","ts_ms":1,"source":{"db":"x","snapshot":"false"},"transaction":null}"#;
        assert_eq!(flaw(&s, ok), None);
        let (class, why) =
            flaw(&s, r#"{"before":null,"after":{"id":"a","zz":1},"op":"c"}"#).unwrap();
        assert_eq!(
            (class, why.contains("`zz`")),
            (ErrorClass::UnknownField, true),
            "{why}"
        );
        let (class, why) = flaw(
            &s,
            r#"{"before":{"id":"a","id":"b"},"after":null,"op":"d"}"#,
        )
        .unwrap();
        assert_eq!(
            (class, why.contains("`id`")),
            (ErrorClass::DuplicateField, true),
            "{why}"
        );
        let (class, why) = flaw(&s, r#"{"after":{"id":"a"},"op":"c","payload":1}"#).unwrap();
        assert_eq!(class, ErrorClass::BadEnvelope);
        assert!(why.contains("`payload`"), "{why}");
        let (class, why) = flaw(&s, r#"{"after":{"id":"a"},"op":"c","op":"d"}"#).unwrap();
        assert_eq!(class, ErrorClass::BadEnvelope);
        assert!(why.contains("`op`"), "{why}");
    }
}
