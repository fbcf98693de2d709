//! Folding events into current state: latest per key by (event time, partition, offset),
//! deletes, out-of-order and duplicate events, no-op updates, incremental and idempotent.

mod common;

use common::{append, dataset, row, rows};
use gdx_lake::LakeLocation;
use gdx_lake::fold::{FoldOptions, fold};
use gdx_lake::location::TableKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_event_per_key_wins_and_folds_are_incremental_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let ds = dataset();
    let opts = FoldOptions::default();
    let current = lake.current(&ds.id);
    let deleted = lake.table(&ds.id, TableKind::Deleted);

    // Nothing to fold before the first event.
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert_eq!(r.events_version, None);

    append(
        &lake,
        &ds,
        &[
            ("k1", "A", "09:00", 0, 0, "upsert"),
            ("k2", "B", "09:00", 0, 1, "upsert"),
            ("k3", "C", "09:00", 0, 2, "upsert"),
            ("k3", "", "10:00", 0, 3, "delete"),
            ("k5", "E", "09:00", 0, 4, "upsert"),
            // Same event time: the higher offset wins.
            ("k6", "F1", "09:00", 0, 5, "upsert"),
            ("k6", "F2", "09:00", 0, 6, "upsert"),
        ],
    )
    .await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert!(r.full, "first fold reads every event file");
    assert_eq!((r.rows, r.deleted), (4, 1));
    assert_eq!(
        rows(current.clone()).await,
        vec![
            row("k1", "A", 0),
            row("k2", "B", 1),
            row("k5", "E", 4),
            row("k6", "F2", 6)
        ]
    );
    assert_eq!(rows(deleted.clone()).await, vec![("k3".into(), None, 3)]);

    // Repeating finds nothing to do.
    let again = fold(&lake, &ds, &opts).await.unwrap();
    assert!(again.up_to_date());
    assert_eq!(again.rows, 4);

    append(
        &lake,
        &ds,
        &[
            // Out of order: older than what current holds → ignored.
            ("k1", "Z", "08:00", 0, 7, "upsert"),
            // No-op: same content, newer time → the current row (offset 1) stays.
            ("k2", "B", "11:00", 0, 8, "upsert"),
            // Older than the delete → k3 stays deleted.
            ("k3", "C2", "09:30", 0, 9, "upsert"),
            ("k4", "D", "11:00", 0, 10, "upsert"),
            // A real change.
            ("k5", "E2", "11:00", 0, 11, "upsert"),
            // Delete, then an older upsert in a later offset.
            ("k6", "", "12:00", 0, 12, "delete"),
            ("k6", "F3", "11:00", 0, 13, "upsert"),
        ],
    )
    .await;
    // Duplicate delivery of an event already folded (same partition and offset).
    append(&lake, &ds, &[("k1", "A", "09:00", 0, 0, "upsert")]).await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert!(!r.full, "later folds read only what was added");
    assert_eq!(r.files_read, 2);
    let lag = r
        .lag_seconds
        .expect("an incremental fold knows how long its input waited");
    assert!((0.0..60.0).contains(&lag), "{lag}");
    assert_eq!(
        rows(current.clone()).await,
        vec![
            row("k1", "A", 0),
            row("k2", "B", 1),
            row("k4", "D", 10),
            row("k5", "E2", 11)
        ]
    );
    assert_eq!(
        rows(deleted.clone()).await,
        vec![("k3".into(), None, 3), ("k6".into(), None, 12)]
    );

    // A newer upsert brings a deleted key back.
    append(&lake, &ds, &[("k3", "C3", "13:00", 1, 0, "upsert")]).await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert_eq!((r.rows, r.deleted), (5, 1));
    assert!(rows(current.clone()).await.contains(&row("k3", "C3", 0)));

    // Folding the same events again onto the state (as after a crash between the two
    // commits) changes nothing.
    let before = rows(current.clone()).await;
    let t = deltalake::open_table(current.clone()).await.unwrap();
    let v = t.version().unwrap();
    // Rewind the fold marker by committing the events version before the last one.
    let mut t = t;
    let props = deltalake::kernel::transaction::CommitProperties::default()
        .with_application_transactions(vec![deltalake::kernel::Transaction::new(
            gdx_lake::fold::FOLD_APP_ID,
            r.events_version.unwrap() as i64 - 1,
        )]);
    rewind(&mut t, props).await;
    let r2 = fold(&lake, &ds, &opts).await.unwrap();
    assert_eq!(r2.files_read, 1);
    assert_eq!(rows(current.clone()).await, before);
    assert!(
        deltalake::open_table(current)
            .await
            .unwrap()
            .version()
            .unwrap()
            > v
    );
}

async fn rewind(
    t: &mut deltalake::DeltaTable,
    props: deltalake::kernel::transaction::CommitProperties,
) {
    use deltalake::kernel::transaction::{CommitBuilder, TableReference};
    use deltalake::protocol::{DeltaOperation, SaveMode};
    let snapshot = t.snapshot().unwrap();
    CommitBuilder::from(props)
        .build(
            Some(snapshot as &dyn TableReference),
            t.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            },
        )
        .await
        .unwrap();
}

/// The columns named by the statistics of the last file a table's log added.
fn last_logged_stats_columns(table: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut logs: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    logs.sort();
    let mut last = None;
    for log in logs {
        for line in std::fs::read_to_string(log).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(stats) = action["add"]["stats"].as_str() {
                last = Some(stats.to_owned());
            }
        }
    }
    let stats: serde_json::Value = serde_json::from_str(&last.expect("a file")).unwrap();
    stats["minValues"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fold_over_a_current_table_that_logs_personal_statistics_sets_it_right_first() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let ds = dataset();
    let opts = FoldOptions::default();
    append(&lake, &ds, &[("k1", "A", "09:00", 0, 0, "upsert")]).await;
    fold(&lake, &ds, &opts).await.unwrap();
    let current = lake.current(&ds.id);
    let path = current.to_file_path().unwrap();
    assert!(!last_logged_stats_columns(&path).contains("name"));

    // As if the table predated the rule (or `name` were graded personal after it was made):
    // its property lets the key and the name into the log.
    let t = deltalake::open_table(current.clone()).await.unwrap();
    t.set_tbl_properties()
        .with_properties(
            [(
                "delta.dataSkippingStatsColumns".to_owned(),
                "_key,resident_id,name,_offset".to_owned(),
            )]
            .into(),
        )
        .await
        .unwrap();

    append(&lake, &ds, &[("k2", "B", "10:00", 0, 1, "upsert")]).await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert_eq!(r.rows, 2);
    let t = deltalake::open_table(current.clone()).await.unwrap();
    let property = t
        .snapshot()
        .unwrap()
        .metadata()
        .configuration()
        .get("delta.dataSkippingStatsColumns")
        .cloned();
    assert_eq!(property.as_deref(), Some("_offset"));
    assert_eq!(
        last_logged_stats_columns(&path),
        ["_offset".to_owned()].into(),
        "the fold's file logs only what the property lists"
    );
    assert_eq!(
        rows(current).await,
        vec![row("k1", "A", 0), row("k2", "B", 1)]
    );
}
