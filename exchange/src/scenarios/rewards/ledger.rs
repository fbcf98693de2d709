//! The rewards' ledger as the steps see it: every line read, folded per firm, and one
//! commit per step.
//!
//! Data flow: `scenarios.rewards_ledger` ([`gdx_lake::ledger::rewards`]) read whole at its
//! newest commit → [`Ledger`] (the lines in order; the policies issued, newest version last;
//! per policy, period and firm its [`Firm`]: decision, applications, approvals, rejection,
//! instructions with their bank results) → a step's pure function of the ledger returns the
//! lines to add → [`transact`] commits them as the next number, or, when another step
//! committed first, reads the ledger again and asks the function again.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use gdx_lake::LakeLocation;
use gdx_lake::ledger::LedgerTable;
use gdx_lake::ledger::rewards::{self, column as col};
use serde::Serialize;

use super::policy::{RewardPolicy, yuan};
use crate::scenarios::{hundredths, text_rows};

/// Times a step decides again after another step committed first.
const MAX_ATTEMPTS: u32 = 8;

/// Why a step was refused: the rule (a code) and what it means.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step breaks one of the ledger's rules (nothing was written).
    #[error("{message}")]
    Refused {
        code: &'static str,
        message: String,
        /// 404 rather than 409: what the step names does not exist.
        missing: bool,
    },
    #[error("other steps kept committing first ({attempts} times in a row); try again")]
    Contended { attempts: u32 },
    #[error("the rewards ledger's column {0} is not what the ledger writes")]
    Column(&'static str),
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
    #[error(transparent)]
    Run(#[from] super::run::RunError),
}

impl StepError {
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
            missing: false,
        }
    }

    pub fn missing(code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
            missing: true,
        }
    }

    /// What the log may say (never a value).
    pub fn log_safe(&self) -> String {
        match self {
            Self::Lake(l) => l.log_safe(),
            Self::Run(super::run::RunError::Lake(l)) => l.log_safe(),
            other => other.to_string(),
        }
    }
}

/// The kinds of line.
pub mod kind {
    pub const POLICY: &str = "policy";
    pub const DECISION: &str = "decision";
    pub const APPLICATION: &str = "application";
    pub const CONFIRMATION: &str = "confirmation";
    pub const APPROVAL: &str = "approval";
    pub const REJECTION: &str = "rejection";
    pub const INSTRUCTION: &str = "instruction";
    pub const BANK_RESULT: &str = "bank_result";
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub entry_id: String,
    pub seq: i64,
    pub kind: String,
    pub policy: String,
    pub policy_version: i64,
    pub period: String,
    pub uscc: Option<String>,
    pub name: Option<String>,
    pub step: Option<String>,
    pub principal: Option<String>,
    /// Fen.
    #[serde(skip)]
    pub fen: Option<i64>,
    /// Yuan.
    pub amount: Option<String>,
    pub tier: Option<String>,
    pub account: Option<String>,
    pub reference: Option<String>,
    pub reason: Option<String>,
    #[serde(skip)]
    pub detail: Option<String>,
    pub as_of: Option<String>,
    pub recorded_at: String,
}

impl Line {
    /// The line as shown to a reader: the account masked (6+4).
    pub fn masked(&self) -> Self {
        let mut l = self.clone();
        l.account = l
            .account
            .map(|a| gdx_catalog::mask::mask(gdx_catalog::PiiKind::BankCard, &a));
        l
    }
}

/// A line to add (its id, number and time are the commit's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewLine {
    pub kind: &'static str,
    pub policy: String,
    pub policy_version: i64,
    pub period: String,
    pub uscc: Option<String>,
    pub name: Option<String>,
    pub step: Option<String>,
    pub principal: Option<String>,
    pub fen: Option<i64>,
    pub tier: Option<String>,
    pub account: Option<String>,
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub as_of: Option<DateTime<Utc>>,
}

