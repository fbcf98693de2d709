//! Crash safety: `gdx ingest` killed with SIGKILL at points spread over a feed of 200,000
//! messages, restarted every time, ends with every (topic, partition, offset) in the lake
//! exactly once. The producer runs alongside and is held back by the group's lag, because the
//! mock broker keeps only the newest ~5 MB per partition.

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

fn record(i: usize) -> (String, String) {
    let birth = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).unwrap()
        + chrono::Duration::days((i % 20_000) as i64);
    let id = ResidentId::compose(420106, birth, (i / 20_000 * 2 + 1) as u16);
    // Every 1000th record has a wrong check digit: flagged (policy `flag`), still accepted.
    let rid = if i % 1000 == 999 {
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
    let brokers = cluster.bootstrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");

    let (producer_thread, produced, stop) = start_producer(&brokers, topic, TOTAL);

    // Each worker is killed while it is landing data: once the lake has grown under it,
    // after a further 0–800 ms (deterministic spread), i.e. mid-batch, mid-commit or between.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = LakeLocation::parse(lake_dir.to_str().unwrap()).unwrap();
    let events = lake.events(&district::catalog().get(topic).unwrap().id);
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
        produced.load(Ordering::Relaxed) == TOTAL && common::rows(&rt, &events) as usize >= TOTAL
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
        "only {} of {TOTAL} rows landed",
        common::rows(&rt, &events)
    );

    assert_exactly_once(&rt, &events, TOTAL);
    let flagged = rt.block_on(count_by(&events, "_flags")).unwrap();
    assert!(
        flagged
            .iter()
            .any(|(f, n)| f == "resident_id" && *n as usize == TOTAL / 1000),
        "{flagged:?}"
    );
}

/// Produces `total` records to `topic` on a thread, held back by the ingest group's lag.
fn start_producer(
    brokers: &str,
    topic: &'static str,
    total: usize,
) -> (
    std::thread::JoinHandle<()>,
    Arc<AtomicUsize>,
    Arc<AtomicBool>,
) {
    let produced = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (brokers, produced, stop) = (brokers.to_owned(), produced.clone(), stop.clone());
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
                if i % 2_000 == 0 {
                    p.flush(Duration::from_secs(30)).unwrap();
                    gate.wait(topic).unwrap();
                }
                let (k, v) = record(i);
                gdx_ingest::publish::send_blocking(&p, BaseRecord::to(topic).key(&k).payload(&v))
                    .unwrap();
                produced.fetch_add(1, Ordering::Relaxed);
            }
            p.flush(Duration::from_secs(30)).unwrap();
        })
    };
    (handle, produced, stop)
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

    let a = common::spawn_ingest(&brokers, &lake_dir, &[]);
    let b = common::spawn_ingest(&brokers, &lake_dir, &[]);
    let (producer_thread, produced, _stop) = start_producer(&brokers, topic, N);
    assert!(common::wait_until(120, || common::rows(&rt, &events) >= (N / 3) as u64));
    // Worker A leaves the group gracefully while the feed is still running.
    common::terminate(&a);
    let out = a.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        produced.load(Ordering::Relaxed) < N,
        "the feed ended before worker A left"
    );
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
