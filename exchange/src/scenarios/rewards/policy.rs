//! Reward policies (惠企政策, 云兑现) as data: who issues one and on what legal basis, for which
//! period and territory, who is eligible (a qualification event in the period, thresholds,
//! exclusions), how much (fixed, tiered by a level or a measure, top-ups to a higher tier,
//! highest only within a group), the per-firm cap, the budget, whether firms apply or are paid
//! without applying (免申即享), and the approval steps.
//!
//! Data flow: a TOML file (`deploy/policies/rewards/*.toml`) → [`RewardPolicy::parse`]: unknown
//! fields, a missing legal basis, a period that ends before it starts, amounts that are not
//! positive yuan with at most two decimals, tiers that overlap or leave a level twice, a cap
//! below an amount, a budget below the cap, a top-up without tiers, no approval step — each
//! refused with the policy's id and the rule it breaks → the checked policy.

use chrono::NaiveDate;
use serde::Deserialize;

use super::super::hundredths;

/// Why a reward policy was refused: the policy (its id, when the file got that far) and the
/// rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RewardPolicyError {
    #[error("reward policy: {0}")]
    Toml(String),
    #[error("reward policy {id}: {rule}")]
    Rule { id: String, rule: String },
}

/// The qualification event that makes a firm a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qualification {
    /// First recognised as a 高新技术企业 in the period (`sti.high_tech_enterprise`).
    HighTechFirst,
    /// Entered 规上 (`stats.above_scale_enterprise`) for the first time in the period.
    AboveScaleFirst,
    /// Recognised as 专精特新 (`miit.specialised_sme`) in the period, at one of the levels.
    SpecialisedSme,
}

/// What tiers are told apart by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMeasure {
    /// The 专精特新 level (`province`, `little_giant`).
    SpecialisedSmeLevel,
    /// Last year's revenue (yuan).
    LastYearRevenue,
    /// Last year's tax paid (yuan).
    LastYearTaxPaid,
    /// Employees insured (social insurance headcount).
    InsuredHeadcount,
}

/// The 专精特新 levels `miit.specialised_sme` records, lowest first.
pub const SME_LEVELS: [&str; 2] = ["province", "little_giant"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: String,
    id: String,
    version: u32,
    title: String,
    department: String,
    legal_basis: Option<String>,
    period: PeriodFile,
    territory: String,
    application: bool,
    approvals: Vec<String>,
    budget: String,
    per_firm_cap: String,
    group: Option<String>,
    eligibility: EligibilityFile,
    amount: AmountFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodFile {
    from: NaiveDate,
    to: NaiveDate,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EligibilityFile {
    qualification: Qualification,
    levels: Option<Vec<String>>,
    min_insured_headcount: Option<u32>,
    min_last_year_tax_paid: Option<String>,
    #[serde(default)]
    exclude_credit_grades: Vec<String>,
    #[serde(default)]
    exclude_abnormal_operation: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountFile {
    rule: AmountRule,
    fixed: Option<String>,
    by: Option<TierMeasure>,
    #[serde(default)]
    tiers: Vec<TierFile>,
    #[serde(default)]
    top_up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountRule {
    Fixed,
    Tiered,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    level: Option<String>,
    min: Option<String>,
    max: Option<String>,
    amount: String,
}

/// Who is eligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    pub qualification: Qualification,
    /// For 专精特新: the levels that count (all when the file names none).
    pub levels: Vec<String>,
    pub min_insured_headcount: Option<u32>,
    /// Fen.
    pub min_last_year_tax_paid: Option<i64>,
    pub exclude_credit_grades: Vec<String>,
    pub exclude_abnormal_operation: bool,
}

/// One tier: a level, or a half-open range `[min, max)` of the measure (hundredths for
/// money, whole numbers for a headcount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub level: Option<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// Fen.
    pub amount: i64,
}

/// How much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amount {
    /// Fen.
    Fixed(i64),
    Tiered {
        by: TierMeasure,
        tiers: Vec<Tier>,
        /// A firm paid a lower tier under this policy before gets the difference.
        top_up: bool,
    },
}

impl Amount {
    /// The most one firm can be due.
    pub fn highest(&self) -> i64 {
        match self {
            Amount::Fixed(a) => *a,
            Amount::Tiered { tiers, .. } => tiers.iter().map(|t| t.amount).max().unwrap_or(0),
        }
    }
}

/// A checked reward policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardPolicy {
    pub id: String,
    pub version: u32,
    pub title: String,
    /// The issuing department.
    pub department: String,
    pub legal_basis: String,
    /// Qualification events dated in `[from, to]` count.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Administrative code of the territory (the district).
    pub territory: String,
    /// False: 免申即享, paid without an application.
    pub application: bool,
    /// The departments that approve, in order.
    pub approvals: Vec<String>,
    /// Fen.
    pub budget: i64,
    /// Fen.
    pub per_firm_cap: i64,
    /// Policies of one group pay a firm only the highest of them.
    pub group: Option<String>,
    pub eligibility: Eligibility,
    pub amount: Amount,
}

