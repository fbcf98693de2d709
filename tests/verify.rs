//! Property-certificate verification over loopback: the real `gdx exchange` on the lake
//! `gdx demo` built, checked against the simulator's ground truth (`_truth/certificates.jsonl`),
//! and `gdx serve` for a cancellation reaching the register while it runs.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::exchange::{Resp, Server, eventually, http};
use serde_json::{Value, json};

const VERIFY: &str = "/v1/verify/property-certificate";

/// The feed keys (certificate or contract numbers) the simulator's noise touched: their
/// records in the lake may differ from the truth by design, so they are left out.
fn noised(feeds: &Path, topic: &str) -> HashSet<String> {
    let touched: HashSet<usize> = common::jsonl(&feeds.join("_truth/noise.jsonl"))
        .iter()
        .filter(|n| n["topic"] == topic)
        .map(|n| n["line"].as_u64().unwrap() as usize)
        .collect();
    common::jsonl(&feeds.join(format!("{topic}.jsonl")))
        .iter()
        .enumerate()
        .filter(|(i, _)| touched.contains(&(i + 1)))
        .map(|(_, l)| l["key"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn feeds() -> std::path::PathBuf {
    common::exchange::lake().parent().unwrap().join("feeds")
}

/// An active certificate of the shared lake whose records no noise touched.
fn an_active_certificate() -> Value {
    let feeds = feeds();
    let skip = noised(&feeds, "nre.property_certificate");
    common::jsonl(&feeds.join("_truth/certificates.jsonl"))
        .into_iter()
        .find(|c| c["status"] == "active" && !skip.contains(c["certificate_no"].as_str().unwrap()))
        .unwrap()
}

fn ask(s: &Server, key: &str, body: &Value) -> Resp {
    ask_at(&s.addr, key, body)
}

fn ask_at(addr: &str, key: &str, body: &Value) -> Resp {
    http(
        addr,
        "POST",
        VERIFY,
        &[
            ("authorization", &format!("Bearer {key}")),
            ("x-purpose", "social_assistance"),
            ("x-case-id", "CASE-V1"),
            ("x-end-user", "窗口 3 号"),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

/// A grant of `level` on `resource` for `consumer`, approved by everyone it needs.
fn grant(s: &Server, consumer: &str, resource: &str, level: &str, fields: Option<&[&str]>) {
    let mut body = json!({"resource": resource, "level": level, "purpose": "social_assistance",
        "legal_basis": "《社会救助审核确认办法》第十二条"});
    if let Some(f) = fields {
        body["fields"] = json!(f);
    }
    let r = s.post("/v1/grants", consumer, &body.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    let g = r.json();
    let id = g["id"].as_str().unwrap();
    let owner = resource.split('.').next().unwrap();
    for a in g["requirement"]["approvals"].as_array().unwrap() {
        let key = if a == "owner" {
            s.principal("appr", owner, "approver")
        } else {
            s.principal("cpo", "bdc", "cpo")
        };
        let r = s.post(
            &format!("/v1/grants/{id}/approve"),
            &key,
            &json!({"reason": ""}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(
        s.get(&format!("/v1/grants/{id}"), consumer).json()["status"] == "active",
        "grant {id} not active"
    );
}

/// A civil-affairs app allowed to verify certificates (and to enter by contract).
fn clerk(s: &Server) -> String {
    let key = s.principal("mca-window", "mca", "app");
    grant(s, &key, "nre.property_certificate", "verify", None);
    grant(s, &key, "hcd.housing_contract", "verify", None);
    key
}

fn result(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["result"].as_str().unwrap().to_owned()
}

/// Full-width digits and brackets, spaces in 第…号, a lowercase x: how clerks type them.
fn as_typed(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
            '(' => '（',
            ')' => '）',
            'X' => 'x',
            c => c,
        })
        .collect::<String>()
        .replace('第', "第 ")
        .replace('号', " 号")
}

fn area(v: &Value) -> String {
    format!("{:.2}", v.as_f64().unwrap())
}

#[test]
fn every_certificate_in_the_ground_truth_verifies_as_the_truth_says() {
    let s = Server::start(&["--rate-limit", "0", "--verify-subject-rate", "0"]);
    let key = clerk(&s);
    let feeds = feeds();
    let skip = noised(&feeds, "nre.property_certificate");
    let truth: Vec<Value> = common::jsonl(&feeds.join("_truth/certificates.jsonl"))
        .into_iter()
        .filter(|c| !skip.contains(c["certificate_no"].as_str().unwrap()))
        .collect();
    let (mut active, mut cancelled) = (0, 0);
    let mut negative_bodies = HashSet::new();
    for c in &truth {
        let full = json!({
            "certificate_no": c["certificate_no"], "owner_id": c["owner_id"],
            "owner_name": c["owner_name"], "address": c["address"], "area_m2": area(&c["area_m2"]),
        });
        let expected = if c["status"] == "active" {
            active += 1;
            "match"
        } else {
            cancelled += 1;
            "no_match"
        };
        let no = c["certificate_no"].as_str().unwrap();
        assert_eq!(result(&ask(&s, &key, &full)), expected, "{no}");
        // As a clerk types it, and entered by the owner instead of the number.
        let typed = json!({
            "certificate_no": as_typed(no), "owner_id": as_typed(c["owner_id"].as_str().unwrap()),
            "owner_name": format!(" {} ", c["owner_name"].as_str().unwrap()),
            "area_m2": c["area_m2"],
        });
        assert_eq!(result(&ask(&s, &key, &typed)), expected, "{no} as typed");
        let by_owner = json!({"owner_id": c["owner_id"], "owner_name": c["owner_name"],
            "address": c["address"]});
        if expected == "match" {
            assert_eq!(result(&ask(&s, &key, &by_owner)), "match", "{no} by owner");
            // One attribute off at a time: one no_match, the same bytes every time.
            for (field, wrong) in [
                (
                    "owner_id",
                    json!(common_other_id(c["owner_id"].as_str().unwrap())),
                ),
                (
                    "owner_name",
                    json!(format!("{}某", c["owner_name"].as_str().unwrap())),
                ),
                (
                    "address",
                    json!(format!("{}附1", c["address"].as_str().unwrap())),
                ),
                (
                    "area_m2",
                    json!(format!("{:.2}", c["area_m2"].as_f64().unwrap() + 0.01)),
                ),
            ] {
                let mut near = full.clone();
                near[field] = wrong;
                let r = ask(&s, &key, &near);
                assert_eq!(result(&r), "no_match", "{no}: {field} off");
                negative_bodies.insert(r.body.clone());
            }
        } else {
            negative_bodies.insert(ask(&s, &key, &full).body);
        }
    }
    let mut stranger = json!({"certificate_no": "鄂(2024)武汉市不动产权第9999999号",
        "owner_id": truth[0]["owner_id"], "owner_name": "无此人", "address": "无此处", "area_m2": "1"});
    let r = ask(&s, &key, &stranger);
    assert_eq!(result(&r), "no_match");
    negative_bodies.insert(r.body);
    assert_eq!(
        negative_bodies.len(),
        1,
        "every negative with the same fields reads alike: {negative_bodies:?}"
    );
    stranger["certificate_no"] = json!("not even a certificate number");
    assert_eq!(result(&ask(&s, &key, &stranger)), "no_match");
    assert!(
        active >= 20 && cancelled >= 1,
        "{active} active, {cancelled} cancelled"
    );

    // By housing contract: the active certificate of the home the contract sold, whoever
    // owns it now (a transfer keeps the address).
    let skip_contracts = noised(&feeds, "hcd.housing_contract");
    let at_address: HashMap<&str, Vec<&Value>> = truth
        .iter()
        .filter(|c| c["status"] == "active")
        .fold(HashMap::new(), |mut m, c| {
            m.entry(c["address"].as_str().unwrap()).or_default().push(c);
            m
        });
    let mut by_contract = 0;
    for c in truth.iter().filter(|c| c["contract_no"].is_string()) {
        let contract = c["contract_no"].as_str().unwrap();
        if skip_contracts.contains(contract) {
            continue;
        }
        let now = at_address.get(c["address"].as_str().unwrap());
        let body =
            json!({"contract_no": contract, "address": c["address"], "area_m2": c["area_m2"]});
        let expected = if now.is_some() { "match" } else { "no_match" };
        assert_eq!(result(&ask(&s, &key, &body)), expected, "{contract}");
        if let Some(now) = now {
            let owner = json!({"contract_no": contract, "owner_id": now[0]["owner_id"]});
            assert_eq!(result(&ask(&s, &key, &owner)), "match", "{contract}");
        }
        by_contract += 1;
    }
    assert!(by_contract >= 3, "{by_contract} contracts checked");

    // The command-line client: the same answers, as exit codes.
    let c = truth.iter().find(|c| c["status"] == "active").unwrap();
    let cli = |owner_name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gdx"))
            .args(["verify", "property-certificate", "--exchange"])
            .arg(format!("http://{}", s.addr))
            .args(["--certificate-no", c["certificate_no"].as_str().unwrap()])
            .args(["--owner-name", owner_name])
            .env("GDX_KEY", &key)
            .env("GDX_PURPOSE", "social_assistance")
            .env("GDX_CASE_ID", "CASE-CLI")
            .output()
            .unwrap()
    };
    let yes = cli(c["owner_name"].as_str().unwrap());
    assert_eq!(yes.status.code(), Some(0), "{yes:?}");
    assert_eq!(String::from_utf8_lossy(&yes.stdout), "match\n");
    let no = cli("无此人");
    assert_eq!(no.status.code(), Some(1), "{no:?}");
    assert_eq!(String::from_utf8_lossy(&no.stdout), "no_match\n");
}

/// Another valid resident ID (the next sequence number, its check digit recomputed).
fn common_other_id(id: &str) -> String {
    let birth = chrono::NaiveDate::parse_from_str(&id[6..14], "%Y%m%d").unwrap();
    let area: u32 = id[..6].parse().unwrap();
    let seq: u16 = id[14..17].parse().unwrap();
    gdx_catalog::ResidentId::compose(area, birth, (seq + 2) % 1000)
        .as_str()
        .to_owned()
}

#[test]
fn a_near_miss_takes_as_long_as_a_certificate_that_does_not_exist() {
    let s = Server::start(&["--rate-limit", "0", "--verify-subject-rate", "0"]);
    let key = clerk(&s);
    let c = an_active_certificate();
    let near = json!({"certificate_no": c["certificate_no"], "owner_id": c["owner_id"],
        "owner_name": c["owner_name"], "address": c["address"], "area_m2": "1.00"});
    let absent = json!({"certificate_no": "鄂(2024)武汉市不动产权第9999999号",
        "owner_id": c["owner_id"], "owner_name": c["owner_name"], "address": c["address"],
        "area_m2": "1.00"});
    let time = |body: &Value| {
        let t = Instant::now();
        let r = ask(&s, &key, body);
        let d = t.elapsed();
        assert_eq!(result(&r), "no_match");
        d
    };
    for _ in 0..30 {
        time(&near);
        time(&absent);
    }
    // Pairs measured back to back, in alternating order, so drift and load of the machine
    // fall on both alike. A sign test: in how many pairs was the near miss slower? Without a
    // difference about half (300 pairs: 0.5 ± 0.03), whatever the load; a near miss that
    // costs consistently more (a read of the record, an extra write) pushes it towards 1.
    let (mut a, mut b, mut slower) = (Vec::new(), Vec::new(), 0usize);
    const PAIRS: usize = 300;
    for i in 0..PAIRS {
        let (x, y) = if i % 2 == 0 {
            let x = time(&near);
            (x, time(&absent))
        } else {
            let y = time(&absent);
            (time(&near), y)
        };
        slower += usize::from(x > y);
        a.push(x);
        b.push(y);
    }
    a.sort();
    b.sort();
    let q = |v: &[Duration], p: f64| v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    let share = slower as f64 / PAIRS as f64;
    eprintln!(
        "near miss slower in {share:.2} of {PAIRS} pairs; medians {:.3} vs {:.3} ms, p90 {:.3} vs {:.3} ms",
        q(&a, 0.5),
        q(&b, 0.5),
        q(&a, 0.9),
        q(&b, 0.9)
    );
    assert!(
        (0.35..=0.65).contains(&share),
        "a near miss was slower than an absent certificate in {share:.2} of {PAIRS} pairs: the time tells them apart"
    );
    let ratio = q(&a, 0.5).max(q(&b, 0.5)) / q(&a, 0.5).min(q(&b, 0.5));
    assert!(ratio < 1.5, "medians differ by {ratio:.2}x");
}

#[test]
fn verification_needs_a_grant_and_the_audit_keeps_what_was_asked_and_why() {
    let s = Server::start(&["--verify-subject-rate", "0"]);
    let c = an_active_certificate();
    let no = c["certificate_no"].as_str().unwrap();
    let owner = c["owner_id"].as_str().unwrap();
    let body = json!({"certificate_no": no, "owner_name": c["owner_name"]});

    let nobody = s.principal("ps-app", "ps", "app");
    let r = ask(&s, &nobody, &body);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code(), "no_verify_grant");
    let r = http(
        &s.addr,
        "POST",
        VERIFY,
        &[("authorization", &format!("Bearer {nobody}"))],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "purpose_required");

    // A grant for some fields only: other attributes cannot be confirmed with it.
    let narrow = s.principal("hrss-app", "hrss", "app");
    grant(
        &s,
        &narrow,
        "nre.property_certificate",
        "verify",
        Some(&["certificate_no", "owner_name"]),
    );
    assert_eq!(result(&ask(&s, &narrow, &body)), "match");
    let r = ask(
        &s,
        &narrow,
        &json!({"certificate_no": no, "address": c["address"]}),
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "field_not_granted");
    // Entering by contract reads the contracts too: it needs a grant on them.
    let r = ask(&s, &narrow, &json!({"contract_no": "WS202400000001"}));
    assert_eq!(r.status, 403);
    assert!(r.text().contains("hcd.housing_contract"), "{}", r.text());

    // The owner department verifies its own register without a grant.
    let nre = s.principal("nre-sys", "nre", "department_system");
    assert_eq!(result(&ask(&s, &nre, &body)), "match");

    let key = clerk(&s);
    let wrong = json!({"certificate_no": no, "owner_name": "无此人"});
    let r = ask(&s, &key, &wrong);
    assert_eq!(result(&r), "no_match");
    // One bit and the fields compared: never which one differed.
    assert_eq!(
        r.json(),
        json!({"result": "no_match", "checked": ["certificate_no", "owner_name"]})
    );

    // The audit: what was asked about (the certificate and its owner), the answer, and the
    // real reason; the citizen sees the checks of their certificate.
    let mut rec = Value::Null;
    assert!(
        eventually(20, || {
            rec = s
                .audit("action=verify:no_match")
                .into_iter()
                .find(|r| r["principal"].as_str().unwrap().starts_with("mca-window"))
                .unwrap_or_default();
            !rec.is_null()
        }),
        "the no_match is audited"
    );
    assert_eq!(rec["reason"], "no_match: differs in owner_name");
    assert_eq!(rec["end_user"], "窗口 3 号");
    assert_eq!(rec["case_id"], "CASE-V1");
    let subjects: Vec<&str> = rec["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec![format!("certificate:{no}").as_str(), owner]);
    // Refusals are audited too, with what they asked about.
    let denied = s.audit("action=verify");
    let refused = denied
        .iter()
        .find(|r| {
            r["outcome"] == "denied"
                && r["principal"].as_str().unwrap().starts_with("ps-app")
                && r["reason"]
                    .as_str()
                    .unwrap()
                    .contains("no active grant to verify")
        })
        .expect("the refusal without a grant is audited");
    assert_eq!(refused["subjects"], json!([format!("certificate:{no}")]));
    let mine = s.citizen_view(owner);
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert!(mine.text().contains("verify:no_match"), "{}", mine.text());
}

#[test]
fn one_subject_is_rate_limited_across_callers_whether_or_not_it_exists() {
    let s = Server::start(&["--verify-subject-rate", "3"]);
    let (a, b) = (clerk(&s), clerk(&s));
    let c = an_active_certificate();
    for no in [
        c["certificate_no"].as_str().unwrap(),
        "鄂(2024)武汉市不动产权第9999999号",
    ] {
        let body = json!({"certificate_no": no, "owner_name": "某"});
        for key in [&a, &b, &a] {
            assert_eq!(result(&ask(&s, key, &body)), "no_match");
        }
        let r = ask(&s, &b, &body);
        assert_eq!(r.status, 429, "{no}: {}", r.text());
        assert_eq!(r.code(), "subject_rate_limited");
        assert!(r.header("retry-after").is_some());
        // The same certificate typed differently is the same subject.
        let r = ask(&s, &a, &json!({"certificate_no": as_typed(no)}));
        assert_eq!(r.status, 429);
    }
    // Another certificate is not held up.
    let other = json!({"certificate_no": "鄂(2024)武汉市不动产权第9999998号"});
    assert_eq!(result(&ask(&s, &a, &other)), "no_match");
}

#[test]
fn questions_that_cannot_be_asked_are_refused_with_what_is_wrong() {
    let s = Server::start(&[]);
    let key = clerk(&s);
    for (body, code) in [
        (json!({}), "no_handle"),
        (json!({"owner_name": "李红"}), "no_handle"),
        (
            json!({"owner_id": "420106198005170021", "owner_name": "李红"}),
            "bad_owner_id",
        ),
        (json!({"certificate_no": "  "}), "empty_field"),
        (
            json!({"certificate_no": "x", "area_m2": "89.567"}),
            "bad_area",
        ),
        (json!({"certificate_no": "x", "area_m2": -3}), "bad_area"),
        (json!({"certificate_no": "x", "owner": "李红"}), "bad_body"),
        (json!({"certificate_no": 12}), "bad_body"),
    ] {
        let r = ask(&s, &key, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.code(), code, "{body}");
        assert!(
            !r.text().contains("李红") && !r.text().contains("420106"),
            "{}",
            r.text()
        );
    }
}

#[test]
fn a_cancellation_reaches_the_register_within_seconds_of_its_event() {
    let tmp = tempfile::tempdir().unwrap();
    let feeds = tmp.path().join("feeds");
    common::simulate(&feeds, 300, 10, 5, 0.0);
    let lake = tmp.path().join("lake");
    // Its output stays open until it has stopped (it prints a summary then).
    let mut served = common::exchange::serve(
        &lake,
        &[
            "--refresh-ms",
            "300",
            "--table-refresh-ms",
            "300",
            "--flush-ms",
            "500",
        ],
    );
    let (broker, addr) = (served.broker.clone(), served.addr.clone());
    let key = common::exchange::principal_in(&lake, "nre-sys", "nre", "department_system");
    let feed = feeds.join("nre.property_certificate.jsonl");
    let p = common::publish("nre.property_certificate", &feed, &broker);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    // The newest record of an active certificate, and a cancellation of it.
    let c = common::jsonl(&feeds.join("_truth/certificates.jsonl"))
        .into_iter()
        .find(|c| c["status"] == "active")
        .unwrap();
    let no = c["certificate_no"].as_str().unwrap();
    let body = json!({"certificate_no": no, "owner_id": c["owner_id"]});
    assert!(
        eventually(120, || {
            let r = ask_at(&addr, &key, &body);
            r.status == 200 && r.json()["result"] == "match"
        }),
        "the published certificate never verified"
    );
    let last = common::jsonl(&feed)
        .into_iter()
        .rfind(|l| l["key"] == no)
        .unwrap();
    let after = last["value"]["after"].clone();
    let mut cancelled = after.clone();
    cancelled["status"] = json!("cancelled");
    let now = chrono::Utc::now();
    let event = json!({"key": no, "value": {"before": after, "after": cancelled, "op": "u",
        "ts_ms": now.timestamp_millis(), "source": last["value"]["source"]},
        "event_time": now.to_rfc3339()});
    let one = tmp.path().join("cancel.jsonl");
    std::fs::write(&one, format!("{event}\n")).unwrap();
    let sent = Instant::now();
    let p = common::publish("nre.property_certificate", &one, &broker);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert!(
        eventually(60, || ask_at(&addr, &key, &body).json()["result"]
            == "no_match"),
        "the cancellation never reached the register"
    );
    eprintln!(
        "cancellation published → no_match after {:.1} s",
        sent.elapsed().as_secs_f64()
    );
    common::terminate(&served.child);
    assert!(served.child.wait().unwrap().success());
}
