//! `gdx bench …`: benchmarks that compare side by side in one run (ratios: these machines
//! are noisy), and the helpers they share to measure a child process.

mod allowance;
mod exchange;
mod fold;
mod ingest;
mod policy;
mod profiles;
mod sql;
mod sql_postgres;
mod stages;
mod verify;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

pub(crate) use allowance::allowance;
pub(crate) use exchange::exchange;
pub(crate) use fold::fold;
pub(crate) use ingest::ingest;
pub(crate) use policy::policy;
pub(crate) use profiles::profiles;
pub(crate) use sql::sql;
pub(crate) use verify::verify;

/// Peak resident set size of a running process, in KiB (Linux `VmHWM`).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// One measured run of a child process.
#[derive(Debug)]
struct Measured {
    wall: Duration,
    peak_mib: f64,
    stdout: Vec<u8>,
}

/// Runs `cmd` to completion, sampling its peak RSS until it exits; fails when it fails.
fn measure(cmd: &mut Command) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id();
    // Drain the pipes on their own threads so a chatty child never blocks.
    let mut out = child.stdout.take().context("child stdout")?;
    let mut err = child.stderr.take().context("child stderr")?;
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut b);
        b
    });
    let mut peak = 0u64;
    let status = loop {
        peak = peak.max(vm_hwm_kib(pid).unwrap_or(0));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if !status.success() {
        anyhow::bail!(
            "{cmd:?} failed: {status}\n{}",
            String::from_utf8_lossy(&stderr)
        );
    }
    Ok(Measured {
        wall,
        peak_mib: peak as f64 / 1024.0,
        stdout,
    })
}

/// This binary, as a command.
fn gdx() -> anyhow::Result<Command> {
    Ok(Command::new(std::env::current_exe()?))
}

/// The cores of this machine, read from it: both engines get as many threads.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Times only the statement (after the interpreter started and imported DuckDB), then runs
/// the check queries and prints one JSON line.
const DUCKDB_RUNNER: &str = r#"import sys, time, json
import duckdb
con = duckdb.connect()
sql = open(sys.argv[1]).read()
started = time.perf_counter()
con.execute(sql)
seconds = time.perf_counter() - started
checks = []
for q in sys.argv[2:]:
    row = con.execute(q).fetchone()
    # Whole numbers print alike in both engines (a sum DuckDB types as a double: 170986.0).
    checks.append(",".join("" if v is None else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in row))
print(json.dumps({"version": duckdb.__version__, "seconds": seconds, "checks": checks}))
"#;

fn python_has_duckdb() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One DuckDB run: the statement's own time, DuckDB's version, the check queries' answers.
#[derive(Debug)]
struct DuckRun {
    seconds: f64,
    version: String,
    checks: Vec<String>,
    /// Of the whole child (the Python interpreter included).
    peak_mib: f64,
}

/// Runs `sql` in DuckDB (the Python package) as a child process, then each of `checks`
/// (one-row queries whose answers are compared with gdx's); `None` when DuckDB is not
/// installed (the bench installs nothing: it says how).
fn duckdb(dir: &std::path::Path, sql: &str, checks: &[String]) -> anyhow::Result<Option<DuckRun>> {
    if !python_has_duckdb() {
        eprintln!(
            "DuckDB is not installed, so the comparison is skipped: python3 -m pip install duckdb"
        );
        return Ok(None);
    }
    let runner = dir.join("duckdb_runner.py");
    let script = dir.join("duckdb.sql");
    std::fs::write(&runner, DUCKDB_RUNNER)?;
    std::fs::write(&script, sql)?;
    let m = measure(
        Command::new("python3")
            .arg(&runner)
            .arg(&script)
            .args(checks),
    )?;
    let out: serde_json::Value = serde_json::from_slice(&m.stdout).with_context(|| {
        format!(
            "DuckDB runner printed {:?}",
            String::from_utf8_lossy(&m.stdout)
        )
    })?;
    Ok(Some(DuckRun {
        seconds: out["seconds"].as_f64().context("seconds")?,
        version: out["version"].as_str().unwrap_or("?").to_owned(),
        checks: out["checks"]
            .as_array()
            .context("checks")?
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_owned())
            .collect(),
        peak_mib: m.peak_mib,
    }))
}

/// `count(*), count(distinct key), min(key), max(key), sum(sum)` of a result, the check both
/// engines answer over their own output.
fn check_sql(from: &str, key: &str, sum: &str) -> String {
    format!(
        "select count(*), count(distinct {key}), min({key}), max({key}), sum({sum}) from {from}"
    )
}
