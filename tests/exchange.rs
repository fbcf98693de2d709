//! The exchange over loopback: the real `gdx exchange` on a real lake built by the
//! simulator, principals and grants made through the CLI and the API. The negative suite
//! (each case its own test) and the happy paths in every format, checked against the lake.

mod common;

use common::exchange::{Server, eventually, http, unique};
use serde_json::json;

const HH: &str = "/v1/datasets/ps.household_registration/rows";

/// Requests `body` as `key`; returns the grant JSON (asserting 201).
fn request(s: &Server, key: &str, body: serde_json::Value) -> serde_json::Value {
    let r = s.post("/v1/grants", key, &body.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn decide(s: &Server, key: &str, id: &str, what: &str, reason: &str) -> common::exchange::Resp {
    s.post(
        &format!("/v1/grants/{id}/{what}"),
        key,
        &json!({ "reason": reason }).to_string(),
    )
}

/// A consumer in mca with a masked grant on the household registration, approved by ps.
fn masked_household_grant(s: &Server) -> (String, String, String) {
    let consumer = s.principal("mca-app", "mca", "app");
    let approver = s.principal("ps-appr", "ps", "approver");
    let g = request(
        s,
        &consumer,
        json!({"resource": "ps.household_registration", "level": "masked",
               "purpose": "social_assistance", "legal_basis": "《社会救助暂行办法》第五十条"}),
    );
    assert_eq!(g["status"], "requested");
    let id = g["id"].as_str().unwrap().to_owned();
    let r = decide(s, &approver, &id, "approve", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "active");
    (consumer, approver, id)
}

#[test]
fn no_wrong_or_revoked_key_is_refused_and_each_refusal_is_audited() {
    let s = Server::start(&[]);
    let none = s.call(
        "GET",
        HH,
        &[("x-purpose", "social_assistance"), ("x-case-id", "C")],
        b"",
    );
    assert_eq!((none.status, none.code().as_str()), (401, "unauthorized"));
    let wrong = s.get(
        HH,
        "gdx_0000000000000000000000000000000000000000000000000000000000000000",
    );
    assert_eq!(wrong.status, 401);
    let id = unique("mca-app");
    let key = s.principal_named(&id, "mca", "app");
    let o = common::gdx(&[
        "principal",
        "revoke",
        &id,
        "--lake",
        common::exchange::lake_arg(),
    ]);
    assert!(o.status.success());
    // The revocation reaches this replica within its refresh (300 ms here).
    assert!(eventually(5, || s.get(HH, &key).status == 401));
    let records = s.audit("outcome=denied");
    let reasons: Vec<&str> = records
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"no API key"), "{reasons:?}");
    assert!(reasons.contains(&"an unknown key"), "{reasons:?}");
    assert!(
        reasons.contains(&"a revoked principal's key"),
        "{reasons:?}"
    );
}

