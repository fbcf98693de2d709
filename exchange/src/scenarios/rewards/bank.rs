//! Money out and back: payment instructions for the approved rewards, and the bank's batch
//! return file reconciled against them.
//!
//! Data flow (out): the ledger → per firm of a policy whose every step approved and whose
//! account is known: no instruction yet → one; its only instruction failed or was returned →
//! one re-issue (to the account the firm gave last) → one commit ([`transact`]: a second
//! disbursement, concurrent or repeated after a crash, finds them and adds none) → the batch
//! the bank is sent: every instruction without a result (so a payer who lost the file gets
//! the same batch again; the bank knows each by its reference).
//!
//! Data flow (back): the bank's CSV (`account,amount,status,reference`, in any column order;
//! Chinese headers and statuses too) → per row: the instruction its reference names, paid
//! to that account and amount? (else `mismatched`) → `paid`, `failed`, `returned` → one
//! commit of the results; rows that name no instruction, repeat one already reconciled or
//! cannot be read are listed by line and rule (never a value) and write nothing.

use std::collections::{BTreeMap, HashSet};

use gdx_lake::LakeLocation;
use serde::Serialize;

use super::ledger::{Ledger, Line, NewLine, StepError, kind, period, transact};
use super::policy::{RewardPolicy, yuan};
use super::steps::policy_of;
use crate::scenarios::hundredths;

/// A payment instruction as the bank is sent it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PaymentInstruction {
    /// The payment's reference (the ledger's entry id): the bank returns it.
    pub reference: String,
    pub uscc: String,
    pub name: Option<String>,
    pub account: String,
    /// Yuan.
    pub amount: String,
    /// `first`, or `reissue` (of the instruction `reissue_of`).
    pub reason: String,
    pub reissue_of: Option<String>,
}

impl PaymentInstruction {
    fn of(l: &Line) -> Self {
        Self {
            reference: l.entry_id.clone(),
            uscc: l.uscc.clone().unwrap_or_default(),
            name: l.name.clone(),
            account: l.account.clone().unwrap_or_default(),
            amount: l.amount.clone().unwrap_or_default(),
            reason: l.reason.clone().unwrap_or_default(),
            reissue_of: l.reference.clone(),
        }
    }
}

/// What a disbursement did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DisburseReport {
    pub policy: String,
    pub period: String,
    /// Instructions issued now (first payments and re-issues).
    pub issued: usize,
    pub reissued: usize,
    /// Yuan issued now.
    pub issued_amount: String,
    /// The batch for the bank: every instruction of the policy without a result yet.
    pub batch: Vec<PaymentInstruction>,
    /// Firms not paid yet and why (`awaiting_approval:<d>`, `awaiting_account`,
    /// `mismatched`, `reissue_exhausted`, …), counted.
    pub waiting: BTreeMap<String, usize>,
}

/// The bank's CSV header, for the payer's file.
pub const BATCH_HEADER: &str = "reference,uscc,name,account,amount";

