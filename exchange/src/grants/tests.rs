use super::*;
use crate::resources::ResourceField;

fn resource(level: u8, sharing: SharingType) -> Resource {
    Resource {
        name: "ps.household_registration".into(),
        owner: "ps".into(),
        level: Level::new(level).unwrap(),
        sharing,
        fields: ["resident_id", "name", "street", "status"]
            .map(|n| ResourceField {
                name: n.into(),
                level: Level::new(level).unwrap(),
                personal: n == "name",
            })
            .to_vec(),
        subject: Some("resident_id".into()),
        profile: false,
    }
}

fn pid(s: &str) -> PrincipalId {
    PrincipalId::new(s).unwrap()
}

fn dept(s: &str) -> Department {
    Department::new(s).unwrap()
}

fn ask(level: ProcessingLevel) -> GrantRequest {
    GrantRequest {
        consumer: pid("mca-app"),
        resource: "ps.household_registration".into(),
        level,
        fields: None,
        rows: BTreeMap::new(),
        purpose: "social_assistance".into(),
        legal_basis: None,
        expires_at: None,
    }
}

/// Requests `req` on `r` and folds it; returns the grant id.
fn requested(grants: &mut Grants, r: &Resource, req: GrantRequest, now: DateTime<Utc>) -> GrantId {
    let c = request_change(r, req, &pid("mca-app"), now).unwrap();
    let id = c.grant().clone();
    assert!(grants.apply(c, now));
    id
}

#[test]
fn the_matrix_decides_what_is_automatic_what_needs_approval_and_what_never() {
    use ProcessingLevel::*;
    let open = resource(2, SharingType::Unconditional);
    assert!(requirement(&open, Raw).unwrap().approvals.is_empty());
    let l3 = resource(3, SharingType::Unconditional);
    assert!(requirement(&l3, Masked).unwrap().approvals.is_empty());
    assert_eq!(
        requirement(&l3, Raw).unwrap().approvals,
        vec![ApproverKind::Owner]
    );
    let l4 = resource(4, SharingType::Conditional);
    let raw4 = requirement(&l4, Raw).unwrap();
    assert_eq!(raw4.approvals, vec![ApproverKind::Owner, ApproverKind::Cpo]);
    assert!(raw4.legal_basis && raw4.minimise_fields);
    assert!(requirement(&l4, Aggregate).unwrap().approvals.is_empty());
    let l5 = resource(5, SharingType::Conditional);
    assert!(matches!(requirement(&l5, Raw), Err(GrantError::Never(_))));
    let none = resource(2, SharingType::None);
    assert!(matches!(requirement(&none, Raw), Err(GrantError::Never(_))));
    assert_eq!(
        requirement(&none, Masked).unwrap().approvals,
        vec![ApproverKind::Owner]
    );
    // A conditional dataset's masked rows need the owner even where the matrix is open.
    let cond3 = resource(3, SharingType::Conditional);
    assert_eq!(
        requirement(&cond3, Masked).unwrap().approvals,
        vec![ApproverKind::Owner]
    );
}

#[test]
fn level_4_raw_needs_a_legal_basis_minimised_fields_and_both_approvals() {
    let r = resource(4, SharingType::Conditional);
    let now = Utc::now();
    let mut req = ask(ProcessingLevel::Raw);
    assert_eq!(
        request_change(&r, req.clone(), &pid("mca-app"), now),
        Err(GrantError::LegalBasisRequired)
    );
    req.legal_basis = Some("《社会救助暂行办法》".into());
    assert_eq!(
        request_change(&r, req.clone(), &pid("mca-app"), now),
        Err(GrantError::FieldsNotMinimised)
    );
    req.fields = Some(vec!["resident_id".into(), "status".into()]);
    let mut grants = Grants::default();
    let id = requested(&mut grants, &r, req, now);
    assert_eq!(
        grants.get(&id).unwrap().status_at(now),
        GrantStatus::Requested
    );

    let ps_approver = pid("ps-approver");
    let owner = Actor {
        id: &ps_approver,
        role: Role::Approver,
        department: &dept("ps"),
    };
    let c = grants.approval_by(&id, owner, now).unwrap();
    assert!(grants.apply(c, now));
    // One approval of two: still requested, and the owner cannot approve twice.
    assert_eq!(
        grants.get(&id).unwrap().status_at(now),
        GrantStatus::Requested
    );
    assert_eq!(
        grants.approval_by(&id, owner, now),
        Err(GrantError::AlreadyApproved(id.clone()))
    );
    let cpo_id = pid("cpo");
    let cpo = Actor {
        id: &cpo_id,
        role: Role::Cpo,
        department: &dept("bdc"),
    };
    let c = grants.approval_by(&id, cpo, now).unwrap();
    assert!(grants.apply(c, now));
    assert!(grants.get(&id).unwrap().is_active(now));
    assert_eq!(grants.active_for(&pid("mca-app"), now).count(), 1);
}