/// `gdx principal rotate-key`: the new key works at once; the old one for its grace period
/// only, then it is refused like an unknown key (audited with the real reason).
#[test]
fn a_rotated_out_key_works_for_its_grace_period_only() {
    let s = Server::start(&[]);
    let rotate = |id: &str, grace: &str| {
        let o = common::gdx(&[
            "principal",
            "rotate-key",
            id,
            "--grace-minutes",
            grace,
            "--lake",
            common::exchange::lake_arg(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let key = common::stdout(&o).trim().to_owned();
        assert!(key.starts_with("gdx_") && !key.contains('\n'), "{key}");
        key
    };
    let id = unique("ps-sys");
    let first = s.principal_named(&id, "ps", "department_system");
    // With a grace period both keys work.
    let second = rotate(&id, "60");
    assert_ne!(first, second);
    assert!(eventually(5, || s.get(HH, &second).status == 200));
    assert_eq!(s.get(HH, &first).status, 200, "still in its grace period");
    // Without one, the key rotated out stops with the change, and so does the graced one.
    let third = rotate(&id, "0");
    assert!(eventually(5, || s.get(HH, &third).status == 200));
    assert_eq!(s.get(HH, &second).status, 401);
    assert_eq!(s.get(HH, &first).status, 401);
    let records = s.audit("outcome=denied");
    assert!(
        records
            .iter()
            .any(|r| r["reason"] == "a rotated-out key past its grace period"),
        "{records:?}"
    );
    // Listing shows when the key changed, never a key.
    let list = common::gdx(&["principal", "list", "--lake", common::exchange::lake_arg()]);
    let text = common::stdout(&list);
    assert!(text.contains("key since") && text.contains(&id), "{text}");
    assert!(!text.contains(&third) && !text.contains("gdx_"), "{text}");
}

#[test]
fn a_missing_purpose_is_400_an_unknown_one_403_and_a_case_id_is_required() {
    let s = Server::start(&[]);
    let key = s.principal("ps-sys", "ps", "department_system");
    let auth = format!("Bearer {key}");
    let r = s.call(
        "GET",
        HH,
        &[("authorization", &auth), ("x-case-id", "C")],
        b"",
    );
    assert_eq!((r.status, r.code().as_str()), (400, "purpose_required"));
    let r = s.call(
        "GET",
        HH,
        &[
            ("authorization", &auth),
            ("x-case-id", "C"),
            ("x-purpose", "marketing"),
        ],
        b"",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "unknown_purpose"));
    let r = s.call(
        "GET",
        HH,
        &[("authorization", &auth), ("x-purpose", "social_assistance")],
        b"",
    );
    assert_eq!((r.status, r.code().as_str()), (400, "case_id_required"));
    // With both, the department's own system reads its own data raw.
    let r = s.get(&format!("{HH}?limit=3"), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json()["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3);
    assert!(!rows[0]["resident_id"].as_str().unwrap().contains('*'));
}

#[test]
fn another_departments_dataset_without_a_grant_is_404_and_audited_with_the_real_reason() {
    let s = Server::start(&[]);
    let key = s.principal("mca-app", "mca", "app");
    let r = s.get(HH, &key);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    // Exactly what a dataset that does not exist answers.
    let missing = s.get("/v1/datasets/ps.no_such_dataset/rows", &key);
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"]["message"],
        r.json()["error"]["message"]
    );
    let records = s.audit("action=read_rows&outcome=denied");
    assert!(
        records
            .iter()
            .any(|x| x["object"] == "dataset:ps.household_registration"
                && x["reason"].as_str().unwrap().contains("no active grant")),
        "{records:?}"
    );
}

#[test]
fn requested_denied_and_revoked_grants_do_not_count_and_a_revocation_is_refused_on_the_next_call() {
    let s = Server::start(&[]);
    let consumer = s.principal("mca-app", "mca", "app");
    let approver = s.principal("ps-appr", "ps", "approver");
    let body = json!({"resource": "ps.household_registration", "level": "masked",
                      "purpose": "social_assistance", "legal_basis": "《社会救助暂行办法》"});
    let g = request(&s, &consumer, body.clone());
    let id = g["id"].as_str().unwrap();
    assert_eq!(s.get(HH, &consumer).status, 404, "a request is not a grant");
    // Denial needs a reason, and ends the request.
    assert_eq!(decide(&s, &approver, id, "deny", "").status, 422);
    let r = decide(
        &s,
        &approver,
        id,
        "deny",
        "the case does not need household data",
    );
    assert_eq!(r.json()["status"], "denied");
    assert_eq!(s.get(HH, &consumer).status, 404);
    assert_eq!(decide(&s, &approver, id, "approve", "").status, 409);
    // Approved: readable, masked.
    let g = request(&s, &consumer, body);
    let id = g["id"].as_str().unwrap();
    assert_eq!(decide(&s, &approver, id, "approve", "").status, 200);
    let r = s.get(&format!("{HH}?limit=5"), &consumer);
    assert_eq!(r.status, 200, "{}", r.text());
    // Revoked: the very next call is refused.
    assert_eq!(
        decide(&s, &approver, id, "revoke", "case closed").status,
        200
    );
    assert_eq!(s.get(HH, &consumer).status, 404);
}

#[test]
fn an_expired_grant_stops_counting_at_its_expiry() {
    let s = Server::start(&[]);
    let consumer = s.principal("mca-app", "mca", "app");
    let approver = s.principal("ps-appr", "ps", "approver");
    let expires = chrono::Utc::now() + chrono::Duration::seconds(4);
    let g = request(
        &s,
        &consumer,
        json!({"resource": "ps.household_registration", "level": "masked", "purpose": "social_assistance",
               "legal_basis": "《社会救助暂行办法》", "expires_at": expires.to_rfc3339()}),
    );
    let id = g["id"].as_str().unwrap();
    assert_eq!(decide(&s, &approver, id, "approve", "").status, 200);
    assert_eq!(s.get(HH, &consumer).status, 200);
    while chrono::Utc::now() < expires {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(s.get(HH, &consumer).status, 404);
}

#[test]
fn nobody_approves_their_own_request_nor_another_departments() {
    let s = Server::start(&[]);
    let consumer = s.principal("mca-app", "mca", "app");
    let mca_approver = s.principal("mca-appr", "mca", "approver");
    let g = request(
        &s,
        &consumer,
        json!({"resource": "ps.household_registration", "level": "masked", "purpose": "social_assistance",
               "legal_basis": "《社会救助暂行办法》"}),
    );
    let id = g["id"].as_str().unwrap();
    let own = decide(&s, &consumer, id, "approve", "");
    assert_eq!(own.status, 403, "{}", own.text());
    // An approver of another department does not even see it.
    assert_eq!(decide(&s, &mca_approver, id, "approve", "").status, 404);
    assert_eq!(s.get(HH, &consumer).status, 404);
}

#[test]
fn level_4_raw_needs_minimised_fields_a_legal_basis_and_the_cpo_as_well_as_the_owner() {
    let s = Server::start(&[]);
    let consumer = s.principal("mca-app", "mca", "app");
    let approver = s.principal("ps-appr", "ps", "approver");
    let cpo = s.principal("cpo", "bdc", "cpo");
    let all = s.post(
        "/v1/grants",
        &consumer,
        &json!({"resource": "ps.household_registration", "level": "raw",
        "purpose": "social_assistance", "legal_basis": "《社会救助暂行办法》"})
        .to_string(),
    );
    assert_eq!(
        (all.status, all.code().as_str()),
        (422, "invalid_request"),
        "{}",
        all.text()
    );
    let g = request(
        &s,
        &consumer,
        json!({"resource": "ps.household_registration", "level": "raw", "purpose": "social_assistance",
               "legal_basis": "《社会救助暂行办法》", "fields": ["resident_id", "street", "status"]}),
    );
    let id = g["id"].as_str().unwrap();
    assert_eq!(
        decide(&s, &approver, id, "approve", "").json()["status"],
        "requested"
    );
    assert_eq!(
        s.get(HH, &consumer).status,
        404,
        "the owner alone is not enough"
    );
    assert_eq!(
        decide(&s, &cpo, id, "approve", "").json()["status"],
        "active"
    );
    let r = s.get(&format!("{HH}?limit=3"), &consumer);
    assert_eq!(r.status, 200, "{}", r.text());
    let row = r.json()["rows"][0].clone();
    let fields: Vec<&String> = row
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with('_'))
        .collect();
    assert_eq!(fields.len(), 3, "{row}");
    assert!(!row["resident_id"].as_str().unwrap().contains('*'));
    assert!(row.get("name").is_none());
}

/// A dataset its owner declares 不予共享 (`none`, with its legal basis) is never granted raw,
/// and anything less needs the owner's approval: here the district catalog with the
/// disability certificates declared so, over the same lake.
#[test]
fn a_dataset_shared_with_nobody_is_never_granted_raw() {
    let catalog = tempfile::tempdir().unwrap();
    let district = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/district");
    for entry in std::fs::read_dir(&district).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "mca.disability_certificate.toml" {
            text = text
                .lines()
                .map(|l| {
                    if l.starts_with("sharing = ") {
                        "sharing = { type = \"none\", method = \"无\", legal_basis = \"《中华人民共和国残疾人保障法》：残疾人的个人信息依法予以保护\" }".to_owned()
                    } else {
                        l.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        std::fs::write(catalog.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let s = Server::start(&["--catalog", catalog.path().to_str().unwrap()]);
    let shown = s.get(
        "/v1/catalog/datasets/mca.disability_certificate",
        &s.principal("any", "hrss", "app"),
    );
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert!(shown.text().contains("\"none\""), "{}", shown.text());
    let consumer = s.principal("hrss-app", "hrss", "app");
    let raw = s.post(
        "/v1/grants",
        &consumer,
        &json!({"resource": "mca.disability_certificate", "level": "raw",
                "purpose": "social_assistance", "legal_basis": "《社会救助暂行办法》",
                "fields": ["resident_id"]})
        .to_string(),
    );
    assert_eq!(
        (raw.status, raw.code().as_str()),
        (422, "never_shared"),
        "{}",
        raw.text()
    );
    let masked = request(
        &s,
        &consumer,
        json!({"resource": "mca.disability_certificate", "level": "masked",
               "purpose": "social_assistance", "legal_basis": "《社会救助暂行办法》"}),
    );
    assert_eq!(masked["status"], "requested", "{masked}");
    let needs = masked["requirement"]["approvals"]
        .as_array()
        .unwrap()
        .clone();
    assert!(needs.contains(&json!("owner")), "{needs:?}");
}

#[test]
fn masked_columns_filtered_or_sorted_through_the_rows_api_give_only_masked_values() {
    let s = Server::start(&[]);
    let (consumer, _, _) = masked_household_grant(&s);
    let r = s.get(
        &format!("{HH}?limit=50&fields=resident_id,name,street"),
        &consumer,
    );
    let rows = r.json()["rows"].as_array().unwrap().clone();
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(
            row["resident_id"].as_str().unwrap().contains("********"),
            "{row}"
        );
        assert!(row["name"].as_str().unwrap().contains('*'), "{row}");
    }
    // The raw ID of a row the department's own system sees: as a filter it matches nothing.
    let owner = s.principal("ps-sys", "ps", "department_system");
    let raw = s
        .get(&format!("{HH}?limit=1&fields=resident_id"), &owner)
        .json()["rows"][0]["resident_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_raw = s.get(&format!("{HH}?resident_id={raw}"), &consumer);
    assert_eq!(by_raw.json()["rows"].as_array().unwrap().len(), 0);
    // Its mask matches the rows whose mask it is, and they come back masked.
    let masked = rows[0]["resident_id"].as_str().unwrap();
    let by_mask = s.get(&format!("{HH}?resident_id={}", enc(masked)), &consumer);
    let got = by_mask.json()["rows"].as_array().unwrap().clone();
    assert!(!got.is_empty());
    assert!(got.iter().all(|r| r["resident_id"] == masked));
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn a_row_scoped_grant_never_returns_another_streets_rows() {
    let s = Server::start(&[]);
    let consumer = s.principal("street-app", "mca", "app");
    let approver = s.principal("ps-appr", "ps", "approver");
    let g = request(
        &s,
        &consumer,
        json!({"resource": "ps.household_registration", "level": "masked", "purpose": "social_assistance",
               "legal_basis": "《社会救助暂行办法》", "rows": {"street": ["中华路街道"]}}),
    );
    decide(&s, &approver, g["id"].as_str().unwrap(), "approve", "");
    let all = s.get(&format!("{HH}?limit=10000&fields=street"), &consumer);
    let rows = all.json()["rows"].as_array().unwrap().clone();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["street"] == "中华路街道"), "{rows:?}");
    // Asking for another street gives nothing, not an error that tells of it.
    let other = s.get(&format!("{HH}?street={}", enc("首义路街道")), &consumer);
    assert_eq!(other.status, 200);
    assert_eq!(other.json()["rows"].as_array().unwrap().len(), 0);
}

#[test]
fn path_tricks_never_reach_another_dataset() {
    let s = Server::start(&[]);
    // A consumer with a grant on an unconditional dataset (active at request).
    let consumer = s.principal("mca-app", "mca", "app");
    let g = request(
        &s,
        &consumer,
        json!({"resource": "stats.above_scale_enterprise", "level": "masked", "purpose": "statistics"}),
    );
    assert_eq!(g["status"], "active");
    assert_eq!(
        s.get("/v1/datasets/stats.above_scale_enterprise/rows", &consumer)
            .status,
        200
    );
    for path in [
        "/v1/datasets/stats.above_scale_enterprise/../ps.household_registration/rows",
        "/v1/datasets/stats.above_scale_enterprise%2f..%2fps.household_registration/rows",
        "/v1/datasets/%2e%2e/ps.household_registration/rows",
        "/v1/datasets/%252e%252e%252fps.household_registration/rows",
        "/v1/datasets/ps.household_registration/rows/",
        "/v1/datasets/PS.Household_Registration/rows",
        "/v1/datasets/ps.household_registration%00/rows",
        "/v1/datasets/ps%2ehousehold_registration/rows",
        "/V1/datasets/ps.household_registration/rows",
    ] {
        let r = s.get(path, &consumer);
        assert!(
            r.status == 404 || r.status == 400,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.json().get("rows").is_none(), "{path}");
    }
}

#[test]
fn an_oversized_body_is_refused_in_the_envelope() {
    let s = Server::start(&["--body-limit-kb", "4"]);
    let key = s.principal("mca-app", "mca", "app");
    let big = format!("{{\"resource\":\"{}\"}}", "x".repeat(10_000));
    let r = s.post("/v1/grants", &key, &big);
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "body_too_large"),
        "{}",
        r.text()
    );
    let r = s.post("/v1/grants", &key, "{\"resource\": 1}");
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "bad_body"),
        "{}",
        r.text()
    );
}

#[test]
fn a_principal_over_its_rate_is_answered_429_with_retry_after() {
    let s = Server::start(&["--rate-limit", "2", "--rate-burst", "3"]);
    let key = s.principal("mca-app", "mca", "app");
    // Up to the burst, then refused until the budget refills.
    let answers: Vec<common::exchange::Resp> = (0..10)
        .map(|_| s.get("/v1/catalog/datasets", &key))
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses[0], 200, "{statuses:?}");
    let limited = answers
        .iter()
        .find(|r| r.status == 429)
        .unwrap_or_else(|| panic!("{statuses:?}"));
    assert_eq!(limited.code(), "rate_limited");
    assert!(limited.header("retry-after").is_some());
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 4,
        "{statuses:?}"
    );
    // Another principal has its own budget.
    let other = s.principal("mca-app", "mca", "app");
    assert_eq!(s.get("/v1/catalog/datasets", &other).status, 200);
}

#[test]
fn a_concurrent_approval_and_revocation_apply_in_one_order() {
    let s = Server::start(&[]);
    for _ in 0..3 {
        let consumer = s.principal("mca-app", "mca", "app");
        let approver = s.principal("ps-appr", "ps", "approver");
        let g = request(
            &s,
            &consumer,
            json!({"resource": "ps.household_registration", "level": "masked", "purpose": "social_assistance",
                   "legal_basis": "《社会救助暂行办法》"}),
        );
        let id = g["id"].as_str().unwrap().to_owned();
        let (a, b) = std::thread::scope(|t| {
            let approve = t.spawn(|| decide(&s, &approver, &id, "approve", "").status);
            let withdraw =
                t.spawn(|| decide(&s, &consumer, &id, "revoke", "no longer needed").status);
            (approve.join().unwrap(), withdraw.join().unwrap())
        });
        // Whichever came first, the withdrawal wins in the end and nobody reads.
        assert_eq!(b, 200);
        assert!(a == 200 || a == 409, "approve answered {a}");
        let st = s.get(&format!("/v1/grants/{id}"), &consumer).json()["status"].clone();
        assert_eq!(st, "revoked");
        assert_eq!(s.get(HH, &consumer).status, 404);
    }
}

#[test]
fn every_format_answers_the_rows_the_lake_holds() {
    let s = Server::start(&[]);
    let owner = s.principal("hrss-sys", "hrss", "department_system");
    let path = "/v1/datasets/hrss.employer_headcount/rows";
    let count = common::gdx(&[
        "sql",
        "--lake",
        common::exchange::lake_arg(),
        "--format",
        "csv",
        "select count(*) from hrss.employer_headcount",
    ]);
    let expected: usize = common::stdout(&count)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(expected > 0);
    // JSON, paged.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let p = match &cursor {
            Some(c) => format!("{path}?limit=7&cursor={c}"),
            None => format!("{path}?limit=7"),
        };
        let r = s.get(&p, &owner);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        seen += v["rows"].as_array().unwrap().len();
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    let fetch = |accept: &str, encoding: &str| {
        s.call(
            "GET",
            path,
            &[
                ("authorization", &format!("Bearer {owner}")),
                ("x-purpose", "statistics"),
                ("x-case-id", "C"),
                ("accept", accept),
                ("accept-encoding", encoding),
            ],
            b"",
        )
    };
    let with_accept = |accept: &str| fetch(accept, "identity");
    let csv = with_accept("text/csv");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.text().lines().count(), expected + 1, "header + rows");
    assert_eq!(csv.header("content-encoding"), None, "not asked for");
    // Compressed when the client accepts it (Parquet, compressed already, is not).
    let compressed = |accept: &str| fetch(accept, "gzip");
    let gz = compressed("text/csv");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut text)
        .unwrap();
    assert_eq!(text, csv.text());
    let pq = compressed("application/vnd.apache.parquet");
    assert_eq!(pq.header("content-encoding"), None);
    let arrow = with_accept("application/vnd.apache.arrow.stream");
    assert_eq!(
        arrow.header("content-type"),
        Some("application/vnd.apache.arrow.stream")
    );
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow.body.clone()), None)
            .unwrap();
    let n: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(n, expected);
    let pq = with_accept("application/vnd.apache.parquet");
    let file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut &file, &pq.body).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let n: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(n, expected);
    let no = with_accept("image/png");
    assert_eq!((no.status, no.code().as_str()), (406, "not_acceptable"));
    // The export is audited when it starts and when it completes, with its row count.
    let records = s.audit("action=read%3Araw%20export_completed");
    assert!(
        records
            .iter()
            .any(|r| r["rows"].as_i64() == Some(expected as i64)),
        "{records:?}"
    );
}

