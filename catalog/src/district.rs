//! The district catalog gdx ships: the datasets of one simulated district's departments,
//! compiled in from `catalog/district/*.toml`.
//!
//! Data flow: the TOML files → [`sources`] (name, text) → [`catalog`] → CLI, simulator,
//! ingest and lake when no `--catalog DIR` is given.

use crate::load::Catalog;

macro_rules! district_files {
    ($($name:literal),* $(,)?) => {
        /// `(file name, TOML text)` of every dataset file of the shipped district catalog.
        pub fn sources() -> &'static [(&'static str, &'static str)] {
            &[$(($name, include_str!(concat!("../district/", $name)))),*]
        }
    };
}

district_files!(
    "amr.abnormal_operation.toml",
    "amr.enterprise_registration.toml",
    "hcd.housing_contract.toml",
    "hrss.employer_headcount.toml",
    "hrss.pension.toml",
    "hrss.social_insurance_enrolment.toml",
    "mca.cremation.toml",
    "mca.disability_certificate.toml",
    "mca.disability_subsidy.toml",
    "mca.elderly_allowance_payment.toml",
    "mca.marriage_registration.toml",
    "mca.subsistence_allowance.toml",
    "miit.specialised_sme.toml",
    "ndrc.project_event.toml",
    "nhc.birth_certificate.toml",
    "nhc.death_certificate.toml",
    "nre.property_certificate.toml",
    "ps.household_registration.toml",
    "stats.above_scale_enterprise.toml",
    "sti.high_tech_enterprise.toml",
    "tax.tax_paid.toml",
    "tax.taxpayer_credit.toml",
);

/// The shipped district catalog, parsed. It is validated by the test suite, so parse
/// failures here are programming errors.
pub fn catalog() -> Catalog {
    let (catalog, findings) = Catalog::parse_sources(
        sources()
            .iter()
            .map(|(n, t)| (format!("catalog/district/{n}"), *t)),
    );
    assert!(
        findings.is_empty(),
        "built-in district catalog does not parse: {findings:?}"
    );
    catalog
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate;

    #[test]
    fn every_file_in_the_folder_is_compiled_in() {
        // Read at run time (cargo sets it), so a binary reused from another checkout through a
        // shared target directory still checks this one.
        let dir =
            std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
                .join("district");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            // An unreadable entry is skipped and then shows up as a difference below.
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = sources().iter().map(|(n, _)| n.to_string()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled);
    }

    #[test]
    fn district_catalog_has_no_violations() {
        let c = catalog();
        let report = validate(&c);
        let violations: Vec<String> = report.violations().map(ToString::to_string).collect();
        assert!(violations.is_empty(), "{violations:#?}");
        assert!(c.len() >= 18, "{} datasets", c.len());
        let departments: std::collections::BTreeSet<&str> =
            c.datasets().map(|d| d.id.department()).collect();
        assert!(departments.len() >= 9, "{departments:?}");
        for ds in c.datasets() {
            assert_eq!(
                ds.level(),
                ds.fields.iter().map(|f| f.level.unwrap()).max().unwrap()
            );
        }
    }
}
