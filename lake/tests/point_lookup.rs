//! A lookup by key on `current` reads what can hold the key, not the table: the fold writes
//! `current` sorted by key with statistics in its Parquet files, and a lookup's row filter,
//! handed to the scan, skips the row groups and pages whose key range cannot hold the key and
//! decodes only the key column of the rest until a row matches. `EXPLAIN ANALYZE` says so. After
//! a merged fold the answers stay those of the newest rows.

mod common;

use std::sync::Arc;

use common::{append, dataset};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use gdx_lake::fold::{FoldOptions, fold};
use gdx_lake::policy::{Access, AllowAll, TableInfo};
use gdx_lake::sql::{LakeSession, SessionOptions};
use gdx_lake::{LakeLocation, TablePolicy, TableRegistry};

const KEYS: usize = 60_000;

/// The operator limited to one key of the register, with the limit handed to the scan, as
/// the exchange asks for a profile by its subject when its index does not serve it.
#[derive(Debug)]
struct OneKey(String);

impl TablePolicy for OneKey {
    fn access(&self, t: &TableInfo) -> Access {
        use datafusion::prelude::{col, lit};
        match AllowAll.access(t) {
            Access::Read(mut a) if t.name == "ps.household_registration" => {
                a.rows = Some(col("resident_id").eq(lit(self.0.clone())));
                a.push_rows = true;
                Access::Read(a)
            }
            other => other,
        }
    }

    fn governed(&self) -> bool {
        false
    }

    fn label(&self) -> String {
        "one-key".into()
    }
}

/// Column `c` of `b` as text.
fn texts(b: &RecordBatch, c: usize) -> Vec<String> {
    let c = cast(b.column(c), &DataType::Utf8).unwrap();
    let c = c.as_string::<i32>();
    (0..c.len()).map(|i| c.value(i).to_owned()).collect()
}

fn key(i: usize) -> String {
    format!("k{i:06}")
}

/// A lake whose `current` holds keys `k000000`… one file sorted by key (a full fold).
async fn folded() -> (tempfile::TempDir, LakeLocation, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let ds = dataset();
    let names: Vec<String> = (0..KEYS).map(|i| format!("n{i}")).collect();
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let events: Vec<common::Ev<'_>> = (0..KEYS)
        .map(|i| {
            (
                keys[i].as_str(),
                names[i].as_str(),
                "09:00",
                0,
                i as i64,
                "upsert",
            )
        })
        .collect();
    append(&lake, &ds, &events).await;
    assert!(
        fold(&lake, &ds, &FoldOptions::default())
            .await
            .unwrap()
            .full
    );
    (dir, lake, keys)
}