fn code_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl RewardPolicy {
    /// Reads and checks one policy file.
    pub fn parse(text: &str) -> Result<Self, RewardPolicyError> {
        let f: File = toml::from_str(text).map_err(|e| RewardPolicyError::Toml(e.to_string()))?;
        let id = f.id.clone();
        let bad = |rule: String| RewardPolicyError::Rule {
            id: id.clone(),
            rule,
        };
        if f.policy != "reward" {
            return Err(bad(format!(
                "policy = {:?}: a reward policy says \"reward\"",
                f.policy
            )));
        }
        if !code_like(&f.id) {
            return Err(bad(
                "id: lowercase letters, digits, '-' and '_', at most 64".into(),
            ));
        }
        if f.version == 0 {
            return Err(bad("version starts at 1".into()));
        }
        if f.title.trim().is_empty() {
            return Err(bad("title is required".into()));
        }
        let legal_basis = f
            .legal_basis
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| {
                bad(
                    "legal_basis is required: the document and article that grant the reward"
                        .into(),
                )
            })?;
        if !code_like(&f.department) {
            return Err(bad("department: a department code (e.g. sti, miit)".into()));
        }
        if f.period.to < f.period.from {
            return Err(bad(format!(
                "period ends ({}) before it starts ({})",
                f.period.to, f.period.from
            )));
        }
        if f.territory.len() != 6 || !f.territory.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("territory: a six-digit administrative code".into()));
        }
        if f.approvals.is_empty() {
            return Err(bad(
                "approvals: at least one department approves a payment".into()
            ));
        }
        for (i, a) in f.approvals.iter().enumerate() {
            if !code_like(a) {
                return Err(bad(format!("approvals[{i}]: a department code")));
            }
            if f.approvals[..i].contains(a) {
                return Err(bad(format!("approvals: {a} approves twice")));
            }
        }
        if let Some(g) = &f.group
            && !code_like(g)
        {
            return Err(bad("group: lowercase letters, digits, '-' and '_'".into()));
        }
        let money = |field: &str, raw: &str| {
            hundredths(raw)
                .filter(|v| *v > 0)
                .ok_or_else(|| bad(format!("{field}: positive yuan with at most two decimals")))
        };
        let budget = money("budget", &f.budget)?;
        let per_firm_cap = money("per_firm_cap", &f.per_firm_cap)?;
        let eligibility = eligibility(f.eligibility, &bad, &money)?;
        if f.amount.by == Some(TierMeasure::SpecialisedSmeLevel)
            && eligibility.qualification != Qualification::SpecialisedSme
        {
            return Err(bad(
                "amount.by = specialised_sme_level needs eligibility.qualification = specialised_sme"
                    .into(),
            ));
        }
        let amount = amount(f.amount, &bad, &money)?;
        if amount.highest() > per_firm_cap {
            return Err(bad(format!(
                "per_firm_cap ({}) is below the policy's highest amount ({})",
                yuan(per_firm_cap),
                yuan(amount.highest())
            )));
        }
        if budget < per_firm_cap {
            return Err(bad(format!(
                "budget ({}) is below one firm's cap ({})",
                yuan(budget),
                yuan(per_firm_cap)
            )));
        }
        Ok(Self {
            id: f.id,
            version: f.version,
            title: f.title,
            department: f.department,
            legal_basis,
            from: f.period.from,
            to: f.period.to,
            territory: f.territory,
            application: f.application,
            approvals: f.approvals,
            budget,
            per_firm_cap,
            group: f.group,
            eligibility,
            amount,
        })
    }
}

/// Fen as yuan, `200000.00`.
pub fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn eligibility(
    e: EligibilityFile,
    bad: &dyn Fn(String) -> RewardPolicyError,
    money: &dyn Fn(&str, &str) -> Result<i64, RewardPolicyError>,
) -> Result<Eligibility, RewardPolicyError> {
    let levels = match (e.qualification, e.levels) {
        (Qualification::SpecialisedSme, None) => SME_LEVELS.map(String::from).to_vec(),
        (Qualification::SpecialisedSme, Some(ls)) => {
            if ls.is_empty() {
                return Err(bad("eligibility.levels: name at least one level".into()));
            }
            for l in &ls {
                if !SME_LEVELS.contains(&l.as_str()) {
                    return Err(bad(format!(
                        "eligibility.levels: {l:?} is not a 专精特新 level ({})",
                        SME_LEVELS.join(", ")
                    )));
                }
            }
            ls
        }
        (_, Some(_)) => {
            return Err(bad(
                "eligibility.levels only applies to qualification = specialised_sme".into(),
            ));
        }
        (_, None) => Vec::new(),
    };
    for g in &e.exclude_credit_grades {
        if !["A", "B", "M", "C", "D"].contains(&g.as_str()) {
            return Err(bad(format!(
                "eligibility.exclude_credit_grades: {g:?} is not a taxpayer credit grade (A, B, M, C, D)"
            )));
        }
    }
    Ok(Eligibility {
        qualification: e.qualification,
        levels,
        min_insured_headcount: e.min_insured_headcount,
        min_last_year_tax_paid: e
            .min_last_year_tax_paid
            .map(|t| money("eligibility.min_last_year_tax_paid", &t))
            .transpose()?,
        exclude_credit_grades: e.exclude_credit_grades,
        exclude_abnormal_operation: e.exclude_abnormal_operation,
    })
}

