//! 市场监管 registration and abnormal-operation list, 税务 credit and tax, 科技/经信/统计
//! qualification lists, 人社 insured headcount, 发改 project lifecycle events.

use chrono::{Datelike, Duration, Months, NaiveDate};

use crate::emit::Rec;
use crate::entities::{Enterprise, YEARS};
use crate::feed::{Feed, at};
use crate::rng::{add_years, chance, date_between, office_time, pick};
use crate::{names, world::World};

fn registration(w: &World, e: &Enterprise, address: &str, cancelled: Option<NaiveDate>) -> Rec {
    let rep = &w.people[e.legal_rep as usize];
    Rec::with_capacity(12)
        .set("uscc", e.uscc.as_str())
        .set("name", e.name.as_str())
        .set("enterprise_type", e.etype)
        .set("legal_rep_name", rep.name.as_str())
        .set("legal_rep_id", rep.id.as_str())
        .set("industry_code", e.industry_code())
        .money("registered_capital", e.capital_fen)
        .set("established_on", e.established)
        .set("address", address)
        .set("street", w.streets[e.street as usize].name)
        .set(
            "status",
            if cancelled.is_some() {
                "cancelled"
            } else {
                "active"
            },
        )
        .set("cancelled_on", cancelled)
}

pub(super) fn enterprise_registration(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    for (i, e) in w.enterprises.iter().enumerate() {
        let before_cancel = e.cancelled.filter(|c| *c < start);
        let first = registration(w, e, &e.address, before_cancel);
        let t0 = if e.established < start {
            let t = at(start, i as u64);
            f.upsert(t, first.clone());
            t
        } else {
            let t = office_time(&mut f.rng, e.established);
            f.change(t, 'c', None, Some(first.clone()));
            t
        };
        let mut current = first;
        if before_cancel.is_none() && chance(&mut f.rng, 0.02) {
            let d = date_between(&mut f.rng, t0.date(), end);
            if e.cancelled.is_none_or(|c| c > d) {
                let moved = format!(
                    "{}{}{}号",
                    w.district.city,
                    w.district.name,
                    pick(&mut f.rng, names::ROADS)
                );
                let next = registration(w, e, &moved, None);
                let t_ = office_time(&mut f.rng, d);
                f.change(
                    t_.max(t0 + Duration::minutes(1)),
                    'u',
                    Some(current.clone()),
                    Some(next.clone()),
                );
                current = next;
            }
        }
        if let Some(c) = e.cancelled.filter(|c| *c >= start && *c <= end) {
            let addr = match current.get("address") {
                Some(crate::emit::V::S(s)) => s.clone(),
                _ => e.address.clone(),
            };
            let next = registration(w, e, &addr, Some(c));
            let t_ = office_time(&mut f.rng, c);
            f.change(
                t_.max(t0 + Duration::minutes(2)),
                'u',
                Some(current),
                Some(next),
            );
        }
    }
}

pub(super) fn abnormal_operation(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    let by = format!("{}市场监督管理局", w.district.name);
    for (i, e) in w.enterprises.iter().enumerate() {
        let Some((listed, removed, reason)) = e.abnormal else {
            continue;
        };
        let rec = |removed: Option<NaiveDate>| {
            Rec::with_capacity(8)
                .set("record_id", format!("YC{}{:07}", listed.year(), i))
                .set("uscc", e.uscc.as_str())
                .set("enterprise_name", e.name.as_str())
                .set("reason", reason)
                .set("listed_on", listed)
                .set("listed_by", by.as_str())
                .set("removed_on", removed)
                .set("removal_reason", removed.map(|_| "已补报年度报告并公示"))
        };
        let already_removed = removed.filter(|r| *r < start);
        let t = if listed < start {
            at(start, i as u64)
        } else {
            office_time(&mut f.rng, listed)
        };
        f.upsert(t, rec(already_removed));
        if let Some(r) = removed.filter(|r| *r >= start && *r <= end) {
            let t_ = office_time(&mut f.rng, r);
            f.upsert(t_.max(t + Duration::minutes(1)), rec(Some(r)));
        }
    }
}

/// Whether the enterprise traded in year `k` of [`YEARS`].
fn traded(e: &Enterprise, k: usize) -> bool {
    e.revenue[k] > 0
}

pub(super) fn taxpayer_credit(w: &World, f: &mut Feed<'_>) {
    for (k, year) in YEARS.iter().enumerate() {
        let evaluated = NaiveDate::from_ymd_opt(year + 1, 4, 20).expect("date");
        if evaluated > w.cfg.end {
            continue;
        }
        for (i, e) in w.enterprises.iter().enumerate() {
            if !traded(e, k) {
                continue;
            }
            let rec = Rec::with_capacity(4)
                .set("uscc", e.uscc.as_str())
                .int("year", i64::from(*year))
                .set("grade", e.credit[k])
                .set("evaluated_on", evaluated);
            f.upsert(at(evaluated, i as u64), rec);
        }
    }
}

pub(super) fn tax_paid(w: &World, f: &mut Feed<'_>) {
    for (k, year) in YEARS.iter().enumerate() {
        let day = NaiveDate::from_ymd_opt(year + 1, 5, 31).expect("date");
        if day > w.cfg.end {
            continue;
        }
        for (i, e) in w.enterprises.iter().enumerate() {
            if !traded(e, k) {
                continue;
            }
            let rec = Rec::with_capacity(5)
                .set("uscc", e.uscc.as_str())
                .int("year", i64::from(*year))
                .money("tax_paid", e.tax[k])
                .money("corporate_income_tax", e.tax[k] / 4)
                .money("revenue", e.revenue[k]);
            f.upsert(at(day, i as u64), rec);
        }
    }
}

