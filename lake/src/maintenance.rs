//! Keeping the lake's tables healthy: compaction, checkpoints, vacuum.
//!
//! Data flow: every Delta table of the lake ([`lake_tables`], from the registry's
//! inventory: events, current, deleted per dataset, the profiles, the dead letters) → [`optimize`] rewrites small files into files
//! near the target size (a `dataChange: false` commit: readers and the fold see no new
//! data) and writes a checkpoint so readers replay a short log → [`vacuum`] deletes files
//! no version newer than the retention still references. The retention is the promised
//! time-travel window for `table_at`; state as of a past date comes from `events`, whose
//! data is never removed, only rewritten.
//!
//! Fold before compacting `events`: a fold that finds the files added since its last run
//! compacted away falls back to reading every event (correct, but slower).

use std::num::NonZeroU64;

use gdx_catalog::Catalog;
use url::Url;

use crate::table::{ColumnLayout, delta_err, keep_personal_stats_out, open};
use crate::{LakeLocation, Result};

/// Default target size of compacted files.
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 128 << 20;

/// Default retention of removed files: a week of `table_at` time travel.
pub const DEFAULT_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// One table of the lake, as maintenance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeTable {
    /// `<dataset id>/<kind>`, `profiles/<name>` or `_system/dead_letters`.
    pub name: String,
    pub url: Url,
    /// How its columns are laid out; above all, which hold personal data, whose statistics
    /// compaction must not log.
    pub layout: ColumnLayout,
}

/// Every Delta table of the lake, as the registry's inventory names them.
pub fn lake_tables(lake: &LakeLocation, catalog: &Catalog) -> Vec<LakeTable> {
    crate::registry::inventory(lake, catalog)
        .into_iter()
        .filter_map(|spec| {
            let name = spec.path_name();
            Some(LakeTable {
                name,
                url: spec.url?,
                layout: spec.layout,
            })
        })
        .collect()
}

/// What maintenance did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUpkeep {
    pub table: String,
    pub files_before: usize,
    pub files_removed: u64,
    pub files_added: u64,
    pub files_deleted: usize,
}

fn file_count(t: &deltalake::DeltaTable) -> usize {
    t.snapshot()
        .map(|s| s.log_data().iter().count())
        .unwrap_or(0)
}

/// Compacts small files of `table` and writes a checkpoint; `None` when there is no table.
/// A table whose properties would let compaction log statistics of its personal columns
/// (made by an older gdx) is set right first.
pub async fn optimize(table: &LakeTable, target_size: u64) -> Result<Option<TableUpkeep>> {
    let LakeTable { name, url, layout } = table;
    let Some(table) = open(url).await? else {
        return Ok(None);
    };
    let table = keep_personal_stats_out(table, url, layout).await?;
    let files_before = file_count(&table);
    let mut report = TableUpkeep {
        table: name.to_owned(),
        files_before,
        ..TableUpkeep::default()
    };
    if files_before < 2 {
        return Ok(Some(report));
    }
    let target = NonZeroU64::new(target_size.max(1 << 20)).expect("non-zero");
    let (table, metrics) = table
        .optimize()
        .with_target_size(target)
        .await
        .map_err(|e| delta_err(url, e))?;
    report.files_removed = metrics.num_files_removed;
    report.files_added = metrics.num_files_added;
    if metrics.num_files_removed > 0 {
        deltalake::checkpoints::create_checkpoint(&table, None)
            .await
            .map_err(|e| delta_err(url, e))?;
    }
    Ok(Some(report))
}

/// Deletes files that no version within `retention` references.
pub async fn vacuum(table: &LakeTable, retention: chrono::Duration) -> Result<Option<TableUpkeep>> {
    let LakeTable { name, url, .. } = table;
    let Some(table) = open(url).await? else {
        return Ok(None);
    };
    let files_before = file_count(&table);
    let (_, metrics) = table
        .vacuum()
        .with_retention_period(retention)
        // Shorter than the table's own default (a week) is allowed: the operator chose it.
        .with_enforce_retention_duration(false)
        .await
        .map_err(|e| delta_err(url, e))?;
    Ok(Some(TableUpkeep {
        table: name.to_owned(),
        files_before,
        files_deleted: metrics.files_deleted.len(),
        ..TableUpkeep::default()
    }))
}
