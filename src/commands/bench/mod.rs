//! `gdx bench …`: benchmarks that compare side by side in one run (ratios: these machines
//! are noisy), and the helpers they share to measure a child process.

mod fold;
mod ingest;
mod policy;
mod profiles;
mod stages;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

pub(crate) use fold::fold;
pub(crate) use ingest::ingest;
pub(crate) use policy::policy;
pub(crate) use profiles::profiles;

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
    let _ = out_t.join();
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
    })
}

/// This binary, as a command.
fn gdx() -> anyhow::Result<Command> {
    Ok(Command::new(std::env::current_exe()?))
}

const DUCKDB_RUNNER: &str =
    "import sys, duckdb\ncon = duckdb.connect()\ncon.execute(open(sys.argv[1]).read())\n";

fn python_has_duckdb() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `sql` in DuckDB (the Python package, installed from PyPI when missing) as a child
/// process; `None` when DuckDB cannot be had on this machine.
fn duckdb(dir: &std::path::Path, sql: &str) -> anyhow::Result<Option<Measured>> {
    if !python_has_duckdb() {
        eprintln!("installing DuckDB from PyPI (python3 -m pip install duckdb)");
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "duckdb"])
            .status();
        if !python_has_duckdb() {
            return Ok(None);
        }
    }
    let runner = dir.join("duckdb_runner.py");
    let script = dir.join("duckdb.sql");
    std::fs::write(&runner, DUCKDB_RUNNER)?;
    std::fs::write(&script, sql)?;
    measure(Command::new("python3").arg(&runner).arg(&script)).map(Some)
}
