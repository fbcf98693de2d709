//! Major projects' timelines (重大项目全生命周期), checked against the simulator's ground
//! truth: every project of a `gdx demo` district through `GET /v1/projects/{code}/timeline`
//! and `gdx scenario projects overdue`, compared with what `_truth/projects.jsonl` (each
//! stage's real date, and the stages whose department never reported them) and the
//! district's limits, written out here, say as of the window's last day.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use common::exchange::Server;
use common::{gdx, stdout};
use serde_json::Value;

const AS_OF: &str = "2026-10-31";
/// The built-in limits (deploy/policies/project_stages.toml), written out.
const STAGES: [(&str, i64); 6] = [
    ("approval", 0),
    ("bidding", 180),
    ("land", 180),
    ("construction_permit", 120),
    ("quality_supervision", 60),
    ("completion", 720),
];

fn district() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::demo_district("projects", 500, 3000, 5))
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// What the truth says one project's timeline shows as of `as_of`: (status, flags).
struct Expected {
    code: String,
    /// (stage, date) the lake holds.
    recorded: Vec<(String, NaiveDate)>,
    status: &'static str,
    flags: Vec<String>,
    /// The stage it is stuck waiting for.
    stuck: Option<String>,
}

fn expected(truth: &Value, as_of: NaiveDate) -> Expected {
    let stages: Vec<(String, NaiveDate, bool)> = truth["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_owned(),
                d(s["date"].as_str().unwrap()),
                s["reported"].as_bool().unwrap(),
            )
        })
        .filter(|(_, date, _)| *date <= as_of)
        .collect();
    let recorded: Vec<(String, NaiveDate)> = stages
        .iter()
        .filter(|s| s.2)
        .map(|s| (s.0.clone(), s.1))
        .collect();
    let mut flags = Vec::new();
    let mut stuck = None;
    let last = STAGES
        .iter()
        .rposition(|(s, _)| recorded.iter().any(|r| r.0 == *s));
    let (mut anchor, mut allowed): (Option<NaiveDate>, i64) = (None, 0);
    for (i, (stage, limit)) in STAGES.iter().enumerate() {
        allowed += limit;
        match recorded.iter().find(|r| r.0 == *stage) {
            Some((_, date)) => {
                if let Some(a) = anchor
                    && (*date - a).num_days() > allowed
                {
                    flags.push(format!("{stage}:overdue"));
                }
                anchor = Some(*date);
                allowed = 0;
            }
            None if last.is_some_and(|l| l > i) => flags.push(format!("{stage}:gap")),
            None if stuck.is_none() && anchor.is_some() => {
                let due = anchor.unwrap() + chrono::Duration::days(allowed);
                let f = if as_of > due { "stuck" } else { "waiting" };
                flags.push(format!("{stage}:{f}"));
                stuck = Some((stage.to_string(), f == "stuck"));
            }
            None => {}
        }
    }
    let completed = recorded.iter().any(|r| r.0 == "completion");
    let is_stuck = stuck.as_ref().is_some_and(|s| s.1);
    Expected {
        code: truth["project_code"].as_str().unwrap().to_owned(),
        recorded,
        status: if completed {
            "completed"
        } else if is_stuck {
            "stuck"
        } else {
            "in_progress"
        },
        flags,
        stuck: stuck.filter(|s| s.1).map(|s| s.0),
    }
}

fn truth() -> Vec<Value> {
    common::jsonl(&district().join("feeds/_truth/projects.jsonl"))
}

