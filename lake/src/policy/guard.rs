//! The second layer of enforcement: an analyzer rule over every reader's plan.
//!
//! Data flow: a planned query (views already inlined, subqueries included) →
//! [`PolicyGuard`] fails it if any table scan reads a provider that is not a
//! [`PolicyTable`] (catalog metadata in `information_schema` and, for the PostgreSQL
//! wire protocol, `pg_catalog` aside: both list only the session's own tables) → for each scan of an
//! aggregate-only table it puts the guard's copy of the table (which carries the row's
//! subject, a column no reader can name) into the plan, carries the subject through
//! filters, projections and aliases up to the first aggregate, refuses the plan if the
//! rows go anywhere else first (a join, a sort, a window, a limit, the result itself) or
//! are aggregated by anything but count, sum, average or variance, and rewrites that
//! aggregate so that groups of fewer than k distinct subjects are dropped. Running the
//! rule twice gives the same plan (the extended query protocol analyses a plan twice).

use std::sync::Arc;

use datafusion::catalog::default_table_source::{provider_as_source, source_as_provider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, plan_err};
use datafusion::functions_aggregate::expr_fn::count_distinct;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, LogicalPlan, Projection, SubqueryAlias, TableScanBuilder, col, lit,
};
use datafusion::optimizer::AnalyzerRule;

use super::ReadMode;
use super::provider::{PolicyTable, SUBJECT_COLUMN};

type DfResult<T> = datafusion::error::Result<T>;

/// The aggregates an aggregate-only reader may use: none of them returns a stored value.
const ALLOWED_AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "mean",
    "stddev",
    "stddev_pop",
    "var",
    "var_pop",
    "var_population",
    "approx_distinct",
    "grouping",
];

/// The per-group count of distinct subjects the guard adds to an aggregate.
const PEOPLE_COLUMN: &str = "__gdx_people";

/// Refuses raw scans; enforces aggregate-only access.
#[derive(Debug, Default)]
pub(crate) struct PolicyGuard;

impl AnalyzerRule for PolicyGuard {
    fn name(&self) -> &str {
        "gdx_policy_guard"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        refuse_raw_scans(&plan)?;
        let plan = plan.transform_up_with_subqueries(aggregate_only)?.data;
        refuse_unaggregated(&plan)?;
        Ok(plan)
    }
}

