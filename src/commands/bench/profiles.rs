//! `gdx bench profiles`: the citizen and enterprise profile build of a simulated district,
//! beside DuckDB running the same SQL over the same Parquet files; the fold before it.
//!
//! Data flow: `gdx simulate` (N residents, M enterprises) → every feed loaded into its
//! `events` table through ingest's decoder (partition 0, offset = line; what ingest would
//! dead-letter is left out) → `gdx lake fold` as a child (time, events/s, peak RSS) →
//! `gdx profiles build` as a child (time, peak RSS) → DuckDB: a view per dataset over the
//! `current` tables' Parquet files, then the two profile queries copied to Parquet (time,
//! peak RSS) → ratio gdx / DuckDB.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use gdx_catalog::district;
use gdx_ingest::decode::DatasetDecoder;
use gdx_ingest::publish::feed_message;
use gdx_lake::profiles::{Profile, sql};
use gdx_lake::read::active_files;
use gdx_lake::{EventTable, LakeLocation, PartitionTxn};

use super::{check_sql, cores, duckdb, gdx, measure};
use crate::cli::BenchProfilesArgs;

/// Loads one feed file into its events table in runs of `chunk` lines; returns the rows.
async fn load_feed(
    lake: &LakeLocation,
    ds: &Arc<gdx_catalog::Dataset>,
    path: &std::path::Path,
) -> anyhow::Result<u64> {
    let decoder = DatasetDecoder::new(ds.clone());
    let mut table = EventTable::open_or_create(
        lake.events(&ds.id),
        decoder.events_schema().clone(),
        ds.id.as_str(),
    )
    .await?;
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut msgs = Vec::new();
    let mut rows = 0u64;
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut flush = async |msgs: &mut Vec<gdx_ingest::decode::Message>| -> anyhow::Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let last = msgs.last().map(|m| m.offset).unwrap_or(0);
        let decoded = decoder.decode(msgs, now_us);
        let batches = decoded.batches;
        rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        table
            .append(
                batches,
                &[PartitionTxn {
                    app_id: format!("bench/feed/{}/0", ds.topic),
                    offset: last,
                }],
            )
            .await?;
        msgs.clear();
        Ok(())
    };
    for (offset, line) in file.lines().enumerate() {
        let line = line?;
        let msg = feed_message(&ds.topic, 0, offset as i64, &line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), offset + 1))?;
        msgs.push(msg);
        if msgs.len() == 100_000 {
            flush(&mut msgs).await?;
        }
    }
    flush(&mut msgs).await?;
    Ok(rows)
}

/// Simulates a district into `feeds` and loads every feed into its events table; returns
/// the events loaded and how long loading took.
/// A simulated district's lake, folded and with its profiles built, in a temp dir (as
/// `gdx bench policy` and `gdx bench exchange` use it): (temp dir, lake, runtime).
pub(super) fn built_district(
    people: usize,
    enterprises: usize,
) -> anyhow::Result<(tempfile::TempDir, LakeLocation, tokio::runtime::Runtime)> {
    let tmp = tempfile::tempdir()?;
    let feeds = tmp.path().join("feeds");
    let lake_dir = tmp.path().join("lake");
    let lake = LakeLocation::parse(lake_dir.to_str().context("temp dir is not UTF-8")?)?;
    let rt = crate::commands::ingest::runtime()?;
    let (events, _) = simulated_events(
        &rt,
        &feeds,
        &lake,
        &people.to_string(),
        &enterprises.to_string(),
    )?;
    eprintln!("folding {events} events and building the profiles");
    measure(gdx()?.args(["lake", "fold", "--lake"]).arg(&lake_dir))?;
    measure(gdx()?.args(["profiles", "build", "--lake"]).arg(&lake_dir))?;
    Ok((tmp, lake, rt))
}

pub(super) fn simulated_events(
    rt: &tokio::runtime::Runtime,
    feeds: &std::path::Path,
    lake: &LakeLocation,
    people: &str,
    enterprises: &str,
) -> anyhow::Result<(u64, std::time::Duration)> {
    eprintln!("simulating {people} residents and {enterprises} enterprises");
    measure(
        gdx()?
            .args(["simulate", "--quiet", "--out"])
            .arg(feeds)
            .args(["--people", people, "--enterprises", enterprises]),
    )?;
    eprintln!("loading the feeds into events tables");
    let started = std::time::Instant::now();
    let mut events = 0u64;
    for ds in district::catalog().datasets() {
        let ds = Arc::new(ds.clone());
        events += rt.block_on(load_feed(
            lake,
            &ds,
            &feeds.join(format!("{}.jsonl", ds.topic)),
        ))?;
    }
    Ok((events, started.elapsed()))
}

/// Where a bench keeps its feeds and lake: `--dir` (which must hold no lake yet) or `tmp`;
/// (feeds, lake directory, lake).
pub(super) fn bench_dirs(
    dir: Option<&std::path::Path>,
    tmp: &tempfile::TempDir,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf, LakeLocation)> {
    let base = dir.unwrap_or(tmp.path());
    let lake_dir = base.join("lake");
    if lake_dir.exists() {
        anyhow::bail!("{} exists: give an empty --dir", lake_dir.display());
    }
    let lake = LakeLocation::parse(lake_dir.to_str().context("temp dir is not UTF-8")?)?;
    Ok((base.join("feeds"), lake_dir, lake))
}