/// The batch as the CSV file the bank is sent.
pub fn batch_csv(batch: &[PaymentInstruction]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(BATCH_HEADER.split(','));
    for i in batch {
        let _ = w.write_record([
            i.reference.as_str(),
            &i.uscc,
            i.name.as_deref().unwrap_or(""),
            &i.account,
            &i.amount,
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn outstanding(ledger: &Ledger, policy: &RewardPolicy) -> Vec<PaymentInstruction> {
    let per = period(policy);
    let mut out: Vec<PaymentInstruction> = ledger
        .firms(&policy.id, &per)
        .values()
        .flat_map(|f| f.instructions.clone())
        .filter(|i| i.result.is_none())
        .map(|i| PaymentInstruction::of(i.line))
        .collect();
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    out
}

/// Issues the instructions policy `id` owes now (first payments, one re-issue of a failed or
/// returned one) and returns the bank's batch.
pub async fn disburse(
    lake: &LakeLocation,
    id: &str,
    principal: &str,
) -> Result<DisburseReport, StepError> {
    transact(lake, |ledger| {
        let policy = policy_of(ledger, id)?;
        let per = period(&policy);
        let firms = ledger.firms(&policy.id, &per);
        let mut lines = Vec::new();
        let mut waiting: BTreeMap<String, usize> = BTreeMap::new();
        let mut reissued = 0;
        // Money out or paid holds the budget.
        let mut out: i64 = firms
            .values()
            .filter_map(|f| f.live_instruction())
            .map(|i| i.line.fen.unwrap_or(0))
            .sum();
        for (u, f) in &firms {
            if f.live_instruction().is_some() {
                continue;
            }
            let status = f.status(&policy);
            if !f.approved(&policy) || f.account().is_none() {
                *waiting.entry(status).or_default() += 1;
                continue;
            }
            let reissue_of = match f.instructions.as_slice() {
                [] => None,
                [first] if matches!(first.status(), Some("failed" | "returned")) => {
                    Some(first.line.entry_id.clone())
                }
                [_] => {
                    // Mismatched: the bank paid something else; people look first.
                    *waiting.entry(status).or_default() += 1;
                    continue;
                }
                _ => {
                    *waiting.entry("reissue_exhausted".into()).or_default() += 1;
                    continue;
                }
            };
            if out + f.fen() > policy.budget {
                *waiting.entry("budget_exhausted".into()).or_default() += 1;
                continue;
            }
            out += f.fen();
            let mut l = NewLine::about(kind::INSTRUCTION, &policy, u);
            l.name = f.decision.name.clone();
            l.principal = Some(principal.to_owned());
            l.fen = f.decision.fen;
            l.account = f.account().map(str::to_owned);
            l.reason = Some(
                if reissue_of.is_some() {
                    "reissue"
                } else {
                    "first"
                }
                .into(),
            );
            reissued += usize::from(reissue_of.is_some());
            l.reference = reissue_of;
            lines.push(l);
        }
        // The batch as it will stand after this commit.
        let seq = ledger.seq + 1;
        let mut batch = outstanding(ledger, &policy);
        let issued_amount: i64 = lines.iter().filter_map(|l| l.fen).sum();
        for (i, l) in lines.iter().enumerate() {
            batch.push(PaymentInstruction {
                reference: super::ledger::entry_id(seq, i),
                uscc: l.uscc.clone().unwrap_or_default(),
                name: l.name.clone(),
                account: l.account.clone().unwrap_or_default(),
                amount: yuan(l.fen.unwrap_or(0)),
                reason: l.reason.clone().unwrap_or_default(),
                reissue_of: l.reference.clone(),
            });
        }
        let report = DisburseReport {
            policy: policy.id.clone(),
            period: per,
            issued: lines.len(),
            reissued,
            issued_amount: yuan(issued_amount),
            batch,
            waiting,
        };
        Ok((lines, report))
    })
    .await
}

/// One row of the bank's file that was not taken.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RowRefusal {
    /// The row's line in the file (the header is line 1).
    pub line: usize,
    /// `unreadable`, `field_missing:<f>`, `amount_invalid`, `status_unknown`,
    /// `unknown_reference`, `not_permitted`, `duplicate_in_file`, `already_reconciled`.
    pub rule: String,
}

/// What a reconciliation did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReconcileReport {
    pub rows: usize,
    /// Results recorded now, by status (`paid`, `failed`, `returned`, `mismatched`).
    pub recorded: BTreeMap<String, usize>,
    /// Yuan paid per the rows recorded now.
    pub paid_amount: String,
    /// Rows the ledger held the same result for already.
    pub already: usize,
    pub refused: Vec<RowRefusal>,
    /// Payments that may be re-issued now (failed or returned, first instruction).
    pub reissuable: usize,
}

struct BankRow {
    line: usize,
    account: String,
    fen: i64,
    status: &'static str,
    reference: String,
}

fn column_of(header: &str) -> Option<&'static str> {
    match header.trim().to_lowercase().as_str() {
        "account" | "账号" | "收款账号" => Some("account"),
        "amount" | "金额" => Some("amount"),
        "status" | "状态" | "处理结果" => Some("status"),
        "reference" | "业务参考号" | "参考号" => Some("reference"),
        _ => None,
    }
}

fn status_of(s: &str) -> Option<&'static str> {
    match s.trim().to_lowercase().as_str() {
        "success" | "paid" | "成功" => Some("paid"),
        "failed" | "fail" | "失败" => Some("failed"),
        "returned" | "退票" | "退回" => Some("returned"),
        _ => None,
    }
}

