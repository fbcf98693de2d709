//! `GET /v1/datasets/{id}/rows`: a resource's rows as the caller's grant shows them.
//!
//! Data flow: the caller's [`CallerPolicy`] → no access: 404 (the audit says why) →
//! verify- or aggregate-only: 403 → the lake session under that policy → the visible
//! columns of the resource's table; `fields=` and filters (`<field>=<value>`, compared with
//! the value as the caller sees it, so a masked column is filtered by its mask) must name
//! them → one SQL statement (ordered by every selected column; a cursor pins the Delta
//! version of its first page through `table_at`) → a JSON page with the next cursor, or a
//! CSV / Arrow / Parquet stream.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use gdx_lake::sql::{AsOf, LakeSession, SessionOptions};

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::encode::{Format, Streamed, collect_subjects, first_rows, json_rows, stream_body};
use super::error::ApiError;
use crate::access::CallerPolicy;
use crate::audit::{Entry, Outcome};
use crate::model::ProcessingLevel;
use gdx_lake::policy::SUBJECT_TAP;

/// `batch` without the subject tap column.
pub(super) fn without_tap(batch: &arrow::array::RecordBatch) -> arrow::array::RecordBatch {
    match batch.schema().index_of(SUBJECT_TAP) {
        Ok(i) => {
            let keep: Vec<usize> = (0..batch.num_columns()).filter(|&c| c != i).collect();
            batch.project(&keep).unwrap_or_else(|_| batch.clone())
        }
        Err(_) => batch.clone(),
    }
}

/// Query parameters with a meaning of their own; every other one is a filter.
const RESERVED: [&str; 5] = ["fields", "as_of", "limit", "cursor", "format"];

/// A position in a paged answer: the Delta version of the first page and the rows before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    version: Option<u64>,
    offset: u64,
}

impl Cursor {
    fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request("bad_cursor", "cursor is not one this API handed out");
        let (v, o) = s.split_once('.').ok_or_else(bad)?;
        let version = match v {
            "-" => None,
            v => Some(v.parse().map_err(|_| bad())?),
        };
        Ok(Self {
            version,
            offset: o.parse().map_err(|_| bad())?,
        })
    }

    fn text(&self) -> String {
        match self.version {
            Some(v) => format!("{v}.{}", self.offset),
            None => format!("-.{}", self.offset),
        }
    }
}

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(super) fn quote_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The session's name of a resource's table as SQL.
pub(super) fn table_sql(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => quote_ident(name),
    }
}

/// The caller's access to `resource` at a level that reads rows; 404 or 403 otherwise.
pub(super) fn row_access(
    policy: &CallerPolicy,
    resource: &str,
) -> Result<crate::access::ResourceAccess, ApiError> {
    let Some(a) = policy.resource(resource) else {
        return Err(ApiError::not_found(format!(
            "{resource}: no active grant, and not the caller's department's"
        )));
    };
    match a.level {
        ProcessingLevel::Verify => Err(ApiError::forbidden(
            "verify_only",
            "this grant allows yes/no verification only",
        )),
        ProcessingLevel::Aggregate => Err(ApiError::forbidden(
            "aggregate_only",
            "this grant allows statistics only (aggregates over groups of at least 5 people, through SQL)",
        )),
        _ => Ok(a.clone()),
    }
}

pub(super) fn parse_as_of(s: Option<&str>) -> Result<Option<AsOf>, ApiError> {
    s.map(|s| {
        AsOf::parse(s).map_err(|_| {
            ApiError::bad_request(
                "bad_as_of",
                "as_of is a date (YYYY-MM-DD, end of day UTC+8) or an RFC 3339 timestamp",
            )
        })
    })
    .transpose()
}

pub(super) fn session_options(
    app: &AppState,
    as_of: Option<AsOf>,
    max_rows: usize,
) -> SessionOptions {
    SessionOptions {
        as_of,
        memory_limit: app.limits.memory_limit,
        max_rows,
        timeout: Some(app.limits.timeout),
    }
}

