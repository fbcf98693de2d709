//! Coded identifiers in decoded rows: checked and normalised per the catalog's policy.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use gdx_catalog::{CheckPolicy, Dataset, IdError};

use super::message::ErrorClass;

/// What the identifier step decided for each row.
pub(super) struct Checked {
    /// The columns with identifiers in canonical form (flagged values kept as sent).
    pub(super) columns: Vec<ArrayRef>,
    /// Per row: indexes of the fields that failed under `flag`.
    pub(super) flags: Vec<Vec<usize>>,
    /// Per row: the first failure under `reject`.
    pub(super) rejects: Vec<Option<(ErrorClass, String)>>,
}

/// Checks every coded-identifier column of upsert rows (`is_upsert[row]`).
pub(super) fn check(ds: &Dataset, columns: &[ArrayRef], is_upsert: &[bool]) -> Checked {
    let rows = is_upsert.len();
    let mut out = columns.to_vec();
    let mut flags: Vec<Vec<usize>> = vec![Vec::new(); rows];
    let mut rejects: Vec<Option<(ErrorClass, String)>> = vec![None; rows];
    let today = chrono::Utc::now().date_naive();
    for (i, f) in ds.fields.iter().enumerate() {
        let Some(kind) = f.id_kind() else { continue };
        let Some(policy) = f.check else { continue };
        let Some(col) = columns[i].as_any().downcast_ref::<StringArray>() else {
            continue;
        };
        // Canonical replacements, only for the rows whose value changes (most do not).
        let mut replaced: Vec<(usize, String)> = Vec::new();
        for r in 0..rows {
            if col.is_null(r) || !is_upsert[r] {
                continue;
            }
            let raw = col.value(r);
            match kind.check_at(raw, today) {
                Ok(canonical) if canonical != raw => replaced.push((r, canonical)),
                Ok(_) => {}
                Err(e) => match policy {
                    CheckPolicy::Flag => flags[r].push(i),
                    CheckPolicy::Reject => {
                        if rejects[r].is_none() {
                            let class = if matches!(e, IdError::Checksum { .. }) {
                                ErrorClass::BadCheckDigit
                            } else {
                                ErrorClass::BadIdentifier
                            };
                            rejects[r] = Some((class, format!("field `{}`: {kind} {e}", f.name)));
                        }
                    }
                },
            }
        }
        if !replaced.is_empty() {
            let mut next = replaced.into_iter().peekable();
            let values: StringArray = (0..rows)
                .map(|r| match next.peek() {
                    Some((at, _)) if *at == r => next.next().map(|(_, v)| v),
                    _ => (!col.is_null(r)).then(|| col.value(r).to_owned()),
                })
                .collect();
            out[i] = Arc::new(values);
        }
    }
    Checked {
        columns: out,
        flags,
        rejects,
    }
}
