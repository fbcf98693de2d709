//! `gdx scenario rewards run | issue | decide | firms | disburse | publish | reconcile`: 云兑现
//! from a terminal, as the operator.
//!
//! Data flow: lake + catalog → a [`gdx_lake::TableRegistry`] and the rewards ledger → the
//! step ([`gdx_exchange::scenarios::rewards`]: a preview over the lake, a policy issued, a
//! decision, the disbursement and its bank batch, the bank's return file reconciled), each
//! one commit of the ledger → its report as JSON on stdout.

use std::process::ExitCode;

use anyhow::Context;
use gdx_exchange::scenarios::rewards::{RewardPolicy, bank, ledger, notify, preview, steps};

use super::ingest::runtime;
use super::projects::operator_session;
use super::{load_catalog, open_lake};
use crate::cli::RewardsCommand;

/// Who the ledger says made a step from the command line.
const OPERATOR: &str = "operator";

/// One report as a JSON line on stdout.
macro_rules! print {
    ($v:expr) => {{
        println!("{}", serde_json::to_string($v)?);
        anyhow::Ok(())
    }};
}

pub(crate) fn rewards(cmd: RewardsCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match cmd {
        RewardsCommand::Run {
            policy,
            as_of,
            lake,
        } => {
            let location = open_lake(&lake.lake)?;
            // A policy file, or the id of a policy issued into the ledger.
            let policy = if policy.is_file() {
                let text = std::fs::read_to_string(&policy)
                    .with_context(|| format!("reading {}", policy.display()))?;
                RewardPolicy::parse(&text).with_context(|| format!("{}", policy.display()))?
            } else {
                let id = policy.to_string_lossy().into_owned();
                let ledger = rt.block_on(ledger::load(&location))?;
                steps::policy_of(&ledger, &id).with_context(|| {
                    format!(
                        "--policy {id}: neither a policy file nor a policy issued into the ledger"
                    )
                })?
            };
            let day = as_of.map_or_else(gdx_lake::sql::time_travel::district_today, |a| a.date());
            let report = rt.block_on(async {
                let session = operator_session(&lake, as_of).await?;
                anyhow::Ok(preview(&session, &location, &policy, day).await?)
            })?;
            print!(&report)?;
        }
        RewardsCommand::Issue { files, lake } => {
            let location = open_lake(&lake.lake)?;
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let report = rt
                    .block_on(steps::issue(&location, &text, OPERATOR))
                    .with_context(|| format!("{}", f.display()))?;
                print!(&report)?;
            }
        }
        RewardsCommand::Decide {
            policy,
            as_of,
            lake,
        } => {
            let day = as_of.unwrap_or_else(gdx_lake::sql::time_travel::district_today);
            let report = rt.block_on(async {
                let catalog = load_catalog(&lake.source)?;
                let location = open_lake(&lake.lake)?;
                let registry = gdx_lake::TableRegistry::open(&location, &catalog).await?;
                anyhow::Ok(steps::decide(&registry, &location, &policy, day, OPERATOR).await?)
            })?;
            print!(&report)?;
        }
        RewardsCommand::Firms { policy, lake } => {
            let location = open_lake(&lake.lake)?;
            let ledger = rt.block_on(ledger::load(&location))?;
            for f in steps::firms(&ledger, &policy)? {
                print!(&f)?;
            }
        }
        RewardsCommand::Disburse { policy, out, lake } => {
            let location = open_lake(&lake.lake)?;
            let report = rt.block_on(bank::disburse(&location, &policy, OPERATOR))?;
            if let Some(out) = out {
                std::fs::write(&out, bank::batch_csv(&report.batch))
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            print!(&report)?;
        }
        RewardsCommand::Publish { brokers, lake } => {
            let location = open_lake(&lake.lake)?;
            let sink = std::sync::Arc::new(super::outcomes::KafkaOutcomes::new(&brokers)?);
            let report = rt.block_on(notify::publish(&location, sink))?;
            print!(&report)?;
        }
        RewardsCommand::Reconcile { file, lake } => {
            let location = open_lake(&lake.lake)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let report = rt.block_on(bank::reconcile(&location, &text, OPERATOR, |_| true))?;
            print!(&report)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
