//! `gdx bench policy`: what enforcing a reader's policy costs, side by side in one run.
//!
//! Data flow: a simulated district (as `gdx bench profiles` makes it: feeds → events →
//! `gdx lake fold` → `gdx profiles build`) → one [`TableRegistry`] → sessions opened again
//! and again for the operator (allow-all) and for a street office (rows of one street,
//! identifiers as keyed pseudonyms, other personal columns masked): the time to open one →
//! the same analyst queries (a point lookup by key, a filter with a group by, a join of two
//! datasets, a profile scan) run by both, alternating, several times → the median of each
//! and the ratio street office / operator. The street office's answers are checked against
//! the operator's own answers restricted to that street (same rows, so the same work was
//! done).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::AsArray;
use arrow::datatypes::DataType;
use gdx_catalog::{PiiKind, Pseudonymizer, district};
use gdx_lake::policy::file::FilePolicy;
use gdx_lake::sql::{LakeSession, QueryOutput, SessionOptions};
use gdx_lake::{AllowAll, TablePolicy, TableRegistry};

use super::profiles::built_district;

use crate::cli::BenchPolicyArgs;

/// The first column of the first row, as text.
fn first(out: &QueryOutput) -> anyhow::Result<String> {
    let b = out
        .batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .context("no rows")?;
    let c = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
    Ok(c.as_string::<i32>().value(0).to_owned())
}

/// Every value of a result as sorted text rows (to compare two answers).
fn rows(out: &QueryOutput) -> anyhow::Result<Vec<String>> {
    let mut rows: Vec<String> = gdx_lake::read::text_rows(&out.batches)?
        .into_iter()
        .map(|r| r.join("|"))
        .collect();
    rows.sort();
    Ok(rows)
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// A street office's policy: one street's residents, pseudonymous IDs, masked names.
fn street_office(street: &str, key: Arc<Pseudonymizer>) -> anyhow::Result<FilePolicy> {
    let text = format!(
        r#"
        [[tables]]
        name = "ps.household_registration"
        rows = "street = '{street}'"
        [tables.column]
        resident_id = "pseudonym"
        _key = "pseudonym"

        [[tables]]
        name = "hrss.social_insurance_enrolment"
        [tables.column]
        resident_id = "pseudonym"
        _key = "remove"

        [[tables]]
        name = "profiles.citizen"
        rows = "street = '{street}'"
        max_level = 3
        [tables.column]
        resident_id = "pseudonym"
        "#
    );
    Ok(FilePolicy::parse("street-office", &text, Some(key))?)
}

pub(crate) fn policy(args: BenchPolicyArgs) -> anyhow::Result<ExitCode> {
    let (_tmp, lake, rt) = built_district(args.people, args.enterprises)?;
    let (people, enterprises) = (args.people, args.enterprises);

    let catalog = district::catalog();
    let registry = rt.block_on(TableRegistry::open(&lake, &catalog))?;
    let opts = SessionOptions {
        max_rows: usize::MAX,
        ..SessionOptions::default()
    };
    let operator: Arc<dyn TablePolicy> = Arc::new(AllowAll);
    let op = rt.block_on(LakeSession::open(&registry, operator.clone(), &opts))?;
    // The busiest street, and one resident of it to look up.
    let street = first(&rt.block_on(op.query(
        "select street from ps.household_registration group by street order by count(*) desc, street limit 1",
    ))?)?;
    let id = first(&rt.block_on(op.query(&format!(
        "select resident_id from ps.household_registration where street = '{street}' order by resident_id limit 1"
    )))?)?;
    let key = Arc::new(Pseudonymizer::new(&rand_key())?);
    let office: Arc<dyn TablePolicy> = Arc::new(street_office(&street, key.clone())?);
    let pseudonym = key.pseudonym(PiiKind::IdNumber, &id);

    // Opening a session: no I/O, only the policy applied to every table.
    let opens = 2_000;
    let mut open_us = Vec::new();
    for p in [&operator, &office] {
        let started = Instant::now();
        for _ in 0..opens {
            rt.block_on(LakeSession::open(&registry, p.clone(), &opts))?;
        }
        open_us.push(started.elapsed().as_secs_f64() * 1e6 / opens as f64);
    }
    let office_session = rt.block_on(LakeSession::open(&registry, office.clone(), &opts))?;

    // (label, operator SQL, street office SQL, operator SQL that gives the office's answer)
    let lookup = "select name, gender, community, status from ps.household_registration where resident_id = ";
    let group = "select community, gender, count(*) from ps.household_registration where status = 'active' group by community, gender";
    let join = "select s.insurance_type, count(*) from ps.household_registration h join hrss.social_insurance_enrolment s on s.resident_id = h.resident_id group by s.insurance_type";
    let profile = "select life_stage, count(*), sum(property_count) from profiles.citizen group by life_stage";
    let on_street = |sql: &str, table: &str| {
        sql.replace(
            table,
            &format!("(select * from {table} where street = '{street}')"),
        )
    };
    let queries = [
        (
            "point lookup by key",
            format!("{lookup}'{id}'"),
            format!("{lookup}'{pseudonym}'"),
            format!("{lookup}'{id}'"),
        ),
        (
            "filter + group by",
            group.to_owned(),
            group.to_owned(),
            on_street(group, "ps.household_registration"),
        ),
        (
            "join of two datasets",
            join.to_owned(),
            join.to_owned(),
            on_street(join, "ps.household_registration"),
        ),
        (
            "profile scan",
            profile.to_owned(),
            profile.to_owned(),
            on_street(profile, "profiles.citizen"),
        ),
    ];
    println!(
        "policy benchmark: {people} residents, {enterprises} enterprises, {} cores, street office of {street} (rows filtered, IDs pseudonymised, names masked)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "  open a reader's session    operator {:>7.1} µs   street office {:>7.1} µs   (mean of {opens}; target < 1000 µs)",
        open_us[0], open_us[1]
    );
    for (label, op_sql, office_sql, check_sql) in &queries {
        // Same answer: the office sees exactly the operator's rows of its street.
        let expect = rows(&rt.block_on(op.query(check_sql))?)?;
        let got = rows(&rt.block_on(office_session.query(office_sql))?)?;
        anyhow::ensure!(
            expect.len() == got.len() && (label.starts_with("point") || expect == got),
            "{label}: the street office's answer ({} rows) differs from the operator's rows of its street ({} rows)",
            got.len(),
            expect.len()
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let s = Instant::now();
            rt.block_on(op.query(op_sql))?;
            a.push(s.elapsed());
            let s = Instant::now();
            rt.block_on(office_session.query(office_sql))?;
            b.push(s.elapsed());
        }
        let (a, b) = (median(a), median(b));
        println!(
            "  {label:<26} operator {:>8.1} ms   street office {:>8.1} ms   office/operator {:.2}x   ({} rows; median of {})",
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            b.as_secs_f64() / a.as_secs_f64(),
            got.len(),
            args.runs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh random key for this run's pseudonyms.
fn rand_key() -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let mut key = Vec::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        key.extend(h.finish().to_le_bytes());
    }
    key
}
