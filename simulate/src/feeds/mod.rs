//! Projections of the one population into each department's dataset.
//!
//! Data flow: [`World`] → one function per dataset id → [`Feed`] calls (snapshot of the state
//! at the window start, then the changes inside the window as the department would report
//! them, with its own lag) → events. [`projection`] maps a catalog dataset to its function.

pub(crate) mod business;
mod people;
mod property;
pub(crate) mod welfare;

use super::feed::Feed;
use super::world::World;

/// Fills one dataset's feed.
pub(crate) type Projection = fn(&World, &mut Feed<'_>);

/// The projection for a dataset id, if the simulator knows that dataset.
pub(crate) fn projection(id: &str) -> Option<Projection> {
    Some(match id {
        "ps.household_registration" => people::household_registration,
        "nhc.birth_certificate" => people::birth_certificate,
        "nhc.death_certificate" => people::death_certificate,
        "mca.cremation" => people::cremation,
        "mca.marriage_registration" => people::marriage_registration,
        "mca.subsistence_allowance" => welfare::subsistence_allowance,
        "mca.elderly_allowance_payment" => welfare::elderly_allowance_payment,
        "mca.disability_certificate" => welfare::disability_certificate,
        "mca.disability_subsidy" => welfare::disability_subsidy,
        "hrss.social_insurance_enrolment" => welfare::social_insurance_enrolment,
        "hrss.pension" => welfare::pension,
        "hrss.employer_headcount" => business::employer_headcount,
        "amr.enterprise_registration" => business::enterprise_registration,
        "amr.abnormal_operation" => business::abnormal_operation,
        "tax.taxpayer_credit" => business::taxpayer_credit,
        "tax.tax_paid" => business::tax_paid,
        "sti.high_tech_enterprise" => business::high_tech_enterprise,
        "miit.specialised_sme" => business::specialised_sme,
        "stats.above_scale_enterprise" => business::above_scale_enterprise,
        "ndrc.project_event" => business::project_event,
        "nre.property_certificate" => property::property_certificate,
        "hcd.housing_contract" => property::housing_contract,
        _ => return None,
    })
}
