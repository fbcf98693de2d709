//! `gdx bench allowance`: the elderly allowance's monthly run over a simulated district,
//! beside DuckDB computing the same eligibility as plain SQL over the same Parquet files.
//!
//! Data flow: a simulated district loaded into events tables → three rounds of: the ledger
//! removed, `gdx scenario allowance run --month M --as-of M-15` (a child process: wall time
//! and peak RSS), then DuckDB over the events tables' active Parquet files: the state of the
//! registrations, death certificates and cremations as of the same instant (latest event per
//! key, as the run rebuilds it), who is registered and alive on the month's first day and
//! what their band pays → the medians side by side, and both answers (payments, total fen)
//! checked equal.

use std::process::ExitCode;

use anyhow::Context;
use gdx_catalog::district;
use gdx_lake::read::active_files;

use super::profiles::simulated_events;
use super::{cores, duckdb, gdx, measure};
use crate::cli::BenchAllowanceArgs;

const RUNS: usize = 3;

/// The run's month as (first day, last day, the run's date: the 15th).
fn month_days(month: &str) -> anyhow::Result<(chrono::NaiveDate, chrono::NaiveDate)> {
    let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .with_context(|| format!("--month {month:?} is not YYYY-MM"))?;
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .context("month out of range")?;
    Ok((first, last))
}

/// DuckDB's script: views of the three datasets' state as of `cutoff` (UTC), then the
/// month's payments as one table.
fn duck_sql(
    files: &[(String, Vec<String>)],
    cutoff: &str,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
    memory_mb: usize,
    threads: usize,
) -> String {
    let mut s = format!("set memory_limit = '{memory_mb}MB'; set threads = {threads};\n");
    for (name, list) in files {
        let list = list
            .iter()
            .map(|f| format!("'{f}'"))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "create view {name} as select * exclude (_rn) from (select *, row_number() over \
             (partition by _key order by _event_time desc, _partition desc, _offset desc) as _rn \
             from read_parquet([{list}]) where _event_time <= TIMESTAMPTZ '{cutoff}') \
             where _rn = 1 and _op = 'upsert';\n"
        ));
    }
    let (f, l) = (first.format("%Y-%m-%d"), last.format("%Y-%m-%d"));
    s.push_str(&format!(
        "create table payments as \
         with died as ( \
           select resident_id, min(d) as died from ( \
             select resident_id, deceased_on as d from registration where deceased_on is not null \
             union all select resident_id, date_of_death from death_certificate \
             union all select resident_id, date_of_death from cremation) group by resident_id), \
         aged as ( \
           select r.resident_id, \
             year(DATE '{l}') - year(r.birth_date) \
               - case when month(r.birth_date) > {lm} or (month(r.birth_date) = {lm} and day(r.birth_date) > {ld}) then 1 else 0 end as age \
           from registration r left join died using (resident_id) \
           where r.registered_on <= DATE '{f}' \
             and (r.moved_out_on is null or r.moved_out_on > DATE '{f}') \
             and (died.died is null or died.died >= DATE '{f}')) \
         select resident_id, case when age >= 100 then 50000 when age >= 90 then 30000 \
           when age >= 80 then 10000 else 5000 end as fen \
         from aged where age >= 70;\n",
        lm = last.format("%-m"),
        ld = last.format("%-d"),
    ));
    s
}

pub(crate) fn allowance(args: BenchAllowanceArgs) -> anyhow::Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let (feeds, lake_dir, lake) = super::profiles::bench_dirs(args.dir.as_deref(), &tmp)?;
    let rt = crate::commands::ingest::runtime()?;
    let (people, enterprises) = (args.people.to_string(), args.enterprises.to_string());
    let (events, _) = simulated_events(&rt, &feeds, &lake, &people, &enterprises)?;
    let (first, last) = month_days(&args.month)?;
    let as_of_day = first + chrono::Duration::days(14);
    let as_of = gdx_lake::sql::AsOf::parse(&as_of_day.format("%Y-%m-%d").to_string())
        .map_err(anyhow::Error::msg)?;
    let cutoff = as_of
        .cutoff()
        .format("%Y-%m-%d %H:%M:%S%.6f+00")
        .to_string();

    let catalog = district::catalog();
    let mut files = Vec::new();
    for (view, id) in [
        ("registration", "ps.household_registration"),
        ("death_certificate", "nhc.death_certificate"),
        ("cremation", "mca.cremation"),
    ] {
        let ds = catalog.get(id).context("dataset")?;
        let list = rt.block_on(active_files(&lake.events(&ds.id)))?;
        anyhow::ensure!(!list.is_empty(), "{id}: events has no files");
        files.push((view.to_owned(), list));
    }
    let threads = cores();
    let script = duck_sql(&files, &cutoff, first, last, args.memory_mb, threads);
    let check = vec!["select count(*), sum(fen) from payments".to_owned()];
    let ledger = lake_dir.join("_system/scenarios/elderly_allowance");
    let memory = args.memory_mb.to_string();
    let mut runs = Vec::new();
    let mut ducks = Vec::new();
    let mut answer = String::new();
    for round in 1..=RUNS {
        eprintln!(
            "run {round}/{RUNS}: gdx scenario allowance run, then DuckDB with the same eligibility"
        );
        let _ = std::fs::remove_dir_all(&ledger);
        let m = measure(
            gdx()?
                .args(["scenario", "allowance", "run", "--lake"])
                .arg(&lake_dir)
                .args(["--month", &args.month, "--as-of"])
                .arg(as_of_day.format("%Y-%m-%d").to_string())
                .args(["--memory-mb", &memory]),
        )?;
        let report: serde_json::Value = serde_json::from_slice(&m.stdout)
            .with_context(|| format!("the run printed {:?}", String::from_utf8_lossy(&m.stdout)))?;
        let paid = report["paid"].as_str().context("paid")?.replace('.', "");
        answer = format!(
            "{},{}",
            report["payments"].as_u64().context("payments")?,
            paid.trim_start_matches('0')
        );
        runs.push(m);
        if let Some(d) = duckdb(tmp.path(), &script, &check)? {
            ducks.push(d);
        }
    }
    runs.sort_by_key(|r| r.wall);
    let run = runs.swap_remove(runs.len() / 2);
    println!(
        "allowance benchmark: {people} residents, {events} events, month {} as of {as_of_day}, {threads} cores (both engines {threads} threads), --memory-mb {memory}",
        args.month
    );
    println!(
        "  gdx scenario allowance run  {:>7.2} s  (median of {RUNS}; the whole process: lake as of the date from events, ledger read and committed)  peak RSS {:>6.0} MiB",
        run.wall.as_secs_f64(),
        run.peak_mib
    );
    if ducks.is_empty() {
        println!("  DuckDB: not installed (python3 -m pip install duckdb)");
        return Ok(ExitCode::SUCCESS);
    }
    ducks.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let d = ducks.swap_remove(ducks.len() / 2);
    super::fold::same_answer(&answer, &d.checks[0])?;
    println!(
        "  DuckDB {} same eligibility {:>7.2} s  (median of {RUNS}; the statement only)  peak RSS {:>6.0} MiB   gdx/DuckDB time {:.2}x",
        d.version,
        d.seconds,
        d.peak_mib,
        run.wall.as_secs_f64() / d.seconds
    );
    println!("  same answer (payments, total fen): {answer}");
    Ok(ExitCode::SUCCESS)
}
