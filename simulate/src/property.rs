//! Property of the simulated district: certificates for households' homes, housing contracts
//! for newer homes, and second-hand transfers inside the window.
//!
//! Data flow: households and their adults ([`super::world`]) → one or two certificates per
//! owning household (鄂(2024)武汉市不动产权第…号, 28-character unit numbers), mortgages, a
//! housing contract with a developer (an enterprise in real estate) for homes built since
//! 2016 → transfers: the old certificate cancelled, a new one for the buyer.

use chrono::{Datelike, Duration, NaiveDate};

use super::names;
use super::rng::{Rng, add_years, chance, date_between, pick, range, weighted};
use super::world::World;

use super::entities::{Contract, Property};

pub(super) fn generate(w: &mut World, rng: &mut Rng) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    let developers: Vec<u32> = (0..w.enterprises.len() as u32)
        .filter(|&i| w.enterprises[i as usize].industry_code() == "K70")
        .collect();
    let mut cert_seq: std::collections::HashMap<i32, u32> = std::collections::HashMap::new();
    let mut next_cert = |year: i32, rng: &mut Rng| -> u32 {
        let n = cert_seq
            .entry(year)
            .or_insert_with(|| range(rng, 1000, 5000) as u32);
        *n += range(rng, 1, 7) as u32;
        *n
    };
    let prov = w.district.province_short;
    let city = w.district.city;
    let mut unit_seq = 0u32;
    for h in 0..w.households.len() {
        let hh = &w.households[h];
        let adults: Vec<u32> = hh
            .members
            .iter()
            .copied()
            .filter(|&m| w.people[m as usize].age_on(start) >= 22)
            .collect();
        if adults.is_empty() {
            continue;
        }
        let count = if chance(rng, 0.38) {
            1
        } else if chance(rng, 0.1) {
            2
        } else {
            0
        };
        for k in 0..count {
            let owner = if k == 0 {
                adults[0]
            } else {
                *pick(rng, &adults)
            };
            let op = &w.people[owner as usize];
            let earliest =
                add_years(op.birth, 22).max(NaiveDate::from_ymd_opt(1998, 1, 1).expect("date"));
            let in_window = chance(rng, 0.05);
            let registered = if in_window {
                date_between(rng, start, end)
            } else {
                date_between(
                    rng,
                    earliest.min(start - Duration::days(1)),
                    start - Duration::days(1),
                )
            };
            if !op.resident_on(registered) && registered >= start {
                continue;
            }
            unit_seq += 1;
            let year = registered.year();
            let seq = next_cert(year, rng);
            let street = &w.streets[hh.street as usize];
            let address = if k == 0 {
                hh.address.clone()
            } else {
                format!(
                    "{}{}{}{}{}{}号{}栋{}室",
                    w.district.city,
                    w.district.name,
                    street.name,
                    street.communities[0],
                    pick(rng, names::ROADS),
                    range(rng, 1, 399),
                    range(rng, 1, 30),
                    range(rng, 1, 33) * 100 + range(rng, 1, 6)
                )
            };
            let area_m2 = (range(rng, 4500, 16000) as f64) / 100.0;
            let new_build = year >= 2016 && chance(rng, 0.6);
            let contract = new_build.then(|| {
                let signed = registered - Duration::days(range(rng, 90, 540));
                let developer = (!developers.is_empty()).then(|| *pick(rng, &developers));
                Contract {
                    no: format!("WS{}{:08}", signed.year(), unit_seq),
                    signed,
                    filed: Some(signed + Duration::days(range(rng, 3, 30))),
                    price_fen: (area_m2 * range(rng, 12_000, 32_000) as f64 * 100.0) as i64,
                    developer,
                    project: format!(
                        "{}{}",
                        pick(rng, names::COMMUNITY_STEMS),
                        pick(rng, &["花园", "府", "公馆", "华庭", "壹号院", "江景苑"])
                    ),
                }
            });
            let mortgaged = chance(rng, if year >= 2012 { 0.45 } else { 0.1 });
            let mortgage_released = (mortgaged && chance(rng, 0.05))
                .then(|| date_between(rng, start.max(registered), end));
            w.properties.push(Property {
                cert_no: format!("{prov}({year}){city}不动产权第{seq:07}号"),
                unit_no: format!(
                    "{}{:03}{:03}GB{:05}F{:04}{:04}",
                    w.district.code,
                    hh.street + 1,
                    (unit_seq / 1000) % 1000,
                    unit_seq % 100_000,
                    range(rng, 1, 30),
                    range(rng, 101, 3306)
                ),
                owner,
                address,
                area_m2,
                usage: weighted(rng, &[("住宅", 92), ("商业", 5), ("办公", 3)]),
                registered,
                mortgaged,
                mortgage_released,
                cancelled: None,
                contract,
            });
        }
    }
    // Second-hand transfers inside the window: the old certificate is cancelled and the buyer
    // (an adult of another household) gets a new one.
    let years = w.window_years();
    let existing = w.properties.len();
    let adults: Vec<u32> = (0..w.people.len() as u32)
        .filter(|&i| (25..=75).contains(&w.people[i as usize].age_on(start)))
        .collect();
    for i in 0..existing {
        if w.properties[i].registered >= start || !chance(rng, 0.015 * years) || adults.is_empty() {
            continue;
        }
        let d = date_between(rng, start, end);
        let buyer = *pick(rng, &adults);
        if !w.people[buyer as usize].resident_on(d) || buyer == w.properties[i].owner {
            continue;
        }
        w.properties[i].cancelled = Some(d);
        let seq = next_cert(d.year(), rng);
        let old = w.properties[i].clone();
        w.properties.push(Property {
            cert_no: format!("{prov}({}){city}不动产权第{seq:07}号", d.year()),
            owner: buyer,
            registered: d,
            mortgaged: chance(rng, 0.4),
            mortgage_released: None,
            cancelled: None,
            contract: None,
            ..old
        });
    }
}
