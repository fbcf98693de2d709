//! Where tables live: one documented layout that outside engines can rely on.
//!
//! ```text
//! <lake>/<dept>/<dataset>/events/     append-only events of a dataset (topic <dept>.<dataset>)
//! <lake>/<dept>/<dataset>/current/    folded current state: the latest upsert per primary key
//! <lake>/<dept>/<dataset>/deleted/    keys whose latest event is a delete (so a late, older
//!                                     upsert cannot bring them back)
//! <lake>/profiles/citizen/            one row per resident ID, joined across departments
//! <lake>/profiles/enterprise/         one row per USCC
//! <lake>/_system/dead_letters/        every record that could not be accepted, with its raw bytes
//! <lake>/_system/exchange/<name>/     the exchange's journals (principals, grants) and audit
//! <lake>/_system/scenarios/<name>/    a scenario's ledger (the elderly allowance's payments)
//! ```
//!
//! `<lake>` is a local directory (the default, `./gdx-data/lake`) or an `s3://bucket/prefix`
//! URL. Topic `ps.household_registration` → `<lake>/ps/household_registration/`.

use gdx_catalog::DatasetId;
use url::Url;

use crate::{Error, Result};

/// The root of a lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeLocation {
    root: Url,
}

/// The kinds of table kept per dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Events,
    Current,
    Deleted,
}

impl TableKind {
    fn dir(self) -> &'static str {
        match self {
            TableKind::Events => "events",
            TableKind::Current => "current",
            TableKind::Deleted => "deleted",
        }
    }
}

impl LakeLocation {
    /// Parses a local path (made absolute) or an `s3://`, `file://` or `memory://` URL.
    pub fn parse(s: &str) -> Result<Self> {
        let err = |why: String| Error::Location {
            location: s.to_owned(),
            why,
        };
        let mut root = if s.contains("://") {
            Url::parse(s).map_err(|e| err(e.to_string()))?
        } else {
            let path = std::path::absolute(s).map_err(|e| err(e.to_string()))?;
            Url::from_directory_path(&path)
                .map_err(|()| err("not an absolute directory path".into()))?
        };
        match root.scheme() {
            "file" | "s3" | "s3a" | "memory" => {}
            other => {
                return Err(err(format!(
                    "unsupported scheme {other:?} (use a local path or s3://bucket/prefix)"
                )));
            }
        }
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Whether the lake is a local directory.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        (self.root.scheme() == "file")
            .then(|| self.root.to_file_path().ok())
            .flatten()
    }

    fn join(&self, rel: &str) -> Url {
        self.root
            .join(rel)
            .expect("relative path of lowercase snake-case parts")
    }

    /// The table of one kind for a dataset.
    pub fn table(&self, dataset: &DatasetId, kind: TableKind) -> Url {
        self.join(&format!(
            "{}/{}/{}/",
            dataset.department(),
            dataset.name(),
            kind.dir()
        ))
    }

    pub fn events(&self, dataset: &DatasetId) -> Url {
        self.table(dataset, TableKind::Events)
    }

    pub fn current(&self, dataset: &DatasetId) -> Url {
        self.table(dataset, TableKind::Current)
    }

    /// A profile table (`citizen`, `enterprise`).
    pub fn profile(&self, name: &str) -> Url {
        self.join(&format!("profiles/{name}/"))
    }

    pub fn dead_letters(&self) -> Url {
        self.join("_system/dead_letters/")
    }

    /// A table of the exchange's own state (`principals`, `grants`, `audit`):
    /// `<lake>/_system/exchange/<name>/`.
    pub fn exchange(&self, name: &str) -> Url {
        self.join(&format!("_system/exchange/{name}/"))
    }
}

impl LakeLocation {
    /// A scenario's ledger: `<lake>/_system/scenarios/<name>/`.
    pub fn scenario(&self, name: &str) -> Url {
        self.join(&format!("_system/scenarios/{name}/"))
    }
}

impl std::fmt::Display for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.root.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let lake = LakeLocation::parse("/data/lake").unwrap();
        let id = DatasetId::new("ps.household_registration").unwrap();
        assert_eq!(
            lake.events(&id).as_str(),
            "file:///data/lake/ps/household_registration/events/"
        );
        assert_eq!(
            lake.table(&id, TableKind::Current).as_str(),
            "file:///data/lake/ps/household_registration/current/"
        );
        assert_eq!(
            lake.dead_letters().as_str(),
            "file:///data/lake/_system/dead_letters/"
        );
        let s3 = LakeLocation::parse("s3://bucket/district/lake").unwrap();
        assert_eq!(
            s3.events(&id).as_str(),
            "s3://bucket/district/lake/ps/household_registration/events/"
        );
        assert!(s3.local_path().is_none());
        assert!(LakeLocation::parse("ftp://x/y").is_err());
        let rel = LakeLocation::parse("gdx-data/lake").unwrap();
        assert!(rel.local_path().unwrap().is_absolute());
    }
}
