//! One bad catalog per violation kind (in `tests/fixtures/<rule>/`): each must raise its rule
//! and no other violation. Evolution fixtures hold `baseline/` (published) and `next/`.

use std::path::PathBuf;

use gdx_catalog::validate::{validate, validate_evolution};
use gdx_catalog::{Catalog, Finding, LoadError, Severity};

/// The package directory, read when the test runs (cargo sets it), not baked in at compile
/// time: a test binary reused from another checkout through a shared target directory would
/// otherwise read that checkout's files.
fn package_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
}

fn fixture(name: &str) -> PathBuf {
    package_dir().join("tests/fixtures").join(name)
}

/// All violations found for a fixture directory.
fn violations(name: &str) -> Vec<Finding> {
    let dir = fixture(name);
    let mut findings = Vec::new();
    if dir.join("baseline").is_dir() {
        let (base, f1) = Catalog::read_dir(&dir.join("baseline")).unwrap();
        let (next, f2) = Catalog::read_dir(&dir.join("next")).unwrap();
        findings.extend(f1);
        findings.extend(f2);
        findings.extend(validate(&base).findings);
        findings.extend(validate(&next).findings);
        findings.extend(validate_evolution(&base, &next).findings);
    } else {
        let (catalog, f) = Catalog::read_dir(&dir).unwrap();
        findings.extend(f);
        findings.extend(validate(&catalog).findings);
    }
    findings.retain(|f| f.severity == Severity::Violation);
    findings
}

const RULES: &[&str] = &[
    "parse",
    "duplicate-id",
    "duplicate-name",
    "duplicate-resource-code",
    "missing-item",
    "sharing-none-needs-legal-basis",
    "conditional-needs-condition",
    "topic-mismatch",
    "department-mismatch",
    "field-name",
    "duplicate-field",
    "ungraded-field",
    "pii-level",
    "uncategorised-field",
    "unknown-category",
    "check-without-identifier",
    "missing-primary-key",
    "pk-not-a-field",
    "pk-nullable",
    "entity-not-a-field",
    "entity-kind",
    "open-sensitive",
    "schema-version",
    "schema-version-not-bumped",
    "schema-version-decreased",
    "field-removed",
    "field-retyped",
    "field-made-required",
    "added-field-required",
    "primary-key-changed",
];

#[test]
fn every_rule_has_a_fixture_that_raises_only_it() {
    for rule in RULES {
        let found = violations(rule);
        assert!(!found.is_empty(), "fixture {rule}: no violation raised");
        for f in &found {
            assert_eq!(
                f.rule, *rule,
                "fixture {rule} raised another violation: {f}"
            );
            assert!(f.file.ends_with(".toml"), "finding names no file: {f}");
        }
    }
}

#[test]
fn every_fixture_directory_is_covered() {
    let mut dirs: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    for d in dirs {
        assert!(
            RULES.contains(&d.as_str())
                || ["valid", "evolution-valid", "breaking-allowed"].contains(&d.as_str()),
            "fixture {d} is not exercised"
        );
    }
}

#[test]
fn valid_catalogs_pass() {
    for name in ["valid", "evolution-valid", "breaking-allowed"] {
        let found = violations(name);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn messages_name_file_dataset_and_field() {
    let f = &violations("pii-level")[0];
    assert_eq!(f.dataset.as_deref(), Some("ts.people"));
    assert_eq!(f.field.as_deref(), Some("name"));
    let text = f.to_string();
    assert!(text.starts_with("violation[pii-level] "), "{text}");
    assert!(text.contains("ts.people.toml: dataset ts.people, field `name`: personal field of PII kind `name` must be level ≥ 3, is 2"), "{text}");
    let p = &violations("parse")[0];
    assert!(p.message.contains("colour"), "{}", p.message);
}

#[test]
fn load_dir_refuses_a_catalog_with_violations() {
    match Catalog::load_dir(&fixture("pk-not-a-field")) {
        Err(LoadError::Invalid(v)) => assert_eq!(v[0].rule, "pk-not-a-field"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(
        Catalog::load_dir(&fixture("does-not-exist")),
        Err(LoadError::ReadDir { .. })
    ));
    let c = Catalog::load_dir(&fixture("valid")).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c.by_topic("ts.people").unwrap().level().get(), 4);
}

#[test]
fn the_shipped_district_catalog_validates_from_its_files() {
    let dir = package_dir().join("district");
    let catalog = Catalog::load_dir(&dir).unwrap();
    assert!(catalog.len() >= 18);
}
