//! gdx lake: Delta tables on an object store, and everything computed over them.
//!
//! Data flow: ingest hands decoded Arrow batches, with the Kafka offsets they cover, to an
//! [`EventTable`] → each append is one Delta commit on `<lake>/<dept>/<dataset>/events/`
//! carrying one application transaction per Kafka partition (app id names the job, the Kafka
//! cluster, the topic and the partition; version = the last offset written), so a restarted
//! worker reads back exactly where the lake stands → bad records land in
//! `<lake>/_system/dead_letters/` the same way. [`fold`] turns `events` into `current`,
//! [`profiles`] build the citizen and enterprise profiles. Readers: the [`registry`] names
//! and opens every table once; a [`sql::LakeSession`] holds them only as a [`policy`]
//! lets its reader see them.
//!
//! Table schemas are derived from the catalog ([`schema`]); this crate never hard-codes a
//! dataset. Table locations follow [`LakeLocation`], a layout outside engines can rely on.

pub mod audit;
pub mod background;
pub mod engine;
pub mod entitlements;
pub mod fold;
pub mod journal;
pub mod ledger;
pub mod location;
pub mod lookup;
pub mod maintenance;
pub mod policy;
pub mod profiles;
pub mod read;
pub mod registry;
pub mod schema;
pub mod sql;
pub mod table;

pub use location::LakeLocation;
pub use policy::{AllowAll, TablePolicy};
pub use registry::TableRegistry;
pub use table::{EventTable, PartitionTxn};

/// Errors of the lake layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid lake location {location:?}: {why}")]
    Location { location: String, why: String },
    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    #[error(
        "delta table {table}: another writer moved {app_id} from offset {was:?} to {now:?} \
         while this commit was pending; this worker no longer owns that partition"
    )]
    PartitionTakenOver {
        table: String,
        app_id: String,
        was: Option<i64>,
        now: Option<i64>,
    },
    #[error("query on {table}: {source}")]
    Query {
        table: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("unknown table {name:?}{}", close_hint(close))]
    UnknownTable { name: String, close: Vec<String> },
    #[error("the lake's SQL is read-only: {0}")]
    ReadOnly(String),
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error("{0}")]
    Parameter(String),
    #[error("the query ran past its time limit of {seconds} s")]
    Timeout { seconds: f64 },
    #[error("the query failed while reading rows: {0}")]
    Failed(String),
    #[error("schema of {table}: {source}")]
    Schema {
        table: String,
        #[source]
        source: arrow::error::ArrowError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether Delta refused a commit because another commit since this handle loaded the
    /// table moved the same application transaction (or changed the table in a way that
    /// needs a reload): read again and decide again.
    pub fn is_concurrent_commit(&self) -> bool {
        use deltalake::DeltaTableError as D;
        use deltalake::kernel::transaction::{CommitConflictError, TransactionError};
        match self {
            Error::PartitionTakenOver { .. } => true,
            Error::Delta { source, .. } => matches!(
                source.as_ref(),
                D::Transaction {
                    source: TransactionError::CommitConflict(
                        CommitConflictError::ConcurrentTransaction
                            | CommitConflictError::MetadataChanged
                            | CommitConflictError::ProtocolChanged(_)
                    ) | TransactionError::VersionAlreadyExists(_)
                } | D::VersionAlreadyExists(_)
            ),
            _ => false,
        }
    }

    /// This error as a log line may carry it: the table, the operation and the kind of
    /// failure, never a value. DataFusion's and Arrow's messages can quote the value that
    /// failed a cast or a check, and some Delta errors quote log records or data; background
    /// folds, profile builds and maintenance log this form.
    pub fn log_safe(&self) -> String {
        match self {
            Error::Query { table, source } => format!("query on {table}: {}", query_kind(source)),
            Error::Delta { table, source } => {
                format!("delta table {table}: {}", delta_kind(source))
            }
            Error::Schema { table, .. } => format!("schema of {table}: an Arrow schema error"),
            Error::ReadOnly(_) => "a statement the read-only SQL refuses".into(),
            Error::Failed(kind) => format!("the query failed while reading rows: {kind}"),
            Error::Location { .. }
            | Error::PartitionTakenOver { .. }
            | Error::UnknownTable { .. }
            | Error::Policy(_)
            | Error::Parameter(_)
            | Error::Timeout { .. } => self.to_string(),
        }
    }
}

