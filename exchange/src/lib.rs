//! gdx exchange: the one door through which shared data leaves the lake.
//!
//! Data flow: HTTP request → request id, tracing span, body limit, timeout ([`http`]) →
//! API-key authentication against the principals journal ([`principals`], [`secret`]) →
//! purpose and case id ([`purposes`]) → a typed [`authz::Action`] decided by casbin
//! (deny by default) → the caller's [`access::CallerPolicy`] built from its department and
//! active [`grants`] → the lake's SQL session under that policy (masks, removed fields,
//! row scope, aggregate-only: the same `TablePolicy` every read path uses) → the answer,
//! after its [`audit`] record (hash-chained, fsync'd) is durable; records are shipped into
//! `system.audit` in the lake. Principals and grants are journals in the lake ([`store`]),
//! so every replica over the same lake agrees on them.

pub mod access;
pub mod audit;
pub mod authz;
pub mod grants;
pub mod http;
pub mod lookups;
pub mod model;
pub mod ops;
pub mod pg;
pub mod principals;
pub mod purposes;
pub mod resources;
pub mod scenarios;
pub mod secret;
pub mod store;

use grants::GrantError;
use principals::PrincipalError;

/// Errors of the exchange's operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
    #[error(transparent)]
    Principal(PrincipalError),
    #[error(transparent)]
    Grant(GrantError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
