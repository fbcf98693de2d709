//! Feeds through librdkafka's mock cluster into Delta tables in a temp dir: every message
//! lands exactly once, as an event row or a dead letter; a replay adds nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use gdx_catalog::district;
use gdx_ingest::broker::EmbeddedBroker;
use gdx_ingest::worker::{self, WorkerConfig};
use gdx_lake::LakeLocation;
use gdx_simulate::{self as simulate, Config, Quiet};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPICS: [&str; 3] = [
    "ps.household_registration",
    "nre.property_certificate",
    "mca.cremation",
];

/// (topic, partition, offset) → row counts in a table.
async fn counts(table: &url::Url, group_by_topic: bool) -> HashMap<String, (usize, usize)> {
    let mut out = HashMap::new();
    let Ok(t) = deltalake::open_table(table.clone()).await else {
        return out;
    };
    let ctx = SessionContext::new();
    ctx.register_table("t", t.table_provider().await.unwrap())
        .unwrap();
    let (topic, partition, offset) = if group_by_topic {
        ("topic", "partition", "\"offset\"")
    } else {
        ("_topic", "_partition", "_offset")
    };
    let sql = format!(
        "select {topic} as topic, count(*) as n, count(distinct ({partition}, {offset})) as d from t group by {topic}"
    );
    for b in ctx.sql(&sql).await.unwrap().collect().await.unwrap() {
        use datafusion::arrow::array::AsArray;
        let topics = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let topics = topics.as_string::<i32>();
        let n = b
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let d = b
            .column(2)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        for i in 0..b.num_rows() {
            out.insert(
                topics.value(i).to_owned(),
                (n.value(i) as usize, d.value(i) as usize),
            );
        }
    }
    out
}

fn produce(brokers: &str, feeds: &std::path::Path) -> HashMap<String, usize> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut produced = HashMap::new();
    for topic in TOPICS {
        let text = std::fs::read_to_string(feeds.join(format!("{topic}.jsonl"))).unwrap();
        for line in text.lines() {
            let ev: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = ev["key"].as_str().unwrap().to_owned();
            let value = (!ev["value"].is_null()).then(|| ev["value"].to_string());
            let headers = OwnedHeaders::new().insert(Header {
                key: "event-time",
                value: ev["event_time"].as_str(),
            });
            send(&producer, topic, &key, value.as_deref(), headers);
            *produced.entry(topic.to_owned()).or_insert(0) += 1;
        }
        // Bad input rides along: not JSON, and a record whose ID fails its check digit.
        send(
            &producer,
            topic,
            "bad-1",
            Some("{not json"),
            OwnedHeaders::new(),
        );
        send(&producer, topic, "bad-2", Some("[]"), OwnedHeaders::new());
        *produced.get_mut(topic).unwrap() += 2;
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    produced
}

fn send(p: &BaseProducer, topic: &str, key: &str, value: Option<&str>, headers: OwnedHeaders) {
    let mut record = BaseRecord::<str, str>::to(topic).key(key).headers(headers);
    if let Some(v) = value {
        record = record.payload(v);
    }
    gdx_ingest::publish::send_blocking(p, record).unwrap();
}

fn run_until(
    cfg: &WorkerConfig,
    rt: &tokio::runtime::Runtime,
    done: impl Fn() -> bool,
) -> worker::WorkerStats {
    let stop = Arc::new(AtomicBool::new(false));
    let catalog = Arc::new(district::catalog());
    let handle = rt.handle().clone();
    let (cfg2, stop2) = (cfg.clone(), stop.clone());
    let t = std::thread::Builder::new()
        .name("ingest-worker".into())
        .spawn(move || worker::run(&cfg2, catalog, handle, &stop2))
        .unwrap();
    let started = Instant::now();
    while !done() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let (stats, alarms) = t.join().unwrap().unwrap();
    assert!(alarms.is_empty(), "{alarms:?}");
    stats
}

