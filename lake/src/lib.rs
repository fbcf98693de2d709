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

pub mod background;
pub mod engine;
pub mod fold;
pub mod location;
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
