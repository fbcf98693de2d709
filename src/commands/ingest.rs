//! `gdx ingest`: ingest workers until SIGTERM / Ctrl-C, then flush, commit and exit.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use gdx_catalog::Catalog;
use gdx_ingest::broker::EmbeddedBroker;
use gdx_ingest::worker::{self, WorkerConfig, WorkerStats};
use gdx_lake::LakeLocation;
use gdx_lake::background::{Background, BackgroundConfig};
use tokio::runtime::Runtime;

use crate::cli::{IngestArgs, WorkerArgs};

/// The I/O runtime: lake reads and commits run here; Kafka polling and decoding run on the
/// workers' own threads.
pub(crate) fn runtime() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gdx-io")
        .build()
        .context("starting the I/O runtime")
}

pub(crate) fn worker_config(brokers: &str, lake: LakeLocation, w: &WorkerArgs) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(brokers, lake);
    cfg.group = w.group.clone();
    cfg.job = w.job.clone();
    cfg.flush_rows = w.flush_rows.max(1);
    cfg.flush_interval = Duration::from_millis(w.flush_ms.max(10));
    cfg.session_timeout = Duration::from_millis(w.session_timeout_ms.max(1_000));
    cfg
}

type WorkerResult = gdx_ingest::worker::Result<(WorkerStats, Vec<worker::Error>)>;

/// Named worker threads sharing one stop flag.
pub(crate) struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<WorkerResult>>,
}

impl Workers {
    pub(crate) fn start(
        cfg: &WorkerConfig,
        n: usize,
        catalog: Arc<Catalog>,
        rt: &Runtime,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for i in 0..n.max(1) {
            let (cfg, catalog, stop, handle) = (
                cfg.clone(),
                catalog.clone(),
                stop.clone(),
                rt.handle().clone(),
            );
            let h = std::thread::Builder::new()
                .name(format!("ingest-worker-{i}"))
                .spawn(move || worker::run(&cfg, catalog, handle, &stop))
                .context("starting a worker thread")?;
            handles.push(h);
        }
        Ok(Self { stop, handles })
    }

    /// Whether any worker has ended on its own (an error).
    pub(crate) fn any_finished(&self) -> bool {
        self.handles.iter().any(JoinHandle::is_finished)
    }

    /// Asks every worker to flush and stop; returns the summed stats and the alarms.
    pub(crate) fn stop(self) -> anyhow::Result<(WorkerStats, Vec<worker::Error>)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = WorkerStats::default();
        let mut alarms = Vec::new();
        let mut failure = None;
        for h in self.handles {
            match h.join() {
                Ok(Ok((s, a))) => {
                    total.messages += s.messages;
                    total.skipped_duplicates += s.skipped_duplicates;
                    total.rows += s.rows;
                    total.dead_letters += s.dead_letters;
                    total.commits += s.commits;
                    alarms.extend(a);
                }
                Ok(Err(e)) => failure = Some(anyhow::Error::new(e).context("ingest worker failed")),
                Err(_) => failure = Some(anyhow::anyhow!("ingest worker panicked")),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok((total, alarms)),
        }
    }
}

/// Blocks until SIGTERM or Ctrl-C, or until `done()` turns true (checked every 200 ms).
pub(crate) fn wait_for_shutdown(rt: &Runtime, done: impl Fn() -> bool) {
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => if done() { break },
            }
        }
    });
}

pub(crate) fn print_stats(stats: &WorkerStats, alarms: &[worker::Error]) {
    println!(
        "ingest: {} messages, {} event rows, {} dead letters, {} commits, {} already in the lake (skipped)",
        stats.messages, stats.rows, stats.dead_letters, stats.commits, stats.skipped_duplicates
    );
    for a in alarms {
        println!("ALARM: {a}");
    }
}

/// Ingest workers on `brokers` landing runs within a second, and behind them the background
/// fold and profile builds (profiles every 10 s; maintenance as `background` says), as
/// `gdx serve` and `gdx demo` run them.
pub(crate) fn ingest_and_fold(
    rt: &Runtime,
    brokers: &str,
    lake: &LakeLocation,
    catalog: &Arc<Catalog>,
    w: &WorkerArgs,
    background: BackgroundConfig,
) -> anyhow::Result<(Workers, Background)> {
    let mut cfg = worker_config(brokers, lake.clone(), w);
    cfg.flush_interval = cfg.flush_interval.min(Duration::from_secs(1));
    let workers = Workers::start(&cfg, w.workers, catalog.clone(), rt)?;
    let background = Background::start(
        rt.handle().clone(),
        lake.clone(),
        catalog.clone(),
        BackgroundConfig {
            profiles_interval: Duration::from_secs(10),
            ..background
        },
    )
    .context("starting the background fold")?;
    Ok((workers, background))
}

/// The Kafka cluster to use: `given`, or an embedded broker started here (kept alive by the
/// returned handle; its address printed as `broker: HOST:PORT`).
pub(crate) fn brokers_or_embedded(
    given: &Option<String>,
    catalog: &gdx_catalog::Catalog,
    partitions: i32,
) -> anyhow::Result<(Option<EmbeddedBroker>, String)> {
    Ok(match given {
        Some(b) => (None, b.clone()),
        None => {
            let e = EmbeddedBroker::start(1, catalog, partitions)
                .context("starting the embedded broker")?;
            let brokers = e.bootstrap();
            println!("broker: {brokers}");
            (Some(e), brokers)
        }
    })
}

pub(crate) fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let catalog = Arc::new(super::load_catalog(&args.source)?);
    let lake = super::open_lake(&args.lake)?;
    let rt = runtime()?;
    if let Some(addr) = args.metrics {
        let _in_runtime = rt.enter();
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
        println!("metrics: http://{addr}/metrics");
    }
    let (_embedded, brokers) =
        brokers_or_embedded(&args.brokers, &catalog, args.worker.partitions)?;
    println!("lake: {lake}");
    let cfg = worker_config(&brokers, lake.clone(), &args.worker);
    let workers = Workers::start(&cfg, args.worker.workers, catalog.clone(), &rt)?;
    let background = match args.fold {
        true => Some(
            Background::start(
                rt.handle().clone(),
                lake,
                catalog,
                BackgroundConfig::default(),
            )
            .context("starting the background fold")?,
        ),
        false => None,
    };
    wait_for_shutdown(&rt, || workers.any_finished());
    // Shutdown order: ingest flushes and commits, then the last fold and profile build.
    let (stats, alarms) = workers.stop()?;
    print_stats(&stats, &alarms);
    if let Some(bg) = background {
        let bg = bg.stop();
        println!(
            "fold: {} rounds, {} dataset folds, {} profile builds, {} tables compacted, {} files vacuumed, {} errors",
            bg.fold_rounds,
            bg.folds,
            bg.profile_builds,
            bg.tables_compacted,
            bg.files_vacuumed,
            bg.errors
        );
    }
    Ok(if alarms.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
