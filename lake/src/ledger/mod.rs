//! The scenarios' ledgers as lake tables: the elderly allowance's
//! (`<lake>/_system/scenarios/elderly_allowance/`, read as
//! `scenarios.elderly_allowance_ledger`) and the enterprise rewards' ([`rewards`]).
//!
//! Data flow: a monthly run reads the ledger whole and the lake as of its date, decides the
//! payments, recoveries and notices still owed → [`LedgerTable::append`] writes them and a
//! row for the run itself in one Delta commit whose application transaction
//! (`elderly_allowance/run`) moves from the run number the run read to the next. Two runs
//! that read the same number cannot both commit: Delta refuses the second
//! ([`Error::is_concurrent_commit`]), which reads the ledger again and finds the work done. A
//! run killed before its commit left nothing; one killed after it left all of it. So a
//! person and month is paid once however often, concurrently or brokenly, runs are made.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use gdx_catalog::{Level, PiiKind};
use url::Url;

use crate::policy::ColumnGrade;
use crate::table::{ColumnLayout, EventTable, PartitionTxn};
use crate::{Error, Result};

pub mod rewards;

/// The ledger's name under `scenarios.` and its folder under `_system/scenarios/`.
pub const ELDERLY_ALLOWANCE: &str = "elderly_allowance";

/// The application transaction that numbers the runs.
pub const RUN_APP_ID: &str = "elderly_allowance/run";

/// Column names of the ledger.
pub mod column {
    /// `EA<run, 6 digits><n, 7 digits>`: unique, and the payment id the facts carry.
    pub const ENTRY_ID: &str = "entry_id";
    /// The run that wrote the entry (1, 2, …).
    pub const RUN: &str = "run";
    /// `payment`, `recovery`, `notice` or `run` (one per run: what it did).
    pub const KIND: &str = "kind";
    pub const RESIDENT_ID: &str = "resident_id";
    pub const NAME: &str = "name";
    /// The month paid or recovered (`YYYY-MM`); for a notice the month of the first
    /// payment; for a run row the month run.
    pub const PERIOD: &str = "period";
    pub const BAND: &str = "band";
    /// The policy version the amount follows.
    pub const POLICY_VERSION: &str = "policy_version";
    /// Yuan, two decimals; positive for payments and recoveries alike (a run row: paid
    /// minus recovered).
    pub const AMOUNT: &str = "amount";
    /// Why (`due`, `arrears`, `top_up`, `deceased`, `not_registered`, `band`, …); for a run
    /// row its counts.
    pub const REASON: &str = "reason";
    /// The datasets the decision rests on (names, never values).
    pub const EVIDENCE: &str = "evidence";
    /// The business time the run read the lake as of.
    pub const AS_OF: &str = "as_of";
    pub const RECORDED_AT: &str = "recorded_at";
}

/// The ledger's columns.
pub fn ledger_schema() -> SchemaRef {
    use column::*;
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new(ENTRY_ID, DataType::Utf8, false),
        Field::new(RUN, DataType::Int64, false),
        Field::new(KIND, DataType::Utf8, false),
        Field::new(RESIDENT_ID, DataType::Utf8, true),
        Field::new(NAME, DataType::Utf8, true),
        Field::new(PERIOD, DataType::Utf8, false),
        Field::new(BAND, DataType::Utf8, true),
        Field::new(POLICY_VERSION, DataType::Int64, true),
        Field::new(AMOUNT, DataType::Decimal128(18, 2), false),
        Field::new(REASON, DataType::Utf8, false),
        Field::new(EVIDENCE, DataType::Utf8, true),
        Field::new(AS_OF, ts.clone(), false),
        Field::new(RECORDED_AT, ts, false),
    ]))
}

