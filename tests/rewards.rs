//! Enterprise reward policies (云兑现) decided over the lake, checked against the simulator's
//! ground truth: each example policy of `deploy/policies/rewards/` through
//! `gdx scenario rewards run` as of the window's last day, its eligible firms, amounts and
//! excluded firms with their rules compared with what `_truth/enterprises.jsonl`
//! (recognitions, first 规上 year, status, abnormal listing, credit, headcount, tax) says,
//! with the policies' rules written out here.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use common::{gdx, stdout};
use serde_json::Value;

const AS_OF: &str = "2026-10-31";

fn district() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::demo_district("rewards", 30_000, 3000, 3))
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Firms some record of which the simulator's noise broke (dead-lettered, or a USCC that
/// joins nothing): their decisions may differ from the truth by design.
fn touched(feeds: &Path) -> HashSet<String> {
    let mut out = HashSet::new();
    for l in common::broken_lines(feeds) {
        for k in ["uscc", "builder_uscc", "employer_uscc"] {
            if let Some(s) = l["value"][k].as_str() {
                out.insert(s.to_owned());
            }
        }
        if let Some(k) = l["key"].as_str() {
            out.insert(k.split('/').next().unwrap_or(k).to_owned());
        }
    }
    out
}

/// `[[year, value], …]` of a truth row, as a map.
fn by_year(v: &Value) -> BTreeMap<i64, Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].clone()))
        .collect()
}

/// What the truth says a policy decides: uscc → (amount in fen, or the rule), and the
/// order the budget takes them in.
fn expected(
    policy: &str,
    firms: &[Value],
    as_of: NaiveDate,
) -> BTreeMap<String, Result<i64, String>> {
    let in_2025 = |s: &Value| s.as_str().is_some_and(|s| s.starts_with("2025-"));
    let mut out: Vec<(NaiveDate, String, Result<i64, String>)> = Vec::new();
    for f in firms {
        let uscc = f["uscc"].as_str().unwrap().to_owned();
        let (qualified, level): (Option<NaiveDate>, Option<&str>) = match policy {
            "high_tech_first" => (
                in_2025(&f["high_tech_recognised_on"])
                    .then(|| d(f["high_tech_recognised_on"].as_str().unwrap())),
                None,
            ),
            "specialised_sme" => match f["specialised_sme"].as_array() {
                Some(s) if in_2025(&s[1]) => (Some(d(s[1].as_str().unwrap())), s[0].as_str()),
                _ => (None, None),
            },
            _ => (
                (f["above_scale_first_year"].as_i64() == Some(2025)).then(|| d("2025-12-31")),
                None,
            ),
        };
        let Some(qualified) = qualified else { continue };
        let revenue = by_year(&f["revenue"]);
        let traded = |y: i64| revenue.get(&y).and_then(Value::as_i64).unwrap_or(0) > 0;
        let credit = by_year(&f["credit"]);
        let grade = [2025, 2024]
            .into_iter()
            .find(|y| traded(*y))
            .and_then(|y| credit.get(&y))
            .and_then(|g| g.as_str().map(str::to_owned));
        let tax_2025 = traded(2025).then(|| by_year(&f["tax_paid"])[&2025].as_i64().unwrap());
        let abnormal = f["abnormal_listed_on"]
            .as_str()
            .is_some_and(|l| d(l) <= as_of)
            && f["abnormal_removed_on"]
                .as_str()
                .is_none_or(|r| d(r) > as_of);
        let excluded_grades: &[&str] = match policy {
            "specialised_sme" => &["C", "D"],
            "above_scale_first" => &[],
            _ => &["D"],
        };
        let decision = if f["status"] != "active" {
            Err("not_active".to_owned())
        } else if abnormal {
            Err("abnormal_operation".into())
        } else if let Some(g) = grade.as_deref().filter(|g| excluded_grades.contains(g)) {
            Err(format!("credit_grade_{g}"))
        } else {
            match policy {
                "high_tech_first" => Ok(20_000_000),
                "specialised_sme" => Ok(if level == Some("little_giant") {
                    50_000_000
                } else {
                    10_000_000
                }),
                "above_scale_first" if f["insured_headcount"].as_i64().unwrap() < 20 => {
                    Err("headcount_below_minimum".into())
                }
                "above_scale_first" => Ok(10_000_000),
                _ => match tax_2025 {
                    Some(t) if t >= 1_000_000_000 => Ok(15_000_000),
                    Some(t) if t >= 200_000_000 => Ok(10_000_000),
                    Some(t) if t >= 50_000_000 => Ok(5_000_000),
                    _ => Err("tax_below_minimum".into()),
                },
            }
        };
        out.push((qualified, uscc, decision));
    }
    // The budget, taken in order of qualification.
    let budget: i64 = match policy {
        "high_tech_first" => 600_000_000,
        "specialised_sme" => 500_000_000,
        "above_scale_first" => 300_000_000,
        _ => 200_000_000,
    };
    out.sort();
    let mut total = 0;
    out.into_iter()
        .map(|(_, uscc, dec)| {
            let dec = match dec {
                Ok(a) if total + a > budget => Err("budget_exhausted".to_owned()),
                Ok(a) => {
                    total += a;
                    Ok(a)
                }
                e => e,
            };
            (uscc, dec)
        })
        .collect()
}