/// The visible columns of `table` in `session`; a hidden table answers 404.
pub(super) async fn visible_columns(
    session: &LakeSession,
    table: &str,
) -> Result<Vec<String>, ApiError> {
    let (schema, name) = table.split_once('.').unwrap_or(("public", table));
    let provider = session
        .context()
        .table_provider(datafusion::common::TableReference::partial(schema, name))
        .await
        .map_err(|_| ApiError::not_found(format!("{table}: not in the caller's session")))?;
    Ok(provider
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

#[utoipa::path(get, path = "/v1/datasets/{id}/rows", tag = "data", security(("api_key" = [])),
    params(("id" = String, Path, description = "`<dept>.<dataset>`"),
        ("fields" = Option<String>, Query, description = "visible fields, comma-separated"),
        ("as_of" = Option<String>, Query, description = "a date (end of day, UTC+8) or RFC 3339 timestamp"),
        ("limit" = Option<usize>, Query, description = "rows per page (JSON: default 100)"),
        ("cursor" = Option<String>, Query, description = "the previous page's next_cursor"),
        ("format" = Option<String>, Query, description = "json, csv, arrow or parquet (else Accept decides)"),
        ("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case or application the call is for"), ("X-End-User" = Option<String>, Header, description = "the person at the window, recorded")),
    responses((status = 200, description = "rows as the caller's grant shows them (any other query parameter `<field>=<value>` filters on the value as the caller sees it): a JSON page, or with Accept text/csv, application/vnd.apache.arrow.stream or application/vnd.apache.parquet (or ?format=) all matching rows streamed in that format", body = super::doc::RowsPage,
            content_type = "application/json"),
        (status = 400, description = "missing purpose or case id, unknown field, bad cursor", body = super::doc::ErrorEnvelope),
        (status = 403, description = "unknown purpose; verify-only or aggregate-only grant", body = super::doc::ErrorEnvelope),
        (status = 404, description = "no such dataset, or not visible to the caller", body = super::doc::ErrorEnvelope),
        (status = 503, description = "the audit cannot be written", body = super::doc::ErrorEnvelope), (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope), (status = 429, description = "over the principal's rate", body = super::doc::ErrorEnvelope)))]
pub(super) async fn rows(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    call: Call,
) -> Response {
    let object = format!("dataset:{id}");
    let app2 = app.clone();
    run(
        &app,
        call.clone(),
        Needs::Data,
        "read_rows",
        object,
        move |caller| async move { read_rows(&app2, caller, &id, params, &headers).await },
    )
    .await
}

async fn read_rows(
    app: &AppState,
    caller: Caller,
    id: &str,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Result<Answer, ApiError> {
    let mut reserved: BTreeMap<&str, &str> = BTreeMap::new();
    let mut filters: Vec<(&str, &str)> = Vec::new();
    for (k, v) in &params {
        if RESERVED.contains(&k.as_str()) {
            if reserved.insert(k.as_str(), v.as_str()).is_some() {
                return Err(ApiError::bad_request(
                    "repeated_parameter",
                    format!("{k} is given twice"),
                ));
            }
        } else {
            filters.push((k, v));
        }
    }
    let format = Format::negotiate(
        reserved.get("format").copied(),
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    )?;
    let Some(resource) = app.resources.get(id) else {
        return Err(ApiError::not_found("no such resource"));
    };
    let policy = CallerPolicy::of(&caller.state, &caller.principal, chrono::Utc::now());
    let access = row_access(&policy, &resource.name)?;
    let policy = policy.with_subject_tap();
    let grants = access
        .grant
        .iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>();
    let limit: Option<usize> = match reserved.get("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .ok()
                .filter(|n| (1..=app.limits.page_max).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_limit",
                        format!("limit is a number from 1 to {}", app.limits.page_max),
                    )
                })?,
        ),
        None if format == Format::Json => Some(app.limits.page_default),
        None => None,
    };
    let cursor = reserved
        .get("cursor")
        .map(|c| Cursor::parse(c))
        .transpose()?;
    let as_of = parse_as_of(reserved.get("as_of").copied())?;
    if as_of.is_some() && cursor.is_some_and(|c| c.version.is_some()) {
        return Err(ApiError::bad_request(
            "bad_cursor",
            "cursor is not one this API handed out",
        ));
    }
    let session = LakeSession::open(
        &app.registry,
        policy.into_arc(),
        &session_options(
            app,
            as_of,
            limit.unwrap_or(usize::MAX - 1).saturating_add(1),
        ),
    )
    .await?;
    let mut visible = visible_columns(&session, &resource.name).await?;
    // The stored subject rides along for the audit; the caller never sees or names it.
    let tapped = visible.iter().any(|c| c == SUBJECT_TAP);
    visible.retain(|c| c != SUBJECT_TAP);
    let unknown = |f: &str| {
        ApiError::bad_request(
            "unknown_field",
            format!("{} has no field {f:?} the caller may see", resource.name),
        )
    };
    let selected: Vec<String> = match reserved.get("fields") {
        Some(fs) => fs
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                visible
                    .iter()
                    .find(|v| *v == f)
                    .cloned()
                    .ok_or_else(|| unknown(f))
            })
            .collect::<Result<_, _>>()?,
        None => visible.clone(),
    };
    if selected.is_empty() {
        return Err(ApiError::bad_request("no_fields", "fields names no field"));
    }
    let mut conditions = Vec::new();
    for (f, v) in &filters {
        if !visible.iter().any(|c| c == f) {
            return Err(unknown(f));
        }
        conditions.push(format!(
            "cast({} as varchar) = {}",
            quote_ident(f),
            quote_text(v)
        ));
    }
    let version = session.version(&resource.name);
    let pinned = cursor
        .and_then(|c| c.version)
        .filter(|v| Some(*v) != version);
    let from = match pinned {
        Some(v) => format!("table_at({}, {v})", quote_text(&resource.name)),
        None => table_sql(&resource.name),
    };
    let cols: Vec<String> = selected.iter().map(|c| quote_ident(c)).collect();
    let tap = if tapped {
        format!(", {}", quote_ident(SUBJECT_TAP))
    } else {
        String::new()
    };
    let mut sql = format!("select {}{tap} from {from}", cols.join(", "));
    if !conditions.is_empty() {
        sql.push_str(" where ");
        sql.push_str(&conditions.join(" and "));
    }
    let offset = cursor.map_or(0, |c| c.offset);
    if limit.is_some() || offset > 0 {
        let order: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
        sql.push_str(&format!(" order by {}", order.join(", ")));
    }
    if let Some(l) = limit {
        // A JSON page fetches one row more, to know whether there is a next page.
        let fetch = if format == Format::Json { l + 1 } else { l };
        sql.push_str(&format!(" limit {fetch}"));
    }
    if offset > 0 {
        sql.push_str(&format!(" offset {offset}"));
    }
    let subject = tapped.then(|| SUBJECT_TAP.to_owned());
    let level = access.level;
    let action = format!("read:{level}");
    if format != Format::Json {
        let stream = session.stream(&sql).await?;
        let object = format!("dataset:{}", resource.name);
        return Ok(export(
            app, &caller, format, stream, subject, &action, object, grants,
        ));
    }
    let out = session.query(&sql).await?;
    let mut batches = out.batches;
    let mut rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let page = limit.unwrap_or(usize::MAX);
    let more = rows > page;
    if more {
        // Drop the one row fetched to learn whether there is a next page.
        batches = first_rows(batches, page);
        rows = page;
    }
    let mut subjects = Vec::new();
    for b in &batches {
        collect_subjects(b, subject.as_deref(), &mut subjects);
    }
    let batches: Vec<_> = batches.iter().map(without_tap).collect();
    let next = more.then(|| {
        Cursor {
            version: if as_of.is_some() {
                None
            } else {
                pinned.or(version)
            },
            offset: offset + rows as u64,
        }
        .text()
    });
    let body = format!(
        "{{\"resource\":{},\"level\":\"{level}\",\"version\":{},\"rows\":{},\"next_cursor\":{}}}",
        serde_json::Value::String(resource.name.clone()),
        pinned
            .or(version)
            .map_or("null".to_owned(), |v| v.to_string()),
        String::from_utf8_lossy(&json_rows(&batches)?),
        next.map_or("null".to_owned(), |c| serde_json::Value::String(c)
            .to_string()),
    );
    Ok(Answer {
        response: ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        rows: rows as i64,
        subjects,
        grants,
        action: Some(action),
        reason: None,
    })
}

