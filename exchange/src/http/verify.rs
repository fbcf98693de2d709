//! `POST /v1/verify/property-certificate`: yes or no, never the record.
//!
//! Data flow: the body → a normalised [`Question`] (or 400: what is wrong with the input)
//! → the caller's access to `nre.property_certificate` (any grant but aggregate-only; the
//! grant's fields bound the attributes it may confirm; `hcd.housing_contract` too when the
//! way in is a contract) → the per-subject rate limit (keyed by what was asked, whether or
//! not it exists) → the register held in memory ([`crate::scenarios::certificate`]) → one
//! answer shape and status for every negative; the audit records what was asked about
//! (subjects) and the real reason.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::call::{Answer, Call, Caller, Needs, run};
use super::error::{ApiError, parse_body};
use crate::access::{CallerPolicy, ResourceAccess};
use crate::model::ProcessingLevel;
use crate::scenarios::certificate::{CERTIFICATES, CONTRACTS, Check, Handle, Question};

/// A number (`89.5`) or its text (`"89.50"`, full-width digits accepted).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Area {
    Number(serde_json::Number),
    Text(String),
}

/// What a clerk asks. The way in is `certificate_no`, else `owner_id` with `owner_name`,
/// else `contract_no`; every attribute given must match one active certificate.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PropertyCertificateCheck {
    /// 不动产权证书号, e.g. 鄂(2024)武汉市不动产权第0123456号 (full-width digits and brackets,
    /// spaces accepted).
    certificate_no: Option<String>,
    /// The owner's resident ID (full-width digits, lowercase x accepted).
    owner_id: Option<String>,
    owner_name: Option<String>,
    /// A housing contract (网签合同) number: the certificate of the home it sold.
    contract_no: Option<String>,
    /// 不动产坐落.
    address: Option<String>,
    /// Floor area in m², at most two decimals: a number or its text.
    #[schema(value_type = Option<String>, example = "89.50")]
    area_m2: Option<Area>,
}

impl From<PropertyCertificateCheck> for Check {
    fn from(b: PropertyCertificateCheck) -> Self {
        Check {
            certificate_no: b.certificate_no,
            owner_id: b.owner_id,
            owner_name: b.owner_name,
            contract_no: b.contract_no,
            address: b.address,
            area_m2: b.area_m2.map(|a| match a {
                Area::Number(n) => n.to_string(),
                Area::Text(t) => t,
            }),
        }
    }
}

#[utoipa::path(post, path = "/v1/verify/property-certificate", tag = "scenarios", security(("api_key" = [])),
    request_body = PropertyCertificateCheck,
    params(("X-Purpose" = String, Header, description = "a registered purpose code"), ("X-Case-Id" = String, Header, description = "the case or application the check is for"), ("X-End-User" = Option<String>, Header, description = "the clerk at the window, recorded")),
    responses((status = 200, description = "`{\"result\": \"match\" | \"no_match\", \"checked\": [fields]}`: match only when every attribute given matches one active certificate; one no_match for every other case (which attribute, or whether the certificate exists, is never said)", body = super::doc::VerifyAnswer),
        (status = 400, description = "no way in, an empty or over-long field, an invalid resident ID, a bad area; missing purpose or case id", body = super::doc::ErrorEnvelope),
        (status = 403, description = "no grant to verify with (or one that does not cover a field asked about); unknown purpose", body = super::doc::ErrorEnvelope),
        (status = 401, description = "no, unknown or revoked key", body = super::doc::ErrorEnvelope),
        (status = 429, description = "over the caller's rate, or too many checks of the same certificate, owner or contract", body = super::doc::ErrorEnvelope)))]
pub(super) async fn property_certificate(
    State(app): State<AppState>,
    call: Call,
    body: Bytes,
) -> Response {
    let call = call.with_body(&body);
    let parsed = parse_body::<PropertyCertificateCheck>(&body).and_then(|b| {
        Question::new(&b.into()).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))
    });
    let app2 = app.clone();
    run(
        &app,
        call,
        Needs::Data,
        "verify",
        "scenario:property-certificate".into(),
        move |caller| async move {
            let q = parsed?;
            // A refused check is audited with what it asked about (not with whom it found:
            // nothing is looked up for a caller who may not ask).
            let asked = q.handle.audit_subject();
            verify(&app2, &caller, q).map_err(|e| e.about(vec![asked]))
        },
    )
    .await
}

/// The caller's access to `resource` for verification: any level but aggregates.
fn verify_access<'p>(
    policy: &'p CallerPolicy,
    resource: &str,
) -> Result<&'p ResourceAccess, ApiError> {
    policy
        .resource(resource)
        .filter(|a| a.level != ProcessingLevel::Aggregate)
        .ok_or_else(|| {
            ApiError::forbidden(
                "no_verify_grant",
                format!("no active grant to verify against {resource}"),
            )
        })
}

fn verify(app: &AppState, caller: &Caller, q: Question) -> Result<Answer, ApiError> {
    let policy = CallerPolicy::of(&caller.state, &caller.principal, chrono::Utc::now());
    let access = verify_access(&policy, CERTIFICATES)?;
    if let Some(granted) = &access.fields
        && let Some(f) = q
            .fields()
            .into_iter()
            .find(|f| !granted.iter().any(|g| g == f))
    {
        return Err(ApiError::forbidden(
            "field_not_granted",
            format!("the grant to verify against {CERTIFICATES} does not cover {f}"),
        ));
    }
    let mut grants: Vec<String> = access.grant.iter().map(|g| g.to_string()).collect();
    if matches!(q.handle, Handle::Contract(_)) {
        let contracts = verify_access(&policy, CONTRACTS)?;
        grants.extend(contracts.grant.iter().map(|g| g.to_string()));
    }
    if !app.subject_limiter.allows(&q.handle.rate_key()) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "subject_rate_limited",
            "too many checks of this certificate, owner or contract; retry after the time in Retry-After",
        );
        e.retry_after = Some(60);
        return Err(e);
    }
    let verdict = app.certificates.current().check(&q, &access.rows);
    let mut checked: Vec<&str> = q.fields();
    if matches!(q.handle, Handle::Contract(_)) {
        checked.insert(0, "contract_no");
    }
    let result = if verdict.matched { "match" } else { "no_match" };
    let body = serde_json::json!({ "result": result, "checked": checked }).to_string();
    metrics::counter!("gdx_exchange_verifications_total", "scenario" => "property_certificate", "result" => result)
        .increment(1);
    Ok(Answer {
        response: ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        rows: 0,
        subjects: verdict.subjects,
        grants,
        action: Some(format!("verify:{result}")),
        reason: Some(verdict.reason),
    })
}
