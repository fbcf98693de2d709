//! Column transforms: what a reader sees of a column's values.
//!
//! Data flow: a column's [`ColumnInfo`] and the policy's [`ColumnRule`] → [`Transform::resolve`]
//! checks that the rule fits the column (a mask needs a PII kind or a date, a pseudonym
//! needs text) → [`Transform::apply`] turns each batch's array into an array of the same
//! type: masked text, pseudonyms, dates truncated to their year, or nulls. The type never
//! changes, so what `DESCRIBE` and pgwire report is what the rows carry.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray,
    TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, TimeUnit};
use datafusion::arrow::error::ArrowError;
use gdx_catalog::pseudonym::Pseudonymizer;
use gdx_catalog::{PiiKind, mask};

use super::{ColumnInfo, ColumnRule, PolicyError};

/// One visible column's transform, checked against its type and grading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transform {
    Raw,
    /// Text masked by the rule of a PII kind.
    Mask(PiiKind),
    /// Values that no mask fits (a number with a PII kind): nulls.
    Null,
    /// Keyed pseudonyms in a domain (the PII kind, or the column's name).
    Pseudonym {
        kind: Option<PiiKind>,
        domain: String,
    },
    /// Dates and timestamps truncated to the first day of their year.
    Year,
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
    )
}

impl Transform {
    /// The transform of `rule` on `col` of `table`; `None` when the column is removed.
    pub(crate) fn resolve(
        table: &str,
        col: &ColumnInfo,
        rule: ColumnRule,
    ) -> Result<Option<Self>, PolicyError> {
        let refuse = |why| PolicyError::Rule {
            table: table.to_owned(),
            column: col.name.clone(),
            rule: rule.as_str(),
            why,
        };
        let t = &col.data_type;
        Ok(Some(match rule {
            ColumnRule::Remove => return Ok(None),
            ColumnRule::Raw => Transform::Raw,
            ColumnRule::Mask if is_temporal(t) => Transform::Year,
            ColumnRule::Mask => match col.grade.pii {
                Some(kind) if is_text(t) => Transform::Mask(kind),
                Some(_) => Transform::Null,
                None => return Err(refuse("it has no PII kind to choose a mask by")),
            },
            ColumnRule::Pseudonym if is_text(t) => Transform::Pseudonym {
                kind: col.grade.pii,
                domain: col
                    .grade
                    .pii
                    .map(|k| k.as_str().to_owned())
                    .unwrap_or_else(|| col.name.clone()),
            },
            ColumnRule::Pseudonym => return Err(refuse("pseudonyms are made of text")),
            ColumnRule::Year if is_temporal(t) => Transform::Year,
            ColumnRule::Year => return Err(refuse("it holds no date")),
        }))
    }

    /// A short name for `EXPLAIN` (never a value).
    pub(crate) fn label(&self) -> Option<&'static str> {
        match self {
            Transform::Raw => None,
            Transform::Mask(_) => Some("mask"),
            Transform::Null => Some("null"),
            Transform::Pseudonym { .. } => Some("pseudonym"),
            Transform::Year => Some("year"),
        }
    }

    pub(crate) fn apply(
        &self,
        array: &ArrayRef,
        pseudonyms: Option<&Pseudonymizer>,
    ) -> Result<ArrayRef, ArrowError> {
        match self {
            Transform::Raw => Ok(array.clone()),
            Transform::Mask(kind) => map_text(array, &|v| mask(*kind, v)),
            Transform::Null => Ok(new_null_array(array.data_type(), array.len())),
            Transform::Pseudonym { kind, domain } => {
                let p = pseudonyms.ok_or_else(|| {
                    ArrowError::InvalidArgumentError("no pseudonym key is configured".into())
                })?;
                match kind {
                    Some(k) => map_text(array, &|v| p.pseudonym(*k, v)),
                    None => map_text(array, &|v| p.pseudonym_in(domain, v)),
                }
            }
            Transform::Year => year(array),
        }
    }
}

fn map_text(array: &ArrayRef, f: &dyn Fn(&str) -> String) -> Result<ArrayRef, ArrowError> {
    Ok(match array.data_type() {
        DataType::Utf8 => Arc::new(
            array
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(f))
                .collect::<StringArray>(),
        ),
        DataType::LargeUtf8 => Arc::new(
            array
                .as_string::<i64>()
                .iter()
                .map(|v| v.map(f))
                .collect::<LargeStringArray>(),
        ),
        DataType::Utf8View => Arc::new(
            array
                .as_string_view()
                .iter()
                .map(|v| v.map(f))
                .collect::<StringViewArray>(),
        ),
        other => {
            let text = cast(array, &DataType::Utf8)?;
            cast(&map_text(&text, f)?, other)?
        }
    })
}