/// The kind of a DataFusion error, without its message.
fn query_kind(e: &datafusion::error::DataFusionError) -> &'static str {
    use datafusion::error::DataFusionError as D;
    match e.find_root() {
        D::ArrowError(..) => "an Arrow compute error",
        D::ParquetError(_) => "a Parquet error",
        D::ObjectStore(_) => "an object store error",
        D::IoError(_) => "an I/O error",
        D::SQL(..) => "a SQL parse error",
        D::NotImplemented(_) => "an unsupported operation",
        D::Internal(_) => "an internal DataFusion error",
        D::Plan(_) => "a planning error",
        D::Configuration(_) => "a configuration error",
        D::SchemaError(..) => "a schema error",
        D::Execution(_) | D::ExecutionJoin(_) => "an execution error",
        D::ResourcesExhausted(_) => "the memory budget was exhausted",
        _ => "a query error",
    }
}

/// A Delta error's message when it is structural (versions, locations, conflicts, I/O),
/// else its kind only.
fn delta_kind(e: &deltalake::DeltaTableError) -> String {
    use deltalake::DeltaTableError as D;
    match e {
        D::ObjectStore { .. }
        | D::Io { .. }
        | D::InvalidVersion(_)
        | D::VersionDowngrade { .. }
        | D::VersionAlreadyExists(_)
        | D::VersionMismatch(..)
        | D::NotATable(_)
        | D::NoSchema
        | D::InvalidTableLocation(_)
        | D::NotInitialized
        | D::Transaction { .. } => e.to_string(),
        D::Arrow { .. } | D::Parquet { .. } => "an Arrow or Parquet error".into(),
        D::SchemaMismatch { .. } => "data does not match the table's schema".into(),
        _ => "a Delta error (its message may quote data; withheld from logs)".into(),
    }
}

fn close_hint(close: &[String]) -> String {
    if close.is_empty() {
        "; see `select * from information_schema.tables`".into()
    } else {
        format!("; did you mean {}?", close.join(", "))
    }
}

/// Registers the object stores lakes may live on beyond local directories (S3 and
/// S3-compatible stores, credentials from the usual `AWS_*` variables). Called once by the
/// binary at start-up.
pub fn register_object_stores() {
    deltalake::aws::register_handlers(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_safe_errors_name_the_table_and_the_kind_never_the_value() {
        let cast = datafusion::arrow::error::ArrowError::CastError(
            "Cannot cast string '张三丰' to value of Int32 type".into(),
        );
        let e = Error::Query {
            table: "profiles.citizen".into(),
            source: Box::new(datafusion::error::DataFusionError::ArrowError(
                Box::new(cast),
                None,
            )),
        };
        assert!(e.to_string().contains("张三丰"));
        let safe = e.log_safe();
        assert!(!safe.contains("张三丰"), "{safe}");
        assert!(
            safe.contains("profiles.citizen") && safe.contains("Arrow"),
            "{safe}"
        );
        let e = Error::Delta {
            table: "ps/household_registration/current".into(),
            source: Box::new(deltalake::DeltaTableError::Generic(
                "value 420106194003120113 rejected".into(),
            )),
        };
        assert!(!e.log_safe().contains("420106"), "{}", e.log_safe());
        let e = Error::Delta {
            table: "t".into(),
            source: Box::new(deltalake::DeltaTableError::VersionAlreadyExists(7)),
        };
        assert!(e.log_safe().contains('7'), "{}", e.log_safe());
    }
}
