//! `gdx ingest` and `gdx publish` as processes against a broker in the test process
//! (librdkafka's mock cluster), landing in Delta tables in a temp dir.

mod common;

use std::io::Write;

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

    let out = common::publish(topic, &file, &brokers);
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
    let keys = common::sql_csv(
        &lake_dir,
        "select count(distinct _key) from ps.household_registration_events",
    );
    let distinct: u64 = keys.lines().nth(1).unwrap().trim().parse().unwrap();
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

/// The rules for values that differ from their schema (README "Values as sent"), through
/// `gdx publish` (which refuses what ingest would dead-letter, saying why) and through
/// `gdx ingest` (which lands every message as a row or a dead letter): accepted values are
/// exactly the values sent, refusals name the field and the rule and no part of the value.
#[test]
fn values_are_taken_as_sent_or_refused_by_rule_through_publish_and_ingest() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let topic = "tax.tax_paid";
    let uscc = "91350100M000100Y43";
    let rec =
        |year: &str, tax: &str| format!(r#"{{"uscc":"{uscc}","year":{year},"tax_paid":{tax}}}"#);
    // (value, Ok((year, tax_paid as text)) | Err((class, start of the message)))
    type Want = Result<(i32, &'static str), (&'static str, &'static str)>;
    let cases: Vec<(Vec<u8>, Want)> = vec![
        (rec("2001", "1234.05").into(), Ok((2001, "1234.05"))),
        (rec("\"2002\"", "\"1234.05\"").into(), Ok((2002, "1234.05"))),
        (rec("2003.0", "1234.050").into(), Ok((2003, "1234.05"))),
        (
            rec("2004", "98765432109876.54").into(),
            Ok((2004, "98765432109876.54")),
        ),
        (
            rec("2005.9", "1").into(),
            Err(("wrong_type", "field `year`: not a whole number")),
        ),
        (
            rec("3000000000", "1").into(),
            Err(("wrong_type", "field `year`: out of range for int32")),
        ),
        (
            rec("2006", "1234.056").into(),
            Err((
                "wrong_type",
                "field `tax_paid`: money has at most 2 decimal places",
            )),
        ),
        (
            format!(r#"{{"uscc":"{uscc}","year":2007,"tax_paid":1,"tax_paid_cny":1}}"#).into(),
            Err((
                "unknown_field",
                "field `tax_paid_cny` is not in the catalog's schema",
            )),
        ),
        (
            format!(r#"{{"uscc":"{uscc}","year":2008,"tax_paid":1,"tax_paid":2}}"#).into(),
            Err((
                "duplicate_field",
                "field `tax_paid` is given more than once",
            )),
        ),
        // Only on the wire (a feed file line holds JSON text): a byte-order mark, and GBK.
        (
            [b"\xEF\xBB\xBF".as_slice(), rec("2009", "9.9").as_bytes()].concat(),
            Ok((2009, "9.90")),
        ),
        // GBK: 张 is D5 C5.
        (
            [
                format!(r#"{{"uscc":"{uscc}","year":2010,"tax_paid":1,"revenue":""#).as_bytes(),
                b"\xD5\xC5\"}",
            ]
            .concat(),
            Err(("not_utf8", "value is not UTF-8 text")),
        ),
    ];
    let in_file = |v: &[u8]| !v.starts_with(b"\xEF\xBB\xBF") && std::str::from_utf8(v).is_ok();

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cases.jsonl");
    let mut text = String::new();
    let mut line_of = Vec::new();
    for (i, (v, _)) in cases.iter().enumerate() {
        if in_file(v) {
            text.push_str(&format!(
                "{{\"key\":\"{uscc}|{i}\",\"value\":{},\"event_time\":\"2025-01-01T08:30:00+08:00\"}}\n",
                std::str::from_utf8(v).unwrap()
            ));
            line_of.push((i, text.lines().count()));
        }
    }
    std::fs::write(&file, &text).unwrap();

    let cluster = EmbeddedBroker::new(1).unwrap();
    cluster.create_topic(topic, 1).unwrap();
    let brokers = cluster.bootstrap();
    let out = common::publish(topic, &file, &brokers);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let accepted_in_file = line_of.iter().filter(|(i, _)| cases[*i].1.is_ok()).count();
    for (i, line) in &line_of {
        let rejected = said
            .lines()
            .find(|l| l.contains(&format!(":{line}: rejected: ")));
        match &cases[*i].1 {
            Ok(_) => assert!(rejected.is_none(), "line {line}: {said}"),
            Err((class, why)) => {
                let l = rejected.unwrap_or_else(|| panic!("line {line} not refused: {said}"));
                assert!(l.contains(&format!("rejected: {class}: {why}")), "{l}");
            }
        }
    }
    assert!(
        said.contains(&format!(
            "{accepted_in_file} produced to {topic}, {} rejected",
            line_of.len() - accepted_in_file
        )),
        "{said}"
    );

    // Then every case as a department system would send it, straight onto the topic.
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    for (i, (v, _)) in cases.iter().enumerate() {
        let key = format!("{uscc}|{i}");
        gdx_ingest::publish::send_blocking(
            &producer,
            BaseRecord::<str, [u8]>::to(topic)
                .key(&key)
                .payload(v.as_slice()),
        )
        .unwrap();
    }
    producer.flush(std::time::Duration::from_secs(10)).unwrap();
    let produced = accepted_in_file + cases.len();

    let lake_dir = tmp.path().join("lake");
    let ingest = common::spawn_ingest(&brokers, &lake_dir, &[]);
    let lake = LakeLocation::parse(lake_dir.to_str().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = lake.events(&district::catalog().get(topic).unwrap().id);
    let accepted = cases.iter().filter(|(_, w)| w.is_ok()).count();
    let refused = cases.len() - accepted;
    let landed = common::wait_until(120, || {
        common::rows(&rt, &events) == (accepted_in_file + accepted) as u64
            && common::rows(&rt, &lake.dead_letters()) == refused as u64
    });
    common::terminate(&ingest);
    let stdout = common::stdout(&ingest.wait_with_output().unwrap());
    assert!(landed, "{stdout}");
    assert!(
        stdout.contains(&format!("ingest: {produced} messages")),
        "accepted + dead-lettered = produced: {stdout}"
    );
    let sql = |q: &str| common::sql_csv(&lake_dir, q);
    // The values as sent (the raw messages are the offsets after the published ones).
    let rows = sql(&format!(
        "select _offset, year, cast(tax_paid as varchar) from tax.tax_paid_events \
         where _offset >= {accepted_in_file} order by _offset"
    ));
    let letters = sql(
        "select \"offset\", error_class, error_message from system.dead_letters order by \"offset\"",
    );
    for (i, (_, want)) in cases.iter().enumerate() {
        let offset = accepted_in_file + i;
        let prefix = format!("{offset},");
        match want {
            Ok((year, tax)) => assert!(
                rows.lines().any(|l| l == format!("{offset},{year},{tax}")),
                "case {i}: {rows}"
            ),
            Err((class, why)) => {
                // (CSV quotes a message with a comma.)
                let l = letters
                    .lines()
                    .find(|l| l.starts_with(&prefix))
                    .unwrap_or_else(|| panic!("case {i}: {letters}"))
                    .replace('"', "");
                assert!(l.starts_with(&format!("{offset},{class},{why}")), "{l}");
                assert!(
                    !l.contains("2005.9") && !l.contains("1234.056") && !l.contains(uscc),
                    "{l}"
                );
            }
        }
    }
}
