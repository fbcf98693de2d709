//! `GET /v1/scenarios/entitlements`: 应享未享 and its reverse for civil-affairs (and
//! pensions) staff — per benefit the caller may read, how many people are entitled but not
//! receiving it and how many receive it without being entitled, by rule.
//!
//! Data flow: the caller's [`CallerPolicy`] → the benefits whose `scenarios.<benefit>_gaps`
//! it reads row by row (its department's own, or a raw or masked grant; none: 403) → one
//! lake session under that policy, as of the date asked (default: now) → per view the
//! findings counted by direction and rule → a JSON summary that links each view's rows
//! (`/v1/datasets/scenarios.<benefit>_gaps/rows`, where the evidence and the people are, as
//! the caller's grant shows them). The audit records the call with the findings counted.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gdx_lake::entitlements::Benefit;
use gdx_lake::sql::LakeSession;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::error::ApiError;
use super::rows::{parse_as_of, session_options, table_sql};
use crate::access::CallerPolicy;
use crate::model::ProcessingLevel;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct GapsQuery {
    /// A date (end of day, UTC+8) or RFC 3339 timestamp; default now.
    as_of: Option<String>,
}

/// How many findings of one kind.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct GapCount {
    /// `entitled_not_receiving` or `receiving_not_entitled`.
    direction: String,
    /// Why (e.g. `not_paid`, `deceased`, `certificate_not_valid`).
    rule: String,
    people: i64,
}

/// One benefit's findings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct BenefitGaps {
    benefit: &'static str,
    /// The department that runs it.
    department: &'static str,
    /// The benefit's own records the findings are about.
    dataset: &'static str,
    /// The view with one row per finding (person, item, evidence).
    view: String,
    /// Where its rows are read, as of the same date.
    rows: String,
    entitled_not_receiving: i64,
    receiving_not_entitled: i64,
    by_rule: Vec<GapCount>,
}

/// The findings of every benefit the caller may read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct GapsReport {
    /// The date the findings hold for.
    as_of: String,
    benefits: Vec<BenefitGaps>,
}

#[utoipa::path(get, path = "/v1/scenarios/entitlements", tag = "scenarios", security(("api_key" = [])),
    params(GapsQuery, ("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case or review the call is for")),
    responses((status = 200, description = "per benefit the caller may read (its department's, or a raw or masked grant on `scenarios.<benefit>_gaps`): who is entitled but not receiving it and who receives it without being entitled, counted by rule; the people and the evidence are the view's rows", body = GapsReport),
        (status = 400, description = "a bad date; missing purpose or case id", body = super::doc::ErrorEnvelope),
        (status = 403, description = "no benefit's findings readable by the caller", body = super::doc::ErrorEnvelope)))]
pub(super) async fn entitlements(
    State(app): State<AppState>,
    Query(q): Query<GapsQuery>,
    call: Call,
) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "read_gaps",
        "scenario:entitlements".into(),
        move |caller| async move { report(&app2, caller, q).await },
    )
    .await
}

async fn report(app: &AppState, caller: Caller, q: GapsQuery) -> Result<Answer, ApiError> {
    let as_of = parse_as_of(q.as_of.as_deref())?;
    let policy = CallerPolicy::of(&caller.state, &caller.principal, chrono::Utc::now());
    let readable: Vec<Benefit> = Benefit::ALL
        .into_iter()
        .filter(|b| {
            policy
                .resource(&b.table())
                .is_some_and(|a| matches!(a.level, ProcessingLevel::Raw | ProcessingLevel::Masked))
        })
        .collect();
    if readable.is_empty() {
        return Err(ApiError::forbidden(
            "not_entitled",
            "no benefit's findings are readable: they are their department's (mca, hrss), or need a raw or masked grant on scenarios.<benefit>_gaps",
        ));
    }
    let day = as_of.map_or_else(gdx_lake::sql::time_travel::district_today, |a| a.date());
    let session = LakeSession::open(
        &app.registry,
        policy.clone().into_arc(),
        &session_options(app, as_of, 1_000),
    )
    .await?;
    let at = day.format("%Y-%m-%d");
    let mut benefits = Vec::new();
    let mut tables = Vec::new();
    let mut total = 0;
    for b in readable {
        let table = b.table();
        let by_rule = counts(&session, &table).await?;
        let sum = |d: &str| {
            by_rule
                .iter()
                .filter(|c| c.direction == d)
                .map(|c| c.people)
                .sum()
        };
        let gaps = BenefitGaps {
            benefit: b.name(),
            department: b.department(),
            dataset: b.dataset(),
            rows: format!("/v1/datasets/{table}/rows?as_of={at}"),
            view: table.clone(),
            entitled_not_receiving: sum(gdx_lake::entitlements::ENTITLED_NOT_RECEIVING),
            receiving_not_entitled: sum(gdx_lake::entitlements::RECEIVING_NOT_ENTITLED),
            by_rule,
        };
        total += gaps.entitled_not_receiving + gaps.receiving_not_entitled;
        benefits.push(gaps);
        tables.push(table);
    }
    let body = serde_json::to_string(&GapsReport {
        as_of: at.to_string(),
        benefits,
    })
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Answer {
        response: ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        rows: total,
        subjects: vec![],
        grants: policy.grants_for(&tables),
        action: Some(format!("read_gaps {}", tables.join(","))),
        reason: None,
    })
}

/// The findings of one gaps view counted by direction and rule.
async fn counts(session: &LakeSession, table: &str) -> Result<Vec<GapCount>, ApiError> {
    let sql = format!(
        "SELECT CAST(direction AS VARCHAR), CAST(rule AS VARCHAR), count(*) FROM {} \
         GROUP BY 1, 2 ORDER BY 1, 2",
        table_sql(table)
    );
    let out = session.query(&sql).await?;
    let mut rows = Vec::new();
    for r in crate::scenarios::text_rows(&out.batches)
        .map_err(|e| ApiError::internal(format!("{table}: {e}")))?
    {
        let (Some(direction), Some(rule), Some(people)) = (&r[0], &r[1], &r[2]) else {
            continue;
        };
        rows.push(GapCount {
            direction: direction.clone(),
            rule: rule.clone(),
            people: people
                .parse()
                .map_err(|_| ApiError::internal(format!("{table}: count is not an integer")))?,
        });
    }
    Ok(rows)
}
