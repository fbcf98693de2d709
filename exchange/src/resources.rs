//! What can be shared: every dataset of the catalog, the two profiles and the benefits'
//! 应享未享 findings (`scenarios.<benefit>_gaps`, owned by the benefit's department), with
//! the facts a grant decision needs (owner, level, sharing type, fields with their levels).
//!
//! Data flow: the catalog (datasets, fields, grading, sharing type) and the profiles'
//! declared grades → [`Resources`] → grant requests are checked against the resource they
//! name; the rows and profile endpoints find the lake table a resource is read from.

use std::collections::BTreeMap;

use gdx_catalog::{Catalog, Level, SharingType};
use gdx_lake::entitlements::{self, Benefit};
use gdx_lake::profiles::{Profile, grades};

use crate::model::DATA_CENTRE;

/// One field of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceField {
    pub name: String,
    pub level: Level,
    pub personal: bool,
}

/// One shareable resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `<dept>.<dataset>` or `profiles.citizen` / `profiles.enterprise`: also the lake table
    /// its rows are read from.
    pub name: String,
    /// The department that owns it and decides requests for it.
    pub owner: String,
    /// The highest level of its fields (就高从严).
    pub level: Level,
    /// The catalog's sharing type; profiles are conditional (the data centre decides).
    pub sharing: SharingType,
    pub fields: Vec<ResourceField>,
    /// The field naming the person or enterprise a row is about.
    pub subject: Option<String>,
    /// True for a profile (one row per person or enterprise).
    pub profile: bool,
}

impl Resource {
    pub fn field(&self, name: &str) -> Option<&ResourceField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Every shareable resource, by name.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    by_name: BTreeMap<String, Resource>,
}

impl Resources {
    pub fn from_catalog(catalog: &Catalog) -> Self {
        let mut by_name = BTreeMap::new();
        for ds in catalog.datasets() {
            let fields: Vec<ResourceField> = ds
                .fields
                .iter()
                .map(|f| ResourceField {
                    name: f.name.clone(),
                    level: f.level_or_max(),
                    personal: f.pii.is_some(),
                })
                .collect();
            let subject = ds
                .entity(gdx_catalog::EntityKind::Resident)
                .or_else(|| ds.entity(gdx_catalog::EntityKind::Enterprise))
                .map(|e| e.field.clone());
            by_name.insert(
                ds.id.as_str().to_owned(),
                Resource {
                    name: ds.id.as_str().to_owned(),
                    owner: ds.id.department().to_owned(),
                    level: ds.level(),
                    sharing: ds.sharing_type().unwrap_or(SharingType::Conditional),
                    fields,
                    subject,
                    profile: false,
                },
            );
        }
        for p in Profile::ALL {
            let fields: Vec<ResourceField> = grades::columns(p)
                .map(|c| {
                    let g = grades::grade(catalog, p, c);
                    ResourceField {
                        name: c.to_owned(),
                        level: g.as_ref().map_or(Level::CORE, |g| g.level),
                        personal: g.as_ref().is_some_and(|g| g.pii.is_some()),
                    }
                })
                .collect();
            let level = fields.iter().map(|f| f.level).max().unwrap_or(Level::CORE);
            let name = format!("profiles.{}", p.name());
            by_name.insert(
                name.clone(),
                Resource {
                    name,
                    owner: DATA_CENTRE.to_owned(),
                    level,
                    sharing: SharingType::Conditional,
                    fields,
                    subject: Some(grades::subject(p).to_owned()),
                    profile: true,
                },
            );
        }
        for b in Benefit::ALL {
            let fields: Vec<ResourceField> = entitlements::COLUMNS
                .iter()
                .map(|c| {
                    let g = entitlements::grade(c);
                    ResourceField {
                        name: (*c).to_owned(),
                        level: g.level,
                        personal: g.pii.is_some(),
                    }
                })
                .collect();
            let level = fields.iter().map(|f| f.level).max().unwrap_or(Level::CORE);
            by_name.insert(
                b.table(),
                Resource {
                    name: b.table(),
                    owner: b.department().to_owned(),
                    level,
                    sharing: SharingType::Conditional,
                    fields,
                    subject: Some("resident_id".to_owned()),
                    profile: false,
                },
            );
        }
        Self { by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Resource> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.by_name.values()
    }

    /// The departments that own something.
    pub fn departments(&self) -> Vec<String> {
        let mut d: Vec<String> = self.by_name.values().map(|r| r.owner.clone()).collect();
        d.sort();
        d.dedup();
        d
    }
}
