//! `/v1/rewards/…`: 云兑现 through the exchange — policies issued, decided, applied for,
//! approved step by step, disbursed and reconciled with the bank, each step by the principals
//! of the department it belongs to.
//!
//! Data flow: the call → casbin on `reward:<policy>` with the department the step is for
//! ([`RewardAct`]: the issuing department issues, decides and reads; an approval step's
//! approvers approve or reject; the paying department — the policy's last step — disburses
//! and reconciles; firms apply through an app) → the step
//! ([`crate::scenarios::rewards`], one commit of the ledger) → its report; the audit records
//! the step with the policy and firm as its object. The outcomes reach `gdx.notifications`
//! by the exchange's `rewards-outcomes` task, not in the call.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::error::{ApiError, parse_body};
use crate::authz::{Action, RewardAct};
use crate::scenarios::rewards::ledger::{self, StepError};
use crate::scenarios::rewards::{RewardPolicy, bank, steps};

fn step_error(e: StepError) -> ApiError {
    match e {
        StepError::Refused {
            code,
            message,
            missing: true,
        } => ApiError::new(axum::http::StatusCode::NOT_FOUND, code, message),
        StepError::Refused {
            code,
            message,
            missing: false,
        } => match code {
            "policy_invalid" | "account_invalid" | "reason_required" | "file_invalid"
            | "bad_as_of" => ApiError::bad_request(code, message),
            _ => ApiError::conflict(code, message),
        },
        StepError::Contended { .. } => ApiError::conflict("contended", e.to_string()),
        other => ApiError::internal(format!("rewards: {}", other.log_safe())),
    }
}

fn allowed(caller: &Caller, policy: &str, owner: &str, act: RewardAct) -> bool {
    caller.state.authz.allows(
        &caller.principal.id,
        &caller.principal.department,
        &Action::Reward { policy, owner, act },
    )
}

fn entitled(
    caller: &Caller,
    policy: &str,
    owner: &str,
    act: RewardAct,
    who: &str,
) -> Result<(), ApiError> {
    if allowed(caller, policy, owner, act) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_entitled",
            format!("{} {policy}: {who}", act.as_str()),
        ))
    }
}

/// The policy as issued, or 404.
async fn issued(app: &AppState, id: &str) -> Result<RewardPolicy, ApiError> {
    let ledger = ledger::load(app.registry.lake())
        .await
        .map_err(step_error)?;
    steps::policy_of(&ledger, id).map_err(step_error)
}

/// The departments a policy involves: the issuer and every approval step.
fn involved(p: &RewardPolicy) -> Vec<&str> {
    std::iter::once(p.department.as_str())
        .chain(p.approvals.iter().map(String::as_str))
        .collect()
}

fn json(v: &impl serde::Serialize, rows: i64, reason: Option<String>) -> Answer {
    Answer {
        rows,
        reason,
        ..Answer::new(axum::Json(v).into_response())
    }
}

/// One policy as listed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct PolicyRow {
    id: String,
    version: i64,
    title: Option<String>,
    department: Option<String>,
    period: String,
    /// Yuan.
    budget: Option<String>,
    issued_at: String,
}

#[utoipa::path(get, path = "/v1/rewards/policies", tag = "rewards", security(("api_key" = [])),
    responses((status = 200, description = "the reward policies issued (newest version of each)", body = Vec<PolicyRow>)))]
pub(super) async fn policies(State(app): State<AppState>, call: Call) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        "read",
        "reward:*".into(),
        move |_caller| async move {
            let ledger = ledger::load(app2.registry.lake())
                .await
                .map_err(step_error)?;
            let rows: Vec<PolicyRow> = ledger
                .policies()
                .into_iter()
                .map(|(_, l)| PolicyRow {
                    id: l.policy.clone(),
                    version: l.policy_version,
                    title: l.reason.clone(),
                    department: l.step.clone(),
                    period: l.period.clone(),
                    budget: l.amount.clone(),
                    issued_at: l.recorded_at.clone(),
                })
                .collect();
            let n = rows.len() as i64;
            Ok(json(&rows, n, None))
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/rewards/policies", tag = "rewards", security(("api_key" = [])),
    request_body(content = String, content_type = "application/toml", description = "the policy file (deploy/policies/rewards/*.toml)"),
    responses((status = 200, description = "recorded, or `already` (the same version and text)", body = steps::StepReport),
        (status = 400, description = "not a valid policy: the rule it breaks", body = super::doc::ErrorEnvelope),
        (status = 403, description = "not the issuing department's systems", body = super::doc::ErrorEnvelope),
        (status = 409, description = "a version not newer than the one issued", body = super::doc::ErrorEnvelope)))]
