//! The OpenAPI document: shapes of the answers (for readers of the document; handlers build
//! the same JSON), the security scheme, and the tags.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The one error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
struct ErrorBody {
    /// The HTTP status.
    status: u16,
    /// A stable code: `not_found`, `purpose_required`, `unknown_purpose`, `rate_limited`, …
    code: String,
    /// What went wrong (absent on 5xx answers).
    message: Option<String>,
    /// The error id (also in the server's log line of a 5xx).
    id: String,
}

/// A page of rows as the caller's grant shows them.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RowsPage {
    resource: String,
    /// raw or masked.
    level: String,
    /// The Delta version read.
    version: Option<u64>,
    /// One object per row: column → value.
    rows: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// One profile.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ProfileAnswer {
    /// Column → value, masked as granted; ungranted columns absent.
    profile: serde_json::Value,
    level: String,
    /// The cutoff of `as_of`, when given.
    as_of: Option<String>,
}

/// The answer of `POST /v1/sql` in JSON.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SqlAnswer {
    /// Each column's name and Arrow type.
    columns: Vec<serde_json::Value>,
    /// Column → value, as the caller's grants show them.
    rows: Vec<serde_json::Value>,
    row_count: usize,
    /// The answer had more rows than the cap; only the first are here.
    truncated: bool,
}

/// A verification's answer: one bit, and the fields it compared.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VerifyAnswer {
    /// `match` or `no_match`.
    result: String,
    /// The fields given and compared (the way in included).
    checked: Vec<String>,
}

/// A page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditPage {
    records: Vec<serde_json::Value>,
    next_offset: Option<usize>,
}

/// A grant as the exchange shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GrantAnswer {
    id: String,
    consumer: String,
    resource: String,
    /// raw, masked, aggregate or verify.
    level: String,
    fields: Option<Vec<String>>,
    rows: std::collections::BTreeMap<String, Vec<String>>,
    purpose: String,
    legal_basis: Option<String>,
    requested_by: String,
    requested_at: String,
    owner: String,
    requirement: serde_json::Value,
    expires_at: String,
    approvals: Vec<serde_json::Value>,
    /// requested, active, denied, revoked or expired (at the moment of the answer).
    status: String,
    decided_by: Option<String>,
    reason: Option<String>,
}

/// A list of anything, under one key.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Listing {
    #[serde(flatten)]
    items: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gdx exchange",
        description = "The data-sharing exchange of a district big-data centre: catalog, rows and profiles as the caller's grants allow, grants, and the audit trail. Keys: `Authorization: Bearer <key>`; data calls also need `X-Purpose` (a registered purpose code) and `X-Case-Id`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "service", description = "Liveness, readiness, metrics"),
        (name = "catalog", description = "What exists and may be asked for"),
        (name = "data", description = "Rows and profiles, as the caller's grants allow"),
        (name = "grants", description = "Data-sharing agreements"),
        (name = "scenarios", description = "Smart scenarios: verifications, the elderly allowance, entitlement gaps, project timelines"),
        (name = "rewards", description = "云兑现: reward policies decided over the lake, approved step by step, paid once and reconciled with the bank"),
        (name = "audit", description = "Who used which data, when and why"),
    )
)]
pub(super) struct ApiDoc;
