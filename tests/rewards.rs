//! Enterprise reward policies (云兑现) decided over the lake, checked against the simulator's
//! ground truth: each example policy of `deploy/policies/rewards/` through
//! `gdx scenario rewards run` as of the window's last day, its eligible firms, amounts and
//! excluded firms with their rules compared with what `_truth/enterprises.jsonl`
//! (recognitions, first 规上 year, status, abnormal listing, credit, headcount, tax) says,
//! with the policies' rules written out here. Then the whole way to the bank on a copy of the
//! lake: the policies issued and decided in turn (the group's highest only), applications and
//! approvals through the exchange under casbin, disbursements killed part-way and run side by
//! side, the bank's file reconciled, failed and returned payments re-issued once — every
//! firm paid exactly what the truth says, once.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use common::{gdx, stdout};
use serde_json::{Value, json};

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

/// The example policies in the order they are decided (the group's highest-only depends on
/// it: 高新 first, then 专精特新 pays only what exceeds it).
const ORDER: [&str; 4] = [
    "high_tech_first",
    "specialised_sme",
    "above_scale_first",
    "tax_contribution",
];

fn id_of(name: &str) -> String {
    format!("{}-2025", name.replace('_', "-"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn json_out(args: &[&str]) -> Vec<Value> {
    let out = gdx(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An account for the `i`th firm (as the firm's app gives it).
fn account(i: usize) -> String {
    format!("62220202{i:08}")
}

#[test]
fn rewards_are_approved_and_paid_exactly_once_through_the_exchange() {
    let dir = district();
    let feeds = dir.join("feeds");
    let skip = touched(&feeds);
    let truth = common::jsonl(&feeds.join("_truth/enterprises.jsonl"));
    // A copy: the other test previews the policies over an empty ledger.
    let lake = dir.join("lake-ledger");
    let _ = std::fs::remove_dir_all(&lake);
    copy_dir(&dir.join("lake"), &lake);
    let l = lake.to_str().unwrap();
    let files: Vec<String> = ORDER
        .iter()
        .map(|n| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("deploy/policies/rewards/{n}.toml"))
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut issue = vec!["scenario", "rewards", "issue"];
    issue.extend(files.iter().map(String::as_str));
    issue.extend(["--lake", l]);
    for r in json_out(&issue) {
        assert_eq!(r["outcome"], "recorded", "{r}");
    }
    for r in json_out(&issue) {
        assert_eq!(r["outcome"], "already", "{r}");
    }

    // Decided in turn; 专精特新 pays only what exceeds the 高新 reward (one group).
    let mut decided: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut highest_only = 0;
    for name in ORDER {
        let id = id_of(name);
        let decide = [
            "scenario", "rewards", "decide", "--policy", &id, "--as-of", AS_OF, "--lake", l,
        ];
        let r = json_out(&decide).remove(0);
        let eligible = r["eligible"].as_array().unwrap();
        assert_eq!(r["decided_now"].as_u64().unwrap() as usize, eligible.len());
        let mut want = expected(name, &truth, d(AS_OF));
        if name == "specialised_sme" {
            let ht = &decided[&id_of("high_tech_first")];
            for (u, v) in want.iter_mut() {
                if let (Ok(a), Some(h)) = (v.clone(), ht.get(u)) {
                    highest_only += 1;
                    *v = if a > *h {
                        Ok(a - h)
                    } else {
                        Err("highest_only".into())
                    };
                }
            }
        }
        let mut got: BTreeMap<String, Result<i64, String>> = BTreeMap::new();
        for e in eligible {
            let u = e["uscc"].as_str().unwrap().to_owned();
            let fen = fen(e["amount"].as_str().unwrap());
            decided
                .entry(id.clone())
                .or_default()
                .insert(u.clone(), fen);
            got.insert(u, Ok(fen));
        }
        for e in r["excluded"].as_array().unwrap() {
            got.insert(
                e["uscc"].as_str().unwrap().to_owned(),
                Err(e["rule"].as_str().unwrap().to_owned()),
            );
        }
        for (u, w) in want.iter().filter(|(u, _)| !skip.contains(*u)) {
            assert_eq!(Some(w), got.get(u), "{name}: {u}");
        }
        // Deciding again records nothing more; the preview by the issued policy's id shows
        // the same firms, decided.
        assert_eq!(json_out(&decide)[0]["decided_now"], 0);
        let preview = json_out(&[
            "scenario", "rewards", "run", "--policy", &id, "--as-of", AS_OF, "--lake", l,
        ])
        .remove(0);
        let shown = preview["eligible"].as_array().unwrap();
        assert_eq!(shown.len(), eligible.len());
        assert!(shown.iter().all(|e| e["decided"] == true));
    }
    assert!(decided.values().map(BTreeMap::len).sum::<usize>() >= 10);

    // Through the exchange: applications by the firms' app, approvals by each step's
    // approvers, in order.
    // `gdx serve`: the exchange, and an embedded broker its steps publish outcomes to.
    let served = common::exchange::serve(&lake, &[]);
    let principal = |id: &str, dept: &str, role: &str| {
        let key = common::exchange::principal_in(&lake, id, dept, role);
        let auth = format!("Bearer {key}");
        assert!(common::exchange::eventually(20, || {
            common::exchange::http(
                &served.addr,
                "GET",
                "/v1/purposes",
                &[("authorization", &auth)],
                b"",
            )
            .status
                != 401
        }));
        key
    };
    let app = principal("ent-app", "bdc", "app");
    let mut approver: BTreeMap<&str, String> = BTreeMap::new();
    for dept in ["sti", "miit", "stats", "ndrc", "tax", "finance"] {
        approver.insert(dept, principal(&format!("{dept}-appr"), dept, "approver"));
    }
    let payer = principal("fin-sys", "finance", "department_system");
    let sti_sys = principal("sti-sys", "sti", "department_system");
    let call = |method: &str, path: &str, key: &str, body: &str| {
        common::exchange::http(
            &served.addr,
            method,
            path,
            &[
                ("authorization", &format!("Bearer {key}")),
                ("x-purpose", "enterprise_reward"),
                ("x-case-id", "REWARD-2025"),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let listed = call("GET", "/v1/rewards/policies", &app, "");
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json().as_array().unwrap().len(), 4);
    let approve = json!({"verdict": "approve"}).to_string();
    let mut accounts = 0;
    let mut rejected: Option<(String, String)> = None;
    for name in ORDER {
        let id = id_of(name);
        // The approval steps each example policy file names.
        let steps: Vec<String> = match name {
            "high_tech_first" => vec!["sti", "finance"],
            "specialised_sme" => vec!["miit", "finance"],
            "above_scale_first" => vec!["stats", "finance"],
            _ => vec!["ndrc", "tax", "finance"],
        }
        .into_iter()
        .map(str::to_owned)
        .collect();
        for (n, uscc) in decided
            .get(&id)
            .into_iter()
            .flat_map(|m| m.keys())
            .enumerate()
        {
            let firm = format!("/v1/rewards/policies/{id}/firms/{uscc}");
            let first = &approver[steps[0].as_str()];
            if n == 0 && name == "tax_contribution" {
                let r = call("POST", &format!("{firm}/approval"), first, &approve);
                assert_eq!((r.status, r.code()), (409, "no_application".into()));
            }
            accounts += 1;
            let body = json!({ "account": account(accounts) }).to_string();
            let r = call("POST", &format!("{firm}/application"), &app, &body);
            assert_eq!(r.status, 200, "{}", r.text());
            if n == 0 && name == "high_tech_first" {
                // Not finance's turn yet; not miit's policy; not an approver at all.
                let r = call(
                    "POST",
                    &format!("{firm}/approval"),
                    &approver["finance"],
                    &approve,
                );
                assert_eq!((r.status, r.code()), (409, "out_of_order".into()));
                let r = call(
                    "POST",
                    &format!("{firm}/approval"),
                    &approver["miit"],
                    &approve,
                );
                assert_eq!(r.status, 403);
                let r = call("POST", &format!("{firm}/approval"), &sti_sys, &approve);
                assert_eq!(r.status, 403);
            }
            if n == 0 && name == "above_scale_first" {
                let r = call(
                    "POST",
                    &format!("{firm}/approval"),
                    first,
                    &json!({"verdict": "reject"}).to_string(),
                );
                assert_eq!((r.status, r.code()), (400, "reason_required".into()));
                let why = json!({"verdict": "reject", "reason": "统计口径核实未通过"});
                let r = call("POST", &format!("{firm}/approval"), first, &why.to_string());
                assert_eq!(r.status, 200, "{}", r.text());
                let r = call(
                    "POST",
                    &format!("{firm}/approval"),
                    &approver["finance"],
                    &approve,
                );
                assert_eq!((r.status, r.code()), (409, "rejected".into()));
                rejected = Some((id.clone(), uscc.clone()));
                continue;
            }
            for s in &steps {
                let r = call(
                    "POST",
                    &format!("{firm}/approval"),
                    &approver[s.as_str()],
                    &approve,
                );
                assert_eq!(r.status, 200, "{s}: {}", r.text());
            }
        }
    }
    let rejected = rejected.expect("a 规上 firm to reject");

    // Only the payer disburses. Disbursements killed part-way, then three side by side, then
    // the payer's through the API: one instruction per firm.
    let ht = id_of("high_tech_first");
    let r = call(
        "POST",
        &format!("/v1/rewards/policies/{ht}/disbursements"),
        &sti_sys,
        "",
    );
    assert_eq!(r.status, 403);
    let bin = env!("CARGO_BIN_EXE_gdx");
    let disburse = |id: &str| {
        std::process::Command::new(bin)
            .args([
                "scenario", "rewards", "disburse", "--policy", id, "--lake", l,
            ])
            .env_remove("GDX_CATALOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // The ledger's commits that added lines, counted from its Delta log (the publisher's
    // commits only move its marks): did a killed process commit?
    let log = lake.join("_system/scenarios/rewards/_delta_log");
    let commits = || {
        std::fs::read_dir(&log)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"add\"")))
            .count()
    };
    let (mut killed, mut committed_before_kill) = (0, 0);
    let mut batch: Vec<Value> = Vec::new();
    for (i, name) in ORDER.iter().enumerate() {
        let id = id_of(name);
        // Across a debug disbursement's life (~0.8 s): starting, reading, committing, done.
        for ms in [20, 200, 450 + 100 * i as u64, 650 + 100 * i as u64, 1000] {
            let before = commits();
            let mut c = disburse(&id);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            let _ = c.kill();
            let _ = c.wait();
            killed += 1;
            committed_before_kill += usize::from(commits() > before);
        }
        let side: Vec<_> = (0..3).map(|_| disburse(&id)).collect();
        for mut c in side {
            assert!(c.wait().unwrap().success());
        }
        let r = call(
            "POST",
            &format!("/v1/rewards/policies/{id}/disbursements"),
            &payer,
            "",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = r.json();
        assert_eq!(r["issued"], 0, "{r}");
        batch.extend(r["batch"].as_array().unwrap().iter().cloned());
    }
    let approved: usize = decided.values().map(BTreeMap::len).sum::<usize>() - 1;
    assert_eq!(batch.len(), approved);
    let refs: HashSet<&str> = batch
        .iter()
        .map(|b| b["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), approved);

    // The bank's file: one failed, one returned, the rest paid.
    let mut file = String::from("account,amount,status,reference\n");
    for (i, b) in batch.iter().enumerate() {
        let status = ["失败", "退票"].get(i).copied().unwrap_or("成功");
        file.push_str(&format!(
            "{},{},{status},{}\n",
            b["account"].as_str().unwrap(),
            b["amount"].as_str().unwrap(),
            b["reference"].as_str().unwrap()
        ));
    }
    let csv_call = |key: &str, body: &str| {
        common::exchange::http(
            &served.addr,
            "POST",
            "/v1/rewards/bank-results",
            &[
                ("authorization", &format!("Bearer {key}")),
                ("x-purpose", "enterprise_reward"),
                ("x-case-id", "REWARD-2025"),
                ("content-type", "text/csv"),
            ],
            body.as_bytes(),
        )
    };
    let r = csv_call(&sti_sys, &file).json();
    assert_eq!(r["refused"].as_array().unwrap().len(), approved, "{r}");
    let r = csv_call(&payer, &file);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    assert_eq!(
        r["recorded"]["paid"].as_u64().unwrap() as usize,
        approved - 2,
        "{r}"
    );
    assert_eq!(r["recorded"]["failed"], 1);
    assert_eq!(r["recorded"]["returned"], 1);
    assert_eq!(r["reissuable"], 2);
    // The failed firm gives another account; both are re-issued once, and paid.
    let failed = &batch[0];
    let failed_policy = decided
        .iter()
        .find(|(_, m)| m.contains_key(failed["uscc"].as_str().unwrap()))
        .map(|(id, _)| id.clone())
        .unwrap();
    let body = json!({ "account": account(999) }).to_string();
    let r = call(
        "POST",
        &format!(
            "/v1/rewards/policies/{failed_policy}/firms/{}/application",
            failed["uscc"].as_str().unwrap()
        ),
        &app,
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut reissued = Vec::new();
    for name in ORDER {
        let r = call(
            "POST",
            &format!("/v1/rewards/policies/{}/disbursements", id_of(name)),
            &payer,
            "",
        )
        .json();
        reissued.extend(
            r["batch"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["reason"] == "reissue")
                .cloned(),
        );
    }
    assert_eq!(reissued.len(), 2);
    let mut file = String::from("账号,金额,状态,业务参考号\n");
    for b in &reissued {
        file.push_str(&format!(
            "{},{},成功,{}\n",
            b["account"].as_str().unwrap(),
            b["amount"].as_str().unwrap(),
            b["reference"].as_str().unwrap()
        ));
    }
    assert!(file.contains(&account(999)));
    let r = csv_call(&payer, &file).json();
    assert_eq!(r["recorded"]["paid"], 2, "{r}");

    // Every approved firm paid exactly its decided amount, once; the rejected one nothing.
    let mut paid_total = 0;
    let mut want_total = 0;
    for (id, firms) in &decided {
        let views = json_out(&["scenario", "rewards", "firms", "--policy", id, "--lake", l]);
        assert_eq!(views.len(), firms.len());
        for v in views {
            let u = v["uscc"].as_str().unwrap();
            let lines = v["lines"].as_array().unwrap();
            let paid: Vec<i64> = lines
                .iter()
                .filter(|x| x["kind"] == "bank_result" && x["reason"] == "paid")
                .map(|x| fen(x["amount"].as_str().unwrap()))
                .collect();
            if (id.as_str(), u) == (rejected.0.as_str(), rejected.1.as_str()) {
                assert_eq!(v["status"], "rejected");
                assert!(paid.is_empty());
                continue;
            }
            assert_eq!(v["status"], "paid", "{v}");
            assert_eq!(paid, [firms[u]], "{id} {u}");
            paid_total += paid[0];
            want_total += firms[u];
        }
    }
    assert_eq!(paid_total, want_total);

    // Every outcome once on gdx.notifications: eligible per decision, approved per firm
    // approved by its last step, the rejection, each bank result.
    let firms_decided: usize = decided.values().map(BTreeMap::len).sum();
    let want: BTreeMap<String, usize> = [
        ("eligible", firms_decided),
        ("approved", approved),
        ("rejected", 1),
        ("paid", approved),
        ("failed", 1),
        ("returned", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    // The exchange publishes the ledger every few seconds.
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let published = common::exchange::eventually(90, || {
        let (counts, bodies) = common::read_topic(&served.broker, "gdx.notifications");
        assert!(counts.values().all(|n| *n == 1), "an outcome sent twice");
        kinds.clear();
        for b in bodies.values() {
            assert_eq!(b["scenario"], "enterprise_reward");
            *kinds
                .entry(b["kind"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        kinds == want
    });
    assert!(published, "{kinds:?} != {want:?}");
    drop(served);

    // The enterprise profile: rewards received, from the ledger.
    let mut by_firm: BTreeMap<String, i64> = BTreeMap::new();
    for (id, firms) in &decided {
        for (u, fen) in firms {
            if (id.as_str(), u.as_str()) != (rejected.0.as_str(), rejected.1.as_str()) {
                *by_firm.entry(u.clone()).or_default() += fen;
            }
        }
    }
    let built = gdx(&["profiles", "build", "--lake", l]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let received: BTreeMap<String, i64> = common::sql_csv(
        &lake,
        "select uscc, cast(rewards_received as varchar) from profiles.enterprise \
         where rewards_received > 0",
    )
    .lines()
    .skip(1)
    .map(|l| {
        let (u, a) = l.split_once(',').unwrap();
        (u.to_owned(), fen(a))
    })
    .collect();
    assert_eq!(received, by_firm);
    // As of a day before any payment, the profile knows of none.
    let as_of = stdout(&gdx(&[
        "sql",
        "--lake",
        l,
        "--as-of",
        AS_OF,
        "--format",
        "csv",
        "select count(*) as n from profiles.enterprise where rewards_received > 0",
    ]));
    assert_eq!(as_of.lines().nth(1), Some("0"), "{as_of}");
    eprintln!(
        "rewards paid: {approved} firms, {} yuan; {highest_only} firm(s) under both group policies; \
         {killed} disbursements killed, {committed_before_kill} of them after their commit",
        paid_total / 100
    );
}
