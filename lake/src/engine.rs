//! The DataFusion sessions the lake computes with.
//!
//! Data flow: a memory budget → a runtime whose memory pool is shared fairly among the
//! operators of one query and spills sorts, when the budget is reached, into the process's
//! own owner-only directory ([`use_spill_dir`]; spilled rows are lake rows in clear text, so
//! never the shared OS temp dir once the binary has set one) →
//! a [`SessionContext`] for folds, profile builds and analyst SQL. Folding 10M keys is one
//! large sort; with a pool it spills instead of growing without bound.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{Expr, cast, ident, lit};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use deltalake::delta_datafusion::planner::DeltaPlanner;

use crate::{Error, Result};

/// Default memory budget of one lake query (fold, profile build, analyst SQL).
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

pub(crate) fn df_err(table: &str, e: datafusion::error::DataFusionError) -> Error {
    Error::Query {
        table: table.to_owned(),
        source: Box::new(e),
    }
}

static SPILL_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Makes every later session spill into `<dir>/<pid>`: created owner-only (0700, `dir`
/// too), after removing what processes no longer running left in `dir`. Called once by the
/// binary with a directory under the data dir; returns the process's directory.
pub fn use_spill_dir(dir: &Path) -> std::io::Result<PathBuf> {
    if let Some(set) = SPILL_DIR.get() {
        return Ok(set.clone());
    }
    owner_only_dir(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let running = Path::new("/proc").join(pid.to_string()).exists();
        if !running || pid == std::process::id() {
            match std::fs::remove_dir_all(entry.path()) {
                // Another process starting beside this one removed it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                done => done?,
            }
        }
    }
    let mine = dir.join(std::process::id().to_string());
    owner_only_dir(&mine)?;
    Ok(SPILL_DIR.get_or_init(|| mine).clone())
}

fn owner_only_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A session with a fair, spilling memory pool of `memory_limit` bytes.
pub fn session(memory_limit: usize) -> Result<SessionContext> {
    let mut runtime =
        RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)));
    if let Some(dir) = SPILL_DIR.get() {
        runtime = runtime.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
        );
    }
    let runtime = runtime.build_arc().map_err(|e| df_err("<session>", e))?;
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("gdx", "public")
        .with_create_default_catalog_and_schema(true)
        // As delta-rs configures its own sessions: hash-join IN-list pushdown can panic on
        // dictionary-encoded (partition) keys.
        .set_usize("datafusion.optimizer.hash_join_inlist_pushdown_max_size", 0)
        .set_usize(
            "datafusion.optimizer.hash_join_inlist_pushdown_max_distinct_values",
            0,
        )
        // Build narrow per-key sides (profile facts, up to a few million keys) once instead
        // of hash-repartitioning the wide side of the join: copying wide rows costs more.
        .set_usize(
            "datafusion.optimizer.hash_join_single_partition_threshold",
            256 << 20,
        )
        .set_usize(
            "datafusion.optimizer.hash_join_single_partition_threshold_rows",
            4_000_000,
        );
    // The Delta planner executes delta-rs's own plan nodes (writes, metrics).
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_query_planner(DeltaPlanner::new())
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// Projects `df` onto `target` (then `extra`): columns it has are cast where their type
/// differs, columns it lacks (a field the catalog added after these rows were written) become
/// typed nulls.
pub(crate) fn align(
    df: DataFrame,
    target: &Schema,
    extra: Vec<Expr>,
    table: &str,
) -> Result<DataFrame> {
    let have = df.schema().clone();
    let exprs = target
        .fields()
        .iter()
        .map(|f| -> Result<Expr> {
            let name = f.name();
            Ok(match have.index_of_column_by_name(None, name) {
                Some(i) => {
                    let e = ident(name);
                    let ty = have.field(i).data_type();
                    if ty == f.data_type() {
                        e
                    } else {
                        cast(e, f.data_type().clone()).alias(name)
                    }
                }
                None => {
                    let null =
                        ScalarValue::try_from(f.data_type()).map_err(|e| df_err(table, e))?;
                    lit(null).alias(name)
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    df.select(exprs.into_iter().chain(extra))
        .map_err(|e| df_err(table, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_go_to_an_owner_only_directory_of_this_process_and_stale_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill");
        // A directory left by a process that no longer runs (pid beyond the kernel's limit).
        std::fs::create_dir_all(spill.join("4194999")).unwrap();
        std::fs::write(spill.join("4194999/rows.arrow"), b"clear text").unwrap();
        let mine = use_spill_dir(&spill).unwrap();
        assert_eq!(mine, spill.join(std::process::id().to_string()));
        assert!(!spill.join("4194999").exists());
        use std::os::unix::fs::PermissionsExt;
        for d in [&spill, &mine] {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        // A session's sort spills there.
        let ctx = session(1 << 20).unwrap();
        let disk = ctx.runtime_env().disk_manager.clone();
        let file = disk.create_tmp_file("test").unwrap();
        let path = file.path().expect("a file on disk").to_owned();
        assert!(path.starts_with(&mine), "{}", path.display());
    }
}
