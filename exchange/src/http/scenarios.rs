//! `/v1/scenarios/elderly-allowance/runs`: the elderly allowance's monthly run through the
//! exchange, and the runs made so far.
//!
//! Data flow: the body (`{"month", "as_of"}`) → casbin: may the caller's role run (or read)
//! civil affairs' scenario (`scenario:elderly-allowance`, owner `mca`) → the run
//! ([`crate::scenarios::allowance::run`]: the lake as of the date through the lake's policy
//! as the operator, the ledger, one commit only one run can make) → its report; the audit
//! records the run with how many ledger lines it wrote (the ledger names the people, line by
//! line, under the run's number).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::error::{ApiError, parse_body};
use super::rows::parse_as_of;
use crate::authz::Action;
use crate::scenarios::allowance::publish::publish;
use crate::scenarios::allowance::run::{RunError, RunReport, RunRequest};

/// The scenario's name in casbin objects and the audit.
const SCENARIO: &str = "elderly-allowance";
/// The department whose scenario it is (civil affairs).
const OWNER: &str = "mca";

/// A month to pay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AllowanceRunBody {
    /// `YYYY-MM`.
    month: String,
    /// Read the lake as of this date (end of day, UTC+8) or RFC 3339 timestamp; default now.
    as_of: Option<String>,
}

fn entitled(caller: &Caller, action: &Action<'_>) -> Result<(), ApiError> {
    if caller
        .state
        .authz
        .allows(&caller.principal.id, &caller.principal.department, action)
    {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_entitled",
            "the elderly allowance's runs are civil affairs' (mca) systems' to make and read",
        ))
    }
}

fn run_error(e: RunError) -> ApiError {
    match &e {
        RunError::BadMonth { .. } | RunError::NotBegun { .. } => {
            ApiError::bad_request(e.code(), e.to_string())
        }
        RunError::BeforeLedgerStart { .. }
        | RunError::AsOfBeforeLastRun { .. }
        | RunError::NoRegistrations { .. }
        | RunError::Contended { .. } => ApiError::conflict(e.code(), e.to_string()),
        RunError::Column { .. } | RunError::Lake(_) => {
            let reason = match &e {
                RunError::Lake(l) => l.log_safe(),
                other => other.to_string(),
            };
            ApiError::internal(format!("elderly allowance run: {reason}"))
        }
    }
}

#[utoipa::path(post, path = "/v1/scenarios/elderly-allowance/runs", tag = "scenarios", security(("api_key" = [])),
    request_body = AllowanceRunBody,
    params(("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case the run is made for (e.g. the month's payroll)")),
    responses((status = 200, description = "the run: payments, recoveries, stops and notices it committed to the ledger (a repeated run commits none); with Kafka configured, `published` (or `publish_error`: the ledger keeps the outcomes for a later publish)", body = RunReport),
        (status = 400, description = "not a month, or a month that has not begun by the run's date; missing purpose or case id", body = super::doc::ErrorEnvelope),
        (status = 403, description = "not civil affairs' systems", body = super::doc::ErrorEnvelope),
        (status = 409, description = "a month before the ledger's first, a date before the last run's, a lake without registrations as of the date, or other runs kept committing first", body = super::doc::ErrorEnvelope)))]
