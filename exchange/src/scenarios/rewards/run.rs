//! One reward policy decided over the lake: which firms are eligible, for how much, on which
//! records; which are excluded, by which rule.
//!
//! Data flow: a checked [`RewardPolicy`] + a lake session (as of a day, through the lake's
//! policy) → the candidates: firms with the policy's qualification event in its period (a
//! first 高新 certificate in `sti.high_tech_enterprise`, a first 规上 year in
//! `stats.above_scale_enterprise`, a 专精特新 recognition at one of the levels in
//! `miit.specialised_sme`) → per candidate the facts the rules ask (registration and status,
//! the abnormal-operation list as of the day, the latest taxpayer credit grade up to the
//! period's year, the latest insured headcount, the period year's tax and revenue) → the
//! rules in order (`not_registered`, `not_active`, `abnormal_operation`, `credit_grade_<G>`,
//! `headcount_below_minimum`, `tax_below_minimum`, `below_lowest_tier`) → the amount (fixed,
//! or the tier of the highest level or of the measure; at most the per-firm cap) → (in
//! [`super::settle`]) what the ledger already committed, and the budget. Every decision names
//! its evidence rows: dataset, key and the Delta version read.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use gdx_lake::sql::LakeSession;
use serde::Serialize;

use super::super::hundredths;
use super::policy::{Amount, Qualification, RewardPolicy, SME_LEVELS, TierMeasure, yuan};

/// Why a policy could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
    #[error("{table}: {reason}")]
    Column { table: String, reason: String },
}

/// One record a decision rests on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Evidence {
    pub dataset: &'static str,
    /// The record's key (its primary key, `/`-joined).
    pub key: String,
    /// The Delta version of the table read (none for a lake read as of a date).
    pub version: Option<u64>,
}

/// One firm's decision.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Decision {
    pub uscc: String,
    pub name: Option<String>,
    /// When it qualified (the recognition, or the first 规上 year's last day).
    #[schema(value_type = String)]
    pub qualified_on: NaiveDate,
    /// The tier it reached (a level, or the tier's lower bound).
    pub tier: Option<String>,
    /// Yuan; none when excluded.
    pub amount: Option<String>,
    /// Why it is excluded; none when eligible.
    pub rule: Option<String>,
    /// Why this amount, when eligible: `eligible` (the policy's amount), `top_up` (the
    /// difference to a higher tier of the same policy paid before), `highest_only_top_up`
    /// (the difference to what another policy of the group committed).
    pub basis: Option<String>,
    /// The ledger holds the decision already (its amount stands).
    pub decided: bool,
    pub evidence: Vec<Evidence>,
}

/// A policy decided as of a day.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RewardsReport {
    pub policy: String,
    pub version: u32,
    #[schema(value_type = String)]
    pub from: NaiveDate,
    #[schema(value_type = String)]
    pub to: NaiveDate,
    #[schema(value_type = String)]
    pub as_of: NaiveDate,
    pub eligible: Vec<Decision>,
    pub excluded: Vec<Decision>,
    /// Yuan, the eligible amounts together (never above the budget).
    pub total: String,
    pub budget: String,
}

/// Text columns of a query's rows (every column cast to text; nulls as `None`).
async fn rows(
    session: &LakeSession,
    table: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, RunError> {
    let out = session.collect(session.stream(sql).await?).await?;
    super::super::text_rows(&out.batches).map_err(|e| RunError::Column {
        table: table.to_owned(),
        reason: e.to_string(),
    })
}

fn date(table: &str, s: Option<&String>) -> Result<NaiveDate, RunError> {
    s.and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| RunError::Column {
            table: table.to_owned(),
            reason: "a date is missing or not a date".into(),
        })
}

struct Candidate {
    qualified_on: NaiveDate,
    level: Option<String>,
    evidence: Evidence,
}

