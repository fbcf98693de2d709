//! The one simulated population: residents, households, marriages, disabilities, benefits.
//!
//! Data flow: [`Config`] → households drawn by type (single, couple, family, three
//! generations, single parent) with valid resident IDs → life events in the window
//! (births, deaths, moves in and out, marriages, divorces) → benefits (pension, subsistence
//! allowance, disability) → enterprises and property ([`super::economy`]; the order is
//! [`super::generate`]'s) → projections.
//! Everything is drawn from seeded streams, so one seed gives one district.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use gdx_catalog::{BankCard, ResidentId};

use super::Config;
use super::entities::{Enterprise, Project, Property};
use super::names::{self, District};
use super::rng::{self, Rng, add_years, age_on, chance, date_between, pick, range, weighted};

#[derive(Debug, Clone)]
pub(crate) struct Disability {
    pub(crate) category: u8,
    pub(crate) grade: u8,
    pub(crate) issued: NaiveDate,
}

#[derive(Debug, Clone)]
pub(crate) struct Pension {
    pub(crate) enterprise: bool,
    pub(crate) monthly_fen: i64,
    pub(crate) start: NaiveDate,
}

#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) male: bool,
    pub(crate) birth: NaiveDate,
    pub(crate) ethnicity: &'static str,
    pub(crate) household: u32,
    pub(crate) relation: &'static str,
    pub(crate) phone: Option<String>,
    pub(crate) registered_on: NaiveDate,
    pub(crate) moved_in_from: Option<u32>,
    pub(crate) mother: Option<u32>,
    pub(crate) father: Option<u32>,
    pub(crate) death: Option<NaiveDate>,
    /// Days between a death and its registration by the police (公安).
    pub(crate) ps_death_lag: i64,
    pub(crate) moved_out: Option<(NaiveDate, u32)>,
    pub(crate) disability: Option<Disability>,
    pub(crate) employer: Option<u32>,
    pub(crate) employed_since: NaiveDate,
    pub(crate) pension: Option<Pension>,
}

impl Person {
    pub(crate) fn age_on(&self, d: NaiveDate) -> i32 {
        age_on(self.birth, d)
    }

    /// Alive and registered in the district on `d`.
    pub(crate) fn resident_on(&self, d: NaiveDate) -> bool {
        self.birth <= d
            && self.death.is_none_or(|x| x > d)
            && self.moved_out.is_none_or(|(x, _)| x > d)
    }

    /// The day the police register the death, when there is one.
    pub(crate) fn death_known_on(&self) -> Option<NaiveDate> {
        self.death.map(|d| d + Duration::days(self.ps_death_lag))
    }

    /// The day the hospital (卫健) issues the death certificate: 0–2 days after the death,
    /// fixed by the person's ID so the ground truth knows it.
    pub(crate) fn death_certified_on(&self) -> Option<NaiveDate> {
        let h = self.id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.death.map(|d| d + Duration::days((h % 3) as i64))
    }

