//! `gdx scenario allowance run`: one monthly run of the elderly allowance, from a terminal
//! or a scheduler.
//!
//! Data flow: lake + catalog → a [`gdx_lake::TableRegistry`] → [`run`] (the lake as of the
//! date, the ledger, one commit) → the run's report as one JSON line on stdout.

use std::process::ExitCode;

use anyhow::Context;
use gdx_exchange::scenarios::allowance::AllowancePolicy;
use gdx_exchange::scenarios::allowance::run::{RunRequest, run};
use gdx_lake::sql::AsOf;

use super::ingest::runtime;
use super::load_catalog;
use crate::cli::AllowanceCommand;

pub(crate) fn allowance(cmd: AllowanceCommand) -> anyhow::Result<ExitCode> {
    let AllowanceCommand::Run {
        month,
        as_of,
        policy,
        lake,
    } = cmd;
    let policy = match &policy {
        None => AllowancePolicy::builtin(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            AllowancePolicy::parse(&text).with_context(|| format!("{}", path.display()))?
        }
    };
    let catalog = load_catalog(&lake.source)?;
    let location = super::open_lake(&lake.lake)?;
    let as_of = match as_of {
        Some(a) => a,
        None => AsOf::parse(&chrono::Utc::now().to_rfc3339()).map_err(anyhow::Error::msg)?,
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let registry = gdx_lake::TableRegistry::open(&location, &catalog).await?;
        anyhow::Ok(run(&registry, &location, &policy, &RunRequest { month, as_of }).await?)
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
