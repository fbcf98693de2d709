//! The lake as it was at a business time, rebuilt from events.
//!
//! Data flow: the stored tables, wrapped for the operator (allow-all) in a session of their
//! own → per dataset: its events cut off at the time (`<dept>.<dataset>_events`), the latest
//! event per key among them that is an upsert (`<dept>.<dataset>`) or a delete
//! (`<dept>.<dataset>_deleted`) → the profiles' SQL as of that day over those states →
//! the reader's session wraps each of these views with the reader's policy, exactly as it
//! wraps the stored tables. The views fold and join stored values: built over masked
//! columns they would merge two people whose masked keys agree, so the policy applies to
//! their results, never to their inputs.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use gdx_catalog::Catalog;

use super::{LakeSession, SessionOptions, SourceTable, plan_gaps, plan_profiles, time_travel};
use crate::Result;
use crate::fold::{column_list, current_schema};
use crate::policy::{AllowAll, TableKind};
use crate::registry::{Contents, OpenedTable, table_info};

fn quoted(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{s}.\"{t}\""),
        None => format!("\"{name}\""),
    }
}

/// The tables of a session as of `at`, in place of the stored ones.
pub(super) async fn tables(
    catalog: &Catalog,
    stored: &[SourceTable],
    at: time_travel::AsOf,
) -> Result<Vec<SourceTable>> {
    let system =
        LakeSession::assemble(catalog, stored, &AllowAll, &SessionOptions::default(), None)?;
    let mut out = Vec::new();
    let mut states = Vec::new();
    let view =
        |name: String, kind: TableKind, contents: Contents, provider: Arc<dyn TableProvider>| {
            let info = Arc::new(table_info(
                catalog,
                &name,
                kind,
                &contents,
                &provider.schema(),
            ));
            SourceTable {
                name,
                opened: OpenedTable {
                    info,
                    provider,
                    version: None,
                },
            }
        };
    for t in stored {
        let info = &t.opened.info;
        let Some(id) = &info.dataset else {
            if t.name == crate::profiles::definition::REWARDS_LEDGER {
                // What the ledger had recorded by then (the profiles' rewards received).
                let cut = system
                    .view(&format!(
                        "select * from {} where recorded_at <= {}",
                        quoted(&t.name),
                        at.sql_literal()
                    ))
                    .await?;
                let v = view(t.name.clone(), info.kind, Contents::RewardsLedger, cut);
                states.push(v.clone());
                out.push(v);
            } else if !matches!(info.kind, TableKind::Profile | TableKind::Review) {
                out.push(t.clone());
            }
            continue;
        };
        if info.kind != TableKind::Events {
            // Current and deleted keys are rebuilt from the events below.
            continue;
        }
        let Some(ds) = catalog.get(id.as_str()) else {
            continue;
        };
        let base = format!("{}.{}", id.department(), id.name());
        let cut = format!(
            "(select * from {} where _event_time <= {}) ev",
            quoted(&t.name),
            at.sql_literal()
        );
        let cols = column_list(&current_schema(ds));
        let contents = Contents::Dataset(id.clone());
        let state = system
            .view(&time_travel::state_sql(&cut, &cols, "upsert"))
            .await?;
        let state = view(base.clone(), TableKind::Current, contents.clone(), state);
        states.push(state.clone());
        out.push(state);
        let events = system.view(&format!("select * from {cut}")).await?;
        out.push(view(
            t.name.clone(),
            TableKind::Events,
            contents.clone(),
            events,
        ));
        let deleted = system
            .view(&time_travel::state_sql(&cut, &cols, "delete"))
            .await?;
        out.push(view(
            format!("{base}_deleted"),
            TableKind::Deleted,
            contents,
            deleted,
        ));
    }
    let gaps = plan_gaps(catalog, &states, at.date()).await?;
    for p in plan_profiles(catalog, &states, at.date())
        .await?
        .into_iter()
        .chain(gaps)
    {
        out.push(SourceTable {
            name: p.info.name.clone(),
            opened: p,
        });
    }
    Ok(out)
}
