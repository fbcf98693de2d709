//! `GET /v1/profiles/citizens/{resident_id}` and `/v1/profiles/enterprises/{uscc}`: one
//! profile as the caller's grant on it shows it.
//!
//! Data flow: the identifier is checked and normalised (full-width digits, lowercase x) →
//! the caller's policy, limited to that subject's row by stored value → the profile held in
//! memory at the newest version (no query planned), or else a lake session (an `as_of`, or
//! a version not indexed yet) → the one row (masked fields masked, ungranted fields absent)
//! or 404.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gdx_catalog::{ResidentId, Uscc};
use gdx_lake::lookup::Lookup;
use gdx_lake::sql::LakeSession;
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::encode::json_rows;
use super::error::ApiError;
use super::rows::{parse_as_of, row_access, session_options, table_sql};
use crate::access::CallerPolicy;

#[derive(Debug, Deserialize)]
pub(super) struct ProfileQuery {
    as_of: Option<String>,
}

#[utoipa::path(get, path = "/v1/profiles/citizens/{id}", tag = "data", security(("api_key" = [])),
    params(("id" = String, Path, description = "a resident ID (full-width digits and lowercase x accepted)"), ("as_of" = Option<String>, Query, description = "a date or RFC 3339 timestamp"), ("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case or application the call is for"), ("X-End-User" = Option<String>, Header, description = "the person at the window, recorded")),
    responses((status = 200, description = "the profile as the caller's grant shows it", body = super::doc::ProfileAnswer),
        (status = 400, description = "not a valid identifier", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no profile, or no grant", body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn citizen(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ProfileQuery>,
    call: Call,
) -> Response {
    let parsed = ResidentId::parse(&id).map(|r| r.as_str().to_owned());
    let parsed =
        parsed.map_err(|e| ApiError::bad_request("bad_resident_id", format!("resident ID: {e}")));
    lookup(app, call, "citizen", parsed, q).await
}

#[utoipa::path(get, path = "/v1/profiles/enterprises/{id}", tag = "data", security(("api_key" = [])),
    params(("id" = String, Path, description = "a unified social credit code"), ("as_of" = Option<String>, Query, description = "a date or RFC 3339 timestamp"), ("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case or application the call is for"), ("X-End-User" = Option<String>, Header, description = "the person at the window, recorded")),
    responses((status = 200, description = "the profile as the caller's grant shows it", body = super::doc::ProfileAnswer),
        (status = 400, description = "not a valid identifier", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no profile, or no grant", body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn enterprise(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ProfileQuery>,
    call: Call,
) -> Response {
    let parsed = Uscc::parse(&id).map(|u| u.as_str().to_owned());
    let parsed = parsed.map_err(|e| ApiError::bad_request("bad_uscc", format!("USCC: {e}")));
    lookup(app, call, "enterprise", parsed, q).await
}

/// One profile of `profiles.<kind>` by its checked identifier, as an audited call.
async fn lookup(
    app: AppState,
    call: Call,
    kind: &str,
    parsed: Result<String, ApiError>,
    q: ProfileQuery,
) -> Response {
    let object = match &parsed {
        Ok(id) => format!("profile:{kind}/{id}"),
        Err(_) => format!("profile:{kind}/<invalid id>"),
    };
    let resource = format!("profiles.{kind}");
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "read_profile",
        object,
        move |caller| async move {
            profile(&app2, caller, &resource, &parsed?, q.as_of.as_deref()).await
        },
    )
    .await
}

async fn profile(
    app: &AppState,
    caller: Caller,
    resource: &str,
    subject_id: &str,
    as_of: Option<&str>,
) -> Result<Answer, ApiError> {
    let Some(r) = app.resources.get(resource) else {
        return Err(ApiError::not_found("no such resource"));
    };
    let subject = r
        .subject
        .clone()
        .ok_or_else(|| ApiError::internal("a profile without a subject column"))?;
    let policy = CallerPolicy::of(&caller.state, &caller.principal, chrono::Utc::now());
    let access = row_access(&policy, resource)?;
    let as_of = parse_as_of(as_of)?;
    // The newest version, held in memory: no query to plan. Otherwise (an older version, or
    // a version whose index is still being built) a session scans for it.
    let index = match as_of {
        None => app.lookups.current(resource, &app.registry),
        Some(_) => None,
    };
    let batches = match index {
        Some(index) => {
            metrics::counter!("gdx_exchange_profile_lookups_total", "path" => "memory")
                .increment(1);
            // The index finds the subject's row itself: no lookup filter to evaluate.
            match index.lookup(&policy, subject_id)? {
                Lookup::Rows(batch) => vec![batch],
                Lookup::NotReadable => return Err(ApiError::not_found("no such resource")),
            }
        }
        None => {
            metrics::counter!("gdx_exchange_profile_lookups_total", "path" => "scan").increment(1);
            let policy = policy.with_lookup(resource, &subject, subject_id);
            let session = LakeSession::open(
                &app.registry,
                policy.into_arc(),
                &session_options(app, as_of, 2),
            )
            .await?;
            session
                .query(&format!("select * from {}", table_sql(resource)))
                .await?
                .batches
        }
    };
    if batches.iter().map(|b| b.num_rows()).sum::<usize>() == 0 {
        return Err(ApiError::not_found("no profile for this subject"));
    }
    let rows = json_rows(&batches)?;
    // One row: the object itself.
    let text = String::from_utf8_lossy(&rows);
    let object = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or("{}")
        .to_owned();
    let body = format!(
        "{{\"profile\":{},\"level\":\"{}\",\"as_of\":{}}}",
        object,
        access.level,
        as_of.map_or("null".to_owned(), |a| serde_json::Value::String(
            a.cutoff().to_rfc3339()
        )
        .to_string())
    );
    Ok(Answer {
        response: ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        rows: 1,
        subjects: vec![subject_id.to_owned()],
        grants: access.grant.iter().map(|g| g.to_string()).collect(),
        action: Some(format!("read:{}", access.level)),
        reason: None,
    })
}
