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
        let mut out = String::with_capacity(64 + self.0.len() * 24);
        self.write_json(&mut out);
        out
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(out, k);
            out.push(':');
            write_value(out, v);
        }
        out.push('}');
    }
}

fn write_value(out: &mut String, v: &V) {
    use std::fmt::Write;
    match v {
        V::S(s) => push_str(out, s),
        V::D(d) => {
            let _ = write!(out, "\"{}\"", d.format("%Y-%m-%d"));
        }
        V::I(n) => {
            let _ = write!(out, "{n}");
        }
        V::M(fen) => {
            let sign = if *fen < 0 { "-" } else { "" };
            let a = fen.unsigned_abs();
            let _ = write!(out, "{sign}{}.{:02}", a / 100, a % 100);
        }
        V::F(f) => {
            let _ = write!(out, "{f}");
        }
        V::B(b) => out.push_str(if *b { "true" } else { "false" }),
        V::T(t) => {
            let _ = write!(out, "\"{}\"", format_time(*t));
        }
        V::Null => out.push_str("null"),
    }
}

/// Local district time, written with the +08:00 offset.
pub(crate) fn format_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+08:00").to_string()
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
    }
}
