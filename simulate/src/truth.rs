//! The ground truth written beside the feeds, in `<out>/_truth/`.
//!
//! Data flow: the [`World`] as it really is at the end of the window → `residents.jsonl`
//! (one line per person: identity, status with dates, household, benefits, property),
//! `enterprises.jsonl` (status, size, finances, qualifications, listings), `elderly_overpayments.jsonl`
//! (allowance paid for months after a death the police learnt of late), `entitlements.jsonl`
//! (who is entitled to a benefit but not receiving it, and the reverse, see
//! [`crate::entitlements`]), `projects.jsonl` (every major project's stages by the end, with
//! the ones never reported), `certificates.jsonl`
//! (every property certificate registered by the end: its attributes, active or cancelled,
//! and the housing contract it was sold under), `noise.jsonl`
//! (every record the noise step altered: topic, line, kind, field) and `summary.json`.

use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;

use super::emit::Noised;
use super::entities::YEARS;
use super::feeds::welfare::{elderly_paid, payment_months, payment_status};
use super::world::World;
use super::{Error, Result, Summary};

pub(crate) const DIR: &str = "_truth";

#[derive(Serialize)]
struct ResidentTruth<'a> {
    resident_id: &'a str,
    name: &'a str,
    gender: &'static str,
    birth_date: NaiveDate,
    age: i32,
    household_id: &'a str,
    relation_to_head: &'static str,
    street: &'static str,
    /// active | moved_out | deceased, as of the end of the window.
    status: &'static str,
    registered_on: NaiveDate,
    /// Whether the police had registered this person by the end (late birth registrations).
    ps_registered: bool,
    deceased_on: Option<NaiveDate>,
    /// Whether the death had reached the police by the end (late reports).
    death_reported_to_ps: bool,
    moved_out_on: Option<NaiveDate>,
    living_alone: bool,
    disability_grade: Option<u8>,
    subsistence_allowance: bool,
    pension: bool,
    employer_uscc: Option<&'a str>,
    properties: usize,
    spouse_id: Option<&'a str>,
}

