//! Shipping sealed audit records into `system.audit`, and reading them back.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, TimestampMicrosecondType};
use chrono::DateTime;
use gdx_lake::audit::{AuditTable, audit_schema};

use super::chain::{AuditRecord, time_text};
use super::{AuditError, AuditLog};

/// Appends the records `log` has not shipped yet; returns how many.
pub async fn ship_once(table: &mut AuditTable, log: &AuditLog) -> Result<usize, AuditError> {
    let records = log.unshipped();
    let Some(last) = records.last().map(|r| r.seq) else {
        return Ok(0);
    };
    let batch = to_batch(&records).map_err(|e| {
        AuditError::Lake(gdx_lake::Error::Schema {
            table: "system.audit".into(),
            source: e,
        })
    })?;
    table.append(batch, last).await?;
    log.shipped(last);
    Ok(records.len())
}

fn text(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn list(values: impl Iterator<Item = Vec<String>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    )));
    for v in values {
        for s in v {
            b.values().append_value(s);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

/// Records as a batch of the audit table.
pub fn to_batch(records: &[AuditRecord]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let r = records;
    let s = |f: fn(&AuditRecord) -> &str| text(r.iter().map(|x| Some(f(x).to_owned())));
    let o = |f: fn(&AuditRecord) -> &Option<String>| text(r.iter().map(|x| f(x).clone()));
    let i = |f: fn(&AuditRecord) -> i64| -> ArrayRef {
        Arc::new(r.iter().map(f).collect::<Int64Array>())
    };
    let at: Vec<i64> = r
        .iter()
        .map(|x| {
            DateTime::parse_from_rfc3339(&x.at)
                .map(|t| t.timestamp_micros())
                .map_err(|e| arrow::error::ArrowError::ParseError(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(
        audit_schema(),
        vec![
            i(|x| x.seq),
            Arc::new(TimestampMicrosecondArray::from(at).with_timezone("UTC")),
            s(|x| &x.replica),
            s(|x| &x.principal),
            s(|x| &x.department),
            s(|x| &x.role),
            o(|x| &x.purpose),
            o(|x| &x.case_id),
            o(|x| &x.end_user),
            s(|x| &x.action),
            s(|x| &x.object),
            list(r.iter().map(|x| x.grants.clone())),
            i(|x| x.policy_version),
            i(|x| x.rows),
            s(|x| &x.request_hash),
            s(|x| &x.outcome),
            i(|x| x.status),
            s(|x| &x.reason),
            list(r.iter().map(|x| x.subjects.clone())),
            s(|x| &x.prev_hash),
            s(|x| &x.hash),
        ],
    )
}

/// Records from batches of `select * from system.audit` (columns in the table's order).
pub fn from_batches(batches: &[RecordBatch]) -> Result<Vec<AuditRecord>, String> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| format!("system.audit has no column {name}"))
        };
        let strings = |name: &str| -> Result<StringArray, String> {
            let c = arrow::compute::cast(col(name)?, &DataType::Utf8).map_err(|e| e.to_string())?;
            Ok(c.as_string::<i32>().clone())
        };
        let ints = |name: &str| -> Result<Int64Array, String> {
            let c =
                arrow::compute::cast(col(name)?, &DataType::Int64).map_err(|e| e.to_string())?;
            Ok(c.as_primitive::<arrow::datatypes::Int64Type>().clone())
        };
        let lists = |name: &str| -> Result<Vec<Vec<String>>, String> {
            let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
            let c = arrow::compute::cast(col(name)?, &target).map_err(|e| e.to_string())?;
            let l = c.as_list::<i32>();
            Ok((0..l.len())
                .map(|i| {
                    if l.is_null(i) {
                        return vec![];
                    }
                    let v = l.value(i);
                    let v = v.as_string::<i32>();
                    (0..v.len()).map(|j| v.value(j).to_owned()).collect()
                })
                .collect())
        };
        let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
        let at = col("at")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or("system.audit: at is not a timestamp")?
            .clone();
        let (seq, policy_version, rows, status) = (
            ints("seq")?,
            ints("policy_version")?,
            ints("rows")?,
            ints("status")?,
        );
        let [
            replica,
            principal,
            department,
            role,
            purpose,
            case_id,
            end_user,
            action,
            object,
            request_hash,
            outcome,
            reason,
            prev_hash,
            hash,
        ] = [
            "replica",
            "principal",
            "department",
            "role",
            "purpose",
            "case_id",
            "end_user",
            "action",
            "object",
            "request_hash",
            "outcome",
            "reason",
            "prev_hash",
            "hash",
        ]
        .map(strings);
        let (replica, principal, department, role, purpose, case_id, end_user) = (
            replica?,
            principal?,
            department?,
            role?,
            purpose?,
            case_id?,
            end_user?,
        );
        let (action, object, request_hash, outcome, reason, prev_hash, hash) = (
            action?,
            object?,
            request_hash?,
            outcome?,
            reason?,
            prev_hash?,
            hash?,
        );
        let (grants, subjects) = (lists("grants")?, lists("subjects")?);
        for i in 0..b.num_rows() {
            let t = DateTime::from_timestamp_micros(at.value(i)).ok_or("a time out of range")?;
            out.push(AuditRecord {
                seq: seq.value(i),
                at: time_text(t),
                replica: replica.value(i).to_owned(),
                principal: principal.value(i).to_owned(),
                department: department.value(i).to_owned(),
                role: role.value(i).to_owned(),
                purpose: opt(&purpose, i),
                case_id: opt(&case_id, i),
                end_user: opt(&end_user, i),
                action: action.value(i).to_owned(),
                object: object.value(i).to_owned(),
                grants: grants[i].clone(),
                policy_version: policy_version.value(i),
                rows: rows.value(i),
                request_hash: request_hash.value(i).to_owned(),
                outcome: outcome.value(i).to_owned(),
                status: status.value(i),
                reason: reason.value(i).to_owned(),
                subjects: subjects[i].clone(),
                prev_hash: prev_hash.value(i).to_owned(),
                hash: hash.value(i).to_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::chain::{Entry, GENESIS, Outcome};
    use super::*;

    #[test]
    fn a_record_survives_the_round_trip_through_the_table_schema_with_its_hash() {
        let r = AuditRecord::seal(
            Entry {
                principal: "mca-app".into(),
                purpose: Some("social_assistance".into()),
                end_user: None,
                grants: vec!["g-0123456789abcdef".into()],
                subjects: vec!["11010519491231002X".into(), "440524188001010014".into()],
                outcome: Some(Outcome::Allowed),
                ..Entry::default()
            },
            1,
            chrono::Utc::now(),
            "r1",
            GENESIS,
        );
        let b = to_batch(std::slice::from_ref(&r)).unwrap();
        let back = from_batches(&[b]).unwrap();
        assert_eq!(back, vec![r.clone()]);
        assert_eq!(back[0].computed_hash(), r.hash);
    }
}