/// The value of a counter on `/metrics` (0 when absent).
fn metric(s: &Server, name: &str) -> f64 {
    http(&s.addr, "GET", "/metrics", &[], b"")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_profile_is_shown_as_the_grant_allows_and_the_citizen_sees_who_used_it() {
    let s = Server::start(&[]);
    let consumer = s.principal("mca-app", "mca", "app");
    let owner = s.principal("ps-sys", "ps", "department_system");
    let id = s
        .get(
            &format!("{HH}?limit=1&fields=resident_id&status=active"),
            &owner,
        )
        .json()["rows"][0]["resident_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/profiles/citizens/{id}");
    assert_eq!(s.get(&path, &consumer).status, 404, "no grant yet");
    let g = request(
        &s,
        &consumer,
        json!({"resource": "profiles.citizen", "level": "masked", "purpose": "social_assistance",
        "legal_basis": "《社会救助暂行办法》"}),
    );
    let gid = g["id"].as_str().unwrap();
    let approvals: Vec<String> = g["requirement"]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    for a in approvals {
        let key = if a == "owner" {
            s.principal("bdc-appr", "bdc", "approver")
        } else {
            s.principal("cpo", "bdc", "cpo")
        };
        assert_eq!(decide(&s, &key, gid, "approve", "").status, 200);
    }
    let r = s.get(&path, &consumer);
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json()["profile"].clone();
    assert!(p["resident_id"].as_str().unwrap().contains('*'), "{p}");
    // The newest version is answered from memory (once its index is built); a replica
    // given no memory for it scans the lake through a session: the same profile, masked
    // alike.
    let from_memory =
        |s: &Server| metric(s, r#"gdx_exchange_profile_lookups_total{path="memory"}"#);
    let before = from_memory(&s);
    assert!(
        eventually(20, || {
            s.get(&path, &consumer).status == 200 && from_memory(&s) > before
        }),
        "profile lookups never served from memory"
    );
    let scanning = Server::start(&["--lookup-memory-mb", "0"]);
    let scanned = |s: &Server| metric(s, r#"gdx_exchange_profile_lookups_total{path="scan"}"#);
    assert!(eventually(10, || scanning.get(&path, &consumer).status == 200));
    assert!(scanned(&scanning) > 0.0 && from_memory(&scanning) == 0.0);
    let a = s.get(&path, &consumer).json();
    let b = scanning.get(&path, &consumer).json();
    assert_eq!(a, b);
    // Full-width digits are the same person.
    let wide: String = id
        .chars()
        .map(|c| {
            c.to_digit(10)
                .map_or(c, |d| char::from_u32(0xFF10 + d).unwrap())
        })
        .collect();
    assert_eq!(
        s.get(&format!("/v1/profiles/citizens/{}", enc(&wide)), &consumer)
            .status,
        200
    );
    assert_eq!(
        s.get("/v1/profiles/citizens/123", &consumer).code(),
        "bad_resident_id"
    );
    // The citizen's view: who used their data, when and why (the rows API read by the
    // owner touched them too, recorded with the ID as stored though the caller saw it).
    let mine = s.citizen_view(&id);
    assert_eq!(mine.status, 200, "{}", mine.text());
    let records = mine.json()["records"].as_array().unwrap().clone();
    assert!(
        records.iter().any(|r| r["object"]
            .as_str()
            .unwrap()
            .starts_with("profile:citizen/")
            && r["purpose"] == "social_assistance"),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["object"] == "dataset:ps.household_registration"),
        "{records:?}"
    );
}

#[test]
fn the_audit_detects_tampering_and_a_restart_keeps_grants_and_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let audit_dir = tmp.path().join("audit");
    let replica = unique("r");
    let mut s = Server::start_at(&audit_dir, &replica, &[]);
    let (consumer, _, gid) = masked_household_grant(&s);
    for _ in 0..3 {
        assert_eq!(s.get(HH, &consumer).status, 200);
    }
    // A graceful stop ships the trail; a restart keeps the grant and continues the chain.
    common::terminate(&s.child);
    assert!(s.child.wait().unwrap().success());
    drop(s);
    let lake = common::exchange::lake_arg();
    let dir = audit_dir.to_str().unwrap();
    let verify = || common::gdx(&["audit", "verify", "--lake", lake, "--audit-dir", dir]);
    let ok = verify();
    assert!(ok.status.success(), "{}", common::stdout(&ok));
    assert!(
        common::stdout(&ok).contains(&format!("local {replica}: ")),
        "{}",
        common::stdout(&ok)
    );
    s = Server::start_at(&audit_dir, &replica, &[]);
    assert_eq!(s.get(HH, &consumer).status, 200);
    assert_eq!(
        s.get(&format!("/v1/grants/{gid}"), &consumer).json()["status"],
        "active"
    );
    // Stopped gracefully again: everything is shipped, so the lake anchors the whole log.
    common::terminate(&s.child);
    assert!(s.child.wait().unwrap().success());
    drop(s);
    let log = audit_dir.join(format!("{replica}.log"));
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 8);
    let broken = |text: String, expect: &str| {
        std::fs::write(&log, text).unwrap();
        let o = verify();
        let out = common::stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{expect}: {out}");
        assert!(out.contains(expect), "{expect}: {out}");
    };
    let join = |ls: Vec<&str>| ls.join("\n") + "\n";
    // Edited.
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[2] = edited[2].replacen("\"rows\":", "\"rows\":1", 1);
    broken(edited.join("\n") + "\n", "edited");
    // Deleted.
    let mut deleted = lines.clone();
    deleted.remove(3);
    broken(join(deleted), "deleted");
    // Reordered.
    let mut reordered = lines.clone();
    reordered.swap(1, 2);
    broken(join(reordered), "out of order");
    // Inserted: a copy of a record.
    let mut inserted = lines.clone();
    inserted.insert(4, lines[4]);
    broken(join(inserted), "inserted");
    // Truncated: a chain intact in itself, shorter than the lake's copy.
    broken(join(lines[..lines.len() - 2].to_vec()), "truncated");
    // A replica whose log lost records refuses to start.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args([
            "exchange",
            "--lake",
            lake,
            "--listen",
            "127.0.0.1:0",
            "--replica",
            &replica,
            "--audit-dir",
            dir,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    std::fs::write(&log, original).unwrap();
    assert!(verify().status.success());
}

