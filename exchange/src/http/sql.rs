//! `POST /v1/sql`: read-only SQL over exactly the tables the caller's grants show.
//!
//! Data flow: the body (`{"sql", "as_of", "params"}`) → casbin: may the caller's role query
//! at all → the caller's [`CallerPolicy`] (own department, active grants: the same policy as
//! the rows and profile APIs, without the subject tap and pushed row filters of the
//! exchange's own SQL, since this caller writes the SQL and may EXPLAIN it) → a lake session
//! with the exchange's limits (memory budget, timeout, row cap) → the statement planned
//! under the lake's read-only rules and guard, its parameters bound → JSON (columns, rows,
//! `truncated`) or a CSV / Arrow IPC / Parquet stream by `Accept`, cut at the row cap →
//! audited with the tables the plan read and the grants that showed them. A hidden table
//! and a missing one answer alike; an error names the problem, never a stored value.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use gdx_lake::sql::LakeSession;
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::encode::{Format, json_rows};
use super::error::{ApiError, parse_body};
use super::rows::{export, parse_as_of, session_options};
use crate::access::CallerPolicy;
use crate::authz::Action;

/// The body of `POST /v1/sql`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SqlBody {
    /// One read-only statement (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE).
    sql: String,
    /// Read as of a date (end of day, UTC+8) or an RFC 3339 timestamp.
    as_of: Option<String>,
    /// Values of `$1`, `$2`, …: JSON strings, numbers, booleans or null.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    params: Vec<serde_json::Value>,
}

/// Longest statement accepted, in bytes.
const MAX_SQL: usize = 32 << 10;

fn param(i: usize, v: &serde_json::Value) -> Result<ScalarValue, ApiError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => ScalarValue::Null,
        J::Bool(b) => ScalarValue::Boolean(Some(*b)),
        J::String(s) => ScalarValue::Utf8(Some(s.clone())),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => ScalarValue::Int64(Some(i)),
            (None, Some(f)) => ScalarValue::Float64(Some(f)),
            _ => {
                return Err(ApiError::bad_request(
                    "bad_parameter",
                    format!("parameter ${} is out of range", i + 1),
                ));
            }
        },
        J::Array(_) | J::Object(_) => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                format!(
                    "parameter ${} must be a string, number, boolean or null",
                    i + 1
                ),
            ));
        }
    })
}

/// The lake's errors as a SQL caller hears them: its own mistakes are 4xx that say what is
/// wrong (and, for a syntax error, where); failures on stored values name only their kind.
pub(crate) fn sql_error(e: gdx_lake::Error) -> ApiError {
    use gdx_lake::Error as L;
    match &e {
        L::Query { source, .. } => {
            let root = source.find_root();
            match root {
                DataFusionError::SQL(..)
                | DataFusionError::Plan(_)
                | DataFusionError::SchemaError(..)
                | DataFusionError::NotImplemented(_) => {
                    ApiError::bad_request("bad_sql", root.to_string())
                }
                DataFusionError::ResourcesExhausted(_) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "memory_limit",
                    "the query needs more memory than a call may use: select fewer rows or columns, or aggregate",
                ),
                _ => e.into(),
            }
        }
        L::Failed(kind) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "query_failed",
            format!("the query failed while reading rows: {kind}"),
        ),
        L::Parameter(m) => ApiError::bad_request("bad_parameter", m.clone()),
        L::UnknownTable { .. } => ApiError::not_found(e.to_string()),
        _ => e.into(),
    }
}