#[test]
fn feeds_land_exactly_once_and_replays_add_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let feeds = tmp.path().join("feeds");
    let cfg = Config {
        people: 1_500,
        enterprises: 150,
        noise: 0.02,
        ..Config::default()
    };
    simulate::write_district(&cfg, &district::catalog(), &feeds, &Quiet).unwrap();

    let cluster = EmbeddedBroker::new(1).unwrap();
    for t in TOPICS {
        cluster.create_topic(t, 3).unwrap();
    }
    cluster.create_topic("zz.not_catalogued", 2).unwrap();
    let brokers = cluster.bootstrap();
    let produced = produce(&brokers, &feeds);
    {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        for i in 0..7 {
            send(
                &p,
                "zz.not_catalogued",
                &format!("k{i}"),
                Some("{}"),
                OwnedHeaders::new(),
            );
        }
        p.flush(Duration::from_secs(10)).unwrap();
    }
    let total: usize = produced.values().sum::<usize>() + 7;

    let lake = LakeLocation::parse(tmp.path().join("lake").to_str().unwrap()).unwrap();
    let mut wcfg = WorkerConfig::new(&brokers, lake.clone());
    wcfg.flush_interval = Duration::from_millis(300);
    wcfg.flush_rows = 2_000;
    let catalog = district::catalog();
    let events: Vec<url::Url> = TOPICS
        .iter()
        .map(|t| lake.events(&catalog.get(t).unwrap().id))
        .collect();
    let landed = || {
        rt.block_on(async {
            let mut n = 0;
            for e in &events {
                n += counts(e, false).await.values().map(|c| c.0).sum::<usize>();
            }
            n + counts(&lake.dead_letters(), true)
                .await
                .values()
                .map(|c| c.0)
                .sum::<usize>()
        })
    };
    let stats = run_until(&wcfg, &rt, || landed() >= total);
    assert_eq!(stats.messages, total, "{stats:?}");

    let check = || {
        rt.block_on(async {
            let dead = counts(&lake.dead_letters(), true).await;
            for (topic, url) in TOPICS.iter().zip(&events) {
                let rows = counts(url, false)
                    .await
                    .get(*topic)
                    .copied()
                    .unwrap_or((0, 0));
                let dl = dead.get(*topic).copied().unwrap_or((0, 0));
                assert_eq!(
                    rows.0, rows.1,
                    "{topic}: duplicate (partition, offset) in events"
                );
                assert_eq!(
                    dl.0, dl.1,
                    "{topic}: duplicate (partition, offset) in dead letters"
                );
                assert_eq!(
                    rows.0 + dl.0,
                    produced[*topic],
                    "{topic}: accepted + dead-lettered = produced"
                );
                assert!(dl.0 >= 2, "{topic}: the bad messages are dead letters");
            }
        })
    };
    check();
    let unknown = rt
        .block_on(counts(&lake.dead_letters(), true))
        .get("zz.not_catalogued")
        .copied();
    assert_eq!(
        unknown,
        Some((7, 7)),
        "messages of a topic outside the catalog are dead letters"
    );
    let classes = rt
        .block_on(gdx_lake::read::count_by(
            &lake.dead_letters(),
            "error_class",
        ))
        .unwrap();
    assert!(
        classes.iter().any(|(c, n)| c == "unknown_topic" && *n == 7),
        "{classes:?}"
    );

    // The same group again, and a new group with no committed offsets: the lake's own
    // offsets keep both from writing anything twice.
    let again = run_until(&wcfg, &rt, || false_after(Duration::from_secs(3)));
    assert_eq!(again.rows + again.dead_letters, 0, "{again:?}");
    let mut fresh = wcfg.clone();
    fresh.group = "another-group".into();
    let replay = run_until(&fresh, &rt, || false_after(Duration::from_secs(4)));
    assert_eq!(replay.rows + replay.dead_letters, 0, "{replay:?}");
    assert!(
        replay.skipped_duplicates == 0 && replay.messages == 0,
        "resumed after the lake's offsets: {replay:?}"
    );
    check();
}

/// An embedded broker with a one-partition `topic`, its bootstrap address, and a producer.
fn one_partition_feed(topic: &str) -> (EmbeddedBroker, String, BaseProducer) {
    let cluster = EmbeddedBroker::new(1).unwrap();
    cluster.create_topic(topic, 1).unwrap();
    let brokers = cluster.bootstrap();
    let producer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    (cluster, brokers, producer)
}

/// A valid `mca.cremation` record number `i`.
fn cremation(i: usize, funeral_home: &str) -> String {
    format!(
        r#"{{"cremation_no":"HH{i:011}","resident_id":"11010519491231002X","name":"张秀英","date_of_death":"2025-02-01","cremated_on":"2025-02-04","funeral_home":"{funeral_home}"}}"#
    )
}

/// A condition that becomes true after `d` (run a worker for a while).
fn false_after(d: Duration) -> bool {
    std::thread::sleep(d);
    true
}

