//! Appends, offsets, schema evolution and concurrent writers of one event table.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("_offset", DataType::Int64, false),
    ]))
}

fn batch(offsets: std::ops::Range<i64>) -> RecordBatch {
    let keys: Vec<String> = offsets.clone().map(|o| format!("k{o}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(keys)),
            Arc::new(Int64Array::from(offsets.collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

/// A new table `t` in a temp dir (kept alive by the returned guard).
async fn fresh() -> (tempfile::TempDir, Url, EventTable) {
    laid_out(ColumnLayout::default()).await
}

/// A new table `t` in a temp dir, its columns written as `layout` says.
async fn laid_out(layout: ColumnLayout) -> (tempfile::TempDir, Url, EventTable) {
    let dir = tempfile::tempdir().unwrap();
    let url = Url::from_directory_path(dir.path().join("t")).unwrap();
    let t = EventTable::open_or_create_with(url.clone(), schema(), "t", layout)
        .await
        .unwrap();
    (dir, url, t)
}

/// The offset commit of one partition.
fn txn(app_id: &str, offset: i64) -> PartitionTxn {
    PartitionTxn {
        app_id: app_id.into(),
        offset,
    }
}

/// Another handle on the table at `url` (another worker, or a restart).
async fn handle(url: &Url) -> EventTable {
    EventTable::open_or_create(url.clone(), schema(), "t")
        .await
        .unwrap()
}

/// Rows `sql` returns with the table registered as `t`.
async fn rows_of(table: &EventTable, sql: &str) -> usize {
    let ctx = deltalake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", table.delta().table_provider().await.unwrap())
        .unwrap();
    ctx.sql(sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

/// The Parquet footer of the table's first data file.
fn first_file_metadata(t: &EventTable) -> deltalake::parquet::file::metadata::ParquetMetaData {
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
    let file = t.delta().get_file_uris().unwrap().next().unwrap();
    let file = std::fs::File::open(file.trim_start_matches("file://")).unwrap();
    SerializedFileReader::new(file).unwrap().metadata().clone()
}

#[tokio::test]
async fn batches_become_files_written_side_by_side_in_one_commit() {
    let (_dir, url, t) = fresh().await;
    let mut t = t.with_files_per_append(2);
    let batches = vec![
        batch(0..10),
        batch(10..25),
        batch(25..40),
        batch(40..45),
        batch(45..60),
    ];
    let v = t.append(batches, &[txn("a", 59)]).await.unwrap();
    assert_eq!(v, 1, "one commit");
    assert_eq!(t.delta().get_file_uris().unwrap().count(), 2, "two files");
    assert_eq!(stats_rows(t.delta()), 60, "every file has its statistics");
    let mut t = t.with_files_per_append(3);
    t.append(vec![batch(60..70); 3], &[txn("a", 69)])
        .await
        .unwrap();
    assert_eq!(t.delta().get_file_uris().unwrap().count(), 5);
    let reopened = handle(&url).await;
    assert_eq!(reopened.txn_version("a").await.unwrap(), Some(69));
    assert_eq!(crate::read::row_count(reopened.url()).await.unwrap(), 90);
}

#[tokio::test]
async fn unique_columns_are_written_without_a_dictionary() {
    let (_dir, url, mut t) = laid_out(ColumnLayout {
        unique: vec!["k".to_owned()],
        ..ColumnLayout::default()
    })
    .await;
    t.append(vec![batch(0..100)], &[]).await.unwrap();
    let meta = first_file_metadata(&t);
    for c in meta.row_group(0).columns() {
        assert!(
            c.dictionary_page_offset().is_none(),
            "{} has a dictionary",
            c.column_path()
        );
    }
    // Other columns keep delta-rs's dictionary encoding.
    let mut t = EventTable::open_or_create(url.join("../u/").unwrap(), schema(), "u")
        .await
        .unwrap();
    t.append(vec![batch(0..100)], &[]).await.unwrap();
    let meta = first_file_metadata(&t);
    let k = meta.row_group(0).column(0);
    assert_eq!(k.column_path().string(), "k");
    assert!(k.dictionary_page_offset().is_some());
}

/// Per add action in the table's log files: the columns its statistics name.
fn logged_stats_columns(dir: &std::path::Path) -> Vec<std::collections::BTreeSet<String>> {
    let mut logs: Vec<_> = std::fs::read_dir(dir.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        for line in std::fs::read_to_string(log).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(stats) = action["add"]["stats"].as_str() else {
                continue;
            };
            let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
            let mut cols = std::collections::BTreeSet::new();
            for part in ["minValues", "maxValues", "nullCount"] {
                if let Some(o) = stats[part].as_object() {
                    cols.extend(o.keys().cloned());
                }
            }
            out.push(cols);
        }
    }
    out
}

#[tokio::test]
async fn personal_columns_have_no_statistics_in_the_files_or_the_log_even_after_compaction() {
    let (dir, url, t) = laid_out(ColumnLayout {
        personal: vec!["k".to_owned()],
        ..ColumnLayout::default()
    })
    .await;
    let mut t = t.with_files_per_append(2);
    // One file (delta-rs's write), then two side by side (gdx's parallel writers).
    t.append(vec![batch(0..10)], &[]).await.unwrap();
    t.append(vec![batch(10..20), batch(20..30)], &[])
        .await
        .unwrap();
    let meta = first_file_metadata(&t);
    let (k, offset) = (meta.row_group(0).column(0), meta.row_group(0).column(1));
    assert_eq!(k.column_path().string(), "k");
    assert!(k.statistics().is_none(), "no Parquet statistics for k");
    assert!(offset.statistics().is_some(), "other columns keep theirs");
    let expected: std::collections::BTreeSet<String> = ["_offset".to_owned()].into();
    let logged = logged_stats_columns(&dir.path().join("t"));
    assert_eq!(logged, vec![expected.clone(); 3], "three files, no k");
    assert_eq!(
        t.delta()
            .snapshot()
            .unwrap()
            .metadata()
            .configuration()
            .get("delta.dataSkippingStatsColumns")
            .map(String::as_str),
        Some("_offset")
    );
    // Compaction rewrites the files with delta-rs's own Parquet settings: the table property
    // still keeps k out of the log.
    // (Maintenance is told of no personal column here: the property alone does it.)
    let upkeep = crate::maintenance::optimize(&lake_table(&url, &[]), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(upkeep.files_added, 1);
    let logged = logged_stats_columns(&dir.path().join("t"));
    assert_eq!(logged.last(), Some(&expected));
    assert_eq!(crate::read::row_count(&url).await.unwrap(), 30);

    // A table sorted by its personal columns keeps their statistics inside its files.
    let sorted = ColumnLayout::folded(vec!["k".to_owned()]);
    let url = url.join("../u/").unwrap();
    let mut u = EventTable::open_or_create_with(url, schema(), "u", sorted)
        .await
        .unwrap();
    u.append(vec![batch(0..10)], &[]).await.unwrap();
    assert!(
        first_file_metadata(&u)
            .row_group(0)
            .column(0)
            .statistics()
            .is_some()
    );
    assert_eq!(logged_stats_columns(&dir.path().join("u")), vec![expected]);
}

/// The table at `url` as maintenance sees it, with `personal` columns.
fn lake_table(url: &Url, personal: &[&str]) -> crate::maintenance::LakeTable {
    crate::maintenance::LakeTable {
        name: "t".into(),
        url: url.clone(),
        layout: ColumnLayout {
            personal: personal.iter().map(|c| (*c).to_owned()).collect(),
            ..ColumnLayout::default()
        },
    }
}

/// The table's `delta.dataSkippingStatsColumns`, as its log says now.
async fn stats_property(url: &Url) -> Option<String> {
    let t = open(url).await.unwrap().unwrap();
    t.snapshot()
        .unwrap()
        .metadata()
        .configuration()
        .get("delta.dataSkippingStatsColumns")
        .cloned()
}

#[tokio::test]
async fn a_table_from_before_the_rule_stops_logging_personal_statistics_once_gdx_touches_it() {
    // Made without any personal column (as an older gdx did): Delta logs k's bounds.
    let (dir, url, mut old) = fresh().await;
    old.append(vec![batch(0..10)], &[]).await.unwrap();
    old.append(vec![batch(10..20)], &[]).await.unwrap();
    assert_eq!(stats_property(&url).await, None);
    let with_k: std::collections::BTreeSet<String> = ["k".to_owned(), "_offset".to_owned()].into();
    assert_eq!(logged_stats_columns(&dir.path().join("t")), vec![with_k; 2]);

    // Compaction, told k is personal, first sets the property; its file logs no k.
    let upkeep = crate::maintenance::optimize(&lake_table(&url, &["k"]), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((upkeep.files_removed, upkeep.files_added), (2, 1));
    assert_eq!(stats_property(&url).await.as_deref(), Some("_offset"));
    let only_offset: std::collections::BTreeSet<String> = ["_offset".to_owned()].into();
    assert_eq!(
        logged_stats_columns(&dir.path().join("t")).last(),
        Some(&only_offset)
    );
    assert_eq!(crate::read::row_count(&url).await.unwrap(), 20);

    // A property naming a column since graded personal: a worker opening the table drops
    // that column from it, and nothing else; the table stays readable and appendable.
    let mut t = open(&url).await.unwrap().unwrap();
    t = t
        .set_tbl_properties()
        .with_properties(
            [(
                "delta.dataSkippingStatsColumns".to_owned(),
                "k,_offset".to_owned(),
            )]
            .into(),
        )
        .await
        .unwrap();
    let version = t.version();
    let personal_k = ColumnLayout {
        personal: vec!["k".to_owned()],
        ..ColumnLayout::default()
    };
    let mut worker =
        EventTable::open_or_create_with(url.clone(), schema(), "t", personal_k.clone())
            .await
            .unwrap();
    assert_eq!(
        worker.version(),
        version.map(|v| v + 1),
        "one metadata commit"
    );
    assert_eq!(stats_property(&url).await.as_deref(), Some("_offset"));
    worker.append(vec![batch(20..25)], &[]).await.unwrap();
    assert_eq!(
        logged_stats_columns(&dir.path().join("t")).last(),
        Some(&only_offset)
    );
    // In line now: opening again commits nothing.
    let again = EventTable::open_or_create_with(url.clone(), schema(), "t", personal_k)
        .await
        .unwrap();
    assert_eq!(again.version(), worker.version());
    assert_eq!(crate::read::row_count(&url).await.unwrap(), 25);
}

#[tokio::test]
async fn a_field_added_by_the_catalog_becomes_a_new_column() {
    let (_dir, url, mut t) = fresh().await;
    t.append(vec![batch(0..3)], &[txn("a", 2)]).await.unwrap();
    let v2 = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("_offset", DataType::Int64, false),
        Field::new("phone", DataType::Utf8, true),
    ]));
    let b = RecordBatch::try_new(
        v2.clone(),
        vec![
            Arc::new(StringArray::from(vec!["k3"])),
            Arc::new(Int64Array::from(vec![3])),
            Arc::new(StringArray::from(vec![Some("13800138000")])),
        ],
    )
    .unwrap();
    let mut reopened = EventTable::open_or_create(url.clone(), v2, "t")
        .await
        .unwrap();
    // Two batches (a run decoded in chunks) that both carry the new column.
    reopened
        .append(vec![b.clone(), b], &[txn("a", 3)])
        .await
        .unwrap();
    let names: Vec<String> = reopened
        .delta()
        .snapshot()
        .unwrap()
        .schema()
        .fields()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(names, vec!["k", "_offset", "phone"]);
    let n = rows_of(&reopened, "select * from t where phone is null").await;
    assert_eq!(n, 3, "old rows read the new column as null");
}

#[tokio::test]
async fn offsets_commit_with_the_data_and_survive_reopening() {
    let (_dir, url, mut t) = fresh().await;
    let a = app_id("ingest", "cluster-1", "ps.x", 0);
    let b = app_id("ingest", "cluster-1", "ps.x", 1);
    assert_eq!(t.txn_version(&a).await.unwrap(), None);
    t.append(vec![batch(0..10)], &[txn(&a, 9)]).await.unwrap();
    t.append(vec![batch(10..15)], &[txn(&a, 14), txn(&b, 3)])
        .await
        .unwrap();

    // A second handle (another worker, or a restart) sees the same offsets.
    let other = handle(&url).await;
    assert_eq!(other.txn_version(&a).await.unwrap(), Some(14));
    assert_eq!(other.txn_version(&b).await.unwrap(), Some(3));
    assert_eq!(
        other
            .txn_version(&app_id("ingest", "cluster-2", "ps.x", 0))
            .await
            .unwrap(),
        None
    );
    assert_eq!(other.version(), Some(2));
    assert_eq!(rows_of(&other, "select * from t").await, 15);

    // A commit without rows still records offsets (a run of messages that were all
    // dead-lettered must move the partition on).
    let mut other = other;
    let before = other.version().unwrap();
    other.append(Vec::new(), &[txn(&b, 9)]).await.unwrap();
    assert_eq!(other.version(), Some(before + 1));
    assert_eq!(other.txn_version(&b).await.unwrap(), Some(9));

    // The first handle learns of commits made elsewhere after a refresh.
    let mut second = other;
    second
        .append(vec![batch(15..20)], &[txn(&a, 19)])
        .await
        .unwrap();
    assert_eq!(t.txn_version(&a).await.unwrap(), Some(14));
    t.refresh().await.unwrap();
    assert_eq!(t.txn_version(&a).await.unwrap(), Some(19));
}

/// `batch` with a nullable `phone` column the first schema lacks (a field the catalog added).
fn evolved_batch(offsets: std::ops::Range<i64>) -> RecordBatch {
    let v2 = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("_offset", DataType::Int64, false),
        Field::new("phone", DataType::Utf8, true),
    ]));
    let n = offsets.clone().count();
    let old = batch(offsets);
    RecordBatch::try_new(
        v2,
        vec![
            old.column(0).clone(),
            old.column(1).clone(),
            Arc::new(StringArray::from(vec![Some("13800138000"); n])),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_racing_to_create_a_table_make_one_version_zero() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path().join("t")).unwrap();
        let creators: Vec<_> = (0..6)
            .map(|_| tokio::spawn(EventTable::open_or_create(url.clone(), schema(), "t")))
            .collect();
        for c in creators {
            assert_eq!(
                c.await.unwrap().unwrap().version(),
                Some(0),
                "round {round}"
            );
        }
        let log = dir.path().join("t/_delta_log");
        let commits = std::fs::read_dir(&log)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("json".as_ref()))
            .count();
        assert_eq!(
            commits, 1,
            "round {round}: a losing creator committed again"
        );
    }
}

#[tokio::test]
async fn an_append_survives_another_writer_evolving_the_schema() {
    let (_dir, url, mut a) = fresh().await;
    let mut b = handle(&url).await.with_files_per_append(2);
    a.append(vec![evolved_batch(0..3)], &[txn("p0", 2)])
        .await
        .unwrap();
    // `b` still holds version 0 and the old schema: a single batch (delta-rs's write) and
    // a multi-batch run (parallel files) both commit after a reload.
    b.append(vec![batch(100..104)], &[txn("p1", 103)])
        .await
        .unwrap();
    a.append(vec![evolved_batch(3..5)], &[txn("p0", 4)])
        .await
        .unwrap();
    b.append(vec![batch(104..110), batch(110..120)], &[txn("p1", 119)])
        .await
        .unwrap();
    let mut check = handle(&url).await;
    check.refresh().await.unwrap();
    assert_eq!(check.txn_version("p0").await.unwrap(), Some(4));
    assert_eq!(check.txn_version("p1").await.unwrap(), Some(119));
    assert_eq!(crate::read::row_count(check.url()).await.unwrap(), 25);
}

#[tokio::test]
async fn a_stale_writer_never_commits_a_partition_another_writer_moved() {
    let (_dir, url, mut a) = fresh().await;
    let mut b = handle(&url).await;
    // Plain appends: Delta itself refuses a commit whose app id a newer commit carries.
    a.append(vec![batch(0..5)], &[txn("p0", 4)]).await.unwrap();
    let err = b
        .append(vec![batch(0..5)], &[txn("p0", 4)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Concurrent transaction"), "{err}");
    // The same partition moved together with a schema change: the retry after reloading
    // must not commit either.
    let mut c = handle(&url).await;
    a.append(vec![evolved_batch(5..8)], &[txn("p0", 7)])
        .await
        .unwrap();
    let err = c
        .append(vec![batch(5..8)], &[txn("p0", 7)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::PartitionTakenOver { ref app_id, .. } if app_id == "p0"),
        "{err}"
    );
    assert_eq!(crate::read::row_count(&url).await.unwrap(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_opening_an_old_table_together_set_its_statistics_columns_once() {
    for round in 0..3 {
        let (dir, url, mut old) = fresh().await;
        old.append(vec![batch(0..3)], &[txn("p0", 2)])
            .await
            .unwrap();
        let personal_k = ColumnLayout {
            personal: vec!["k".to_owned()],
            ..ColumnLayout::default()
        };
        let openers: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(EventTable::open_or_create_with(
                    url.clone(),
                    schema(),
                    "t",
                    personal_k.clone(),
                ))
            })
            .collect();
        for o in openers {
            let t = o.await.unwrap().unwrap();
            assert_eq!(t.txn_version("p0").await.unwrap(), Some(2), "round {round}");
        }
        assert_eq!(stats_property(&url).await.as_deref(), Some("_offset"));
        let log = dir.path().join("t/_delta_log");
        let commits = std::fs::read_dir(&log)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("json".as_ref()))
            .count();
        // Create, append, and one property change however many workers raced to make it.
        assert_eq!(commits, 3, "round {round}");
    }
}

/// Two writers of one table share nothing but its files, as two processes do: a commit that
/// finds its version taken ("version already exists, will retry" in delta-rs's log) is
/// retried on the new version, and neither writer loses or duplicates a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_committing_at_once_retry_and_land_every_row_once() {
    let (_dir, url, mut a) = fresh().await;
    let mut b = handle(&url).await;
    // Deterministic: `b` commits on the version `a` has just taken.
    a.append(vec![batch(0..5)], &[txn("p0", 4)]).await.unwrap();
    let v = b
        .append(vec![batch(1000..1005)], &[txn("p1", 1004)])
        .await
        .unwrap();
    assert_eq!(v, 2, "b's commit went in after a's");
    // Racing: each writer appends to its own partition 25 times at once.
    let write = |mut t: EventTable, base: i64, app: &'static str| async move {
        for i in 0..25 {
            let from = base + 5 + i * 10;
            t.append(vec![batch(from..from + 10)], &[txn(app, from + 9)])
                .await
                .unwrap();
        }
    };
    let (ra, rb) = tokio::join!(
        tokio::spawn(write(a, 0, "p0")),
        tokio::spawn(write(b, 1000, "p1"))
    );
    ra.unwrap();
    rb.unwrap();
    let mut check = handle(&url).await;
    check.refresh().await.unwrap();
    assert_eq!(check.version(), Some(52), "one commit per append");
    assert_eq!(check.txn_version("p0").await.unwrap(), Some(254));
    assert_eq!(check.txn_version("p1").await.unwrap(), Some(1254));
    assert_eq!(crate::read::row_count(&url).await.unwrap(), 510);
    assert_eq!(rows_of(&check, "select distinct _offset from t").await, 510);
}
