//! One dataset's feed under construction, and the noise department systems add to it.
//!
//! Data flow: a projection calls [`Feed::upsert`], [`Feed::change`] (Debezium feeds) or
//! [`Feed::delete`] → with probability `noise` the record is altered the way real feeds are
//! (full-width digits, lowercase x, legacy 15-digit IDs, spaces, wrong check digits, name
//! typos, missing fields) and the alteration is remembered → the key is taken from the
//! record's primary key → [`Event`]s, later sorted by time and written.

use chrono::NaiveDateTime;
use gdx_catalog::{Dataset, FeedFormat, IdKind};

use super::emit::{Event, Noised, Rec, V};
use super::names::TYPO_CHARS;
use super::rng::{Rng, chance, pick, range};

pub(crate) struct Feed<'a> {
    pub(crate) ds: &'a Dataset,
    pub(crate) rng: Rng,
    noise_rng: Rng,
    noise_rate: f64,
    events: Vec<Event>,
}

impl<'a> Feed<'a> {
    pub(crate) fn new(ds: &'a Dataset, rng: Rng, noise_rng: Rng, noise_rate: f64) -> Self {
        Self {
            ds,
            rng,
            noise_rng,
            noise_rate,
            events: Vec::new(),
        }
    }

    pub(crate) fn into_events(self) -> Vec<Event> {
        self.events
    }

    fn is_debezium(&self) -> bool {
        self.ds.feed_format == FeedFormat::DebeziumJson
    }

    /// A full record (plain JSON feeds) — or, for Debezium feeds, a snapshot read (`r`).
    pub(crate) fn upsert(&mut self, time: NaiveDateTime, rec: Rec) {
        if self.is_debezium() {
            self.change(time, 'r', None, Some(rec));
            return;
        }
        let mut rec = rec;
        let noise = self.maybe_noise(&mut rec);
        let key = rec.key(&self.ds.primary_key);
        self.events.push(Event {
            time,
            key,
            value: Some(rec.to_json()),
            noise,
        });
    }

    /// A Debezium change event: `c` create, `u` update, `d` delete, `r` snapshot read.
    pub(crate) fn change(
        &mut self,
        time: NaiveDateTime,
        op: char,
        before: Option<Rec>,
        after: Option<Rec>,
    ) {
        debug_assert!(self.is_debezium());
        let mut after = after;
        let noise = after.as_mut().and_then(|a| self.maybe_noise(a));
        let key_rec = after
            .as_ref()
            .or(before.as_ref())
            .expect("a change has a before or an after");
        let key = key_rec.key(&self.ds.primary_key);
        let mut v = String::with_capacity(512);
        v.push_str("{\"before\":");
        match &before {
            Some(b) => b.write_json(&mut v),
            None => v.push_str("null"),
        }
        v.push_str(",\"after\":");
        match &after {
            Some(a) => a.write_json(&mut v),
            None => v.push_str("null"),
        }
        let ts_ms = time.and_utc().timestamp_millis() - 8 * 3_600_000;
        let (db, table) = (self.ds.id.department(), self.ds.id.name());
        v.push_str(&format!(
            ",\"op\":\"{op}\",\"ts_ms\":{ts_ms},\"source\":{{\"connector\":\"mysql\",\"db\":\"{db}\",\"table\":\"{table}\",\"snapshot\":{}}}}}",
            if op == 'r' { "\"true\"" } else { "\"false\"" }
        ));
        self.events.push(Event {
            time,
            key,
            value: Some(v),
            noise,
        });
    }

    /// A tombstone for the record's key (plain JSON feeds).
    pub(crate) fn delete(&mut self, time: NaiveDateTime, rec: &Rec) {
        let key = rec.key(&self.ds.primary_key);
        self.events.push(Event {
            time,
            key,
            value: None,
            noise: None,
        });
    }

    fn maybe_noise(&mut self, rec: &mut Rec) -> Option<Noised> {
        if !chance(&mut self.noise_rng, self.noise_rate) {
            return None;
        }
        apply_noise(self.ds, rec, &mut self.noise_rng)
    }
}

/// Alters one record the way a real department feed might; returns what was done.
pub(crate) fn apply_noise(ds: &Dataset, rec: &mut Rec, rng: &mut Rng) -> Option<Noised> {
    let mut options: Vec<(&'static str, &'static str)> = Vec::new();
    for (name, v) in &rec.0 {
        let Some(field) = ds.field(name) else {
            continue;
        };
        let V::S(s) = v else { continue };
        match field.id_kind() {
            Some(IdKind::ResidentId) => {
                options.push(("full_width_digits", name));
                options.push(("surrounding_spaces", name));
                options.push(("bad_check_digit", name));
                if s.ends_with('X') {
                    options.push(("lowercase_x", name));
                }
                if &s[6..8] == "19" {
                    options.push(("legacy_15_digit_id", name));
                }
            }
            Some(IdKind::Uscc) => {
                options.push(("lowercase_letters", name));
                options.push(("bad_check_digit", name));
            }
            Some(IdKind::BankCard) => options.push(("bad_check_digit", name)),
            _ => {}
        }
        if field.pii == Some(gdx_catalog::PiiKind::Name) && s.chars().count() >= 2 {
            options.push(("name_typo", name));
        }
        if field.nullable && !ds.primary_key.contains(&field.name) {
            options.push(("missing_field", name));
        }
    }
    if options.is_empty() {
        return None;
    }
    let (kind, field) = *pick(rng, &options);
    let v = rec.get_mut(field)?;
    let V::S(s) = v else { return None };
    let new = match kind {
        "full_width_digits" => s
            .chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect(),
        "surrounding_spaces" => format!(" {s}  "),
        "lowercase_x" | "lowercase_letters" => s.to_lowercase(),
        "legacy_15_digit_id" => format!("{}{}", &s[..6], &s[8..17]),
        "bad_check_digit" => {
            let last = s.chars().last()?;
            let replacement = if last == '0' {
                '1'
            } else if last.is_ascii_digit() {
                char::from(last as u8 - 1)
            } else {
                '0'
            };
            format!("{}{replacement}", &s[..s.len() - 1])
        }
        "name_typo" => {
            let mut chars: Vec<char> = s.chars().collect();
            let i = range(rng, 1, chars.len() as i64 - 1) as usize;
            let mut c = *pick(rng, TYPO_CHARS);
            if c == chars[i] {
                c = '玮';
            }
            chars[i] = c;
            chars.into_iter().collect()
        }
        "missing_field" => {
            *v = V::Null;
            return Some(Noised { kind, field });
        }
        _ => return None,
    };
    *v = V::S(new);
    Some(Noised { kind, field })
}

/// A time during office hours on `d`, spread deterministically by a counter `n`.
pub(crate) fn at(d: chrono::NaiveDate, n: u64) -> NaiveDateTime {
    let secs = 8 * 3600 + 1800 + (n.wrapping_mul(7919) % (9 * 3600)) as u32;
    d.and_time(
        chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).expect("within a day"),
    )
}
