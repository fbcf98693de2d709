//! Crash safety: `gdx ingest` killed with SIGKILL at points spread over a feed of 200,000
//! messages — good records, bad records of every class and records on a topic outside the
//! catalog, so every run takes the two-commit path (dead letters, then events) — restarted
//! every time, ends with every (topic, partition, offset) in the lake exactly once: in the
//! events or in the dead letters, never both, never twice. The producer runs alongside and is
//! held back by the group's lag, because the mock broker keeps only the newest ~5 MB per
//! partition.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gdx_catalog::{ResidentId, district};
use gdx_ingest::broker::EmbeddedBroker;
use gdx_ingest::broker::LagGate;
use gdx_lake::LakeLocation;
use gdx_lake::read::count_by;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOTAL: usize = 200_000;
const KILLS: usize = 10;

/// A topic named like a feed that the catalog does not have.
const UNKNOWN_TOPIC: &str = "mca.pet_licence";

/// Message `i` of the mixed feed: its topic, key, value, `event-time` header, and the
/// dead-letter class it must get (`None`: it must land as an event row). Every 50th is bad,
/// in each way in turn; every 50th (another one) goes to [`UNKNOWN_TOPIC`].
fn message(
    i: usize,
) -> (
    &'static str,
    String,
    Vec<u8>,
    &'static str,
    Option<&'static str>,
) {
    let (key, good) = record(i);
    let on_time = "2025-02-04T09:00:00+08:00";
    let one = |value: String, class| {
        (
            "mca.cremation",
            key.clone(),
            value.into_bytes(),
            on_time,
            class,
        )
    };
    if i % 50 == 25 {
        return (
            UNKNOWN_TOPIC,
            key,
            good.into_bytes(),
            on_time,
            Some("unknown_topic"),
        );
    }
    if i % 50 != 49 {
        return one(good, None);
    }
    match (i / 50) % 8 {
        0 => one(good[..good.len() / 2].to_owned(), Some("not_json")),
        1 => {
            let mut v = good.replace("张秀英", "").into_bytes();
            let at = v.windows(9).position(|w| w == b"\"name\":\"\"").unwrap() + 8;
            v.splice(at..at, *b"\xD5\xC5");
            ("mca.cremation", key, v, on_time, Some("not_utf8"))
        }
        2 => one(good.replace("2025-02-01", "2025-02-30"), Some("wrong_type")),
        3 => one(good.replace("\"张秀英\"", "null"), Some("missing_field")),
        4 => one(
            good.replace(&format!("\"cremation_no\":\"{key}\","), ""),
            Some("missing_key"),
        ),
        5 => one(
            good.replace("}", ",\"remarks\":\"x\"}"),
            Some("unknown_field"),
        ),
        6 => one(
            good.replace("}", ",\"name\":\"李四\"}"),
            Some("duplicate_field"),
        ),
        _ => (
            "mca.cremation",
            key,
            good.into_bytes(),
            "yesterday",
            Some("bad_event_time"),
        ),
    }
}

