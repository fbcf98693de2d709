//! Grants (data-sharing agreements): a consumer's right to read one resource at one
//! processing level, for a purpose, until it expires.
//!
//! Data flow: a request ([`GrantRequest`]) → [`requirement`] decides from the resource's level
//! and sharing type (DESIGN §5 matrix) whether it is active at once, needs the owner
//! department's approval (and the CPO's for level ≥ 4), or can never be granted → each
//! decision is a [`GrantChange`] in the `grants` journal, checked by [`Grants::check`] against
//! the state folded up to the journal's head → [`Grants::apply`] folds it; every replica
//! folds the same journal to the same grants → only active, unexpired grants count, at the
//! moment of the call ([`Grant::status_at`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use gdx_catalog::{Level, SharingType};
use serde::{Deserialize, Serialize};

use crate::model::{Department, GrantId, PrincipalId, ProcessingLevel, Role};
use crate::resources::Resource;

/// Longest a grant may run.
pub const MAX_TERM_DAYS: i64 = 366;
/// Term of a grant that needed approval, when the request names none.
pub const DEFAULT_TERM_DAYS: i64 = 90;

/// What a consumer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRequest {
    pub consumer: PrincipalId,
    /// A resource name: `<dept>.<dataset>`, `profiles.citizen`, `profiles.enterprise`.
    pub resource: String,
    pub level: ProcessingLevel,
    /// The fields asked for; `None`: every field the level allows.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Row scope: only rows whose field has one of the values (all fields must match).
    #[serde(default)]
    pub rows: BTreeMap<String, Vec<String>>,
    pub purpose: String,
    #[serde(default)]
    pub legal_basis: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who must approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproverKind {
    /// An approver of the department that owns the resource.
    Owner,
    /// The chief privacy officer.
    Cpo,
}

/// What a request needs before it is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// Approvals needed; empty: active at request.
    pub approvals: Vec<ApproverKind>,
    /// A legal basis must be stated.
    pub legal_basis: bool,
    /// Fields must be listed, and not all of them (最小必要).
    pub minimise_fields: bool,
}

/// A change of a grant, as the journal stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum GrantChange {
    Requested {
        id: GrantId,
        request: Box<GrantRequest>,
        by: PrincipalId,
        /// The owner department and what the request needs, fixed at request.
        owner: String,
        requirement: Requirement,
        expires_at: DateTime<Utc>,
    },
    Approved {
        id: GrantId,
        by: PrincipalId,
        /// The approver's role and department when they approved.
        role: Role,
        department: Department,
        kind: ApproverKind,
    },
    Denied {
        id: GrantId,
        by: PrincipalId,
        reason: String,
    },
    Revoked {
        id: GrantId,
        by: PrincipalId,
        reason: String,
    },
}

impl GrantChange {
    pub fn kind(&self) -> &'static str {
        match self {
            GrantChange::Requested { .. } => "grant_requested",
            GrantChange::Approved { .. } => "grant_approved",
            GrantChange::Denied { .. } => "grant_denied",
            GrantChange::Revoked { .. } => "grant_revoked",
        }
    }

    pub fn grant(&self) -> &GrantId {
        match self {
            GrantChange::Requested { id, .. }
            | GrantChange::Approved { id, .. }
            | GrantChange::Denied { id, .. }
            | GrantChange::Revoked { id, .. } => id,
        }
    }
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Requested,
    Active,
    Denied,
    Revoked,
    Expired,
}

/// One approval given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub kind: ApproverKind,
    pub by: PrincipalId,
    pub at: DateTime<Utc>,
}

/// One grant, folded from its changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub id: GrantId,
    #[serde(flatten)]
    pub request: GrantRequest,
    pub requested_by: PrincipalId,
    pub requested_at: DateTime<Utc>,
    pub owner: String,
    pub requirement: Requirement,
    pub expires_at: DateTime<Utc>,
    pub approvals: Vec<Approval>,
    /// Requested, active, denied or revoked (expiry is computed at the moment of a call).
    status: GrantStatus,
    /// Who denied or revoked it, and why.
    pub decided_by: Option<PrincipalId>,
    pub reason: Option<String>,
}