fn amount(
    a: AmountFile,
    bad: &dyn Fn(String) -> RewardPolicyError,
    money: &dyn Fn(&str, &str) -> Result<i64, RewardPolicyError>,
) -> Result<Amount, RewardPolicyError> {
    match a.rule {
        AmountRule::Fixed => {
            if a.by.is_some() || !a.tiers.is_empty() || a.top_up {
                return Err(bad(
                    "amount: a fixed amount has no by, tiers or top_up (use rule = \"tiered\")"
                        .into(),
                ));
            }
            let fixed = a
                .fixed
                .ok_or_else(|| bad("amount.fixed is required for rule = \"fixed\"".into()))?;
            Ok(Amount::Fixed(money("amount.fixed", &fixed)?))
        }
        AmountRule::Tiered => {
            if a.fixed.is_some() {
                return Err(bad("amount.fixed: tiers give the amounts".into()));
            }
            let by =
                a.by.ok_or_else(|| bad("amount.by is required for rule = \"tiered\"".into()))?;
            if a.tiers.is_empty() {
                return Err(bad("amount.tiers: at least one tier".into()));
            }
            let mut tiers = Vec::new();
            for (i, t) in a.tiers.into_iter().enumerate() {
                let amount = money(&format!("amount.tiers[{i}].amount"), &t.amount)?;
                let tier = if by == TierMeasure::SpecialisedSmeLevel {
                    if t.min.is_some() || t.max.is_some() {
                        return Err(bad(format!(
                            "amount.tiers[{i}]: tiers by level name a level, not min/max"
                        )));
                    }
                    let level = t
                        .level
                        .ok_or_else(|| bad(format!("amount.tiers[{i}]: name the level it pays")))?;
                    if !SME_LEVELS.contains(&level.as_str()) {
                        return Err(bad(format!(
                            "amount.tiers[{i}]: {level:?} is not a 专精特新 level"
                        )));
                    }
                    if tiers
                        .iter()
                        .any(|x: &Tier| x.level.as_deref() == Some(&level))
                    {
                        return Err(bad(format!("amount.tiers: level {level} twice")));
                    }
                    Tier {
                        level: Some(level),
                        min: None,
                        max: None,
                        amount,
                    }
                } else {
                    if t.level.is_some() {
                        return Err(bad(format!(
                            "amount.tiers[{i}]: tiers by a measure give min (and max), not a level"
                        )));
                    }
                    let bound = |field: &str,
                                 raw: Option<String>|
                     -> Result<Option<i64>, RewardPolicyError> {
                        raw.map(|r| {
                            hundredths(&r).ok_or_else(|| {
                                bad(format!("amount.tiers[{i}].{field}: a non-negative number with at most two decimals"))
                            })
                        })
                        .transpose()
                    };
                    let min = bound("min", t.min)?
                        .ok_or_else(|| bad(format!("amount.tiers[{i}].min is required")))?;
                    let max = bound("max", t.max)?;
                    if max.is_some_and(|m| m <= min) {
                        return Err(bad(format!("amount.tiers[{i}]: max is not above min")));
                    }
                    Tier {
                        level: None,
                        min: Some(min),
                        max,
                        amount,
                    }
                };
                tiers.push(tier);
            }
            if by != TierMeasure::SpecialisedSmeLevel {
                for (i, w) in tiers.windows(2).enumerate() {
                    match w[0].max {
                        None => {
                            return Err(bad(format!(
                                "amount.tiers[{i}] is open-ended but another tier follows"
                            )));
                        }
                        Some(m) if m > w[1].min.unwrap_or(0) => {
                            return Err(bad(format!(
                                "amount.tiers[{i}] and [{}] overlap (tiers ascend, each from where the one before ends)",
                                i + 1
                            )));
                        }
                        _ => {}
                    }
                }
            }
            if by == TierMeasure::SpecialisedSmeLevel {
                // Lowest level first, as the levels rank.
                tiers.sort_by_key(|t| {
                    SME_LEVELS
                        .iter()
                        .position(|l| Some(*l) == t.level.as_deref())
                });
            }
            let ordered = tiers.windows(2).all(|w| w[0].amount <= w[1].amount);
            if a.top_up && !ordered {
                return Err(bad(
                    "amount.top_up: a top-up pays the difference to a higher tier, so tiers must pay more as they go up"
                        .into(),
                ));
            }
            Ok(Amount::Tiered {
                by,
                tiers,
                top_up: a.top_up,
            })
        }
    }
}
