//! Command-line definitions (clap derive). Every flag can also be set from the environment
//! as `GDX_<FLAG>`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// gdx — event-sourced government data lake and data-sharing exchange.
///
/// Department systems stream records into Kafka; gdx lands every event exactly once in a
/// Delta Lake, folds events into current state and profiles, and serves shared data through
/// a guarded exchange. Today's commands: the catalog, identifier checks and the synthetic
/// district simulator.
#[derive(Debug, Parser)]
#[command(name = "gdx", version, about, long_about)]
pub(crate) struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `gdx=debug`). Logs go to stderr and
    /// never contain field values of graded data.
    #[arg(long, global = true, env = "GDX_LOG", default_value = "warn")]
    pub(crate) log: String,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Browse and validate the data catalog (datasets, fields, grading, sharing types).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Check coded identifiers (resident ID, USCC, bank card, mobile).
    #[command(subcommand)]
    Id(IdCommand),
    /// Generate the synthetic district: one JSONL feed per dataset plus the ground truth.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CatalogSource {
    /// Catalog directory of dataset TOML files; the built-in district catalog when not given.
    #[arg(long, env = "GDX_CATALOG")]
    pub(crate) catalog: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub(crate) enum Format {
    /// Aligned text for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// List the datasets: id, name, provider, level, sharing and open type, field count.
    List {
        #[command(flatten)]
        source: CatalogSource,
        /// Output format.
        #[arg(long, env = "GDX_FORMAT", value_enum, default_value_t)]
        format: Format,
    },
    /// Show one dataset: its catalogue items, technical contract and every graded field.
    Show {
        /// Dataset id, e.g. ps.household_registration.
        id: String,
        #[command(flatten)]
        source: CatalogSource,
        #[arg(long, env = "GDX_FORMAT", value_enum, default_value_t)]
        format: Format,
    },
    /// Validate a catalog directory (violations block, warnings report). Exit status 1 when
    /// there is any violation.
    Validate {
        /// Catalog directory; the built-in district catalog when not given.
        dir: Option<PathBuf>,
        /// The previously published catalog: schema changes against it must be additive
        /// (nullable fields added) unless the new version says `breaking = true`.
        #[arg(long, env = "GDX_BASELINE")]
        baseline: Option<PathBuf>,
        /// Also print warnings.
        #[arg(long, env = "GDX_WARNINGS")]
        warnings: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum IdKindArg {
    ResidentId,
    Uscc,
    BankCard,
    Mobile,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IdCommand {
    /// Say for each value whether it is a valid identifier and, if not, why. The kind is
    /// guessed from the shape unless --kind is given. Exit status 0 when every value is
    /// valid, 1 otherwise.
    Check {
        /// Values to check (full-width digits, lowercase x, spaces and dashes are accepted).
        #[arg(required = true)]
        values: Vec<String>,
        /// Check every value as this kind.
        #[arg(long, env = "GDX_ID_KIND", value_enum)]
        kind: Option<IdKindArg>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Output directory: `<topic>.jsonl` per dataset and the ground truth in `_truth/`.
    #[arg(long, env = "GDX_OUT")]
    pub(crate) out: PathBuf,
    /// Residents registered at the start of the window.
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 10_000)]
    pub(crate) people: usize,
    /// Enterprises registered in the district.
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 1_000)]
    pub(crate) enterprises: usize,
    /// Random seed: the same seed gives byte-identical output.
    #[arg(long, env = "GDX_SEED", default_value_t = 42)]
    pub(crate) seed: u64,
    /// District code: 420106 武昌区, 440303 罗湖区, 440310 坪山区, 440604 禅城区, 510113 青白江区.
    #[arg(long, env = "GDX_DISTRICT", default_value_t = 420106)]
    pub(crate) district: u32,
    /// First day of the simulated window.
    #[arg(long, env = "GDX_START", default_value = "2025-01-01")]
    pub(crate) start: NaiveDate,
    /// Last day of the simulated window.
    #[arg(long, env = "GDX_END", default_value = "2026-10-31")]
    pub(crate) end: NaiveDate,
    /// Share of records altered by noise (typos, full-width digits, legacy IDs, missing
    /// fields, wrong check digits); 0 for clean feeds.
    #[arg(long, env = "GDX_NOISE", default_value_t = 0.002)]
    pub(crate) noise: f64,
    /// Months of elderly allowance payments at the end of the window.
    #[arg(long, env = "GDX_PAYMENT_MONTHS", default_value_t = 6)]
    pub(crate) payment_months: u32,
    #[command(flatten)]
    pub(crate) source: CatalogSource,
    /// Do not draw a progress bar.
    #[arg(long, env = "GDX_QUIET")]
    pub(crate) quiet: bool,
}