fn record(i: usize) -> (String, String) {
    let birth = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).unwrap()
        + chrono::Duration::days((i % 20_000) as i64);
    let id = ResidentId::compose(420106, birth, (i / 20_000 * 2 + 1) as u16);
    // Every 1000th record has a wrong check digit: flagged (policy `flag`), still accepted.
    let rid = if i % 1000 == 500 {
        format!(
            "{}{}",
            &id.as_str()[..17],
            if id.as_str().ends_with('0') { '1' } else { '0' }
        )
    } else {
        id.as_str().to_owned()
    };
    let key = format!("HH{i:010}");
    let value = format!(
        r#"{{"cremation_no":"{key}","resident_id":"{rid}","name":"张秀英","date_of_death":"2025-02-01","cremated_on":"2025-02-04","funeral_home":"武昌殡仪馆"}}"#
    );
    (key, value)
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let topic = "mca.cremation";
    let cluster = EmbeddedBroker::new(1).unwrap();
    cluster.create_topic(topic, 4).unwrap();
    cluster.create_topic(UNKNOWN_TOPIC, 2).unwrap();
    let brokers = cluster.bootstrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");

    let (producer_thread, produced, stop, _) =
        start_producer(&brokers, topic, TOTAL, true, usize::MAX);

    // Each worker is killed while it is landing data: once the lake has grown under it,
    // after a further 0–800 ms (deterministic spread), i.e. mid-batch, mid-commit or between.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = LakeLocation::parse(lake_dir.to_str().unwrap()).unwrap();
    let events = lake.events(&district::catalog().get(topic).unwrap().id);
    let dead_letters = lake.dead_letters();
    let expected: Vec<Option<&str>> = (0..TOTAL).map(|i| message(i).4).collect();
    let good = expected.iter().filter(|c| c.is_none()).count();
    let mut kill_points = Vec::new();
    for k in 0..KILLS {
        let before = common::rows(&rt, &events);
        let mut child = common::spawn_ingest(&brokers, &lake_dir, &[]);
        assert!(
            common::wait_until(120, || common::rows(&rt, &events) > before),
            "worker {k} landed nothing"
        );
        std::thread::sleep(Duration::from_millis((k as u64 * 397) % 800));
        child.kill().unwrap(); // SIGKILL: no flush, no goodbye to the group
        child.wait().unwrap();
        kill_points.push((produced.load(Ordering::Relaxed), common::rows(&rt, &events)));
    }
    eprintln!("(produced, rows in the lake) at each SIGKILL: {kill_points:?}");
    let mid_feed = kill_points.iter().filter(|(p, _)| *p < TOTAL).count();
    assert!(
        mid_feed >= KILLS,
        "only {mid_feed} kills landed while the feed was running: {kill_points:?}"
    );

    let last = common::spawn_ingest(&brokers, &lake_dir, &[]);
    let landed = common::wait_until(600, || {
        produced.load(Ordering::Relaxed) == TOTAL
            && common::rows(&rt, &events) as usize >= good
            && common::rows(&rt, &dead_letters) as usize >= TOTAL - good
    });
    stop.store(true, Ordering::Relaxed);
    producer_thread.join().unwrap();
    common::terminate(&last);
    let out = last.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        landed,
        "only {} of {good} event rows and {} of {} dead letters landed",
        common::rows(&rt, &events),
        common::rows(&rt, &dead_letters),
        TOTAL - good
    );

    // Every offset of both topics once, in one table: the events and the dead letters
    // together are the feed.
    let sql = |q: &str| common::sql_csv(&lake_dir, q);
    let all = "(select _topic t, _partition p, _offset o from mca.cremation_events \
               union all select topic t, \"partition\" p, \"offset\" o from system.dead_letters)";
    let per_partition = sql(&format!(
        "select t, p, count(*), count(distinct o), max(o) + 1 from {all} group by t, p order by t, p"
    ));
    let mut total = 0;
    for l in per_partition.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let (rows, distinct, next): (usize, usize, usize) = (
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
        );
        assert_eq!(
            (rows, distinct),
            (next, next),
            "{l}: a hole or a duplicate\n{per_partition}"
        );
        total += rows;
    }
    assert_eq!(
        total, TOTAL,
        "events + dead letters = produced\n{per_partition}"
    );
    let classes = sql(
        "select error_class, count(*) from system.dead_letters group by error_class order by error_class",
    );
    let mut want: std::collections::BTreeMap<&str, usize> = Default::default();
    for c in expected.iter().flatten() {
        *want.entry(c).or_default() += 1;
    }
    let want: String = want.iter().map(|(c, n)| format!("{c},{n}\n")).collect();
    assert_eq!(
        classes
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
        want
    );
    let flagged = rt.block_on(count_by(&events, "_flags")).unwrap();
    let want_flagged = (0..TOTAL)
        .filter(|i| i % 1000 == 500 && expected[*i].is_none())
        .count();
    assert!(
        flagged
            .iter()
            .any(|(f, n)| f == "resident_id" && *n as usize == want_flagged),
        "{flagged:?}"
    );
}

