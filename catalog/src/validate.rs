//! Catalog validation, in the manner of a SHACL profile: each rule yields findings that are
//! either violations (the catalog must not be published) or warnings (reported, allowed).
//!
//! Data flow: a [`Catalog`] (and optionally the previously published baseline) → the rules
//! below → a [`Report`] whose every [`Finding`] names the rule, file, dataset and field.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::category::CategoryTree;
pub use crate::finding::{Finding, Severity};
use crate::load::{Catalog, LoadError};
use crate::mask::PiiKind;
use crate::model::{Dataset, EntityKind, OpenType, SharingType, is_snake_case};

impl Catalog {
    /// Reads and validates `dir`; any violation is an error.
    pub fn load_dir(dir: &std::path::Path) -> Result<Catalog, LoadError> {
        let (catalog, mut findings) = Self::read_dir(dir)?;
        findings.extend(validate(&catalog).findings);
        findings.retain(|f| f.severity == Severity::Violation);
        if findings.is_empty() {
            Ok(catalog)
        } else {
            Err(LoadError::Invalid(findings))
        }
    }
}

/// All findings of one validation run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Violation)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    pub fn is_ok(&self) -> bool {
        self.violations().next().is_none()
    }

    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
    }
}

struct Ctx<'a> {
    ds: &'a Dataset,
    out: &'a mut Vec<Finding>,
}

impl Ctx<'_> {
    fn push(
        &mut self,
        severity: Severity,
        rule: &'static str,
        field: Option<&str>,
        message: String,
    ) {
        self.out.push(Finding {
            severity,
            rule,
            file: self.ds.source.clone(),
            dataset: Some(self.ds.id.to_string()),
            field: field.map(str::to_owned),
            message,
        });
    }
    fn violation(&mut self, rule: &'static str, field: Option<&str>, message: String) {
        self.push(Severity::Violation, rule, field, message);
    }
    fn warning(&mut self, rule: &'static str, field: Option<&str>, message: String) {
        self.push(Severity::Warning, rule, field, message);
    }
}