    /// Whether the death reaches the hospital's or the police's records (someone who moved
    /// away before dying is recorded elsewhere).
    pub(crate) fn death_recorded_here(&self) -> bool {
        self.death
            .is_some_and(|d| self.moved_out.is_none_or(|(m, _)| m >= d))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Household {
    pub(crate) id: String,
    pub(crate) street: u16,
    pub(crate) community: u16,
    pub(crate) address: String,
    pub(crate) members: Vec<u32>,
    pub(crate) subsistence: Option<(NaiveDate, Option<NaiveDate>)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Marriage {
    pub(crate) husband: u32,
    pub(crate) wife: u32,
    pub(crate) date: NaiveDate,
    pub(crate) divorce: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Street {
    pub(crate) name: &'static str,
    pub(crate) communities: Vec<String>,
}

/// The whole simulated district.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) cfg: Config,
    pub(crate) district: &'static District,
    pub(crate) streets: Vec<Street>,
    pub(crate) people: Vec<Person>,
    pub(crate) households: Vec<Household>,
    pub(crate) marriages: Vec<Marriage>,
    pub(crate) enterprises: Vec<Enterprise>,
    pub(crate) properties: Vec<Property>,
    pub(crate) projects: Vec<Project>,
}

/// Issues unique resident IDs: one sequence counter per (area, birth date, gender).
#[derive(Default)]
pub(super) struct IdIssuer {
    next: HashMap<(u32, NaiveDate, bool), u16>,
}

impl IdIssuer {
    pub(super) fn issue(&mut self, area: u32, birth: NaiveDate, male: bool) -> String {
        let n = self.next.entry((area, birth, male)).or_insert(0);
        // Odd sequence numbers for men (001, 003, …), even for women (002, 004, …);
        // 499 of each per area and day.
        let seq = (*n % 499) * 2 + if male { 1 } else { 2 };
        *n += 1;
        ResidentId::compose(area, birth, seq).as_str().to_owned()
    }
}

/// Annual probability of death by age.
pub(super) fn mortality(age: i32) -> f64 {
    match age {
        ..=0 => 0.004,
        1..=39 => 0.0006,
        40..=59 => 0.003,
        60..=69 => 0.009,
        70..=79 => 0.025,
        80..=89 => 0.07,
        90..=99 => 0.18,
        _ => 0.35,
    }
}

pub(crate) fn bank_card_for(person: u32) -> String {
    // A deterministic 19-digit debit card on the social security bank's BIN.
    let body = format!(
        "621700{:012}",
        (u64::from(person) * 7_919 + 104_729) % 1_000_000_000_000
    );
    BankCard::compose(&body)
        .expect("digits")
        .as_str()
        .to_owned()
}

pub(super) struct Builder<'a> {
    pub(super) cfg: &'a Config,
    pub(super) district: &'static District,
    pub(super) rng: Rng,
    pub(super) ids: IdIssuer,
    pub(super) people: Vec<Person>,
    pub(super) households: Vec<Household>,
    pub(super) streets: Vec<Street>,
}

impl Builder<'_> {
    pub(super) fn name(&mut self, surname: Option<&str>, male: bool) -> String {
        let s = match surname {
            Some(s) => s.to_owned(),
            None => (weighted(&mut self.rng, names::SURNAMES)).to_owned(),
        };
        let g = if male {
            pick(&mut self.rng, names::GIVEN_MALE)
        } else {
            pick(&mut self.rng, names::GIVEN_FEMALE)
        };
        format!("{s}{g}")
    }

    fn phone(&mut self) -> String {
        let second = range(&mut self.rng, 3, 9);
        format!("1{second}{:09}", range(&mut self.rng, 0, 999_999_999))
    }

    fn birth_for_age(&mut self, age: i32) -> NaiveDate {
        let start = self.cfg.start;
        let latest = add_years(start, -age) - Duration::days(1);
        let earliest = add_years(start, -age - 1);
        date_between(&mut self.rng, earliest, latest)
    }

    /// Adds a person living in household `hh` aged `age` at the window start.
    fn person(
        &mut self,
        hh: u32,
        age: i32,
        male: bool,
        relation: &'static str,
        surname: Option<&str>,
    ) -> u32 {
        let birth = self.birth_for_age(age);
        let born_here = chance(&mut self.rng, if age < 30 { 0.8 } else { 0.55 });
        let area = if born_here {
            self.district.code
        } else {
            *pick(&mut self.rng, names::OTHER_AREAS)
        };
        let id = self.ids.issue(area, birth, male);
        let name = self.name(surname, male);
        let (registered_on, moved_in_from) = if born_here {
            (birth + Duration::days(range(&mut self.rng, 7, 60)), None)
        } else {
            let from = add_years(birth, 18.min(age));
            (
                date_between(&mut self.rng, from, self.cfg.start - Duration::days(1)).max(birth),
                Some(area),
            )
        };
        let phone = (age >= 16 && chance(&mut self.rng, 0.95)).then(|| self.phone());
        let ethnicity = weighted(&mut self.rng, names::ETHNICITIES);
        let idx = self.people.len() as u32;
        self.people.push(Person {
            id,
            name,
            male,
            birth,
            ethnicity,
            household: hh,
            relation,
            phone,
            registered_on: registered_on.min(self.cfg.start - Duration::days(1)),
            moved_in_from,
            mother: None,
            father: None,
            death: None,
            ps_death_lag: 0,
            moved_out: None,
            disability: None,
            employer: None,
            employed_since: self.cfg.start,
            pension: None,
        });
        self.households[hh as usize].members.push(idx);
        idx
    }

    fn household(&mut self) -> u32 {
        let idx = self.households.len() as u32;
        let street = self.rng_index(self.streets.len()) as u16;
        let community = self.rng_index(self.streets[street as usize].communities.len()) as u16;
        let road = pick(&mut self.rng, names::ROADS);
        let s = &self.streets[street as usize];
        let address = format!(
            "{}{}{}{}{}{}{}号{}栋{}单元{}室",
            self.district.province,
            self.district.city,
            self.district.name,
            s.name,
            s.communities[community as usize],
            road,
            range(&mut self.rng, 1, 399),
            range(&mut self.rng, 1, 30),
            range(&mut self.rng, 1, 6),
            range(&mut self.rng, 1, 33) * 100 + range(&mut self.rng, 1, 6)
        );
        self.households.push(Household {
            id: format!("{}{:09}", self.district.code, idx + 1),
            street,
            community,
            address,
            members: Vec::new(),
            subsistence: None,
        });
        idx
    }

    fn rng_index(&mut self, n: usize) -> usize {
        range(&mut self.rng, 0, n as i64 - 1) as usize
    }

    fn spouse_relation(male: bool) -> &'static str {
        if male { "11" } else { "12" }
    }