/// With `--brokers`, the replica anchors its chain head on `gdx.audit`; `gdx audit verify
/// --brokers` checks every chain still reaches its anchor, so a log cut short below the
/// anchored head is caught by the anchor too (not only by the lake's copy).
#[test]
fn the_audit_head_is_anchored_on_gdx_audit_and_a_chain_cut_below_it_shows() {
    let broker = gdx_ingest::broker::EmbeddedBroker::new(1).unwrap();
    broker.create_topic("gdx.audit", 1).unwrap();
    let brokers = broker.bootstrap();
    let tmp = tempfile::tempdir().unwrap();
    let audit_dir = tmp.path().join("audit");
    let replica = unique("r");
    let s = Server::start_at(&audit_dir, &replica, &["--brokers", &brokers]);
    let key = s.principal("ps-sys", "ps", "department_system");
    for _ in 0..3 {
        assert_eq!(s.get(HH, &key).status, 200);
    }
    common::terminate(&s.child);
    let mut s = s;
    assert!(s.child.wait().unwrap().success());
    drop(s);
    let lake = common::exchange::lake_arg();
    let dir = audit_dir.to_str().unwrap();
    let verify = || {
        common::gdx(&[
            "audit",
            "verify",
            "--lake",
            lake,
            "--audit-dir",
            dir,
            "--brokers",
            &brokers,
        ])
    };
    let ok = verify();
    let out = common::stdout(&ok);
    assert!(ok.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "local {replica}: reaches the head anchored on gdx.audit"
        )),
        "{out}"
    );
    let log = audit_dir.join(format!("{replica}.log"));
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    std::fs::write(&log, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let cut = verify();
    let out = common::stdout(&cut);
    assert_eq!(cut.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("local {replica}: BROKEN"))
            && out.contains("anchored on gdx.audit (truncated)"),
        "{out}"
    );
}

