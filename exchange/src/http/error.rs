//! Errors as HTTP: one JSON envelope for every error the exchange answers.
//!
//! `{"error": {"status": 404, "code": "not_found", "message": "…", "id": "e-…"}}`. A 5xx
//! body carries only its error id (the log has the cause under that id). "Cannot see"
//! answers 404 exactly like "does not exist"; the audit record keeps the real reason.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer, with the reason the audit keeps.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    /// What the caller is told.
    pub message: String,
    /// What the audit records (may say more than `message`, never a value of the data).
    pub reason: String,
    pub retry_after: Option<u64>,
    /// Whom a refused call was about, for the audit only (e.g. the certificate a caller
    /// without a grant tried to verify).
    pub subjects: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            code,
            reason: message.clone(),
            message,
            retry_after: None,
            subjects: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(reason: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
        .because(reason)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// "Not found", whatever the real reason (kept for the audit).
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource").because(reason)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A failure of ours: the caller sees an error id only.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .because(reason)
    }

    /// The audit could not be written: the call fails closed.
    pub fn audit_unavailable(reason: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the audit trail cannot be written; no data is served without it",
        )
        .because(reason)
    }

    /// Records in the audit whom the refused call was about.
    pub fn about(mut self, subjects: Vec<String>) -> Self {
        self.subjects = subjects;
        self
    }

    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn outcome(&self) -> crate::audit::Outcome {
        if self.status.is_server_error() {
            crate::audit::Outcome::Failed
        } else {
            crate::audit::Outcome::Denied
        }
    }
}

/// An id for one error answer.
fn error_id() -> String {
    format!("e-{}", crate::secret::random_hex(8))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = error_id();
        let body = if self.status.is_server_error() {
            tracing::error!(error_id = %id, status = self.status.as_u16(), code = self.code, reason = %self.reason, "request failed");
            json!({"error": {"status": self.status.as_u16(), "code": self.code, "id": id}})
        } else {
            json!({"error": {"status": self.status.as_u16(), "code": self.code, "message": self.message, "id": id}})
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// A JSON request body, or a 400 `bad_body` that says which field and what was expected.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the field and what was expected; its line/column locate it.
        ApiError::bad_request(
            "bad_body",
            format!(
                "request body: {}",
                e.to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or("invalid JSON")
            ),
        )
    })
}

/// The lake's errors as answers: the caller's mistakes (unknown table, read-only, limits)
/// are 4xx with the lake's value-free message; the rest is ours.
impl From<gdx_lake::Error> for ApiError {
    fn from(e: gdx_lake::Error) -> Self {
        use gdx_lake::Error as L;
        match &e {
            L::UnknownTable { .. } => ApiError::not_found(e.to_string()),
            L::ReadOnly(_) => ApiError::bad_request("read_only", e.to_string()),
            L::Timeout { .. } => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", e.to_string())
            }
            L::Policy(_) => ApiError::forbidden("policy", e.to_string()),
            _ => ApiError::internal(e.log_safe()),
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        match e {
            E::Lake(l) => l.into(),
            E::Principal(p) => ApiError::conflict("principal", p.to_string()),
            E::Grant(g) => grant_error(g),
            E::Audit(a) => ApiError::audit_unavailable(a.to_string()),
            E::Forbidden(s) => ApiError::forbidden("not_entitled", s),
            E::NotFound(s) => ApiError::not_found(s),
            E::Internal(s) => ApiError::internal(s),
        }
    }
}

fn grant_error(g: crate::grants::GrantError) -> ApiError {
    use crate::grants::GrantError as G;
    match &g {
        G::Unknown(_) | G::UnknownResource(_) => ApiError::not_found(g.to_string()),
        G::WrongState { .. } | G::AlreadyApproved(_) | G::Exists(_) => {
            ApiError::conflict("grant_state", g.to_string())
        }
        G::OwnRequest | G::NotEntitled(_) => ApiError::forbidden("not_entitled", g.to_string()),
        G::Never(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "never_shared",
            g.to_string(),
        ),
        _ => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            g.to_string(),
        ),
    }
}
