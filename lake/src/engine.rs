//! The DataFusion sessions the lake computes with.
//!
//! Data flow: a memory budget → a runtime whose memory pool is shared fairly among the
//! operators of one query and spills sorts to the OS temp dir when the budget is reached →
//! a [`SessionContext`] for folds, profile builds and analyst SQL. Folding 10M keys is one
//! large sort; with a pool it spills instead of growing without bound.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
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

/// A session with a fair, spilling memory pool of `memory_limit` bytes.
pub fn session(memory_limit: usize) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
        .build_arc()
        .map_err(|e| df_err("<session>", e))?;
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
