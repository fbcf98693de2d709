//! `gdx demo` on embedded defaults: every dataset of the district flows end to end, and the
//! rows per table equal what the simulator published (accepted + dead-lettered = published).

mod common;
#[path = "common/personal_data.rs"]
mod personal_data;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

#[test]
fn every_dataset_of_the_district_flows_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args([
            "demo",
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "--people",
            "1500",
            "--enterprises",
            "150",
            "--seed",
            "3",
            "--no-exchange",
        ])
        .env_remove("GDX_CATALOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("broker: 127.0.0.1:"),
        "{stdout}"
    );

    // Published events per topic, from the simulator's own summary.
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("feeds/_truth/summary.json")).unwrap(),
    )
    .unwrap();
    let published: HashMap<String, u64> = summary["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["topic"].as_str().unwrap().to_owned(),
                f["events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(published.len(), 22);

    // Rows per events table and dead letters per topic, read from the lake itself.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = gdx_lake::LakeLocation::parse(tmp.path().join("lake").to_str().unwrap()).unwrap();
    let dead: HashMap<String, u64> = rt
        .block_on(gdx_lake::read::count_by(&lake.dead_letters(), "topic"))
        .unwrap()
        .into_iter()
        .collect();
    let catalog = gdx_catalog::district::catalog();
    for ds in catalog.datasets() {
        let rows = common::rows(&rt, &lake.events(&ds.id));
        let dl = dead.get(&ds.topic).copied().unwrap_or(0);
        assert!(rows > 0, "{}: no rows", ds.id);
        assert_eq!(
            rows + dl,
            published[&ds.topic],
            "{}: {rows} rows + {dl} dead letters",
            ds.id
        );
    }
    // Exactly the records the simulator broke beyond repair are dead letters: a wrong check
    // digit on a field whose policy is `reject` (full-width digits, lowercase x, spaces and
    // legacy IDs normalise; `flag` fields are kept).
    let mut expected: HashMap<String, u64> = HashMap::new();
    for line in std::fs::read_to_string(tmp.path().join("feeds/_truth/noise.jsonl"))
        .unwrap()
        .lines()
    {
        let n: serde_json::Value = serde_json::from_str(line).unwrap();
        let ds = catalog.get(n["topic"].as_str().unwrap()).unwrap();
        let field = ds.field(n["field"].as_str().unwrap()).unwrap();
        if n["kind"] == "bad_check_digit" && field.check == Some(gdx_catalog::CheckPolicy::Reject) {
            *expected.entry(ds.topic.clone()).or_default() += 1;
        }
    }
    assert_eq!(
        dead, expected,
        "dead letters per topic against the noise the simulator applied"
    );
    assert!(
        stdout.contains("accepted ") && stdout.contains(" published"),
        "{stdout}"
    );

    // The demo folded everything into `current` and built the profiles.
    for ds in catalog.datasets() {
        assert!(
            common::rows(&rt, &lake.current(&ds.id)) > 0,
            "{}: current is empty",
            ds.id
        );
    }
    profiles_match_the_ground_truth(tmp.path(), &catalog);
    personal_data::no_personal_data_in_any_delta_log(&tmp.path().join("lake"), &catalog);
    the_printed_commands_work_as_printed(&stdout);
    sql_on_the_demo_lake(tmp.path());
}

/// Every `try:` line that runs this binary works when pasted into a shell as printed (after
/// `cargo run --release -- demo` there is no `gdx` on the PATH).
fn the_printed_commands_work_as_printed(stdout: &str) {
    let tries: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "try:")
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.starts_with("python3") && !l.starts_with("duckdb"))
        .collect();
    assert!(tries.len() >= 5, "{stdout}");
    for line in tries {
        assert!(!line.starts_with("gdx "), "not runnable as printed: {line}");
        let o = Command::new("sh").args(["-c", line]).output().unwrap();
        assert!(
            o.status.success() && !o.stdout.is_empty(),
            "{line}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `gdx sql` on the demo's lake: formats, errors, the prompt, and profiles as of a date.
fn sql_on_the_demo_lake(data: &Path) {
    let lake = data.join("lake");
    let lake = lake.to_str().unwrap();
    let by_status =
        "select household_status, count(*) as n from profiles.citizen group by 1 order by 1";
    let csv = common::gdx(&["sql", "--lake", lake, "--format", "csv", by_status]);
    assert!(
        csv.status.success(),
        "{}",
        String::from_utf8_lossy(&csv.stderr)
    );
    let text = common::stdout(&csv);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("household_status,n"));
    let statuses: Vec<&str> = lines.collect();
    assert!(statuses.iter().any(|l| l.starts_with("active,")), "{text}");
    assert!(
        statuses.iter().any(|l| l.starts_with("deceased,")),
        "{text}"
    );

    // The state as of the window's last day, rebuilt from events, gives the same profiles.
    let as_of = common::gdx(&[
        "sql",
        "--lake",
        lake,
        "--as-of",
        "2026-10-31",
        "--format",
        "csv",
        by_status,
    ]);
    assert!(
        as_of.status.success(),
        "{}",
        String::from_utf8_lossy(&as_of.stderr)
    );
    assert_eq!(common::stdout(&as_of), text);

    let out = data.join("enterprises.parquet");
    let pq = common::gdx(&[
        "sql",
        "--lake",
        lake,
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
        "select uscc, size_class, tags from profiles.enterprise",
    ]);
    assert!(
        pq.status.success(),
        "{}",
        String::from_utf8_lossy(&pq.stderr)
    );
    assert_eq!(&std::fs::read(&out).unwrap()[..4], b"PAR1");

    let bad = common::gdx(&[
        "sql",
        "--lake",
        lake,
        "select * from ps.household_registraton",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("did you mean ps.household_registration"),
        "{err}"
    );
    let write = common::gdx(&["sql", "--lake", lake, "delete from profiles.citizen"]);
    assert_eq!(write.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&write.stderr).contains("read-only"));

    // The prompt reads statements ending in `;` until `\q`.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args(["sql", "--lake", lake])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(
                b"select count(*) as datasets\n  from catalog.datasets;\nselect nope;\n\\q\n",
            )
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| datasets |") && stdout.contains("| 22 "),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    the_prompt_through_a_terminal(lake);
    sql_as_a_reader_with_a_policy(data);
}

