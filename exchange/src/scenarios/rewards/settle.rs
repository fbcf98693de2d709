//! A policy's assessment settled against the ledger: what each eligible firm is owed now.
//!
//! Data flow: the firms as assessed over the lake ([`super::run::assess`], full amounts) +
//! the ledger → a firm the ledger decided already keeps its decision (its amount holds the
//! budget; a rejected one stays excluded as `rejected`) → for the others, in order of
//! qualification (earliest first): the full amount less what the ledger committed to the
//! firm before — under this policy in earlier periods when the policy tops up, under the
//! other policies of its group ("highest only") — is what is owed (`top_up`,
//! `highest_only_top_up`); nothing owed excludes it (`tier_already_paid`, `highest_only`);
//! what the budget cannot hold any more is `budget_exhausted`.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use super::ledger::{Ledger, kind, period};
use super::policy::{RewardPolicy, yuan};
use super::run::{Decision, RewardsReport};
use crate::scenarios::hundredths;

/// What the ledger committed to one firm before this policy and period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Before {
    /// Fen, under this policy in earlier periods (counted when it tops up).
    same: i64,
    /// Fen, under the other policies of its group.
    group: i64,
}

fn before(policy: &RewardPolicy, ledger: &Ledger) -> HashMap<String, Before> {
    let ours = period(policy);
    let groups: HashMap<String, Option<String>> = ledger
        .policies()
        .into_iter()
        .map(|(p, _)| (p.id, p.group))
        .collect();
    let rejected: HashSet<(&str, &str, &str)> = ledger
        .lines
        .iter()
        .filter(|l| l.kind == kind::REJECTION)
        .filter_map(|l| Some((l.policy.as_str(), l.period.as_str(), l.uscc.as_deref()?)))
        .collect();
    let top_up = matches!(
        policy.amount,
        super::policy::Amount::Tiered { top_up: true, .. }
    );
    let mut out: HashMap<String, Before> = HashMap::new();
    for l in &ledger.lines {
        let Some(u) = l.uscc.as_deref() else { continue };
        if l.kind != kind::DECISION || rejected.contains(&(&l.policy, &l.period, u)) {
            continue;
        }
        let b = out.entry(u.to_owned()).or_default();
        if l.policy == policy.id {
            if top_up && l.period != ours {
                b.same += l.fen.unwrap_or(0);
            }
        } else if policy.group.is_some()
            && groups.get(&l.policy).is_some_and(|g| *g == policy.group)
        {
            b.group += l.fen.unwrap_or(0);
        }
    }
    out
}

/// Settles `decisions` (as assessed as of `as_of`) against `ledger`.
pub fn settle(
    policy: &RewardPolicy,
    as_of: NaiveDate,
    mut decisions: Vec<Decision>,
    ledger: &Ledger,
) -> RewardsReport {
    let period = period(policy);
    let firms = ledger.firms(&policy.id, &period);
    let before = before(policy, ledger);
    let mut total: i64 = firms
        .values()
        .filter(|f| f.rejection.is_none())
        .map(|f| f.fen())
        .sum();
    decisions.sort_by(|a, b| (a.qualified_on, &a.uscc).cmp(&(b.qualified_on, &b.uscc)));
    let (mut eligible, mut excluded) = (Vec::new(), Vec::new());
    for mut d in decisions {
        if let Some(f) = firms.get(d.uscc.as_str()) {
            if f.rejection.is_some() {
                d.amount = None;
                d.rule = Some("rejected".into());
                excluded.push(d);
            } else {
                d.amount = Some(yuan(f.fen()));
                d.tier = f.decision.tier.clone();
                d.basis = f.decision.reason.clone();
                d.rule = None;
                d.decided = true;
                eligible.push(d);
            }
            continue;
        }
        let Some(full) = d.amount.as_deref().and_then(hundredths) else {
            excluded.push(d);
            continue;
        };
        let b = before.get(&d.uscc).copied().unwrap_or_default();
        let due = full - b.same - b.group;
        let rule = if due <= 0 {
            Some(if b.group > 0 {
                "highest_only"
            } else {
                "tier_already_paid"
            })
        } else if total + due > policy.budget {
            Some("budget_exhausted")
        } else {
            None
        };
        match rule {
            Some(r) => {
                d.amount = None;
                d.rule = Some(r.into());
                excluded.push(d);
            }
            None => {
                total += due;
                d.amount = Some(yuan(due));
                d.basis = Some(
                    if b.same > 0 {
                        "top_up"
                    } else if b.group > 0 {
                        "highest_only_top_up"
                    } else {
                        "eligible"
                    }
                    .into(),
                );
                eligible.push(d);
            }
        }
    }
    RewardsReport {
        policy: policy.id.clone(),
        version: policy.version,
        from: policy.from,
        to: policy.to,
        as_of,
        eligible,
        excluded,
        total: yuan(total),
        budget: yuan(policy.budget),
    }
}
