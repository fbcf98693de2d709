//! Grant endpoints: request, list, show, approve, deny, revoke.
//!
//! Data flow: the caller and the grant's resource → casbin decides the typed action
//! (request, approve, deny, revoke, withdraw) → the grant rules decide against the state at
//! the journal's head ([`crate::store::Store::change_grant`]: compare-and-swap, so a
//! concurrent approval and revocation are applied in one order and the loser is told) →
//! the new state is in force before the answer (the very next call sees it).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::error::{ApiError, parse_body};
use crate::grants::{Grant, GrantChange, GrantRequest, GrantStatus};
use crate::model::{GrantId, ProcessingLevel, Role};
use crate::ops::{self, Decision};

/// A grant request as sent: the consumer is the caller unless an admin names another.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestBody {
    resource: String,
    #[schema(value_type = String, example = "masked")]
    level: ProcessingLevel,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    rows: std::collections::BTreeMap<String, Vec<String>>,
    purpose: String,
    #[serde(default)]
    legal_basis: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    #[serde(default)]
    reason: String,
}

fn grant_json(g: &Grant) -> serde_json::Value {
    let now = chrono::Utc::now();
    let mut v = serde_json::to_value(g).unwrap_or_default();
    v["status"] = serde_json::to_value(g.status_at(now)).unwrap_or_default();
    v
}

