//! `GET /v1/catalog/datasets[/{id}]` and `GET /v1/purposes`: what exists and may be asked
//! for — names, owners, fields with their levels, sharing and open types — never a value.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use super::call::{Answer, Call, Needs, run};
use super::error::ApiError;
use crate::resources::Resource;

fn describe(app: &AppState, r: &Resource) -> Value {
    let ds = app.registry.catalog().get(&r.name);
    let fields: Vec<Value> = r
        .fields
        .iter()
        .map(|f| {
            let cf = ds.and_then(|d| d.field(&f.name));
            json!({
                "name": f.name,
                "type": cf.map(|c| c.ty.as_str()),
                "level": f.level.get(),
                "category": cf.and_then(|c| c.category.clone()),
                "pii": cf.and_then(|c| c.pii).map(|p| p.as_str()),
                "description": cf.map(|c| c.description.clone()),
            })
        })
        .collect();
    json!({
        "id": r.name,
        "name": ds.map(|d| d.name.clone()),
        "owner": r.owner,
        "provider": ds.map(|d| d.provider.name.clone()),
        "summary": ds.map(|d| d.summary.clone()),
        "kind": if r.profile { "profile" } else { "dataset" },
        "level": r.level.get(),
        "sharing": ds.and_then(|d| d.sharing.as_ref()).map(|s| json!({"type": s.kind, "condition": s.condition, "method": s.method})),
        "open": ds.and_then(|d| d.open.as_ref()).map(|o| json!({"type": o.kind, "condition": o.condition})),
        "update_cycle": ds.map(|d| d.update_cycle.clone()),
        "primary_key": ds.map(|d| d.primary_key.clone()),
        "subject": r.subject,
        "fields": fields,
    })
}

#[utoipa::path(get, path = "/v1/catalog/datasets", tag = "catalog", security(("api_key" = [])), responses((status = 200, description = "every dataset and profile: fields, levels, sharing and open types", body = super::doc::Listing), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn list(State(app): State<AppState>, call: Call) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        "catalog",
        "catalog".into(),
        move |_| async move {
            let all: Vec<Value> = app2.resources.iter().map(|r| describe(&app2, r)).collect();
            let mut a = Answer::new(Json(json!({ "datasets": all })));
            a.rows = all.len() as i64;
            Ok(a)
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/catalog/datasets/{id}", tag = "catalog", security(("api_key" = [])), params(("id" = String, Path, description = "`<dept>.<dataset>` or `profiles.citizen` / `profiles.enterprise`")), responses((status = 200, description = "one dataset or profile", body = serde_json::Value), (status = 404, body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        "catalog",
        format!("catalog:{id}"),
        move |_| async move {
            let r = app2
                .resources
                .get(&id)
                .ok_or_else(|| ApiError::not_found("no such resource"))?;
            let mut a = Answer::new(Json(describe(&app2, r)));
            a.rows = 1;
            Ok(a)
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/purposes", tag = "catalog", security(("api_key" = [])), responses((status = 200, description = "the registered purposes", body = super::doc::Listing), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn purposes(State(app): State<AppState>, call: Call) -> Response {
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Key,
        "catalog",
        "purposes".into(),
        move |_| async move {
            let all: Vec<_> = app2.purposes.iter().cloned().collect();
            Ok(Answer::new(Json(json!({ "purposes": all }))))
        },
    )
    .await
}
