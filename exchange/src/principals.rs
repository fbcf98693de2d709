//! Principals: who may call the exchange, in which department, in which role, with which key.
//!
//! Data flow: `gdx principal add|rotate-key|revoke` → a [`PrincipalChange`] in the
//! `principals` journal → every replica folds the journal into [`Principals`] (by key hash,
//! by id) → each call's bearer key is hashed and looked up; a revoked principal's keys are
//! unknown from the next state on, a rotated-out key once its grace period ends.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Department, PrincipalId, Role};

/// A change to the principals, as the journal stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum PrincipalChange {
    Added {
        id: PrincipalId,
        department: Department,
        role: Role,
        /// SHA-256 of the API key; the key itself is never stored.
        key_hash: String,
        #[serde(default)]
        description: String,
    },
    Revoked {
        id: PrincipalId,
    },
    /// A new key for the principal; the previous key keeps working until `previous_until`
    /// (the moment of the change when there is no grace period), so a department system can
    /// switch without an outage.
    KeyRotated {
        id: PrincipalId,
        key_hash: String,
        previous_until: DateTime<Utc>,
    },
}

impl PrincipalChange {
    pub fn kind(&self) -> &'static str {
        match self {
            PrincipalChange::Added { .. } => "principal_added",
            PrincipalChange::Revoked { .. } => "principal_revoked",
            PrincipalChange::KeyRotated { .. } => "principal_key_rotated",
        }
    }
}

/// One principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub id: PrincipalId,
    pub department: Department,
    pub role: Role,
    #[serde(skip)]
    pub key_hash: String,
    pub description: String,
    pub added_at: DateTime<Utc>,
    /// When its key was last replaced.
    pub key_rotated_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// Every principal, folded from the journal.
#[derive(Debug, Clone, Default)]
pub struct Principals {
    by_id: BTreeMap<PrincipalId, Principal>,
    /// Key hash → its principal, and until when the key counts (a rotated-out key).
    by_key: HashMap<String, (PrincipalId, Option<DateTime<Utc>>)>,
}

/// Why a principal change cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("principal {0} exists already")]
    Exists(PrincipalId),
    #[error("no principal {0}")]
    Unknown(PrincipalId),
    #[error("principal {0} is revoked already")]
    Revoked(PrincipalId),
}

impl Principals {
    /// Whether `change` can be applied now.
    pub fn check(&self, change: &PrincipalChange) -> Result<(), PrincipalError> {
        match change {
            PrincipalChange::Added { id, .. } => match self.by_id.get(id) {
                Some(_) => Err(PrincipalError::Exists(id.clone())),
                None => Ok(()),
            },
            PrincipalChange::Revoked { id } | PrincipalChange::KeyRotated { id, .. } => {
                match self.by_id.get(id) {
                    None => Err(PrincipalError::Unknown(id.clone())),
                    Some(p) if p.revoked => Err(PrincipalError::Revoked(id.clone())),
                    Some(_) => Ok(()),
                }
            }
        }
    }

    /// Applies a journal entry's change; a change that does not apply (two replicas raced,
    /// which compare-and-swap prevents) is skipped, so every replica folds alike.
    pub fn apply(&mut self, change: PrincipalChange, at: DateTime<Utc>) -> bool {
        if self.check(&change).is_err() {
            return false;
        }
        match change {
            PrincipalChange::Added {
                id,
                department,
                role,
                key_hash,
                description,
            } => {
                self.by_key.insert(key_hash.clone(), (id.clone(), None));
                self.by_id.insert(
                    id.clone(),
                    Principal {
                        id,
                        department,
                        role,
                        key_hash,
                        description,
                        added_at: at,
                        key_rotated_at: None,
                        revoked: false,
                    },
                );
            }
            PrincipalChange::Revoked { id } => {
                if let Some(p) = self.by_id.get_mut(&id) {
                    p.revoked = true;
                    // Every key of the principal, a rotated-out one in its grace too.
                    self.by_key.retain(|_, (holder, _)| *holder != id);
                }
            }
            PrincipalChange::KeyRotated {
                id,
                key_hash,
                previous_until,
            } => {
                if let Some(p) = self.by_id.get_mut(&id) {
                    let old = std::mem::replace(&mut p.key_hash, key_hash.clone());
                    p.key_rotated_at = Some(at);
                    // Keys rotated out earlier are gone now; the last one has its grace.
                    self.by_key
                        .retain(|_, (holder, until)| *holder != id || until.is_none());
                    self.by_key.insert(old, (id.clone(), Some(previous_until)));
                    self.by_key.insert(key_hash, (id, None));
                }
            }
        }
        true
    }

