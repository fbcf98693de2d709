//! Enterprises, employment, property and construction projects of the simulated district.
//!
//! Data flow: enterprises drawn with a heavy-tailed size (weight) → legal representatives
//! and employees picked among the residents → revenue, tax, qualifications (高新, 专精特新,
//! 规上), abnormal-operation listings and credit grades derived from size and industry →
//! property certificates for households, with housing contracts for newer homes and
//! transfers inside the window → major projects with their lifecycle events.

use chrono::{Datelike, Duration, NaiveDate};
use gdx_catalog::Uscc;

use super::names;
use super::rng::{
    self, Rng, add_years, chance, date_between, normal, pick, range, uniform, weighted,
};
use super::world::World;

use super::entities::{Enterprise, Project, YEARS};

pub(crate) fn generate(w: &mut World) {
    let mut rng = rng::stream(w.cfg.seed, "economy");
    enterprises(w, &mut rng);
    employment(w, &mut rng);
    finances(w, &mut rng);
    super::property::generate(w, &mut rng);
    projects(w, &mut rng);
}

fn org_code(i: usize) -> String {
    // "MA4" + six base-31 digits of a bijective scramble of the index: unique per
    // enterprise (7919 is prime to 31^6) without looking sequential.
    let alphabet = Uscc::alphabet();
    let mut n = ((i as u64 * 7_919 + 104_729) % 887_503_681) as usize;
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = alphabet[n % 31];
        n /= 31;
    }
    format!("MA4{}", std::str::from_utf8(&digits).expect("ascii"))
}

fn enterprises(w: &mut World, rng: &mut Rng) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    let adults: Vec<u32> = w
        .people
        .iter()
        .enumerate()
        .filter(|(_, p)| (25..=70).contains(&p.age_on(start)) && p.birth < start)
        .map(|(i, _)| i as u32)
        .collect();
    let mut used_names = std::collections::HashSet::new();
    let years = w.window_years();
    for i in 0..w.cfg.enterprises {
        let industry = weighted_index(rng, names::INDUSTRIES.iter().map(|x| x.3));
        let (_, word, _, _) = names::INDUSTRIES[industry];
        let mut name;
        loop {
            name = format!(
                "{}{}{}{}有限公司",
                &w.district.city[..w.district.city.len() - 3],
                pick(rng, names::BRAND),
                pick(rng, names::BRAND),
                word
            );
            if used_names.insert(name.clone()) {
                break;
            }
            name = format!(
                "{}{}{}{}{}有限公司",
                &w.district.city[..w.district.city.len() - 3],
                pick(rng, names::BRAND),
                pick(rng, names::BRAND),
                pick(rng, names::BRAND),
                word
            );
            if used_names.insert(name.clone()) {
                break;
            }
        }
        let established = if chance(rng, 0.06 * years) {
            date_between(rng, start, end)
        } else {
            let r = uniform(rng).sqrt();
            let first = NaiveDate::from_ymd_opt(1995, 1, 1).expect("date");
            first + Duration::days(((start - first).num_days() as f64 * r) as i64 - 1)
        };
        let cancelled = if established < start && chance(rng, 0.08) {
            Some(date_between(rng, established, start - Duration::days(1)))
        } else if established < start && chance(rng, 0.03 * years) {
            Some(date_between(rng, start, end))
        } else {
            None
        };
        let street = range(rng, 0, w.streets.len() as i64 - 1) as u16;
        let s = &w.streets[street as usize];
        let address = format!(
            "{}{}{}{}号{}",
            w.district.city,
            w.district.name,
            pick(rng, names::ROADS),
            range(rng, 1, 888),
            if chance(rng, 0.5) {
                format!("{}层", range(rng, 1, 40))
            } else {
                String::new()
            }
        );
        let _ = s;
        let capital_wan =
            [10, 50, 100, 200, 500, 1000, 3000, 5000, 10000][range(rng, 0, 8) as usize];
        w.enterprises.push(Enterprise {
            uscc: Uscc::compose("91", w.district.code, &org_code(i))
                .expect("valid")
                .as_str()
                .to_owned(),
            name,
            etype: weighted(rng, names::ENTERPRISE_TYPES),
            legal_rep: *pick(rng, &adults),
            industry,
            capital_fen: capital_wan * 1_000_000,
            established,
            street,
            address,
            cancelled,
            outside_staff: 0,
            resident_staff: 0,
            revenue: [0; 2],
            tax: [0; 2],
            high_tech: None,
            sme: None,
            above_scale_first: None,
            abnormal: None,
            credit: ["B"; 2],
        });
    }
}