/// Decides `policy` over `session` as of `as_of`, firm by firm, each at its full amount (the
/// budget, top-ups and the group's highest-only are [`super::settle`]'s, against the ledger).
pub async fn assess(
    session: &LakeSession,
    policy: &RewardPolicy,
    as_of: NaiveDate,
) -> Result<Vec<Decision>, RunError> {
    let d = |x: NaiveDate| format!("DATE '{}'", x.format("%Y-%m-%d"));
    let (from, to) = (policy.from, policy.to.min(as_of));
    let year = policy.to.year();
    let version = |t: &str| session.version(t);

    // The candidates: the qualification event in the period, the first per firm.
    let mut candidates: BTreeMap<String, Candidate> = BTreeMap::new();
    match policy.eligibility.qualification {
        Qualification::HighTechFirst => {
            let t = "sti.high_tech_enterprise";
            let sql = format!(
                "SELECT uscc, certificate_no, recognised_on FROM (SELECT uscc, certificate_no, \
                 recognised_on, row_number() OVER (PARTITION BY uscc ORDER BY recognised_on, \
                 certificate_no) AS n FROM {t} WHERE recognised_on <= {}) f \
                 WHERE n = 1 AND recognised_on >= {}",
                d(to),
                d(from)
            );
            for r in rows(session, t, &sql).await? {
                let Some(uscc) = r[0].clone() else { continue };
                candidates.insert(
                    uscc,
                    Candidate {
                        qualified_on: date(t, r[2].as_ref())?,
                        level: None,
                        evidence: Evidence {
                            dataset: t,
                            key: r[1].clone().unwrap_or_default(),
                            version: version(t),
                        },
                    },
                );
            }
        }
        Qualification::AboveScaleFirst => {
            let t = "stats.above_scale_enterprise";
            let sql = format!(
                "SELECT uscc, min(first_included_year) AS first_year FROM {t} \
                 WHERE year <= {} GROUP BY uscc \
                 HAVING min(first_included_year) BETWEEN {} AND {}",
                to.year(),
                from.year(),
                to.year()
            );
            for r in rows(session, t, &sql).await? {
                let (Some(uscc), Some(y)) = (
                    r[0].clone(),
                    r[1].as_ref().and_then(|y| y.parse::<i32>().ok()),
                ) else {
                    continue;
                };
                let end = NaiveDate::from_ymd_opt(y, 12, 31).unwrap_or(to);
                candidates.insert(
                    uscc.clone(),
                    Candidate {
                        qualified_on: end,
                        level: None,
                        evidence: Evidence {
                            dataset: t,
                            key: format!("{uscc}/{y}"),
                            version: version(t),
                        },
                    },
                );
            }
        }
        Qualification::SpecialisedSme => {
            let t = "miit.specialised_sme";
            let sql = format!(
                "SELECT uscc, level, recognised_on FROM {t} \
                 WHERE recognised_on BETWEEN {} AND {} ORDER BY uscc, recognised_on",
                d(from),
                d(to)
            );
            let rank = |l: &str| SME_LEVELS.iter().position(|x| *x == l);
            for r in rows(session, t, &sql).await? {
                let (Some(uscc), Some(level)) = (r[0].clone(), r[1].clone()) else {
                    continue;
                };
                if !policy.eligibility.levels.contains(&level) {
                    continue;
                }
                let on = date(t, r[2].as_ref())?;
                let better = candidates
                    .get(&uscc)
                    .is_none_or(|c| rank(&level) > c.level.as_deref().and_then(rank));
                if better {
                    candidates.insert(
                        uscc.clone(),
                        Candidate {
                            qualified_on: on,
                            evidence: Evidence {
                                dataset: t,
                                key: format!("{uscc}/{level}"),
                                version: version(t),
                            },
                            level: Some(level),
                        },
                    );
                }
            }
        }
    }

    // The facts the rules ask, per firm.
    let reg: HashMap<String, (Option<String>, Option<String>)> = rows(
        session,
        "amr.enterprise_registration",
        "SELECT uscc, name, status FROM amr.enterprise_registration",
    )
    .await?
    .into_iter()
    .filter_map(|r| Some((r[0].clone()?, (r[1].clone(), r[2].clone()))))
    .collect();
    let abnormal: HashMap<String, String> = rows(
        session,
        "amr.abnormal_operation",
        &format!(
            "SELECT uscc, min(record_id) FROM amr.abnormal_operation WHERE listed_on <= {a} \
             AND (removed_on IS NULL OR removed_on > {a}) GROUP BY uscc",
            a = d(as_of)
        ),
    )
    .await?
    .into_iter()
    .filter_map(|r| Some((r[0].clone()?, r[1].clone()?)))
    .collect();
    let latest = |table: &str, order: &str, cols: &str, filter: String| {
        format!(
            "SELECT uscc, {order}, {cols} FROM (SELECT *, row_number() OVER (PARTITION BY uscc \
             ORDER BY {order} DESC) AS n FROM {table} WHERE {filter}) f WHERE n = 1"
        )
    };
    let credit: HashMap<String, (String, String)> = rows(
        session,
        "tax.taxpayer_credit",
        &latest(
            "tax.taxpayer_credit",
            "year",
            "grade",
            format!("year <= {year}"),
        ),
    )
    .await?
    .into_iter()
    .filter_map(|r| Some((r[0].clone()?, (r[1].clone()?, r[2].clone()?))))
    .collect();
    let headcount: HashMap<String, (String, i64)> = rows(
        session,
        "hrss.employer_headcount",
        &latest(
            "hrss.employer_headcount",
            "month",
            "insured_headcount",
            format!("month <= '{}'", as_of.format("%Y-%m")),
        ),
    )
    .await?
    .into_iter()
    .filter_map(|r| Some((r[0].clone()?, (r[1].clone()?, r[2].as_ref()?.parse().ok()?))))
    .collect();
    let tax: HashMap<String, (Option<i64>, Option<i64>)> = rows(
        session,
        "tax.tax_paid",
        &format!("SELECT uscc, tax_paid, revenue FROM tax.tax_paid WHERE year = {year}"),
    )
    .await?
    .into_iter()
    .filter_map(|r| {
        Some((
            r[0].clone()?,
            (
                r[1].as_deref().and_then(hundredths),
                r[2].as_deref().and_then(hundredths),
            ),
        ))
    })
    .collect();

    // The rules, in order.
    let e = &policy.eligibility;
    let mut decided: Vec<Decision> = Vec::new();
    for (uscc, c) in candidates {
        let mut evidence = vec![c.evidence];
        let mut cite = |dataset: &'static str, key: String| {
            evidence.push(Evidence {
                dataset,
                key,
                version: version(dataset),
            });
        };
        let (name, status) = reg.get(&uscc).cloned().unwrap_or((None, None));
        let mut rule: Option<String> = None;
        if status.is_none() {
            rule = Some("not_registered".into());
        } else {
            cite("amr.enterprise_registration", uscc.clone());
            if status.as_deref() != Some("active") {
                rule = Some("not_active".into());
            }
        }
        if rule.is_none()
            && e.exclude_abnormal_operation
            && let Some(record) = abnormal.get(&uscc)
        {
            cite("amr.abnormal_operation", record.clone());
            rule = Some("abnormal_operation".into());
        }
        if rule.is_none()
            && let Some((y, grade)) = credit.get(&uscc)
        {
            cite("tax.taxpayer_credit", format!("{uscc}/{y}"));
            if e.exclude_credit_grades.contains(grade) {
                rule = Some(format!("credit_grade_{grade}"));
            }
        }
        let heads = headcount.get(&uscc);
        if rule.is_none()
            && let Some(min) = e.min_insured_headcount
        {
            if let Some((m, _)) = heads {
                cite("hrss.employer_headcount", format!("{uscc}/{m}"));
            }
            if heads.is_none_or(|(_, n)| *n < i64::from(min)) {
                rule = Some("headcount_below_minimum".into());
            }
        }
        let (tax_paid, revenue) = tax.get(&uscc).copied().unwrap_or((None, None));
        let needs_tax = e.min_last_year_tax_paid.is_some()
            || matches!(
                policy.amount,
                Amount::Tiered {
                    by: TierMeasure::LastYearTaxPaid | TierMeasure::LastYearRevenue,
                    ..
                }
            );
        if rule.is_none() && needs_tax && tax.contains_key(&uscc) {
            cite("tax.tax_paid", format!("{uscc}/{year}"));
        }
        if rule.is_none()
            && let Some(min) = e.min_last_year_tax_paid
            && tax_paid.is_none_or(|t| t < min)
        {
            rule = Some("tax_below_minimum".into());
        }
        let mut tier = None;
        let mut amount = 0;
        if rule.is_none() {
            match &policy.amount {
                Amount::Fixed(a) => amount = *a,
                Amount::Tiered { by, tiers, .. } => {
                    let found = match by {
                        TierMeasure::SpecialisedSmeLevel => tiers
                            .iter()
                            .find(|t| t.level.is_some() && t.level == c.level),
                        measure => {
                            let value = match measure {
                                TierMeasure::LastYearTaxPaid => tax_paid,
                                TierMeasure::LastYearRevenue => revenue,
                                _ => heads.map(|(_, n)| n * 100),
                            };
                            value.and_then(|v| {
                                tiers.iter().find(|t| {
                                    t.min.is_some_and(|m| v >= m) && t.max.is_none_or(|m| v < m)
                                })
                            })
                        }
                    };
                    match found {
                        Some(t) => {
                            amount = t.amount;
                            tier = t.level.clone().or_else(|| t.min.map(yuan));
                        }
                        None => rule = Some("below_lowest_tier".into()),
                    }
                }
            }
        }
        decided.push(Decision {
            uscc,
            name,
            qualified_on: c.qualified_on,
            tier,
            amount: rule
                .is_none()
                .then(|| yuan(amount.min(policy.per_firm_cap))),
            rule,
            basis: None,
            decided: false,
            evidence,
        });
    }

    Ok(decided)
}
