//! The steps of a reward, each one commit of the ledger: a policy issued, a policy decided,
//! a firm's application (or account confirmation), an approval or a rejection.
//!
//! Data flow: a request (who, what) → [`super::ledger::transact`]: the step's rules checked
//! against the ledger as it is (the policy issued, the firm decided, not rejected, applied
//! when the policy needs it, the approvals in the policy's order, the budget at the last
//! approval) → its line, or a refusal naming the rule (nothing written). Repeating a step
//! that is done writes nothing and says so. Who may make a step is casbin's to say before
//! (the exchange's handlers); here `principal` is recorded.

use chrono::{DateTime, NaiveDate, Utc};
use gdx_lake::sql::{AsOf, LakeSession, SessionOptions};
use gdx_lake::{AllowAll, LakeLocation, TableRegistry};
use serde::Serialize;

use super::ledger::{Ledger, NewLine, StepError, kind, period, transact};
use super::policy::{RewardPolicy, yuan};
use super::run::RewardsReport;

/// What a step did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StepReport {
    /// `recorded`, or `already` (the ledger held it: nothing written).
    pub outcome: &'static str,
    pub policy: String,
    pub period: String,
    pub uscc: Option<String>,
    /// Where the firm's reward stands now.
    pub status: Option<String>,
}

/// The policy `id` as the ledger holds it (newest version).
pub fn policy_of(ledger: &Ledger, id: &str) -> Result<RewardPolicy, StepError> {
    ledger.policy(id).map(|(p, _)| p).ok_or_else(|| {
        StepError::missing(
            "unknown_policy",
            format!("no reward policy {id:?} has been issued"),
        )
    })
}

/// Issues a policy (its TOML text, checked): a new id, or a higher version of one. The same
/// version again is accepted when its text is the same.
pub async fn issue(
    lake: &LakeLocation,
    text: &str,
    principal: &str,
) -> Result<StepReport, StepError> {
    let policy = RewardPolicy::parse(text)
        .map_err(|e| StepError::refused("policy_invalid", e.to_string()))?;
    transact(lake, |ledger| {
        let report = |outcome| StepReport {
            outcome,
            policy: policy.id.clone(),
            period: period(&policy),
            uscc: None,
            status: None,
        };
        if let Some((_, line)) = ledger.policy(&policy.id) {
            let v = i64::from(policy.version);
            if line.policy_version == v && line.detail.as_deref() == Some(text) {
                return Ok((Vec::new(), report("already")));
            }
            if line.policy_version >= v {
                return Err(StepError::refused(
                    "version_not_newer",
                    format!(
                        "reward policy {} is issued at version {}: a change is a higher version",
                        policy.id, line.policy_version
                    ),
                ));
            }
        }
        let line = NewLine {
            kind: kind::POLICY,
            policy: policy.id.clone(),
            policy_version: i64::from(policy.version),
            period: period(&policy),
            step: Some(policy.department.clone()),
            principal: Some(principal.to_owned()),
            fen: Some(policy.budget),
            reason: Some(policy.title.clone()),
            detail: Some(text.to_owned()),
            ..NewLine::default()
        };
        Ok((vec![line], report("recorded")))
    })
    .await
}

/// What a decision run did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DecideReport {
    /// The firms decided now (eligible, not in the ledger before).
    pub decided_now: usize,
    #[serde(flatten)]
    pub report: RewardsReport,
}

/// The end of `day` in the district (UTC+8), as a lake reads "as of" a date.
fn day_end(day: NaiveDate) -> Result<AsOf, StepError> {
    AsOf::parse(&day.format("%Y-%m-%d").to_string())
        .map_err(|e| StepError::refused("bad_as_of", e.to_string()))
}