/// Normalised form used for uniqueness of names: NFKC, trimmed, lowercase, no inner spaces.
fn normalized_name(s: &str) -> String {
    s.nfkc()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Validates every dataset and the catalog as a whole.
pub fn validate(catalog: &Catalog) -> Report {
    let tree = CategoryTree::builtin();
    let mut out = Vec::new();
    for dup in catalog.duplicates() {
        let first = catalog
            .get(dup.id.as_str())
            .map(|d| d.source.clone())
            .unwrap_or_default();
        Ctx {
            ds: dup,
            out: &mut out,
        }
        .violation(
            "duplicate-id",
            None,
            format!("dataset id is also defined in {first}"),
        );
    }
    let mut names: BTreeMap<String, &Dataset> = BTreeMap::new();
    let mut codes: BTreeMap<String, &Dataset> = BTreeMap::new();
    for ds in catalog.datasets() {
        let mut cx = Ctx { ds, out: &mut out };
        if !ds.name.trim().is_empty()
            && let Some(prev) = names.insert(normalized_name(&ds.name), ds)
        {
            cx.violation(
                "duplicate-name",
                None,
                format!("resource name {:?} is also used by {}", ds.name, prev.id),
            );
        }
        if !ds.resource_code.trim().is_empty()
            && let Some(prev) = codes.insert(normalized_name(&ds.resource_code), ds)
        {
            cx.violation(
                "duplicate-resource-code",
                None,
                format!(
                    "resource code {:?} is also used by {}",
                    ds.resource_code, prev.id
                ),
            );
        }
        check_dataset(&mut cx, &tree, catalog);
    }
    Report { findings: out }
}

fn check_dataset(cx: &mut Ctx<'_>, tree: &CategoryTree, catalog: &Catalog) {
    let ds = cx.ds;
    // Required catalogue items.
    let required: [(&str, bool); 9] = [
        ("resource_code", ds.resource_code.trim().is_empty()),
        ("name", ds.name.trim().is_empty()),
        (
            "provider.department",
            ds.provider.department.trim().is_empty(),
        ),
        ("provider.name", ds.provider.name.trim().is_empty()),
        ("provider.code", ds.provider.code.trim().is_empty()),
        ("summary", ds.summary.trim().is_empty()),
        ("format", ds.format.trim().is_empty()),
        ("update_cycle", ds.update_cycle.trim().is_empty()),
        ("topic", ds.topic.trim().is_empty()),
    ];
    for (item, missing) in required {
        if missing {
            cx.violation(
                "missing-item",
                None,
                format!("required catalogue item `{item}` is missing or empty"),
            );
        }
    }
    if ds.publish_date.is_none() {
        cx.violation(
            "missing-item",
            None,
            "required catalogue item `publish_date` is missing".into(),
        );
    }
    if ds.open.is_none() {
        cx.violation(
            "missing-item",
            None,
            "required catalogue item `open` (open type) is missing".into(),
        );
    }
    match &ds.sharing {
        None => cx.violation(
            "missing-item",
            None,
            "required catalogue item `sharing` is missing".into(),
        ),
        Some(s) => {
            if s.method.trim().is_empty() {
                cx.violation(
                    "missing-item",
                    None,
                    "required catalogue item `sharing.method` is missing".into(),
                );
            }
            if s.kind == SharingType::None && s.legal_basis.trim().is_empty() {
                cx.violation("sharing-none-needs-legal-basis", None, "sharing type `none` (不予共享) must state its legal basis in `sharing.legal_basis`".into());
            }
            if s.kind == SharingType::Conditional && s.condition.trim().is_empty() {
                cx.violation("conditional-needs-condition", None, "sharing type `conditional` (有条件共享) must state its condition in `sharing.condition`".into());
            }
        }
    }
    if ds.fields.is_empty() {
        cx.violation(
            "missing-item",
            None,
            "required catalogue item `fields` (信息项) is empty".into(),
        );
    }

    // Topic and department.
    if !ds.topic.is_empty() && ds.topic != ds.id.as_str() {
        cx.violation(
            "topic-mismatch",
            None,
            format!(
                "topic {:?} must be the dataset id `<dept>.<dataset>` = {:?}",
                ds.topic,
                ds.id.as_str()
            ),
        );
    }
    if !ds.provider.department.is_empty() && ds.provider.department != ds.id.department() {
        cx.violation(
            "department-mismatch",
            None,
            format!(
                "provider.department {:?} differs from the id's department {:?}",
                ds.provider.department,
                ds.id.department()
            ),
        );
    }

    // Fields.
    let mut seen = BTreeSet::new();
    for f in &ds.fields {
        let name = Some(f.name.as_str());
        if !is_snake_case(&f.name) {
            cx.violation(
                "field-name",
                name,
                "field names must be lowercase snake_case ASCII".into(),
            );
        }
        if !seen.insert(normalized_name(&f.name)) {
            cx.violation(
                "duplicate-field",
                name,
                "field name appears more than once".into(),
            );
        }
        match f.level {
            None => cx.violation("ungraded-field", name, "field has no `level` (1..5)".into()),
            Some(level) => {
                if f.pii.is_some_and(PiiKind::is_personal) && level.get() < 3 {
                    cx.violation(
                        "pii-level",
                        name,
                        format!(
                            "personal field of PII kind `{}` must be level ≥ 3, is {}",
                            f.pii.map(PiiKind::as_str).unwrap_or(""),
                            level.get()
                        ),
                    );
                }
            }
        }
        match &f.category {
            None => cx.violation(
                "uncategorised-field",
                name,
                "field has no `category` code".into(),
            ),
            Some(c) if !tree.is_leaf(c) => cx.violation(
                "unknown-category",
                name,
                format!(
                    "category {c:?} is not a third-level code of the category tree (e.g. 1.1.01)"
                ),
            ),
            Some(_) => {}
        }
        match (f.check, f.id_kind()) {
            (Some(_), None) => cx.violation("check-without-identifier", name, "a `check` policy needs a coded identifier field (pii = id_number, uscc, bank_card or phone)".into()),
            (None, Some(kind)) => cx.warning("unchecked-identifier", name, format!("holds a {kind} but has no `check` policy (reject | flag); values will not be checked")),
            _ => {}
        }
        if f.description.trim().is_empty() {
            cx.warning(
                "missing-description",
                name,
                "field has no description".into(),
            );
        }
    }

    // Primary key.
    if ds.primary_key.is_empty() {
        cx.violation("missing-primary-key", None, "`primary_key` is empty".into());
    }
    for k in &ds.primary_key {
        match ds.field(k) {
            None => cx.violation(
                "pk-not-a-field",
                Some(k),
                "primary key names a field the dataset does not have".into(),
            ),
            Some(f) if f.nullable => cx.violation(
                "pk-nullable",
                Some(k),
                "primary key fields must be `nullable = false`".into(),
            ),
            Some(_) => {}
        }
    }

    // Entity links.
    for e in &ds.entities {
        let want = match e.kind {
            EntityKind::Resident => PiiKind::IdNumber,
            EntityKind::Enterprise => PiiKind::Uscc,
        };
        match ds.field(&e.field) {
            None => cx.violation(
                "entity-not-a-field",
                Some(&e.field),
                "entity link names a field the dataset does not have".into(),
            ),
            Some(f) if f.pii != Some(want) => cx.violation(
                "entity-kind",
                Some(&e.field),
                format!(
                    "entity link of kind {:?} needs a field with pii = {}",
                    e.kind,
                    want.as_str()
                ),
            ),
            Some(_) => {}
        }
    }

    // Open type against the grading.
    if let Some(open) = &ds.open {
        let level = ds.level().get();
        if open.kind == OpenType::Open && level >= 4 {
            cx.violation(
                "open-sensitive",
                None,
                format!("dataset of level {level} cannot be open (开放) to the public"),
            );
        } else if open.kind == OpenType::Open && level == 3 {
            cx.warning("open-personal", None, "level-3 dataset open to the public; check that only masked or aggregate data is opened".into());
        }
    }
    if ds.sharing_type() == Some(SharingType::Unconditional) && ds.level().get() >= 4 {
        cx.warning(
            "unconditional-sensitive",
            None,
            format!(
                "unconditional sharing of a level-{} dataset; raw access will still need approval",
                ds.level().get()
            ),
        );
    }

    for r in &ds.related {
        if catalog.get(r).is_none() && !catalog.datasets().any(|d| &d.resource_code == r) {
            cx.warning(
                "unknown-related",
                None,
                format!("related resource {r:?} is not in this catalog"),
            );
        }
    }
    if ds.schema_version == 0 {
        cx.violation("schema-version", None, "schema_version starts at 1".into());
    }
}

/// Checks that every dataset of `next` evolves its counterpart in `baseline` additively:
/// fields may only be added (and only as nullable); a removed or retyped field, a field made
/// non-nullable, or a changed primary key is a violation unless the new entry says
/// `breaking = true`. Changed fields also need a higher `schema_version`.
pub fn validate_evolution(baseline: &Catalog, next: &Catalog) -> Report {
    let mut out = Vec::new();
    for new in next.datasets() {
        let Some(old) = baseline.get(new.id.as_str()) else {
            continue;
        };
        let mut cx = Ctx {
            ds: new,
            out: &mut out,
        };
        let changed = old.fields != new.fields || old.primary_key != new.primary_key;
        if changed && new.schema_version <= old.schema_version {
            cx.violation(
                "schema-version-not-bumped",
                None,
                format!(
                    "fields changed but schema_version stays {} (was {})",
                    new.schema_version, old.schema_version
                ),
            );
        }
        if new.schema_version < old.schema_version {
            cx.violation(
                "schema-version-decreased",
                None,
                format!(
                    "schema_version went down from {} to {}",
                    old.schema_version, new.schema_version
                ),
            );
        }
        if new.breaking {
            continue;
        }
        for of in &old.fields {
            match new.field(&of.name) {
                None => cx.violation("field-removed", Some(&of.name), format!("field removed (was in schema version {}); removing needs `breaking = true`", old.schema_version)),
                Some(nf) if nf.ty != of.ty => cx.violation(
                    "field-retyped",
                    Some(&of.name),
                    format!("type changed from {} to {}; retyping needs `breaking = true`", of.ty.as_str(), nf.ty.as_str()),
                ),
                Some(nf) if of.nullable && !nf.nullable => cx.violation("field-made-required", Some(&of.name), "nullable field made non-nullable; needs `breaking = true`".into()),
                Some(_) => {}
            }
        }
        for nf in &new.fields {
            if old.field(&nf.name).is_none() && !nf.nullable {
                cx.violation("added-field-required", Some(&nf.name), "fields added by a new version must be nullable (old producers do not send them)".into());
            }
        }
        if old.primary_key != new.primary_key {
            cx.violation(
                "primary-key-changed",
                None,
                format!(
                    "primary key changed from {:?} to {:?}; needs `breaking = true`",
                    old.primary_key, new.primary_key
                ),
            );
        }
    }
    for old in baseline.datasets() {
        if next.get(old.id.as_str()).is_none() {
            out.push(Finding {
                severity: Severity::Warning,
                rule: "dataset-removed",
                file: old.source.clone(),
                dataset: Some(old.id.to_string()),
                field: None,
                message: "dataset is in the baseline but no longer in the catalog".into(),
            });
        }
    }
    Report { findings: out }
}
