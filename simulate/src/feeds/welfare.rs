//! 民政 subsistence allowance, elderly allowance payments, disability certificates and
//! subsidies; 人社 social insurance enrolment and pensions.

use chrono::{Datelike, Duration, Months, NaiveDate};

use crate::emit::Rec;
use crate::feed::{Feed, at};
use crate::rng::{chance, office_time, planted, range};
use crate::world::{World, bank_card_for};

/// Monthly subsistence standard per person (fen): raised on 2025-07-01.
fn subsistence_standard(d: NaiveDate) -> i64 {
    if d >= NaiveDate::from_ymd_opt(2025, 7, 1).expect("date") {
        80_000
    } else {
        76_000
    }
}

/// Salts of the cases the simulator plants for the 应享未享 checks (see
/// [`crate::entitlements`]): systems that missed someone entitled, or never stopped.
pub(crate) const MISSED_ELDERLY: u64 = 0xE1DE;
pub(crate) const MISSED_CARE_SUBSIDY: u64 = 0xCA2E;
pub(crate) const PENSION_NOT_STOPPED: u64 = 0x5E75;

/// What 民政's subsistence system holds for one household: who applied, from when, and
/// the day the case was terminated (`end_date`), if it was by the end of the window.
pub(crate) struct SubsistenceCase {
    pub(crate) applicant: u32,
    pub(crate) begin: NaiveDate,
    pub(crate) terminated: Option<NaiveDate>,
}

/// The subsistence case of household `h`: the first adult registered when it began; it is
/// terminated when the household leaves the scheme, or when the police register the
/// applicant's death (never when the applicant moves away: a gap the checks find).
pub(crate) fn subsistence_case(w: &World, h: usize) -> Option<SubsistenceCase> {
    let hh = &w.households[h];
    let (begin, stop) = hh.subsistence?;
    let start = w.cfg.start;
    let &applicant = hh.members.iter().find(|&&m| {
        w.people[m as usize].resident_on(begin.max(start))
            && w.people[m as usize].age_on(begin) >= 18
    })?;
    let death_known = w.people[applicant as usize]
        .death_known_on()
        .filter(|d| *d <= w.cfg.end);
    let stop = match (stop, death_known) {
        (Some(s), Some(d)) => Some(s.min(d)),
        (s, d) => s.or(d),
    };
    Some(SubsistenceCase {
        applicant,
        begin,
        terminated: stop.map(|s| s.max(begin)),
    })
}

pub(super) fn subsistence_allowance(w: &World, f: &mut Feed<'_>) {
    let start = w.cfg.start;
    let end = w.cfg.end;
    let raise = NaiveDate::from_ymd_opt(2025, 7, 1).expect("date");
    for (h, hh) in w.households.iter().enumerate() {
        let Some(case) = subsistence_case(w, h) else {
            continue;
        };
        let (applicant, begin) = (case.applicant, case.begin);
        let a = &w.people[applicant as usize];
        let size = hh
            .members
            .iter()
            .filter(|&&m| w.people[m as usize].resident_on(begin))
            .count()
            .max(1) as i64;
        let street = w.streets[hh.street as usize].name;
        let rec = |amount_date: NaiveDate, status: &'static str, end_date: Option<NaiveDate>| {
            Rec::with_capacity(11)
                .set("case_no", format!("DB{}{:08}", w.district.code, h + 1))
                .set("applicant_id", a.id.as_str())
                .set("applicant_name", a.name.as_str())
                .set("household_id", hh.id.as_str())
                .int("family_size", size)
                .money("monthly_amount", size * subsistence_standard(amount_date))
                .set("bank_card", bank_card_for(applicant))
                .set("street", street)
                .set("start_date", begin)
                .set("end_date", end_date)
                .set("status", status)
        };
        let mut current = if begin < start {
            let r = rec(start, "active", None);
            f.upsert(at(start, h as u64), r.clone());
            r
        } else {
            let r = rec(begin, "active", None);
            let t_ = office_time(&mut f.rng, begin);
            f.change(t_, 'c', None, Some(r.clone()));
            r
        };
        if begin < raise && raise <= end && case.terminated.is_none_or(|s| s > raise) {
            let r = rec(raise, "active", None);
            let t_ = office_time(&mut f.rng, raise);
            f.change(t_, 'u', Some(current.clone()), Some(r.clone()));
            current = r;
        }
        if let Some(s) = case.terminated {
            let r = rec(s, "terminated", Some(s));
            let t_ = office_time(&mut f.rng, s);
            f.change(t_ + Duration::minutes(5), 'u', Some(current), Some(r));
        }
    }
}

