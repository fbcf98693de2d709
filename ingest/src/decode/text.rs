//! Typed fields read off the wire as text, parsed by gdx's own rules: nothing is coerced
//! lossily, and a refusal names the field and the rule, never the value.
//!
//! Data flow: arrow-json decodes numbers, money, dates and timestamps into text columns (a
//! JSON number keeps its exact text; a JSON string its characters) → [`parse_column`] turns
//! each column into its stored type with these rules:
//!
//! - integers (`int32`, `int64`): a JSON number, or a string that is exactly one, whose value
//!   is whole (`2`, `2.0`, `2e3`) and in range; `1.9` is refused, never truncated;
//! - `float64`: a JSON number (or a string that is exactly one) that is finite as a double;
//! - `money` (yuan with fen, `Decimal128(18, 2)`): at most two decimal places that are not
//!   zero (`12.30` and `12.300` are 12.30; `12.345` is refused, never rounded), at most 16
//!   digits before the point;
//! - `date32`: `YYYY-MM-DD` exactly, a real calendar date; an empty string is refused (send
//!   null for "no date");
//! - `timestamp`: RFC 3339 with an offset (a time without one would be read in some zone
//!   silently), at most microsecond precision.
//!
//! A number in a string follows the JSON number grammar: `"123"` is accepted, `" 123"`,
//! `"+5"`, `"012"`, `"1,000"` and `"NaN"` are not.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::DataType;

/// Why one value does not fit its field (the rule, never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    NotANumber,
    NotWhole,
    OutOfRange,
    TooManyDecimals,
    NotADate,
    EmptyDate,
    NotATimestamp,
    BelowMicrosecond,
}

impl Refusal {
    /// The rule broken, for a field of type `ty`.
    pub(super) fn rule(self, ty: &DataType) -> String {
        let ty = type_name(ty);
        match self {
            Refusal::NotANumber => {
                format!("not a number ({ty}: a JSON number, or a string that is exactly one)")
            }
            Refusal::NotWhole => {
                format!("not a whole number ({ty}: fractions are refused, never truncated)")
            }
            Refusal::OutOfRange => format!("out of range for {ty}"),
            Refusal::TooManyDecimals => {
                "money has at most 2 decimal places (fen): more are refused, never rounded".into()
            }
            Refusal::NotADate => "expected a date (YYYY-MM-DD)".into(),
            Refusal::EmptyDate => "empty text is not a date (send null when there is none)".into(),
            Refusal::NotATimestamp => {
                "expected an RFC 3339 timestamp with an offset (e.g. +08:00 or Z)".into()
            }
            Refusal::BelowMicrosecond => {
                "a timestamp is kept to the microsecond: finer digits are refused, never cut".into()
            }
        }
    }
}

fn type_name(ty: &DataType) -> &'static str {
    match ty {
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::Float64 => "float64",
        DataType::Decimal128(..) => "money",
        DataType::Date32 => "date32",
        _ => "timestamp",
    }
}

/// Whether a field of this stored type travels as text on the wire.
pub(super) fn read_as_text(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Date32
            | DataType::Timestamp(..)
    )
}

/// Parses a text column into `ty`; the first refused row and why.
pub(super) fn parse_column(
    text: &StringArray,
    ty: &DataType,
) -> Result<ArrayRef, (usize, Refusal)> {
    fn each<T>(
        text: &StringArray,
        f: impl Fn(&str) -> Result<T, Refusal>,
    ) -> Result<Vec<Option<T>>, (usize, Refusal)> {
        text.iter()
            .enumerate()
            .map(|(i, v)| v.map(&f).transpose().map_err(|r| (i, r)))
            .collect()
    }
    Ok(match ty {
        DataType::Int32 => Arc::new(Int32Array::from(each(text, |s| {
            i32::try_from(whole(s, 0)?).map_err(|_| Refusal::OutOfRange)
        })?)),
        DataType::Int64 => Arc::new(Int64Array::from(each(text, |s| {
            i64::try_from(whole(s, 0)?).map_err(|_| Refusal::OutOfRange)
        })?)),
        DataType::Float64 => Arc::new(Float64Array::from(each(text, float)?)),
        DataType::Decimal128(precision, scale) => {
            let (p, s) = (*precision, *scale);
            let limit = 10i128.pow(u32::from(p));
            let values = each(text, |v| {
                let n = whole(v, s as u32).map_err(|r| match r {
                    Refusal::NotWhole => Refusal::TooManyDecimals,
                    other => other,
                })?;
                if n.abs() >= limit {
                    return Err(Refusal::OutOfRange);
                }
                Ok(n)
            })?;
            Arc::new(
                Decimal128Array::from(values)
                    .with_precision_and_scale(p, s)
                    .expect("the catalog's money type is a valid decimal"),
            )
        }
        DataType::Date32 => Arc::new(Date32Array::from(each(text, date)?)),
        DataType::Timestamp(_, tz) => Arc::new(
            TimestampMicrosecondArray::from(each(text, timestamp)?).with_timezone_opt(tz.clone()),
        ),
        other => unreachable!("{other} is not read as text"),
    })
}

