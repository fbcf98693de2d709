//! The audit trail: every decision, allowed or denied, recorded before it is answered.
//!
//! Data flow: a handler fills an [`Entry`] (who, purpose, case, action, object, grants
//! applied, rows, subjects, outcome and the real reason) → [`AuditLog::record`] hands it to
//! the writer thread → the writer seals it ([`chain`]: sequence number, previous record's
//! hash, own hash), appends a group of records to `<audit dir>/<replica>.log`, fsyncs once
//! for the group and only then answers each caller (a write that fails fails every call in
//! the group: fail closed) → [`ship`] appends the sealed records to `system.audit` in the
//! lake (the anchor: a local log truncated below what the lake holds is caught at start and
//! by `gdx audit verify`) → [`anchor`] publishes each chain's head on `gdx.audit`, outside
//! the lake (a chain cut short in the log and the lake alike shows against it) → [`verify`]
//! re-checks chains and reports the first broken link.

pub mod anchor;
pub mod chain;
mod log;
pub mod ship;
pub mod verify;

pub use chain::{AuditRecord, Entry, Outcome};
pub use log::AuditLog;

/// Why the audit could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log {path}: {broken}")]
    Broken { path: String, broken: verify::Break },
    #[error(
        "audit log {path} ends at record {local} but the lake holds up to {lake}: the local log lost records"
    )]
    BehindLake { path: String, local: i64, lake: i64 },
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("audit log {path}: the last write failed; the record was not stored")]
    WriteFailed { path: String },
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
}
