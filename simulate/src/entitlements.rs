//! The ground truth of the 应享未享 checks: who is entitled to a benefit but not receiving it,
//! and who is receiving it but no longer entitled, as the lake can know it at the end of the
//! window (`_truth/entitlements.jsonl`).
//!
//! Data flow: the [`World`] (births, deaths, moves, disabilities, retirements, households)
//! → what each department's records tell the lake by the end (a death from the hospital's
//! certificate or the police, whichever came first; a move-out from the police) → each
//! benefit's rule (the same rules as the lake's `scenarios.*_gaps` views, written in
//! `docs/scenarios.md`) → compared with what each benefit's own system holds (the feeds'
//! decisions in [`crate::feeds::welfare`], including the cases planted there: people the
//! elderly allowance never enrolled, care subsidies never set up, pensions never stopped).

use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;

use crate::feeds::welfare::{
    disability_subsidies, elderly_band, elderly_paid, payment_months, payment_status,
    pension_record, subsistence_case,
};
use crate::rng::add_years;
use crate::world::{Person, World};

pub(crate) const UNCLAIMED: &str = "entitled_not_receiving";
pub(crate) const UNENTITLED: &str = "receiving_not_entitled";

/// One finding the checks must make.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Finding {
    /// `elderly_allowance`, `subsistence_allowance`, `disability_subsidy` or `pension`.
    pub(crate) benefit: &'static str,
    pub(crate) direction: &'static str,
    pub(crate) rule: String,
    pub(crate) resident_id: String,
    /// The band, subsidy type, pension type or case number the finding is about.
    pub(crate) item: String,
    pub(crate) as_of: NaiveDate,
}

/// What the lake knows of one person at the end of the window.
struct Known {
    end: NaiveDate,
}

impl Known {
    /// The date of death, once the hospital's certificate or the police's record of it has
    /// come (someone who moved away first dies elsewhere, in nobody's records here).
    fn died(&self, p: &Person) -> Option<NaiveDate> {
        if !p.death_recorded_here() {
            return None;
        }
        let first = [p.death_certified_on(), p.death_known_on()]
            .into_iter()
            .flatten()
            .min()?;
        (first <= self.end).then_some(p.death?)
    }

    fn alive_on(&self, p: &Person, day: NaiveDate) -> bool {
        self.died(p).is_none_or(|d| d >= day)
    }

    /// Registered by the police in the district on `day` (the police record a move-out
    /// only of someone alive when leaving).
    fn registered_on(&self, p: &Person, day: NaiveDate) -> bool {
        let moved_out = p
            .moved_out
            .map(|(d, _)| d)
            .filter(|d| *d <= self.end && p.death.is_none_or(|x| x > *d));
        p.registered_on <= day.min(self.end) && moved_out.is_none_or(|m| m > day)
    }

    fn resident_on(&self, p: &Person, day: NaiveDate) -> bool {
        self.registered_on(p, day) && self.alive_on(p, day)
    }
}

fn month_end(first: NaiveDate) -> NaiveDate {
    (first + Months::new(1)).pred_opt().expect("date")
}