impl Grant {
    /// The grant's status at `now` (an active grant past its expiry is expired).
    pub fn status_at(&self, now: DateTime<Utc>) -> GrantStatus {
        match self.status {
            GrantStatus::Active | GrantStatus::Requested if now >= self.expires_at => {
                GrantStatus::Expired
            }
            s => s,
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.status_at(now) == GrantStatus::Active
    }

    fn missing_approvals(&self) -> Vec<ApproverKind> {
        self.requirement
            .approvals
            .iter()
            .copied()
            .filter(|k| !self.approvals.iter().any(|a| a.kind == *k))
            .collect()
    }
}

/// Why a grant change is refused. Messages name the rule, never a value of the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("no shareable resource {0:?}")]
    UnknownResource(String),
    #[error("{resource} has no field {field:?}")]
    UnknownField { resource: String, field: String },
    #[error("{0}")]
    Never(String),
    #[error("a grant at this level needs a legal basis")]
    LegalBasisRequired,
    #[error("raw access to level-4 data must list only the fields needed, not all of them")]
    FieldsNotMinimised,
    #[error("the expiry must be in the future and at most {MAX_TERM_DAYS} days ahead")]
    BadExpiry,
    #[error("a row scope needs at least one value per field")]
    EmptyRowScope,
    #[error("no grant {0}")]
    Unknown(GrantId),
    #[error("grant {id} is {status:?}; it cannot be {action}")]
    WrongState {
        id: GrantId,
        status: GrantStatus,
        action: &'static str,
    },
    #[error("nobody approves or denies their own request")]
    OwnRequest,
    #[error("only {0} may do this")]
    NotEntitled(&'static str),
    #[error("grant {0} has this approval already")]
    AlreadyApproved(GrantId),
    #[error("a reason is required")]
    ReasonRequired,
    #[error("grant {0} exists already")]
    Exists(GrantId),
}

/// The DESIGN §5 matrix, tightened by the resource's sharing type.
pub fn requirement(resource: &Resource, level: ProcessingLevel) -> Result<Requirement, GrantError> {
    use ProcessingLevel as P;
    let l = resource.level.get();
    let approval = |cpo: bool| Requirement {
        approvals: if cpo {
            vec![ApproverKind::Owner, ApproverKind::Cpo]
        } else {
            vec![ApproverKind::Owner]
        },
        legal_basis: false,
        minimise_fields: false,
    };
    let auto = Requirement {
        approvals: vec![],
        legal_basis: false,
        minimise_fields: false,
    };
    let mut need = match (level, l) {
        (P::Raw, 5) => {
            return Err(GrantError::Never(
                "level-5 data is never shared raw (masked, aggregate or verify only)".into(),
            ));
        }
        (P::Raw, 4) => Requirement {
            approvals: vec![ApproverKind::Owner, ApproverKind::Cpo],
            legal_basis: true,
            minimise_fields: true,
        },
        (P::Raw, 3) => approval(false),
        (P::Raw, _) => auto.clone(),
        (P::Masked, 5) => approval(true),
        (P::Masked, 4) => approval(false),
        (P::Masked, _) => auto.clone(),
        (P::Aggregate, 5) => approval(false),
        (P::Aggregate, _) => auto.clone(),
        (P::Verify, l) if l >= 3 => approval(false),
        (P::Verify, _) => auto.clone(),
    };
    match resource.sharing {
        SharingType::None if level == P::Raw => {
            return Err(GrantError::Never(
                "the owner does not share this resource (不予共享): never raw".into(),
            ));
        }
        SharingType::None if need.approvals.is_empty() => need.approvals.push(ApproverKind::Owner),
        SharingType::Conditional
            if matches!(level, P::Raw | P::Masked) && need.approvals.is_empty() =>
        {
            need.approvals.push(ApproverKind::Owner)
        }
        _ => {}
    }
    if resource.level >= Level::SENSITIVE && !need.approvals.is_empty() {
        need.legal_basis = true;
    }
    Ok(need)
}

/// Every grant, folded from the journal.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    by_id: BTreeMap<GrantId, Grant>,
}

/// What a principal is, as the grant rules need it.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub id: &'a PrincipalId,
    pub role: Role,
    pub department: &'a Department,
}

