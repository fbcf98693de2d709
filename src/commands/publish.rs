//! `gdx publish`: validate a feed file and produce its valid lines.

use std::process::ExitCode;

use anyhow::Context;
use gdx_ingest::publish::{Mode, publish_file};
use rdkafka::ClientConfig;
use rdkafka::producer::BaseProducer;

use crate::cli::PublishArgs;

pub(crate) fn producer(brokers: &str) -> anyhow::Result<BaseProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("enable.idempotence", "true")
        .create()
        .context("creating the Kafka producer")
}

pub(crate) fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let catalog = super::load_catalog(&args.source)?;
    let Some(ds) = catalog.get(&args.dataset) else {
        anyhow::bail!(
            "no dataset {:?} in the catalog (see `gdx catalog list`)",
            args.dataset
        );
    };
    let p = producer(&args.brokers)?;
    let report = publish_file(&p, ds, &args.file, Mode::Validate, None, &|_| {})?;
    for (line, why) in report.rejected.iter().take(50) {
        println!("{}:{line}: rejected: {why}", args.file.display());
    }
    if report.rejected.len() > 50 {
        println!("… and {} more rejected lines", report.rejected.len() - 50);
    }
    println!(
        "{}: {} produced to {}, {} rejected",
        args.file.display(),
        report.produced,
        ds.topic,
        report.rejected.len()
    );
    Ok(if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