    pub(super) fn child_relation(male: bool) -> &'static str {
        if male { "20" } else { "30" }
    }

    /// One household of a random type; returns how many people it added.
    pub(super) fn random_household(&mut self) -> usize {
        let before = self.people.len();
        let hh = self.household();
        let kind = range(&mut self.rng, 0, 99);
        match kind {
            0..=11 => {
                // Single person; many are elderly living alone.
                let age = if chance(&mut self.rng, 0.45) {
                    range(&mut self.rng, 70, 103)
                } else {
                    range(&mut self.rng, 22, 69)
                } as i32;
                let male = chance(&mut self.rng, 0.45);
                self.person(hh, age, male, "02", None);
            }
            12..=33 => {
                let age = range(&mut self.rng, 24, 96) as i32;
                let male_head = chance(&mut self.rng, 0.8);
                self.person(hh, age, male_head, "02", None);
                let other = (age + range(&mut self.rng, -4, 4) as i32).clamp(22, 104);
                self.person(
                    hh,
                    other,
                    !male_head,
                    Self::spouse_relation(!male_head),
                    None,
                );
            }
            34..=93 => {
                let father_age = range(&mut self.rng, 26, 58) as i32;
                let mother_age = (father_age + range(&mut self.rng, -5, 2) as i32).max(24);
                let f = self.person(hh, father_age, true, "02", None);
                let surname = surname_of(&self.people[f as usize].name);
                self.person(hh, mother_age, false, "12", None);
                let kids = if chance(&mut self.rng, 0.55) { 1 } else { 2 };
                for _ in 0..kids {
                    let max_age = (mother_age - 22).clamp(0, 25);
                    let age = range(&mut self.rng, 0, i64::from(max_age)) as i32;
                    let male = chance(&mut self.rng, 0.52);
                    self.person(hh, age, male, Self::child_relation(male), Some(&surname));
                }
                if kind >= 79 {
                    // Three generations: one or two of the father's parents.
                    let gp = (father_age + range(&mut self.rng, 22, 35) as i32).min(104);
                    self.person(hh, gp, true, "51", Some(&surname));
                    if chance(&mut self.rng, 0.6) {
                        let gm = (gp + range(&mut self.rng, -5, 2) as i32).clamp(gp - 10, 104);
                        self.person(hh, gm, false, "52", None);
                    }
                }
            }
            _ => {
                let age = range(&mut self.rng, 28, 55) as i32;
                let male = chance(&mut self.rng, 0.25);
                let p = self.person(hh, age, male, "02", None);
                let surname = surname_of(&self.people[p as usize].name);
                let kid_male = chance(&mut self.rng, 0.5);
                let kid_age = range(&mut self.rng, 0, i64::from((age - 22).min(20))) as i32;
                self.person(
                    hh,
                    kid_age,
                    kid_male,
                    Self::child_relation(kid_male),
                    Some(&surname),
                );
            }
        }
        self.people.len() - before
    }
}

/// The surname of a generated name (compound surnames are two characters).
pub(crate) fn surname_of(name: &str) -> String {
    let two: String = name.chars().take(2).collect();
    if names::SURNAMES
        .iter()
        .any(|(s, _)| s.chars().count() == 2 && *s == two)
    {
        two
    } else {
        name.chars().take(1).collect()
    }
}

impl<'a> Builder<'a> {
    /// A builder for `cfg`'s district: its streets and communities, no people yet.
    pub(super) fn new(cfg: &'a Config, district: &'static District) -> Self {
        let streets = district
            .streets
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let n = 6 + (i % 5);
                let communities = (0..n)
                    .map(|j| {
                        format!(
                            "{}社区",
                            names::COMMUNITY_STEMS[(i * 7 + j * 3) % names::COMMUNITY_STEMS.len()]
                        )
                    })
                    .collect();
                Street { name, communities }
            })
            .collect();
        Builder {
            cfg,
            district,
            rng: rng::stream(cfg.seed, "population"),
            ids: IdIssuer::default(),
            people: Vec::with_capacity(cfg.people + cfg.people / 20),
            households: Vec::with_capacity(cfg.people / 2),
            streets,
        }
    }

    /// Households until the district has its residents.
    pub(super) fn populate(&mut self) {
        while self.people.len() < self.cfg.people {
            self.random_household();
        }
    }
}

impl World {
    pub(crate) fn window_years(&self) -> f64 {
        (self.cfg.end - self.cfg.start).num_days() as f64 / 365.25
    }
}