/// A request checked and turned into its journal change.
pub fn request_change(
    resource: &Resource,
    request: GrantRequest,
    by: &PrincipalId,
    now: DateTime<Utc>,
) -> Result<GrantChange, GrantError> {
    let need = requirement(resource, request.level)?;
    if let Some(fields) = &request.fields {
        for f in fields {
            if resource.field(f).is_none() {
                return Err(GrantError::UnknownField {
                    resource: resource.name.clone(),
                    field: f.clone(),
                });
            }
        }
    }
    for (f, values) in &request.rows {
        if resource.field(f).is_none() {
            return Err(GrantError::UnknownField {
                resource: resource.name.clone(),
                field: f.clone(),
            });
        }
        if values.is_empty() {
            return Err(GrantError::EmptyRowScope);
        }
    }
    if need.legal_basis
        && request
            .legal_basis
            .as_deref()
            .is_none_or(|b| b.trim().is_empty())
    {
        return Err(GrantError::LegalBasisRequired);
    }
    if need.minimise_fields {
        let listed = request.fields.as_ref().map_or(0, Vec::len);
        if listed == 0 || listed >= resource.fields.len() {
            return Err(GrantError::FieldsNotMinimised);
        }
    }
    let term = if need.approvals.is_empty() {
        MAX_TERM_DAYS
    } else {
        DEFAULT_TERM_DAYS
    };
    let expires_at = request.expires_at.unwrap_or(now + Duration::days(term));
    if expires_at <= now || expires_at > now + Duration::days(MAX_TERM_DAYS) {
        return Err(GrantError::BadExpiry);
    }
    Ok(GrantChange::Requested {
        id: GrantId::random(),
        owner: resource.owner.clone(),
        requirement: need,
        expires_at,
        request: Box::new(request),
        by: by.clone(),
    })
}

