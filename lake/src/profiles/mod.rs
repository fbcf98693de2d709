//! Citizen and enterprise profiles, built with SQL from the folded state.
//!
//! Data flow: the registry's `current` tables (or `events`, to rebuild the state as of a
//! date) → the operator's [`LakeSession`] (allow-all) → `citizen.sql` / `enterprise.sql`
//! planned there, with the versions of every
//! input table attached as `_inputs` → overwrite of `<lake>/profiles/<name>/` in one Delta
//! commit whose metadata records the same input versions and the as-of day.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use deltalake::kernel::transaction::CommitProperties;
use gdx_catalog::Catalog;

use crate::fold::write_sql;
use crate::policy::{AllowAll, TableKind};
use crate::registry::TableRegistry;
use crate::sql::{AsOf, LakeSession, SessionOptions};
use crate::table::{open, stats_rows};
use crate::{LakeLocation, Result};

pub mod definition;
pub mod grades;

pub use definition::{Profile, sql};

/// What one profile build wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildReport {
    pub profile: &'static str,
    pub rows: u64,
    pub version: Option<u64>,
    pub as_of: NaiveDate,
    /// Time to plan, run and commit this profile.
    pub seconds: f64,
}

/// Options of a profile build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Build from the state as of this time (rebuilt from events) instead of `current`.
    pub as_of: Option<AsOf>,
    /// Memory budget in bytes (0: the default).
    pub memory_limit: usize,
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
    // The state tables, or the events the state as of a date is rebuilt from.
    let input = if opts.as_of.is_some() {
        TableKind::Events
    } else {
        TableKind::Current
    };
    // And the rewards' ledger (the enterprise profile's rewards received).
    let registry = TableRegistry::open_some(lake, catalog, |t| {
        t.kind == input || matches!(t.contents, crate::registry::Contents::RewardsLedger)
    })
    .await?;
    let session = LakeSession::open(&registry, Arc::new(AllowAll), &session_opts).await?;
    let snapshot = registry.snapshot();
    let day = opts
        .as_of
        .map_or_else(crate::sql::time_travel::district_today, |a| a.date());
    // The versions this session reads: `current` tables, or `events` when as of a date.
    let kind = if opts.as_of.is_some() { "_events" } else { "" };
    let mut inputs: BTreeMap<String, Option<u64>> = catalog
        .datasets()
        .map(|ds| {
            let name = format!("{}.{}{kind}", ds.id.department(), ds.id.name());
            let v = snapshot.version(&name);
            (name, v)
        })
        .collect();
    let ledger = snapshot.version(definition::REWARDS_LEDGER);
    if ledger.is_some() {
        inputs.insert(definition::REWARDS_LEDGER.to_owned(), ledger);
    }
    let inputs_json = serde_json::to_string(&inputs).unwrap_or_default();
    let mut out = Vec::new();
    for p in Profile::ALL {
        let started = std::time::Instant::now();
        let query = format!(
            // One dictionary value for every row: the versions cost nothing per row.
            "select *, arrow_cast('{inputs_json}', 'Dictionary(Int32, Utf8)') as _inputs, \
             DATE '{day}' as _as_of from ({})",
            sql(p, day, ledger.is_some())
        );
        let url = lake.profile(p.name());
        let props = CommitProperties::default().with_metadata([
            ("gdx.inputs".to_owned(), serde_json::json!(inputs)),
            ("gdx.as_of".to_owned(), serde_json::json!(day.to_string())),
        ]);
        let existing = open(&url).await?;
        let personal = crate::schema::profile_personal_columns(catalog, p);
        let name = format!("profiles.{}", p.name());
        let table = write_sql(
            session.context(),
            &query,
            existing,
            &url,
            props,
            &name,
            &personal,
        )
        .await?;
        out.push(BuildReport {
            profile: p.name(),
            rows: stats_rows(&table),
            version: table.version(),
            as_of: day,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(out)
}
