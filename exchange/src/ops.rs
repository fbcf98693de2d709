//! Grant operations, the same for the HTTP API and the CLI.
//!
//! Data flow: the acting principal and what it asks → casbin decides the typed action
//! (request, approve, deny, revoke, withdraw) against the current state → the grant rules
//! decide against the state at the journal's head inside [`Store::change_grant`]
//! (compare-and-swap: checked again after every lost race) → the committed change.

use crate::authz::Action;
use crate::grants::{Actor, GrantChange, GrantRequest, request_change};
use crate::model::GrantId;
use crate::principals::Principal;
use crate::purposes::Purposes;
use crate::store::Store;
use crate::{Error, Result};

/// A decision on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
    Revoke,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
            Decision::Revoke => "revoke",
        }
    }
}

/// `who` asks for `request` (its consumer is `who`).
pub async fn request_grant(
    store: &Store,
    purposes: &Purposes,
    who: &Principal,
    request: GrantRequest,
) -> Result<GrantChange> {
    if purposes.get(&request.purpose).is_none() {
        return Err(Error::Forbidden(
            "the purpose is not a registered purpose code".into(),
        ));
    }
    let state = store.current();
    let Some(resource) = state.resources.get(&request.resource).cloned() else {
        return Err(Error::NotFound("no such resource".into()));
    };
    let action = Action::RequestGrant {
        resource: &resource.name,
        owner: &resource.owner,
    };
    if !state.authz.allows(&who.id, &who.department, &action) {
        return Err(Error::Forbidden(format!(
            "role {} cannot request grants",
            who.role
        )));
    }
    let request = GrantRequest {
        consumer: who.id.clone(),
        ..request
    };
    store
        .change_grant(who.id.as_str(), |_, now| {
            request_change(&resource, request.clone(), &who.id, now)
        })
        .await
}

/// `who` approves, denies or revokes grant `id` (a consumer revoking its own grant
/// withdraws it).
pub async fn decide_grant(
    store: &Store,
    who: &Principal,
    id: &GrantId,
    decision: Decision,
    reason: &str,
) -> Result<GrantChange> {
    let state = store.current();
    let Some(g) = state.grants.get(id) else {
        return Err(Error::NotFound("no such grant".into()));
    };
    let (resource, owner) = (g.request.resource.as_str(), g.owner.as_str());
    let action = match decision {
        Decision::Approve => Action::ApproveGrant { resource, owner },
        Decision::Deny => Action::DenyGrant { resource, owner },
        Decision::Revoke if g.request.consumer == who.id => {
            Action::WithdrawGrant { resource, owner }
        }
        Decision::Revoke => Action::RevokeGrant { resource, owner },
    };
    if !state.authz.allows(&who.id, &who.department, &action) {
        return Err(Error::Forbidden(format!(
            "principal {} ({} of {}) may not {} this grant",
            who.id,
            who.role,
            who.department,
            decision.as_str()
        )));
    }
    store
        .change_grant(who.id.as_str(), |state, now| {
            let actor = Actor {
                id: &who.id,
                role: who.role,
                department: &who.department,
            };
            match decision {
                Decision::Approve => state.grants.approval_by(id, actor, now),
                Decision::Deny => state.grants.denial_by(id, actor, reason, now),
                Decision::Revoke => state.grants.revocation_by(id, actor, reason, now),
            }
        })
        .await
}