/// Produces `total` records to `topic` on a thread, held back by the ingest group's lag.
/// Produces `total` records in a thread; the producer waits at `hold_from` records until the
/// returned `release` flag is set (`usize::MAX`: never), so a test can act mid-feed however
/// fast the machine runs.
fn start_producer(
    brokers: &str,
    topic: &'static str,
    total: usize,
    mixed: bool,
    hold_from: usize,
) -> (
    std::thread::JoinHandle<()>,
    Arc<AtomicUsize>,
    Arc<AtomicBool>,
    Arc<AtomicBool>,
) {
    let produced = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let handle = {
        let (brokers, produced, stop, release) = (
            brokers.to_owned(),
            produced.clone(),
            stop.clone(),
            release.clone(),
        );
        std::thread::spawn(move || {
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("linger.ms", "5")
                .create()
                .unwrap();
            let gate = LagGate::new(&brokers, "gdx-ingest", 3_000).unwrap();
            for i in 0..total {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if i == hold_from {
                    p.flush(Duration::from_secs(30)).unwrap();
                    while !release.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                if i % 2_000 == 0 {
                    p.flush(Duration::from_secs(30)).unwrap();
                    gate.wait(topic).unwrap();
                }
                let (t, k, v, time, _) = if mixed {
                    message(i)
                } else {
                    let (k, v) = record(i);
                    (topic, k, v.into_bytes(), "2025-02-04T09:00:00+08:00", None)
                };
                let headers =
                    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                        key: "event-time",
                        value: Some(time),
                    });
                gdx_ingest::publish::send_blocking(
                    &p,
                    BaseRecord::to(t).key(&k).payload(&v).headers(headers),
                )
                .unwrap();
                produced.fetch_add(1, Ordering::Relaxed);
            }
            p.flush(Duration::from_secs(30)).unwrap();
        })
    };
    (handle, produced, stop, release)
}

/// Every offset of every partition exactly once, none missing; returns the row count.
fn assert_exactly_once(rt: &tokio::runtime::Runtime, events: &url::Url, total: usize) {
    let per_partition = rt.block_on(count_by(events, "_partition")).unwrap();
    let rows: u64 = per_partition.iter().map(|(_, n)| n).sum();
    assert_eq!(rows as usize, total, "{per_partition:?}");
    let distinct = rt.block_on(datafusion_check::distinct_offsets(events));
    assert_eq!(distinct, total as u64, "duplicate (partition, offset) rows");
}

#[test]
fn two_workers_then_one_leaves_mid_feed() {
    two_workers_then_one_goes_mid_feed(Leaving::Stopped);
}

