//! `gdx bench fold`: folding N keys of household registrations into `current`, its memory,
//! and DuckDB doing the same latest-per-key over the same Parquet files, side by side.
//!
//! Data flow, per table size: N synthetic (valid-ID, realistic-width) household records
//! written as ingest writes them (events table, 8 Kafka partitions, commits of 200k rows) →
//! `gdx lake fold` as a child process under `--memory-mb` (time, peak RSS) → DuckDB:
//! `qualify row_number() … = 1` over the same Parquet files, written to Parquet (time, peak
//! RSS, answer checked equal) → changes of 0.01 %, 0.1 % and 1 % of the keys (a tenth of
//! them deletes) appended and folded in turn (time, peak RSS, merged or rewritten) → DuckDB
//! over every event file checks the state after them → for the largest table, a steady
//! trickle of changes folded as they come (commit → in `current`, p50/p99).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{
    ArrayRef, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, new_null_array,
};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use gdx_catalog::{ResidentId, district};
use gdx_lake::schema::events_schema;
use gdx_lake::{EventTable, LakeLocation, PartitionTxn};

use super::{check_sql, cores, duckdb, gdx, measure};
use crate::cli::BenchFoldArgs;

const DATASET: &str = "ps.household_registration";
const PARTITIONS: i64 = 8;
const STREETS: [&str; 6] = [
    "中华路街道",
    "积玉桥街道",
    "杨园街道",
    "徐家棚街道",
    "粮道街道",
    "水果湖街道",
];

/// One synthetic event: key index, revision (0 initial, 1 changed), delete or not, and its
/// place in the feed.
#[derive(Clone, Copy)]
struct Ev {
    i: u64,
    rev: u8,
    delete: bool,
    seq: i64,
}

fn id(i: u64) -> String {
    let day = NaiveDate::from_ymd_opt(1925, 1, 1).expect("date")
        + chrono::Duration::days((i % 36_500) as i64);
    ResidentId::compose(420106, day, (i / 36_500) as u16)
        .as_str()
        .to_owned()
}

fn column(name: &str, ty: &DataType, evs: &[Ev]) -> ArrayRef {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("date");
    let day = |i: u64| {
        (NaiveDate::from_ymd_opt(1925, 1, 1).expect("date")
            + chrono::Duration::days((i % 36_500) as i64)
            - epoch)
            .num_days() as i32
    };
    let t0 = 1_735_689_600_000_000i64; // 2025-01-01T00:00:00Z
    let ts = |e: &Ev| t0 + e.seq * 1_000;
    let text = |f: &dyn Fn(&Ev) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter(evs.iter().map(|e| {
            if e.delete && name != "resident_id" {
                None
            } else {
                Some(f(e))
            }
        })))
    };
    match name {
        "resident_id" | "_key" => {
            Arc::new(StringArray::from_iter_values(evs.iter().map(|e| id(e.i))))
        }
        "name" => text(&|e| format!("居民{}", e.i % 50_000)),
        "gender" => text(&|e| if e.i % 2 == 0 { "1" } else { "2" }.into()),
        "ethnicity" => text(&|_| "01".into()),
        "household_id" => text(&|e| format!("420106{:09}", e.i / 3)),
        "relation_to_head" => text(&|e| ["02", "10", "20"][(e.i % 3) as usize].into()),
        "street" => text(&|e| STREETS[(e.i % 6) as usize].into()),
        "community" => text(&|e| format!("第{}社区", e.i % 40)),
        "address" => text(&|e| {
            format!(
                "湖北省武汉市武昌区{}第{}社区{}号{}室",
                STREETS[(e.i % 6) as usize],
                e.i % 40,
                e.i % 300 + e.rev as u64,
                e.i % 1000
            )
        }),
        "phone" => text(&|e| format!("138{:08}", (e.i * 7 + e.rev as u64) % 100_000_000)),
        "status" => text(&|_| "active".into()),
        "birth_date" | "registered_on" => Arc::new(Date32Array::from_iter(
            evs.iter().map(|e| (!e.delete).then(|| day(e.i))),
        )),
        "updated_at" | "_kafka_ts" | "_event_time" | "_ingested_at" => Arc::new(
            TimestampMicrosecondArray::from_iter_values(evs.iter().map(ts)).with_timezone("UTC"),
        ),
        "_topic" => Arc::new(StringArray::from_iter_values(evs.iter().map(|_| DATASET))),
        "_partition" => Arc::new(Int32Array::from_iter_values(
            evs.iter().map(|e| (e.seq % PARTITIONS) as i32),
        )),
        "_offset" => Arc::new(Int64Array::from_iter_values(
            evs.iter().map(|e| e.seq / PARTITIONS),
        )),
        "_op" => Arc::new(StringArray::from_iter_values(
            evs.iter()
                .map(|e| if e.delete { "delete" } else { "upsert" }),
        )),
        "_schema_version" => Arc::new(Int32Array::from_iter_values(evs.iter().map(|_| 1))),
        _ => new_null_array(ty, evs.len()),
    }
}

