//! Compaction keeps rows, offsets and the fold's incrementality; vacuum removes only what no
//! retained version needs.

mod common;

use common::{append, dataset, rows};
use gdx_lake::LakeLocation;
use gdx_lake::fold::{FoldOptions, fold};
use gdx_lake::maintenance::{LakeTable, lake_tables, optimize, vacuum};

fn files(url: &url::Url) -> usize {
    let dir = url.to_file_path().unwrap();
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".parquet")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_vacuum_keep_the_data_and_the_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let ds = dataset();
    let events = lake.events(&ds.id);
    // Five small commits, as ingest makes under a trickle.
    for i in 0..5i64 {
        let key = format!("k{i}");
        append(&lake, &ds, &[(key.as_str(), "N", "09:00", 0, i, "upsert")]).await;
    }
    let folded = fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    assert_eq!(folded.rows, 5);
    let before = rows(events.clone()).await;
    assert_eq!(files(&events), 5);

    let catalog = gdx_catalog::district::catalog();
    let table: LakeTable = lake_tables(&lake, &catalog)
        .into_iter()
        .find(|t| t.url == events)
        .unwrap();
    assert!(table.layout.personal.contains(&"resident_id".to_owned()));
    let r = optimize(&table, 128 << 20).await.unwrap().unwrap();
    assert_eq!((r.files_before, r.files_removed, r.files_added), (5, 5, 1));
    assert_eq!(
        rows(events.clone()).await,
        before,
        "compaction keeps every row"
    );
    let t = gdx_lake::EventTable::open_or_create(
        events.clone(),
        gdx_lake::schema::events_schema(&ds),
        "t",
    )
    .await
    .unwrap();
    assert_eq!(
        t.txn_version("test/c/ps.household_registration/0")
            .await
            .unwrap(),
        Some(4),
        "the ingest offsets survive compaction"
    );
    // Compaction adds no data: the next fold has nothing to read.
    let after = fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    assert_eq!((after.files_read, after.full, after.rows), (0, false, 5));

    // The compacted-away files stay while a retained version needs them, then go.
    let kept = vacuum(&table, chrono::Duration::days(7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.files_deleted, 0);
    assert_eq!(files(&events), 6);
    let gone = vacuum(&table, chrono::Duration::zero())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.files_deleted, 5);
    assert_eq!(files(&events), 1);
    assert_eq!(rows(events.clone()).await, before);

    // A missing table is no error.
    assert!(
        optimize(
            &LakeTable {
                name: "x".into(),
                url: lake.profile("citizen"),
                layout: Default::default(),
            },
            1 << 20
        )
        .await
        .unwrap()
        .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_vacuum_of_a_merged_table_keep_its_deletion_vectors_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let ds = dataset();
    let current = lake.current(&ds.id);
    let keys: Vec<String> = (0..100).map(|i| format!("k{i:03}")).collect();
    let base: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), "N", "09:00", 0, i as i64, "upsert"))
        .collect();
    append(&lake, &ds, &base).await;
    fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    // Three small merges: changed and deleted keys leave superseded rows behind in vectors.
    for round in 0..3i64 {
        let changed: Vec<_> = (0..5)
            .map(|j| {
                let i = (round * 5 + j) as usize;
                let op = if j == 0 { "delete" } else { "upsert" };
                (keys[i].as_str(), "M", "10:00", 1, round * 5 + j, op)
            })
            .collect();
        append(&lake, &ds, &changed).await;
        let r = fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
        assert!(r.merged, "{r:?}");
    }
    let before = rows(current.clone()).await;
    assert_eq!(before.len(), 97);

    let catalog = gdx_catalog::district::catalog();
    let table: LakeTable = lake_tables(&lake, &catalog)
        .into_iter()
        .find(|t| t.url == current)
        .unwrap();
    optimize(&table, 128 << 20).await.unwrap();
    assert_eq!(
        rows(current.clone()).await,
        before,
        "no superseded row comes back"
    );
    vacuum(&table, chrono::Duration::zero()).await.unwrap();
    assert_eq!(rows(current.clone()).await, before);
    // The next merge still finds the stored rows where the log says they are.
    append(&lake, &ds, &[("k050", "Z", "11:00", 2, 0, "upsert")]).await;
    let r = fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    assert!(r.merged, "{r:?}");
    assert_eq!((r.rows, r.superseded), (97, 1));
    assert!(
        rows(current)
            .await
            .contains(&("k050".into(), Some("Z".into()), 0))
    );
}