/// The prompt on a real pseudo-terminal (`script` gives `gdx sql` one): the up arrow recalls
/// the last statement, statements span lines, `\dt` and `\d TABLE` describe what the reader
/// sees, Ctrl-C cancels a running query and the prompt stays, and the history is kept in an
/// owner-only file for the next session.
fn the_prompt_through_a_terminal(lake: &str) {
    use std::io::Write;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    // `exec`: the shell `script` starts gives way to gdx, so Ctrl-C reaches gdx alone (dash,
    // CI's /bin/sh, would otherwise stay as gdx's parent and die of the SIGINT, exit 130).
    let command = format!(
        "exec {} sql --lake {lake} --history {}",
        env!("CARGO_BIN_EXE_gdx"),
        history.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env("SHELL", "/bin/sh")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs gdx sql on a pseudo-terminal");
    let mut stdin = child.stdin.take().unwrap();
    // Read as it comes, so a full pipe never stalls the terminal.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut all).unwrap();
        all
    });
    let mut send = |bytes: &[u8], wait_ms: u64| {
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
    };
    send(b"select 40 + 2 as answer;\r", 1500);
    // The up arrow: the statement again.
    send(b"\x1b[A\r", 1500);
    // (Each line sent once the prompt waits for it, as a person types: the line editor
    // drops input typed ahead while it switches the terminal's mode.)
    send(b"select 'multi'\r", 1000);
    send(b"   as word;\r", 1500);
    send(b"\\dt\r", 1000);
    send(b"\\d ps.household_registration\r", 1500);
    // A query that would run for hours, cancelled with Ctrl-C; the prompt stays.
    send(
        b"select count(*) from ps.household_registration a, ps.household_registration b, \
          ps.household_registration c where a.name < b.name and b.name < c.name;\r",
        3000,
    );
    send(b"\x03", 1500);
    send(b"select 7 * 6 as again;\r", 1500);
    send(b"\\q\r", 0);
    // The terminal stays open until gdx has left: closing it first would hang it up
    // (SIGHUP) on a slow machine still leaving.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = reader.join().unwrap();
    let text = String::from_utf8_lossy(&stdout);
    assert!(
        out.status.success(),
        "{}: {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("| 42     |").count(), 2, "{text}");
    assert!(text.contains("| multi |"), "{text}");
    assert!(text.contains("ps.household_registration"), "{text}");
    assert!(
        text.contains("resident_id") && text.contains("Utf8"),
        "{text}"
    );
    assert!(text.contains("query cancelled"), "{text}");
    assert!(
        text.contains("| again |") && text.contains("| 42    |"),
        "{text}"
    );
    // Kept for the next session, readable by its owner only.
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(kept.contains("select 40 + 2 as answer;"), "{kept}");
    assert!(kept.contains("select 'multi'"), "{kept}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&history).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// `gdx sql --policy FILE`: the operator sees the lake as a street office would.
fn sql_as_a_reader_with_a_policy(data: &Path) {
    let lake_dir = data.join("lake");
    let lake = lake_dir.to_str().unwrap();
    let busiest = query(
        &lake_dir,
        "select street, count(*) as n from ps.household_registration group by street order by n desc, street limit 1",
    );
    let street = s(&busiest[0], "street").unwrap();
    let policy = data.join("street-office.toml");
    std::fs::write(
        &policy,
        format!(
            "[[tables]]\nname = \"ps.household_registration\"\nrows = \"street = '{street}'\"\n\
             [tables.column]\nresident_id = \"pseudonym\"\n"
        ),
    )
    .unwrap();
    let key = data.join("pseudonym.key");
    std::fs::write(&key, "a-district-secret-of-some-length\n").unwrap();
    let run = |sql: &str, with_key: bool| {
        let mut args = vec!["sql", "--lake", lake, "--format", "csv"];
        let policy = policy.to_str().unwrap();
        args.extend(["--policy", policy]);
        if with_key {
            args.extend(["--pseudonym-key-file", key.to_str().unwrap()]);
        }
        args.push(sql);
        common::gdx(&args)
    };
    let o = run(
        "select count(*) as n, count(distinct street) as streets, min(resident_id) as id, min(name) as name \
         from ps.household_registration",
        true,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = common::stdout(&o);
    let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], v(&busiest[0], "n").to_string(), "{text}");
    assert_eq!(row[1], "1", "{text}");
    assert!(row[2].starts_with("p_"), "{text}");
    assert!(row[3].contains('*'), "names are masked: {text}");
    // Other tables do not exist for this reader, and say so as missing ones do.
    let hidden = run("select * from mca.cremation", true);
    let missing = run("select * from mca.cremations", true);
    assert_eq!(hidden.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&hidden.stderr).replace("cremation\"", "X\""),
        String::from_utf8_lossy(&missing.stderr).replace("cremations\"", "X\""),
    );
    // A policy that asks for pseudonyms without a key is refused before any query runs.
    let o = run("select 1", false);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no pseudonym key is configured"), "{err}");
    assert!(!err.contains(&street), "{err}");
}

