//! `gdx demo` on embedded defaults: every dataset of the district flows end to end, and the
//! rows per table equal what the simulator published (accepted + dead-lettered = published).

mod common;

use std::collections::HashMap;
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
}
