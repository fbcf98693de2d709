//! 公安 household registration, 卫健 birth and death certificates, 民政 cremation and
//! marriage registration.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

use crate::emit::{Rec, V};
use crate::feed::{Feed, at};
use crate::names;
use crate::rng::{chance, office_time, pick, range};
use crate::world::{Person, World};

fn gender(p: &Person) -> &'static str {
    if p.male { "1" } else { "2" }
}

struct PsState<'a> {
    status: &'static str,
    phone: Option<&'a str>,
    moved_out: Option<(NaiveDate, u32)>,
    deceased_on: Option<NaiveDate>,
}

fn ps_record(w: &World, p: &Person, s: &PsState<'_>, updated: NaiveDateTime) -> Rec {
    let hh = &w.households[p.household as usize];
    let street = &w.streets[hh.street as usize];
    Rec::with_capacity(18)
        .set("resident_id", p.id.as_str())
        .set("name", p.name.as_str())
        .set("gender", gender(p))
        .set("ethnicity", p.ethnicity)
        .set("birth_date", p.birth)
        .set("household_id", hh.id.as_str())
        .set("relation_to_head", p.relation)
        .set("street", street.name)
        .set(
            "community",
            street.communities[hh.community as usize].as_str(),
        )
        .set("address", hh.address.as_str())
        .set("phone", s.phone)
        .set("status", s.status)
        .set("registered_on", p.registered_on)
        .set("moved_in_from", p.moved_in_from.map(|a| a.to_string()))
        .set("moved_out_on", s.moved_out.map(|(d, _)| d))
        .set("moved_out_to", s.moved_out.map(|(_, a)| a.to_string()))
        .set("deceased_on", s.deceased_on)
        .set("updated_at", V::T(updated))
}

pub(super) fn household_registration(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    for (i, p) in w.people.iter().enumerate() {
        if p.registered_on > end {
            continue; // born late in the window: the police have not registered the birth yet
        }
        let mut state = PsState {
            status: "active",
            phone: p.phone.as_deref(),
            moved_out: None,
            deceased_on: None,
        };
        let first = if p.registered_on < start {
            at(start, i as u64)
        } else {
            office_time(&mut f.rng, p.registered_on)
        };
        let rec = ps_record(w, p, &state, first);
        f.upsert(first, rec.clone());
        if chance(&mut f.rng, 0.01) {
            // The source system re-sends an unchanged record (a no-op update).
            let t = first + Duration::days(range(&mut f.rng, 1, 30));
            if t.date() <= end {
                f.upsert(t, rec);
            }
        }
        let phone_buf;
        if p.phone.is_some() && chance(&mut f.rng, 0.03) {
            let d = crate::rng::date_between(&mut f.rng, first.date(), end);
            if p.resident_on(d) {
                phone_buf = format!(
                    "1{}{:09}",
                    range(&mut f.rng, 3, 9),
                    range(&mut f.rng, 0, 999_999_999)
                );
                state.phone = Some(&phone_buf);
                let t = office_time(&mut f.rng, d).max(first + Duration::minutes(1));
                f.upsert(t, ps_record(w, p, &state, t));
            }
        }
        if let Some((d, to)) = p.moved_out
            && d <= end
            && p.death.is_none_or(|x| x > d)
        {
            state.status = "moved_out";
            state.moved_out = Some((d, to));
            let t = office_time(&mut f.rng, d).max(first + Duration::minutes(2));
            f.upsert(t, ps_record(w, p, &state, t));
            continue;
        }
        if let (Some(death), Some(known)) = (p.death, p.death_known_on())
            && known <= end
        {
            state.status = "deceased";
            state.deceased_on = Some(death);
            let t = office_time(&mut f.rng, known).max(first + Duration::minutes(3));
            f.upsert(t, ps_record(w, p, &state, t));
        }
    }
}

fn birth_cert_no(w: &World, i: usize) -> String {
    format!("Q{}{:08}", w.district.code / 10_000, i)
}

pub(super) fn birth_certificate(w: &World, f: &mut Feed<'_>) {
    let end = w.cfg.end;
    for (i, p) in w.people.iter().enumerate() {
        let (Some(mo), fa) = (p.mother, p.father) else {
            continue;
        };
        let issued = p.birth + Duration::days(range(&mut f.rng, 0, 3));
        if issued > end {
            continue;
        }
        let mother = &w.people[mo as usize];
        let father = fa.map(|x| &w.people[x as usize]);
        let hospital = *pick(&mut f.rng, names::HOSPITALS);
        let rec = |child_id: Option<&str>| {
            Rec::with_capacity(11)
                .set("certificate_no", birth_cert_no(w, i))
                .set("child_name", p.name.as_str())
                .set("gender", gender(p))
                .set("birth_date", p.birth)
                .set("birth_place", hospital)
                .set("mother_id", mother.id.as_str())
                .set("mother_name", mother.name.as_str())
                .set("father_id", father.map(|x| x.id.as_str()))
                .set("father_name", father.map(|x| x.name.as_str()))
                .set("child_id", child_id)
                .set("issued_on", issued)
        };
        let t = office_time(&mut f.rng, issued);
        f.upsert(t, rec(None));
        if p.registered_on <= end {
            // The child's ID is filled in once the police register the birth.
            let t2 = office_time(&mut f.rng, p.registered_on).max(t + Duration::minutes(1));
            f.upsert(t2, rec(Some(&p.id)));
        }
    }
}

