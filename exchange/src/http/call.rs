//! One call: who is asking, for what purpose, and its audit record.
//!
//! Data flow: the request's parts → [`Call`] (bearer key, `X-Purpose`, `X-Case-Id`,
//! `X-End-User`, a hash of the request) → [`run`] authenticates the key against the current
//! access state, checks the purpose for data calls, runs the handler with the [`Caller`],
//! then writes the audit record of the outcome — allowed, denied (with the real reason) or
//! failed — and only when the record is durable returns the answer (fail closed).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::audit::{Entry, Outcome};
use crate::principals::Principal;
use crate::secret::{key_hash, sha256_hex};
use crate::store::AccessState;

/// What a request says about itself.
#[derive(Debug, Clone)]
pub(super) struct Call {
    key: Option<String>,
    purpose: Option<String>,
    case_id: Option<String>,
    end_user: Option<String>,
    /// A header that is present but unusable (not UTF-8, too long, control characters).
    bad_header: Option<&'static str>,
    request_hash: String,
}

/// Longest purpose, case id or end user accepted.
const MAX_HEADER: usize = 128;

impl<S: Send + Sync> FromRequestParts<S> for Call {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let mut bad_header = None;
        let mut text = |name: &'static str| -> Option<String> {
            let v = parts.headers.get(name)?;
            match std::str::from_utf8(v.as_bytes()) {
                Ok(s) if s.len() <= MAX_HEADER && !s.chars().any(char::is_control) => {
                    let s = s.trim();
                    (!s.is_empty()).then(|| s.to_owned())
                }
                _ => {
                    bad_header = Some(name);
                    None
                }
            }
        };
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|k| k.trim().to_owned());
        let purpose = text("x-purpose");
        let case_id = text("x-case-id");
        let end_user = text("x-end-user");
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            key,
            purpose,
            case_id,
            end_user,
            bad_header,
            request_hash: sha256_hex(format!("{} {target}", parts.method).as_bytes()),
        })
    }
}

impl Call {
    /// The request hash covers the body too.
    pub(super) fn with_body(mut self, body: &[u8]) -> Self {
        let mut b = self.request_hash.into_bytes();
        b.push(b'\n');
        b.extend_from_slice(body);
        self.request_hash = sha256_hex(&b);
        self
    }
}

/// What a call needs beyond a valid key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Needs {
    /// A data call: a registered purpose and a case id.
    Data,
    /// Management and metadata: the key alone.
    Key,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub(super) principal: Principal,
    pub(super) state: Arc<AccessState>,
    pub(super) purpose: Option<String>,
    pub(super) case_id: Option<String>,
    pub(super) end_user: Option<String>,
}

/// A handler's answer with what the audit records of it.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) response: Response,
    pub(super) rows: i64,
    pub(super) subjects: Vec<String>,
    pub(super) grants: Vec<String>,
    /// What was done (e.g. `read:masked`), when the handler knows better than the route.
    pub(super) action: Option<String>,
    /// The audit's reason for an allowed call, when there is more to say than "allowed"
    /// (e.g. why a verification did not match: the audit's to know, not the caller's).
    pub(super) reason: Option<String>,
}

impl Answer {
    pub(super) fn new(response: impl IntoResponse) -> Self {
        Self {
            response: response.into_response(),
            rows: 0,
            subjects: vec![],
            grants: vec![],
            action: None,
            reason: None,
        }
    }
}

fn authenticate(app: &AppState, call: &Call, needs: Needs) -> Result<Caller, ApiError> {
    let state = app.store.current();
    let Some(key) = &call.key else {
        return Err(ApiError::unauthorized("no API key"));
    };
    let hash = key_hash(key);
    let now = chrono::Utc::now();
    let Some(principal) = state.principals.by_key_hash(&hash, now).cloned() else {
        return Err(ApiError::unauthorized(state.principals.refusal(&hash, now)));
    };
    if let Some(h) = call.bad_header {
        return Err(ApiError::bad_request(
            "bad_header",
            format!(
                "header {h} must be UTF-8 text of at most {MAX_HEADER} bytes without control characters"
            ),
        ));
    }
    if needs == Needs::Data {
        let Some(p) = &call.purpose else {
            return Err(ApiError::bad_request(
                "purpose_required",
                "data calls state their purpose: X-Purpose: <registered purpose code>",
            ));
        };
        if app.purposes.get(p).is_none() {
            return Err(ApiError::forbidden(
                "unknown_purpose",
                "X-Purpose is not a registered purpose code (GET /v1/purposes lists them)",
            ));
        }
        if call.case_id.is_none() {
            return Err(ApiError::bad_request(
                "case_id_required",
                "data calls name the case they are for: X-Case-Id: <case or application number>",
            ));
        }
    }
    Ok(Caller {
        principal,
        state,
        purpose: call.purpose.clone(),
        case_id: call.case_id.clone(),
        end_user: call.end_user.clone(),
    })
}

/// Runs a handler as one audited call.
pub(super) async fn run<F, Fut>(
    app: &AppState,
    call: Call,
    needs: Needs,
    action: &str,
    object: String,
    handler: F,
) -> Response
where
    F: FnOnce(Caller) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, ApiError>>,
{
    let started = std::time::Instant::now();
    let mut entry = Entry {
        purpose: call.purpose.clone(),
        case_id: call.case_id.clone(),
        end_user: call.end_user.clone(),
        action: action.to_owned(),
        object,
        request_hash: call.request_hash.clone(),
        principal: "-".into(),
        department: "-".into(),
        role: "-".into(),
        ..Entry::default()
    };
    let result = match authenticate(app, &call, needs) {
        Err(e) => Err(e),
        Ok(caller) => {
            entry.principal = caller.principal.id.to_string();
            entry.department = caller.principal.department.to_string();
            entry.role = caller.principal.role.to_string();
            entry.policy_version = caller.state.version.number();
            if !app.limiter.allows(caller.principal.id.as_str()) {
                let mut e = ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests; retry after the time in Retry-After",
                );
                e.retry_after = Some(1);
                Err(e)
            } else {
                handler(caller).await
            }
        }
    };
    let response = match result {
        Ok(answer) => {
            entry.outcome = Some(Outcome::Allowed);
            entry.status = i64::from(answer.response.status().as_u16());
            entry.rows = answer.rows;
            entry.subjects = answer.subjects;
            entry.grants = answer.grants;
            if let Some(a) = answer.action {
                entry.action = a;
            }
            entry.reason = answer.reason.unwrap_or_else(|| "allowed".into());
            Ok(answer.response)
        }
        Err(e) => {
            entry.outcome = Some(e.outcome());
            entry.status = i64::from(e.status.as_u16());
            entry.reason = e.reason.clone();
            entry.subjects = e.subjects.clone();
            Err(e)
        }
    };
    // Labels are the route's action and the outcome: never a value of a request.
    let outcome = entry.outcome.unwrap_or(Outcome::Failed).as_str();
    metrics::counter!("gdx_exchange_calls_total", "action" => action.to_owned(), "outcome" => outcome)
        .increment(1);
    let answer = match app.audit.record(entry).await {
        Ok(_) => response.unwrap_or_else(IntoResponse::into_response),
        Err(e) => {
            metrics::counter!("gdx_exchange_audit_failures_total").increment(1);
            ApiError::audit_unavailable(e.to_string()).into_response()
        }
    };
    metrics::histogram!("gdx_exchange_call_seconds", "action" => action.to_owned())
        .record(started.elapsed().as_secs_f64());
    answer
}