#[utoipa::path(post, path = "/v1/grants", tag = "grants", security(("api_key" = [])), request_body = RequestBody,
    responses((status = 201, description = "requested (or active at once where the matrix allows)", body = super::doc::GrantAnswer),
        (status = 403, description = "role or purpose not allowed", body = super::doc::ErrorEnvelope),
        (status = 422, description = "the request breaks a rule (legal basis, minimised fields, expiry), or the data is never shared so", body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn request(State(app): State<AppState>, call: Call, body: Bytes) -> Response {
    let call = call.with_body(&body);
    let app2 = app.clone();
    let parsed: Result<RequestBody, ApiError> = parse_body(&body);
    let object = match &parsed {
        Ok(b) => format!("grant:{}", b.resource),
        Err(_) => "grant:<unreadable request>".into(),
    };
    run(
        &app,
        call,
        Needs::Key,
        "grant_request",
        object,
        move |caller| async move {
            let b = parsed?;
            let request = GrantRequest {
                consumer: caller.principal.id.clone(),
                resource: b.resource,
                level: b.level,
                fields: b.fields,
                rows: b.rows,
                purpose: b.purpose,
                legal_basis: b.legal_basis,
                expires_at: b.expires_at,
            };
            let change =
                ops::request_grant(&app2.store, &app2.purposes, &caller.principal, request).await?;
            answer_change(&app2, &change, StatusCode::CREATED)
        },
    )
    .await
}

fn answer_change(
    app: &AppState,
    change: &GrantChange,
    status: StatusCode,
) -> Result<Answer, ApiError> {
    let state = app.store.current();
    let g = state
        .grants
        .get(change.grant())
        .ok_or_else(|| ApiError::internal("a committed grant change is not in the state"))?;
    let mut a = Answer::new((status, Json(grant_json(g))));
    a.grants = vec![g.id.to_string()];
    a.action = Some(change.kind().to_owned());
    Ok(a)
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    resource: Option<String>,
}

/// Whether `caller` may see grant `g`: its own, its department's resources' (approvers),
/// all of them for the CPO, auditors and admins.
fn may_see(caller: &Caller, g: &Grant) -> bool {
    let p = &caller.principal;
    g.request.consumer == p.id
        || g.requested_by == p.id
        || (p.role == Role::Approver && g.owner == p.department.as_str())
        || matches!(p.role, Role::Cpo | Role::Auditor | Role::Admin)
}

#[utoipa::path(get, path = "/v1/grants", tag = "grants", security(("api_key" = [])),
    params(("status" = Option<String>, Query, description = "requested, active, denied, revoked or expired"), ("resource" = Option<String>, Query)),
    responses((status = 200, description = "the grants the caller may see", body = super::doc::Listing), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
    call: Call,
) -> Response {
    run(
        &app,
        call,
        Needs::Key,
        "grant_list",
        "grant:*".into(),
        move |caller| async move {
            let now = chrono::Utc::now();
            let status = q
                .status
                .as_deref()
                .map(|s| {
                    serde_json::from_value::<GrantStatus>(serde_json::Value::String(s.to_owned()))
                        .map_err(|_| {
                            ApiError::bad_request(
                                "bad_status",
                                "status is one of requested, active, denied, revoked, expired",
                            )
                        })
                })
                .transpose()?;
            let out: Vec<serde_json::Value> = caller
                .state
                .grants
                .iter()
                .filter(|g| may_see(&caller, g))
                .filter(|g| status.is_none_or(|s| g.status_at(now) == s))
                .filter(|g| q.resource.as_ref().is_none_or(|r| &g.request.resource == r))
                .map(grant_json)
                .collect();
            let mut a = Answer::new(Json(serde_json::json!({ "grants": out })));
            a.rows = out.len() as i64;
            Ok(a)
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/grants/{id}", tag = "grants", security(("api_key" = [])), params(("id" = String, Path)),
    responses((status = 200, body = super::doc::GrantAnswer), (status = 404, body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    run(
        &app,
        call,
        Needs::Key,
        "grant_show",
        format!("grant:{id}"),
        move |caller| async move {
            let id = GrantId::new(id).map_err(|_| ApiError::not_found("not a grant id"))?;
            let g = caller
                .state
                .grants
                .get(&id)
                .filter(|g| may_see(&caller, g))
                .ok_or_else(|| ApiError::not_found("no such grant, or not the caller's to see"))?;
            let mut a = Answer::new(Json(grant_json(g)));
            a.grants = vec![g.id.to_string()];
            Ok(a)
        },
    )
    .await
}

async fn decide(
    app: AppState,
    id: String,
    call: Call,
    body: Bytes,
    decision: Decision,
) -> Response {
    let call = call.with_body(&body);
    let name = format!("grant_{}", decision.as_str());
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        &name,
        format!("grant:{id}"),
        move |caller| async move {
            let id = GrantId::new(id).map_err(|_| ApiError::not_found("not a grant id"))?;
            let reason = if body.is_empty() {
                String::new()
            } else {
                parse_body::<ReasonBody>(&body)?.reason
            };
            // A grant the caller may not even see is "not found", whatever the real reason.
            match caller.state.grants.get(&id) {
                Some(g) if may_see(&caller, g) => {}
                Some(_) => return Err(ApiError::not_found("not the caller's grant to see")),
                None => return Err(ApiError::not_found("no such grant")),
            }
            let change =
                ops::decide_grant(&app2.store, &caller.principal, &id, decision, &reason).await?;
            answer_change(&app2, &change, StatusCode::OK)
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/grants/{id}/{decision}", tag = "grants", security(("api_key" = [])), request_body(content = ReasonBody, description = "a reason (required to deny or revoke)"),
    params(("id" = String, Path), ("decision" = String, Path, description = "approve, deny or revoke")),
    responses((status = 200, body = super::doc::GrantAnswer), (status = 403, body = super::doc::ErrorEnvelope),
        (status = 404, description = "no such grant, or not the caller's to see", body = super::doc::ErrorEnvelope),
        (status = 409, description = "not in a state this decision applies to", body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
/// `POST /v1/grants/{id}/{approve|deny|revoke}`.
pub(super) async fn decision(
    State(app): State<AppState>,
    Path((id, what)): Path<(String, String)>,
    call: Call,
    body: Bytes,
) -> Response {
    let d = match what.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        "revoke" => Decision::Revoke,
        _ => return ApiError::not_found("no such route").into_response(),
    };
    decide(app, id, call, body, d).await
}