fn fen(yuan: &str) -> i64 {
    let (w, f) = yuan.split_once('.').unwrap();
    w.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
}

#[test]
fn each_example_policy_pays_exactly_whom_the_truth_says_with_evidence() {
    let dir = district();
    let feeds = dir.join("feeds");
    let skip = touched(&feeds);
    let firms = common::jsonl(&feeds.join("_truth/enterprises.jsonl"));
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies/rewards");
    let mut seen_rules = BTreeSet::new();
    let mut report = Vec::new();
    for name in [
        "high_tech_first",
        "specialised_sme",
        "above_scale_first",
        "tax_contribution",
    ] {
        let out = gdx(&[
            "scenario",
            "rewards",
            "run",
            "--policy",
            policies.join(format!("{name}.toml")).to_str().unwrap(),
            "--lake",
            dir.join("lake").to_str().unwrap(),
            "--as-of",
            AS_OF,
        ]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let mut got: BTreeMap<String, Result<i64, String>> = BTreeMap::new();
        for e in r["eligible"].as_array().unwrap() {
            let ev = e["evidence"].as_array().unwrap();
            assert!(
                ev.len() >= 2
                    && ev
                        .iter()
                        .all(|x| x["key"].as_str().is_some_and(|k| !k.is_empty())),
                "{e}"
            );
            got.insert(
                e["uscc"].as_str().unwrap().to_owned(),
                Ok(fen(e["amount"].as_str().unwrap())),
            );
        }
        for e in r["excluded"].as_array().unwrap() {
            got.insert(
                e["uscc"].as_str().unwrap().to_owned(),
                Err(e["rule"].as_str().unwrap().to_owned()),
            );
        }
        let want = expected(name, &firms, d(AS_OF));
        let cmp =
            |m: &BTreeMap<String, Result<i64, String>>| -> BTreeMap<String, Result<i64, String>> {
                m.iter()
                    .filter(|(k, _)| !skip.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
        let (got_c, want_c) = (cmp(&got), cmp(&want));
        // Before the budget (which depends on everyone's order), decisions match firm by firm.
        for (k, v) in &want_c {
            match (v, got_c.get(k)) {
                (_, Some(Err(r))) if r == "budget_exhausted" => {}
                (Err(w), _) if w == "budget_exhausted" => {}
                (w, g) => assert_eq!(Some(w), g, "{name}: {k}"),
            }
        }
        let extra: Vec<_> = got_c.keys().filter(|k| !want_c.contains_key(*k)).collect();
        assert!(extra.is_empty(), "{name}: decided without cause {extra:?}");
        // The budget is never exceeded, and what it pays is the truth's, when nobody was left out.
        let total: i64 = got.values().filter_map(|v| v.as_ref().ok()).sum();
        assert_eq!(total, fen(r["total"].as_str().unwrap()));
        assert!(total <= fen(r["budget"].as_str().unwrap()));
        if skip
            .iter()
            .all(|k| !got.contains_key(k) && !want.contains_key(k))
        {
            assert_eq!(got, want, "{name}");
        }
        for v in got.values() {
            if let Err(rule) = v {
                seen_rules.insert(rule.clone());
            }
        }
        report.push(format!(
            "{name:<18} eligible {:>3}  excluded {:>3}  paid {}",
            got.values().filter(|v| v.is_ok()).count(),
            got.values().filter(|v| v.is_err()).count(),
            r["total"]
        ));
    }
    eprintln!("rewards as of {AS_OF}:\n  {}", report.join("\n  "));
    assert!(!seen_rules.is_empty(), "no firm excluded by any rule");
}
