//! `GET /v1/projects/{code}/timeline`: one major project's events across departments in
//! order, with the stages that took longer than the district allows, the one it is stuck in
//! and the gaps.
//!
//! Data flow: the caller's [`CallerPolicy`] → rows of `ndrc.project_event` (its
//! department's, or a grant; else 404 as for its rows) → the project's events through a lake
//! session under that policy, as of the date asked → [`timeline`] under the exchange's stage
//! limits → JSON; the audit records the project asked about.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::error::ApiError;
use super::rows::{parse_as_of, row_access, session_options};
use crate::access::CallerPolicy;
use crate::scenarios::projects::{ReadError, read, timeline as build};
use gdx_lake::sql::LakeSession;

const EVENTS: &str = "ndrc.project_event";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct TimelineQuery {
    /// A date (end of day, UTC+8) or RFC 3339 timestamp; default now.
    as_of: Option<String>,
}

#[utoipa::path(get, path = "/v1/projects/{code}/timeline", tag = "scenarios", security(("api_key" = [])),
    params(("code" = String, Path, description = "the project's 投资项目统一代码"), TimelineQuery,
        ("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case the call is for")),
    responses((status = 200, description = "the project's stages in order (the event of each, days since the stage before, the days allowed) with flags `overdue`, `out_of_order`, `gap`, `stuck`, `waiting`; its status (`completed`, `stuck`, `in_progress`)", body = crate::scenarios::projects::Timeline),
        (status = 400, description = "not a project code, a bad date; missing purpose or case id", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no event of this project as of the date, or `ndrc.project_event` not readable by the caller", body = super::doc::ErrorEnvelope)))]
pub(super) async fn timeline(
    State(app): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<TimelineQuery>,
    call: Call,
) -> Response {
    let app2 = app.clone();
    let object = format!("project:{}", code.chars().take(40).collect::<String>());
    run(
        &app,
        call,
        Needs::Data,
        "read_timeline",
        object,
        move |caller| async move { answer(&app2, caller, &code, q).await },
    )
    .await
}

async fn answer(
    app: &AppState,
    caller: Caller,
    code: &str,
    q: TimelineQuery,
) -> Result<Answer, ApiError> {
    let as_of = parse_as_of(q.as_of.as_deref())?;
    let policy = CallerPolicy::of(&caller.state, &caller.principal, chrono::Utc::now());
    row_access(&policy, EVENTS)?;
    let session = LakeSession::open(
        &app.registry,
        policy.clone().into_arc(),
        &session_options(app, as_of, 10_000),
    )
    .await?;
    let projects = read(&session, Some(code)).await.map_err(|e| match e {
        ReadError::BadCode => ApiError::bad_request("bad_project_code", e.to_string()),
        ReadError::Lake(l) => l.into(),
        other => ApiError::internal(other.to_string()),
    })?;
    let Some(p) = projects.into_iter().next() else {
        return Err(ApiError::not_found(format!(
            "project {code}: no event recorded as of the date"
        )));
    };
    let day = as_of.map_or_else(gdx_lake::sql::time_travel::district_today, |a| a.date());
    let t = build(&app.project_stages, &p, day);
    let rows = t.stages.iter().filter(|s| s.date.is_some()).count() as i64;
    Ok(Answer {
        rows,
        grants: policy.grants_for(&[EVENTS.to_owned()]),
        ..Answer::new(axum::Json(t).into_response())
    })
}