fn refuse_raw_scans(plan: &LogicalPlan) -> DfResult<()> {
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let wrapped = source_as_provider(&scan.source)
                .map(|p| p.is::<PolicyTable>())
                .unwrap_or(false);
            // Catalog metadata, built from the session's own (visible) tables.
            let metadata = matches!(
                scan.table_name.schema(),
                Some("information_schema" | "pg_catalog")
            );
            if !wrapped && !metadata {
                return plan_err!(
                    "table {} is not read through a policy; the lake refuses the query",
                    scan.table_name
                );
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

/// `__gdx_subject_k<k>`: the subject column of an aggregate-only table read with minimum
/// group size k.
fn subject_name(k: usize) -> String {
    format!("{SUBJECT_COLUMN}_k{k}")
}

/// The subject column in `schema` and its k, if there is one.
fn subject_in(schema: &DFSchema) -> Option<(Column, usize)> {
    schema.iter().find_map(|(q, f)| {
        let k = f
            .name()
            .strip_prefix(SUBJECT_COLUMN)?
            .strip_prefix("_k")?
            .parse()
            .ok()?;
        Some((Column::new(q.cloned(), f.name()), k))
    })
}

fn refusal<T>() -> DfResult<T> {
    plan_err!(
        "an aggregate-only table can only be aggregated (count, sum, avg, stddev, var) \
         before its rows are filtered by a join, sorted, windowed, limited or returned"
    )
}

fn aggregate_only(node: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    if let LogicalPlan::TableScan(scan) = &node
        && let Ok(provider) = source_as_provider(&scan.source)
        && let Some(table) = provider.downcast_ref::<PolicyTable>()
        && let ReadMode::Aggregate { k } = table.mode()
    {
        let Some(copy) = table.with_subject(&subject_name(k)) else {
            return refusal();
        };
        let visible = table.schema_len();
        let projection = scan.projection.clone().map(|mut p| {
            p.push(visible);
            p
        });
        let scan =
            TableScanBuilder::new(scan.table_name.clone(), provider_as_source(Arc::new(copy)))
                .with_projection(projection)
                .with_filters(scan.filters.clone())
                .with_fetch(scan.fetch)
                .build()?;
        return Ok(Transformed::yes(LogicalPlan::TableScan(scan)));
    }
    let carried = node.inputs().iter().find_map(|i| subject_in(i.schema()));
    let Some((subject, k)) = carried else {
        return Ok(Transformed::no(node));
    };
    let rebuilt = match node {
        LogicalPlan::Filter(f) => LogicalPlan::Filter(Filter::try_new(f.predicate, f.input)?),
        LogicalPlan::SubqueryAlias(a) => {
            LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(a.input, a.alias)?)
        }
        LogicalPlan::Projection(p) => {
            let mut expr = p.expr;
            let carries = expr
                .iter()
                .any(|e| matches!(e, Expr::Column(c) if c.name == subject.name));
            if !carries {
                expr.push(Expr::Column(subject));
            }
            LogicalPlan::Projection(Projection::try_new(expr, p.input)?)
        }
        LogicalPlan::Aggregate(a) => {
            if a.aggr_expr
                .iter()
                .any(|e| e.schema_name().to_string() == PEOPLE_COLUMN)
            {
                // Rewritten by an earlier pass.
                return Ok(Transformed::no(LogicalPlan::Aggregate(a)));
            }
            for e in &a.aggr_expr {
                let allowed = match e.clone().unalias() {
                    Expr::AggregateFunction(f) => {
                        ALLOWED_AGGREGATES.contains(&f.func.name().to_lowercase().as_str())
                    }
                    _ => false,
                };
                if !allowed {
                    return refusal();
                }
            }
            let original: Vec<Expr> = a
                .schema
                .iter()
                .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
                .collect();
            let mut aggr = a.aggr_expr.clone();
            aggr.push(count_distinct(Expr::Column(subject)).alias(PEOPLE_COLUMN));
            let counted = Aggregate::try_new(a.input, a.group_expr.clone(), aggr)?;
            let enough = Filter::try_new(
                col(PEOPLE_COLUMN).gt_eq(lit(k as i64)),
                Arc::new(LogicalPlan::Aggregate(counted)),
            )?;
            LogicalPlan::Projection(Projection::try_new(
                original,
                Arc::new(LogicalPlan::Filter(enough)),
            )?)
        }
        _ => return refusal(),
    };
    Ok(Transformed::yes(rebuilt))
}

/// After the rewrite no subject may reach a query's or a subquery's result.
fn refuse_unaggregated(plan: &LogicalPlan) -> DfResult<()> {
    if subject_in(plan.schema()).is_some() {
        return refusal();
    }
    plan.apply_with_subqueries(|node| {
        node.apply_subqueries(|sub| {
            if subject_in(sub.schema()).is_some() {
                return refusal();
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ColumnGrade, ColumnInfo, TableAccess, TableInfo, TableKind};
    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    fn people() -> (Arc<MemTable>, TableInfo) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("street", DataType::Utf8, false),
        ]));
        let ids: Vec<String> = (0..12).map(|i| format!("id{i}")).collect();
        let streets: Vec<&str> = (0..12).map(|i| if i < 7 { "a" } else { "b" }).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(StringArray::from(streets)),
            ],
        )
        .unwrap();
        let info = TableInfo {
            name: "t.people".into(),
            dataset: None,
            kind: TableKind::Current,
            columns: ["id", "street"]
                .map(|n| ColumnInfo {
                    name: n.into(),
                    data_type: DataType::Utf8,
                    grade: ColumnGrade::public(),
                })
                .to_vec(),
            subject: Some("id".into()),
        };
        (
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
            info,
        )
    }

    fn guarded() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.add_analyzer_rule(Arc::new(PolicyGuard));
        ctx
    }

    #[tokio::test]
    async fn a_raw_table_or_a_view_over_one_is_refused() {
        let (raw, info) = people();
        let ctx = guarded();
        ctx.register_table("raw", raw.clone()).unwrap();
        let wrapped = PolicyTable::new(&info, raw, &TableAccess::raw(&info), None).unwrap();
        ctx.register_table("wrapped", Arc::new(wrapped)).unwrap();
        // The analyzer runs when a plan is executed.
        let run = |sql: &'static str| {
            let ctx = ctx.clone();
            async move { ctx.sql(sql).await.unwrap().collect().await }
        };
        for sql in [
            "select * from raw",
            "select * from wrapped where id in (select id from raw)",
            "select (select count(*) from raw)",
            "select * from wrapped union all select * from raw",
        ] {
            let e = run(sql).await.unwrap_err().to_string();
            assert!(e.contains("not read through a policy"), "{sql}: {e}");
        }
        // A view is inlined into the plan: what it reads is checked like the rest.
        let view = ctx.sql("select 1 as one").await.unwrap().into_view();
        ctx.register_table("constant", view).unwrap();
        run("select * from constant").await.unwrap();
        let raw_view = SessionContext::new()
            .read_table(people().0)
            .unwrap()
            .into_view();
        ctx.register_table("v", raw_view).unwrap();
        let e = run("select * from v").await.unwrap_err().to_string();
        assert!(e.contains("not read through a policy"), "{e}");
        let rows = run("select count(*) from wrapped").await.unwrap();
        assert_eq!(rows[0].num_rows(), 1);
    }

    #[tokio::test]
    async fn aggregates_drop_small_groups_and_the_rewrite_is_idempotent() {
        let (raw, info) = people();
        let ctx = guarded();
        let mut access = TableAccess::raw(&info);
        access.mode = ReadMode::Aggregate { k: 6 };
        let t = PolicyTable::new(&info, raw, &access, None).unwrap();
        ctx.register_table("p", Arc::new(t)).unwrap();
        let df = ctx
            .sql("select street, count(*) as n from p group by street order by street")
            .await
            .unwrap();
        // Street a has 7 people, b only 5: b's cell is dropped.
        let batches = df.clone().collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| a      | 7 |"), "{text}");
        assert!(!text.contains("| b "), "{text}");
        // The analysed plan analysed again is the same plan.
        let config = ConfigOptions::default();
        let once = PolicyGuard
            .analyze(df.logical_plan().clone(), &config)
            .unwrap();
        assert!(
            format!("{once}").contains("__gdx_people >= Int64(6)"),
            "{once}"
        );
        let twice = PolicyGuard.analyze(once.clone(), &config).unwrap();
        assert_eq!(format!("{once}"), format!("{twice}"));
    }
}
