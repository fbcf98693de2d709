//! `/health`, `/ready`, `/metrics`, the fallback, and the envelope for errors the layers
//! answer themselves (no route, method not allowed, body too large, timeout, panic).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::ApiError;

#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, description = "alive")))]
pub(super) async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Ready when the access state and the audit log are usable.
#[utoipa::path(get, path = "/ready", tag = "service", responses((status = 200, description = "ready: the access state is loaded")))]
pub(super) async fn ready(State(app): State<AppState>) -> Response {
    let state = app.store.current();
    Json(json!({
        "status": "ready",
        "policy_version": state.version.number(),
        "principals": state.principals.iter().filter(|p| !p.revoked).count(),
        "replica": app.audit.replica(),
    }))
    .into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
pub(super) async fn metrics(State(app): State<AppState>) -> Response {
    match &app.metrics {
        Some(render) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render(),
        )
            .into_response(),
        None => ApiError::not_found("no metrics recorder").into_response(),
    }
}

pub(super) async fn not_found() -> Response {
    ApiError::not_found("no such route").into_response()
}

pub(super) fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a handler panicked").into_response()
}

/// Rewrites error answers that are not already the JSON envelope (axum's own rejections,
/// the body limit, the timeout) into it.
pub(super) async fn envelope(req: Request<Body>, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the request body is too large"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "this route does not take that method")
        }
        StatusCode::SERVICE_UNAVAILABLE => ("timeout", "the request took too long"),
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "the request is malformed"),
    };
    ApiError::new(status, code, message).into_response()
}