#[derive(Serialize)]
struct EnterpriseTruth<'a> {
    uscc: &'a str,
    name: &'a str,
    status: &'static str,
    established_on: NaiveDate,
    cancelled_on: Option<NaiveDate>,
    industry_code: &'static str,
    sector: &'static str,
    legal_rep_id: &'a str,
    insured_headcount: u32,
    size_class: &'static str,
    revenue: [(i32, i64); 2],
    tax_paid: [(i32, i64); 2],
    credit: [(i32, &'static str); 2],
    high_tech_recognised_on: Option<NaiveDate>,
    specialised_sme: Option<(&'static str, NaiveDate)>,
    above_scale_first_year: Option<i32>,
    abnormal_listed_on: Option<NaiveDate>,
    abnormal_removed_on: Option<NaiveDate>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_lines<T: Serialize>(path: &Path, rows: impl Iterator<Item = T>) -> Result<()> {
    let io = io_err(path);
    let mut w =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(&io)?);
    for row in rows {
        serde_json::to_writer(&mut w, &row).map_err(|e| io(std::io::Error::other(e)))?;
        w.write_all(b"\n").map_err(&io)?;
    }
    w.flush().map_err(&io)
}

pub(crate) fn write_entities(w: &World, out: &Path) -> Result<()> {
    let dir = out.join(DIR);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let end = w.cfg.end;
    let mut properties = vec![0usize; w.people.len()];
    for p in &w.properties {
        if p.registered <= end && p.cancelled.is_none_or(|c| c > end) {
            properties[p.owner as usize] += 1;
        }
    }
    let mut spouse: Vec<Option<u32>> = vec![None; w.people.len()];
    let mut marriages: Vec<_> = w.marriages.iter().filter(|m| m.date <= end).collect();
    marriages.sort_by_key(|m| m.date);
    for m in marriages {
        let (h, wf) = (m.husband as usize, m.wife as usize);
        if m.divorce {
            spouse[h] = None;
            spouse[wf] = None;
        } else {
            spouse[h] = Some(m.wife);
            spouse[wf] = Some(m.husband);
        }
    }
    let residents = w.people.iter().enumerate().map(|(i, p)| {
        let hh = &w.households[p.household as usize];
        let status = if p.death.is_some_and(|d| d <= end)
            && p.moved_out.is_none_or(|(m, _)| m > p.death.unwrap_or(end))
        {
            "deceased"
        } else if p.moved_out.is_some_and(|(d, _)| d <= end) {
            "moved_out"
        } else {
            "active"
        };
        let alone = status == "active"
            && hh
                .members
                .iter()
                .filter(|&&m| w.people[m as usize].resident_on(end))
                .count()
                == 1;
        ResidentTruth {
            resident_id: &p.id,
            name: &p.name,
            gender: if p.male { "1" } else { "2" },
            birth_date: p.birth,
            age: p.age_on(end),
            household_id: &hh.id,
            relation_to_head: p.relation,
            street: w.streets[hh.street as usize].name,
            status,
            registered_on: p.registered_on,
            ps_registered: p.registered_on <= end,
            deceased_on: p.death.filter(|d| *d <= end && status == "deceased"),
            death_reported_to_ps: status == "deceased"
                && p.death_known_on().is_some_and(|k| k <= end),
            moved_out_on: p
                .moved_out
                .map(|(d, _)| d)
                .filter(|d| *d <= end && status == "moved_out"),
            living_alone: alone,
            disability_grade: p
                .disability
                .as_ref()
                .filter(|d| d.issued <= end)
                .map(|d| d.grade),
            subsistence_allowance: hh
                .subsistence
                .is_some_and(|(b, s)| b <= end && s.is_none_or(|s| s > end)),
            pension: p.pension.as_ref().is_some_and(|x| x.start <= end),
            employer_uscc: p.employer.map(|e| w.enterprises[e as usize].uscc.as_str()),
            properties: properties[i],
            spouse_id: spouse[i].map(|s| w.people[s as usize].id.as_str()),
        }
    });
    write_lines(&dir.join("residents.jsonl"), residents)?;

    let enterprises = w.enterprises.iter().map(|e| EnterpriseTruth {
        uscc: &e.uscc,
        name: &e.name,
        status: if e.cancelled.is_some_and(|c| c <= end) {
            "cancelled"
        } else {
            "active"
        },
        established_on: e.established,
        cancelled_on: e.cancelled.filter(|c| *c <= end),
        industry_code: e.industry_code(),
        sector: e.sector(),
        legal_rep_id: &w.people[e.legal_rep as usize].id,
        insured_headcount: e.headcount(),
        size_class: e.size_class(1),
        revenue: [(YEARS[0], e.revenue[0]), (YEARS[1], e.revenue[1])],
        tax_paid: [(YEARS[0], e.tax[0]), (YEARS[1], e.tax[1])],
        credit: [(YEARS[0], e.credit[0]), (YEARS[1], e.credit[1])],
        high_tech_recognised_on: e.high_tech,
        specialised_sme: e.sme,
        above_scale_first_year: e.above_scale_first,
        abnormal_listed_on: e.abnormal.map(|a| a.0),
        abnormal_removed_on: e.abnormal.and_then(|a| a.1),
    });
    write_lines(&dir.join("enterprises.jsonl"), enterprises)?;

    #[derive(Serialize)]
    struct Overpayment<'a> {
        resident_id: &'a str,
        period: String,
        deceased_on: NaiveDate,
        amount_fen: i64,
    }
    let mut over = Vec::new();
    for month in payment_months(w) {
        for (i, p) in w.people.iter().enumerate() {
            let Some(death) = p.death else { continue };
            if death >= month {
                continue;
            }
            if let Some((_, amount)) = elderly_paid(w, i, month)
                && payment_status(i, month) == "paid"
            {
                over.push(Overpayment {
                    resident_id: &p.id,
                    period: month.format("%Y-%m").to_string(),
                    deceased_on: death,
                    amount_fen: amount,
                });
            }
        }
    }
    write_lines(&dir.join("elderly_overpayments.jsonl"), over.into_iter())?;
    write_lines(
        &dir.join("entitlements.jsonl"),
        crate::entitlements::findings(w).into_iter(),
    )?;

    #[derive(Serialize)]
    struct StageTruth {
        stage: &'static str,
        date: NaiveDate,
        /// False for a stage its department never reported.
        reported: bool,
    }
    #[derive(Serialize)]
    struct ProjectTruth<'a> {
        project_code: &'a str,
        project_name: &'a str,
        builder_uscc: &'a str,
        stages: Vec<StageTruth>,
    }
    let projects = w.projects.iter().map(|p| ProjectTruth {
        project_code: &p.code,
        project_name: &p.name,
        builder_uscc: &w.enterprises[p.builder as usize].uscc,
        stages: p
            .events
            .iter()
            .map(|(stage, date, _)| StageTruth {
                stage,
                date: *date,
                reported: p.unreported != Some(*stage),
            })
            .collect(),
    });
    write_lines(&dir.join("projects.jsonl"), projects)?;

    #[derive(Serialize)]
    struct CertificateTruth<'a> {
        certificate_no: &'a str,
        unit_no: &'a str,
        owner_id: &'a str,
        owner_name: &'a str,
        address: &'a str,
        area_m2: f64,
        registered_on: NaiveDate,
        /// active | cancelled, as of the end of the window.
        status: &'static str,
        cancelled_on: Option<NaiveDate>,
        /// The housing contract this certificate's home was sold under (new builds).
        contract_no: Option<&'a str>,
    }
    let certificates = w
        .properties
        .iter()
        .filter(|p| p.registered <= end)
        .map(|p| {
            let cancelled_on = p.cancelled.filter(|c| *c <= end);
            let owner = &w.people[p.owner as usize];
            CertificateTruth {
                certificate_no: &p.cert_no,
                unit_no: &p.unit_no,
                owner_id: &owner.id,
                owner_name: &owner.name,
                address: &p.address,
                area_m2: p.area_m2,
                registered_on: p.registered,
                status: if cancelled_on.is_some() {
                    "cancelled"
                } else {
                    "active"
                },
                cancelled_on,
                contract_no: p
                    .contract
                    .as_ref()
                    .filter(|c| c.signed <= end)
                    .map(|c| c.no.as_str()),
            }
        });
    write_lines(&dir.join("certificates.jsonl"), certificates)
}

pub(crate) fn write_noise_and_summary(
    w: &World,
    out: &Path,
    noise: &[(String, usize, Noised)],
    summary: &Summary,
) -> Result<()> {
    let dir = out.join(DIR);
    #[derive(Serialize)]
    struct NoiseRow<'a> {
        topic: &'a str,
        line: usize,
        kind: &'static str,
        field: &'static str,
    }
    write_lines(
        &dir.join("noise.jsonl"),
        noise.iter().map(|(t, line, n)| NoiseRow {
            topic: t,
            line: *line,
            kind: n.kind,
            field: n.field,
        }),
    )?;
    let path = dir.join("summary.json");
    let mut json =
        serde_json::to_value(summary).map_err(|e| io_err(&path)(std::io::Error::other(e)))?;
    // Wall-clock time varies between runs; keep the truth byte-identical per seed.
    if let Some(o) = json.as_object_mut() {
        o.remove("seconds");
        o.insert("district_name".into(), w.district.name.into());
    }
    let text =
        serde_json::to_string_pretty(&json).map_err(|e| io_err(&path)(std::io::Error::other(e)))?;
    std::fs::write(&path, text + "\n").map_err(io_err(&path))
}
