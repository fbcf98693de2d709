//! `gdx lake fold|optimize|vacuum`: lake upkeep on demand.
//!
//! Data flow: the catalog's datasets → [`gdx_lake::fold`] one dataset at a time (events since
//! the last fold → `current`/`deleted`) → one line per dataset.

use std::process::ExitCode;

use anyhow::Context;
use gdx_catalog::Dataset;
use gdx_lake::fold::{FoldOptions, FoldReport, fold_all};
use gdx_lake::maintenance;

use super::ingest::runtime;
use super::load_catalog;
use crate::cli::{LakeArgs, LakeCommand};

pub(crate) fn run(cmd: LakeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LakeCommand::Fold {
            dataset,
            rewrite,
            lake,
        } => fold(dataset.as_deref(), rewrite, &lake),
        LakeCommand::Optimize { target_mb, lake } => {
            upkeep(&lake, Upkeep::Optimize(target_mb << 20))
        }
        LakeCommand::Vacuum {
            retention_hours,
            lake,
        } => upkeep(
            &lake,
            Upkeep::Vacuum(chrono::Duration::hours(retention_hours.into())),
        ),
    }
}

enum Upkeep {
    Optimize(u64),
    Vacuum(chrono::Duration),
}

fn upkeep(args: &LakeArgs, what: Upkeep) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(&args.source)?;
    let lake = super::open_lake(&args.lake)?;
    let rt = runtime()?;
    let started = std::time::Instant::now();
    if let Upkeep::Optimize(_) = what {
        // Fold first: compaction hides which event files are new.
        rt.block_on(fold_all(&lake, catalog.datasets(), &fold_options(args)))?;
    }
    println!(
        "{:<48} {:>7} {:>8} {:>6} {:>8}",
        "table", "files", "removed", "added", "deleted"
    );
    for table in maintenance::lake_tables(&lake, &catalog) {
        let report = match what {
            Upkeep::Optimize(target) => rt.block_on(maintenance::optimize(&table, target))?,
            Upkeep::Vacuum(retention) => rt.block_on(maintenance::vacuum(&table, retention))?,
        };
        if let Some(r) = report {
            println!(
                "{:<48} {:>7} {:>8} {:>6} {:>8}",
                r.table, r.files_before, r.files_removed, r.files_added, r.files_deleted
            );
        }
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The datasets a command covers: one by id, or all of the catalog.
pub(crate) fn selected<'a>(
    catalog: &'a gdx_catalog::Catalog,
    dataset: Option<&str>,
) -> anyhow::Result<Vec<&'a Dataset>> {
    Ok(match dataset {
        Some(id) => vec![catalog.get(id).with_context(|| {
            format!(
                "no dataset {id:?} in the catalog; close: {}",
                catalog.close_ids(id).join(", ")
            )
        })?],
        None => catalog.datasets().collect(),
    })
}

pub(crate) fn fold_options(args: &LakeArgs) -> FoldOptions {
    FoldOptions {
        memory_limit: args.memory_mb.max(64) << 20,
        ..FoldOptions::default()
    }
}

fn fold(dataset: Option<&str>, rewrite: bool, args: &LakeArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(&args.source)?;
    let lake = super::open_lake(&args.lake)?;
    let datasets = selected(&catalog, dataset)?;
    let rt = runtime()?;
    let started = std::time::Instant::now();
    let opts = FoldOptions {
        merge: !rewrite,
        ..fold_options(args)
    };
    let reports = rt.block_on(fold_all(&lake, datasets, &opts))?;
    print_folds(&reports);
    println!("folded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_folds(reports: &[FoldReport]) {
    println!(
        "{:<36} {:>8} {:>8} {:>10} {:>8}  note",
        "dataset", "events v", "files", "current", "deleted"
    );
    for r in reports {
        let note = match (r.events_version, r.up_to_date(), r.full) {
            (None, _, _) => "no events yet".to_owned(),
            (_, true, _) => "up to date".to_owned(),
            (_, _, true) => "full fold".to_owned(),
            _ if r.merged => format!(
                "merged: {} rows written, {} superseded",
                r.written, r.superseded
            ),
            _ => "incremental, rewritten".to_owned(),
        };
        println!(
            "{:<36} {:>8} {:>8} {:>10} {:>8}  {note}",
            r.dataset,
            r.events_version
                .map(|v| v.to_string())
                .unwrap_or("-".into()),
            r.files_read,
            r.rows,
            r.deleted
        );
    }
}
