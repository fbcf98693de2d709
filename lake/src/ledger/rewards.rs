//! The enterprise rewards' ledger (云兑现): `<lake>/_system/scenarios/rewards/`, read as
//! `scenarios.rewards_ledger`.
//!
//! Data flow: every step of a reward — a policy version issued, a firm decided eligible, its
//! application (or, without one, its account confirmed), each approval or rejection, a payment
//! instruction, the bank's result — is one line, written by
//! [`super::LedgerTable::append`] in a commit whose application transaction
//! ([`SEQ_APP_ID`]) moves from the number the step read to the next. A step decides over
//! the whole ledger as read; a step that read an older number is refused by Delta and decides
//! again over the new lines. So the ledger's rules (one instruction per firm, policy and
//! period; the budget) hold however many steps run at once, and a process killed at any
//! point left either the whole step or nothing.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use gdx_catalog::{Level, PiiKind};

use crate::policy::ColumnGrade;
use crate::table::ColumnLayout;

/// The ledger's name under `scenarios.` (`rewards_ledger`) and its folder under
/// `_system/scenarios/`.
pub const REWARDS: &str = "rewards";

/// The application transaction that numbers the ledger's commits.
pub const SEQ_APP_ID: &str = "rewards/seq";

/// Column names of the rewards ledger.
pub mod column {
    /// `RW<seq, 7 digits><n, 6 digits>`: unique; an instruction's is its payment reference.
    pub const ENTRY_ID: &str = "entry_id";
    /// The commit that wrote the line (1, 2, …).
    pub const SEQ: &str = "seq";
    /// `policy`, `decision`, `application`, `confirmation`, `approval`, `rejection`,
    /// `instruction` or `bank_result`.
    pub const KIND: &str = "kind";
    pub const POLICY: &str = "policy";
    pub const POLICY_VERSION: &str = "policy_version";
    /// The policy's period (`2025`, or `2025-01-01..2025-06-30`).
    pub const PERIOD: &str = "period";
    pub const USCC: &str = "uscc";
    /// The firm's registered name.
    pub const NAME: &str = "name";
    /// The department of an approval step (a decision: the issuing department).
    pub const STEP: &str = "step";
    /// Who made the step (a principal id; `operator` from the command line).
    pub const PRINCIPAL: &str = "principal";
    /// Yuan, two decimals: a decision's or an instruction's amount, a bank result's amount
    /// as the bank reported it.
    pub const AMOUNT: &str = "amount";
    /// The tier a decision reached.
    pub const TIER: &str = "tier";
    /// The firm's bank account (an application, a confirmation, an instruction, a result).
    pub const ACCOUNT: &str = "account";
    /// A bank result's instruction; a re-issued instruction's first one.
    pub const REFERENCE: &str = "reference";
    /// Why: a decision's basis (`eligible`, `top_up`, `highest_only_top_up`), a rejection's
    /// reason, a result's status (`paid`, `failed`, `returned`, `mismatched`).
    pub const REASON: &str = "reason";
    /// A decision's evidence rows (JSON: dataset, key, version); a policy line's TOML text.
    pub const DETAIL: &str = "detail";
    /// The business time a decision read the lake as of.
    pub const AS_OF: &str = "as_of";
    pub const RECORDED_AT: &str = "recorded_at";
}

/// The ledger's columns.
pub fn schema() -> SchemaRef {
    use column::*;
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text = |n: &str, nullable: bool| Field::new(n, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text(ENTRY_ID, false),
        Field::new(SEQ, DataType::Int64, false),
        text(KIND, false),
        text(POLICY, false),
        Field::new(POLICY_VERSION, DataType::Int64, false),
        text(PERIOD, false),
        text(USCC, true),
        text(NAME, true),
        text(STEP, true),
        text(PRINCIPAL, true),
        Field::new(AMOUNT, DataType::Decimal128(18, 2), true),
        text(TIER, true),
        text(ACCOUNT, true),
        text(REFERENCE, true),
        text(REASON, true),
        text(DETAIL, true),
        Field::new(AS_OF, ts.clone(), true),
        Field::new(RECORDED_AT, ts, false),
    ]))
}

/// Accounts are confidential (level 4, masked like a card: 6+4); amounts level 3 like the
/// payment facts; firms' codes and names are public registration data; the rest describes
/// the steps.
pub fn grade(name: &str) -> ColumnGrade {
    use column::*;
    match name {
        ACCOUNT => ColumnGrade {
            level: Level::SENSITIVE,
            category: None,
            pii: Some(PiiKind::BankCard),
        },
        AMOUNT => ColumnGrade {
            level: Level::ORDINARY,
            category: None,
            pii: None,
        },
        USCC => ColumnGrade {
            level: Level::LOW,
            category: None,
            pii: Some(PiiKind::Uscc),
        },
        _ => ColumnGrade {
            level: Level::LOW,
            category: None,
            pii: None,
        },
    }
}

/// No statistics in the Delta log for the accounts.
pub fn layout() -> ColumnLayout {
    use column::*;
    ColumnLayout {
        personal: vec![ACCOUNT.to_owned()],
        statistics: Some([SEQ, KIND, POLICY, PERIOD].map(str::to_owned).to_vec()),
        ..ColumnLayout::default()
    }
}

/// The ledger at `url`, for a step's one commit.
pub async fn open(url: url::Url) -> crate::Result<super::LedgerTable> {
    super::LedgerTable::open_as(url, REWARDS, schema(), layout(), SEQ_APP_ID).await
}
