//! The exchange's audit trail as a lake table: `<lake>/_system/exchange/audit/`, read as
//! `system.audit`.
//!
//! Data flow: each exchange replica writes its decisions to a hash-chained local log first
//! (durable before the answer) → a shipper appends the records the lake does not hold yet,
//! in order, with the application transaction `audit/<replica>` set to the last sequence
//! number shipped (so a restarted shipper resumes exactly, and two shippers of one replica
//! cannot both land the same records) → auditors read `system.audit` through the lake's
//! policy like any other table; `gdx audit verify` re-checks every replica's chain here
//! and against the local logs (the lake copy is the anchor that makes a truncated local log
//! visible).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use gdx_catalog::{Level, PiiKind};
use url::Url;

use crate::Result;
use crate::policy::ColumnGrade;
use crate::table::{ColumnLayout, EventTable, PartitionTxn};

/// Column names of the audit table.
pub mod column {
    pub const SEQ: &str = "seq";
    pub const AT: &str = "at";
    pub const REPLICA: &str = "replica";
    pub const PRINCIPAL: &str = "principal";
    pub const DEPARTMENT: &str = "department";
    pub const ROLE: &str = "role";
    pub const PURPOSE: &str = "purpose";
    pub const CASE_ID: &str = "case_id";
    pub const END_USER: &str = "end_user";
    pub const ACTION: &str = "action";
    pub const OBJECT: &str = "object";
    pub const GRANTS: &str = "grants";
    pub const POLICY_VERSION: &str = "policy_version";
    pub const ROWS: &str = "rows";
    pub const REQUEST_HASH: &str = "request_hash";
    pub const OUTCOME: &str = "outcome";
    pub const STATUS: &str = "status";
    pub const REASON: &str = "reason";
    pub const SUBJECTS: &str = "subjects";
    pub const PREV_HASH: &str = "prev_hash";
    pub const HASH: &str = "hash";
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The audit table's columns, in chain order (the hash covers them in this order).
pub fn audit_schema() -> SchemaRef {
    use column::*;
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new(SEQ, DataType::Int64, false),
        Field::new(AT, ts, false),
        Field::new(REPLICA, DataType::Utf8, false),
        Field::new(PRINCIPAL, DataType::Utf8, false),
        Field::new(DEPARTMENT, DataType::Utf8, false),
        Field::new(ROLE, DataType::Utf8, false),
        Field::new(PURPOSE, DataType::Utf8, true),
        Field::new(CASE_ID, DataType::Utf8, true),
        Field::new(END_USER, DataType::Utf8, true),
        Field::new(ACTION, DataType::Utf8, false),
        Field::new(OBJECT, DataType::Utf8, false),
        Field::new(GRANTS, text_list(), true),
        Field::new(POLICY_VERSION, DataType::Int64, false),
        Field::new(ROWS, DataType::Int64, false),
        Field::new(REQUEST_HASH, DataType::Utf8, false),
        Field::new(OUTCOME, DataType::Utf8, false),
        Field::new(STATUS, DataType::Int64, false),
        Field::new(REASON, DataType::Utf8, false),
        Field::new(SUBJECTS, text_list(), true),
        Field::new(PREV_HASH, DataType::Utf8, false),
        Field::new(HASH, DataType::Utf8, false),
    ]))
}

/// Who the trail names: the people a call touched (resident IDs, USCCs) are sensitive; the
/// end user and the case are personal; the rest describes officials' use of the exchange.
pub fn audit_grade(name: &str) -> ColumnGrade {
    use column::*;
    match name {
        SUBJECTS => ColumnGrade {
            level: Level::SENSITIVE,
            category: None,
            pii: None,
        },
        END_USER => ColumnGrade {
            level: Level::ORDINARY,
            category: None,
            pii: Some(PiiKind::Name),
        },
        CASE_ID => ColumnGrade {
            level: Level::ORDINARY,
            category: None,
            pii: None,
        },
        _ => ColumnGrade {
            level: Level::LOW,
            category: None,
            pii: None,
        },
    }
}

/// No statistics in the Delta log for the columns that name people.
pub fn audit_layout() -> ColumnLayout {
    use column::*;
    ColumnLayout {
        personal: [SUBJECTS, END_USER, CASE_ID, REASON, OBJECT]
            .map(str::to_owned)
            .to_vec(),
        statistics: Some([SEQ, AT, REPLICA].map(str::to_owned).to_vec()),
        ..ColumnLayout::default()
    }
}

/// The application transaction of one replica's shipped records.
pub fn app_id(replica: &str) -> String {
    format!("audit/{replica}")
}

/// The audit table, for appending one replica's records.
#[derive(Debug)]
pub struct AuditTable {
    table: EventTable,
    replica: String,
}

impl AuditTable {
    pub async fn open(url: Url, replica: &str) -> Result<Self> {
        let table = EventTable::open_or_create_with(url, audit_schema(), "audit", audit_layout())
            .await?
            .with_files_per_append(1);
        Ok(Self {
            table,
            replica: replica.to_owned(),
        })
    }

    /// The last sequence number of this replica the lake holds (0: none).
    pub async fn shipped(&mut self) -> Result<i64> {
        self.table.refresh().await?;
        Ok(self
            .table
            .txn_version(&app_id(&self.replica))
            .await?
            .unwrap_or(0))
    }

    /// Appends `batch` (records up to sequence number `last`, in the table's schema).
    pub async fn append(&mut self, batch: arrow::array::RecordBatch, last: i64) -> Result<u64> {
        let txn = PartitionTxn {
            app_id: app_id(&self.replica),
            offset: last,
        };
        self.table.append(vec![batch], &[txn]).await
    }
}