async fn write(lake: &LakeLocation, evs: &[Ev]) -> anyhow::Result<()> {
    let catalog = district::catalog();
    let ds = catalog.get(DATASET).context("district dataset")?;
    let schema = events_schema(ds);
    let mut table =
        EventTable::open_or_create(lake.events(&ds.id), schema.clone(), DATASET).await?;
    for chunk in evs.chunks(200_000) {
        let columns = schema
            .fields()
            .iter()
            .map(|f| column(f.name(), f.data_type(), chunk))
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let mut last = [-1i64; PARTITIONS as usize];
        for e in chunk {
            let p = (e.seq % PARTITIONS) as usize;
            last[p] = last[p].max(e.seq / PARTITIONS);
        }
        let txns: Vec<PartitionTxn> = (0..PARTITIONS as usize)
            .filter(|&p| last[p] >= 0)
            .map(|p| PartitionTxn {
                app_id: format!("bench/synthetic/{DATASET}/{p}"),
                offset: last[p],
            })
            .collect();
        table.append(vec![batch], &txns).await?;
    }
    Ok(())
}

pub(crate) fn fold(args: BenchFoldArgs) -> anyhow::Result<ExitCode> {
    let cores = cores();
    let mut lines = Vec::new();
    let largest = args.keys.iter().copied().max().unwrap_or(0);
    for &n in &args.keys {
        lines.extend(one_size(&args, n as u64, n == largest)?);
    }
    println!(
        "fold benchmark: ps.household_registration, {cores} cores (both engines {cores} threads), --memory-mb {}",
        args.memory_mb
    );
    for l in lines {
        println!("{l}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The shares of the table that change between folds, and the keys they touch (disjoint:
/// key `k * step + offset`).
const CHANGES: [(f64, u64, u64); 3] = [(0.0001, 10_000, 7), (0.001, 1_000, 13), (0.01, 100, 29)];

/// One table of `n` keys: written, folded in full, then changes of each share folded, with
/// DuckDB doing the full fold's work beside; the trickle when `trickle`.
fn one_size(args: &BenchFoldArgs, n: u64, trickle: bool) -> anyhow::Result<Vec<String>> {
    let tmp = tempfile::tempdir()?;
    let lake_dir = tmp.path().join("lake");
    let lake = LakeLocation::parse(lake_dir.to_str().context("temp dir is not UTF-8")?)?;
    let rt = crate::commands::ingest::runtime()?;
    eprintln!("writing {n} household registrations as events");
    let initial: Vec<Ev> = (0..n)
        .map(|i| Ev {
            i,
            rev: 0,
            delete: false,
            seq: i as i64,
        })
        .collect();
    rt.block_on(write(&lake, &initial))?;
    drop(initial);
    let events_dir = lake_dir.join("ps/household_registration/events");
    let initial_files = parquet_files(&events_dir)?;

    let memory = args.memory_mb.to_string();
    let fold_cmd = || -> anyhow::Result<std::process::Command> {
        let mut c = gdx()?;
        c.args(["lake", "fold", "--dataset", DATASET, "--lake"])
            .arg(&lake_dir)
            .args(["--memory-mb", &memory]);
        Ok(c)
    };
    eprintln!("full fold of {n} keys");
    let full = measure(&mut fold_cmd()?)?;
    let ds_id = district::catalog()
        .get(DATASET)
        .context("district dataset")?
        .id
        .clone();
    let current = lake.current(&ds_id);
    let rows = rt.block_on(gdx_lake::read::row_count(&current))?;
    anyhow::ensure!(rows == n, "current holds {rows} rows, expected {n}");
    let check = "select count(*), count(distinct _key), min(_key), max(_key), sum(_offset) from t";
    let gdx_full = rt
        .block_on(gdx_lake::read::first_row_text(&current, check))?
        .unwrap_or_default();
    let mut lines = vec![format!(
        "  {n:>9} keys  full fold                      {:>7.2} s  {:>10.0} events/s  peak RSS {:>5.0} MiB",
        full.wall.as_secs_f64(),
        n as f64 / full.wall.as_secs_f64(),
        full.peak_mib
    )];

    eprintln!(
        "DuckDB: latest per key over the same {} files",
        initial_files.len()
    );
    let duck = duck_latest(tmp.path(), &initial_files, &memory, "initial")?;
    if let Some(d) = &duck {
        lines.push(format!(
            "  {n:>9} keys  DuckDB {} latest-per-key  {:>7.2} s  {:>10.0} events/s  peak RSS {:>5.0} MiB  gdx/DuckDB {:.2}x{}",
            d.version,
            d.seconds,
            n as f64 / d.seconds,
            d.peak_mib,
            full.wall.as_secs_f64() / d.seconds,
            same_answer(&gdx_full, &d.checks[0])?
        ));
    } else {
        lines.push("  DuckDB: not installed (python3 -m pip install duckdb)".into());
    }

    let mut seq = n as i64;
    let mut live = n;
    for (share, step, offset) in CHANGES {
        let changes: Vec<Ev> = (0..n / step)
            .map(|k| k * step + offset)
            .filter(|&i| i < n)
            .enumerate()
            .map(|(j, i)| Ev {
                i,
                rev: 1,
                delete: j % 10 == 0,
                seq: seq + j as i64,
            })
            .collect();
        if changes.is_empty() {
            continue;
        }
        seq += changes.len() as i64;
        live -= changes.iter().filter(|e| e.delete).count() as u64;
        rt.block_on(write(&lake, &changes))?;
        eprintln!("fold of {} changes ({}%)", changes.len(), share * 100.0);
        let m = measure(&mut fold_cmd()?)?;
        let how = if String::from_utf8_lossy(&m.stdout).contains("merged") {
            "merged"
        } else {
            "rewritten"
        };
        let rows = rt.block_on(gdx_lake::read::row_count(&current))?;
        anyhow::ensure!(rows == live, "current holds {rows} rows, expected {live}");
        lines.push(format!(
            "  {n:>9} keys  {:>5}% = {:>7} changes, {how:<9} {:>7.2} s  {:>10.2}x the full fold  peak RSS {:>5.0} MiB",
            share * 100.0,
            changes.len(),
            m.wall.as_secs_f64(),
            m.wall.as_secs_f64() / full.wall.as_secs_f64(),
            m.peak_mib
        ));
    }
    // The merged state checked against DuckDB's latest-per-key over every event file.
    let gdx_now = rt
        .block_on(gdx_lake::read::first_row_text(&current, check))?
        .unwrap_or_default();
    if duck.is_some()
        && let Some(d) = duck_latest(tmp.path(), &parquet_files(&events_dir)?, &memory, "all")?
    {
        lines.push(format!(
            "  {n:>9} keys  after the changes: DuckDB over all {} event files{}",
            parquet_files(&events_dir)?.len(),
            same_answer(&gdx_now, &d.checks[0])?
        ));
    }
    if trickle && args.trickle_seconds > 0 {
        lines.push(rt.block_on(trickle_run(&lake, n, seq, args))?);
    }
    Ok(lines)
}

/// DuckDB's `current` (latest upsert per key) of `files`, written to Parquet and checked.
fn duck_latest(
    dir: &std::path::Path,
    files: &[std::path::PathBuf],
    memory: &str,
    tag: &str,
) -> anyhow::Result<Option<super::DuckRun>> {
    let out = dir.join(format!("duckdb_current_{tag}.parquet"));
    let list = files
        .iter()
        .map(|f| format!("'{}'", f.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let cores = cores();
    let sql = format!(
        "set memory_limit = '{memory}MB'; set threads = {cores}; \
         copy (select * exclude (_op) from read_parquet([{list}]) \
         qualify row_number() over (partition by _key order by _event_time desc, _partition desc, _offset desc) = 1 \
         and _op = 'upsert') to '{}' (format parquet);",
        out.display()
    );
    let check = check_sql(
        &format!("read_parquet('{}')", out.display()),
        "_key",
        "_offset",
    );
    duckdb(dir, &sql, &[check])
}

/// A steady trickle of `rate` changes a second into the table for the configured seconds,
/// folded back to back as they come: how long a change waits before it is in `current`.
async fn trickle_run(
    lake: &LakeLocation,
    n: u64,
    mut seq: i64,
    args: &BenchFoldArgs,
) -> anyhow::Result<String> {
    let ds = district::catalog()
        .get(DATASET)
        .context("district dataset")?
        .clone();
    let (rate, seconds) = (args.trickle_rate.max(1) as u64, args.trickle_seconds);
    eprintln!("trickle: {rate} changes/s for {seconds} s, folded as they come");
    let writer_lake = lake.clone();
    let writer = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut round = 0u64;
        while started.elapsed().as_secs() < seconds {
            tick.tick().await;
            let changes: Vec<Ev> = (0..rate)
                .map(|j| Ev {
                    i: (round * rate + j) * 7_919 % n,
                    rev: (2 + round % 200) as u8,
                    delete: false,
                    seq: seq + j as i64,
                })
                .collect();
            seq += rate as i64;
            round += 1;
            write(&writer_lake, &changes).await?;
        }
        anyhow::Ok(round)
    });
    let opts = gdx_lake::fold::FoldOptions {
        memory_limit: args.memory_mb << 20,
        ..gdx_lake::fold::FoldOptions::default()
    };
    let mut lags = Vec::new();
    let (mut merged, mut folds) = (0usize, 0usize);
    while !writer.is_finished() {
        let r = gdx_lake::fold::fold(lake, &ds, &opts).await?;
        if r.up_to_date() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        folds += 1;
        merged += r.merged as usize;
        lags.extend(r.lag_seconds);
    }
    let rounds = writer.await??;
    let last = gdx_lake::fold::fold(lake, &ds, &opts).await?;
    lags.extend(last.lag_seconds);
    lags.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        lags.get(((lags.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(format!(
        "  {n:>9} keys  trickle {rate}/s for {seconds} s ({rounds} commits): {folds} folds ({merged} merged); \
         commit → in current: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        pick(0.5),
        pick(0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    ))
}

/// " — same answer (rows, distinct keys, …)" when both engines' checks agree; an error
/// otherwise (a ratio of different work means nothing).
pub(super) fn same_answer(gdx: &str, duck: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        gdx == duck,
        "gdx and DuckDB answered differently (count, distinct keys, min, max, sum): gdx {gdx:?}, DuckDB {duck:?}"
    );
    Ok(format!("; same answer: {gdx}"))
}

/// The Parquet files directly in `dir`.
fn parquet_files(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    out.sort();
    Ok(out)
}
