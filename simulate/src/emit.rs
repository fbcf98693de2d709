//! Records, events and the JSONL feed format the simulator writes.
//!
//! Data flow: a projection builds a [`Rec`] (ordered field/value pairs named as in the
//! catalog) → the noise step may alter it → [`Rec::to_json`] → an [`Event`] with key and
//! event time → sorted by time → one line `{"key":…,"value":…,"event_time":…}` per event.

use chrono::{NaiveDate, NaiveDateTime};

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    S(String),
    D(NaiveDate),
    I(i64),
    /// Money in fen, written as yuan with two decimals.
    M(i64),
    F(f64),
    B(bool),
    T(NaiveDateTime),
    Null,
}

impl From<&str> for V {
    fn from(s: &str) -> V {
        V::S(s.to_owned())
    }
}
impl From<String> for V {
    fn from(s: String) -> V {
        V::S(s)
    }
}
impl From<NaiveDate> for V {
    fn from(d: NaiveDate) -> V {
        V::D(d)
    }
}
impl<T: Into<V>> From<Option<T>> for V {
    fn from(o: Option<T>) -> V {
        o.map_or(V::Null, Into::into)
    }
}

/// A record: field names in catalog order with their values.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Rec(pub(crate) Vec<(&'static str, V)>);

impl Rec {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Rec(Vec::with_capacity(n))
    }

    pub(crate) fn set(mut self, k: &'static str, v: impl Into<V>) -> Self {
        self.0.push((k, v.into()));
        self
    }

    pub(crate) fn int(self, k: &'static str, v: i64) -> Self {
        self.set(k, V::I(v))
    }

    pub(crate) fn money(self, k: &'static str, fen: i64) -> Self {
        self.set(k, V::M(fen))
    }

    pub(crate) fn get(&self, k: &str) -> Option<&V> {
        self.0.iter().find(|(n, _)| *n == k).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, k: &str) -> Option<&mut V> {
        self.0.iter_mut().find(|(n, _)| *n == k).map(|(_, v)| v)
    }

    /// The Kafka key: the primary key values joined by `|`.
    pub(crate) fn key(&self, pk: &[String]) -> String {
        let mut out = String::new();
        for (i, k) in pk.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            match self.get(k) {
                Some(V::S(s)) => out.push_str(s),
                Some(V::I(n)) => out.push_str(&n.to_string()),
                Some(V::D(d)) => out.push_str(&d.to_string()),
                _ => {}
            }
        }
        out
    }

    pub(crate) fn to_json(&self) -> String {
        // A record of strings, numbers, booleans and nulls always serialises.
        serde_json::to_string(self).expect("a record serialises as JSON")
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        out.push_str(&self.to_json());
    }
}

/// Fields in catalog order, each with its value.
impl serde::Serialize for Rec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Dates and times as text, money in yuan (the shortest decimal that is the fen amount, e.g.
/// 1234.05), and a float that is not a number (NaN, infinity) as null: serde_json writes
/// nothing that is not JSON.
impl serde::Serialize for V {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            V::S(x) => s.serialize_str(x),
            V::D(d) => s.collect_str(&d.format("%Y-%m-%d")),
            V::I(n) => s.serialize_i64(*n),
            V::M(fen) => s.serialize_f64(*fen as f64 / 100.0),
            V::F(f) => s.serialize_f64(*f),
            V::B(b) => s.serialize_bool(*b),
            V::T(t) => s.collect_str(&format_time(*t)),
            V::Null => s.serialize_unit(),
        }
    }
}

/// Local district time, written with the +08:00 offset.
pub(crate) fn format_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+08:00").to_string()
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serialises as JSON"));
}

/// What the noise step did to an event, recorded in the ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Noised {
    pub(crate) kind: &'static str,
    pub(crate) field: &'static str,
}

/// One change event of one dataset.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) time: NaiveDateTime,
    pub(crate) key: String,
    /// The record (or Debezium envelope) as JSON; `None` is a tombstone.
    pub(crate) value: Option<String>,
    pub(crate) noise: Option<Noised>,
}

impl Event {
    pub(crate) fn write_line(&self, out: &mut String) {
        out.push_str("{\"key\":");
        push_str(out, &self.key);
        out.push_str(",\"value\":");
        match &self.value {
            Some(v) => out.push_str(v),
            None => out.push_str("null"),
        }
        out.push_str(",\"event_time\":\"");
        out.push_str(&format_time(self.time));
        out.push_str("\"}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialise_as_json() {
        let d = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let r = Rec::default()
            .set("a", "x\"y\\z\n")
            .set("b", d)
            .int("c", -3)
            .money("m", 123405)
            .money("n", -5)
            .set("f", V::F(1.5))
            .set("t", V::T(d.and_hms_opt(9, 30, 0).unwrap()))
            .set("z", None::<String>);
        let json = r.to_json();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["a"], "x\"y\\z\n");
        assert_eq!(back["b"], "2025-03-01");
        assert_eq!(back["m"].as_f64(), Some(1234.05));
        assert_eq!(back["n"].as_f64(), Some(-0.05));
        assert_eq!(back["t"], "2025-03-01T09:30:00+08:00");
        assert!(back["z"].is_null());
        assert_eq!(r.key(&["a".into(), "c".into()]), "x\"y\\z\n|-3");
        // Floats that are not numbers are nulls, never invalid JSON.
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let json = Rec::default().set("f", V::F(f)).to_json();
            let back: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert!(back["f"].is_null(), "{json}");
        }
        let line = {
            let mut out = String::new();
            Event {
                time: d.and_hms_opt(9, 0, 0).unwrap(),
                key: "k\"1".into(),
                value: Some(r.to_json()),
                noise: None,
            }
            .write_line(&mut out);
            out
        };
        let back: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back["key"], "k\"1");
    }
}