pub(super) fn death_certificate(w: &World, f: &mut Feed<'_>) {
    let end = w.cfg.end;
    let causes = [
        "I00-I99", "C00-D48", "J00-J99", "E00-E90", "V01-Y98", "G00-G99", "K00-K93",
    ];
    let mut seq = 0u32;
    let mut deaths = 0usize;
    for p in &w.people {
        let (Some(death), Some(issued)) = (p.death, p.death_certified_on()) else {
            continue;
        };
        if issued > end || !p.death_recorded_here() {
            continue;
        }
        seq += 1;
        deaths += 1;
        let rec = Rec::with_capacity(7)
            .set(
                "certificate_no",
                format!("S{}{}{:06}", w.district.code, death.year(), seq),
            )
            .set("resident_id", p.id.as_str())
            .set("name", p.name.as_str())
            .set("date_of_death", death)
            .set("cause_category", *pick(&mut f.rng, &causes))
            .set(
                "place",
                *pick(&mut f.rng, &["hospital", "hospital", "home", "other"]),
            )
            .set("issued_on", issued);
        let t_ = office_time(&mut f.rng, issued);
        f.upsert(t_, rec);
    }
    // Certificates entered for the wrong person and withdrawn days later (tombstones):
    // these residents are alive in the ground truth.
    let withdrawn = deaths / 200 + 1;
    for k in 0..withdrawn {
        let i = (k * 7_919 + 13) % w.people.len().max(1);
        let p = &w.people[i];
        let d = w.cfg.start + Duration::days(((k * 37) % 300) as i64);
        if !p.resident_on(end) || d > end - Duration::days(10) {
            continue;
        }
        seq += 1;
        let rec = Rec::with_capacity(7)
            .set(
                "certificate_no",
                format!("S{}{}{:06}", w.district.code, d.year(), seq),
            )
            .set("resident_id", p.id.as_str())
            .set("name", p.name.as_str())
            .set("date_of_death", d)
            .set("cause_category", V::Null)
            .set("place", "hospital")
            .set("issued_on", d);
        let t = office_time(&mut f.rng, d);
        f.upsert(t, rec.clone());
        let t_ = range(&mut f.rng, 1, 7);
        f.delete(t + Duration::days(t_), &rec);
    }
}

pub(super) fn cremation(w: &World, f: &mut Feed<'_>) {
    let end = w.cfg.end;
    let mut seq = 0u32;
    for p in &w.people {
        let Some(death) = p.death else { continue };
        if p.moved_out.is_some_and(|(d, _)| d < death) || !chance(&mut f.rng, 0.92) {
            continue;
        }
        let cremated = death + Duration::days(range(&mut f.rng, 2, 7));
        if cremated > end {
            continue;
        }
        seq += 1;
        let rec = Rec::with_capacity(6)
            .set("cremation_no", format!("HH{}{:07}", death.year(), seq))
            .set("resident_id", p.id.as_str())
            .set("name", p.name.as_str())
            .set("date_of_death", death)
            .set("cremated_on", cremated)
            .set("funeral_home", *pick(&mut f.rng, names::FUNERAL_HOMES));
        let t_ = office_time(&mut f.rng, cremated);
        f.upsert(t_, rec);
    }
}

pub(super) fn marriage_registration(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    let office = format!("{}民政局婚姻登记处", w.district.name);
    for (i, m) in w.marriages.iter().enumerate() {
        if m.date > end {
            continue;
        }
        let (h, wf) = (&w.people[m.husband as usize], &w.people[m.wife as usize]);
        let prefix = if m.divorce { "L" } else { "J" };
        let rec = Rec::with_capacity(8)
            .set(
                "registration_no",
                format!("{prefix}{}-{}-{:07}", w.district.code, m.date.year(), i + 1),
            )
            .set(
                "registration_type",
                if m.divorce { "divorce" } else { "marriage" },
            )
            .set("husband_id", h.id.as_str())
            .set("husband_name", h.name.as_str())
            .set("wife_id", wf.id.as_str())
            .set("wife_name", wf.name.as_str())
            .set("registered_on", m.date)
            .set("office", office.as_str());
        let t = if m.date < start {
            at(start, i as u64)
        } else {
            office_time(&mut f.rng, m.date)
        };
        f.upsert(t, rec);
    }
}
