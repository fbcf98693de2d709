//! Smart scenarios: what window clerks, civil-affairs staff and residents see of gdx, built
//! on the lake and served by the exchange under the same grants, policy and audit as every
//! read.
//!
//! Data flow: the lake's `current` tables, read whole by the operator ([`gdx_lake::lookup::OperatorScan`])
//! whenever their Delta version moves → a scenario's in-memory register (e.g. the active
//! property certificates, [`certificate`]) swapped whole → the exchange's scenario endpoints
//! answer from it, per call, without planning a query.

pub mod allowance;
pub mod certificate;

/// Hundredths (fen, or hundredths of a square metre) of a non-negative decimal written with
/// at most two decimals, exactly as written (full-width digits accepted; no rounding).
pub fn hundredths(raw: &str) -> Option<i64> {
    let t = gdx_catalog::normalize_text(raw);
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !digits(whole) || frac.len() > 2 || !digits(frac) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}
