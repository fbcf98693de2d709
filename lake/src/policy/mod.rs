//! Who may see what: a reader's rights, made part of every query plan.
//!
//! Data flow: the [`crate::registry`] describes each table of the lake as a [`TableInfo`]
//! (session name, dataset, kind, columns with the grading of the catalog fields they carry)
//! → a [`TablePolicy`] (the exchange builds one from a reader's grants; the operator's
//! `gdx sql` uses [`AllowAll`] or a [`file::FilePolicy`]) answers [`Access`] per table:
//! hidden, verify-only, or readable with a [`TableAccess`] (visible columns and their
//! [`ColumnRule`], a row filter, aggregate-only) → [`provider::PolicyTable`] wraps the
//! table's provider: its schema is what the reader may see, and its scan applies the row
//! filter and then the column transforms before any operator of the reader's query sees a
//! row → [`guard::PolicyGuard`], an analyzer rule, refuses any plan that reaches a table
//! other than through a `PolicyTable`, and makes aggregates over aggregate-only tables drop
//! groups of fewer than k people.
//!
//! A session holds nothing but policy-wrapped tables, so `information_schema`, `DESCRIBE`,
//! "did you mean" hints and `table_at` know only what the reader may see: a hidden table
//! answers exactly like a table that does not exist.

pub mod file;
pub(crate) mod guard;
pub(crate) mod provider;
pub(crate) mod transform;

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::Expr;
use gdx_catalog::pseudonym::Pseudonymizer;
use gdx_catalog::{DatasetId, Level, PiiKind};

pub use provider::PolicyTable;

/// The kind of a lake table, as readers and policies see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    /// A dataset's append-only events.
    Events,
    /// A dataset's folded state.
    Current,
    /// Keys a dataset deleted, with their last state.
    Deleted,
    /// A citizen or enterprise profile.
    Profile,
    /// A scenario's findings over other tables (a benefit's 应享未享 gaps).
    Review,
    /// The lake's own tables: dead letters, the catalog.
    System,
}

impl TableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Events => "events",
            TableKind::Current => "current",
            TableKind::Deleted => "deleted",
            TableKind::Profile => "profile",
            TableKind::Review => "review",
            TableKind::System => "system",
        }
    }
}

/// The grading of one column: the catalog field it carries (or what is declared for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnGrade {
    /// 1..5; ungraded columns count as 5 (就高从严).
    pub level: Level,
    /// Code in the category tree, when known.
    pub category: Option<String>,
    /// The PII kind that picks the column's mask.
    pub pii: Option<PiiKind>,
}

impl ColumnGrade {
    /// Public metadata (provenance columns, catalog tables).
    pub fn public() -> Self {
        Self {
            level: Level::PUBLIC,
            category: None,
            pii: None,
        }
    }

    /// The grading of one catalog field.
    pub fn of_field(f: &gdx_catalog::Field) -> Self {
        Self {
            level: f.level_or_max(),
            category: f.category.clone(),
            pii: f.pii,
        }
    }
}

/// One column of a table, with its grading.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: DataType,
    pub grade: ColumnGrade,
}

/// What a policy knows of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// `schema.table` as readers name it (`ps.household_registration`, `profiles.citizen`).
    pub name: String,
    /// The dataset whose data the table holds, if it holds one dataset's.
    pub dataset: Option<DatasetId>,
    pub kind: TableKind,
    pub columns: Vec<ColumnInfo>,
    /// The column naming the person or enterprise a row is about (aggregate-only readers
    /// see only groups of at least k distinct values of it).
    pub subject: Option<String>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The table's level: the highest of its columns' (就高从严).
    pub fn level(&self) -> Level {
        self.columns
            .iter()
            .map(|c| c.grade.level)
            .max()
            .unwrap_or(Level::PUBLIC)
    }
}

/// What a reader sees of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnRule {
    /// The stored value.
    Raw,
    /// The mask of the column's PII kind (DESIGN §5): 张*, 420106********002X, 138****1234,
    /// the address down to the community; dates keep their year. Values of other types
    /// become null. Needs a PII kind or a date type.
    Mask,
    /// A keyed pseudonym (`p_…`): the same value gives the same pseudonym in every table,
    /// so masked tables still join. Text columns only; needs the pseudonym key.
    Pseudonym,
    /// Dates and timestamps truncated to the first day of their year.
    Year,
    /// The column does not exist for this reader.
    Remove,
}

impl ColumnRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnRule::Raw => "raw",
            ColumnRule::Mask => "mask",
            ColumnRule::Pseudonym => "pseudonym",
            ColumnRule::Year => "year",
            ColumnRule::Remove => "remove",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "raw" => ColumnRule::Raw,
            "mask" => ColumnRule::Mask,
            "pseudonym" => ColumnRule::Pseudonym,
            "year" => ColumnRule::Year,
            "remove" => ColumnRule::Remove,
            _ => return None,
        })
    }
}

/// How a reader may use the rows of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Rows as they pass the row filter, with the column rules applied.
    Rows,
    /// Only aggregates (count, sum, avg, variance): every group holds at least `k` distinct
    /// subjects or is suppressed; rows cannot be selected, joined or windowed.
    Aggregate { k: usize },
}