/// Reads the bank's file: the rows it can, and a refusal (line and rule) for each it cannot.
fn parse(text: &str) -> Result<(Vec<BankRow>, Vec<RowRefusal>), StepError> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = r
        .headers()
        .map_err(|_| StepError::refused("file_invalid", "the bank's file has no readable header"))?
        .clone();
    let mut at: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(c) = column_of(h) {
            at.insert(c, i);
        }
    }
    for c in ["account", "amount", "status", "reference"] {
        if !at.contains_key(c) {
            return Err(StepError::refused(
                "file_invalid",
                format!(
                    "the bank's file has no {c} column (header: account, amount, status, reference)"
                ),
            ));
        }
    }
    let (mut rows, mut refused) = (Vec::new(), Vec::new());
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let Ok(rec) = rec else {
            refused.push(RowRefusal {
                line,
                rule: "unreadable".into(),
            });
            continue;
        };
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let field = |c: &str| rec.get(at[c]).filter(|v| !v.is_empty());
        let missing = ["account", "amount", "status", "reference"]
            .into_iter()
            .find(|c| field(c).is_none());
        if let Some(c) = missing {
            refused.push(RowRefusal {
                line,
                rule: format!("field_missing:{c}"),
            });
            continue;
        }
        let Some(fen) = field("amount").and_then(hundredths) else {
            refused.push(RowRefusal {
                line,
                rule: "amount_invalid".into(),
            });
            continue;
        };
        let Some(status) = field("status").and_then(status_of) else {
            refused.push(RowRefusal {
                line,
                rule: "status_unknown".into(),
            });
            continue;
        };
        rows.push(BankRow {
            line,
            account: field("account").unwrap_or_default().to_owned(),
            fen,
            status,
            reference: field("reference").unwrap_or_default().to_owned(),
        });
    }
    Ok((rows, refused))
}

/// Reconciles the bank's return file `text`; `may` says whether the caller may reconcile a
/// policy's payments (rows of others are refused `not_permitted`).
pub async fn reconcile(
    lake: &LakeLocation,
    text: &str,
    principal: &str,
    may: impl Fn(&RewardPolicy) -> bool + Send + Sync,
) -> Result<ReconcileReport, StepError> {
    let (rows, unreadable) = parse(text)?;
    transact(lake, |ledger| {
        let mut report = ReconcileReport {
            rows: rows.len() + unreadable.len(),
            refused: unreadable.clone(),
            ..ReconcileReport::default()
        };
        let mut lines = Vec::new();
        let mut seen = HashSet::new();
        let mut paid = 0;
        for row in &rows {
            let refuse = |rule: &str| RowRefusal {
                line: row.line,
                rule: rule.to_owned(),
            };
            let Some(instr) = ledger.instruction(&row.reference) else {
                report.refused.push(refuse("unknown_reference"));
                continue;
            };
            let Some((policy, _)) = ledger.policy(&instr.policy) else {
                report.refused.push(refuse("unknown_reference"));
                continue;
            };
            if !may(&policy) {
                report.refused.push(refuse("not_permitted"));
                continue;
            }
            if !seen.insert(row.reference.clone()) {
                report.refused.push(refuse("duplicate_in_file"));
                continue;
            }
            let status = if Some(row.fen) != instr.fen
                || Some(row.account.as_str()) != instr.account.as_deref()
            {
                "mismatched"
            } else {
                row.status
            };
            if let Some(done) = ledger.result_of(&row.reference) {
                if done.reason.as_deref() == Some(status) && done.fen == Some(row.fen) {
                    report.already += 1;
                } else {
                    report.refused.push(refuse("already_reconciled"));
                }
                continue;
            }
            let l = NewLine {
                kind: kind::BANK_RESULT,
                policy: instr.policy.clone(),
                policy_version: instr.policy_version,
                period: instr.period.clone(),
                uscc: instr.uscc.clone(),
                name: instr.name.clone(),
                principal: Some(principal.to_owned()),
                fen: Some(row.fen),
                account: Some(row.account.clone()),
                reference: Some(row.reference.clone()),
                reason: Some(status.to_owned()),
                ..NewLine::default()
            };
            if status == "paid" {
                paid += row.fen;
            }
            if matches!(status, "failed" | "returned") && instr.reason.as_deref() == Some("first") {
                report.reissuable += 1;
            }
            *report.recorded.entry(status.to_owned()).or_default() += 1;
            lines.push(l);
        }
        report.refused.sort_by_key(|r| r.line);
        report.paid_amount = yuan(paid);
        Ok((lines, report))
    })
    .await
}