impl Grants {
    pub fn get(&self, id: &GrantId) -> Option<&Grant> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.by_id.values()
    }

    /// The grants of `consumer` active at `now`.
    pub fn active_for<'a>(
        &'a self,
        consumer: &'a PrincipalId,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        self.by_id
            .values()
            .filter(move |g| &g.request.consumer == consumer && g.is_active(now))
    }

    /// The approval `actor` can give to grant `id` now.
    pub fn approval_by(
        &self,
        id: &GrantId,
        actor: Actor<'_>,
        now: DateTime<Utc>,
    ) -> Result<GrantChange, GrantError> {
        let g = self.pending(id, now, "approved")?;
        if &g.requested_by == actor.id || &g.request.consumer == actor.id {
            return Err(GrantError::OwnRequest);
        }
        let missing = g.missing_approvals();
        let kind = if actor.role == Role::Approver && actor.department.as_str() == g.owner {
            ApproverKind::Owner
        } else if actor.role == Role::Cpo {
            ApproverKind::Cpo
        } else {
            return Err(GrantError::NotEntitled(
                "an approver of the owner department, or the CPO for level-4 and level-5 data",
            ));
        };
        if !g.requirement.approvals.contains(&kind) {
            return Err(GrantError::NotEntitled(
                "an approver of the owner department, or the CPO for level-4 and level-5 data",
            ));
        }
        if !missing.contains(&kind) {
            return Err(GrantError::AlreadyApproved(id.clone()));
        }
        Ok(GrantChange::Approved {
            id: id.clone(),
            by: actor.id.clone(),
            role: actor.role,
            department: actor.department.clone(),
            kind,
        })
    }

    /// A denial by `actor`.
    pub fn denial_by(
        &self,
        id: &GrantId,
        actor: Actor<'_>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<GrantChange, GrantError> {
        let g = self.pending(id, now, "denied")?;
        if &g.requested_by == actor.id || &g.request.consumer == actor.id {
            return Err(GrantError::OwnRequest);
        }
        let owner = actor.role == Role::Approver && actor.department.as_str() == g.owner;
        let cpo = actor.role == Role::Cpo && g.requirement.approvals.contains(&ApproverKind::Cpo);
        if !owner && !cpo {
            return Err(GrantError::NotEntitled(
                "an approver of the owner department, or the CPO where the CPO approves",
            ));
        }
        if reason.trim().is_empty() {
            return Err(GrantError::ReasonRequired);
        }
        Ok(GrantChange::Denied {
            id: id.clone(),
            by: actor.id.clone(),
            reason: reason.to_owned(),
        })
    }

    /// A revocation by `actor`: the owner department's approvers, the CPO, or the consumer
    /// withdrawing its own grant or request.
    pub fn revocation_by(
        &self,
        id: &GrantId,
        actor: Actor<'_>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<GrantChange, GrantError> {
        let g = self
            .by_id
            .get(id)
            .ok_or_else(|| GrantError::Unknown(id.clone()))?;
        let status = g.status_at(now);
        if !matches!(status, GrantStatus::Active | GrantStatus::Requested) {
            return Err(GrantError::WrongState {
                id: id.clone(),
                status,
                action: "revoked",
            });
        }
        let owner = actor.role == Role::Approver && actor.department.as_str() == g.owner;
        let own = &g.request.consumer == actor.id;
        if !owner && actor.role != Role::Cpo && !own {
            return Err(GrantError::NotEntitled(
                "an approver of the owner department, the CPO, or the consumer itself",
            ));
        }
        if reason.trim().is_empty() {
            return Err(GrantError::ReasonRequired);
        }
        Ok(GrantChange::Revoked {
            id: id.clone(),
            by: actor.id.clone(),
            reason: reason.to_owned(),
        })
    }

    fn pending(
        &self,
        id: &GrantId,
        now: DateTime<Utc>,
        action: &'static str,
    ) -> Result<&Grant, GrantError> {
        let g = self
            .by_id
            .get(id)
            .ok_or_else(|| GrantError::Unknown(id.clone()))?;
        match g.status_at(now) {
            GrantStatus::Requested => Ok(g),
            status => Err(GrantError::WrongState {
                id: id.clone(),
                status,
                action,
            }),
        }
    }

    /// Applies a journal entry's change made at `at`. A change that does not fit the state
    /// (which compare-and-swap keeps writers from committing) is skipped, so every replica
    /// folds alike; returns whether it applied.
    pub fn apply(&mut self, change: GrantChange, at: DateTime<Utc>) -> bool {
        match change {
            GrantChange::Requested {
                id,
                request,
                by,
                owner,
                requirement,
                expires_at,
            } => {
                if self.by_id.contains_key(&id) {
                    return false;
                }
                let status = if requirement.approvals.is_empty() {
                    GrantStatus::Active
                } else {
                    GrantStatus::Requested
                };
                self.by_id.insert(
                    id.clone(),
                    Grant {
                        id,
                        request: *request,
                        requested_by: by,
                        requested_at: at,
                        owner,
                        requirement,
                        expires_at,
                        approvals: vec![],
                        status,
                        decided_by: None,
                        reason: None,
                    },
                );
                true
            }
            GrantChange::Approved {
                id,
                by,
                role,
                department,
                kind,
            } => {
                let actor = Actor {
                    id: &by,
                    role,
                    department: &department,
                };
                if self.approval_by(&id, actor, at).is_err() {
                    return false;
                }
                let Some(g) = self.by_id.get_mut(&id) else {
                    return false;
                };
                g.approvals.push(Approval { kind, by, at });
                if g.missing_approvals().is_empty() {
                    g.status = GrantStatus::Active;
                }
                true
            }
            GrantChange::Denied { id, by, reason } => {
                let Some(g) = self.by_id.get_mut(&id) else {
                    return false;
                };
                if g.status_at(at) != GrantStatus::Requested {
                    return false;
                }
                g.status = GrantStatus::Denied;
                g.decided_by = Some(by);
                g.reason = Some(reason);
                true
            }
            GrantChange::Revoked { id, by, reason } => {
                let Some(g) = self.by_id.get_mut(&id) else {
                    return false;
                };
                if !matches!(
                    g.status_at(at),
                    GrantStatus::Active | GrantStatus::Requested
                ) {
                    return false;
                }
                g.status = GrantStatus::Revoked;
                g.decided_by = Some(by);
                g.reason = Some(reason);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;
