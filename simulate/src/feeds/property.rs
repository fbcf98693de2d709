//! 不动产 property certificates (Debezium CDC) and 住建 housing contracts.

use chrono::Duration;

use crate::emit::{Rec, V};
use crate::feed::{Feed, at};
use crate::rng::office_time;
use crate::world::World;

pub(super) fn property_certificate(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    for (i, p) in w.properties.iter().enumerate() {
        if p.registered > end {
            continue;
        }
        let owner = &w.people[p.owner as usize];
        let rec = |mortgaged: bool, status: &'static str| {
            Rec::with_capacity(11)
                .set("certificate_no", p.cert_no.as_str())
                .set("unit_no", p.unit_no.as_str())
                .set("owner_id", owner.id.as_str())
                .set("owner_name", owner.name.as_str())
                .set("address", p.address.as_str())
                .set("area_m2", V::F(p.area_m2))
                .set("usage", p.usage)
                .set("right_type", "国有建设用地使用权/房屋所有权")
                .set("mortgaged", V::B(mortgaged))
                .set("registered_on", p.registered)
                .set("status", status)
        };
        let mut current = rec(p.mortgaged, "active");
        let t0 = if p.registered < start {
            let t = at(start, i as u64);
            f.upsert(t, current.clone());
            t
        } else {
            let t = office_time(&mut f.rng, p.registered);
            f.change(t, 'c', None, Some(current.clone()));
            t
        };
        if let Some(d) = p
            .mortgage_released
            .filter(|d| *d <= end && p.cancelled.is_none_or(|c| c > *d))
        {
            let next = rec(false, "active");
            let t_ = office_time(&mut f.rng, d);
            f.change(
                t_.max(t0 + Duration::minutes(1)),
                'u',
                Some(current.clone()),
                Some(next.clone()),
            );
            current = next;
        }
        if let Some(c) = p.cancelled.filter(|c| *c <= end) {
            let mortgaged = matches!(current.get("mortgaged"), Some(V::B(true)));
            let next = rec(mortgaged, "cancelled");
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

pub(super) fn housing_contract(w: &World, f: &mut Feed<'_>) {
    let (start, end) = (w.cfg.start, w.cfg.end);
    for (i, p) in w.properties.iter().enumerate() {
        let Some(c) = &p.contract else { continue };
        if c.signed > end {
            continue;
        }
        let buyer = &w.people[p.owner as usize];
        let developer = c.developer.map(|d| w.enterprises[d as usize].uscc.as_str());
        let rec = |filed: Option<chrono::NaiveDate>| {
            Rec::with_capacity(11)
                .set("contract_no", c.no.as_str())
                .set("project_name", c.project.as_str())
                .set("unit_address", p.address.as_str())
                .set("buyer_id", buyer.id.as_str())
                .set("buyer_name", buyer.name.as_str())
                .set("area_m2", V::F(p.area_m2))
                .money("total_price", c.price_fen)
                .set("developer_uscc", developer)
                .set("signed_on", c.signed)
                .set("filed_on", filed)
                .set("status", if filed.is_some() { "filed" } else { "signed" })
        };
        if c.signed < start {
            let filed = c.filed.filter(|d| *d < start);
            f.upsert(at(start, i as u64), rec(filed));
            if let Some(d) = c.filed.filter(|d| *d >= start && *d <= end) {
                let t_ = office_time(&mut f.rng, d);
                f.upsert(t_, rec(Some(d)));
            }
        } else {
            let t = office_time(&mut f.rng, c.signed);
            f.upsert(t, rec(None));
            if let Some(d) = c.filed.filter(|d| *d <= end) {
                let t_ = office_time(&mut f.rng, d);
                f.upsert(t_.max(t + Duration::minutes(1)), rec(Some(d)));
            }
        }
    }
}