#[test]
fn nobody_approves_their_own_request_and_other_departments_cannot_approve() {
    let r = resource(3, SharingType::Conditional);
    let now = Utc::now();
    let mut grants = Grants::default();
    let id = requested(&mut grants, &r, ask(ProcessingLevel::Raw), now);
    let me = pid("mca-app");
    let own = Actor {
        id: &me,
        role: Role::Approver,
        department: &dept("ps"),
    };
    assert_eq!(
        grants.approval_by(&id, own, now),
        Err(GrantError::OwnRequest)
    );
    let other = pid("mca-approver");
    let other = Actor {
        id: &other,
        role: Role::Approver,
        department: &dept("mca"),
    };
    assert!(matches!(
        grants.approval_by(&id, other, now),
        Err(GrantError::NotEntitled(_))
    ));
    // The CPO is not asked for level-3 data.
    let cpo_id = pid("cpo");
    let cpo = Actor {
        id: &cpo_id,
        role: Role::Cpo,
        department: &dept("bdc"),
    };
    assert!(matches!(
        grants.approval_by(&id, cpo, now),
        Err(GrantError::NotEntitled(_))
    ));
    // A forged approval in the journal is skipped by every replica's fold.
    let forged = GrantChange::Approved {
        id: id.clone(),
        by: me.clone(),
        role: Role::Approver,
        department: dept("ps"),
        kind: ApproverKind::Owner,
    };
    assert!(!grants.apply(forged, now));
    assert_eq!(
        grants.get(&id).unwrap().status_at(now),
        GrantStatus::Requested
    );
}

#[test]
fn denials_need_a_reason_and_end_the_request_revocations_end_the_grant_expiry_counts() {
    let r = resource(3, SharingType::Conditional);
    let now = Utc::now();
    let mut grants = Grants::default();
    let ps = pid("ps-approver");
    let owner = Actor {
        id: &ps,
        role: Role::Approver,
        department: &dept("ps"),
    };

    let denied = requested(&mut grants, &r, ask(ProcessingLevel::Raw), now);
    assert_eq!(
        grants.denial_by(&denied, owner, " ", now),
        Err(GrantError::ReasonRequired)
    );
    let c = grants
        .denial_by(&denied, owner, "purpose does not need raw IDs", now)
        .unwrap();
    assert!(grants.apply(c, now));
    assert_eq!(
        grants.get(&denied).unwrap().status_at(now),
        GrantStatus::Denied
    );
    assert!(matches!(
        grants.approval_by(&denied, owner, now),
        Err(GrantError::WrongState { .. })
    ));

    let revoked = requested(&mut grants, &r, ask(ProcessingLevel::Raw), now);
    let c = grants.approval_by(&revoked, owner, now).unwrap();
    assert!(grants.apply(c, now));
    assert!(grants.get(&revoked).unwrap().is_active(now));
    let c = grants
        .revocation_by(&revoked, owner, "case closed", now)
        .unwrap();
    assert!(grants.apply(c, now));
    assert_eq!(
        grants.get(&revoked).unwrap().status_at(now),
        GrantStatus::Revoked
    );
    assert_eq!(grants.active_for(&pid("mca-app"), now).count(), 0);

    let mut req = ask(ProcessingLevel::Raw);
    req.expires_at = Some(now + Duration::days(1));
    let expiring = requested(&mut grants, &r, req, now);
    let c = grants.approval_by(&expiring, owner, now).unwrap();
    assert!(grants.apply(c, now));
    assert!(grants.get(&expiring).unwrap().is_active(now));
    let later = now + Duration::days(2);
    assert_eq!(
        grants.get(&expiring).unwrap().status_at(later),
        GrantStatus::Expired
    );
    assert_eq!(grants.active_for(&pid("mca-app"), later).count(), 0);

    let mut past = ask(ProcessingLevel::Raw);
    past.expires_at = Some(now - Duration::days(1));
    assert_eq!(
        request_change(&r, past, &pid("mca-app"), now),
        Err(GrantError::BadExpiry)
    );
}

#[test]
fn requests_name_only_fields_the_resource_has() {
    let r = resource(2, SharingType::Unconditional);
    let mut req = ask(ProcessingLevel::Masked);
    req.fields = Some(vec!["salary".into()]);
    assert!(matches!(
        request_change(&r, req, &pid("mca-app"), Utc::now()),
        Err(GrantError::UnknownField { .. })
    ));
    let mut req = ask(ProcessingLevel::Masked);
    req.rows.insert("street".into(), vec![]);
    assert_eq!(
        request_change(&r, req, &pid("mca-app"), Utc::now()),
        Err(GrantError::EmptyRowScope)
    );
}