#[test]
fn two_workers_then_one_is_killed_mid_feed() {
    two_workers_then_one_goes_mid_feed(Leaving::Killed);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaving {
    /// SIGTERM: it lands what it holds and leaves the group.
    Stopped,
    /// SIGKILL: no flush, no goodbye; the group notices after the session timeout.
    Killed,
}

/// Two workers share a feed; one goes while it runs, and the other takes over its partitions
/// from the offsets the lake holds.
fn two_workers_then_one_goes_mid_feed(how: Leaving) {
    const N: usize = 60_000;
    let topic = "mca.cremation";
    let cluster = EmbeddedBroker::new(1).unwrap();
    cluster.create_topic(topic, 4).unwrap();
    let brokers = cluster.bootstrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = LakeLocation::parse(lake_dir.to_str().unwrap()).unwrap();
    let events = lake.events(&district::catalog().get(topic).unwrap().id);

    let mut a = common::spawn_ingest(&brokers, &lake_dir, &[]);
    let b = common::spawn_ingest(&brokers, &lake_dir, &[]);
    // The feed holds half-way until worker A has gone: A always leaves mid-feed.
    let (producer_thread, produced, _stop, release) =
        start_producer(&brokers, topic, N, false, N / 2);
    assert!(common::wait_until(120, || common::rows(&rt, &events) >= (N / 3) as u64));
    match how {
        Leaving::Stopped => {
            common::terminate(&a);
            let out = a.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Leaving::Killed => {
            a.kill().unwrap();
            a.wait().unwrap();
        }
    }
    assert!(
        produced.load(Ordering::Relaxed) < N,
        "the feed ended before worker A left"
    );
    release.store(true, Ordering::Relaxed);
    assert!(
        common::wait_until(300, || common::rows(&rt, &events) as usize >= N),
        "only {} rows",
        common::rows(&rt, &events)
    );
    producer_thread.join().unwrap();
    common::terminate(&b);
    let out = b.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&rt, &events, N);
}

/// A broker that comes back empty under a new cluster id (a rebuilt cluster): its partitions
/// are new logs, read from their beginning — the offsets the lake holds for the old cluster
/// must not make ingest skip them.
#[test]
fn a_broker_that_comes_back_empty_with_a_new_cluster_id_is_read_from_the_beginning() {
    let topic = "mca.cremation";
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = LakeLocation::parse(lake_dir.to_str().unwrap()).unwrap();
    let events = lake.events(&district::catalog().get(topic).unwrap().id);
    let produce = |brokers: &str, range: std::ops::Range<usize>| {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .unwrap();
        for i in range {
            let (k, v) = record(i);
            gdx_ingest::publish::send_blocking(&p, BaseRecord::to(topic).key(&k).payload(&v))
                .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
    };
    let land = |brokers: &str, rows: u64| {
        let worker = common::spawn_ingest(brokers, &lake_dir, &[]);
        let landed = common::wait_until(120, || common::rows(&rt, &events) >= rows);
        common::terminate(&worker);
        let out = worker.wait_with_output().unwrap();
        assert!(landed, "{} of {rows} rows", common::rows(&rt, &events));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        common::stdout(&out)
    };
    let old = EmbeddedBroker::new(1).unwrap();
    old.create_topic(topic, 2).unwrap();
    produce(&old.bootstrap(), 0..3_000);
    land(&old.bootstrap(), 3_000);
    // The new cluster is made while the old one still exists, so it has another id.
    let new = EmbeddedBroker::new(1).unwrap();
    drop(old);
    new.create_topic(topic, 2).unwrap();
    produce(&new.bootstrap(), 3_000..4_000);
    let said = land(&new.bootstrap(), 4_000);
    assert!(said.contains("ingest: 1000 messages"), "{said}");
    assert_eq!(common::rows(&rt, &events), 4_000);
    let keys = rt
        .block_on(gdx_lake::read::count_by(&events, "_key"))
        .unwrap();
    assert_eq!(keys.len(), 4_000, "every record once");
}

mod datafusion_check {
    /// Distinct (partition, offset) pairs, and that each partition's offsets are 0..n without holes.
    pub(super) async fn distinct_offsets(url: &url::Url) -> u64 {
        let rows = gdx_lake::read::count_by(url, "_partition").await.unwrap();
        let mut distinct = 0;
        for (p, n) in rows {
            let offs = gdx_lake::read::distinct_offsets(url, p.parse().unwrap())
                .await
                .unwrap();
            assert_eq!(
                offs.0, n,
                "partition {p}: {} rows but {} distinct offsets",
                n, offs.0
            );
            assert_eq!(
                (offs.1 + 1) as u64,
                offs.0,
                "partition {p}: offsets have a hole (max {} for {} offsets)",
                offs.1,
                offs.0
            );
            distinct += offs.0;
        }
        distinct
    }
}

/// SIGKILL part-way through `gdx lake fold` and through `gdx lake optimize`: the next run
/// ends in the same `current` tables and profiles as runs never killed.
#[test]
fn a_fold_and_a_compaction_killed_part_way_end_where_unbroken_runs_do() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    let out = common::gdx(&[
        "demo",
        "--data-dir",
        demo.to_str().unwrap(),
        "--people",
        "3000",
        "--enterprises",
        "300",
        "--seed",
        "5",
        "--no-exchange",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two copies of the demo's lake with only its events: the fold rebuilds every `current`
    // and `deleted` table, then the profiles.
    let catalog = district::catalog();
    let copies = ["unbroken", "killed"].map(|name| {
        let dir = tmp.path().join(name);
        let ok = std::process::Command::new("cp")
            .args([
                "-a",
                demo.join("lake").to_str().unwrap(),
                dir.to_str().unwrap(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        for ds in catalog.datasets() {
            for kind in ["current", "deleted"] {
                let t = dir.join(ds.id.department()).join(ds.id.name()).join(kind);
                if t.exists() {
                    std::fs::remove_dir_all(t).unwrap();
                }
            }
        }
        std::fs::remove_dir_all(dir.join("profiles")).unwrap();
        dir
    });
    let [unbroken, killed] = &copies;
    let lake_of = |d: &std::path::Path| d.to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let o = common::gdx(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };

    run(&["lake", "fold", "--lake", &lake_of(unbroken)]);
    run(&["profiles", "build", "--lake", &lake_of(unbroken)]);
    let fold_kills = kill_part_way(&["lake", "fold", "--lake", &lake_of(killed)]);
    run(&["lake", "fold", "--lake", &lake_of(killed)]);
    run(&["profiles", "build", "--lake", &lake_of(killed)]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_same_state(&rt, unbroken, killed, "after the fold");

    run(&["lake", "optimize", "--lake", &lake_of(unbroken)]);
    let optimize_kills = kill_part_way(&["lake", "optimize", "--lake", &lake_of(killed)]);
    run(&["lake", "optimize", "--lake", &lake_of(killed)]);
    // New events after compaction fold on top of it alike.
    run(&["lake", "fold", "--lake", &lake_of(unbroken)]);
    run(&["lake", "fold", "--lake", &lake_of(killed)]);
    assert_same_state(&rt, unbroken, killed, "after compaction");
    eprintln!("kills part-way: {fold_kills} folds, {optimize_kills} compactions");
    assert!(
        fold_kills >= 2 && optimize_kills >= 2,
        "{fold_kills} {optimize_kills}"
    );
}

/// Starts `gdx ARGS` again and again, SIGKILLing each run that is still going after a
/// growing delay, until one finishes by itself; returns how many were killed.
fn kill_part_way(args: &[&str]) -> usize {
    let mut kills = 0;
    for delay_ms in (1..).map(|k| 150 * k) {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gdx"))
            .args(args)
            .env_remove("GDX_CATALOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_some() {
            return kills;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        assert!(kills < 100, "{args:?} never finishes");
    }
    unreachable!()
}

/// Every `current` table and profile of two lakes holds the same rows.
fn assert_same_state(
    rt: &tokio::runtime::Runtime,
    a: &std::path::Path,
    b: &std::path::Path,
    when: &str,
) {
    let (a, b) = (
        LakeLocation::parse(a.to_str().unwrap()).unwrap(),
        LakeLocation::parse(b.to_str().unwrap()).unwrap(),
    );
    let mut tables: Vec<(String, url::Url, url::Url)> = district::catalog()
        .datasets()
        .map(|ds| (ds.id.to_string(), a.current(&ds.id), b.current(&ds.id)))
        .collect();
    for p in ["citizen", "enterprise"] {
        tables.push((format!("profiles.{p}"), a.profile(p), b.profile(p)));
    }
    let mut compared = 0;
    for (name, ta, tb) in tables {
        let rows = |t: &url::Url| {
            let mut r = rt
                .block_on(gdx_lake::read::all_rows_text(t, "select * from t"))
                .unwrap();
            r.sort();
            r
        };
        let (ra, rb) = (rows(&ta), rows(&tb));
        assert_eq!(ra.len(), rb.len(), "{when}: {name}");
        if let Some(i) = (0..ra.len()).find(|i| ra[*i] != rb[*i]) {
            panic!("{when}: {name} differs at row {i} of {}", ra.len());
        }
        compared += ra.len();
    }
    assert!(compared > 10_000, "{when}: only {compared} rows compared");
}