#[test]
fn when_the_audit_cannot_be_written_the_call_fails() {
    let s = Server::start(&[]);
    let key = s.principal("ps-sys", "ps", "department_system");
    assert_eq!(s.get(HH, &key).status, 200);
    // The log file becomes something that cannot be appended to.
    let log = s.log_path();
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    let r = s.get(HH, &key);
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "audit_unavailable"),
        "{}",
        r.text()
    );
    assert!(r.json().get("rows").is_none());
}

#[test]
fn a_change_on_one_replica_is_in_force_on_another_within_its_refresh() {
    let a = Server::start(&[]);
    let b = Server::start(&[]);
    let (consumer, approver, gid) = masked_household_grant(&a);
    assert!(eventually(3, || b.get(HH, &consumer).status == 200));
    assert_eq!(
        decide(&a, &approver, &gid, "revoke", "case closed").status,
        200
    );
    let t = std::time::Instant::now();
    assert!(eventually(3, || b.get(HH, &consumer).status == 404));
    // Refresh every 300 ms here (1 s by default): refused well within a second.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn health_ready_and_the_envelope_for_unknown_routes() {
    let s = Server::start(&[]);
    assert_eq!(http(&s.addr, "GET", "/health", &[], b"").status, 200);
    let ready = http(&s.addr, "GET", "/ready", &[], b"");
    assert_eq!(ready.status, 200);
    let key = s.principal("mca-app", "mca", "app");
    assert_eq!(s.get("/v1/purposes", &key).status, 200);
    let nf = http(&s.addr, "GET", "/nope", &[], b"");
    assert_eq!((nf.status, nf.code().as_str()), (404, "not_found"));
    let m = http(&s.addr, "DELETE", "/health", &[], b"");
    assert_eq!((m.status, m.code().as_str()), (405, "method_not_allowed"));
    assert!(
        http(&s.addr, "GET", "/health", &[], b"")
            .header("x-request-id")
            .is_some()
    );
    // Metrics name actions and outcomes, never a value.
    let m = http(&s.addr, "GET", "/metrics", &[], b"").text();
    assert!(m.contains("gdx_exchange_calls_total"), "{m}");
    // The OpenAPI document served is the one committed.
    let served = http(&s.addr, "GET", "/openapi.json", &[], b"").json();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/exchange/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, committed);
}

