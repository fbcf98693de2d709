//! gdx simulate: the synthetic district. It plays every department system of one district,
//! and depends on the catalog alone, so ingest, the exchange and their tests can all use it.
//!
//! Data flow: [`Config`] (seed, sizes, district, time window, noise) → [`world::World`]
//! (one population: residents, households, enterprises, property, projects) → one
//! projection per catalog dataset (`feeds`), each run on a worker thread with its own
//! seeded stream → events sorted by event time → `<topic>.jsonl` files, one event a line
//! as `{"key": …, "value": {record} | null, "event_time": RFC 3339}` → plus the ground truth
//! in `_truth/` (residents, enterprises, over-payments, the noise applied, and a summary),
//! which tests and scenarios measure their decisions against.
//!
//! Same seed and configuration → byte-identical output, whatever the thread count.

mod economy;
mod emit;
mod entities;
mod entitlements;
mod feed;
mod feeds;
mod generate;
mod life;
pub mod names;
mod property;
mod rng;
mod truth;
mod world;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use chrono::NaiveDate;
use gdx_catalog::Catalog;
use serde::Serialize;

use self::emit::Event;
use self::feed::Feed;
use self::world::World;

/// What the simulator generates.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub seed: u64,
    /// Residents registered at the start of the window (births and arrivals come on top).
    pub people: usize,
    pub enterprises: usize,
    /// Administrative code of the district (see [`names::DISTRICTS`]).
    pub district: u32,
    /// First day of the simulated window.
    pub start: NaiveDate,
    /// Last day of the simulated window (the "today" of the truth).
    pub end: NaiveDate,
    /// Probability that a record is altered by noise (0 = clean feeds).
    pub noise: f64,
    /// How many months of elderly allowance payments the window ends with.
    pub payment_months: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 42,
            people: 10_000,
            enterprises: 1_000,
            district: 420106,
            start: NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
            end: NaiveDate::from_ymd_opt(2026, 10, 31).expect("date"),
            noise: 0.002,
            payment_months: 6,
        }
    }
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the simulator's threads: {0}")]
    Pool(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Config {
    pub fn validate(&self) -> Result<()> {
        if names::district(self.district).is_none() {
            let known: Vec<String> = names::DISTRICTS
                .iter()
                .map(|d| format!("{} {}", d.code, d.name))
                .collect();
            return Err(Error::Config(format!(
                "unknown district {}; known: {}",
                self.district,
                known.join(", ")
            )));
        }
        if self.people == 0 {
            return Err(Error::Config("--people must be at least 1".into()));
        }
        if self.enterprises == 0 {
            return Err(Error::Config("--enterprises must be at least 1".into()));
        }
        if self.end <= self.start + chrono::Duration::days(31) {
            return Err(Error::Config(format!(
                "window {}..{} must span more than a month",
                self.start, self.end
            )));
        }
        if !(0.0..=1.0).contains(&self.noise) {
            return Err(Error::Config(format!(
                "--noise must be between 0 and 1, got {}",
                self.noise
            )));
        }
        Ok(())
    }
}

/// What one dataset's feed holds.
#[derive(Debug, Clone, Serialize)]
pub struct FeedSummary {
    pub topic: String,
    pub file: String,
    pub events: usize,
    pub tombstones: usize,
    pub noised: usize,
    pub bytes: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub config: Config,
    pub feeds: Vec<FeedSummary>,
    /// Catalog datasets the simulator has no projection for (left out).
    pub not_simulated: Vec<String>,
    pub residents: usize,
    pub households: usize,
    pub enterprises: usize,
    pub properties: usize,
    pub seconds: f64,
}

impl Summary {
    pub fn events(&self) -> usize {
        self.feeds.iter().map(|f| f.events).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.feeds.iter().map(|f| f.bytes).sum()
    }
}

/// Progress reporting hooks (a progress bar in the CLI, nothing in tests).
pub trait Progress: Sync {
    fn stage(&self, _what: &str) {}
    fn start(&self, _total: usize) {}
    fn done(&self, _what: &str) {}
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct Quiet;
impl Progress for Quiet {}

/// Generates the district and writes every dataset's feed and the truth under `out`.
pub fn write_district(
    cfg: &Config,
    catalog: &Catalog,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Summary> {
    cfg.validate()?;
    let started = Instant::now();
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_owned(),
        source,
    })?;
    let world = World::generate(cfg.clone(), &|s| progress.stage(s));

    let mut jobs: Vec<Job<'_>> = Vec::new();
    let mut not_simulated = Vec::new();
    for ds in catalog.datasets() {
        match feeds::projection(ds.id.as_str()) {
            Some(p) => jobs.push(Job::Feed(ds, p)),
            None => not_simulated.push(ds.id.to_string()),
        }
    }
    // Heaviest first, so the threads finish together.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.weight()));
    jobs.push(Job::Truth);
    progress.start(jobs.len());

    let results: Mutex<Vec<FeedSummary>> = Mutex::new(Vec::new());
    let noise_log: Mutex<Vec<(String, usize, emit::Noised)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    // A pool of its own (not rayon's global one, which a library must not size); jobs start
    // in order (heaviest first, FIFO), each on whichever thread is free.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("gdx-simulate-{i}"))
        .build()
        .map_err(|e| Error::Pool(e.to_string()))?;
    pool.scope_fifo(|scope| {
        let (world, results, noise_log, failure) = (&world, &results, &noise_log, &failure);
        for job in &jobs {
            scope.spawn_fifo(move |_| {
                if failure.lock().expect("failure").is_some() {
                    return;
                }
                let r = match job {
                    Job::Feed(ds, projection) => {
                        run_feed(world, ds, *projection, out).map(|(summary, noise)| {
                            let label = summary.topic.clone();
                            noise_log.lock().expect("noise log").extend(
                                noise
                                    .into_iter()
                                    .map(|(line, n)| (summary.topic.clone(), line, n)),
                            );
                            results.lock().expect("results").push(summary);
                            label
                        })
                    }
                    Job::Truth => {
                        truth::write_entities(world, out).map(|()| "ground truth".to_owned())
                    }
                };
                match r {
                    Ok(label) => progress.done(&label),
                    Err(e) => {
                        failure.lock().expect("failure").get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    let mut feeds = results.into_inner().expect("results");
    feeds.sort_by(|a, b| a.topic.cmp(&b.topic));
    let mut noise = noise_log.into_inner().expect("noise log");
    noise.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let summary = Summary {
        config: cfg.clone(),
        feeds,
        not_simulated,
        residents: world.people.len(),
        households: world.households.len(),
        enterprises: world.enterprises.len(),
        properties: world.properties.len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    truth::write_noise_and_summary(&world, out, &noise, &summary)?;
    Ok(summary)
}

enum Job<'a> {
    Feed(&'a gdx_catalog::Dataset, feeds::Projection),
    Truth,
}

impl Job<'_> {
    fn weight(&self) -> u32 {
        match self {
            Job::Feed(ds, _) => match ds.id.as_str() {
                "ps.household_registration" => 100,
                "hrss.social_insurance_enrolment" => 90,
                "mca.elderly_allowance_payment" => 80,
                "hrss.employer_headcount" => 70,
                "hrss.pension" => 60,
                _ => 10,
            },
            Job::Truth => 0,
        }
    }
}

type NoiseLines = Vec<(usize, emit::Noised)>;

fn run_feed(
    world: &World,
    ds: &gdx_catalog::Dataset,
    projection: feeds::Projection,
    out: &Path,
) -> Result<(FeedSummary, NoiseLines)> {
    let mut feed = Feed::new(
        ds,
        rng::stream(world.cfg.seed, ds.id.as_str()),
        rng::stream(world.cfg.seed, &format!("noise/{}", ds.id)),
        world.cfg.noise,
    );
    projection(world, &mut feed);
    let mut events: Vec<Event> = feed.into_events();
    events.sort_by_key(|e| e.time);
    let file = format!("{}.jsonl", ds.topic);
    let path = out.join(&file);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut w =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).map_err(io)?);
    let mut buf = String::with_capacity(1 << 20);
    let mut bytes = 0u64;
    let mut noise = Vec::new();
    let mut tombstones = 0;
    for (line, e) in events.iter().enumerate() {
        e.write_line(&mut buf);
        if e.value.is_none() {
            tombstones += 1;
        }
        if let Some(n) = &e.noise {
            noise.push((line + 1, n.clone()));
        }
        if buf.len() > (1 << 20) - 4096 {
            bytes += buf.len() as u64;
            w.write_all(buf.as_bytes()).map_err(io)?;
            buf.clear();
        }
    }
    bytes += buf.len() as u64;
    w.write_all(buf.as_bytes()).map_err(io)?;
    w.flush().map_err(io)?;
    Ok((
        FeedSummary {
            topic: ds.topic.clone(),
            file,
            events: events.len(),
            tombstones,
            noised: noise.len(),
            bytes,
        },
        noise,
    ))
}
