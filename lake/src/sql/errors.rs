//! What a reader is told when a query fails.
//!
//! Data flow: a DataFusion error → an unknown table becomes [`Error::UnknownTable`] with
//! close names among the tables the reader sees (a hidden table answers exactly like a
//! missing one) → the refusals of the read-only rules become [`Error::ReadOnly`] → for a
//! governed reader, an error raised while rows were read (a cast or a division that failed
//! on some value) becomes [`Error::Failed`], which names the kind of failure and never
//! quotes a value; planning errors (the reader's own SQL) are passed on.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

use super::close_names;
use crate::Error;
use crate::engine::df_err;

pub(super) fn explain(e: DataFusionError, visible: &[String], governed: bool) -> Error {
    let msg = e.to_string();
    if let Some(name) = msg
        .split("table '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .filter(|_| msg.contains("not found"))
    {
        let name = name
            .trim_start_matches("gdx.")
            .trim_start_matches("public.");
        let known: Vec<&str> = visible.iter().map(String::as_str).collect();
        return Error::UnknownTable {
            name: name.to_owned(),
            close: close_names(name, &known),
        };
    }
    // The refusals of `SQLOptions` (DDL, DML incl. COPY, SET and other statements);
    // other "not supported" errors are ordinary query errors.
    if [
        "DDL not supported",
        "DML not supported",
        "Statement not supported",
    ]
    .iter()
    .any(|r| msg.contains(r))
    {
        return Error::ReadOnly(msg);
    }
    if governed && let Some(kind) = runtime_failure(&e) {
        return Error::Failed(kind.to_owned());
    }
    df_err("<query>", e)
}

/// The kind of an error raised while reading rows; `None` for planning errors.
fn runtime_failure(e: &DataFusionError) -> Option<&'static str> {
    Some(match e.find_root() {
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::DivideByZero => "division by zero",
            ArrowError::CastError(_) | ArrowError::ParseError(_) => {
                "a value could not be converted to the type the query asks for"
            }
            ArrowError::ArithmeticOverflow(_) => "arithmetic overflow",
            _ => "a computation on the rows failed",
        },
        DataFusionError::Execution(_) | DataFusionError::ExecutionJoin(_) => {
            "a computation on the rows failed"
        }
        DataFusionError::ResourcesExhausted(_) => {
            "the query needed more memory or time than its limits allow"
        }
        DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_)
        | DataFusionError::External(_) => "reading the table failed",
        _ => return None,
    })
}