/// Decides policy `id` over the lake as of `as_of` and records each eligible firm not
/// decided before, with what it is owed and the evidence.
pub async fn decide(
    registry: &TableRegistry,
    lake: &LakeLocation,
    id: &str,
    as_of: NaiveDate,
    principal: &str,
) -> Result<DecideReport, StepError> {
    let policy = policy_of(&super::ledger::load(lake).await?, id)?;
    let opts = SessionOptions {
        as_of: Some(day_end(as_of)?),
        max_rows: usize::MAX,
        ..SessionOptions::default()
    };
    let session = LakeSession::open(registry, std::sync::Arc::new(AllowAll), &opts).await?;
    let assessed = super::run::assess(&session, &policy, as_of).await?;
    let as_of_ts: DateTime<Utc> = day_end(as_of)?.cutoff();
    transact(lake, |ledger| {
        // The policy as the ledger holds it now (a newer version issued meanwhile decides).
        let policy = policy_of(ledger, id)?;
        let mut report = super::settle::settle(&policy, as_of, assessed.clone(), ledger);
        let mut lines = Vec::new();
        for d in report.eligible.iter_mut().filter(|d| !d.decided) {
            let mut l = NewLine::about(kind::DECISION, &policy, &d.uscc);
            l.name = d.name.clone();
            l.step = Some(policy.department.clone());
            l.principal = Some(principal.to_owned());
            l.fen = d.amount.as_deref().and_then(crate::scenarios::hundredths);
            l.tier = d.tier.clone();
            l.reason = d.basis.clone();
            l.detail = serde_json::to_string(&d.evidence).ok();
            l.as_of = Some(as_of_ts);
            lines.push(l);
            d.decided = true;
        }
        let decided_now = lines.len();
        Ok((
            lines,
            DecideReport {
                decided_now,
                report,
            },
        ))
    })
    .await
}

/// A bank account as a firm gives it: 8 to 32 digits.
fn account_ok(account: &str) -> bool {
    (8..=32).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_digit())
}

/// Records a firm's application (a policy that needs one) or, for a policy paid without one
/// (免申即享), its confirmation of the account to pay: after the decision, before the
/// payment (a new account after a failed or returned payment is accepted for the re-issue).
pub async fn apply(
    lake: &LakeLocation,
    id: &str,
    uscc: &str,
    account: &str,
    principal: &str,
) -> Result<StepReport, StepError> {
    if !account_ok(account) {
        return Err(StepError::refused(
            "account_invalid",
            "account: a bank account is 8 to 32 digits",
        ));
    }
    transact(lake, |ledger| {
        let policy = policy_of(ledger, id)?;
        let per = period(&policy);
        let firms = ledger.firms(&policy.id, &per);
        let firm = firms.get(uscc).ok_or_else(|| not_decided(&policy))?;
        if firm.rejection.is_some() {
            return Err(rejected(&policy));
        }
        let report = |outcome| StepReport {
            outcome,
            policy: policy.id.clone(),
            period: per.clone(),
            uscc: Some(uscc.to_owned()),
            status: Some(firm.status(&policy)),
        };
        if firm.account() == Some(account) {
            return Ok((Vec::new(), report("already")));
        }
        if firm.live_instruction().is_some() {
            return Err(StepError::refused(
                "already_disbursed",
                "the reward has been sent to the bank: the account cannot change unless the payment fails or is returned",
            ));
        }
        let k = if policy.application {
            kind::APPLICATION
        } else {
            kind::CONFIRMATION
        };
        let mut l = NewLine::about(k, &policy, uscc);
        l.name = firm.decision.name.clone();
        l.principal = Some(principal.to_owned());
        l.account = Some(account.to_owned());
        Ok((vec![l], report("recorded")))
    })
    .await
}

/// An approval step's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    /// A rejection, with its reason (required).
    Reject(String),
}

fn not_decided(policy: &RewardPolicy) -> StepError {
    StepError::missing(
        "not_decided",
        format!(
            "the firm has no decision under {}: it is not eligible, or the policy has not been decided since it became so",
            policy.id
        ),
    )
}

fn rejected(policy: &RewardPolicy) -> StepError {
    StepError::refused(
        "rejected",
        format!("the firm's reward under {} was rejected", policy.id),
    )
}