#[utoipa::path(post, path = "/v1/sql", tag = "data", security(("api_key" = [])), request_body = SqlBody,
    params(("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case or analysis the query is for"), ("X-End-User" = Option<String>, Header, description = "the person asking, recorded")),
    responses((status = 200, description = "the rows as the caller's grants show them: JSON (columns, rows, truncated), or with Accept text/csv, application/vnd.apache.arrow.stream or application/vnd.apache.parquet a stream in that format; at most the row cap either way", body = super::doc::SqlAnswer, content_type = "application/json"),
        (status = 400, description = "not a read-only statement, a syntax or planning error, a bad parameter", body = super::doc::ErrorEnvelope),
        (status = 403, description = "the caller's role does not query; unknown purpose", body = super::doc::ErrorEnvelope),
        (status = 404, description = "a table that does not exist, or that the caller may not see (one answer for both)", body = super::doc::ErrorEnvelope),
        (status = 422, description = "the query failed on the data (kind only), or hit the memory budget", body = super::doc::ErrorEnvelope),
        (status = 504, description = "past the query time limit", body = super::doc::ErrorEnvelope),
        (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn sql(
    State(app): State<AppState>,
    headers: HeaderMap,
    call: Call,
    body: Bytes,
) -> Response {
    let call = call.with_body(&body);
    let parsed: Result<SqlBody, ApiError> = if body.len() > MAX_SQL {
        Err(ApiError::bad_request(
            "too_long",
            format!("a statement is at most {MAX_SQL} bytes"),
        ))
    } else {
        parse_body(&body)
    };
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "query",
        "sql".into(),
        move |caller| async move { query(&app2, caller, parsed?, &headers).await },
    )
    .await
}

async fn query(
    app: &AppState,
    caller: Caller,
    body: SqlBody,
    headers: &HeaderMap,
) -> Result<Answer, ApiError> {
    if !caller.state.authz.allows(
        &caller.principal.id,
        &caller.principal.department,
        &Action::Query,
    ) {
        return Err(ApiError::forbidden(
            "not_entitled",
            "SQL is for analysts, department systems, auditors and the CPO",
        ));
    }
    let format = Format::negotiate(
        None,
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    )?;
    let params = body
        .params
        .iter()
        .enumerate()
        .map(|(i, v)| param(i, v))
        .collect::<Result<Vec<_>, _>>()?;
    let as_of = parse_as_of(body.as_of.as_deref())?;
    let policy = CallerPolicy::of(&caller.state, &caller.principal, chrono::Utc::now());
    let max_rows = app.limits.sql_max_rows;
    let session = LakeSession::open(
        &app.registry,
        policy.clone().into_arc(),
        &session_options(app, as_of, max_rows),
    )
    .await?;
    let planned = session.plan(&body.sql, params).await.map_err(sql_error)?;
    let grants = policy.grants_for(&planned.tables);
    let action = format!("query {}", planned.tables.join(","));
    if format != Format::Json {
        // A stream stops at the row cap (the audit records how many rows went out).
        let stream = capped(planned.stream, max_rows);
        return Ok(export(
            app,
            &caller,
            format,
            stream,
            None,
            &action,
            "sql".into(),
            grants,
        ));
    }
    let out = session.collect(planned.stream).await.map_err(sql_error)?;
    let rows = out.rows();
    let (schema, batches, truncated) = (out.schema, out.batches, out.truncated);
    let columns: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let body = format!(
        "{{\"columns\":{},\"rows\":{},\"row_count\":{rows},\"truncated\":{truncated}}}",
        serde_json::Value::Array(columns),
        String::from_utf8_lossy(&json_rows(&batches)?),
    );
    Ok(Answer {
        response: ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        rows: rows as i64,
        subjects: vec![],
        grants,
        action: Some(action),
        reason: None,
    })
}

/// `stream` cut after `max` rows.
fn capped(stream: SendableRecordBatchStream, max: usize) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let limited = futures::stream::unfold((stream, 0usize), move |(mut s, seen)| async move {
        if seen >= max {
            return None;
        }
        match s.next().await? {
            Ok(b) if seen + b.num_rows() > max => Some((Ok(b.slice(0, max - seen)), (s, max))),
            Ok(b) => {
                let n = b.num_rows();
                Some((Ok(b), (s, seen + n)))
            }
            Err(e) => Some((Err(e), (s, max))),
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, limited))
}