type Row = serde_json::Map<String, serde_json::Value>;

/// Every row of a query, through `gdx sql --format json`.
fn query(lake: &Path, sql: &str) -> Vec<Row> {
    let out = common::gdx(&[
        "sql",
        "--lake",
        lake.to_str().unwrap(),
        "--format",
        "json",
        "--max-rows",
        "10000000",
        sql,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Row>(l).unwrap())
        .collect()
}

/// `field` of every feed line of `topic` that ingest accepted (a wrong check digit on a
/// `reject` field is the one thing the simulator does that ingest turns away), as the
/// canonical identifier.
fn accepted(
    feeds: &Path,
    topic: &str,
    field: &str,
    rejected: &HashSet<(String, usize)>,
    canonical: impl Fn(&str) -> Option<String>,
) -> HashSet<String> {
    common::jsonl(&feeds.join(format!("{topic}.jsonl")))
        .iter()
        .enumerate()
        .filter(|(i, _)| !rejected.contains(&(topic.to_owned(), i + 1)))
        .filter_map(|(_, l)| {
            let v = &l["value"];
            let rec = if v["after"].is_object() {
                &v["after"]
            } else {
                v
            };
            rec[field].as_str().and_then(&canonical)
        })
        .collect()
}

/// A column of a JSON row (the JSON writer leaves nulls out).
fn v(row: &Row, k: &str) -> serde_json::Value {
    row.get(k).cloned().unwrap_or(serde_json::Value::Null)
}

fn s(row: &Row, k: &str) -> Option<String> {
    row.get(k).and_then(|v| match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    })
}

