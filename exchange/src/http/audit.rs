//! Audit endpoints: `GET /v1/audit` for auditors and the CPO, and
//! `GET /v1/audit/subjects/{resident_id}`: a citizen's "who used my data, when and why".
//!
//! Data flow: casbin's `read audit` → this replica's unshipped records shipped now → the
//! registry refreshed → `system.audit` read through the caller's policy (auditors see it;
//! nobody else has it in their session) → a JSON page.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use gdx_catalog::ResidentId;
use gdx_lake::sql::LakeSession;
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::encode::{first_rows, json_rows};
use super::error::ApiError;
use super::rows::{quote_ident, quote_text, session_options};
use crate::access::CallerPolicy;
use crate::authz::Action;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    principal: Option<String>,
    department: Option<String>,
    action: Option<String>,
    object: Option<String>,
    outcome: Option<String>,
    purpose: Option<String>,
    case_id: Option<String>,
    /// RFC 3339: records at or after.
    from: Option<String>,
    /// RFC 3339: records before.
    to: Option<String>,
    limit: Option<usize>,
    /// Records to skip (the `next_offset` of the previous page).
    offset: Option<usize>,
}

const COLUMNS: &str = "seq, at, replica, principal, department, role, purpose, case_id, end_user, action, object, grants, policy_version, \"rows\", request_hash, outcome, status, reason, subjects";

async fn audit_session(app: &AppState, caller: &Caller) -> Result<LakeSession, ApiError> {
    if !caller.state.authz.allows(
        &caller.principal.id,
        &caller.principal.department,
        &Action::ReadAudit,
    ) {
        return Err(ApiError::forbidden(
            "not_entitled",
            "reading the audit trail is for auditors and the CPO",
        ));
    }
    app.ship_audit().await?;
    app.registry.refresh().await?;
    let policy = CallerPolicy::of(&caller.state, &caller.principal, chrono::Utc::now());
    Ok(LakeSession::open(
        &app.registry,
        policy.into_arc(),
        &session_options(app, None, app.limits.page_max + 1),
    )
    .await?)
}

fn time_literal(s: &str, name: &str) -> Result<String, ApiError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            format!(
                "timestamp {}",
                quote_text(&t.with_timezone(&chrono::Utc).to_rfc3339())
            )
        })
        .map_err(|_| ApiError::bad_request("bad_time", format!("{name} is an RFC 3339 timestamp")))
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("api_key" = [])), params(AuditQuery),
    responses((status = 200, description = "records, newest first", body = super::doc::AuditPage), (status = 403, body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn search(
    State(app): State<AppState>,
    Query(q): Query<AuditQuery>,
    call: Call,
) -> Response {
    let app2 = app.clone();
    run(&app, call, Needs::Key, "read_audit", "audit".into(), move |caller| async move {
        let limit = q.limit.unwrap_or(app2.limits.page_default);
        if !(1..=app2.limits.page_max).contains(&limit) {
            return Err(ApiError::bad_request("bad_limit", format!("limit is a number from 1 to {}", app2.limits.page_max)));
        }
        let mut cond = Vec::new();
        for (col, v) in [
            ("principal", &q.principal),
            ("department", &q.department),
            ("action", &q.action),
            ("object", &q.object),
            ("outcome", &q.outcome),
            ("purpose", &q.purpose),
            ("case_id", &q.case_id),
        ] {
            if let Some(v) = v {
                cond.push(format!("{} = {}", quote_ident(col), quote_text(v)));
            }
        }
        if let Some(f) = &q.from {
            cond.push(format!("at >= {}", time_literal(f, "from")?));
        }
        if let Some(t) = &q.to {
            cond.push(format!("at < {}", time_literal(t, "to")?));
        }
        let offset = q.offset.unwrap_or(0);
        let sql = format!(
            "select {COLUMNS} from system.audit {} order by at desc, replica, seq desc limit {} offset {offset}",
            if cond.is_empty() { String::new() } else { format!("where {}", cond.join(" and ")) },
            limit + 1
        );
        page(&app2, &caller, &sql, limit, offset).await
    })
    .await
}

async fn page(
    app: &AppState,
    caller: &Caller,
    sql: &str,
    limit: usize,
    offset: usize,
) -> Result<Answer, ApiError> {
    let session = audit_session(app, caller).await?;
    let out = session.query(sql).await?;
    let mut batches = out.batches;
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let more = total > limit;
    if more {
        batches = first_rows(batches, limit);
    }
    let rows = total.min(limit);
    let records: serde_json::Value = serde_json::from_slice(&json_rows(&batches)?)
        .map_err(|_| ApiError::internal("audit rows did not encode as JSON"))?;
    let mut a = Answer::new(Json(serde_json::json!({
        "records": records,
        "next_offset": more.then_some(offset + rows),
    })));
    a.rows = rows as i64;
    Ok(a)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SubjectQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

#[utoipa::path(get, path = "/v1/audit/subjects/{id}", tag = "audit", security(("api_key" = [])), params(("id" = String, Path, description = "a resident ID"), SubjectQuery),
    responses((status = 200, description = "who used this person's data, when and why", body = super::doc::AuditPage), (status = 403, body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn subject(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SubjectQuery>,
    call: Call,
) -> Response {
    let parsed = ResidentId::parse(&id).map(|r| r.as_str().to_owned());
    let app2 = app.clone();
    let object = match &parsed {
        Ok(id) => format!("audit:subject/{id}"),
        Err(_) => "audit:subject/<invalid id>".into(),
    };
    run(&app, call, Needs::Key, "read_audit", object, move |caller| async move {
        let id = parsed.map_err(|e| ApiError::bad_request("bad_resident_id", format!("resident ID: {e}")))?;
        let limit = q.limit.unwrap_or(app2.limits.page_default).clamp(1, app2.limits.page_max);
        let offset = q.offset.unwrap_or(0);
        // What a citizen is shown: who, when, for what purpose and case, and what was done;
        // not the other people the same calls touched.
        let sql = format!(
            "select at, principal, department, purpose, case_id, action, object, outcome from system.audit \
             where array_has(subjects, {}) and outcome = 'allowed' order by at desc limit {} offset {offset}",
            quote_text(&id),
            limit + 1
        );
        let mut a = page(&app2, &caller, &sql, limit, offset).await?;
        a.subjects = vec![id];
        Ok(a)
    })
    .await
}
