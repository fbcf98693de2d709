//! Keeping `current` and the profiles up to date behind ingest.
//!
//! Data flow: a named thread (`gdx-lake-fold`) drives a loop on the I/O runtime → every
//! `fold_interval`: fold every dataset ([`crate::fold::fold_all`], one sort at a time) → when
//! a fold changed something and `profiles_interval` has passed since the last build: rebuild
//! the profiles → every `maintenance_interval`, right after a fold: compaction, checkpoints
//! and vacuum of every table → on stop: one last fold and, if anything changed since the last
//! build, one last profile build, so a clean shutdown leaves `current` and the profiles
//! caught up with everything ingest committed. Errors are logged (without data) and counted;
//! the next round tries again.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gdx_catalog::Catalog;
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::LakeLocation;
use crate::fold::{FoldOptions, fold_all};
use crate::maintenance::{DEFAULT_TARGET_FILE_SIZE, lake_tables, optimize, vacuum};
use crate::profiles::{BuildOptions, build};

/// How often the background work runs.
#[derive(Debug, Clone)]
pub struct BackgroundConfig {
    pub fold_interval: Duration,
    /// At most one profile build per interval (builds read every current table).
    pub profiles_interval: Duration,
    /// Compaction, checkpoints and vacuum of every table (None: never).
    pub maintenance_interval: Option<Duration>,
    /// Files no version of the last `retention` references are vacuumed.
    pub retention: chrono::Duration,
    pub memory_limit: usize,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            fold_interval: Duration::from_secs(2),
            profiles_interval: Duration::from_secs(30),
            maintenance_interval: Some(Duration::from_secs(3600)),
            retention: crate::maintenance::DEFAULT_RETENTION,
            memory_limit: crate::engine::DEFAULT_MEMORY_LIMIT,
        }
    }
}

/// What the background work did.
#[derive(Debug, Clone, Default)]
pub struct BackgroundStats {
    pub fold_rounds: u64,
    /// Dataset folds that changed `current`.
    pub folds: u64,
    pub profile_builds: u64,
    /// Tables compacted (files rewritten) and files vacuumed.
    pub tables_compacted: u64,
    pub files_vacuumed: u64,
    pub errors: u64,
    /// Per incremental fold: seconds from the oldest events commit it took in to its commit
    /// (the most recent 10,000).
    pub lags: Vec<f64>,
}

impl BackgroundStats {
    /// The `q`-quantile (0..=1) of the fold lags, if any fold was incremental.
    pub fn lag_quantile(&self, q: f64) -> Option<f64> {
        let mut l = self.lags.clone();
        l.sort_by(f64::total_cmp);
        let i = ((l.len() as f64 - 1.0) * q).round() as usize;
        l.get(i).copied()
    }
}

/// The running background work.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    thread: JoinHandle<BackgroundStats>,
}

impl Background {
    /// Starts the loop on a named thread, using `rt` for I/O.
    pub fn start(
        rt: Handle,
        lake: LakeLocation,
        catalog: Arc<Catalog>,
        cfg: BackgroundConfig,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("gdx-lake-fold".into())
            .spawn(move || rt.block_on(run(lake, catalog, cfg, stopped)))?;
        Ok(Self { stop, thread })
    }

    /// Stops after one last fold and profile build; returns what was done.
    pub fn stop(self) -> BackgroundStats {
        let _ = self.stop.send(true);
        self.thread.join().unwrap_or_default()
    }
}

async fn run(
    lake: LakeLocation,
    catalog: Arc<Catalog>,
    cfg: BackgroundConfig,
    mut stopped: watch::Receiver<bool>,
) -> BackgroundStats {
    let mut stats = BackgroundStats::default();
    let fold_opts = FoldOptions {
        memory_limit: cfg.memory_limit,
        ..FoldOptions::default()
    };
    let build_opts = BuildOptions {
        as_of: None,
        memory_limit: cfg.memory_limit,
    };
    let mut dirty = false;
    let mut last_build: Option<Instant> = None;
    let mut last_upkeep = Instant::now();
    loop {
        let stopping = *stopped.borrow();
        stats.fold_rounds += 1;
        match fold_all(&lake, catalog.datasets(), &fold_opts).await {
            Ok(reports) => {
                let changed = reports
                    .iter()
                    .filter(|r| r.events_version.is_some() && !r.up_to_date())
                    .count();
                stats.folds += changed as u64;
                stats
                    .lags
                    .extend(reports.iter().filter_map(|r| r.lag_seconds));
                let excess = stats.lags.len().saturating_sub(10_000);
                stats.lags.drain(..excess);
                dirty |= changed > 0;
            }
            Err(e) => {
                stats.errors += 1;
                tracing::warn!(error = %e.log_safe(), "background fold failed; retrying next round");
            }
        }
        let due = last_build.is_none_or(|t| t.elapsed() >= cfg.profiles_interval);
        if dirty && (due || stopping) {
            match build(&lake, &catalog, &build_opts).await {
                Ok(_) => {
                    stats.profile_builds += 1;
                    dirty = false;
                    last_build = Some(Instant::now());
                }
                Err(e) => {
                    stats.errors += 1;
                    tracing::warn!(error = %e.log_safe(), "profile build failed; retrying next round");
                }
            }
        }
        if let Some(every) = cfg.maintenance_interval
            && !stopping
            && last_upkeep.elapsed() >= every
        {
            // After the fold above, so the next fold still reads only new event files.
            upkeep(&lake, &catalog, &cfg, &mut stats).await;
            last_upkeep = Instant::now();
        }
        if stopping {
            return stats;
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.fold_interval) => {}
            _ = stopped.changed() => {}
        }
    }
}

async fn upkeep(
    lake: &LakeLocation,
    catalog: &Catalog,
    cfg: &BackgroundConfig,
    stats: &mut BackgroundStats,
) {
    for table in lake_tables(lake, catalog) {
        let name = &table.name;
        match optimize(&table, DEFAULT_TARGET_FILE_SIZE).await {
            Ok(Some(r)) if r.files_removed > 0 => stats.tables_compacted += 1,
            Ok(_) => {}
            Err(e) => {
                stats.errors += 1;
                tracing::warn!(table = %name, error = %e.log_safe(), "compaction failed");
            }
        }
        match vacuum(&table, cfg.retention).await {
            Ok(Some(r)) => stats.files_vacuumed += r.files_deleted as u64,
            Ok(None) => {}
            Err(e) => {
                stats.errors += 1;
                tracing::warn!(table = %name, error = %e.log_safe(), "vacuum failed");
            }
        }
    }
}