/// Snapshot at the window start (or the event when inside it), then expiry.
fn certificate_feed(
    f: &mut Feed<'_>,
    w: &World,
    i: usize,
    recognised: NaiveDate,
    valid_until: NaiveDate,
    rec: &dyn Fn(&'static str) -> Rec,
) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    let t = if recognised < start {
        at(start, i as u64)
    } else {
        office_time(&mut f.rng, recognised)
    };
    let status = if valid_until < start {
        "expired"
    } else {
        "valid"
    };
    f.upsert(t, rec(status));
    if status == "valid" && valid_until <= end {
        f.upsert(
            at(valid_until + Duration::days(1), i as u64),
            rec("expired"),
        );
    }
}

pub(super) fn high_tech_enterprise(w: &World, f: &mut Feed<'_>) {
    for (i, e) in w.enterprises.iter().enumerate() {
        let Some(d) = e.high_tech else { continue };
        let valid_until = add_years(d, 3) - Duration::days(1);
        let rec = |status: &'static str| {
            Rec::with_capacity(6)
                .set(
                    "certificate_no",
                    format!("GR{}{}{:06}", d.year(), w.district.code / 10_000, i),
                )
                .set("uscc", e.uscc.as_str())
                .set("enterprise_name", e.name.as_str())
                .set("recognised_on", d)
                .set("valid_until", valid_until)
                .set("status", status)
        };
        certificate_feed(f, w, i, d, valid_until, &rec);
    }
}

pub(super) fn specialised_sme(w: &World, f: &mut Feed<'_>) {
    for (i, e) in w.enterprises.iter().enumerate() {
        let Some((level, d)) = e.sme else { continue };
        let valid_until = add_years(d, 3) - Duration::days(1);
        let rec = |_status: &'static str| {
            Rec::with_capacity(6)
                .set("uscc", e.uscc.as_str())
                .set("enterprise_name", e.name.as_str())
                .set("level", level)
                .set("batch", format!("{}年第{}批", d.year(), 1 + i % 2))
                .set("recognised_on", d)
                .set("valid_until", valid_until)
        };
        let t = if d < w.cfg.start {
            at(w.cfg.start, i as u64)
        } else {
            office_time(&mut f.rng, d)
        };
        f.upsert(t, rec("valid"));
    }
}

pub(super) fn above_scale_enterprise(w: &World, f: &mut Feed<'_>) {
    for (k, year) in YEARS.iter().enumerate() {
        let published = NaiveDate::from_ymd_opt(year + 1, 3, 15).expect("date");
        if published > w.cfg.end {
            continue;
        }
        for (i, e) in w.enterprises.iter().enumerate() {
            let Some(first) = e.above_scale_first else {
                continue;
            };
            if e.revenue[k] < e.above_scale_threshold() || first > *year {
                continue;
            }
            let rec = Rec::with_capacity(6)
                .set("uscc", e.uscc.as_str())
                .set("enterprise_name", e.name.as_str())
                .int("year", i64::from(*year))
                .set("sector", e.sector())
                .int("first_included_year", i64::from(first))
                .money("revenue", e.revenue[k]);
            f.upsert(at(published, i as u64), rec);
        }
    }
}

/// Quarter-end months in the window whose headcount report (the 15th of the next month)
/// falls inside it.
pub(crate) fn headcount_months(w: &World) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut m = NaiveDate::from_ymd_opt(w.cfg.start.year(), w.cfg.start.month(), 1).expect("date");
    while m <= w.cfg.end {
        if m.month().is_multiple_of(3) && m + Months::new(1) + Duration::days(14) <= w.cfg.end {
            out.push(m);
        }
        m = m + Months::new(1);
    }
    out
}

pub(super) fn employer_headcount(w: &World, f: &mut Feed<'_>) {
    for m in headcount_months(w) {
        let report = m + Months::new(1) + Duration::days(14);
        let month_end = m + Months::new(1) - Duration::days(1);
        let label = m.format("%Y-%m").to_string();
        for (i, e) in w.enterprises.iter().enumerate() {
            if e.headcount() == 0 || !e.active_on(month_end) {
                continue;
            }
            let rec = Rec::with_capacity(3)
                .set("uscc", e.uscc.as_str())
                .set("month", label.as_str())
                .int("insured_headcount", i64::from(e.headcount()));
            f.upsert(at(report, i as u64), rec);
        }
    }
}

pub(super) fn project_event(w: &World, f: &mut Feed<'_>) {
    for (i, p) in w.projects.iter().enumerate() {
        let builder = &w.enterprises[p.builder as usize];
        for (k, (stage, d, dept)) in p.events.iter().enumerate() {
            if p.unreported == Some(*stage) {
                continue;
            }
            let rec = Rec::with_capacity(9)
                .set("event_id", format!("XM{:05}{:02}", i + 1, k + 1))
                .set("project_code", p.code.as_str())
                .set("project_name", p.name.as_str())
                .set("stage", *stage)
                .set("event_date", *d)
                .set("department", *dept)
                .set("builder_uscc", builder.uscc.as_str())
                .money("investment", p.investment_fen)
                .set("summary", format!("{}：{}", p.name, stage_label(stage)));
            let t_ = office_time(&mut f.rng, *d);
            f.upsert(t_, rec);
        }
    }
}

fn stage_label(stage: &str) -> &'static str {
    match stage {
        "approval" => "项目立项批复",
        "bidding" => "施工总承包招标完成",
        "land" => "建设用地规划许可",
        "construction_permit" => "建筑工程施工许可",
        "quality_supervision" => "质量安全监督登记",
        _ => "竣工联合验收",
    }
}
