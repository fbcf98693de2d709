//! Folding events into current state: latest per key by (event time, partition, offset),
//! deletes, out-of-order and duplicate events, no-op updates, incremental and idempotent.

mod common;

use common::{append, dataset, row, rows};
use gdx_lake::LakeLocation;
use gdx_lake::fold::{FoldOptions, fold};
use gdx_lake::location::TableKind;

/// A lake in a new temp dir (removed when the guard drops).
fn fresh_lake() -> (tempfile::TempDir, LakeLocation) {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    (dir, lake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_event_per_key_wins_and_folds_are_incremental_and_idempotent() {
    let (_dir, lake) = fresh_lake();
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
    let (_dir, lake) = fresh_lake();
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

/// An owned event (the fields of [`common::Ev`]).
type OwnedEv = (String, String, String, i32, i64, String);

/// The base state of the merge tests: 200 keys, 5 of them deleted since.
fn base_events() -> Vec<OwnedEv> {
    let mut evs = Vec::new();
    for i in 0..200i64 {
        evs.push((
            format!("k{i:03}"),
            format!("N{i}"),
            "09:00".to_owned(),
            0,
            i,
            "upsert".to_owned(),
        ));
    }
    for i in 0..5i64 {
        evs.push((
            format!("k{:03}", 190 + i),
            String::new(),
            "10:00".to_owned(),
            0,
            200 + i,
            "delete".to_owned(),
        ));
    }
    evs
}

fn as_ev(e: &OwnedEv) -> common::Ev<'_> {
    (&e.0, &e.1, &e.2, e.3, e.4, &e.5)
}

/// The state folds that rewrite make of `batches` in a fresh lake (each appended in one
/// commit and folded: the same history as the merging folds, so the same no-ops).
async fn full_fold_of(
    batches: &[Vec<OwnedEv>],
) -> (
    Vec<(String, Option<String>, i64)>,
    Vec<(String, Option<String>, i64)>,
) {
    let (_dir, lake) = fresh_lake();
    let ds = dataset();
    let rewrite = FoldOptions {
        merge: false,
        ..FoldOptions::default()
    };
    for b in batches {
        let evs: Vec<_> = b.iter().map(as_ev).collect();
        append(&lake, &ds, &evs).await;
        let r = fold(&lake, &ds, &rewrite).await.unwrap();
        assert!(!r.merged);
    }
    (
        rows(lake.current(&ds.id)).await,
        rows(lake.table(&ds.id, TableKind::Deleted)).await,
    )
}

/// Data files of a table and the rows their deletion vectors remove.
async fn files_and_vectors(url: url::Url) -> Vec<(String, i64)> {
    let t = deltalake::open_table(url).await.unwrap();
    let mut out: Vec<(String, i64)> = t
        .snapshot()
        .unwrap()
        .log_data()
        .iter()
        .map(|f| {
            (
                f.path().into_owned(),
                f.deletion_vector_descriptor().map_or(0, |d| d.cardinality),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_change_is_merged_into_the_stored_files_and_equals_a_full_fold() {
    let (_dir, lake) = fresh_lake();
    let ds = dataset();
    let opts = FoldOptions::default();
    let current = lake.current(&ds.id);
    let deleted = lake.table(&ds.id, TableKind::Deleted);
    let own = |v: &[(&str, &str, &str, i32, i64, &str)]| -> Vec<_> {
        v.iter()
            .map(|e| {
                (
                    e.0.to_owned(),
                    e.1.to_owned(),
                    e.2.to_owned(),
                    e.3,
                    e.4,
                    e.5.to_owned(),
                )
            })
            .collect()
    };
    let base = base_events();
    append(&lake, &ds, &base.iter().map(as_ev).collect::<Vec<_>>()).await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert!(r.full && !r.merged);
    assert_eq!((r.rows, r.deleted), (195, 5));
    let base_files = files_and_vectors(current.clone()).await;
    assert_eq!(base_files.len(), 1, "{base_files:?}");
    assert_eq!(base_files[0].1, 0);

    let first = own(&[
        // Out of order: older than the stored row → ignored.
        ("k001", "Z", "08:00", 1, 0, "upsert"),
        // No-op: same content, newer → the stored row (offset 2) stays.
        ("k002", "N2", "11:00", 1, 1, "upsert"),
        // Real changes, one key twice in the change set (the newer wins).
        ("k003", "C1", "11:00", 1, 2, "upsert"),
        ("k004", "D1", "11:00", 1, 3, "upsert"),
        ("k004", "D2", "11:30", 1, 4, "upsert"),
        // A delete of a stored key.
        ("k005", "", "11:00", 1, 5, "delete"),
        // A newer upsert brings a deleted key back; an older one does not.
        ("k190", "R", "11:00", 1, 6, "upsert"),
        ("k191", "Old", "09:30", 1, 7, "upsert"),
        // New keys, and a delete of a key never seen.
        ("k500", "New", "11:00", 1, 8, "upsert"),
        ("k501", "", "11:00", 1, 9, "delete"),
        // The same event delivered again (already folded).
        ("k006", "N6", "09:00", 0, 6, "upsert"),
    ]);
    append(&lake, &ds, &first.iter().map(as_ev).collect::<Vec<_>>()).await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert!(r.merged && !r.full, "{r:?}");
    // Superseded: k003, k004, k005 in current; k190 in deleted.
    assert_eq!(r.superseded, 4, "{r:?}");
    // Written: k003, k004, k190, k500 to current; k005, k501 to deleted.
    assert_eq!(r.written, 6, "{r:?}");
    assert_eq!((r.rows, r.deleted), (196, 6));
    let (want_cur, want_del) = full_fold_of(&[base.clone(), first.clone()]).await;
    assert_eq!(rows(current.clone()).await, want_cur);
    assert_eq!(rows(deleted.clone()).await, want_del);
    let files = files_and_vectors(current.clone()).await;
    assert_eq!(
        files.len(),
        2,
        "one new file beside the stored one: {files:?}"
    );
    assert!(
        files.contains(&(base_files[0].0.clone(), 3)),
        "the stored file is kept, its superseded rows in a deletion vector: {files:?}"
    );

    // A second merge adds to the same file's vector.
    let second = own(&[
        ("k010", "X", "12:00", 1, 10, "upsert"),
        ("k003", "C2", "12:00", 1, 11, "upsert"),
        ("k190", "", "12:00", 1, 12, "delete"),
    ]);
    append(&lake, &ds, &second.iter().map(as_ev).collect::<Vec<_>>()).await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert!(r.merged, "{r:?}");
    let (want_cur, want_del) = full_fold_of(&[base.clone(), first.clone(), second.clone()]).await;
    assert_eq!(rows(current.clone()).await, want_cur);
    assert_eq!(rows(deleted.clone()).await, want_del);
    assert_eq!(
        (r.rows, r.deleted),
        (want_cur.len() as u64, want_del.len() as u64)
    );
    let files = files_and_vectors(current.clone()).await;
    assert!(files.contains(&(base_files[0].0.clone(), 4)), "{files:?}");

    // Folding the last change again (as after a crash between the two commits) changes no row.
    let mut t = deltalake::open_table(current.clone()).await.unwrap();
    let props = deltalake::kernel::transaction::CommitProperties::default()
        .with_application_transactions(vec![deltalake::kernel::Transaction::new(
            gdx_lake::fold::FOLD_APP_ID,
            r.events_version.unwrap() as i64 - 1,
        )]);
    rewind(&mut t, props).await;
    let again = fold(&lake, &ds, &opts).await.unwrap();
    assert!(again.merged, "{again:?}");
    assert_eq!((again.written, again.superseded), (0, 0), "{again:?}");
    assert_eq!(rows(current.clone()).await, want_cur);
    assert_eq!(rows(deleted.clone()).await, want_del);

    // A change as large as a fifth of the table is folded by rewriting (and compacting).
    let big: Vec<_> = (0..60i64)
        .map(|i| {
            (
                format!("k{:03}", 20 + i),
                format!("B{i}"),
                "13:00".to_owned(),
                2,
                i,
                "upsert".to_owned(),
            )
        })
        .collect();
    append(&lake, &ds, &big.iter().map(as_ev).collect::<Vec<_>>()).await;
    let r = fold(&lake, &ds, &opts).await.unwrap();
    assert!(!r.merged, "{r:?}");
    let (want_cur, want_del) = full_fold_of(&[base, first, second, big]).await;
    assert_eq!(rows(current.clone()).await, want_cur);
    assert_eq!(rows(deleted).await, want_del);
    let files = files_and_vectors(current).await;
    assert!(files.iter().all(|f| f.1 == 0), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_folds_of_random_changes_equal_rewriting_folds_of_the_same_history() {
    for seed in [1u64, 7, 42] {
        let mut state = seed;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let (_dir, lake) = fresh_lake();
        let ds = dataset();
        // The oracle: the same events, every fold a rewrite.
        let (_oracle_dir, oracle) = fresh_lake();
        let rewrite = FoldOptions {
            merge: false,
            ..FoldOptions::default()
        };
        let base = base_events();
        for (l, o) in [(&lake, &FoldOptions::default()), (&oracle, &rewrite)] {
            append(l, &ds, &base.iter().map(as_ev).collect::<Vec<_>>()).await;
            fold(l, &ds, o).await.unwrap();
        }
        let mut offset = 1_000i64;
        let mut merged = 0;
        for _round in 0..5 {
            let change: Vec<_> = (0..1 + next(30))
                .map(|_| {
                    offset += 1;
                    let delete = next(5) == 0;
                    (
                        format!("k{:03}", next(260)),
                        if delete {
                            String::new()
                        } else {
                            // Few names: some changes are no-ops.
                            format!("N{}", next(3))
                        },
                        format!("{:02}:{:02}", 8 + next(8), next(60)),
                        next(3) as i32,
                        offset,
                        if delete { "delete" } else { "upsert" }.to_owned(),
                    )
                })
                .collect();
            let evs: Vec<_> = change.iter().map(as_ev).collect();
            append(&lake, &ds, &evs).await;
            append(&oracle, &ds, &evs).await;
            let r = fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
            merged += r.merged as usize;
            assert!(!fold(&oracle, &ds, &rewrite).await.unwrap().merged);
            let want_cur = rows(oracle.current(&ds.id)).await;
            let want_del = rows(oracle.table(&ds.id, TableKind::Deleted)).await;
            assert_eq!(rows(lake.current(&ds.id)).await, want_cur, "seed {seed}");
            assert_eq!(
                rows(lake.table(&ds.id, TableKind::Deleted)).await,
                want_del,
                "seed {seed}"
            );
            assert_eq!(
                (r.rows, r.deleted),
                (want_cur.len() as u64, want_del.len() as u64)
            );
        }
        assert!(merged >= 4, "seed {seed}: {merged} of 5 folds merged");
    }
}