fn profiles_match_the_ground_truth(data: &Path, catalog: &gdx_catalog::Catalog) {
    let feeds = data.join("feeds");
    let lake = data.join("lake");
    let mut rejected = HashSet::new();
    for n in common::jsonl(&feeds.join("_truth/noise.jsonl")) {
        let ds = catalog.get(n["topic"].as_str().unwrap()).unwrap();
        let field = ds.field(n["field"].as_str().unwrap()).unwrap();
        if n["kind"] == "bad_check_digit" && field.check == Some(gdx_catalog::CheckPolicy::Reject) {
            rejected.insert((ds.topic.clone(), n["line"].as_u64().unwrap() as usize));
        }
    }
    let resident = |s: &str| {
        gdx_catalog::ResidentId::parse(s)
            .ok()
            .map(|r| r.as_str().to_owned())
    };
    let uscc = |s: &str| {
        gdx_catalog::Uscc::parse(s)
            .ok()
            .map(|u| u.as_str().to_owned())
    };

    // Residents: everyone the police registered or a birth certificate names has exactly one
    // profile, with the right status, dates and tags.
    let mut reported = accepted(
        &feeds,
        "ps.household_registration",
        "resident_id",
        &rejected,
        resident,
    );
    reported.extend(accepted(
        &feeds,
        "nhc.birth_certificate",
        "child_id",
        &rejected,
        resident,
    ));
    let profiles = query(&lake, "select * from profiles.citizen");
    let mut by_id: HashMap<String, Row> = HashMap::new();
    for p in profiles {
        let id = s(&p, "resident_id").unwrap();
        assert!(
            by_id.insert(id.clone(), p).is_none(),
            "two profiles for one resident"
        );
    }
    let truth = common::jsonl(&feeds.join("_truth/residents.jsonl"));
    let end = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    let mut checked = 0;
    for t in &truth {
        let id = t["resident_id"].as_str().unwrap();
        let Some(p) = by_id.get(id) else {
            assert!(
                !reported.contains(id),
                "resident reported to a department has no profile"
            );
            continue;
        };
        checked += 1;
        let status = t["status"].as_str().unwrap();
        let ctx = format!("resident {}…: truth {t}, profile {p:?}", &id[..6]);
        let died = t["deceased_on"]
            .as_str()
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        // A death in the last two days of the window may not have reached any department.
        let unreported_death = status == "deceased"
            && died.is_some_and(|d| d > end - chrono::Duration::days(2))
            && s(p, "household_status").as_deref() == Some("active");
        if unreported_death {
            continue;
        }
        assert_eq!(s(p, "household_status").as_deref(), Some(status), "{ctx}");
        assert_eq!(
            s(p, "deceased_on"),
            t["deceased_on"].as_str().map(String::from),
            "{ctx}"
        );
        assert_eq!(
            s(p, "moved_out_on"),
            t["moved_out_on"].as_str().map(String::from),
            "{ctx}"
        );
        assert_eq!(
            s(p, "household_id").as_deref(),
            t["household_id"].as_str(),
            "{ctx}"
        );
        assert_eq!(
            s(p, "birth_date").as_deref(),
            t["birth_date"].as_str(),
            "{ctx}"
        );
        assert_eq!(v(p, "living_alone"), t["living_alone"], "{ctx}");
        assert_eq!(v(p, "disability_grade"), t["disability_grade"], "{ctx}");
        assert_eq!(v(p, "property_count"), t["properties"], "{ctx}");
        if status == "active" {
            // Benefits currently received (the truth also counts benefits of the dead).
            assert_eq!(v(p, "pension"), t["pension"], "{ctx}");
            assert_eq!(
                v(p, "subsistence_allowance_family"),
                t["subsistence_allowance"],
                "{ctx}"
            );
            // The demo builds profiles as of today, the truth is as of the window's end.
            let tags = s(p, "tags").unwrap_or_default();
            let age = v(p, "age").as_i64().unwrap();
            let truth_age = t["age"].as_i64().unwrap();
            assert!(age == truth_age || age == truth_age + 1, "{ctx}");
            assert_eq!(
                tags.split(',').any(|t| t == "elderly_70"),
                age >= 70,
                "{ctx}"
            );
            assert_eq!(
                tags.split(',').any(|t| t == "elderly_living_alone"),
                age >= 70 && t["living_alone"] == true,
                "{ctx}"
            );
        }
    }
    assert!(
        checked * 100 >= truth.len() * 95,
        "only {checked} of {} residents checked",
        truth.len()
    );
    let truth_ids: HashSet<&str> = truth
        .iter()
        .map(|t| t["resident_id"].as_str().unwrap())
        .collect();
    assert!(
        by_id.keys().all(|k| truth_ids.contains(k.as_str())),
        "a profile for nobody"
    );

    // Enterprises: every registered enterprise has exactly one profile.
    let registered = accepted(
        &feeds,
        "amr.enterprise_registration",
        "uscc",
        &rejected,
        uscc,
    );
    let mut by_uscc: HashMap<String, Row> = HashMap::new();
    for p in query(&lake, "select * from profiles.enterprise") {
        let id = s(&p, "uscc").unwrap();
        assert!(
            by_uscc.insert(id, p).is_none(),
            "two profiles for one enterprise"
        );
    }
    let truth = common::jsonl(&feeds.join("_truth/enterprises.jsonl"));
    for t in &truth {
        let id = t["uscc"].as_str().unwrap();
        let Some(p) = by_uscc.get(id) else {
            assert!(
                !registered.contains(id),
                "registered enterprise {id} has no profile"
            );
            continue;
        };
        let ctx = format!("enterprise {id}: truth {t}, profile {p:?}");
        let status = t["status"].as_str().unwrap();
        assert_eq!(s(p, "status").as_deref(), Some(status), "{ctx}");
        assert_eq!(
            s(p, "cancelled_on").as_deref(),
            t["cancelled_on"].as_str(),
            "{ctx}"
        );
        assert_eq!(
            s(p, "high_tech_recognised_on").as_deref(),
            t["high_tech_recognised_on"].as_str(),
            "{ctx}"
        );
        assert_eq!(
            v(p, "above_scale_first_year"),
            t["above_scale_first_year"],
            "{ctx}"
        );
        let listed = t["abnormal_removed_on"]
            .is_null()
            .then(|| t["abnormal_listed_on"].as_str())
            .flatten();
        assert_eq!(s(p, "abnormal_listed_on").as_deref(), listed, "{ctx}");
        assert_eq!(
            s(p, "size_class").as_deref(),
            t["size_class"].as_str(),
            "{ctx}"
        );
        if status == "active" {
            assert_eq!(v(p, "insured_headcount"), t["insured_headcount"], "{ctx}");
        }
    }
    assert!(by_uscc.len() * 100 >= truth.len() * 95);
}