/// An answer streamed in `format`, audited when it starts (by the call) and again when it
/// completes or fails, with the rows sent and, where `subject` names the tap column, the
/// people they were about.
#[allow(clippy::too_many_arguments)]
pub(super) fn export(
    app: &AppState,
    caller: &Caller,
    format: Format,
    stream: datafusion::execution::SendableRecordBatchStream,
    subject: Option<String>,
    action: &str,
    object: String,
    grants: Vec<String>,
) -> Answer {
    let audit = app.audit.clone();
    let done = Entry {
        principal: caller.principal.id.to_string(),
        department: caller.principal.department.to_string(),
        role: caller.principal.role.to_string(),
        purpose: caller.purpose.clone(),
        case_id: caller.case_id.clone(),
        end_user: caller.end_user.clone(),
        action: format!("{action} export_completed"),
        object,
        grants: grants.clone(),
        policy_version: caller.state.version.number(),
        ..Entry::default()
    };
    let body = stream_body(format, stream, subject, move |s: Streamed| async move {
        let mut e = done;
        e.rows = s.rows;
        e.subjects = s.subjects;
        e.outcome = Some(if s.error.is_some() {
            Outcome::Failed
        } else {
            Outcome::Allowed
        });
        e.status = 200;
        e.reason = s.error.clone().unwrap_or_else(|| "export streamed".into());
        audit.record(e).await.map(|_| ()).map_err(|e| e.to_string())
    });
    Answer {
        response: ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        rows: 0,
        subjects: vec![],
        grants,
        action: Some(format!("{action} export_started")),
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let c = Cursor {
            version: Some(12),
            offset: 200,
        };
        assert_eq!(Cursor::parse(&c.text()).unwrap(), c);
        let c = Cursor {
            version: None,
            offset: 5,
        };
        assert_eq!(Cursor::parse(&c.text()).unwrap(), c);
        for bad in ["", "12", "x.1", "1.-3", "1.2.3"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers_and_text_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_text("o'brien"), "'o''brien'");
        assert_eq!(
            table_sql("ps.household_registration"),
            "\"ps\".\"household_registration\""
        );
    }
}
