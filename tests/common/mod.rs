//! Helpers shared by the end-to-end tests: they run the real `gdx` binary.

#![allow(dead_code, unreachable_pub)]

pub mod exchange;

use std::path::Path;
use std::process::{Command, Output};

pub fn gdx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args(args)
        .env_remove("GDX_CATALOG")
        .output()
        .expect("run gdx")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn simulate(out: &Path, people: usize, enterprises: usize, seed: u64, noise: f64) -> Output {
    let o = gdx(&[
        "simulate",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--people",
        &people.to_string(),
        "--enterprises",
        &enterprises.to_string(),
        "--seed",
        &seed.to_string(),
        "--noise",
        &noise.to_string(),
    ]);
    assert!(
        o.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A fresh `gdx demo --no-exchange` district under the test target dir, in a folder
/// `<prefix>-<pid>` (folders of earlier runs with the same prefix are removed first); returns
/// the folder (its `lake/` and `feeds/`).
pub fn demo_district(
    prefix: &str,
    people: usize,
    enterprises: usize,
    seed: u64,
) -> std::path::PathBuf {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{prefix}-"))
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{prefix}-{}", std::process::id()));
    let out = gdx(&[
        "demo",
        "--data-dir",
        dir.to_str().unwrap(),
        "--people",
        &people.to_string(),
        "--enterprises",
        &enterprises.to_string(),
        "--seed",
        &seed.to_string(),
        "--no-exchange",
    ]);
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Kills a child process if the test panics before it has stopped it: a process left running
/// holds a core and slows every test after it.
pub struct KillOnPanic(pub u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
}

/// Sends SIGTERM (a graceful stop) to a child.
pub fn terminate(child: &std::process::Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Rows in a lake table (0 when it does not exist yet).
pub fn rows(rt: &tokio::runtime::Runtime, url: &url::Url) -> u64 {
    rt.block_on(gdx_lake::read::row_count(url)).unwrap()
}

/// The JSON values of a JSON-lines file (the simulator's feeds and ground truth).
pub fn jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The feed lines (`{"key", "value", …}`) of `feeds` whose record the simulator's noise broke
/// (a bad check digit or a missing field: dead-lettered, or an identifier that joins nothing),
/// per the truth's noise log: what they are about may differ from the truth by design.
pub fn broken_lines(feeds: &std::path::Path) -> Vec<serde_json::Value> {
    let mut by_topic: std::collections::BTreeMap<String, std::collections::HashSet<usize>> =
        Default::default();
    for n in jsonl(&feeds.join("_truth/noise.jsonl")) {
        if matches!(
            n["kind"].as_str(),
            Some("bad_check_digit" | "missing_field")
        ) {
            by_topic
                .entry(n["topic"].as_str().unwrap().to_owned())
                .or_default()
                .insert(n["line"].as_u64().unwrap() as usize);
        }
    }
    let mut out = Vec::new();
    for (topic, hit) in by_topic {
        for (i, l) in jsonl(&feeds.join(format!("{topic}.jsonl")))
            .into_iter()
            .enumerate()
        {
            if hit.contains(&(i + 1)) {
                out.push(l);
            }
        }
    }
    out
}

/// Spawns `gdx ingest` against `brokers`, writing into `lake`.
pub fn spawn_ingest(brokers: &str, lake: &Path, extra: &[&str]) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args([
            "ingest",
            "--brokers",
            brokers,
            "--lake",
            lake.to_str().unwrap(),
            "--flush-ms",
            "300",
            "--session-timeout-ms",
            "3000",
        ])
        .args(extra)
        .env_remove("GDX_CATALOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn gdx ingest");
    drain_stderr(&mut child);
    child
}

/// Copies a long-running child's log lines to the test's own output as they come (shown
/// when the test fails): a pipe nobody reads fills up and blocks the child mid-write.
pub fn drain_stderr(child: &mut std::process::Child) {
    use std::io::BufRead;
    let (pid, err) = (child.id(), child.stderr.take().expect("stderr piped"));
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            eprintln!("[gdx {pid}] {line}");
        }
    });
}

/// Polls `cond` every 200 ms until it holds or `secs` pass.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    cond()
}

/// `gdx sql --lake LAKE --format csv QUERY`: its stdout.
pub fn sql_csv(lake: &Path, query: &str) -> String {
    stdout(&gdx(&[
        "sql",
        "--lake",
        lake.to_str().unwrap(),
        "--format",
        "csv",
        query,
    ]))
}

/// `gdx publish --dataset TOPIC --file FILE --brokers BROKERS` (validating, as users run it).
pub fn publish(topic: &str, file: &Path, brokers: &str) -> Output {
    gdx(&[
        "publish",
        "--dataset",
        topic,
        "--file",
        file.to_str().unwrap(),
        "--brokers",
        brokers,
    ])
}

/// Every message of `topic` from its start: how often each outcome id (header
/// `gdx-outcome-id`) occurs, and the payloads by id. Read by a consumer of the test's own.
pub fn read_topic(
    brokers: &str,
    topic: &str,
) -> (
    std::collections::BTreeMap<String, usize>,
    std::collections::BTreeMap<String, serde_json::Value>,
) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "gdx-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let timeout = std::time::Duration::from_secs(10);
    let md = consumer.fetch_metadata(Some(topic), timeout).unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut left = std::collections::BTreeSet::new();
    for t in md.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout).unwrap();
            assert_eq!(low, 0, "{topic} lost messages");
            if high > 0 {
                tpl.add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning)
                    .unwrap();
                left.insert(p.id());
            }
        }
    }
    let (mut counts, mut payloads) = (
        std::collections::BTreeMap::new(),
        std::collections::BTreeMap::new(),
    );
    if left.is_empty() {
        return (counts, payloads);
    }
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        match consumer.poll(std::time::Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let id = m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == "gdx-outcome-id")
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                });
                if let Some(id) = id {
                    *counts.entry(id.clone()).or_insert(0) += 1;
                    if let Some(p) = m.payload() {
                        payloads.insert(id, serde_json::from_slice(p).unwrap_or_default());
                    }
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                left.remove(&p);
            }
            Some(Err(e)) => panic!("{topic}: {e}"),
            None => {}
        }
    }
    assert!(left.is_empty(), "{topic}: not read to its end");
    (counts, payloads)
}