fn weighted_index(rng: &mut Rng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut r = range(rng, 0, i64::from(total) - 1) as u32;
    for (i, w) in weights.enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    0
}

/// Assigns working-age residents to enterprises active at the window start, with a
/// heavy-tailed size distribution.
fn employment(w: &mut World, rng: &mut Rng) {
    let start = w.cfg.start;
    let open: Vec<u32> = (0..w.enterprises.len() as u32)
        .filter(|&i| w.enterprises[i as usize].active_on(start))
        .collect();
    if open.is_empty() {
        return;
    }
    // Cumulative weights: lognormal sizes.
    let mut cumulative = Vec::with_capacity(open.len());
    let mut total = 0.0;
    for _ in &open {
        total += (normal(rng) * 1.5).exp();
        cumulative.push(total);
    }
    for p in 0..w.people.len() {
        let person = &w.people[p];
        let age = person.age_on(start);
        let limit = if person.male { 59 } else { 54 };
        if person.birth >= start || !(18..=limit).contains(&age) || !chance(rng, 0.62) {
            continue;
        }
        let r = uniform(rng) * total;
        let slot = cumulative.partition_point(|&c| c < r).min(open.len() - 1);
        let e = open[slot];
        let since = date_between(
            rng,
            add_years(person.birth, 18).max(w.enterprises[e as usize].established),
            start - Duration::days(1),
        );
        w.people[p].employer = Some(e);
        w.people[p].employed_since = since;
        w.enterprises[e as usize].resident_staff += 1;
    }
    for e in &mut w.enterprises {
        if e.resident_staff > 0 {
            e.outside_staff = (f64::from(e.resident_staff) * (0.3 + uniform(rng))) as u32;
        }
    }
}

/// Revenue, tax, qualifications, listings and credit grades.
fn finances(w: &mut World, rng: &mut Rng) {
    let end = w.cfg.end;
    for e in &mut w.enterprises {
        let staff = f64::from(e.headcount().max(1));
        let base = staff * 350_000.0 * (normal(rng) * 0.6).exp();
        for (k, year) in YEARS.iter().enumerate() {
            let year_end = NaiveDate::from_ymd_opt(*year, 12, 31).expect("date");
            if e.established > year_end || e.cancelled.is_some_and(|c| c.year() <= *year) {
                continue;
            }
            let growth = 1.0 + 0.12 * k as f64 + normal(rng) * 0.1;
            let revenue_fen = (base * growth.max(0.2) * 100.0) as i64;
            e.revenue[k] = revenue_fen;
            e.tax[k] = (revenue_fen as f64 * (0.03 + uniform(rng) * 0.05)) as i64;
        }
        let tech = matches!(
            e.industry_code(),
            "I64" | "I65" | "M73" | "M75" | "C39" | "C38" | "C35" | "C27"
        );
        if tech && e.headcount() >= 5 && e.cancelled.is_none() && chance(rng, 0.25) {
            let year = range(rng, 2017, 2025) as i32;
            let d = NaiveDate::from_ymd_opt(year, 12, 1).expect("date");
            if d > e.established && d <= end {
                e.high_tech = Some(d);
            }
        }
        let manufacturing = e.sector() == "industry";
        if (e.high_tech.is_some() || manufacturing)
            && e.headcount() >= 8
            && e.cancelled.is_none()
            && chance(rng, 0.25)
        {
            let year = range(rng, 2021, 2025) as i32;
            let d = NaiveDate::from_ymd_opt(year, 9, 15).expect("date");
            if d > e.established && d <= end {
                e.sme = Some((
                    if chance(rng, 0.1) {
                        "little_giant"
                    } else {
                        "province"
                    },
                    d,
                ));
            }
        }
        let threshold = e.above_scale_threshold();
        if let Some(k) = e.revenue.iter().position(|&r| r >= threshold) {
            e.above_scale_first = Some(
                if k == 0 && e.established.year() < 2020 && chance(rng, 0.7) {
                    range(rng, i64::from(e.established.year().max(2011)), 2024) as i32
                } else {
                    YEARS[k]
                },
            );
        }
        if chance(rng, 0.04) {
            let listed = date_between(
                rng,
                NaiveDate::from_ymd_opt(2023, 1, 1)
                    .expect("date")
                    .max(e.established),
                end,
            );
            let removed = chance(rng, 0.4).then(|| date_between(rng, listed, end));
            let reason = *pick(
                rng,
                &[
                    "未按规定报送年度报告",
                    "通过登记的住所或者经营场所无法联系",
                    "未按规定公示即时信息",
                    "公示信息隐瞒真实情况、弄虚作假",
                ],
            );
            e.abnormal = Some((listed, removed, reason));
        }
        for k in 0..2 {
            let mut grade = weighted(rng, &[("A", 15), ("B", 50), ("M", 25), ("C", 7), ("D", 3)]);
            if e.abnormal.is_some() && chance(rng, 0.6) {
                grade = "D";
            }
            e.credit[k] = grade;
        }
    }
}

