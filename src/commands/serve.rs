//! `gdx serve`: ingest, the background fold and the exchange in one process.
//!
//! Data flow: Kafka (or the embedded broker) → ingest workers on their threads → the lake →
//! the background fold and profile builds → the exchange's registry refresh picks up each
//! new version → HTTP; the audit chain's head is anchored on the same cluster's `gdx.audit`. Shutdown (SIGTERM, Ctrl-C, or a worker ending): the exchange stops
//! accepting and finishes its in-flight calls and ships its audit, then ingest flushes and
//! commits, then the last fold and profile build.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gdx_lake::TableRegistry;
use gdx_lake::background::BackgroundConfig;

use gdx_exchange::audit::anchor::AUDIT_TOPIC;
use gdx_exchange::scenarios::allowance::publish::NOTIFICATIONS_TOPIC;

use super::anchor::KafkaAnchor;
use super::exchange::{exchange_config, metrics_renderer};
use super::ingest::{brokers_or_embedded, ingest_and_fold, print_stats, runtime};
use crate::cli::ServeArgs;

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let catalog = Arc::new(super::load_catalog(&args.lake.source)?);
    let lake = super::open_lake(&args.lake.lake)?;
    let mut cfg = exchange_config(&args.exchange, &lake, args.lake.memory_mb)?;
    let rt = runtime()?;
    let (embedded, brokers) = brokers_or_embedded(&args.brokers, &catalog, args.worker.partitions)?;
    if let Some(e) = &embedded {
        e.create_topic(AUDIT_TOPIC, 1)
            .context("creating gdx.audit on the embedded broker")?;
        e.create_topic(NOTIFICATIONS_TOPIC, 4)
            .context("creating gdx.notifications on the embedded broker")?;
    }
    cfg.anchor = Some(Arc::new(KafkaAnchor::new(&brokers)?));
    cfg.outcomes = Some(Arc::new(super::outcomes::KafkaOutcomes::new(&brokers)?));
    println!("lake: {lake}");
    let (workers, background) = ingest_and_fold(
        &rt,
        &brokers,
        &lake,
        &catalog,
        &args.worker,
        BackgroundConfig::default(),
    )?;
    let ex = rt.block_on(async {
        let registry = TableRegistry::open(&lake, &catalog).await?;
        anyhow::Ok(gdx_exchange::http::Exchange::start(cfg, registry, metrics_renderer()).await?)
    })?;
    super::exchange::print_addresses(&ex);
    rt.block_on(async {
        let stop = ex.cancellation();
        tokio::select! {
            () = super::exchange::until_signal(&ex) => {}
            () = async {
                while !workers.any_finished() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            } => { stop.cancel(); }
        }
    });
    eprintln!("stopping: the exchange finishes in-flight calls, then ingest flushes and commits");
    rt.block_on(ex.shutdown(Duration::from_secs(30)));
    let (stats, alarms) = workers.stop()?;
    print_stats(&stats, &alarms);
    let bg = background.stop();
    println!(
        "fold: {} rounds, {} dataset folds, {} profile builds, {} errors",
        bg.fold_rounds, bg.folds, bg.profile_builds, bg.errors
    );
    Ok(if alarms.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
