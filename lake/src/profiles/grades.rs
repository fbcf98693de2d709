//! The grading of the profiles' columns, declared beside their SQL.
//!
//! Data flow: each profile column names the catalog field whose data it carries (and takes
//! that field's level, category and PII kind, so a policy masks `profiles.citizen.resident_id`
//! exactly as it masks the household register's), or declares a level for what it derives
//! (an age, a tag list) → [`grade`] answers the registry. A column declared nowhere counts
//! as level 5 without a mask (就高从严); a test checks every column is declared.

use gdx_catalog::{Catalog, Level};

use super::definition::Profile;
use crate::policy::ColumnGrade;

/// Where a profile column's data comes from.
enum Source {
    /// The data of one catalog field (dataset id, field).
    Field(&'static str, &'static str),
    /// Derived data, graded here.
    Derived(u8),
}
use Source::{Derived, Field};

const HR: &str = "ps.household_registration";
const REG: &str = "amr.enterprise_registration";

const CITIZEN: &[(&str, Source)] = &[
    ("resident_id", Field(HR, "resident_id")),
    ("name", Field(HR, "name")),
    ("gender", Field(HR, "gender")),
    ("birth_date", Field(HR, "birth_date")),
    // An age tells the birth year.
    ("age", Derived(3)),
    ("household_id", Field(HR, "household_id")),
    ("relation_to_head", Field(HR, "relation_to_head")),
    ("street", Field(HR, "street")),
    ("community", Field(HR, "community")),
    ("address", Field(HR, "address")),
    ("household_status", Field(HR, "status")),
    ("registered_on", Field(HR, "registered_on")),
    ("ps_registered", Derived(2)),
    ("deceased_on", Field(HR, "deceased_on")),
    ("death_not_yet_registered_by_ps", Derived(3)),
    ("moved_out_on", Field(HR, "moved_out_on")),
    ("moved_out_to", Field(HR, "moved_out_to")),
    ("life_stage", Derived(3)),
    ("living_alone", Derived(3)),
    (
        "disability_grade",
        Field("mca.disability_certificate", "disability_grade"),
    ),
    (
        "disability_category",
        Field("mca.disability_certificate", "disability_category"),
    ),
    // Whether someone is disabled, or poor, is as sensitive as the certificate itself.
    ("disability_certificate_valid", Derived(4)),
    ("subsistence_allowance_family", Derived(4)),
    ("pension", Derived(3)),
    ("disability_subsidy", Derived(4)),
    (
        "elderly_allowance_last_period",
        Field("mca.elderly_allowance_payment", "period"),
    ),
    ("pension_insurance", Derived(3)),
    ("medical_insurance", Derived(3)),
    ("insured", Derived(3)),
    ("property_count", Derived(3)),
    // The tags name disability and subsistence allowance.
    ("tags", Derived(4)),
    ("_inputs", Derived(1)),
    ("_as_of", Derived(1)),
];

const ENTERPRISE: &[(&str, Source)] = &[
    ("uscc", Field(REG, "uscc")),
    ("name", Field(REG, "name")),
    ("enterprise_type", Field(REG, "enterprise_type")),
    ("industry_code", Field(REG, "industry_code")),
    ("registered_capital", Field(REG, "registered_capital")),
    ("established_on", Field(REG, "established_on")),
    ("street", Field(REG, "street")),
    ("status", Field(REG, "status")),
    ("cancelled_on", Field(REG, "cancelled_on")),
    ("age_years", Derived(1)),
    (
        "insured_headcount",
        Field("hrss.employer_headcount", "insured_headcount"),
    ),
    ("headcount_month", Field("hrss.employer_headcount", "month")),
    ("last_year_revenue", Field("tax.tax_paid", "revenue")),
    ("last_tax_year", Field("tax.tax_paid", "year")),
    ("last_year_tax_paid", Field("tax.tax_paid", "tax_paid")),
    ("tax_paid_by_year", Derived(3)),
    // Derived from revenue (level 3) and headcount in published size bands.
    ("size_class", Derived(2)),
    (
        "high_tech_recognised_on",
        Field("sti.high_tech_enterprise", "recognised_on"),
    ),
    (
        "high_tech_valid_until",
        Field("sti.high_tech_enterprise", "valid_until"),
    ),
    (
        "specialised_sme_level",
        Field("miit.specialised_sme", "level"),
    ),
    (
        "specialised_sme_recognised_on",
        Field("miit.specialised_sme", "recognised_on"),
    ),
    (
        "above_scale_first_year",
        Field("stats.above_scale_enterprise", "first_included_year"),
    ),
    (
        "above_scale_last_year",
        Field("stats.above_scale_enterprise", "year"),
    ),
    (
        "abnormal_listed_on",
        Field("amr.abnormal_operation", "listed_on"),
    ),
    ("abnormal_operation", Derived(1)),
    ("credit_grade", Field("tax.taxpayer_credit", "grade")),
    ("credit_year", Field("tax.taxpayer_credit", "year")),
    ("credit_bad", Derived(2)),
    // Amounts paid, level 3 like the payment facts.
    ("rewards_received", Derived(3)),
    ("rewards_by_policy", Derived(3)),
    ("tags", Derived(2)),
    ("_inputs", Derived(1)),
    ("_as_of", Derived(1)),
];

fn declared(p: Profile) -> &'static [(&'static str, Source)] {
    match p {
        Profile::Citizen => CITIZEN,
        Profile::Enterprise => ENTERPRISE,
    }
}

/// The grading of `column` of profile `p`; `None` when it is declared nowhere.
pub fn grade(catalog: &Catalog, p: Profile, column: &str) -> Option<ColumnGrade> {
    let (_, source) = declared(p).iter().find(|(c, _)| *c == column)?;
    Some(match source {
        Field(ds, field) => match catalog.get(ds).and_then(|d| d.field(field)) {
            Some(f) => ColumnGrade::of_field(f),
            // A catalog without that field: the strictest grade.
            None => ColumnGrade {
                level: Level::CORE,
                category: None,
                pii: None,
            },
        },
        Derived(level) => ColumnGrade {
            level: Level::new(*level).unwrap_or(Level::CORE),
            category: None,
            pii: None,
        },
    })
}

/// The columns declared for profile `p`, in order.
pub fn columns(p: Profile) -> impl Iterator<Item = &'static str> {
    declared(p).iter().map(|(c, _)| *c)
}

/// The column naming whom a profile row is about.
pub fn subject(p: Profile) -> &'static str {
    declared(p)[0].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_field_is_in_the_district_catalog() {
        let c = gdx_catalog::district::catalog();
        for p in Profile::ALL {
            for (column, source) in declared(p) {
                if let Field(ds, f) = source {
                    assert!(
                        c.get(ds).and_then(|d| d.field(f)).is_some(),
                        "{}.{column}: {ds}.{f}",
                        p.name()
                    );
                }
            }
        }
        let id = grade(&c, Profile::Citizen, "resident_id").unwrap();
        assert_eq!(id.pii, Some(gdx_catalog::PiiKind::IdNumber));
        assert_eq!(id.level, Level::SENSITIVE);
        assert!(grade(&c, Profile::Citizen, "no_such_column").is_none());
        assert_eq!(subject(Profile::Enterprise), "uscc");
    }
}