#[test]
fn every_timeline_shows_what_the_truth_says_and_the_stuck_ones_are_listed() {
    let projects = truth();
    assert!(projects.len() >= 20, "{} projects", projects.len());
    let as_of = d(AS_OF);
    let all: Vec<Expected> = projects.iter().map(|p| expected(p, as_of)).collect();
    let server = Server::start_on(&district().join("lake"), &[]);
    let ndrc = server.principal("ndrc-sys", "ndrc", "department_system");
    let mut seen = BTreeSet::new();
    for e in &all {
        let r = server.get(
            &format!("/v1/projects/{}/timeline?as_of={AS_OF}", e.code),
            &ndrc,
        );
        assert_eq!(r.status, 200, "{}: {}", e.code, r.text());
        let t = r.json();
        let dates: Vec<(String, NaiveDate)> = t["stages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !s["date"].is_null())
            .map(|s| {
                (
                    s["stage"].as_str().unwrap().to_owned(),
                    d(s["date"].as_str().unwrap()),
                )
            })
            .collect();
        assert_eq!(dates, e.recorded, "{}", e.code);
        let flags: Vec<String> = t["stages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                let stage = s["stage"].as_str().unwrap().to_owned();
                s["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |f| format!("{stage}:{}", f.as_str().unwrap()))
            })
            .collect();
        assert_eq!(flags, e.flags, "{}", e.code);
        assert_eq!(t["status"], e.status, "{}", e.code);
        for f in &flags {
            seen.insert(f.split(':').nth(1).unwrap().to_owned());
        }
    }
    // The district has every kind: the planted gaps, stages recorded late, projects stuck.
    for kind in ["gap", "overdue", "stuck", "waiting"] {
        assert!(seen.contains(kind), "no {kind} in {seen:?}");
    }
    assert!(all.iter().any(|e| e.status == "completed"));

    // As of an earlier day, a later stage is not known yet.
    let e = all.iter().find(|e| e.recorded.len() >= 3).unwrap();
    let before = e.recorded[2].1.pred_opt().unwrap();
    let t = server
        .get(
            &format!("/v1/projects/{}/timeline?as_of={before}", e.code),
            &ndrc,
        )
        .json();
    let known = t["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["date"].is_null())
        .count();
    assert_eq!(known, 2, "{t}");

    // Refusals: no such project, not a project code, another department without a grant.
    let r = server.get(
        &format!("/v1/projects/2401-000000-04-01-999999/timeline?as_of={AS_OF}"),
        &ndrc,
    );
    assert_eq!(r.status, 404);
    let r = server.get("/v1/projects/x'%20or%20'1/timeline", &ndrc);
    assert_eq!((r.status, r.code()), (400, "bad_project_code".into()));
    let other = server.principal("mca-sys", "mca", "department_system");
    let r = server.get(&format!("/v1/projects/{}/timeline", e.code), &other);
    assert_eq!(r.status, 404);
    let audit = server.audit(&format!("object=project:{}", e.code));
    assert!(audit.iter().any(|r| r["outcome"] == "allowed"), "{audit:?}");

    // The CLI's list of stuck projects: exactly the truth's, most overdue first.
    let out = gdx(&[
        "scenario",
        "projects",
        "overdue",
        "--lake",
        district().join("lake").to_str().unwrap(),
        "--as-of",
        AS_OF,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: BTreeSet<(String, String)> = listed
        .iter()
        .map(|v| {
            (
                v["project_code"].as_str().unwrap().to_owned(),
                v["waiting_for"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = all
        .iter()
        .filter_map(|e| e.stuck.clone().map(|s| (e.code.clone(), s)))
        .collect();
    assert_eq!(got, want);
    let days: Vec<i64> = listed
        .iter()
        .map(|v| v["days_overdue"].as_i64().unwrap())
        .collect();
    assert!(days.windows(2).all(|w| w[0] >= w[1]) && days.iter().all(|d| *d > 0));
    // One timeline through the CLI equals the API's.
    let out = gdx(&[
        "scenario",
        "projects",
        "timeline",
        &e.code,
        "--lake",
        district().join("lake").to_str().unwrap(),
        "--as-of",
        AS_OF,
    ]);
    assert!(out.status.success());
    let cli: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let api = server
        .get(
            &format!("/v1/projects/{}/timeline?as_of={AS_OF}", e.code),
            &ndrc,
        )
        .json();
    assert_eq!(cli, api);
}