/// A JSON number taken apart: sign, its digits (integer and fraction together, no leading
/// zeros), and the power of ten they are scaled by.
struct Number {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

/// Parses the JSON number grammar exactly: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number(s: &str) -> Result<Number, Refusal> {
    let b = s.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int = &b[int_start..i];
    if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
        return Err(Refusal::NotANumber);
    }
    let mut frac: &[u8] = &[];
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = &b[start..i];
        if frac.is_empty() {
            return Err(Refusal::NotANumber);
        }
    }
    let mut exponent: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            // Saturates: an exponent this large is out of every range anyway.
            exponent = exponent
                .saturating_mul(10)
                .saturating_add(i64::from(b[i] - b'0'));
            i += 1;
        }
        if i == start {
            return Err(Refusal::NotANumber);
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    if i != b.len() {
        return Err(Refusal::NotANumber);
    }
    let mut digits: Vec<u8> = int.iter().chain(frac).map(|d| d - b'0').collect();
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading.min(digits.len().saturating_sub(1)));
    Ok(Number {
        negative,
        digits,
        exponent: exponent.saturating_sub(frac.len() as i64),
    })
}

/// The value of a JSON number times 10^`scale`, when that is a whole number that fits i128.
fn whole(s: &str, scale: u32) -> Result<i128, Refusal> {
    // The usual case, a plain integer: no need to take it apart.
    let b = s.as_bytes();
    let body = b.strip_prefix(b"-").unwrap_or(b);
    if scale == 0
        && (1..=18).contains(&body.len())
        && (body[0] != b'0' || body.len() == 1)
        && body.iter().all(u8::is_ascii_digit)
    {
        return s
            .parse::<i64>()
            .map(i128::from)
            .map_err(|_| Refusal::NotANumber);
    }
    let n = number(s)?;
    let shift = n.exponent.saturating_add(i64::from(scale));
    let mut digits = n.digits.as_slice();
    if shift < 0 {
        // The last -shift digits must be zeros (beyond the first digit, all digits are).
        let cut = usize::try_from(-shift).unwrap_or(usize::MAX);
        let keep = digits.len().saturating_sub(cut);
        if digits[keep..].iter().any(|d| *d != 0) {
            return Err(Refusal::NotWhole);
        }
        digits = &digits[..keep];
    }
    let mut v: i128 = 0;
    for d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(*d)))
            .ok_or(Refusal::OutOfRange)?;
    }
    if shift > 0 && v != 0 {
        let pow = u32::try_from(shift).map_err(|_| Refusal::OutOfRange)?;
        v = 10i128
            .checked_pow(pow)
            .and_then(|p| v.checked_mul(p))
            .ok_or(Refusal::OutOfRange)?;
    }
    Ok(if n.negative { -v } else { v })
}

fn float(s: &str) -> Result<f64, Refusal> {
    number(s)?;
    let v: f64 = s.parse().map_err(|_| Refusal::NotANumber)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Refusal::OutOfRange)
    }
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date(s: &str) -> Result<i32, Refusal> {
    if s.is_empty() {
        return Err(Refusal::EmptyDate);
    }
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(Refusal::NotADate);
    }
    let digits = |r: std::ops::Range<usize>| -> Result<u32, Refusal> {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit()
                .then(|| n * 10 + u32::from(c - b'0'))
                .ok_or(Refusal::NotADate)
        })
    };
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, m, d).ok_or(Refusal::NotADate)?;
    Ok(chrono::Datelike::num_days_from_ce(&date) - EPOCH_DAYS_FROM_CE)
}

