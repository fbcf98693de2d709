//! 云兑现: enterprise reward policies and their disbursement. So far the policies as data
//! ([`policy`]: read, checked and refused with the rule they break) and a policy decided over
//! the lake ([`run`]: the eligible firms with their amounts and evidence, the excluded ones
//! with their rule); approvals, the disbursement ledger and bank reconciliation build on them.

pub mod policy;
pub mod run;

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

#[cfg(test)]
mod tests;
