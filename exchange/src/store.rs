//! The exchange's state: principals and grants kept as journals in the lake, folded into
//! one immutable [`AccessState`] that every call reads without a lock.
//!
//! Data flow: `<lake>/_system/exchange/principals/` and `…/grants/` ([`gdx_lake::journal`]) →
//! [`Store::open`] folds both → [`AccessState`] (principals by key hash, grants, a casbin
//! [`Authorizer`] built for exactly them) in an `ArcSwap` → calls `load()` it → a change
//! ([`Store::change_principals`], [`Store::change_grant`]) is checked against the state
//! folded up to the journal's head, appended with compare-and-swap (another replica's
//! change in between: reload, check again, retry), then folded and swapped in before the
//! call returns → other replicas see it at their next [`Store::refresh`] (a second, by
//! default), and the refresh also rebuilds the enforcer when a grant has expired.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use gdx_lake::LakeLocation;
use gdx_lake::journal::{Appended, Journal, JournalEntry, NewEntry};
use tokio::sync::Mutex;

use crate::access::CallerPolicy;
use crate::authz::{Authorizer, grant_line, role_line};
use crate::grants::{GrantChange, GrantError, Grants};
use crate::principals::{PrincipalChange, PrincipalError, Principals};
use crate::resources::Resources;
use crate::{Error, Result};

/// The journals' heads a state was folded from: the policy version audit records name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyVersion {
    pub principals: i64,
    pub grants: i64,
}

impl PolicyVersion {
    /// One number for the audit trail: grows with every change of either journal.
    pub fn number(&self) -> i64 {
        self.principals + self.grants
    }
}

/// Everything a call needs to decide, immutable.
#[derive(Debug)]
pub struct AccessState {
    pub principals: Principals,
    pub grants: Grants,
    pub authz: Authorizer,
    pub resources: Arc<Resources>,
    pub version: PolicyVersion,
    /// When the earliest active grant expires (the enforcer is rebuilt then).
    pub next_expiry: Option<DateTime<Utc>>,
    /// Each principal's policy as this state decides it, worked out (through casbin) on its
    /// first call; the state is replaced whole on any change, and the cache is not used
    /// from `next_expiry` on.
    pub(crate) policies: std::sync::RwLock<std::collections::HashMap<String, CallerPolicy>>,
}

/// The journals and the current state.
#[derive(Debug)]
pub struct Store {
    principals: Mutex<Journal>,
    grants: Mutex<Journal>,
    state: ArcSwap<AccessState>,
}

async fn build_state(
    principals: Principals,
    grants: Grants,
    resources: Arc<Resources>,
    version: PolicyVersion,
) -> Result<AccessState> {
    let now = Utc::now();
    let roles = principals
        .iter()
        .filter(|p| !p.revoked)
        .map(|p| role_line(&p.id, p.role, &p.department))
        .collect();
    let mut lines = Vec::new();
    let mut next_expiry: Option<DateTime<Utc>> = None;
    for g in grants.iter().filter(|g| g.is_active(now)) {
        let Some(p) = principals.get(&g.request.consumer).filter(|p| !p.revoked) else {
            continue;
        };
        lines.push(grant_line(
            &p.id,
            &p.department,
            &g.request.resource,
            g.request.level,
        ));
        next_expiry = Some(next_expiry.map_or(g.expires_at, |e| e.min(g.expires_at)));
    }
    let authz = Authorizer::build(roles, lines)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(AccessState {
        policies: Default::default(),
        principals,
        grants,
        authz,
        resources,
        version,
        next_expiry,
    })
}

fn parse<T: serde::de::DeserializeOwned>(e: &JournalEntry, journal: &str) -> Result<T> {
    serde_json::from_str(&e.body).map_err(|err| {
        Error::Internal(format!(
            "{journal} journal entry {} ({}) does not parse: {err}",
            e.seq, e.kind
        ))
    })
}

impl Store {
    /// Opens (creating when needed) the journals of the lake and folds them.
    pub async fn open(lake: &LakeLocation, resources: Arc<Resources>) -> Result<Arc<Self>> {
        let principals = Journal::open(lake.exchange("principals"), "principals").await?;
        let grants = Journal::open(lake.exchange("grants"), "grants").await?;
        let state = build_state(
            Principals::default(),
            Grants::default(),
            resources,
            PolicyVersion::default(),
        )
        .await?;
        let store = Arc::new(Self {
            principals: Mutex::new(principals),
            grants: Mutex::new(grants),
            state: ArcSwap::from_pointee(state),
        });
        store.refresh().await?;
        Ok(store)
    }

    /// The state as of now.
    pub fn current(&self) -> Arc<AccessState> {
        self.state.load_full()
    }

    /// Reads what other replicas appended and folds it; rebuilds the enforcer when a
    /// grant has expired. True when the state changed.
    pub async fn refresh(&self) -> Result<bool> {
        let mut p = self.principals.lock().await;
        let mut g = self.grants.lock().await;
        p.refresh().await?;
        g.refresh().await?;
        self.sync(&p, &g).await
    }