/// The district's civil time: a timestamp's year is the year in UTC+8.
fn district() -> chrono::FixedOffset {
    crate::sql::time_travel::district_offset()
}

fn year(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    Ok(match array.data_type() {
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            Arc::new(a.unary_opt::<_, Date32Type>(|d| {
                let date = epoch.checked_add_signed(chrono::Duration::days(d as i64))?;
                let jan1 = NaiveDate::from_ymd_opt(date.year(), 1, 1)?;
                Some((jan1 - epoch).num_days() as i32)
            }))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let a = array.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            let offset = if tz.is_some() {
                district()
            } else {
                chrono::FixedOffset::east_opt(0).expect("UTC")
            };
            let out: TimestampMicrosecondArray = a.unary_opt(|us| {
                let t = DateTime::from_timestamp_micros(us)?.with_timezone(&offset);
                let jan1 = offset.with_ymd_and_hms(t.year(), 1, 1, 0, 0, 0).single()?;
                Some(jan1.timestamp_micros())
            });
            Arc::new(out.with_timezone_opt(tz.clone()))
        }
        DataType::Date64 => {
            let d = cast(array, &DataType::Date32)?;
            cast(&year(&d)?, &DataType::Date64)?
        }
        DataType::Timestamp(_, tz) => {
            let us = cast(
                array,
                &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            )?;
            cast(&year(&us)?, array.data_type())?
        }
        _ => new_null_array(array.data_type(), array.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ColumnGrade;
    use datafusion::arrow::array::Date32Array;
    use gdx_catalog::Level;

    fn col(name: &str, t: DataType, pii: Option<PiiKind>) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: t,
            grade: ColumnGrade {
                level: Level::SENSITIVE,
                category: None,
                pii,
            },
        }
    }

    #[test]
    fn masks_keep_the_type_and_hide_the_value() {
        let c = col("resident_id", DataType::Utf8, Some(PiiKind::IdNumber));
        let t = Transform::resolve("t", &c, ColumnRule::Mask)
            .unwrap()
            .unwrap();
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("11010519491231002X"), None]));
        let m = t.apply(&a, None).unwrap();
        assert_eq!(m.data_type(), &DataType::Utf8);
        assert_eq!(m.as_string::<i32>().value(0), "110105********002X");
        assert!(m.is_null(1));
        let v: ArrayRef = Arc::new(StringViewArray::from(vec!["13812341234"]));
        let p = Transform::Mask(PiiKind::Phone).apply(&v, None).unwrap();
        assert_eq!(p.data_type(), &DataType::Utf8View);
        assert_eq!(p.as_string_view().value(0), "138****1234");
    }

    #[test]
    fn dates_keep_their_year_and_rules_that_do_not_fit_are_refused() {
        let c = col("birth_date", DataType::Date32, Some(PiiKind::BirthDate));
        let t = Transform::resolve("t", &c, ColumnRule::Mask)
            .unwrap()
            .unwrap();
        assert_eq!(t, Transform::Year);
        let d = NaiveDate::from_ymd_opt(1956, 2, 29).unwrap();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let a: ArrayRef = Arc::new(Date32Array::from(vec![(d - epoch).num_days() as i32]));
        let y = t.apply(&a, None).unwrap();
        let jan1 = NaiveDate::from_ymd_opt(1956, 1, 1).unwrap();
        assert_eq!(
            y.as_primitive::<Date32Type>().value(0),
            (jan1 - epoch).num_days() as i32
        );
        let plain = col("household_id", DataType::Utf8, None);
        assert!(matches!(
            Transform::resolve("t", &plain, ColumnRule::Mask),
            Err(PolicyError::Rule { .. })
        ));
        assert!(Transform::resolve("t", &plain, ColumnRule::Year).is_err());
        assert!(Transform::resolve("t", &c, ColumnRule::Pseudonym).is_err());
        assert_eq!(
            Transform::resolve("t", &plain, ColumnRule::Remove).unwrap(),
            None
        );
    }

    #[test]
    fn pseudonyms_join_across_tables_and_need_the_key() {
        let p = Pseudonymizer::new(b"a-test-key-of-some-length").unwrap();
        let c = col("resident_id", DataType::Utf8, Some(PiiKind::IdNumber));
        let t = Transform::resolve("t", &c, ColumnRule::Pseudonym)
            .unwrap()
            .unwrap();
        let a: ArrayRef = Arc::new(StringArray::from(vec!["11010519491231002x"]));
        let out = t.apply(&a, Some(&p)).unwrap();
        assert_eq!(
            out.as_string::<i32>().value(0),
            p.pseudonym(PiiKind::IdNumber, "11010519491231002X")
        );
        assert!(t.apply(&a, None).is_err());
    }
}
