//! `gdx ingest` and `gdx publish` as processes against a broker in the test process
//! (librdkafka's mock cluster), landing in Delta tables in a temp dir.

mod common;

use std::io::Write;
use std::process::Command;

use gdx_catalog::district;
use gdx_ingest::broker::EmbeddedBroker;
use gdx_lake::LakeLocation;
use gdx_simulate::{self as simulate, Config, Quiet};

#[test]
fn publish_validates_and_ingest_lands_everything_then_stops_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let feeds = tmp.path().join("feeds");
    let cfg = Config {
        people: 800,
        enterprises: 80,
        noise: 0.0,
        ..Config::default()
    };
    simulate::write_district(&cfg, &district::catalog(), &feeds, &Quiet).unwrap();
    let topic = "ps.household_registration";
    let good = std::fs::read_to_string(feeds.join(format!("{topic}.jsonl"))).unwrap();
    let good_lines = good.lines().count();
    let file = tmp.path().join("with-bad-lines.jsonl");
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(good.as_bytes()).unwrap();
    let first: serde_json::Value = serde_json::from_str(good.lines().next().unwrap()).unwrap();
    let mut bad_id = first.clone();
    bad_id["value"]["resident_id"] = "110105194912310021".into();
    writeln!(f, "{{not json").unwrap();
    writeln!(f, "{{\"value\": {{}}}}").unwrap();
    writeln!(f, "{bad_id}").unwrap();
    drop(f);

    let cluster = EmbeddedBroker::new(1).unwrap();
    cluster.create_topic(topic, 3).unwrap();
    let brokers = cluster.bootstrap();
    let lake_dir = tmp.path().join("lake");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let ingest = common::spawn_ingest(&brokers, &lake_dir, &["--metrics", &metrics_addr, "--fold"]);

    let out = Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args([
            "publish",
            "--dataset",
            topic,
            "--file",
            file.to_str().unwrap(),
            "--brokers",
            &brokers,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let n = good_lines;
    assert!(
        text.contains(&format!(":{}: rejected: not JSON", n + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!(":{}: rejected: no \"key\" string", n + 2)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ":{}: rejected: bad_check_digit: field `resident_id`",
            n + 3
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{n} produced to {topic}, 3 rejected")),
        "{text}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = LakeLocation::parse(lake_dir.to_str().unwrap()).unwrap();
    let events = lake.events(&district::catalog().get(topic).unwrap().id);
    assert!(
        common::wait_until(120, || common::rows(&rt, &events) == n as u64),
        "rows: {}",
        common::rows(&rt, &events)
    );

    // Prometheus metrics while it runs. The counters move when the worker takes a landed
    // run back, a moment after its commit is visible in the lake.
    let committed = format!("gdx_ingest_rows_committed_total{{topic=\"{topic}\"}} {n}");
    let mut metrics = String::new();
    let counted = common::wait_until(10, || {
        metrics = http_get(&metrics_addr, "/metrics");
        metrics.contains(&committed)
    });
    assert!(counted, "{metrics}");
    assert!(metrics.contains("gdx_ingest_commit_seconds"), "{metrics}");
    assert!(
        !metrics.contains("张") && !metrics.contains("420106"),
        "metrics carry no personal data"
    );

    common::terminate(&ingest);
    let out = ingest.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "ingest: {n} messages, {n} event rows, 0 dead letters"
        )),
        "{stdout}"
    );
    assert_eq!(common::rows(&rt, &events), n as u64);
    // With --fold, the shutdown folded everything into `current` (one row per resident ID)
    // and built the profiles.
    let id = district::catalog().get(topic).unwrap().id.clone();
    let keys = common::gdx(&[
        "sql",
        "--lake",
        lake_dir.to_str().unwrap(),
        "--format",
        "csv",
        "select count(distinct _key) from ps.household_registration_events",
    ]);
    let distinct: u64 = common::stdout(&keys)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(common::rows(&rt, &lake.current(&id)), distinct);
    assert_eq!(common::rows(&rt, &lake.profile("citizen")), distinct);
    assert!(stdout.contains("fold: "), "{stdout}");
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// `gdx bench ingest` on a small backlog: both sides, the stages and the ceiling they set are
/// measured and reported (the stages fail the run if a record is lost or dead-lettered).
#[test]
fn bench_ingest_reports_the_bare_limit_gdx_and_the_ceiling_its_stages_set() {
    let o = common::gdx(&["bench", "ingest", "--records", "5000", "--partitions", "4"]);
    let out = common::stdout(&o);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = |start: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{out}"))
            .to_owned()
    };
    // The first number after `label`, e.g. "= 2.80 µs" → 2.80.
    let number_after = |l: &str, label: &str| -> f64 {
        let rest = &l[l.find(label).unwrap_or_else(|| panic!("{label:?} in {l}")) + label.len()..];
        rest.split_whitespace()
            .find_map(|w| {
                w.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("a number after {label:?} in {l}"))
    };
    let stages = line("(c) each stage alone");
    let (consume, decode, write, sum) = (
        number_after(&stages, "consume"),
        number_after(&stages, "decode and check"),
        number_after(&stages, "Parquet and commit"),
        number_after(&stages, "="),
    );
    for v in [consume, decode, write] {
        assert!(v > 0.0, "{stages}");
    }
    assert!(
        (consume + decode + write - sum).abs() < 0.03,
        "the stages add up: {stages}"
    );
    let ceiling = line("(c) ceiling on");
    let rate = number_after(&ceiling, ":");
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(
        (rate - cores * 1e6 / sum).abs() / rate < 0.01,
        "ceiling = cores / the stages' sum: {ceiling}"
    );
    assert!(number_after(&ceiling, "=") > 0.0, "{ceiling}");
    let need = line("(c) 50 % of bare would need");
    assert!(
        (number_after(&need, "(now") - (decode + write)).abs() < 0.02,
        "{need}"
    );
    assert!(line("ratio gdx / bare (steady state)").contains('%'));
    assert!(line("events table (Parquet)").contains("files"));
}
