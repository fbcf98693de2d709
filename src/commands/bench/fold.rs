//! `gdx bench fold`: folding N keys of household registrations into `current`, its memory,
//! and DuckDB doing the same latest-per-key over the same Parquet files, side by side.
//!
//! Data flow: N synthetic (valid-ID, realistic-width) household records written as ingest
//! writes them (events table, 8 Kafka partitions, commits of 200k rows) → `gdx lake fold` as
//! a child process under `--memory-mb` (time, peak RSS) → 1 % updates and 0.1 % deletes
//! appended → the incremental fold (time, peak RSS) → DuckDB: `qualify row_number() … = 1`
//! over the initial events' Parquet files, written to Parquet (time, peak RSS).

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
    let tmp = tempfile::tempdir()?;
    let lake_dir = tmp.path().join("lake");
    let lake = LakeLocation::parse(lake_dir.to_str().context("temp dir is not UTF-8")?)?;
    let rt = crate::commands::ingest::runtime()?;
    let n = args.keys as u64;
    eprintln!("writing {n} household registrations as events");
    let started = std::time::Instant::now();
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
    eprintln!("  {:.1} s", started.elapsed().as_secs_f64());
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
    eprintln!("full fold of {n} keys (--memory-mb {memory})");
    let full = measure(&mut fold_cmd()?)?;

    let current = lake.current(
        &district::catalog()
            .get(DATASET)
            .context("district dataset")?
            .id,
    );
    let rows = rt.block_on(gdx_lake::read::row_count(&current))?;
    anyhow::ensure!(rows == n, "current holds {rows} rows, expected {n}");
    // The state after the full fold (of the events DuckDB reads below), to check its answer.
    let gdx_check = rt
        .block_on(gdx_lake::read::first_row_text(
            &current,
            "select count(*), count(distinct _key), min(_key), max(_key), sum(_offset) from t",
        ))?
        .unwrap_or_default();

    // 1 % of the keys change, 0.1 % are deleted.
    let changes: Vec<Ev> = (0..n / 100)
        .map(|k| k * 100 + 7)
        .enumerate()
        .map(|(j, i)| Ev {
            i,
            rev: 1,
            delete: j % 10 == 0,
            seq: n as i64 + j as i64,
        })
        .collect();
    let changed = changes.len();
    rt.block_on(write(&lake, &changes))?;
    eprintln!("incremental fold of {changed} changes");
    let incremental = measure(&mut fold_cmd()?)?;
    let deleted = changes.iter().filter(|e| e.delete).count() as u64;
    let rows = rt.block_on(gdx_lake::read::row_count(&current))?;
    anyhow::ensure!(
        rows == n - deleted,
        "current holds {rows} rows after the changes, expected {}",
        n - deleted
    );

    eprintln!(
        "DuckDB: latest per key over the same {} files",
        initial_files.len()
    );
    let out = tmp.path().join("duckdb_current.parquet");
    let files = initial_files
        .iter()
        .map(|f| format!("'{}'", f.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let cores = cores();
    let sql = format!(
        "set memory_limit = '{memory}MB'; set threads = {cores}; \
         copy (select * exclude (_op) from read_parquet([{files}]) \
         qualify row_number() over (partition by _key order by _event_time desc, _partition desc, _offset desc) = 1 \
         and _op = 'upsert') to '{}' (format parquet);",
        out.display()
    );
    let duck_check = check_sql(
        &format!("read_parquet('{}')", out.display()),
        "_key",
        "_offset",
    );
    let duck = duckdb(tmp.path(), &sql, &[duck_check])?;

    println!(
        "fold benchmark: {n} keys of {DATASET}, {cores} cores (both engines {cores} threads), --memory-mb {memory}"
    );
    println!(
        "  gdx full fold          {:>8.1} s  {:>10.0} events/s  peak RSS {:>6.0} MiB",
        full.wall.as_secs_f64(),
        n as f64 / full.wall.as_secs_f64(),
        full.peak_mib
    );
    println!(
        "  gdx incremental fold   {:>8.1} s  {:>10} changes   peak RSS {:>6.0} MiB",
        incremental.wall.as_secs_f64(),
        changed,
        incremental.peak_mib
    );
    match duck {
        Some(d) => println!(
            "  DuckDB {} latest-per-key {:>6.1} s  {:>10.0} events/s  peak RSS {:>6.0} MiB  (gdx/DuckDB time {:.2}x; DuckDB's time excludes Python start and import){}",
            d.version,
            d.seconds,
            n as f64 / d.seconds,
            d.peak_mib,
            full.wall.as_secs_f64() / d.seconds,
            same_answer(&gdx_check, &d.checks[0])?
        ),
        None => println!("  DuckDB: not installed (python3 -m pip install duckdb)"),
    }
    Ok(ExitCode::SUCCESS)
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