impl NewLine {
    /// A line about `firm`'s reward under `policy`.
    pub fn about(kind: &'static str, policy: &RewardPolicy, firm: &str) -> Self {
        Self {
            kind,
            policy: policy.id.clone(),
            policy_version: i64::from(policy.version),
            period: period(policy),
            uscc: Some(firm.to_owned()),
            ..Self::default()
        }
    }
}

/// A policy's period as the ledger names it: the year when it is one whole year.
pub fn period(policy: &RewardPolicy) -> String {
    use chrono::Datelike;
    let (f, t) = (policy.from, policy.to);
    if f.year() == t.year() && (f.month(), f.day()) == (1, 1) && (t.month(), t.day()) == (12, 31) {
        f.year().to_string()
    } else {
        format!("{f}..{t}")
    }
}

/// One instruction and the bank's result for it.
#[derive(Debug, Clone, Copy)]
pub struct Instruction<'a> {
    pub line: &'a Line,
    pub result: Option<&'a Line>,
}

impl Instruction<'_> {
    /// The bank's status (`paid`, `failed`, `returned`, `mismatched`); none: not back yet.
    pub fn status(&self) -> Option<&str> {
        self.result.and_then(|r| r.reason.as_deref())
    }
}

/// Everything the ledger holds about one firm's reward under one policy and period.
#[derive(Debug, Clone)]
pub struct Firm<'a> {
    pub decision: &'a Line,
    /// Applications and account confirmations, oldest first (the newest account counts).
    pub applications: Vec<&'a Line>,
    pub approvals: Vec<&'a Line>,
    pub rejection: Option<&'a Line>,
    pub instructions: Vec<Instruction<'a>>,
}

impl Firm<'_> {
    /// Fen decided.
    pub fn fen(&self) -> i64 {
        self.decision.fen.unwrap_or(0)
    }

    /// The account the firm gave last.
    pub fn account(&self) -> Option<&str> {
        self.applications.last().and_then(|l| l.account.as_deref())
    }

    pub fn applied(&self) -> bool {
        self.applications
            .iter()
            .any(|l| l.kind == kind::APPLICATION)
    }

    /// Every step of `policy` approved.
    pub fn approved(&self, policy: &RewardPolicy) -> bool {
        self.rejection.is_none() && self.approvals.len() >= policy.approvals.len()
    }

    /// The department whose approval is next (none: rejected, or all approved).
    pub fn next_step<'p>(&self, policy: &'p RewardPolicy) -> Option<&'p str> {
        if self.rejection.is_some() {
            return None;
        }
        policy
            .approvals
            .get(self.approvals.len())
            .map(String::as_str)
    }

    /// An instruction that is out or paid (none failed, returned or mismatched since).
    pub fn live_instruction(&self) -> Option<Instruction<'_>> {
        self.instructions
            .iter()
            .copied()
            .find(|i| matches!(i.status(), None | Some("paid")))
    }

    /// Where the reward stands, in a word.
    pub fn status(&self, policy: &RewardPolicy) -> String {
        if self.rejection.is_some() {
            return "rejected".into();
        }
        if let Some(i) = self.instructions.last() {
            return match i.status() {
                None => "instructed".into(),
                Some(s) => s.to_owned(),
            };
        }
        if policy.application && !self.applied() {
            return "awaiting_application".into();
        }
        match self.next_step(policy) {
            Some(d) => format!("awaiting_approval:{d}"),
            None if self.account().is_none() => "awaiting_account".into(),
            None => "approved".into(),
        }
    }
}

/// The ledger as read at one commit.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The last commit's number (0: empty).
    pub seq: i64,
    pub lines: Vec<Line>,
}

impl Ledger {
    /// The policy `id` as issued last (newest version), with its line.
    pub fn policy(&self, id: &str) -> Option<(RewardPolicy, &Line)> {
        self.lines
            .iter()
            .filter(|l| l.kind == kind::POLICY && l.policy == id)
            .max_by_key(|l| l.policy_version)
            .and_then(|l| Some((RewardPolicy::parse(l.detail.as_deref()?).ok()?, l)))
    }

