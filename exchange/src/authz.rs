//! Authorisation: typed actions, decided by casbin (RBAC with domains, deny by default).
//!
//! Data flow: a handler names what the caller wants as an [`Action`] → [`Action::tuple`]
//! turns it into casbin's (object, owner, action) — the one place that mapping is written →
//! [`Authorizer::allows`] asks the enforcer built for the current principals and grants
//! (`deploy/casbin/model.conf` and `policy.csv`, plus a `g` line per principal and a `p`
//! line per active grant) → the enforcer is immutable: a change of principals or grants
//! builds a new one and swaps it in whole (see [`crate::store`]), so a revocation is
//! refused on the very next call and the hot path takes no lock.

use casbin::prelude::*;

use crate::model::{Department, PrincipalId, ProcessingLevel, Role};

/// The casbin model (also loadable by any casbin implementation).
pub const MODEL: &str = include_str!("../../deploy/casbin/model.conf");
/// The role policies.
pub const ROLE_POLICY: &str = include_str!("../../deploy/casbin/policy.csv");

/// Something a principal wants to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read a resource's rows (or a profile) at a processing level.
    Read {
        resource: &'a str,
        owner: &'a str,
        level: ProcessingLevel,
    },
    /// Ask a yes/no question of a resource.
    Verify {
        resource: &'a str,
        owner: &'a str,
    },
    /// Ask for a grant on a resource.
    RequestGrant {
        resource: &'a str,
        owner: &'a str,
    },
    /// Withdraw one's own grant or request.
    WithdrawGrant {
        resource: &'a str,
        owner: &'a str,
    },
    ApproveGrant {
        resource: &'a str,
        owner: &'a str,
    },
    DenyGrant {
        resource: &'a str,
        owner: &'a str,
    },
    RevokeGrant {
        resource: &'a str,
        owner: &'a str,
    },
    ReadAudit,
    /// Run a scenario's job (the elderly allowance's monthly run), owned by a department.
    RunScenario {
        scenario: &'a str,
        owner: &'a str,
    },
    /// Read a scenario's runs and ledger.
    ReadScenario {
        scenario: &'a str,
        owner: &'a str,
    },
    /// A step of a reward policy (云兑现): `owner` is the department the step is for (the
    /// issuing department's issue, decide and read; an approval step's department; the paying
    /// department's disburse and reconcile).
    Reward {
        policy: &'a str,
        owner: &'a str,
        act: RewardAct,
    },
    /// Run read-only SQL (what it may read is the caller's policy's to say).
    Query,
    /// Manage principals.
    Administer,
}

impl Action<'_> {
    /// The casbin (object, owner, action) of this action.
    pub fn tuple(&self) -> (String, String, String) {
        let t = |obj: String, owner: &str, act: &str| (obj, owner.to_owned(), act.to_owned());
        match self {
            Action::Read {
                resource,
                owner,
                level,
            } => t(
                format!("dataset:{resource}"),
                owner,
                &format!("read:{level}"),
            ),
            Action::Verify { resource, owner } => t(format!("dataset:{resource}"), owner, "verify"),
            Action::RequestGrant { resource, owner } => {
                t(format!("grant:{resource}"), owner, "request")
            }
            Action::WithdrawGrant { resource, owner } => {
                t(format!("grant:{resource}"), owner, "withdraw")
            }
            Action::ApproveGrant { resource, owner } => {
                t(format!("grant:{resource}"), owner, "approve")
            }
            Action::DenyGrant { resource, owner } => t(format!("grant:{resource}"), owner, "deny"),
            Action::RevokeGrant { resource, owner } => {
                t(format!("grant:{resource}"), owner, "revoke")
            }
            Action::ReadAudit => t("audit".into(), "*", "read"),
            Action::RunScenario { scenario, owner } => {
                t(format!("scenario:{scenario}"), owner, "run")
            }
            Action::ReadScenario { scenario, owner } => {
                t(format!("scenario:{scenario}"), owner, "read")
            }
            Action::Reward { policy, owner, act } => {
                t(format!("reward:{policy}"), owner, act.as_str())
            }
            Action::Query => t("sql".into(), "*", "query"),
            Action::Administer => t("principal:*".into(), "*", "administer"),
        }
    }

    /// A short name for the audit trail.
    pub fn name(&self) -> String {
        let (obj, _, act) = self.tuple();
        format!("{act} {obj}")
    }
}

/// The steps of a reward policy, as casbin's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardAct {
    Issue,
    Decide,
    Read,
    Apply,
    Approve,
    Disburse,
    Reconcile,
}

impl RewardAct {
    pub fn as_str(self) -> &'static str {
        match self {
            RewardAct::Issue => "issue",
            RewardAct::Decide => "decide",
            RewardAct::Read => "read",
            RewardAct::Apply => "apply",
            RewardAct::Approve => "approve",
            RewardAct::Disburse => "disburse",
            RewardAct::Reconcile => "reconcile",
        }
    }
}

/// Why the enforcer could not be built.
#[derive(Debug, thiserror::Error)]
#[error("casbin: {0}")]
pub struct AuthzError(String);

/// An immutable casbin enforcer for one state of principals and grants.
pub struct Authorizer {
    enforcer: Enforcer,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer")
    }
}

/// One line of a casbin policy as its fields.
pub type Line = Vec<String>;

