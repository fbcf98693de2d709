//! `gdx simulate`: write the synthetic district's feeds and ground truth, with a progress bar.

use std::process::ExitCode;

use gdx_simulate::{self as simulate, Config, Progress};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::SimulateArgs;

struct Bar(ProgressBar);

impl Progress for Bar {
    fn stage(&self, what: &str) {
        self.0.set_message(format!("generating {what}"));
        self.0.tick();
    }
    fn start(&self, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(0);
        self.0.set_message("writing feeds");
    }
    fn done(&self, what: &str) {
        self.0.inc(1);
        self.0.set_message(format!("wrote {what}"));
    }
}

pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let catalog = super::load_catalog(&args.source)?;
    let cfg = Config {
        seed: args.seed,
        people: args.people,
        enterprises: args.enterprises,
        district: args.district,
        start: args.start,
        end: args.end,
        noise: args.noise,
        payment_months: args.payment_months,
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let bar = Bar(bar);
    let summary = simulate::write_district(&cfg, &catalog, &args.out, &bar)?;
    bar.0.finish_and_clear();
    println!(
        "simulated {} residents in {} households, {} enterprises, {} property certificates (seed {})",
        summary.residents, summary.households, summary.enterprises, summary.properties, cfg.seed
    );
    for f in &summary.feeds {
        println!(
            "  {:<40} {:>9} events {:>6} tombstones {:>6} noised",
            f.file, f.events, f.tombstones, f.noised
        );
    }
    if let Some(brokers) = &args.brokers {
        let p = super::publish::producer(brokers)?;
        let bar = ProgressBar::new(summary.events() as u64);
        if args.quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut done = 0u64;
        for feed in &summary.feeds {
            let ds = catalog
                .get(&feed.topic)
                .expect("feeds come from catalog datasets");
            bar.set_message(feed.topic.clone());
            let r = gdx_ingest::publish::publish_file(
                &p,
                ds,
                &args.out.join(&feed.file),
                gdx_ingest::publish::Mode::AsIs,
                None,
                &|n| bar.set_position(done + n as u64),
            )?;
            done += feed.events as u64;
            println!("  published {} events to {}", r.produced, feed.topic);
        }
        bar.finish_and_clear();
    }
    for id in &summary.not_simulated {
        println!("  {id}: not simulated (no projection for this dataset)");
    }
    println!(
        "{} events, {:.1} MiB in {:.1} s → {} (ground truth in {}/_truth)",
        summary.events(),
        summary.bytes() as f64 / (1024.0 * 1024.0),
        summary.seconds,
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