    /// Every policy issued, newest version of each.
    pub fn policies(&self) -> Vec<(RewardPolicy, &Line)> {
        let mut ids: Vec<&str> = self
            .lines
            .iter()
            .filter(|l| l.kind == kind::POLICY)
            .map(|l| l.policy.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().filter_map(|id| self.policy(id)).collect()
    }

    /// The firms decided under `policy` for `period`, by USCC.
    pub fn firms(&self, policy: &str, period: &str) -> BTreeMap<&str, Firm<'_>> {
        let mut out: BTreeMap<&str, Firm<'_>> = BTreeMap::new();
        let ours = |l: &&Line| l.policy == policy && l.period == period;
        for l in self.lines.iter().filter(ours) {
            let Some(u) = l.uscc.as_deref() else { continue };
            if l.kind == kind::DECISION {
                out.entry(u).or_insert(Firm {
                    decision: l,
                    applications: Vec::new(),
                    approvals: Vec::new(),
                    rejection: None,
                    instructions: Vec::new(),
                });
                continue;
            }
            let Some(f) = out.get_mut(u) else { continue };
            match l.kind.as_str() {
                kind::APPLICATION | kind::CONFIRMATION => f.applications.push(l),
                kind::APPROVAL => f.approvals.push(l),
                kind::REJECTION => f.rejection = Some(l),
                kind::INSTRUCTION => f.instructions.push(Instruction {
                    line: l,
                    result: None,
                }),
                _ => {}
            }
        }
        // Bank results find their instruction by reference (they may come in any order).
        for l in self.lines.iter().filter(ours) {
            if l.kind != kind::BANK_RESULT {
                continue;
            }
            let (Some(u), Some(r)) = (l.uscc.as_deref(), l.reference.as_deref()) else {
                continue;
            };
            if let Some(i) = out
                .get_mut(u)
                .and_then(|f| f.instructions.iter_mut().find(|i| i.line.entry_id == r))
            {
                i.result = Some(l);
            }
        }
        out
    }

    /// The instruction whose reference (entry id) is `reference`.
    pub fn instruction(&self, reference: &str) -> Option<&Line> {
        self.lines
            .iter()
            .find(|l| l.kind == kind::INSTRUCTION && l.entry_id == reference)
    }

    /// The bank result recorded for instruction `reference`.
    pub fn result_of(&self, reference: &str) -> Option<&Line> {
        self.lines
            .iter()
            .find(|l| l.kind == kind::BANK_RESULT && l.reference.as_deref() == Some(reference))
    }
}

/// The ledger as `table` holds it up to commit `seq` (the lines of later commits, loaded
/// meanwhile, are left out).
pub async fn read_table(table: &LedgerTable, seq: i64) -> Result<Ledger, StepError> {
    let mut l = read(table, seq).await?;
    l.lines.retain(|x| x.seq <= seq);
    Ok(l)
}

async fn read(table: &LedgerTable, seq: i64) -> Result<Ledger, StepError> {
    if seq == 0 {
        return Ok(Ledger::default());
    }
    let cols = [
        col::ENTRY_ID,
        col::SEQ,
        col::KIND,
        col::POLICY,
        col::POLICY_VERSION,
        col::PERIOD,
        col::USCC,
        col::NAME,
        col::STEP,
        col::PRINCIPAL,
        col::AMOUNT,
        col::TIER,
        col::ACCOUNT,
        col::REFERENCE,
        col::REASON,
        col::DETAIL,
        col::AS_OF,
        col::RECORDED_AT,
    ];
    let batches = table
        .query(&format!(
            "select {} from t order by {}, {}",
            cols.join(", "),
            col::SEQ,
            col::ENTRY_ID
        ))
        .await?;
    let rows = text_rows(&batches).map_err(|_| StepError::Column("*"))?;
    let mut lines = Vec::with_capacity(rows.len());
    for mut r in rows {
        let mut take = |i: usize| r[i].take();
        let num = |v: Option<String>, c: &'static str| {
            v.and_then(|v| v.parse::<i64>().ok())
                .ok_or(StepError::Column(c))
        };
        let amount = take(10);
        let fen = match &amount {
            Some(a) => Some(hundredths(a).ok_or(StepError::Column(col::AMOUNT))?),
            None => None,
        };
        lines.push(Line {
            entry_id: take(0).ok_or(StepError::Column(col::ENTRY_ID))?,
            seq: num(take(1), col::SEQ)?,
            kind: take(2).ok_or(StepError::Column(col::KIND))?,
            policy: take(3).ok_or(StepError::Column(col::POLICY))?,
            policy_version: num(take(4), col::POLICY_VERSION)?,
            period: take(5).ok_or(StepError::Column(col::PERIOD))?,
            uscc: take(6),
            name: take(7),
            step: take(8),
            principal: take(9),
            amount: fen.map(yuan),
            fen,
            tier: take(11),
            account: take(12),
            reference: take(13),
            reason: take(14),
            detail: take(15),
            as_of: take(16),
            recorded_at: take(17).unwrap_or_default(),
        });
    }
    Ok(Ledger { seq, lines })
}

