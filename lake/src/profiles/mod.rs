//! Citizen and enterprise profiles, built with SQL from the folded state.
//!
//! Data flow: a [`LakeSession`] (current tables, or the state as of a date rebuilt from
//! events) → `citizen.sql` / `enterprise.sql` planned there, with the versions of every
//! input table attached as `_inputs` → overwrite of `<lake>/profiles/<name>/` in one Delta
//! commit whose metadata records the same input versions and the as-of day.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use deltalake::kernel::transaction::CommitProperties;
use gdx_catalog::Catalog;

use crate::fold::{open, stats_rows, write_sql};
use crate::sql::{AsOf, LakeSession, SessionOptions};
use crate::{LakeLocation, Result};

/// The profiles the lake builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Citizen,
    Enterprise,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Citizen, Profile::Enterprise];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Citizen => "citizen",
            Profile::Enterprise => "enterprise",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Profile::Citizen => include_str!("citizen.sql"),
            Profile::Enterprise => include_str!("enterprise.sql"),
        }
    }
}

/// The SQL of a profile as of `day`, over a session's table names.
pub fn sql(p: Profile, day: NaiveDate) -> String {
    p.template()
        .replace("{as_of}", &format!("DATE '{}'", day.format("%Y-%m-%d")))
}

/// What one profile build wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub profile: &'static str,
    pub rows: u64,
    pub version: Option<u64>,
    pub as_of: NaiveDate,
}

/// Options of a profile build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Build from the state as of this time (rebuilt from events) instead of `current`.
    pub as_of: Option<AsOf>,
    /// Memory budget in bytes (0: the default).
    pub memory_limit: usize,
}

/// The versions of the tables a build reads: `current` tables, or `events` tables when
/// building as of a date.
async fn input_versions(
    lake: &LakeLocation,
    catalog: &Catalog,
    as_of: Option<AsOf>,
) -> Result<BTreeMap<String, Option<u64>>> {
    let mut out = BTreeMap::new();
    for ds in catalog.datasets() {
        let (url, kind) = match as_of {
            None => (lake.current(&ds.id), "current"),
            Some(_) => (lake.events(&ds.id), "events"),
        };
        let v = open(&url).await?.and_then(|t| t.version());
        out.insert(format!("{}/{kind}", ds.id), v);
    }
    Ok(out)
}

/// Builds every profile and writes each as a new version of its table.
pub async fn build(
    lake: &LakeLocation,
    catalog: &Catalog,
    opts: &BuildOptions,
) -> Result<Vec<BuildReport>> {
    let mut session_opts = SessionOptions {
        as_of: opts.as_of,
        max_rows: usize::MAX,
        ..SessionOptions::default()
    };
    if opts.memory_limit > 0 {
        session_opts.memory_limit = opts.memory_limit;
    }
    let session = LakeSession::open(lake, catalog, &session_opts).await?;
    let day = opts.as_of.map(|a| a.date()).unwrap_or_else(|| {
        chrono::Utc::now()
            .with_timezone(&crate::sql::time_travel::district_offset())
            .date_naive()
    });
    let inputs = input_versions(lake, catalog, opts.as_of).await?;
    let inputs_json = serde_json::to_string(&inputs).unwrap_or_default();
    let mut out = Vec::new();
    for p in Profile::ALL {
        let query = format!(
            "select *, '{inputs_json}' as _inputs, DATE '{day}' as _as_of from ({})",
            sql(p, day)
        );
        let url = lake.profile(p.name());
        let props = CommitProperties::default().with_metadata([
            ("gdx.inputs".to_owned(), serde_json::json!(inputs)),
            ("gdx.as_of".to_owned(), serde_json::json!(day.to_string())),
        ]);
        let existing = open(&url).await?;
        let name = format!("profiles.{}", p.name());
        let table = write_sql(session.context(), &query, existing, &url, props, &name).await?;
        out.push(BuildReport {
            profile: p.name(),
            rows: stats_rows(&table),
            version: table.version(),
            as_of: day,
        });
    }
    Ok(out)
}
