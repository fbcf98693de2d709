//! `gdx scenario allowance run | publish`: the elderly allowance's monthly run, and the
//! publication of its outcomes, from a terminal or a scheduler.
//!
//! Data flow: lake + catalog → a [`gdx_lake::TableRegistry`] → [`run`] (the lake as of the
//! date, the ledger, one commit) → with `--brokers`, [`publish`] (every run not published
//! yet: notifications and payment facts, each once) → one JSON line on stdout: the run's
//! report, with what was published under `published`.

use std::process::ExitCode;
use std::sync::Arc;

use gdx_exchange::scenarios::allowance::AllowancePolicy;
use gdx_exchange::scenarios::allowance::publish::{PublishReport, publish};
use gdx_exchange::scenarios::allowance::run::{RunRequest, run};
use gdx_lake::LakeLocation;
use gdx_lake::sql::AsOf;

use super::ingest::runtime;
use super::load_catalog;
use super::outcomes::KafkaOutcomes;
use crate::cli::{AllowanceCommand, PublishOutcomesArgs};

async fn publish_with(
    lake: &LakeLocation,
    args: &PublishOutcomesArgs,
) -> anyhow::Result<Option<PublishReport>> {
    let Some(brokers) = &args.brokers else {
        return Ok(None);
    };
    let pseudonyms = super::pseudonym_key(args.pseudonym_key_file.as_deref())?;
    let sink = Arc::new(KafkaOutcomes::new(brokers)?);
    Ok(Some(publish(lake, sink, pseudonyms.as_ref()).await?))
}

pub(crate) fn allowance(cmd: AllowanceCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match cmd {
        AllowanceCommand::Run {
            month,
            as_of,
            policy,
            publish,
            lake,
        } => {
            let policy = super::policy_file(
                policy.as_deref(),
                AllowancePolicy::builtin,
                AllowancePolicy::parse,
            )?;
            let catalog = load_catalog(&lake.source)?;
            let location = super::open_lake(&lake.lake)?;
            let as_of = match as_of {
                Some(a) => a,
                None => {
                    AsOf::parse(&chrono::Utc::now().to_rfc3339()).map_err(anyhow::Error::msg)?
                }
            };
            let (report, published) = rt.block_on(async {
                let registry = gdx_lake::TableRegistry::open(&location, &catalog).await?;
                let report =
                    run(&registry, &location, &policy, &RunRequest { month, as_of }).await?;
                let published = publish_with(&location, &publish).await?;
                anyhow::Ok((report, published))
            })?;
            let mut out = serde_json::to_value(&report)?;
            if let Some(p) = published {
                out["published"] = serde_json::to_value(p)?;
            }
            println!("{out}");
        }
        AllowanceCommand::Publish { publish, lake } => {
            anyhow::ensure!(
                publish.brokers.is_some(),
                "publishing needs --brokers (or GDX_BROKERS)"
            );
            let location = super::open_lake(&lake.lake)?;
            let report = rt.block_on(publish_with(&location, &publish))?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