/// `department`'s approval (or rejection) of a firm's reward: in the policy's order, after
/// the application when one is needed; the last approval only while the budget holds it.
pub async fn approve(
    lake: &LakeLocation,
    id: &str,
    uscc: &str,
    department: &str,
    verdict: &Verdict,
    principal: &str,
) -> Result<StepReport, StepError> {
    if let Verdict::Reject(reason) = verdict
        && reason.trim().chars().count() < 2
    {
        return Err(StepError::refused(
            "reason_required",
            "reason: a rejection says why (at least two characters)",
        ));
    }
    transact(lake, |ledger| {
        let policy = policy_of(ledger, id)?;
        let per = period(&policy);
        let firms = ledger.firms(&policy.id, &per);
        let firm = firms.get(uscc).ok_or_else(|| not_decided(&policy))?;
        let report = |outcome, status: String| StepReport {
            outcome,
            policy: policy.id.clone(),
            period: per.clone(),
            uscc: Some(uscc.to_owned()),
            status: Some(status),
        };
        if !policy.approvals.iter().any(|d| d == department) {
            return Err(StepError::refused(
                "not_a_step",
                format!(
                    "{department} approves no step of {} (its steps: {})",
                    policy.id,
                    policy.approvals.join(" → ")
                ),
            ));
        }
        if let Some(r) = firm.rejection {
            if matches!(verdict, Verdict::Reject(_)) && r.step.as_deref() == Some(department) {
                return Ok((Vec::new(), report("already", firm.status(&policy))));
            }
            return Err(rejected(&policy));
        }
        let done = firm
            .approvals
            .iter()
            .any(|a| a.step.as_deref() == Some(department));
        if done {
            return match verdict {
                Verdict::Approve => Ok((Vec::new(), report("already", firm.status(&policy)))),
                Verdict::Reject(_) => Err(StepError::refused(
                    "already_approved",
                    format!("{department} approved this reward already"),
                )),
            };
        }
        if policy.application && !firm.applied() {
            return Err(StepError::refused(
                "no_application",
                format!(
                    "{} is paid on application: the firm has not applied",
                    policy.id
                ),
            ));
        }
        let next = firm.next_step(&policy).unwrap_or_default();
        if next != department {
            return Err(StepError::refused(
                "out_of_order",
                format!("the next approval of this reward is {next}'s"),
            ));
        }
        let last = firm.approvals.len() + 1 == policy.approvals.len();
        let mut l = NewLine::about(
            match verdict {
                Verdict::Approve => kind::APPROVAL,
                Verdict::Reject(_) => kind::REJECTION,
            },
            &policy,
            uscc,
        );
        l.name = firm.decision.name.clone();
        l.step = Some(department.to_owned());
        l.principal = Some(principal.to_owned());
        l.fen = firm.decision.fen;
        if let Verdict::Reject(reason) = verdict {
            l.reason = Some(reason.trim().to_owned());
            return Ok((vec![l], report("recorded", "rejected".into())));
        }
        if last {
            let approved: i64 = firms
                .values()
                .filter(|f| f.approved(&policy))
                .map(|f| f.fen())
                .sum();
            if approved + firm.fen() > policy.budget {
                return Err(StepError::refused(
                    "budget_exhausted",
                    format!(
                        "{} approved of {}'s budget of {}: this reward ({}) does not fit",
                        yuan(approved),
                        policy.id,
                        yuan(policy.budget),
                        yuan(firm.fen())
                    ),
                ));
            }
        }
        let status = if last {
            if firm.account().is_some() {
                "approved".to_owned()
            } else {
                "awaiting_account".to_owned()
            }
        } else {
            format!(
                "awaiting_approval:{}",
                policy.approvals[firm.approvals.len() + 1]
            )
        };
        Ok((vec![l], report("recorded", status)))
    })
    .await
}

/// One firm's reward as the ledger holds it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FirmView {
    pub uscc: String,
    pub name: Option<String>,
    /// Yuan decided.
    pub amount: Option<String>,
    pub tier: Option<String>,
    pub basis: Option<String>,
    /// `awaiting_application`, `awaiting_approval:<department>`, `awaiting_account`,
    /// `approved`, `instructed`, `paid`, `failed`, `returned`, `mismatched`, `rejected`.
    pub status: String,
    pub approved_by: Vec<String>,
    pub rejection_reason: Option<String>,
    /// The firm's lines, oldest first (accounts masked).
    pub lines: Vec<super::ledger::Line>,
}

/// Every firm decided under policy `id`, with where its reward stands.
pub fn firms(ledger: &Ledger, id: &str) -> Result<Vec<FirmView>, StepError> {
    let policy = policy_of(ledger, id)?;
    let per = period(&policy);
    let firms = ledger.firms(&policy.id, &per);
    Ok(firms
        .iter()
        .map(|(u, f)| FirmView {
            uscc: (*u).to_owned(),
            name: f.decision.name.clone(),
            amount: f.decision.amount.clone(),
            tier: f.decision.tier.clone(),
            basis: f.decision.reason.clone(),
            status: f.status(&policy),
            approved_by: f.approvals.iter().filter_map(|a| a.step.clone()).collect(),
            rejection_reason: f.rejection.and_then(|r| r.reason.clone()),
            lines: ledger
                .lines
                .iter()
                .filter(|l| {
                    l.policy == policy.id && l.period == per && l.uscc.as_deref() == Some(*u)
                })
                .map(super::ledger::Line::masked)
                .collect(),
        })
        .collect())
}