/// `gdx demo` ends by serving the exchange over the new lake: its printed principals and
/// curl calls, pasted in order into a shell, show a denied read, a grant request and its
/// approval, the masked read after it and the audit trail; the chain verifies.
#[test]
fn the_demo_serves_the_exchange_and_its_printed_calls_work_as_printed() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args([
            "demo",
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "--people",
            "300",
            "--enterprises",
            "30",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("GDX_CATALOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _reaper = common::KillOnPanic(child.id());
    let mut script = String::from("set -e\n");
    let mut in_calls = false;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the demo ended early:\n{script}"
        );
        if line.starts_with("demo principals") {
            in_calls = true;
        } else if line.starts_with("exchange ready") {
            break;
        } else if in_calls && line.starts_with("  ") {
            script.push_str(line.trim_start());
        }
    }
    assert!(script.contains("curl"), "{script}");
    let run = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let said = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{script}\n{said}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let answers: Vec<&str> = said.lines().collect();
    assert!(answers[0].contains("\"not_found\""), "{said}");
    assert!(answers[1].starts_with("g-"), "{said}");
    assert!(answers[2].contains("\"status\":\"active\""), "{said}");
    let read: serde_json::Value = serde_json::from_str(answers[3]).unwrap();
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{said}");
    assert!(
        rows.iter()
            .all(|r| r["resident_id"].as_str().unwrap().contains("********"))
    );
    assert!(
        rows.iter()
            .all(|r| r["name"].as_str().unwrap().contains('*'))
    );
    let audit: serde_json::Value = serde_json::from_str(answers[4]).unwrap();
    let outcomes: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"denied") && outcomes.contains(&"allowed"),
        "{said}"
    );
    assert!(said.contains("chain intact"), "{said}");
    // A certificate verified by the registration centre's window: one bit.
    assert!(said.contains("\"result\":\"match\""), "{said}");
    // Civil affairs' allowance run: committed to the ledger.
    assert!(said.contains("\"month\":\"2026-10\""), "{said}");
    assert!(said.contains("\"recoveries\":"), "{said}");
    // Civil affairs' 应享未享: its three benefits' findings.
    assert!(
        said.contains("\"benefit\":\"disability_subsidy\"")
            && said.contains("\"entitled_not_receiving\":"),
        "{said}"
    );
    // psql over pgwire, as ps's own system.
    assert!(said.contains(" residents"), "{said}");
    assert!(said.contains("(3 rows)"), "{said}");
    common::terminate(&child);
    assert!(child.wait().unwrap().success());
}