    /// The active principal holding the key with this hash at `now` (a rotated-out key
    /// counts until the end of its grace period).
    pub fn by_key_hash(&self, hash: &str, now: DateTime<Utc>) -> Option<&Principal> {
        self.by_key
            .get(hash)
            .filter(|(_, until)| until.is_none_or(|u| now < u))
            .and_then(|(id, _)| self.by_id.get(id))
            .filter(|p| !p.revoked)
    }

    /// Why a key with this hash is refused at `now` (for the audit; the caller is told only
    /// that the key is not valid).
    pub fn refusal(&self, hash: &str, now: DateTime<Utc>) -> &'static str {
        let revoked = |id: &PrincipalId| self.by_id.get(id).is_some_and(|p| p.revoked);
        match self.by_key.get(hash) {
            Some((id, _)) if revoked(id) => "a revoked principal's key",
            Some((_, Some(until))) if now >= *until => "a rotated-out key past its grace period",
            Some(_) => "a valid key",
            None if self.by_id.values().any(|p| p.revoked && p.key_hash == hash) => {
                "a revoked principal's key"
            }
            None => "an unknown key",
        }
    }

    pub fn get(&self, id: &PrincipalId) -> Option<&Principal> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Principal> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_key_is_unknown_and_ids_are_unique() {
        let mut ps = Principals::default();
        let id = PrincipalId::new("mca-app").unwrap();
        let add = PrincipalChange::Added {
            id: id.clone(),
            department: Department::new("mca").unwrap(),
            role: Role::App,
            key_hash: "h1".into(),
            description: String::new(),
        };
        let now = Utc::now();
        assert!(ps.apply(add.clone(), now));
        assert_eq!(ps.check(&add), Err(PrincipalError::Exists(id.clone())));
        assert_eq!(ps.by_key_hash("h1", now).map(|p| &p.id), Some(&id));
        assert!(ps.apply(PrincipalChange::Revoked { id: id.clone() }, now));
        assert!(ps.by_key_hash("h1", now).is_none());
        assert!(!ps.apply(PrincipalChange::Revoked { id }, now));
    }

    #[test]
    fn a_rotated_out_key_works_until_its_grace_ends_and_never_after_a_revocation() {
        let mut ps = Principals::default();
        let id = PrincipalId::new("ps-sys").unwrap();
        let t0 = Utc::now();
        let minute = chrono::Duration::minutes(1);
        ps.apply(
            PrincipalChange::Added {
                id: id.clone(),
                department: Department::new("ps").unwrap(),
                role: Role::DepartmentSystem,
                key_hash: "h1".into(),
                description: String::new(),
            },
            t0,
        );
        let rotate = |hash: &str, until| PrincipalChange::KeyRotated {
            id: id.clone(),
            key_hash: hash.into(),
            previous_until: until,
        };
        assert!(ps.apply(rotate("h2", t0 + minute), t0));
        assert!(ps.by_key_hash("h1", t0).is_some(), "in its grace");
        assert!(ps.by_key_hash("h1", t0 + minute).is_none(), "grace over");
        assert!(ps.by_key_hash("h2", t0 + minute * 60).is_some());
        // A second rotation ends the first key's grace at once; the second key gets its own.
        assert!(ps.apply(rotate("h3", t0 + minute * 10), t0));
        assert!(ps.by_key_hash("h1", t0).is_none());
        assert!(ps.by_key_hash("h2", t0).is_some());
        assert!(ps.by_key_hash("h3", t0).is_some());
        // No grace: the old key stops with the change.
        assert!(ps.apply(rotate("h4", t0), t0));
        assert!(ps.by_key_hash("h3", t0).is_none());
        assert!(ps.by_key_hash("h2", t0).is_none());
        // A revocation ends every key, graced or not.
        assert!(ps.apply(rotate("h5", t0 + minute), t0));
        assert!(ps.apply(PrincipalChange::Revoked { id: id.clone() }, t0));
        for h in ["h4", "h5"] {
            assert!(ps.by_key_hash(h, t0).is_none(), "{h}");
        }
        assert_eq!(
            ps.check(&rotate("h6", t0)),
            Err(PrincipalError::Revoked(id))
        );
    }
}
