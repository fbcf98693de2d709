//! The analyst's SQL session: time travel (business time and Delta versions), read-only
//! rules, unknown tables, the row cap, and filters reaching the Parquet scan.

mod common;

use common::{append, dataset};
use gdx_lake::fold::{FoldOptions, fold};
use gdx_lake::sql::{AsOf, LakeSession, SessionOptions};
use gdx_lake::{AllowAll, Error, LakeLocation, TableRegistry};
use std::sync::Arc;

/// Every value of every row as text, one `a|b|c` string per row.
async fn text_rows(s: &LakeSession, sql: &str) -> Vec<String> {
    let out = s.query(sql).await.unwrap();
    gdx_lake::read::text_rows(&out.batches)
        .unwrap()
        .into_iter()
        .map(|r| r.join("|"))
        .collect()
}

async fn lake_with_history() -> (tempfile::TempDir, LakeLocation, u64) {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let ds = dataset();
    append(
        &lake,
        &ds,
        &[
            ("k1", "A", "2026-03-01T09:00:00+08:00", 0, 0, "upsert"),
            ("k2", "B", "2026-03-01T09:00:00+08:00", 0, 1, "upsert"),
            ("k3", "C", "2026-03-01T10:00:00+08:00", 0, 2, "upsert"),
        ],
    )
    .await;
    fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    let v1 = deltalake::open_table(lake.current(&ds.id))
        .await
        .unwrap()
        .version()
        .unwrap();
    // Later: k1 changes, k2 is deleted, k4 appears.
    append(
        &lake,
        &ds,
        &[
            ("k1", "A2", "2026-03-05T09:00:00+08:00", 0, 3, "upsert"),
            ("k2", "", "2026-03-05T09:00:00+08:00", 0, 4, "delete"),
            ("k4", "D", "2026-03-05T10:00:00+08:00", 0, 5, "upsert"),
        ],
    )
    .await;
    fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    (dir, lake, v1)
}

async fn open(lake: &LakeLocation, as_of: Option<&str>, max_rows: usize) -> LakeSession {
    let catalog = gdx_catalog::district::catalog();
    let opts = SessionOptions {
        as_of: as_of.map(|a| AsOf::parse(a).unwrap()),
        max_rows,
        ..SessionOptions::default()
    };
    let registry = TableRegistry::open(lake, &catalog).await.unwrap();
    LakeSession::open(&registry, Arc::new(AllowAll), &opts)
        .await
        .unwrap()
}

const STATE: &str = "select _key, name, _offset from ps.household_registration order by _key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_as_of_a_date_is_what_was_current_then() {
    let (_dir, lake, v1) = lake_with_history().await;
    let then = vec!["k1|A|0", "k2|B|1", "k3|C|2"];
    let now = vec!["k1|A2|3", "k3|C|2", "k4|D|5"];

    let current = open(&lake, None, 100).await;
    assert_eq!(text_rows(&current, STATE).await, now);

    // Rebuilt from events as of the first day: k1 unchanged, k2 not yet deleted, no k4.
    let past = open(&lake, Some("2026-03-01"), 100).await;
    assert_eq!(text_rows(&past, STATE).await, then);
    assert_eq!(
        text_rows(
            &past,
            "select count(*) from ps.household_registration_events"
        )
        .await,
        vec!["3"]
    );
    // A timestamp between the two: k3 (10:00) not yet there.
    let morning = open(&lake, Some("2026-03-01T09:30:00+08:00"), 100).await;
    assert_eq!(text_rows(&morning, STATE).await, vec!["k1|A|0", "k2|B|1"]);

    // Delta time travel of the folded table gives the same answer.
    let at_version = format!(
        "select _key, name, _offset from table_at('ps.household_registration', {v1}) order by _key"
    );
    assert_eq!(text_rows(&current, &at_version).await, then);
    let err = current
        .query("select * from table_at('ps.household_registraton', 0)")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ps.household_registration"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_is_read_only_and_bounded() {
    let (_dir, lake, _) = lake_with_history().await;
    let s = open(&lake, None, 2).await;
    for sql in [
        "create table x as select 1",
        "insert into ps.household_registration select * from ps.household_registration",
        "copy (select 1) to '/tmp/gdx-should-not-exist.csv'",
        "create external table t stored as parquet location '/tmp'",
        "set datafusion.execution.batch_size = 1",
        "drop table ps.household_registration",
        "create view v as select 1",
    ] {
        match s.query(sql).await {
            Err(Error::ReadOnly(_)) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert!(!std::path::Path::new("/tmp/gdx-should-not-exist.csv").exists());

    // Unknown tables name the close ones.
    match s.query("select * from ps.houshold_registration").await {
        Err(Error::UnknownTable { name, close }) => {
            assert_eq!(name, "ps.houshold_registration");
            assert_eq!(close[0], "ps.household_registration");
        }
        other => panic!("{other:?}"),
    }

    // The row cap cuts off and says so.
    let out = s.query(STATE).await.unwrap();
    assert_eq!((out.rows(), out.truncated), (2, true));
    let out = s
        .query("select count(*) from ps.household_registration")
        .await
        .unwrap();
    assert!(!out.truncated);

    // The catalog is queryable beside the data.
    let big = open(&lake, None, 1000).await;
    assert_eq!(
        text_rows(&big, "select count(*) from catalog.datasets").await,
        vec!["22"]
    );
    assert_eq!(
        text_rows(
            &big,
            "select name, level, pii from catalog.fields where dataset = 'ps.household_registration' and primary_key"
        )
        .await,
        vec!["resident_id|4|id_number"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_reach_the_parquet_scan() {
    let (_dir, lake, _) = lake_with_history().await;
    let s = open(&lake, None, 1000).await;
    let plan = text_rows(
        &s,
        "explain select name from ps.household_registration where resident_id = 'k1'",
    )
    .await
    .join("\n");
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec") && l.contains("parquet"))
        .unwrap_or_else(|| panic!("no parquet scan in\n{plan}"));
    assert!(
        scan.contains("predicate=") && scan.contains("resident_id"),
        "the filter is not pushed into the scan:\n{plan}"
    );
    assert_eq!(
        text_rows(
            &s,
            "select name from ps.household_registration where resident_id = 'k1'"
        )
        .await,
        vec!["A2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_see_new_commits_after_the_registry_refreshes() {
    let (_dir, lake, _) = lake_with_history().await;
    let catalog = gdx_catalog::district::catalog();
    let registry = TableRegistry::open(&lake, &catalog).await.unwrap();
    let count = "select count(*) from ps.household_registration";
    let open = || async {
        LakeSession::open(&registry, Arc::new(AllowAll), &SessionOptions::default())
            .await
            .unwrap()
    };
    assert_eq!(text_rows(&open().await, count).await, vec!["3"]);
    let ds = dataset();
    append(
        &lake,
        &ds,
        &[("k5", "E", "2026-03-06T09:00:00+08:00", 0, 6, "upsert")],
    )
    .await;
    fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    // Until the registry reads the new commits, sessions read the snapshot they share.
    assert_eq!(text_rows(&open().await, count).await, vec!["3"]);
    let report = registry.refresh().await.unwrap();
    assert!(
        report
            .changed
            .contains(&"ps.household_registration".to_owned()),
        "{report:?}"
    );
    assert!(
        report
            .changed
            .contains(&"ps.household_registration_events".to_owned())
    );
    assert!(!report.changed.contains(&"hrss.pension".to_owned()));
    assert_eq!(text_rows(&open().await, count).await, vec!["4"]);
    // Nothing new: nothing changes.
    assert!(registry.refresh().await.unwrap().changed.is_empty());
}