/// The resident ID is sensitive, the name personal, the amounts level 3 like the payment
/// facts'; the rest describes the run.
pub fn ledger_grade(name: &str) -> ColumnGrade {
    use column::*;
    match name {
        RESIDENT_ID => ColumnGrade {
            level: Level::SENSITIVE,
            category: None,
            pii: Some(PiiKind::IdNumber),
        },
        NAME => ColumnGrade {
            level: Level::ORDINARY,
            category: None,
            pii: Some(PiiKind::Name),
        },
        AMOUNT => ColumnGrade {
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
pub fn ledger_layout() -> ColumnLayout {
    use column::*;
    ColumnLayout {
        personal: [RESIDENT_ID, NAME].map(str::to_owned).to_vec(),
        statistics: Some([RUN, KIND, PERIOD, AS_OF].map(str::to_owned).to_vec()),
        ..ColumnLayout::default()
    }
}

/// `sql` over the ledger at `url` (registered as `t`, read as the operator reads it) at its
/// newest version; nothing when no run has been made yet.
pub async fn query(url: &Url, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
    Ok(crate::read::query(url, sql).await?.unwrap_or_default())
}

/// A ledger, for a run's (or a step's) one commit.
#[derive(Debug)]
pub struct LedgerTable {
    table: EventTable,
    /// The application transaction numbering the commits.
    app_id: &'static str,
}

impl LedgerTable {
    /// The elderly allowance's ledger.
    pub async fn open(url: Url) -> Result<Self> {
        Self::open_as(
            url,
            ELDERLY_ALLOWANCE,
            ledger_schema(),
            ledger_layout(),
            RUN_APP_ID,
        )
        .await
    }

    /// A ledger of `schema` at `url` whose commits `app_id` numbers.
    pub async fn open_as(
        url: Url,
        name: &str,
        schema: SchemaRef,
        layout: ColumnLayout,
        app_id: &'static str,
    ) -> Result<Self> {
        let table = EventTable::open_or_create_with(url, schema, name, layout)
            .await?
            .with_files_per_append(1);
        Ok(Self { table, app_id })
    }

    /// The number of the last run committed (0: none), after reloading the table.
    pub async fn last_run(&mut self) -> Result<i64> {
        self.table.refresh().await?;
        Ok(self.table.txn_version(self.app_id).await?.unwrap_or(0))
    }

    /// The value of application transaction `app_id` as loaded (`None`: never set).
    pub async fn mark(&self, app_id: &str) -> Result<Option<i64>> {
        self.table.txn_version(app_id).await
    }

    /// Commits application transactions alone (no rows): a publisher's claim or progress.
    /// Refused ([`Error::is_concurrent_commit`]) when another commit since this handle loaded
    /// the table set one of the same ids.
    pub async fn set_marks(&mut self, marks: &[(String, i64)]) -> Result<u64> {
        let txns: Vec<PartitionTxn> = marks
            .iter()
            .map(|(app_id, offset)| PartitionTxn {
                app_id: app_id.clone(),
                offset: *offset,
            })
            .collect();
        self.table.append(Vec::new(), &txns).await
    }

    /// `sql` over the ledger as loaded (registered as `t`, read as the operator reads it).
    pub async fn query(&self, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        self.table.query(sql).await
    }

    pub fn url(&self) -> &Url {
        self.table.url()
    }

    /// Commits run `run`'s entries; refused ([`Error::is_concurrent_commit`]) when another run
    /// committed since this one read the ledger.
    pub async fn append(&mut self, batch: arrow::array::RecordBatch, run: i64) -> Result<u64> {
        let txn = PartitionTxn {
            app_id: self.app_id.to_owned(),
            offset: run,
        };
        let before = self.table.txn_version(self.app_id).await?.unwrap_or(0);
        if before != run - 1 {
            return Err(Error::PartitionTakenOver {
                table: self.url().to_string(),
                app_id: self.app_id.to_owned(),
                was: Some(run - 1),
                now: Some(before),
            });
        }
        self.table.append(vec![batch], &[txn]).await
    }
}