/// The id of the `i`th line of commit `seq` (an instruction's is its payment reference).
pub fn entry_id(seq: i64, i: usize) -> String {
    format!("RW{seq:07}{i:06}")
}

fn batch(seq: i64, lines: &[NewLine]) -> Result<RecordBatch, StepError> {
    let now = Utc::now().timestamp_micros();
    let n = lines.len();
    let text = |f: &dyn Fn(&NewLine) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(lines.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(
            (0..n).map(|i| entry_id(seq, i)).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(vec![seq; n])),
        text(&|l| Some(l.kind.to_owned())),
        text(&|l| Some(l.policy.clone())),
        Arc::new(Int64Array::from(
            lines.iter().map(|l| l.policy_version).collect::<Vec<_>>(),
        )),
        text(&|l| Some(l.period.clone())),
        text(&|l| l.uscc.clone()),
        text(&|l| l.name.clone()),
        text(&|l| l.step.clone()),
        text(&|l| l.principal.clone()),
        Arc::new(
            Decimal128Array::from(
                lines
                    .iter()
                    .map(|l| l.fen.map(i128::from))
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(18, 2)
            .map_err(|_| StepError::Column(col::AMOUNT))?,
        ),
        text(&|l| l.tier.clone()),
        text(&|l| l.account.clone()),
        text(&|l| l.reference.clone()),
        text(&|l| l.reason.clone()),
        text(&|l| l.detail.clone()),
        Arc::new(
            TimestampMicrosecondArray::from(
                lines
                    .iter()
                    .map(|l| l.as_of.map(|t| t.timestamp_micros()))
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
    ];
    RecordBatch::try_new(rewards::schema(), columns).map_err(|_| StepError::Column("*"))
}

/// Opens the ledger of `lake`.
pub async fn open(lake: &LakeLocation) -> Result<LedgerTable, StepError> {
    Ok(rewards::open(lake.scenario(rewards::REWARDS)).await?)
}

/// The ledger of `lake` as it is now.
pub async fn load(lake: &LakeLocation) -> Result<Ledger, StepError> {
    let mut table = open(lake).await?;
    let seq = table.last_run().await?;
    read(&table, seq).await
}

/// Runs one step: `step` decides over the ledger as it is and returns the lines to add and
/// its answer; the lines commit as the ledger's next number, or — another step committed
/// first — `step` decides again over the ledger as it is then. No lines: nothing is
/// written.
pub async fn transact<T>(
    lake: &LakeLocation,
    mut step: impl FnMut(&Ledger) -> Result<(Vec<NewLine>, T), StepError>,
) -> Result<T, StepError> {
    let mut table = open(lake).await?;
    for _ in 0..MAX_ATTEMPTS {
        let seq = table.last_run().await?;
        let ledger = read(&table, seq).await?;
        let (lines, answer) = step(&ledger)?;
        if lines.is_empty() {
            return Ok(answer);
        }
        match table.append(batch(seq + 1, &lines)?, seq + 1).await {
            Ok(_) => return Ok(answer),
            Err(e) if e.is_concurrent_commit() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StepError::Contended {
        attempts: MAX_ATTEMPTS,
    })
}