/// `gdx serve`: ingest from the embedded broker, the background fold and the exchange in one
/// process; a feed published to it becomes rows the exchange serves; SIGTERM stops it in order.
#[test]
fn gdx_serve_ingests_folds_and_serves_in_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let feeds = tmp.path().join("feeds");
    common::simulate(&feeds, 60, 6, 4, 0.0);
    let lake = tmp.path().join("lake");
    let mut served = common::exchange::serve(&lake, &["--refresh-ms", "300"]);
    let (broker, addr) = (served.broker.clone(), served.addr.clone());
    let key = common::exchange::principal_in(&lake, "serve-ps", "ps", "department_system");
    let feed = feeds.join("ps.household_registration.jsonl");
    let published = std::fs::read_to_string(&feed).unwrap().lines().count();
    let p = common::gdx(&[
        "publish",
        "--dataset",
        "ps.household_registration",
        "--file",
        feed.to_str().unwrap(),
        "--brokers",
        &broker,
    ]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert!(published > 0);
    let auth = format!("Bearer {key}");
    let rows = || {
        let r = http(
            &addr,
            "GET",
            "/v1/datasets/ps.household_registration/rows?limit=10000&fields=resident_id",
            &[
                ("authorization", &auth),
                ("x-purpose", "government_service"),
                ("x-case-id", "C"),
            ],
            b"",
        );
        if r.status != 200 {
            return 0;
        }
        r.json()["rows"].as_array().map_or(0, Vec::len)
    };
    assert!(
        eventually(60, || rows() > 0),
        "the published feed never reached the exchange"
    );
    common::terminate(&served.child);
    let status = served.child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut served.out, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("ingest: "), "{rest}");
}

