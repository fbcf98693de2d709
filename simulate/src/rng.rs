//! Deterministic randomness helpers for the simulator.
//!
//! Every stream is a ChaCha8 generator seeded from the run's seed and a label, so each
//! dataset's projection draws the same numbers whatever thread runs it.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

pub(crate) type Rng = ChaCha8Rng;

/// A generator for `label` under `seed` (FNV-1a of the label mixed into the seed).
pub(crate) fn stream(seed: u64, label: &str) -> Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h.rotate_left(17))
}

/// Whether `key` is among the `per_mille` ‰ that a planted case of kind `salt` picks: a
/// hash, not a stream, so the ground truth and every feed agree without sharing a draw.
pub(crate) fn planted(key: u64, salt: u64, per_mille: u64) -> bool {
    let mut x = key ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) % 1000 < per_mille
}

pub(crate) fn chance(rng: &mut Rng, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p.min(1.0))
}

pub(crate) fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Picks from `(item, weight)` pairs.
pub(crate) fn weighted<T: Copy>(rng: &mut Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for (item, w) in items {
        if r < *w {
            return *item;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

pub(crate) fn range(rng: &mut Rng, lo: i64, hi_inclusive: i64) -> i64 {
    if hi_inclusive <= lo {
        lo
    } else {
        rng.random_range(lo..=hi_inclusive)
    }
}

/// A date in `[from, to]`.
pub(crate) fn date_between(rng: &mut Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days();
    from + Duration::days(range(rng, 0, span.max(0)))
}

/// A time during office hours on `d` (08:30–18:00).
pub(crate) fn office_time(rng: &mut Rng, d: NaiveDate) -> NaiveDateTime {
    let secs = range(rng, 8 * 3600 + 1800, 18 * 3600) as u32;
    d.and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).expect("in range"))
}

/// A standard normal sample (Box–Muller).
pub(crate) fn normal(rng: &mut Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub(crate) fn uniform(rng: &mut Rng) -> f64 {
    rng.random::<f64>()
}

pub(crate) fn add_years(d: NaiveDate, years: i32) -> NaiveDate {
    use chrono::Datelike;
    NaiveDate::from_ymd_opt(d.year() + years, d.month(), d.day())
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(d.year() + years, d.month(), 28).expect("valid"))
}

/// Age in whole years on `at`.
pub(crate) fn age_on(birth: NaiveDate, at: NaiveDate) -> i32 {
    use chrono::Datelike;
    let mut age = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}