fn projects(w: &mut World, rng: &mut Rng) {
    let end = w.cfg.end;
    let builders: Vec<u32> = (0..w.enterprises.len() as u32)
        .filter(|&i| {
            matches!(
                w.enterprises[i as usize].industry_code(),
                "E47" | "E50" | "K70"
            ) && w.enterprises[i as usize].cancelled.is_none()
        })
        .collect();
    if builders.is_empty() {
        return;
    }
    let n = (w.enterprises.len() / 100).max(6);
    // Each stage with the days it takes after the one before (most within the district's
    // limits, some not: the timeline's overdue and stuck stages).
    let stages: [(&str, &str, (i64, i64)); 6] = [
        ("approval", "区发展和改革局", (0, 0)),
        ("bidding", "区公共资源交易中心", (30, 210)),
        ("land", "区自然资源和规划局", (30, 210)),
        ("construction_permit", "区住房和城市更新局", (20, 140)),
        ("quality_supervision", "区建设工程质量安全监督站", (5, 70)),
        ("completion", "区住房和城市更新局", (200, 800)),
    ];
    for i in 0..n {
        let mut d = date_between(
            rng,
            NaiveDate::from_ymd_opt(2022, 1, 1).expect("date"),
            end - Duration::days(30),
        );
        let mut events = Vec::new();
        for (stage, dept, (lo, hi)) in stages {
            d += Duration::days(range(rng, lo, hi));
            if d > end {
                break;
            }
            events.push((stage, d, dept));
        }
        let kind = pick(
            rng,
            &[
                "综合体",
                "安置房",
                "学校",
                "医院门诊楼",
                "产业园",
                "道路改造工程",
                "地铁站配套",
            ],
        );
        w.projects.push(Project {
            code: format!(
                "{}-{}-04-01-{:06}",
                events[0].1.format("%y%m"),
                w.district.code,
                i + 1
            ),
            name: format!(
                "{}{}{}",
                w.district.name,
                pick(rng, names::COMMUNITY_STEMS),
                kind
            ),
            builder: *pick(rng, &builders),
            investment_fen: range(rng, 5_000, 500_000) * 1_000_000,
            // Planted: 15 % of the projects past their land stage never had it reported.
            unreported: (events.len() >= 4 && crate::rng::planted(i as u64, 0x1A4D, 150))
                .then(|| events[2].0),
            events,
        });
    }
}