    /// Folds the entries the loaded journals hold beyond the state's heads.
    async fn sync(&self, p: &Journal, g: &Journal) -> Result<bool> {
        let old = self.current();
        let new_p = p.entries_after(old.version.principals).await?;
        let new_g = g.entries_after(old.version.grants).await?;
        let expired = old.next_expiry.is_some_and(|e| e <= Utc::now());
        if new_p.is_empty() && new_g.is_empty() && !expired {
            return Ok(false);
        }
        let mut principals = old.principals.clone();
        let mut grants = old.grants.clone();
        let mut version = old.version;
        for e in &new_p {
            let change: PrincipalChange = parse(e, "principals")?;
            if !principals.apply(change, e.at) {
                tracing::warn!(seq = e.seq, kind = %e.kind, "principals journal: a change that does not apply was skipped");
            }
            version.principals = e.seq;
        }
        for e in &new_g {
            let change: GrantChange = parse(e, "grants")?;
            if !grants.apply(change, e.at) {
                tracing::warn!(seq = e.seq, kind = %e.kind, "grants journal: a change that does not apply was skipped");
            }
            version.grants = e.seq;
        }
        let state = build_state(principals, grants, old.resources.clone(), version).await?;
        self.state.store(Arc::new(state));
        Ok(true)
    }

    /// Makes the principal change `make` returns for the state at the journal's head.
    pub async fn change_principals(
        &self,
        actor: &str,
        make: impl Fn(&Principals) -> std::result::Result<PrincipalChange, PrincipalError>,
    ) -> Result<PrincipalChange> {
        loop {
            let mut p = self.principals.lock().await;
            let g = self.grants.lock().await;
            p.refresh().await?;
            self.sync(&p, &g).await?;
            let state = self.current();
            let change = make(&state.principals).map_err(Error::Principal)?;
            let entry = NewEntry {
                at: Utc::now(),
                actor: actor.to_owned(),
                kind: change.kind().to_owned(),
                body: serde_json::to_string(&change).map_err(|e| Error::Internal(e.to_string()))?,
            };
            match p.append(state.version.principals, vec![entry]).await? {
                Appended::Committed { .. } => {
                    self.sync(&p, &g).await?;
                    return Ok(change);
                }
                Appended::Conflict => continue,
            }
        }
    }

    /// Makes `change` if the principals at the journal's head allow it.
    pub async fn change_principal(&self, actor: &str, change: PrincipalChange) -> Result<()> {
        self.change_principals(actor, |ps| ps.check(&change).map(|()| change.clone()))
            .await
            .map(|_| ())
    }

    /// Makes the change `make` builds around the hash of a new API key; returns the key
    /// (shown once: only its hash is kept).
    async fn with_new_key(
        &self,
        actor: &str,
        make: impl FnOnce(String) -> PrincipalChange,
    ) -> Result<String> {
        let key = crate::secret::new_api_key();
        self.change_principal(actor, make(crate::secret::key_hash(&key)))
            .await?;
        Ok(key)
    }

    /// Adds a principal with a new API key; returns the key.
    pub async fn add_principal(
        &self,
        actor: &str,
        id: crate::model::PrincipalId,
        department: crate::model::Department,
        role: crate::model::Role,
        description: &str,
    ) -> Result<String> {
        self.with_new_key(actor, |key_hash| PrincipalChange::Added {
            id,
            department,
            role,
            key_hash,
            description: description.to_owned(),
        })
        .await
    }

    /// Gives principal `id` a new API key; returns it. The previous key keeps working for
    /// `grace` (zero: it stops with this change).
    pub async fn rotate_key(
        &self,
        actor: &str,
        id: crate::model::PrincipalId,
        grace: chrono::Duration,
    ) -> Result<String> {
        self.with_new_key(actor, |key_hash| PrincipalChange::KeyRotated {
            id,
            key_hash,
            previous_until: Utc::now() + grace,
        })
        .await
    }

    /// Makes the grant change `make` returns for the state at the journal's head (checked
    /// again after every lost race).
    pub async fn change_grant(
        &self,
        actor: &str,
        make: impl Fn(&AccessState, DateTime<Utc>) -> std::result::Result<GrantChange, GrantError>,
    ) -> Result<GrantChange> {
        loop {
            let p = self.principals.lock().await;
            let mut g = self.grants.lock().await;
            g.refresh().await?;
            self.sync(&p, &g).await?;
            let state = self.current();
            let now = Utc::now();
            let change = make(&state, now).map_err(Error::Grant)?;
            let entry = NewEntry {
                at: now,
                actor: actor.to_owned(),
                kind: change.kind().to_owned(),
                body: serde_json::to_string(&change).map_err(|e| Error::Internal(e.to_string()))?,
            };
            match g.append(state.version.grants, vec![entry]).await? {
                Appended::Committed { .. } => {
                    self.sync(&p, &g).await?;
                    return Ok(change);
                }
                Appended::Conflict => continue,
            }
        }
    }
}