/// The names `policy` reads from the register, and the `EXPLAIN ANALYZE` of that read.
async fn read(registry: &TableRegistry, policy: Arc<dyn TablePolicy>) -> (Vec<String>, String) {
    let s = LakeSession::open(registry, policy, &SessionOptions::default())
        .await
        .unwrap();
    let sql = "select resident_id, name from ps.household_registration";
    let out = s.query(sql).await.unwrap();
    let names = out.batches.iter().flat_map(|b| texts(b, 1)).collect();
    let out = s.query(&format!("explain analyze {sql}")).await.unwrap();
    let plan = out
        .batches
        .iter()
        .flat_map(|b| texts(b, 1))
        .collect::<Vec<_>>()
        .join("\n");
    (names, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_by_key_decodes_one_page_of_the_key_column_and_only_the_matching_row() {
    let (_dir, lake, _) = folded().await;
    let catalog = gdx_catalog::district::catalog();
    let registry = TableRegistry::open(&lake, &catalog).await.unwrap();
    // (key, its name, the row groups whose key range can hold it)
    for (wanted, name, groups) in [
        (0, Some("n0"), 1.0),
        (50_000, Some("n50000"), 1.0),
        (KEYS - 1, Some("n59999"), 1.0),
        (KEYS + 1, None, 0.0),
    ] {
        let (names, plan) = read(&registry, Arc::new(OneKey(key(wanted)))).await;
        assert_eq!(names, name.into_iter().collect::<Vec<_>>(), "{wanted}");
        // The policy's filter reaches the Parquet scan: a row group whose key range cannot
        // hold the key is skipped on its statistics (the key column is personal, so only
        // the files, never the Delta log, hold its bounds); in the others only the key
        // column is decoded until a row matches, and only that row is read whole.
        let scans = parquet_scans(&plan);
        assert_eq!(scans.len(), 1, "{wanted}\n{plan}");
        assert!(
            scans[0].contains("predicate=resident_id@"),
            "{wanted}\n{plan}"
        );
        assert_eq!(
            sum(&scans, "row_groups_pruned_statistics"),
            (1.0, groups),
            "{wanted}\n{plan}"
        );
        let read: f64 = scans.iter().map(|l| count(value(l, "output_rows"))).sum();
        assert_eq!(read, groups, "{wanted}: rows read\n{plan}");
        if groups > 0.0 {
            let matched = count(value(scans[0], "pushdown_rows_matched"));
            assert_eq!(matched, 1.0, "{wanted}\n{plan}");
            // And of the key column only the page whose bounds can hold the key (Parquet's
            // page index: 3 pages of about 20,000 rows here).
            let (pages, kept) = sum(&scans, "page_index_pages_pruned");
            assert_eq!((pages, kept), (3.0, 1.0), "{wanted}\n{plan}");
            let (total, matched) = sum(&scans, "page_index_rows_pruned");
            assert_eq!(total, KEYS as f64, "{wanted}\n{plan}");
            assert!(matched < total / 2.0, "{wanted}\n{plan}");
        }
    }
}

/// After a merged fold, lookups answer from the newest rows: a superseded row, dropped by
/// its deletion vector, never comes back, whatever the scan skips. (delta-rs 1.1 hands the
/// Parquet scans of a table with deletion vectors no filter — `DeltaScanExec` rejects one
/// — so such a read decodes every row until the next rewriting fold: docs/commands.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_on_a_merged_current_answer_from_the_newest_rows() {
    let (_dir, lake, keys) = folded().await;
    let ds = dataset();
    // A small change is merged: a second file holding only those keys, the rows it
    // supersedes marked in a deletion vector. Key 107 is deleted.
    let changed: Vec<common::Ev<'_>> = (100..110)
        .map(|i| {
            let op = if i == 107 { "delete" } else { "upsert" };
            (
                keys[i].as_str(),
                "changed",
                "10:00",
                0,
                (KEYS + i) as i64,
                op,
            )
        })
        .collect();
    append(&lake, &ds, &changed).await;
    let r = fold(&lake, &ds, &FoldOptions::default()).await.unwrap();
    assert!(r.merged, "{r:?}");

    let catalog = gdx_catalog::district::catalog();
    let registry = TableRegistry::open(&lake, &catalog).await.unwrap();
    for (wanted, name) in [
        (50_000, Some("n50000")),
        (99, Some("n99")),
        (105, Some("changed")),
        (107, None),
    ] {
        let (names, _) = read(&registry, Arc::new(OneKey(key(wanted)))).await;
        assert_eq!(names, name.into_iter().collect::<Vec<_>>(), "{wanted}");
    }
    // A range read by the operator (21 keys, 107 deleted, 9 changed).
    let s = LakeSession::open(&registry, Arc::new(AllowAll), &SessionOptions::default())
        .await
        .unwrap();
    let out = s
        .query(
            "select count(*), sum(case when name = 'changed' then 1 else 0 end) \
             from ps.household_registration where resident_id between 'k000095' and 'k000115'",
        )
        .await
        .unwrap();
    let b = &out.batches[0];
    assert_eq!(
        (texts(b, 0), texts(b, 1)),
        (vec!["20".into()], vec!["9".into()])
    );
}

/// The lines of the Parquet scans in an `EXPLAIN ANALYZE` plan.
fn parquet_scans(plan: &str) -> Vec<&str> {
    plan.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("DataSourceExec") && l.contains("file_type=parquet"))
        .collect()
}

/// The value of metric `name` on one plan line.
fn value<'a>(line: &'a str, name: &str) -> &'a str {
    let at = [' ', '[']
        .iter()
        .find_map(|before| line.find(&format!("{before}{name}=")))
        .unwrap_or_else(|| panic!("no {name} in\n{line}"));
    let rest = &line[at + name.len() + 2..];
    let end = rest.find([',', ']']).unwrap_or(rest.len());
    rest[..end].trim()
}

/// A count as `EXPLAIN ANALYZE` prints it (`12`, `60.00 K`, `1.20 M`).
fn count(s: &str) -> f64 {
    let (n, scale) = match s.split_once(' ') {
        Some((n, "K")) => (n, 1e3),
        Some((n, "M")) => (n, 1e6),
        _ => (s, 1.0),
    };
    n.parse::<f64>()
        .unwrap_or_else(|_| panic!("not a count: {s}"))
        * scale
}

/// A pruning metric (`… total → … matched`) summed over the scans.
fn sum(scans: &[&str], name: &str) -> (f64, f64) {
    scans.iter().fold((0.0, 0.0), |(t, m), l| {
        let v = value(l, name);
        let (total, matched) = v.split_once(" total → ").unwrap();
        let matched = matched.split(" matched").next().unwrap();
        (t + count(total), m + count(matched))
    })
}