pub(super) async fn issue(State(app): State<AppState>, call: Call, body: Bytes) -> Response {
    let call = call.with_body(&body);
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        "issue",
        "reward:*".into(),
        move |caller| async move {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::bad_request("bad_body", "the policy is UTF-8 TOML"))?;
            let policy = RewardPolicy::parse(text)
                .map_err(|e| ApiError::bad_request("policy_invalid", e.to_string()))?;
            entitled(
                &caller,
                &policy.id,
                &policy.department,
                RewardAct::Issue,
                "a policy is issued by its department's systems",
            )?;
            let r = steps::issue(app2.registry.lake(), text, caller.principal.id.as_str())
                .await
                .map_err(step_error)?;
            let reason = format!("{} v{}: {}", policy.id, policy.version, r.outcome);
            Ok(json(&r, 1, Some(reason)))
        },
    )
    .await
}

/// A decision as of a day.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DecideBody {
    /// `YYYY-MM-DD` (end of day, UTC+8); default today in the district.
    as_of: Option<chrono::NaiveDate>,
}

#[utoipa::path(post, path = "/v1/rewards/policies/{id}/decisions", tag = "rewards", security(("api_key" = [])),
    params(("id" = String, Path, description = "the policy's id")),
    request_body = DecideBody,
    responses((status = 200, description = "the policy assessed over the lake and settled against the ledger; `decided_now` firms recorded", body = steps::DecideReport),
        (status = 403, description = "not the issuing department's systems", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no such policy issued", body = super::doc::ErrorEnvelope)))]
pub(super) async fn decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    call: Call,
    body: Bytes,
) -> Response {
    let call = call.with_body(&body);
    let parsed = if body.is_empty() {
        Ok(DecideBody { as_of: None })
    } else {
        parse_body::<DecideBody>(&body)
    };
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "decide",
        format!("reward:{id}"),
        move |caller| async move {
            let body = parsed?;
            let policy = issued(&app2, &id).await?;
            entitled(
                &caller,
                &id,
                &policy.department,
                RewardAct::Decide,
                "a policy is decided by its department's systems",
            )?;
            let day = body
                .as_of
                .unwrap_or_else(gdx_lake::sql::time_travel::district_today);
            let r = steps::decide(
                &app2.registry,
                app2.registry.lake(),
                &id,
                day,
                caller.principal.id.as_str(),
            )
            .await
            .map_err(step_error)?;
            let reason = format!("{id} as of {day}: {} decided now", r.decided_now);
            Ok(json(&r, r.decided_now as i64, Some(reason)))
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/rewards/policies/{id}/firms", tag = "rewards", security(("api_key" = [])),
    params(("id" = String, Path, description = "the policy's id")),
    responses((status = 200, description = "every firm decided under the policy and where its reward stands (accounts masked)", body = Vec<steps::FirmView>),
        (status = 403, description = "not a department the policy involves, nor an auditor", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no such policy issued", body = super::doc::ErrorEnvelope)))]
pub(super) async fn firms(
    State(app): State<AppState>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        "read",
        format!("reward:{id}"),
        move |caller| async move {
            let ledger = ledger::load(app2.registry.lake())
                .await
                .map_err(step_error)?;
            let policy = steps::policy_of(&ledger, &id).map_err(step_error)?;
            if !involved(&policy)
                .into_iter()
                .any(|d| allowed(&caller, &id, d, RewardAct::Read))
            {
                return Err(ApiError::forbidden(
                    "not_entitled",
                    format!("read {id}: the departments the policy involves and auditors read it"),
                ));
            }
            let rows = steps::firms(&ledger, &id).map_err(step_error)?;
            let n = rows.len() as i64;
            Ok(json(&rows, n, None))
        },
    )
    .await
}

/// A firm's application (or account confirmation).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApplicationBody {
    /// The firm's bank account to pay (8 to 32 digits).
    account: String,
}

fn firm_code(uscc: &str) -> Result<String, ApiError> {
    gdx_catalog::Uscc::parse(uscc)
        .map(|u| u.as_str().to_owned())
        .map_err(|_| ApiError::bad_request("bad_uscc", "uscc: not a valid 统一社会信用代码"))
}

#[utoipa::path(post, path = "/v1/rewards/policies/{id}/firms/{uscc}/application", tag = "rewards", security(("api_key" = [])),
    params(("id" = String, Path, description = "the policy's id"), ("uscc" = String, Path, description = "the firm's 统一社会信用代码")),
    request_body = ApplicationBody,
    responses((status = 200, description = "recorded (an application, or for a policy paid without one the account confirmed), or `already`", body = steps::StepReport),
        (status = 400, description = "not a USCC, not an account", body = super::doc::ErrorEnvelope),
        (status = 403, description = "not an app", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no such policy, or the firm is not decided eligible under it", body = super::doc::ErrorEnvelope),
        (status = 409, description = "rejected, or paid already", body = super::doc::ErrorEnvelope)))]
pub(super) async fn apply(
    State(app): State<AppState>,
    Path((id, uscc)): Path<(String, String)>,
    call: Call,
    body: Bytes,
) -> Response {
    let call = call.with_body(&body);
    let parsed = parse_body::<ApplicationBody>(&body);
    let app2 = app.clone();
    let object = format!("reward:{id}/{}", uscc.chars().take(18).collect::<String>());
    run(
        &app,
        call,
        Needs::Data,
        "apply",
        object,
        move |caller| async move {
            let body = parsed?;
            let uscc = firm_code(&uscc)?;
            let policy = issued(&app2, &id).await?;
            entitled(
                &caller,
                &id,
                &policy.department,
                RewardAct::Apply,
                "firms apply through an app",
            )?;
            let r = steps::apply(
                app2.registry.lake(),
                &id,
                &uscc,
                &body.account,
                caller.principal.id.as_str(),
            )
            .await
            .map_err(step_error)?;
            let reason = r.outcome.to_owned();
            Ok(json(&r, 1, Some(reason)))
        },
    )
    .await
}

/// An approval step's verdict.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalBody {
    /// `approve` or `reject`.
    verdict: String,
    /// Why (required to reject).
    reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/rewards/policies/{id}/firms/{uscc}/approval", tag = "rewards", security(("api_key" = [])),
    params(("id" = String, Path, description = "the policy's id"), ("uscc" = String, Path, description = "the firm's 统一社会信用代码")),
    request_body = ApprovalBody,
    responses((status = 200, description = "the caller's department's step recorded, or `already`", body = steps::StepReport),
        (status = 400, description = "not a verdict; a rejection without a reason", body = super::doc::ErrorEnvelope),
        (status = 403, description = "not an approver of a department the policy has a step for", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no such policy, or the firm is not decided under it", body = super::doc::ErrorEnvelope),
        (status = 409, description = "not this department's turn, no application yet, rejected already, or the budget is exhausted", body = super::doc::ErrorEnvelope)))]
pub(super) async fn approve(
    State(app): State<AppState>,
    Path((id, uscc)): Path<(String, String)>,
    call: Call,
    body: Bytes,
) -> Response {
    let call = call.with_body(&body);
    let parsed = parse_body::<ApprovalBody>(&body);
    let app2 = app.clone();
    let object = format!("reward:{id}/{}", uscc.chars().take(18).collect::<String>());
    run(
        &app,
        call,
        Needs::Data,
        "approve",
        object,
        move |caller| async move {
            let body = parsed?;
            let uscc = firm_code(&uscc)?;
            let verdict = match body.verdict.as_str() {
                "approve" => steps::Verdict::Approve,
                "reject" => steps::Verdict::Reject(body.reason.unwrap_or_default()),
                _ => {
                    return Err(ApiError::bad_request(
                        "bad_verdict",
                        "verdict: approve or reject",
                    ));
                }
            };
            let policy = issued(&app2, &id).await?;
            let department = caller.principal.department.to_string();
            if !policy.approvals.contains(&department) {
                return Err(ApiError::forbidden(
                    "not_entitled",
                    format!(
                        "approve {id}: its steps are {}'s",
                        policy.approvals.join(" → ")
                    ),
                ));
            }
            entitled(
                &caller,
                &id,
                &department,
                RewardAct::Approve,
                "a step is approved by its department's approvers",
            )?;
            let r = steps::approve(
                app2.registry.lake(),
                &id,
                &uscc,
                &department,
                &verdict,
                caller.principal.id.as_str(),
            )
            .await
            .map_err(step_error)?;
            let reason = format!(
                "{} by {department}: {}",
                match verdict {
                    steps::Verdict::Approve => "approval",
                    steps::Verdict::Reject(_) => "rejection",
                },
                r.outcome
            );
            Ok(json(&r, 1, Some(reason)))
        },
    )
    .await
}

/// The paying department: the policy's last approval step.
fn payer(p: &RewardPolicy) -> &str {
    p.approvals
        .last()
        .map_or(p.department.as_str(), String::as_str)
}

#[utoipa::path(post, path = "/v1/rewards/policies/{id}/disbursements", tag = "rewards", security(("api_key" = [])),
    params(("id" = String, Path, description = "the policy's id")),
    responses((status = 200, description = "instructions issued now (one per firm, policy and period; a failed or returned payment re-issued once) and the bank's batch: every instruction without a result (accounts in full: the payer sends them to the bank)", body = bank::DisburseReport),
        (status = 403, description = "not the paying department's (the policy's last step) systems", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no such policy issued", body = super::doc::ErrorEnvelope)))]
pub(super) async fn disburse(
    State(app): State<AppState>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "disburse",
        format!("reward:{id}"),
        move |caller| async move {
            let policy = issued(&app2, &id).await?;
            entitled(
                &caller,
                &id,
                payer(&policy),
                RewardAct::Disburse,
                "the paying department's systems disburse",
            )?;
            let r = bank::disburse(app2.registry.lake(), &id, caller.principal.id.as_str())
                .await
                .map_err(step_error)?;
            let reason = format!(
                "{id}: {} issued ({} re-issued), {}",
                r.issued, r.reissued, r.issued_amount
            );
            Ok(json(&r, r.issued as i64, Some(reason)))
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/rewards/bank-results", tag = "rewards", security(("api_key" = [])),
    request_body(content = String, content_type = "text/csv", description = "the bank's batch return file: account, amount, status, reference (header row; Chinese headers and statuses accepted)"),
    responses((status = 200, description = "results recorded by status, rows refused by line and rule", body = bank::ReconcileReport),
        (status = 400, description = "not a readable file, or a column missing", body = super::doc::ErrorEnvelope)))]
pub(super) async fn bank_results(State(app): State<AppState>, call: Call, body: Bytes) -> Response {
    let call = call.with_body(&body);
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "reconcile",
        "reward:*".into(),
        move |caller| async move {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::bad_request("bad_body", "the bank's file is UTF-8 CSV"))?;
            let may = |p: &RewardPolicy| allowed(&caller, &p.id, payer(p), RewardAct::Reconcile);
            let r = bank::reconcile(
                app2.registry.lake(),
                text,
                caller.principal.id.as_str(),
                may,
            )
            .await
            .map_err(step_error)?;
            let n: usize = r.recorded.values().sum();
            let reason = format!(
                "{n} results recorded, {} refused, {} already",
                r.refused.len(),
                r.already
            );
            Ok(json(&r, n as i64, Some(reason)))
        },
    )
    .await
}