pub(super) async fn allowance_run(
    State(app): State<AppState>,
    call: Call,
    body: Bytes,
) -> Response {
    let call = call.with_body(&body);
    let parsed = parse_body::<AllowanceRunBody>(&body);
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "run",
        format!("scenario:{SCENARIO}"),
        move |caller| async move {
            let body = parsed?;
            entitled(
                &caller,
                &Action::RunScenario {
                    scenario: SCENARIO,
                    owner: OWNER,
                },
            )?;
            let as_of = match parse_as_of(body.as_of.as_deref())? {
                Some(a) => a,
                None => gdx_lake::sql::AsOf::parse(&chrono::Utc::now().to_rfc3339())
                    .map_err(ApiError::internal)?,
            };
            let req = RunRequest {
                month: body.month,
                as_of,
            };
            let report = crate::scenarios::allowance::run::run(
                &app2.registry,
                app2.registry.lake(),
                &app2.allowance,
                &req,
            )
            .await
            .map_err(run_error)?;
            metrics::counter!("gdx_exchange_scenario_runs_total", "scenario" => "elderly_allowance")
                .increment(1);
            // The run is committed; publishing it may fail and be done later, from the ledger.
            let mut body = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
            if let Some(sink) = app2.outcomes.clone() {
                match publish(app2.registry.lake(), sink, None).await {
                    Ok(p) => {
                        body["published"] = serde_json::to_value(p)
                            .map_err(|e| ApiError::internal(e.to_string()))?;
                    }
                    Err(e) => {
                        tracing::warn!(run = report.run, error = %e, "publishing the allowance's outcomes failed; the ledger keeps them for a later publish");
                        body["publish_error"] = serde_json::Value::String(e.to_string());
                    }
                }
            }
            let lines = report.payments + report.recoveries + report.notices;
            let reason = format!(
                "run {} of {}: payments {}, recoveries {}, notices {}",
                report.run, report.month, report.payments, report.recoveries, report.notices
            );
            Ok(Answer {
                response: (StatusCode::OK, axum::Json(body)).into_response(),
                rows: lines as i64,
                subjects: Vec::new(),
                grants: Vec::new(),
                action: None,
                reason: Some(reason),
            })
        },
    )
    .await
}

/// Which runs to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct RunsQuery {
    /// At most this many, newest first (default 24, at most 1,000).
    limit: Option<usize>,
}

/// One run as the ledger records it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct RunRow {
    run: i64,
    month: String,
    as_of: String,
    recorded_at: String,
    /// Paid less recovered, yuan.
    net: String,
    /// What it did: counts and amounts, and the months it reconciled.
    summary: String,
}

#[utoipa::path(get, path = "/v1/scenarios/elderly-allowance/runs", tag = "scenarios", security(("api_key" = [])),
    params(RunsQuery),
    responses((status = 200, description = "the runs, newest first", body = Vec<RunRow>),
        (status = 403, description = "not civil affairs' systems or an auditor", body = super::doc::ErrorEnvelope)))]
pub(super) async fn allowance_runs(
    State(app): State<AppState>,
    call: Call,
    Query(q): Query<RunsQuery>,
) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        "read",
        format!("scenario:{SCENARIO}"),
        move |caller| async move {
            entitled(
                &caller,
                &Action::ReadScenario {
                    scenario: SCENARIO,
                    owner: OWNER,
                },
            )?;
            let limit = q.limit.unwrap_or(24).clamp(1, 1_000);
            let url = app2
                .registry
                .lake()
                .scenario(gdx_lake::ledger::ELDERLY_ALLOWANCE);
            let batches = gdx_lake::ledger::query(
                &url,
                &format!(
                    "select run, period, cast(as_of as varchar), cast(recorded_at as varchar), \
                     cast(amount as varchar), reason from t where kind = 'run' \
                     order by run desc limit {limit}"
                ),
            )
            .await
            .map_err(|e| ApiError::internal(format!("reading the ledger: {}", e.log_safe())))?;
            let mut rows = Vec::new();
            for b in &batches {
                let text = |i: usize| {
                    datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8)
                        .map_err(|_| ApiError::internal("the ledger's columns"))
                };
                let run = datafusion::arrow::compute::cast(b.column(0), &DataType::Int64)
                    .map_err(|_| ApiError::internal("the ledger's run column"))?;
                let run = run.as_primitive::<Int64Type>();
                let cols = (1..6).map(text).collect::<Result<Vec<_>, _>>()?;
                let s: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
                for i in 0..b.num_rows() {
                    let v = |c: usize| {
                        if s[c].is_valid(i) {
                            s[c].value(i).to_owned()
                        } else {
                            String::new()
                        }
                    };
                    rows.push(RunRow {
                        run: run.value(i),
                        month: v(0),
                        as_of: v(1),
                        recorded_at: v(2),
                        net: v(3),
                        summary: v(4),
                    });
                }
            }
            let n = rows.len() as i64;
            Ok(Answer {
                response: axum::Json(rows).into_response(),
                rows: n,
                subjects: Vec::new(),
                grants: Vec::new(),
                action: None,
                reason: None,
            })
        },
    )
    .await
}
