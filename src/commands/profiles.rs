//! `gdx profiles build`: citizen and enterprise profiles from the lake's current state.
//!
//! Data flow: lake + catalog → [`gdx_lake::profiles::build`] (SQL over `current`, or over the
//! state as of a date) → one new Delta version per profile → a line per profile.

use std::process::ExitCode;

use gdx_lake::profiles::{BuildOptions, build};

use super::ingest::runtime;
use super::load_catalog;
use crate::cli::ProfilesCommand;

pub(crate) fn run(cmd: ProfilesCommand) -> anyhow::Result<ExitCode> {
    let ProfilesCommand::Build { as_of, lake } = cmd;
    let catalog = load_catalog(&lake.source)?;
    let location = super::open_lake(&lake.lake)?;
    let rt = runtime()?;
    let started = std::time::Instant::now();
    let opts = BuildOptions {
        as_of,
        memory_limit: lake.memory_mb.max(64) << 20,
    };
    let reports = rt.block_on(build(&location, &catalog, &opts))?;
    for r in &reports {
        println!(
            "profiles.{:<12} {:>10} rows  as of {}  version {}  {:.1} s",
            r.profile,
            r.rows,
            r.as_of,
            r.version.map(|v| v.to_string()).unwrap_or("-".into()),
            r.seconds
        );
    }
    println!("built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
