//! 云兑现: enterprise reward policies and their disbursement, from the lake to the bank and
//! back, exactly once.
//!
//! Data flow: a policy as data ([`policy`]: read, checked, refused with the rule it breaks)
//! → issued into the ledger ([`steps::issue`]) → assessed over the lake as of a day
//! ([`run::assess`]: eligible firms with amounts and evidence, excluded ones with their rule)
//! and settled against the ledger ([`settle`]: top-ups, highest-only within a group, the
//! budget) → the eligible decided ([`steps::decide`]) → applications or account
//! confirmations, approvals in the policy's order ([`steps`]) → payment instructions, one per
//! firm, policy and period ([`bank::disburse`]) → the bank's return file reconciled
//! ([`bank::reconcile`]), a failed or returned payment re-issued once. Every step is one
//! commit of the event-sourced ledger ([`ledger`]), whose outcomes go to `gdx.notifications`
//! exactly once ([`notify`]).

pub mod bank;
pub mod ledger;
pub mod notify;
pub mod policy;
pub mod run;
pub mod settle;
pub mod steps;

pub use policy::{Amount, Qualification, RewardPolicy, RewardPolicyError, TierMeasure};

/// The example policies shipped in `deploy/policies/rewards/`, by file name.
pub const EXAMPLES: [(&str, &str); 4] = [
    (
        "high_tech_first.toml",
        include_str!("../../../../deploy/policies/rewards/high_tech_first.toml"),
    ),
    (
        "above_scale_first.toml",
        include_str!("../../../../deploy/policies/rewards/above_scale_first.toml"),
    ),
    (
        "specialised_sme.toml",
        include_str!("../../../../deploy/policies/rewards/specialised_sme.toml"),
    ),
    (
        "tax_contribution.toml",
        include_str!("../../../../deploy/policies/rewards/tax_contribution.toml"),
    ),
];

/// Policy `policy` assessed over `session` as of `as_of` and settled against the ledger of
/// `lake` as it is now (what a decision would record; nothing is written).
pub async fn preview(
    session: &gdx_lake::sql::LakeSession,
    lake: &gdx_lake::LakeLocation,
    policy: &RewardPolicy,
    as_of: chrono::NaiveDate,
) -> Result<run::RewardsReport, ledger::StepError> {
    let assessed = run::assess(session, policy, as_of).await?;
    let ledger = ledger::load(lake).await?;
    Ok(settle::settle(policy, as_of, assessed, &ledger))
}

#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod tests;
