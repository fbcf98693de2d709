//! The catalog, identifier and policy-file commands, run as a user would run them.

mod common;

use common::{gdx, stdout};

#[test]
fn id_check_accepts_the_reference_vectors() {
    let o = gdx(&[
        "id",
        "check",
        "11010519491231002X",
        "440524188001010014",
        "91350100M000100Y43",
        "６２２２０２０２００１１２２３３４４５",
        "+86 138-0013-8000",
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    // The bank card line fails (wrong Luhn digit); the others are valid.
    assert!(
        out.contains("11010519491231002X: valid resident_id"),
        "{out}"
    );
    assert!(
        out.contains("440524188001010014: valid resident_id"),
        "{out}"
    );
    assert!(out.contains("91350100M000100Y43: valid uscc"), "{out}");
    assert!(
        out.contains("+86 138-0013-8000: valid mobile (normalised: 13800138000)"),
        "{out}"
    );
    let o = gdx(&[
        "id",
        "check",
        "11010519491231002X",
        "91350100M000100Y43",
        "4111111111111111",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn id_check_rejects_every_single_digit_change() {
    // Checked as their own kind: a changed resident ID can, by chance (1 in 31), be a valid
    // USCC such as 11010519091231002X, which auto-detection rightly reports as one.
    for (valid, kind) in [
        ("11010519491231002X", "resident-id"),
        ("440524188001010014", "resident-id"),
        ("91350100M000100Y43", "uscc"),
    ] {
        let mut changed = Vec::new();
        for (i, c) in valid.char_indices() {
            let replacement = if c == '0' { '1' } else { '0' };
            let mut s = valid.to_owned();
            s.replace_range(i..i + 1, &replacement.to_string());
            changed.push(s);
        }
        let args: Vec<&str> = ["id", "check", "--kind", kind]
            .into_iter()
            .chain(changed.iter().map(String::as_str))
            .collect();
        let o = gdx(&args);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            out.lines().filter(|l| l.contains(": invalid: ")).count(),
            18,
            "{out}"
        );
    }
}

#[test]
fn id_check_explains_the_failure() {
    let o = gdx(&[
        "id",
        "check",
        "--kind",
        "resident-id",
        "110105194912310021",
        "1101051949",
        "110105194913310028",
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("check digit is 1, expected X"), "{out}");
    assert!(out.contains("wrong length: 10 characters"), "{out}");
    assert!(
        out.contains("invalid birth date 19491331: not a calendar date"),
        "{out}"
    );
}

#[test]
fn catalog_commands() {
    let o = gdx(&["catalog", "validate"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 violations"));

    let root = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    let dir = format!("{root}/catalog/district");
    let o = gdx(&["catalog", "validate", &dir]);
    assert!(o.status.success(), "{}", stdout(&o));

    let bad = format!("{root}/catalog/tests/fixtures/pk-not-a-field");
    let o = gdx(&["catalog", "validate", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("violation[pk-not-a-field]"),
        "{}",
        stdout(&o)
    );

    let base = format!("{root}/catalog/tests/fixtures/field-removed/baseline");
    let next = format!("{root}/catalog/tests/fixtures/field-removed/next");
    let o = gdx(&["catalog", "validate", &next, "--baseline", &base]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("violation[field-removed]"),
        "{}",
        stdout(&o)
    );

    let o = gdx(&["catalog", "list"]);
    let out = stdout(&o);
    assert!(o.status.success());
    assert!(
        out.contains("ps.household_registration") && out.contains("22 datasets"),
        "{out}"
    );

    let o = gdx(&["catalog", "list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 22);

    let o = gdx(&["catalog", "show", "nre.property_certificate"]);
    let out = stdout(&o);
    assert!(
        out.contains("不动产权证书信息")
            && out.contains("owner_id")
            && out.contains("id_number/reject"),
        "{out}"
    );

    let o = gdx(&["catalog", "show", "ps.household"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("did you mean: ps.household_registration"),
        "{err}"
    );
}

#[test]
fn policy_check_accepts_every_shipped_policy_and_names_the_rule_a_bad_one_breaks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies");
    let mut files: Vec<String> = Vec::new();
    for dir in [root.clone(), root.join("rewards")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p.to_str().unwrap().to_owned());
            }
        }
    }
    assert!(files.len() >= 6, "{files:?}");
    let mut args = vec!["policy", "check"];
    args.extend(files.iter().map(String::as_str));
    let o = gdx(&args);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len()
    );
    assert!(
        out.contains("reward policy specialised-sme-2025 v1"),
        "{out}"
    );
    assert!(
        out.contains("project stages v1: approval → bidding"),
        "{out}"
    );

    // A reward policy without its legal basis, and one whose tiers overlap: refused by rule.
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root.join("rewards/tax_contribution.toml")).unwrap();
    let no_basis: String = text
        .lines()
        .filter(|l| !l.starts_with("legal_basis"))
        .map(|l| format!("{l}\n"))
        .collect();
    let overlap = text.replace("{ min = \"2000000.00\", max", "{ min = \"1500000.00\", max");
    let (a, b) = (tmp.path().join("a.toml"), tmp.path().join("b.toml"));
    std::fs::write(&a, no_basis).unwrap();
    std::fs::write(&b, overlap).unwrap();
    let o = gdx(&["policy", "check", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("reward policy tax-contribution-2025: legal_basis is required"),
        "{err}"
    );
    assert!(err.contains("amount.tiers[0] and [1] overlap"), "{err}");
}
