//! Life inside the window for the generated population: deaths, moves, births, benefits
//! and marriages.
//!
//! Data flow: the households of [`super::world`] → deaths by age-specific mortality (with the
//! police's reporting lag) → whole households moving out, new households moving in → births
//! to couples → disability certificates, pensions and subsistence allowance → marriage
//! registrations (existing couples since 2010, new marriages, divorces).

use chrono::{Datelike, Duration, NaiveDate};

use super::names;
use super::rng::{add_years, chance, date_between, pick, range, weighted};
use super::world::{Builder, Disability, Marriage, Pension, Person, mortality, surname_of};

/// Deaths, moves out, move-ins and births inside the window.
pub(super) fn life_events(b: &mut Builder<'_>) {
    let (start, end) = (b.cfg.start, b.cfg.end);
    let years = (end - start).num_days() as f64 / 365.25;
    let initial = b.people.len();
    for i in 0..initial {
        let age = b.people[i].age_on(start);
        if chance(&mut b.rng, 1.0 - (1.0 - mortality(age)).powf(years)) {
            let d = date_between(&mut b.rng, start, end);
            let lag = range(&mut b.rng, 14, 120);
            let p = &mut b.people[i];
            p.death = Some(d);
            p.ps_death_lag = lag;
        }
    }
    // Whole households move out.
    let households = b.households.len();
    for h in 0..households {
        if chance(&mut b.rng, 0.012 * years) {
            let d = date_between(&mut b.rng, start, end);
            let to = *pick(&mut b.rng, names::OTHER_AREAS);
            for &m in &b.households[h].members.clone() {
                let p = &mut b.people[m as usize];
                if p.death.is_none_or(|x| x > d) {
                    p.moved_out = Some((d, to));
                }
            }
        }
    }
    // Households moving in during the window.
    let arrivals = (households as f64 * 0.01 * years).round() as usize;
    for _ in 0..arrivals {
        let first = b.people.len();
        b.random_household();
        let d = date_between(&mut b.rng, start, end);
        let from = *pick(&mut b.rng, names::OTHER_AREAS);
        for p in &mut b.people[first..] {
            p.registered_on = d;
            p.moved_in_from = Some(from);
        }
    }
    // Births to couples where the mother is 22–40 at the window start.
    let hh_count = b.households.len();
    for h in 0..hh_count {
        let members = b.households[h].members.clone();
        let mother = members.iter().copied().find(|&m| {
            let p = &b.people[m as usize];
            !p.male && (22..=40).contains(&p.age_on(start)) && p.relation != "30"
        });
        let father = members
            .iter()
            .copied()
            .find(|&m| b.people[m as usize].male && b.people[m as usize].relation == "02");
        let (Some(mo), Some(fa)) = (mother, father) else {
            continue;
        };
        if !chance(&mut b.rng, 0.06 * years) {
            continue;
        }
        let birth = date_between(&mut b.rng, start, end - Duration::days(3));
        let mp = &b.people[mo as usize];
        if !mp.resident_on(birth) {
            continue;
        }
        let male = chance(&mut b.rng, 0.52);
        let surname = surname_of(&b.people[fa as usize].name);
        let id = b.ids.issue(b.district.code, birth, male);
        let name = b.name(Some(&surname), male);
        let lag = range(&mut b.rng, 10, 60);
        let idx = b.people.len() as u32;
        b.people.push(Person {
            id,
            name,
            male,
            birth,
            ethnicity: b.people[fa as usize].ethnicity,
            household: h as u32,
            relation: Builder::child_relation(male),
            phone: None,
            registered_on: birth + Duration::days(lag),
            moved_in_from: None,
            mother: Some(mo),
            father: Some(fa),
            death: None,
            ps_death_lag: 0,
            moved_out: b.people[mo as usize].moved_out.filter(|(d, _)| *d > birth),
            disability: None,
            employer: None,
            employed_since: start,
            pension: None,
        });
        b.households[h].members.push(idx);
    }
}