/// Monthly elderly allowance by age band (fen).
pub(crate) fn elderly_band(age: i32) -> Option<(&'static str, i64)> {
    match age {
        ..=69 => None,
        70..=79 => Some(("70-79", 5_000)),
        80..=89 => Some(("80-89", 10_000)),
        90..=99 => Some(("90-99", 30_000)),
        _ => Some(("100+", 50_000)),
    }
}

/// The months (first days) of the window in which the elderly allowance was paid.
pub(crate) fn payment_months(w: &World) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut m = NaiveDate::from_ymd_opt(w.cfg.end.year(), w.cfg.end.month(), 1).expect("date");
    while out.len() < w.cfg.payment_months as usize && m >= w.cfg.start {
        if m + Duration::days(9) <= w.cfg.end {
            out.push(m);
        }
        m = m - Months::new(1);
    }
    out.reverse();
    out
}

/// Whether the allowance system pays person `p` for `month`: aged 70+ on the first of the
/// month, registered in the district, and not known (to the police) as dead or moved out by
/// the pay day. Deaths that reach the police late are paid: the over-payments to recover.
/// 2 % of people it never enrolled (planted); and it pays by the age on the first, so a
/// band reached later in the month waits for the next one.
pub(crate) fn elderly_paid(w: &World, p: usize, month: NaiveDate) -> Option<(&'static str, i64)> {
    let person = &w.people[p];
    let pay_day = month + Duration::days(9);
    if person.registered_on > month || person.moved_out.is_some_and(|(d, _)| d <= pay_day) {
        return None;
    }
    if person.death_known_on().is_some_and(|k| k <= pay_day) {
        return None;
    }
    if planted(p as u64, MISSED_ELDERLY, 20) {
        return None; // planted: the allowance system never enrolled this person
    }
    elderly_band(person.age_on(month))
}

/// The bank's result for one payment: 1% fail, 0.5% come back returned (deterministic, so
/// the ground truth can tell what was really paid out).
pub(crate) fn payment_status(person: usize, month: NaiveDate) -> &'static str {
    let h =
        (person as u64 ^ (u64::from(month.year() as u32) << 40) ^ (u64::from(month.month()) << 52))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    match (h >> 33) % 1000 {
        0..=9 => "failed",
        10..=14 => "returned",
        _ => "paid",
    }
}

pub(super) fn elderly_allowance_payment(w: &World, f: &mut Feed<'_>) {
    for month in payment_months(w) {
        let period = month.format("%Y-%m").to_string();
        let pay_day = month + Duration::days(9);
        for (i, p) in w.people.iter().enumerate() {
            let Some((band, amount)) = elderly_paid(w, i, month) else {
                continue;
            };
            let status = payment_status(i, month);
            let rec = Rec::with_capacity(9)
                .set("payment_id", format!("GL{}{:08}", month.format("%Y%m"), i))
                .set("resident_id", p.id.as_str())
                .set("name", p.name.as_str())
                .set("period", period.as_str())
                .set("band", band)
                .money("amount", amount)
                .set("bank_card", bank_card_for(i as u32))
                .set("paid_on", (status != "failed").then_some(pay_day))
                .set("status", status);
            f.upsert(at(pay_day + Duration::days(1), i as u64), rec);
        }
    }
}

fn disability_cert_no(id: &str, category: u8, grade: u8) -> String {
    format!("{id}{category}{grade}")
}