/// The smallest group an aggregate-only reader may see (DESIGN §5).
pub const DEFAULT_MIN_GROUP: usize = 5;

/// How a reader may read one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableAccess {
    /// The rule of each column, in the table's order; a column not listed is removed.
    pub columns: Vec<(String, ColumnRule)>,
    /// Rows the reader may see, as a predicate over the stored (unmasked) values; `None`
    /// means every row.
    pub rows: Option<Expr>,
    pub mode: ReadMode,
    /// Also carry the row's subject as stored, last, as column [`SUBJECT_TAP`]: for a
    /// service that writes its own SQL for a caller (the exchange's rows API) and must
    /// audit whom each answer was about even when the caller sees the subject masked.
    /// Never set for a session whose reader writes SQL.
    pub tap_subject: bool,
    /// The row filter may also be handed to the table's scan, so that files and row groups
    /// that cannot hold the rows are skipped (a lookup by key, a row scope). The scan's
    /// plan then shows the filter's literals: only for a service that writes its own SQL
    /// and shows its reader no plan.
    pub push_rows: bool,
}

/// The column a [`TableAccess::tap_subject`] table carries the subject in.
pub const SUBJECT_TAP: &str = "__gdx_subject_tap";

impl TableAccess {
    /// Every column as stored, every row.
    pub fn raw(table: &TableInfo) -> Self {
        Self {
            columns: table
                .columns
                .iter()
                .map(|c| (c.name.clone(), ColumnRule::Raw))
                .collect(),
            rows: None,
            mode: ReadMode::Rows,
            tap_subject: false,
            push_rows: false,
        }
    }

    /// The masked processing level: columns with a PII kind masked by it, sensitive
    /// columns (level ≥ 4) that no mask fits removed, the others as stored.
    pub fn masked(table: &TableInfo) -> Self {
        Self {
            columns: table
                .columns
                .iter()
                .map(|c| (c.name.clone(), masked_rule(c)))
                .collect(),
            rows: None,
            mode: ReadMode::Rows,
            tap_subject: false,
            push_rows: false,
        }
    }

    /// True when the reader sees the table exactly as stored.
    pub fn is_raw(&self, table: &TableInfo) -> bool {
        self.rows.is_none()
            && self.mode == ReadMode::Rows
            && self.columns.len() == table.columns.len()
            && self
                .columns
                .iter()
                .zip(&table.columns)
                .all(|((n, r), c)| *r == ColumnRule::Raw && *n == c.name)
    }
}

/// A column's rule at the masked processing level: its PII kind's mask; removal for a
/// sensitive column no mask fits (a disability grade, or `_key` of a key made of an ID and
/// something else); the stored value otherwise.
pub(crate) fn masked_rule(c: &ColumnInfo) -> ColumnRule {
    if c.grade.pii.is_some() {
        ColumnRule::Mask
    } else if c.grade.level >= Level::SENSITIVE {
        ColumnRule::Remove
    } else {
        ColumnRule::Raw
    }
}

/// A policy's answer for one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// The table does not exist for this reader.
    Hidden,
    /// Yes/no answers through verification services only; no table access at all (in SQL
    /// the table is hidden).
    VerifyOnly,
    Read(TableAccess),
}

/// A reader's rights over the lake's tables: the one place they are decided.
pub trait TablePolicy: std::fmt::Debug + Send + Sync {
    /// What the reader may do with `table`. Deny by default: a policy that does not know a
    /// table answers [`Access::Hidden`].
    fn access(&self, table: &TableInfo) -> Access;

    /// The key of [`ColumnRule::Pseudonym`]; `None` when the policy has none.
    fn pseudonymizer(&self) -> Option<Arc<Pseudonymizer>> {
        None
    }

    /// A governed reader (anyone but the operator) gets no `EXPLAIN ANALYZE` (its row counts
    /// would count hidden rows) and errors that quote nothing a table holds.
    fn governed(&self) -> bool {
        true
    }

    /// A short label for logs and `EXPLAIN` (never a literal of the policy).
    fn label(&self) -> String;
}

/// The operator's policy: every table, every column, every row.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl TablePolicy for AllowAll {
    fn access(&self, table: &TableInfo) -> Access {
        Access::Read(TableAccess::raw(table))
    }

    fn governed(&self) -> bool {
        false
    }

    fn label(&self) -> String {
        "allow-all".into()
    }
}

/// Why a policy cannot be applied to a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy for {table}: no column {column:?}")]
    UnknownColumn { table: String, column: String },
    #[error("policy for {table}: column {column} cannot take rule {rule}: {why}")]
    Rule {
        table: String,
        column: String,
        rule: &'static str,
        why: &'static str,
    },
    #[error("policy for {table}: the row filter cannot be used: {why}")]
    RowFilter { table: String, why: String },
    #[error("policy for {table}: aggregate-only needs a subject column to count people by")]
    NoSubject { table: String },
    #[error("policy file {path}: {why}")]
    File { path: String, why: String },
}
