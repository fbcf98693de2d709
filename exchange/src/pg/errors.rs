//! The exchange's errors as PostgreSQL errors: the same decisions and messages the HTTP
//! door gives, with the SQLSTATE a Postgres client expects. A failure of ours shows only an
//! error id (the log has the cause under it); a key that no longer works ends the
//! connection (FATAL).

use axum::http::StatusCode;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};

use crate::http::error::ApiError;

/// The SQLSTATE of an answer.
fn sqlstate(e: &ApiError) -> &'static str {
    match (e.status, e.code) {
        (_, "read_only") => "25006",
        (_, "bad_parameter") => "22023",
        (_, "bad_sql") => "42601",
        (_, "memory_limit") => "53200",
        (_, "row_cap") => "54000",
        (_, "query_failed") => "22000",
        (_, "cancelled") => "57014",
        (_, "rate_limited") => "53400",
        (StatusCode::UNAUTHORIZED, _) => "28000",
        (StatusCode::FORBIDDEN, _) => "42501",
        (StatusCode::NOT_FOUND, _) => "42P01",
        (StatusCode::GATEWAY_TIMEOUT, _) => "57014",
        (s, _) if s.is_server_error() => "XX000",
        _ => "42000",
    }
}

pub(super) fn to_pg(e: &ApiError) -> PgWireError {
    let code = sqlstate(e);
    let (severity, message) = if e.status.is_server_error() {
        let id = format!("e-{}", crate::secret::random_hex(8));
        tracing::error!(error_id = %id, code = e.code, reason = %e.reason, "pgwire statement failed");
        ("ERROR", format!("{} (error id {id})", e.message))
    } else if e.status == StatusCode::UNAUTHORIZED {
        ("FATAL", "the connection's API key no longer works (revoked, rotated out or expired): connect again with a valid key".to_owned())
    } else if e.status == StatusCode::NOT_FOUND {
        // The lake's message names what was asked for and close names among the tables
        // the caller sees: the same for a hidden table and a missing one.
        ("ERROR", format!("relation does not exist: {}", e.reason))
    } else {
        ("ERROR", e.message.clone())
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.into(),
        code.into(),
        message,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_their_meaning_on_the_wire() {
        let info = |e: ApiError| match to_pg(&e) {
            PgWireError::UserError(i) => *i,
            other => panic!("{other}"),
        };
        let i = info(ApiError::bad_request("read_only", "DROP refused"));
        assert_eq!((i.code.as_str(), i.severity.as_str()), ("25006", "ERROR"));
        let i = info(ApiError::unauthorized("a revoked principal's key"));
        assert_eq!((i.code.as_str(), i.severity.as_str()), ("28000", "FATAL"));
        let i = info(ApiError::not_found("table ps.x not found"));
        assert_eq!(i.code, "42P01");
        assert!(i.message.contains("ps.x"));
        // Ours: an id, not the cause.
        let i = info(ApiError::internal("disk full at /secret/path"));
        assert_eq!(i.code, "XX000");
        assert!(!i.message.contains("secret") && i.message.contains("error id e-"));
    }
}