/// `POST /v1/sql` as `key`, for a statistics case, answering in `accept`.
fn sql(s: &Server, key: &str, body: serde_json::Value, accept: &str) -> common::exchange::Resp {
    s.call(
        "POST",
        "/v1/sql",
        &[
            ("authorization", &format!("Bearer {key}")),
            ("x-purpose", "statistics"),
            ("x-case-id", "SQL-1"),
            ("content-type", "application/json"),
            ("accept", accept),
        ],
        body.to_string().as_bytes(),
    )
}

/// SQL over HTTP sees what the caller's grants show — hidden tables answer like missing
/// ones, masked columns come masked exactly as through the rows API — refuses anything but
/// reading, says what is wrong with a statement, caps rows, and is audited with the tables
/// it read and the grants that showed them.
#[test]
fn sql_over_http_sees_exactly_what_the_grants_show_and_is_audited() {
    let s = Server::start(&["--sql-max-rows", "5"]);
    let analyst = s.principal("mca-analyst", "mca", "analyst");
    let json = "application/json";
    let hidden = sql(
        &s,
        &analyst,
        json!({"sql": "select * from ps.household_registration"}),
        json,
    );
    let missing = sql(
        &s,
        &analyst,
        json!({"sql": "select * from ps.household_registrationx"}),
        json,
    );
    assert_eq!(
        (hidden.status, missing.status),
        (404, 404),
        "{}",
        hidden.text()
    );
    let message = |r: &common::exchange::Resp, name: &str| {
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace(name, "T")
    };
    assert_eq!(
        message(&hidden, "ps.household_registration"),
        message(&missing, "ps.household_registrationx")
    );
    // A masked grant: the same masked rows as the rows API shows for it.
    let approver = s.principal("ps-appr", "ps", "approver");
    let g = request(
        &s,
        &analyst,
        json!({"resource": "ps.household_registration", "level": "masked",
               "purpose": "statistics", "legal_basis": "《统计法》"}),
    );
    let gid = g["id"].as_str().unwrap().to_owned();
    assert_eq!(
        decide(&s, &approver, &gid, "approve", "").json()["status"],
        "active"
    );
    let r = sql(
        &s,
        &analyst,
        json!({"sql": "select resident_id, name, street from ps.household_registration order by 1, 2, 3 limit 4"}),
        json,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["truncated"], false);
    assert_eq!(v["row_count"], 4);
    assert_eq!(v["columns"][0]["name"], "resident_id");
    let via_rows = s
        .call(
            "GET",
            &format!("{HH}?limit=4&fields=resident_id,name,street"),
            &[
                ("authorization", &format!("Bearer {analyst}")),
                ("x-purpose", "statistics"),
                ("x-case-id", "SQL-1"),
            ],
            b"",
        )
        .json();
    assert_eq!(v["rows"], via_rows["rows"]);
    assert!(v["rows"][0]["resident_id"].as_str().unwrap().contains('*'));
    // Parameters, converted only when nothing is lost.
    let street = v["rows"][0]["street"].as_str().unwrap().to_owned();
    let p = sql(
        &s,
        &analyst,
        json!({"sql": "select count(*) as n from ps.household_registration where street = $1", "params": [street]}),
        json,
    );
    assert_eq!(p.status, 200, "{}", p.text());
    assert!(p.json()["rows"][0]["n"].as_i64().unwrap() > 0);
    let lossy = sql(
        &s,
        &analyst,
        json!({"sql": "select column1 as value from (values (1), (2), (3)) where column1 > $1", "params": [1.5]}),
        json,
    );
    assert_eq!(lossy.code(), "bad_parameter", "{}", lossy.text());
    let exact = sql(
        &s,
        &analyst,
        json!({"sql": "select column1 as value from (values (1), (2), (3)) where column1 > $1", "params": ["2"]}),
        json,
    );
    assert_eq!(
        exact.json()["rows"],
        json!([{"value": 3}]),
        "{}",
        exact.text()
    );
    // The row cap: JSON says it cut the answer; exactly the cap is not cut.
    let nine = "select * from (values (1), (2), (3), (4), (5), (6), (7), (8), (9))";
    let capped = sql(&s, &analyst, json!({"sql": nine}), json).json();
    assert_eq!(
        (capped["row_count"].as_i64(), capped["truncated"].as_bool()),
        (Some(5), Some(true))
    );
    let exact = sql(
        &s,
        &analyst,
        json!({"sql": "select * from (values (1), (2), (3), (4), (5))"}),
        json,
    )
    .json();
    assert_eq!(exact["truncated"], false);
    let csv = sql(&s, &analyst, json!({"sql": nine}), "text/csv");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.text().lines().count(), 6, "header + the cap");
    // What is wrong is said; reading is all there is.
    let syntax = sql(&s, &analyst, json!({"sql": "selec 1"}), json);
    assert_eq!(
        (syntax.status, syntax.code().as_str()),
        (400, "bad_sql"),
        "{}",
        syntax.text()
    );
    for write in [
        "create table t as select 1",
        "insert into ps.household_registration select * from ps.household_registration",
        "set datafusion.execution.batch_size = 1",
        "copy (select 1) to '/tmp/x.csv'",
    ] {
        let r = sql(&s, &analyst, json!({ "sql": write }), json);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "read_only"),
            "{write}: {}",
            r.text()
        );
    }
    let unknown = sql(&s, &analyst, json!({"sql": "select 1", "limit": 3}), json);
    assert_eq!(unknown.code(), "bad_body");
    // Apps use the API, not SQL.
    let app = s.principal("mca-app", "mca", "app");
    assert_eq!(
        sql(&s, &app, json!({"sql": "select 1"}), json).code(),
        "not_entitled"
    );
    // Audited: the tables read and the grant that showed them.
    let records = s.audit("outcome=allowed");
    assert!(
        records.iter().any(|r| r["action"]
            .as_str()
            .unwrap()
            .starts_with("query ps.household_registration")
            && r["grants"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == &json!(gid))),
        "{records:?}"
    );
    let denied = s.audit("outcome=denied");
    assert!(denied.iter().any(|r| r["object"] == "sql"), "{denied:?}");
}