/// Disability certificates, pensions and subsistence allowance.
pub(super) fn benefits(b: &mut Builder<'_>) {
    let (start, end) = (b.cfg.start, b.cfg.end);
    for i in 0..b.people.len() {
        let p = &b.people[i];
        let age = p.age_on(start).max(0);
        let rate = 0.02 + f64::from(age) * 0.0009;
        if p.birth < start && chance(&mut b.rng, rate) {
            let category = weighted(
                &mut b.rng,
                &[(1u8, 12), (2, 20), (3, 2), (4, 45), (5, 8), (6, 8), (7, 5)],
            );
            let grade = weighted(&mut b.rng, &[(1u8, 12), (2, 25), (3, 30), (4, 33)]);
            let earliest =
                add_years(p.birth, 1).max(NaiveDate::from_ymd_opt(2010, 1, 1).expect("date"));
            let issued = if chance(&mut b.rng, 0.1) {
                date_between(&mut b.rng, start, end)
            } else {
                date_between(&mut b.rng, earliest.min(start), start)
            };
            let issued = issued.max(p.birth + Duration::days(30));
            if issued <= end {
                b.people[i].disability = Some(Disability {
                    category,
                    grade,
                    issued,
                });
            }
        }
        let p = &b.people[i];
        let retire_age = if p.male { 60 } else { 55 };
        let retire = add_years(p.birth, retire_age);
        if retire <= end && chance(&mut b.rng, 0.92) {
            let enterprise = chance(&mut b.rng, 0.8);
            let monthly_fen = if enterprise {
                range(&mut b.rng, 220_000, 680_000)
            } else {
                range(&mut b.rng, 15_000, 32_000)
            };
            let start_month = NaiveDate::from_ymd_opt(retire.year(), retire.month(), 1)
                .expect("date")
                + chrono::Months::new(1);
            b.people[i].pension = Some(Pension {
                enterprise,
                monthly_fen,
                start: start_month,
            });
        }
    }
    for h in 0..b.households.len() {
        let vulnerable = b.households[h].members.iter().any(|&m| {
            let p = &b.people[m as usize];
            p.disability.is_some() || p.age_on(start) >= 75
        });
        let p = if vulnerable { 0.06 } else { 0.015 };
        if chance(&mut b.rng, p) {
            let begin = if chance(&mut b.rng, 0.75) {
                date_between(
                    &mut b.rng,
                    NaiveDate::from_ymd_opt(2015, 1, 1).expect("date"),
                    start - Duration::days(1),
                )
            } else {
                date_between(&mut b.rng, start, end)
            };
            let stop =
                chance(&mut b.rng, 0.15).then(|| date_between(&mut b.rng, begin.max(start), end));
            b.households[h].subsistence = Some((begin, stop));
        }
    }
}

/// Marriage registrations: existing couples (since 2010), new marriages and divorces.
pub(super) fn marriages(b: &mut Builder<'_>) -> Vec<Marriage> {
    let (start, end) = (b.cfg.start, b.cfg.end);
    let since = NaiveDate::from_ymd_opt(2010, 1, 1).expect("date");
    let mut out = Vec::new();
    for h in 0..b.households.len() {
        let members = &b.households[h].members;
        let head = members[0];
        let Some(&spouse) = members
            .iter()
            .find(|&&m| matches!(b.people[m as usize].relation, "11" | "12"))
        else {
            continue;
        };
        let (husband, wife) = if b.people[head as usize].male {
            (head, spouse)
        } else {
            (spouse, head)
        };
        let younger = b.people[husband as usize]
            .birth
            .max(b.people[wife as usize].birth);
        let date = date_between(&mut b.rng, add_years(younger, 22), add_years(younger, 30))
            .min(start - Duration::days(1));
        if date >= since {
            out.push(Marriage {
                husband,
                wife,
                date,
                divorce: false,
            });
        }
        if chance(&mut b.rng, 0.004) {
            out.push(Marriage {
                husband,
                wife,
                date: date_between(&mut b.rng, start, end),
                divorce: true,
            });
        }
    }
    // New couples: unmarried adult children, paired in order.
    let singles = |male: bool| -> Vec<u32> {
        b.people
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.male == male
                    && matches!(p.relation, "20" | "30")
                    && (23..=34).contains(&p.age_on(start))
            })
            .map(|(i, _)| i as u32)
            .collect()
    };
    let (men, women) = (singles(true), singles(false));
    for (&m, &w) in men.iter().zip(women.iter()) {
        if chance(&mut b.rng, 0.04) {
            let date = date_between(&mut b.rng, start, end);
            if b.people[m as usize].resident_on(date) && b.people[w as usize].resident_on(date) {
                out.push(Marriage {
                    husband: m,
                    wife: w,
                    date,
                    divorce: false,
                });
            }
        }
    }
    out
}