#[test]
fn an_offset_lost_to_retention_raises_the_gap_alarm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let topic = "mca.cremation";
    let (_cluster, brokers, producer) = one_partition_feed(topic);
    let rec = |i: usize| cremation(i, &"武昌殡仪馆".repeat(40));
    for i in 0..50 {
        send(
            &producer,
            topic,
            &format!("HH{i:011}"),
            Some(&rec(i)),
            OwnedHeaders::new(),
        );
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let lake = LakeLocation::parse(tmp.path().join("lake").to_str().unwrap()).unwrap();
    let mut wcfg = WorkerConfig::new(&brokers, lake.clone());
    wcfg.flush_interval = Duration::from_millis(200);
    let events = lake.events(&district::catalog().get(topic).unwrap().id);
    let first = run_until(&wcfg, &rt, || {
        rt.block_on(counts(&events, false))
            .get(topic)
            .is_some_and(|c| c.0 == 50)
    });
    assert_eq!(first.rows, 50, "{first:?}");

    // While no worker runs, the broker keeps only its newest ~5 MB: older messages go.
    for i in 50..12_050 {
        send(
            &producer,
            topic,
            &format!("HH{i:011}"),
            Some(&rec(i)),
            OwnedHeaders::new(),
        );
    }
    producer.flush(Duration::from_secs(60)).unwrap();

    let stop = AtomicBool::new(false);
    let catalog = Arc::new(district::catalog());
    let handle = rt.handle().clone();
    let (stats, alarms) = std::thread::scope(|s| {
        let t = s.spawn(|| worker::run(&wcfg, catalog, handle, &stop));
        // Long enough to join the group and be assigned the partition.
        std::thread::sleep(Duration::from_secs(10));
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap().unwrap()
    });
    assert_eq!(
        stats.rows, 0,
        "the stopped partition is not consumed: {stats:?}"
    );
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let text = alarms[0].to_string();
    assert!(
        text.starts_with("offset gap on mca.cremation/0: the lake holds offsets up to 49"),
        "{text}"
    );
    assert!(matches!(
        alarms[0],
        worker::Error::OffsetGap { stored: 49, .. }
    ));
}

#[test]
fn a_burst_lands_once_the_consumer_is_caught_up_and_a_trickle_waits_for_the_interval() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let topic = "mca.cremation";
    let (_cluster, brokers, producer) = one_partition_feed(topic);
    let produce = |range: std::ops::Range<usize>| {
        for i in range {
            let value = cremation(i, "武昌殡仪馆");
            send(
                &producer,
                topic,
                &format!("HH{i:011}"),
                Some(&value),
                OwnedHeaders::new(),
            );
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    };
    produce(0..300);

    let lake = LakeLocation::parse(tmp.path().join("lake").to_str().unwrap()).unwrap();
    let mut wcfg = WorkerConfig::new(&brokers, lake.clone());
    // Neither the size nor the time trigger can fire during the test.
    wcfg.flush_rows = 1_000;
    wcfg.flush_interval = Duration::from_secs(600);
    let events = lake.events(&district::catalog().get(topic).unwrap().id);
    let rows = || {
        rt.block_on(counts(&events, false))
            .get(topic)
            .map_or(0, |c| c.0)
    };
    let stop = AtomicBool::new(false);
    let catalog = Arc::new(district::catalog());
    let handle = rt.handle().clone();
    let (burst, trickle, stats) = std::thread::scope(|s| {
        let t = s.spawn(|| worker::run(&wcfg, catalog, handle.clone(), &stop));
        let started = Instant::now();
        while rows() < 300 && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(200));
        }
        let burst = rows();
        // A trickle below a tenth of a run stays buffered until the interval.
        produce(300..320);
        std::thread::sleep(Duration::from_secs(3));
        let trickle = rows();
        // Stopped before asserting, so a failure cannot leave the worker running.
        stop.store(true, Ordering::Relaxed);
        (burst, trickle, t.join().unwrap().unwrap().0)
    });
    assert_eq!(
        burst, 300,
        "the burst (≥ a tenth of a run) landed when idle"
    );
    assert_eq!(trickle, 300, "20 rows are not committed on their own");
    assert_eq!(rows(), 320, "stopping lands the buffered trickle");
    assert_eq!((stats.rows, stats.commits), (320, 2), "{stats:?}");
}