pub(crate) fn profiles(args: BenchProfilesArgs) -> anyhow::Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let (feeds, lake_dir, lake) = bench_dirs(args.dir.as_deref(), &tmp)?;
    let catalog = district::catalog();
    let rt = crate::commands::ingest::runtime()?;
    let (people, enterprises) = (args.people.to_string(), args.enterprises.to_string());

    let (events, load) = simulated_events(&rt, &feeds, &lake, &people, &enterprises)?;

    let memory = args.memory_mb.to_string();
    eprintln!("folding {events} events");
    let fold = measure(
        gdx()?
            .args(["lake", "fold", "--lake"])
            .arg(&lake_dir)
            .args(["--memory-mb", &memory]),
    )?;
    // Profile builds and DuckDB alternate, three runs each; the medians are compared.
    let build_cmd = || -> anyhow::Result<std::process::Command> {
        let mut c = gdx()?;
        c.args(["profiles", "build", "--lake"])
            .arg(&lake_dir)
            .args(["--memory-mb", &memory]);
        Ok(c)
    };

    // DuckDB: the same SQL over the same Parquet files of the `current` tables.
    let day = gdx_lake::sql::time_travel::district_today();
    let cores = cores();
    let mut script = format!("set memory_limit = '{memory}MB'; set threads = {cores};\n");
    for ds in catalog.datasets() {
        let files = rt.block_on(active_files(&lake.current(&ds.id)))?;
        anyhow::ensure!(!files.is_empty(), "{}: current has no files", ds.id);
        let list = files
            .iter()
            .map(|f| format!("'{f}'"))
            .collect::<Vec<_>>()
            .join(", ");
        script.push_str(&format!(
            "create schema if not exists {dept};\ncreate view {dept}.{name} as select * from read_parquet([{list}]);\n",
            dept = ds.id.department(),
            name = ds.id.name()
        ));
    }
    // Each engine's answer is checked by the same one-row summary of its output.
    let key_of = |p: Profile| match p {
        Profile::Citizen => ("resident_id", "property_count"),
        Profile::Enterprise => ("uscc", "insured_headcount"),
    };
    let mut duck_checks = Vec::new();
    for p in Profile::ALL {
        let out = tmp.path().join(format!("duckdb_{}.parquet", p.name()));
        script.push_str(&format!(
            "copy ({}) to '{}' (format parquet);\n",
            sql(p, day, false),
            out.display()
        ));
        let (key, sum) = key_of(p);
        duck_checks.push(check_sql(
            &format!("read_parquet('{}')", out.display()),
            key,
            sum,
        ));
    }
    let mut builds = Vec::new();
    let mut ducks = Vec::new();
    for run in 1..=RUNS {
        eprintln!("run {run}/{RUNS}: gdx profiles build, then DuckDB with the same SQL");
        builds.push(measure(&mut build_cmd()?)?);
        if let Some(d) = duckdb(tmp.path(), &script, &duck_checks)? {
            ducks.push(d);
        }
    }
    let rows = gdx_lake_rows(&rt, &lake)?;
    let mut gdx_checks = Vec::new();
    for p in Profile::ALL {
        let (key, sum) = key_of(p);
        gdx_checks.push(
            rt.block_on(gdx_lake::read::first_row_text(
                &lake.profile(p.name()),
                &check_sql("t", key, sum),
            ))?
            .unwrap_or_default(),
        );
    }
    let build = median(builds);
    let duck = (!ducks.is_empty()).then(|| {
        ducks.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        ducks.swap_remove(ducks.len() / 2)
    });
    println!(
        "profiles benchmark: {people} residents, {enterprises} enterprises, {events} events, {cores} cores (both engines {cores} threads), --memory-mb {memory}"
    );
    println!(
        "  load feeds into events    {:>7.1} s  (decoder + Delta commits, not compared)",
        load.as_secs_f64()
    );
    println!(
        "  gdx fold (22 datasets)    {:>7.1} s  {:>9.0} events/s  peak RSS {:>6.0} MiB",
        fold.wall.as_secs_f64(),
        events as f64 / fold.wall.as_secs_f64(),
        fold.peak_mib
    );
    println!(
        "  gdx profiles build        {:>7.2} s  (median of {RUNS})  citizen {} rows, enterprise {} rows  peak RSS {:>6.0} MiB",
        build.wall.as_secs_f64(),
        rows.0,
        rows.1,
        build.peak_mib
    );
    match duck {
        Some(d) => {
            for (g, d) in gdx_checks.iter().zip(&d.checks) {
                super::fold::same_answer(g, d)?;
            }
            println!(
                "  DuckDB {} same SQL     {:>7.2} s  (median of {RUNS}; excludes Python start and import)  peak RSS {:>6.0} MiB   gdx/DuckDB time {:.2}x (target <= 1.0x)",
                d.version,
                d.seconds,
                d.peak_mib,
                build.wall.as_secs_f64() / d.seconds
            );
            println!(
                "  same answer (rows, distinct keys, min, max, sum): citizen {}; enterprise {}",
                gdx_checks[0], gdx_checks[1]
            );
        }
        None => println!("  DuckDB: not installed (python3 -m pip install duckdb)"),
    }
    Ok(ExitCode::SUCCESS)
}

const RUNS: usize = 3;

/// The run with the median wall time.
fn median(mut runs: Vec<super::Measured>) -> super::Measured {
    runs.sort_by_key(|r| r.wall);
    runs.swap_remove(runs.len() / 2)
}

fn gdx_lake_rows(rt: &tokio::runtime::Runtime, lake: &LakeLocation) -> anyhow::Result<(u64, u64)> {
    let c = rt.block_on(gdx_lake::read::row_count(&lake.profile("citizen")))?;
    let e = rt.block_on(gdx_lake::read::row_count(&lake.profile("enterprise")))?;
    Ok((c, e))
}