impl Authorizer {
    /// Builds an enforcer from the model, the role policies and the generated lines.
    pub async fn build(
        roles: Vec<Line>,
        grants: Vec<Line>,
    ) -> std::result::Result<Self, AuthzError> {
        let err = |e: casbin::Error| AuthzError(e.to_string());
        let model = DefaultModel::from_str(MODEL).await.map_err(err)?;
        let adapter = StringAdapter::new(ROLE_POLICY.to_owned());
        let mut enforcer = Enforcer::new(model, adapter).await.map_err(err)?;
        // The generated lines live in this enforcer only (the journals are their store).
        enforcer.enable_auto_save(false);
        if !roles.is_empty() {
            enforcer.add_grouping_policies(roles).await.map_err(err)?;
        }
        if !grants.is_empty() {
            enforcer.add_policies(grants).await.map_err(err)?;
        }
        Ok(Self { enforcer })
    }

    /// Whether `who` (of `department`) may do `action`. Deny by default; an enforcer error
    /// denies too.
    pub fn allows(&self, who: &PrincipalId, department: &Department, action: &Action<'_>) -> bool {
        let (obj, owner, act) = action.tuple();
        self.enforcer
            .enforce((
                who.as_str(),
                department.as_str(),
                obj.as_str(),
                owner.as_str(),
                act.as_str(),
            ))
            .unwrap_or(false)
    }
}

/// The `g` line giving a principal its role in its department.
pub fn role_line(who: &PrincipalId, role: Role, department: &Department) -> Line {
    vec![
        who.as_str().to_owned(),
        role.as_str().to_owned(),
        department.as_str().to_owned(),
    ]
}

/// The `p` line of one active grant.
pub fn grant_line(
    who: &PrincipalId,
    department: &Department,
    resource: &str,
    level: ProcessingLevel,
) -> Line {
    let act = match level {
        ProcessingLevel::Verify => "verify".to_owned(),
        l => format!("read:{l}"),
    };
    vec![
        who.as_str().to_owned(),
        department.as_str().to_owned(),
        format!("dataset:{resource}"),
        "*".to_owned(),
        act,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PrincipalId {
        PrincipalId::new(s).unwrap()
    }
    fn d(s: &str) -> Department {
        Department::new(s).unwrap()
    }

    #[tokio::test]
    async fn roles_grants_and_departments_decide_and_everything_else_is_denied() {
        let roles = vec![
            role_line(&p("ps-sys"), Role::DepartmentSystem, &d("ps")),
            role_line(&p("mca-app"), Role::App, &d("mca")),
            role_line(&p("ps-appr"), Role::Approver, &d("ps")),
            role_line(&p("aud"), Role::Auditor, &d("bdc")),
        ];
        let grants = vec![grant_line(
            &p("mca-app"),
            &d("mca"),
            "ps.household_registration",
            ProcessingLevel::Masked,
        )];
        let a = Authorizer::build(roles, grants).await.unwrap();
        let read = |resource, owner, level| Action::Read {
            resource,
            owner,
            level,
        };
        let hh = "ps.household_registration";
        // Own department: raw.
        assert!(a.allows(
            &p("ps-sys"),
            &d("ps"),
            &read(hh, "ps", ProcessingLevel::Raw)
        ));
        // Another department's system: nothing without a grant.
        assert!(!a.allows(
            &p("ps-sys"),
            &d("ps"),
            &read("mca.cremation", "mca", ProcessingLevel::Masked)
        ));
        // The grant: masked, not raw; and not in another department's name.
        assert!(a.allows(
            &p("mca-app"),
            &d("mca"),
            &read(hh, "ps", ProcessingLevel::Masked)
        ));
        assert!(!a.allows(
            &p("mca-app"),
            &d("mca"),
            &read(hh, "ps", ProcessingLevel::Raw)
        ));
        assert!(!a.allows(
            &p("mca-app"),
            &d("ps"),
            &read(hh, "ps", ProcessingLevel::Masked)
        ));
        // Approvers decide their own department's requests only.
        assert!(a.allows(
            &p("ps-appr"),
            &d("ps"),
            &Action::ApproveGrant {
                resource: hh,
                owner: "ps"
            }
        ));
        assert!(!a.allows(
            &p("ps-appr"),
            &d("ps"),
            &Action::ApproveGrant {
                resource: "mca.cremation",
                owner: "mca"
            }
        ));
        assert!(a.allows(
            &p("mca-app"),
            &d("mca"),
            &Action::RequestGrant {
                resource: hh,
                owner: "ps"
            }
        ));
        assert!(!a.allows(
            &p("mca-app"),
            &d("mca"),
            &Action::ApproveGrant {
                resource: hh,
                owner: "ps"
            }
        ));
        assert!(a.allows(&p("aud"), &d("bdc"), &Action::ReadAudit));
        assert!(!a.allows(&p("mca-app"), &d("mca"), &Action::ReadAudit));
        assert!(!a.allows(&p("nobody"), &d("ps"), &Action::ReadAudit));
        assert!(a.allows(&p("aud"), &d("bdc"), &Action::Query));
        assert!(!a.allows(&p("mca-app"), &d("mca"), &Action::Query));
        assert!(!a.allows(&p("aud"), &d("bdc"), &Action::Administer));
    }
}