pub(super) fn disability_certificate(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    for (i, p) in w.people.iter().enumerate() {
        let Some(d) = &p.disability else { continue };
        let valid_until = crate::rng::add_years(d.issued, 10);
        let rec = |status: &'static str| {
            Rec::with_capacity(8)
                .set(
                    "certificate_no",
                    disability_cert_no(&p.id, d.category, d.grade),
                )
                .set("resident_id", p.id.as_str())
                .set("name", p.name.as_str())
                .set("disability_category", d.category.to_string())
                .int("disability_grade", i64::from(d.grade))
                .set("issued_on", d.issued)
                .set("valid_until", valid_until)
                .set("status", status)
        };
        let first = if d.issued < start {
            at(start, i as u64)
        } else {
            office_time(&mut f.rng, d.issued)
        };
        let initial = if valid_until < start {
            "expired"
        } else {
            "valid"
        };
        f.upsert(first, rec(initial));
        if let Some(known) = p
            .death_known_on()
            .filter(|k| *k <= end && *k > first.date())
        {
            let t_ = office_time(&mut f.rng, known);
            f.upsert(t_, rec("cancelled"));
        } else if initial == "valid" && valid_until <= end {
            f.upsert(
                at(valid_until + Duration::days(1), i as u64),
                rec("expired"),
            );
        }
    }
}

/// One disability subsidy as 民政's system holds it.
pub(crate) struct Subsidy {
    /// `care` (重度残疾人护理补贴) or `living` (困难残疾人生活补贴).
    pub(crate) kind: &'static str,
    /// Its position among the person's subsidies (part of `subsidy_id`).
    pub(crate) n: usize,
    pub(crate) amount: i64,
    pub(crate) begin: NaiveDate,
    /// The day it was stopped by the end of the window (the police registered the death).
    pub(crate) stopped: Option<NaiveDate>,
}

/// The disability subsidies the system pays person `i`: care for grades 1–2, living for a
/// household that ever had subsistence allowance (the system never re-checks either: gaps
/// the checks find), from the month after the certificate; 10 % of the care subsidies due
/// it never set up (planted).
pub(crate) fn disability_subsidies(w: &World, i: usize) -> Vec<Subsidy> {
    let (start, end) = (w.cfg.start, w.cfg.end);
    let floor = NaiveDate::from_ymd_opt(2016, 1, 1).expect("date");
    let p = &w.people[i];
    let Some(d) = &p.disability else {
        return Vec::new();
    };
    let poor = w.households[p.household as usize].subsistence.is_some();
    let care = d.grade <= 2 && !planted(i as u64, MISSED_CARE_SUBSIDY, 100);
    let kinds: &[(&str, i64)] = match (care, poor) {
        (true, true) => &[("care", 10_000), ("living", 10_000)],
        (true, false) => &[("care", 10_000)],
        (false, true) => &[("living", 10_000)],
        (false, false) => &[],
    };
    let begin = (NaiveDate::from_ymd_opt(d.issued.year(), d.issued.month(), 1).expect("date")
        + Months::new(1))
    .max(floor);
    if begin > end {
        return Vec::new();
    }
    let first_day = begin.max(start);
    let stopped = p.death_known_on().filter(|x| *x <= end && *x > first_day);
    kinds
        .iter()
        .enumerate()
        .map(|(n, (kind, amount))| Subsidy {
            kind,
            n,
            amount: *amount,
            begin,
            stopped,
        })
        .collect()
}

pub(super) fn disability_subsidy(w: &World, f: &mut Feed<'_>) {
    let start = w.cfg.start;
    for (i, p) in w.people.iter().enumerate() {
        for s in disability_subsidies(w, i) {
            let rec = |status: &'static str, stop: Option<NaiveDate>| {
                Rec::with_capacity(8)
                    .set(
                        "subsidy_id",
                        format!("LB{}{:08}{}", w.district.code, i, s.n),
                    )
                    .set("resident_id", p.id.as_str())
                    .set("name", p.name.as_str())
                    .set("subsidy_type", s.kind)
                    .money("monthly_amount", s.amount)
                    .set("start_date", s.begin)
                    .set("end_date", stop)
                    .set("status", status)
            };
            let first = if s.begin < start {
                at(start, i as u64)
            } else {
                office_time(&mut f.rng, s.begin)
            };
            f.upsert(first, rec("active", None));
            if let Some(known) = s.stopped {
                let t_ = office_time(&mut f.rng, known);
                f.upsert(t_, rec("stopped", Some(known)));
            }
        }
    }
}