/// Every finding at the end of the window, sorted.
pub(crate) fn findings(w: &World) -> Vec<Finding> {
    let end = w.cfg.end;
    let k = Known { end };
    let mut out = Vec::new();
    let mut push = |benefit, direction, rule: &str, p: &Person, item: &str| {
        out.push(Finding {
            benefit,
            direction,
            rule: rule.to_owned(),
            resident_id: p.id.clone(),
            item: item.to_owned(),
            as_of: end,
        });
    };

    // Elderly allowance: the latest month paid; due by the band reached by the month's end.
    if let Some(&month) = payment_months(w).last() {
        let last = month_end(month);
        for (i, p) in w.people.iter().enumerate() {
            let due = (k.resident_on(p, month))
                .then(|| elderly_band(p.age_on(last)))
                .flatten();
            let paid = elderly_paid(w, i, month).map(|b| (b, payment_status(i, month)));
            const B: &str = "elderly_allowance";
            match (due, paid) {
                (Some((band, _)), None) => push(B, UNCLAIMED, "not_paid", p, band),
                (Some((band, _)), Some((_, status))) if status != "paid" => {
                    push(B, UNCLAIMED, &format!("payment_{status}"), p, band);
                }
                (Some((band, due)), Some(((_, got), _))) if got < due => {
                    push(B, UNCLAIMED, "band_not_upgraded", p, band);
                }
                (due, Some(((band, got), "paid"))) => {
                    let rule = if !k.alive_on(p, month) {
                        "deceased"
                    } else if !k.registered_on(p, month) {
                        "not_registered"
                    } else if due.is_none() {
                        "under_age"
                    } else if due.is_some_and(|(_, d)| got > d) {
                        "over_band"
                    } else {
                        continue;
                    };
                    push(B, UNENTITLED, rule, p, band);
                }
                _ => {}
            }
        }
    }

    // Pension: due from the month after the retirement age (60 men, 55 women) to anyone
    // who was enrolled in pension insurance; paid until the death.
    for (i, p) in w.people.iter().enumerate() {
        const B: &str = "pension";
        let active = pension_record(w, i).is_some_and(|(_, stopped)| stopped.is_none());
        let kind = match &p.pension {
            Some(x) if x.enterprise => "enterprise",
            Some(_) => "urban_rural",
            None => "pension",
        };
        if active && !k.alive_on(p, end) {
            push(B, UNENTITLED, "deceased", p, kind);
        }
        let retire = add_years(p.birth, if p.male { 60 } else { 55 });
        let due = NaiveDate::from_ymd_opt(retire.year(), retire.month(), 1).expect("date")
            + Months::new(1);
        if !active && p.employer.is_some() && due <= end && k.resident_on(p, end) {
            push(B, UNCLAIMED, "no_pension", p, "pension");
        }
    }

    // Subsistence allowance: an applicant dead or gone while the case runs on; a case ended
    // by the applicant's death while the family is still here (to be re-examined).
    for h in 0..w.households.len() {
        const B: &str = "subsistence_allowance";
        let Some(case) = subsistence_case(w, h) else {
            continue;
        };
        let case_no = format!("DB{}{:08}", w.district.code, h + 1);
        let a = &w.people[case.applicant as usize];
        match case.terminated {
            None if !k.alive_on(a, end) => push(B, UNENTITLED, "applicant_deceased", a, &case_no),
            None if !k.registered_on(a, end) => {
                push(B, UNENTITLED, "applicant_not_registered", a, &case_no);
            }
            Some(t) if k.died(a).is_some_and(|d| d <= t) => {
                for m in w
                    .people
                    .iter()
                    .filter(|m| m.household as usize == h && m.id != a.id && k.resident_on(m, end))
                {
                    push(B, UNCLAIMED, "applicant_died_family_remains", m, &case_no);
                }
            }
            _ => {}
        }
    }

    // Disability subsidies: care for a valid certificate of grade 1–2, living for a valid
    // certificate in a household on subsistence allowance.
    for (i, p) in w.people.iter().enumerate() {
        const B: &str = "disability_subsidy";
        let Some(d) = &p.disability else { continue };
        let first_day = d.issued.max(w.cfg.start);
        let cancelled = p
            .death_known_on()
            .is_some_and(|x| x <= end && x > first_day);
        let valid = add_years(d.issued, 10) >= end && !cancelled;
        let poor = subsistence_case(w, p.household as usize)
            .is_some_and(|c| c.begin <= end && c.terminated.is_none());
        let here = k.resident_on(p, end);
        let receiving: Vec<&str> = disability_subsidies(w, i)
            .into_iter()
            .filter(|s| s.stopped.is_none())
            .map(|s| s.kind)
            .collect();
        for (kind, entitled) in [("care", d.grade <= 2), ("living", poor)] {
            let entitled = entitled && valid && here;
            let gets = receiving.contains(&kind);
            if entitled && !gets {
                push(B, UNCLAIMED, "not_receiving", p, kind);
            } else if gets && !entitled {
                let rule = if !k.alive_on(p, end) {
                    "deceased"
                } else if !k.registered_on(p, end) {
                    "not_registered"
                } else if !valid {
                    "certificate_not_valid"
                } else if kind == "care" {
                    "grade_not_severe"
                } else {
                    "household_not_on_subsistence"
                };
                push(B, UNENTITLED, rule, p, kind);
            }
        }
    }
    out.sort();
    out
}