fn timestamp(s: &str) -> Result<i64, Refusal> {
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| Refusal::NotATimestamp)?;
    if t.timestamp_subsec_nanos() % 1_000 != 0 {
        return Err(Refusal::BelowMicrosecond);
    }
    Ok(t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Decimal128Type, TimeUnit};

    fn one(s: &str, ty: &DataType) -> Result<ArrayRef, Refusal> {
        parse_column(&StringArray::from(vec![Some(s)]), ty).map_err(|(_, r)| r)
    }

    fn int(s: &str) -> Result<i64, Refusal> {
        one(s, &DataType::Int64).map(|a| a.as_primitive::<arrow::datatypes::Int64Type>().value(0))
    }

    fn money(s: &str) -> Result<i128, Refusal> {
        one(s, &DataType::Decimal128(18, 2)).map(|a| a.as_primitive::<Decimal128Type>().value(0))
    }

    #[test]
    fn integers_are_whole_and_in_range_or_refused() {
        for (s, v) in [
            ("0", 0),
            ("-0", 0),
            ("123", 123),
            ("-45", -45),
            ("2.0", 2),
            ("2.000", 2),
            ("2e3", 2000),
            ("2E+3", 2000),
        ] {
            assert_eq!(int(s), Ok(v), "{s}");
        }
        assert_eq!(int("1.9"), Err(Refusal::NotWhole));
        assert_eq!(int("25e-1"), Err(Refusal::NotWhole));
        assert_eq!(int("1e-400"), Err(Refusal::NotWhole));
        assert_eq!(int("0e-400"), Ok(0));
        assert_eq!(int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(int("9223372036854775808"), Err(Refusal::OutOfRange));
        assert_eq!(int("1e400"), Err(Refusal::OutOfRange));
        assert_eq!(
            int("123456789012345678901234567890123456789012"),
            Err(Refusal::OutOfRange)
        );
        assert_eq!(
            one("3000000000", &DataType::Int32).map(|_| ()),
            Err(Refusal::OutOfRange)
        );
        for bad in [
            "", " 1", "1 ", "+5", "012", "1.", ".5", "1e", "1,000", "NaN", "inf", "0x10", "true",
            "１２",
        ] {
            assert_eq!(int(bad), Err(Refusal::NotANumber), "{bad:?}");
        }
    }

    #[test]
    fn money_keeps_fen_and_never_rounds() {
        assert_eq!(money("1234.05"), Ok(123_405));
        assert_eq!(money("12.3"), Ok(1_230));
        assert_eq!(money("12.300"), Ok(1_230));
        assert_eq!(money("-0.05"), Ok(-5));
        assert_eq!(money("7"), Ok(700));
        assert_eq!(money("1.5e2"), Ok(15_000));
        assert_eq!(money("12.345"), Err(Refusal::TooManyDecimals));
        assert_eq!(money("0.001"), Err(Refusal::TooManyDecimals));
        assert_eq!(money("9999999999999999.99"), Ok(999_999_999_999_999_999));
        assert_eq!(money("10000000000000000"), Err(Refusal::OutOfRange));
        assert_eq!(money("12,30"), Err(Refusal::NotANumber));
    }

    #[test]
    fn floats_are_finite_json_numbers() {
        let f = |s| {
            one(s, &DataType::Float64)
                .map(|a| a.as_primitive::<arrow::datatypes::Float64Type>().value(0))
        };
        assert_eq!(f("89.5"), Ok(89.5));
        assert_eq!(f("-1e-3"), Ok(-0.001));
        assert_eq!(f("1e400"), Err(Refusal::OutOfRange));
        assert_eq!(f("NaN"), Err(Refusal::NotANumber));
        assert_eq!(f("Infinity"), Err(Refusal::NotANumber));
    }

    #[test]
    fn dates_and_timestamps_are_strict() {
        let d = |s| {
            one(s, &DataType::Date32)
                .map(|a| a.as_primitive::<arrow::datatypes::Date32Type>().value(0))
        };
        assert_eq!(d("1970-01-02"), Ok(1));
        assert_eq!(d("1949-12-31"), Ok(-7306));
        assert_eq!(d(""), Err(Refusal::EmptyDate));
        for bad in [
            "19491231",
            "1949-2-3",
            "1949-13-01",
            "1949-02-30",
            " 1949-12-31",
            "1949/12/31",
            "1949-12-31T00:00:00Z",
        ] {
            assert_eq!(d(bad), Err(Refusal::NotADate), "{bad:?}");
        }
        let ty = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let t = |s| {
            one(s, &ty).map(|a| {
                a.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                    .value(0)
            })
        };
        assert_eq!(t("1970-01-01T08:00:01+08:00"), Ok(1_000_000));
        assert_eq!(t("1970-01-01T00:00:00.000001Z"), Ok(1));
        assert_eq!(t("1970-01-01T00:00:00.000001000Z"), Ok(1));
        assert_eq!(
            t("1970-01-01T00:00:00.0000001Z"),
            Err(Refusal::BelowMicrosecond)
        );
        for bad in [
            "1970-01-01T08:00:01",
            "1970-01-01 08:00:01",
            "",
            "1735691400000",
        ] {
            assert_eq!(t(bad), Err(Refusal::NotATimestamp), "{bad:?}");
        }
        assert_eq!(
            one(" ", &ty).map(|a| a.data_type().clone()).unwrap_err(),
            Refusal::NotATimestamp
        );
    }

    #[test]
    fn nulls_stay_null_and_the_first_refused_row_is_named() {
        let col = StringArray::from(vec![Some("1"), None, Some("x"), Some("y")]);
        assert_eq!(
            parse_column(&col, &DataType::Int32).unwrap_err(),
            (2, Refusal::NotANumber)
        );
        let ok = parse_column(&StringArray::from(vec![None, Some("5")]), &DataType::Int32).unwrap();
        assert!(ok.is_null(0) && ok.as_primitive::<arrow::datatypes::Int32Type>().value(1) == 5);
    }

    #[test]
    fn rules_name_no_value() {
        for r in [
            Refusal::NotANumber,
            Refusal::NotWhole,
            Refusal::OutOfRange,
            Refusal::TooManyDecimals,
            Refusal::NotADate,
            Refusal::EmptyDate,
            Refusal::NotATimestamp,
            Refusal::BelowMicrosecond,
        ] {
            let text = r.rule(&DataType::Int32);
            assert!(!text.is_empty() && !text.contains("1.9"), "{text}");
        }
    }
}