pub(super) fn social_insurance_enrolment(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    for (i, p) in w.people.iter().enumerate() {
        let Some(e) = p.employer else { continue };
        let base = range(&mut f.rng, 4_000, 20_000) * 100;
        let retire = crate::rng::add_years(p.birth, if p.male { 60 } else { 55 });
        let ent = &w.enterprises[e as usize];
        let change =
            chance(&mut f.rng, 0.04).then(|| crate::rng::date_between(&mut f.rng, start, end));
        let new_employer = change.and_then(|_| {
            let j = range(&mut f.rng, 0, w.enterprises.len() as i64 - 1) as usize;
            w.enterprises[j].active_on(end).then_some(j)
        });
        for kind in ["pension", "medical"] {
            let rec = |employer: &str,
                       since: NaiveDate,
                       status: &'static str,
                       stop: Option<NaiveDate>| {
                Rec::with_capacity(8)
                    .set("resident_id", p.id.as_str())
                    .set("name", p.name.as_str())
                    .set("insurance_type", kind)
                    .set("employer_uscc", employer)
                    .money("contribution_base", base)
                    .set("start_date", since)
                    .set("end_date", stop)
                    .set("status", status)
            };
            f.upsert(
                at(start, i as u64),
                rec(&ent.uscc, p.employed_since, "active", None),
            );
            // The first thing that ends or changes the enrolment inside the window wins.
            let death = p.death_known_on().filter(|d| *d <= end);
            let moved = p.moved_out.map(|(d, _)| d).filter(|d| *d <= end);
            let retired = (kind == "pension" && retire > start && retire <= end).then_some(retire);
            let cancelled = ent.cancelled.filter(|d| *d >= start && *d <= end);
            let mut ends: Vec<(NaiveDate, &'static str)> = Vec::new();
            if let Some(d) = death.into_iter().chain(moved).chain(retired).min() {
                ends.push((d, "ended"));
            }
            if let Some(d) = cancelled {
                ends.push((d, "suspended"));
            }
            ends.sort();
            if let (Some(d), Some(j)) = (change, new_employer)
                && ends.first().is_none_or(|(x, _)| *x > d)
            {
                let t_ = office_time(&mut f.rng, d);
                f.upsert(t_, rec(&w.enterprises[j].uscc, d, "active", None));
                continue;
            }
            if let Some((d, status)) = ends.first() {
                let stop = (*status == "ended").then_some(*d);
                let t_ = office_time(&mut f.rng, *d);
                f.upsert(t_, rec(&ent.uscc, p.employed_since, status, stop));
            }
        }
    }
}

/// What 人社's pension system holds for person `i`: from the month after the retirement
/// age, stopped when the police register the death — except 20 % of those, which it never
/// stops (planted).
pub(crate) fn pension_record(w: &World, i: usize) -> Option<(NaiveDate, Option<NaiveDate>)> {
    let (start, end) = (w.cfg.start, w.cfg.end);
    let p = &w.people[i];
    let pen = p.pension.as_ref()?;
    if pen.start > end || p.death.is_some_and(|d| d < pen.start) {
        return None;
    }
    let first_day = pen.start.max(start);
    let stopped = p
        .death_known_on()
        .filter(|k| *k <= end && *k > first_day)
        .filter(|_| !planted(i as u64, PENSION_NOT_STOPPED, 200));
    Some((pen.start, stopped))
}

pub(super) fn pension(w: &World, f: &mut Feed<'_>) {
    let start = w.cfg.start;
    for (i, p) in w.people.iter().enumerate() {
        let (Some(pen), Some((pen_start, stopped))) = (&p.pension, pension_record(w, i)) else {
            continue;
        };
        let rec = |status: &'static str, stopped: Option<NaiveDate>| {
            Rec::with_capacity(8)
                .set("resident_id", p.id.as_str())
                .set("name", p.name.as_str())
                .set(
                    "pension_type",
                    if pen.enterprise {
                        "enterprise"
                    } else {
                        "urban_rural"
                    },
                )
                .money("monthly_amount", pen.monthly_fen)
                .set("start_date", pen_start)
                .set("bank_card", bank_card_for(i as u32))
                .set("status", status)
                .set("stopped_on", stopped)
        };
        let first = if pen_start < start {
            at(start, i as u64)
        } else {
            office_time(&mut f.rng, pen_start)
        };
        f.upsert(first, rec("active", None));
        if let Some(known) = stopped {
            let t_ = office_time(&mut f.rng, known);
            f.upsert(t_, rec("stopped", Some(known)));
        }
    }
}
