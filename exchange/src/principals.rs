//! Principals: who may call the exchange, in which department, in which role, with which key.
//!
//! Data flow: `gdx principal add|revoke` (or the admin API) → a [`PrincipalChange`] in the
//! `principals` journal → every replica folds the journal into [`Principals`] (by key hash,
//! by id) → each call's bearer key is hashed and looked up; a revoked principal's key is
//! unknown from the next state on.

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
}

impl PrincipalChange {
    pub fn kind(&self) -> &'static str {
        match self {
            PrincipalChange::Added { .. } => "principal_added",
            PrincipalChange::Revoked { .. } => "principal_revoked",
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
    pub revoked: bool,
}

/// Every principal, folded from the journal.
#[derive(Debug, Clone, Default)]
pub struct Principals {
    by_id: BTreeMap<PrincipalId, Principal>,
    by_key: HashMap<String, PrincipalId>,
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
            PrincipalChange::Revoked { id } => match self.by_id.get(id) {
                None => Err(PrincipalError::Unknown(id.clone())),
                Some(p) if p.revoked => Err(PrincipalError::Revoked(id.clone())),
                Some(_) => Ok(()),
            },
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
                self.by_key.insert(key_hash.clone(), id.clone());
                self.by_id.insert(
                    id.clone(),
                    Principal {
                        id,
                        department,
                        role,
                        key_hash,
                        description,
                        added_at: at,
                        revoked: false,
                    },
                );
            }
            PrincipalChange::Revoked { id } => {
                if let Some(p) = self.by_id.get_mut(&id) {
                    p.revoked = true;
                    self.by_key.remove(&p.key_hash);
                }
            }
        }
        true
    }

    /// The active principal holding the key with this hash.
    pub fn by_key_hash(&self, hash: &str) -> Option<&Principal> {
        self.by_key
            .get(hash)
            .and_then(|id| self.by_id.get(id))
            .filter(|p| !p.revoked)
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
        assert!(ps.apply(add.clone(), Utc::now()));
        assert_eq!(ps.check(&add), Err(PrincipalError::Exists(id.clone())));
        assert_eq!(ps.by_key_hash("h1").map(|p| &p.id), Some(&id));
        assert!(ps.apply(PrincipalChange::Revoked { id: id.clone() }, Utc::now()));
        assert!(ps.by_key_hash("h1").is_none());
        assert!(!ps.apply(PrincipalChange::Revoked { id }, Utc::now()));
    }
}
