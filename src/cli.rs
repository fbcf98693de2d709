//! Command-line definitions (clap derive). Every flag can also be set from the environment
//! as `GDX_<FLAG>`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

mod rewards;
pub(crate) use rewards::RewardsCommand;

/// gdx — event-sourced government data lake and data-sharing exchange.
///
/// Department systems stream records into Kafka; gdx lands every event exactly once in a
/// Delta Lake, folds events into current state and profiles, and serves shared data through
/// a guarded exchange. Commands today: the catalog, identifier checks, the synthetic district,
/// ingest into the lake, publishing feeds, and the end-to-end demo.
#[derive(Debug, Parser)]
#[command(name = "gdx", version, about, long_about)]
pub(crate) struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `gdx=debug`). Logs go to stderr and
    /// never contain field values of graded data. The default silences three expected library
    /// messages: Delta's probe of a table not created yet, stats skipped for raw bytes, and
    /// the conflict check of a commit that another worker's commit overtook (routine when
    /// several workers append to one table; a real conflict is still an error).
    #[arg(
        long,
        global = true,
        env = "GDX_LOG",
        default_value = "warn,buoyant_kernel::snapshot::builder=off,deltalake_core::writer::stats=error,deltalake_core::kernel::transaction=error"
    )]
    pub(crate) log: String,

    /// Where queries spill sorts and joins beyond their memory budget (rows of the lake, in
    /// clear text): a directory of the process's own, owner-only, removed at the next start.
    /// Default: `spill/` beside a local lake (under the data dir), else `gdx-data/spill`.
    #[arg(long, global = true, env = "GDX_SPILL_DIR")]
    pub(crate) spill_dir: Option<PathBuf>,

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
    /// Generate the synthetic district: one JSONL feed per dataset plus the ground truth;
    /// with --brokers, also publish the feeds to Kafka.
    Simulate(SimulateArgs),
    /// Run ingest workers: Kafka feeds into the Delta lake, exactly once, until SIGTERM or
    /// Ctrl-C (then flush, commit and exit). Without --brokers an embedded broker is started
    /// and its address printed as `broker: HOST:PORT`.
    Ingest(IngestArgs),
    /// Validate a feed file (`<topic>.jsonl`) line by line and produce the valid lines to the
    /// dataset's topic. Exit status 1 when any line was rejected.
    Publish(PublishArgs),
    /// The whole pipeline on embedded defaults: embedded broker, the synthetic district
    /// published as live feeds, ingest into the lake under --data-dir, then a summary.
    Demo(DemoArgs),
    /// Read-only SQL over the lake: every dataset as `<dept>.<dataset>` (current state) and
    /// `<dept>.<dataset>_events`, `profiles.citizen`, `profiles.enterprise`,
    /// `system.dead_letters`, `catalog.datasets`, `catalog.fields`; `table_at('<table>',
    /// <version> | '<timestamp>')` reads a Delta table as it was. Without a query: a prompt.
    Sql(SqlArgs),
    /// Citizen and enterprise profiles.
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Lake upkeep: fold events into current state, compact, vacuum.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Benchmarks, side by side in one run (ratios: these machines are noisy).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Everything in one process: ingest (an embedded broker without --brokers), the
    /// background fold and profile builds, and the exchange over the lake, until SIGTERM or
    /// Ctrl-C (then: stop accepting calls, finish those in flight, flush and commit ingest,
    /// fold once more). Prints `broker: HOST:PORT` (embedded) and `exchange: http://ADDR`.
    Serve(ServeArgs),
    /// The sharing exchange alone over an existing lake (stateless: run several replicas on
    /// one lake): HTTP API with API keys, purposes, grants, masks and a hash-chained audit,
    /// until SIGTERM or Ctrl-C. Prints `exchange: http://ADDR` once it listens (and
    /// `pgwire: ADDR` with `--pg`).
    Exchange(ExchangeArgs),
    /// Who may call the exchange: principals with a department, a role and an API key.
    #[command(subcommand)]
    Principal(PrincipalCommand),
    /// Data-sharing agreements: request, approve, deny, revoke, list.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// The exchange's audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Yes/no verifications through a running exchange (a window's terminal or script):
    /// prints `match` (exit 0) or `no_match` (exit 1); errors exit 2.
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Smart scenarios run over the lake (the elderly allowance's monthly run, major
    /// projects' timelines).
    #[command(subcommand)]
    Scenario(ScenarioCommand),
    /// The policy files of deploy/policies/ (reward policies, the elderly allowance's bands,
    /// project stage limits).
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check policy files (their `policy = "..."` line says which kind): prints what each
    /// holds, or what is wrong with it and the rule it breaks; exit 1 if any is refused.
    Check {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScenarioCommand {
    /// 高龄津贴 without application: monthly runs over the lake into the allowance's ledger.
    #[command(subcommand)]
    Allowance(AllowanceCommand),
    /// 重大项目全生命周期: a major project's timeline, and the projects stuck in a stage.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// 云兑现: enterprise reward policies decided over the lake, disbursed and reconciled.
    #[command(subcommand)]
    Rewards(RewardsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectsCommand {
    /// One project's events across departments in order, with overdue stages, gaps and the
    /// stage it waits for (JSON).
    Timeline {
        /// The project's 投资项目统一代码.
        code: String,
        #[command(flatten)]
        opts: ProjectsArgs,
    },
    /// The projects stuck in a stage: the next stage not recorded past the days the district
    /// allows (one JSON line per project, most overdue first).
    Overdue {
        #[command(flatten)]
        opts: ProjectsArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ProjectsArgs {
    /// Read the lake as of this date (end of day, UTC+8) or RFC 3339 timestamp
    /// (default: now).
    #[arg(long, env = "GDX_AS_OF")]
    pub(crate) as_of: Option<gdx_lake::sql::AsOf>,
    /// Stages and the days allowed for each (default: the built-in
    /// deploy/policies/project_stages.toml).
    #[arg(long, env = "GDX_PROJECT_STAGES")]
    pub(crate) stages: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AllowanceCommand {
    /// Pay a month: as of --as-of, every resident registered in the district, alive and in
    /// a band on the month's first day is paid once (arrears and recoveries for the months
    /// before, back to the ledger's first month or twelve months); notices to who reaches
    /// the first band next month. Repeating a run, or running two at once, pays nobody twice.
    Run {
        /// The month to pay, YYYY-MM.
        #[arg(long, env = "GDX_MONTH")]
        month: String,
        /// Read the lake as of this date (end of day, UTC+8) or RFC 3339 timestamp
        /// (default: now).
        #[arg(long, env = "GDX_AS_OF")]
        as_of: Option<gdx_lake::sql::AsOf>,
        /// Bands and amounts (default: the built-in deploy/policies/elderly_allowance.toml).
        #[arg(long, env = "GDX_ALLOWANCE_POLICY")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        publish: PublishOutcomesArgs,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Publish the runs not published yet: each outcome once on gdx.notifications, each
    /// payment once on mca.elderly_allowance_payment (a publisher killed half-way resends
    /// nothing the topics already hold).
    Publish {
        #[command(flatten)]
        publish: PublishOutcomesArgs,
        #[command(flatten)]
        lake: LakeArgs,
    },
}

#[derive(Debug, Args, Clone)]
pub(crate) struct PublishOutcomesArgs {
    /// Kafka bootstrap servers to publish the outcomes to (a run without them commits to the
    /// ledger only; `publish` needs them).
    #[arg(long, env = "GDX_BROKERS")]
    pub(crate) brokers: Option<String>,
    /// File holding the secret key of keyed pseudonyms (at least 16 bytes): notifications
    /// then name their recipient by pseudonym besides the masked ID.
    #[arg(long, env = "GDX_PSEUDONYM_KEY_FILE")]
    pub(crate) pseudonym_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum VerifyCommand {
    /// 房产证照真伪在线查验: is there one active property certificate with every attribute
    /// given? The way in is --certificate-no, else --owner-id with --owner-name, else
    /// --contract-no.
    PropertyCertificate(VerifyCertificateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyCertificateArgs {
    /// The exchange's address.
    #[arg(long, env = "GDX_EXCHANGE", default_value = "http://127.0.0.1:8080")]
    pub(crate) exchange: String,
    /// The caller's API key (prefer the variable: a flag shows in the process list).
    #[arg(long, env = "GDX_KEY", hide_env_values = true)]
    pub(crate) key: String,
    /// A registered purpose code.
    #[arg(long, env = "GDX_PURPOSE")]
    pub(crate) purpose: String,
    /// The case or application the check is for.
    #[arg(long, env = "GDX_CASE_ID")]
    pub(crate) case_id: String,
    /// The clerk at the window (recorded in the audit).
    #[arg(long, env = "GDX_END_USER")]
    pub(crate) end_user: Option<String>,
    /// 不动产权证书号.
    #[arg(long, env = "GDX_CERTIFICATE_NO")]
    pub(crate) certificate_no: Option<String>,
    /// The owner's resident ID.
    #[arg(long, env = "GDX_OWNER_ID")]
    pub(crate) owner_id: Option<String>,
    #[arg(long, env = "GDX_OWNER_NAME")]
    pub(crate) owner_name: Option<String>,
    /// A housing contract (网签合同) number.
    #[arg(long, env = "GDX_CONTRACT_NO")]
    pub(crate) contract_no: Option<String>,
    /// 不动产坐落.
    #[arg(long, env = "GDX_ADDRESS")]
    pub(crate) address: Option<String>,
    /// Floor area in m² (at most two decimals).
    #[arg(long, env = "GDX_AREA_M2")]
    pub(crate) area_m2: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Kafka bootstrap servers; an embedded broker when not given.
    #[arg(long, env = "GDX_BROKERS")]
    pub(crate) brokers: Option<String>,
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    #[command(flatten)]
    pub(crate) exchange: ExchangeOptions,
}

#[derive(Debug, Args)]
pub(crate) struct ExchangeArgs {
    /// Kafka bootstrap servers: this replica's audit chain head is anchored on their
    /// `gdx.audit` topic (outside the lake) every few seconds and at shutdown.
    #[arg(long, env = "GDX_BROKERS")]
    pub(crate) brokers: Option<String>,
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    #[command(flatten)]
    pub(crate) exchange: ExchangeOptions,
}

/// How the exchange serves (shared by `gdx exchange` and `gdx demo`).
#[derive(Debug, Args, Clone)]
pub(crate) struct ExchangeOptions {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "GDX_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// This replica's name (its audit chain is named after it; unique per replica).
    #[arg(long, env = "GDX_REPLICA", default_value = "r1")]
    pub(crate) replica: String,
    /// Directory of this replica's local audit log (default: `audit/` beside a local lake,
    /// else `gdx-data/audit`).
    #[arg(long, env = "GDX_AUDIT_DIR")]
    pub(crate) audit_dir: Option<PathBuf>,
    /// Answer before the audit record is fsync'd (only to measure what durability costs).
    #[arg(long, env = "GDX_AUDIT_NO_FSYNC")]
    pub(crate) audit_no_fsync: bool,
    /// Calls per second per principal (0: unlimited).
    #[arg(long, env = "GDX_RATE_LIMIT", default_value_t = 100)]
    pub(crate) rate_limit: u32,
    /// Calls a principal may make at once above its rate.
    #[arg(long, env = "GDX_RATE_BURST", default_value_t = 200)]
    pub(crate) rate_burst: u32,
    /// Verifications per minute of one certificate, owner or contract number, across all
    /// callers (0: unlimited); the same number may be asked at once.
    #[arg(long, env = "GDX_VERIFY_SUBJECT_RATE", default_value_t = 10)]
    pub(crate) verify_subject_rate: u32,
    /// How often principal and grant changes made elsewhere are read, in milliseconds.
    #[arg(long, env = "GDX_REFRESH_MS", default_value_t = 1000)]
    pub(crate) refresh_ms: u64,
    /// How often new table versions (folds, profiles) are picked up and the in-memory
    /// profile and certificate registers rebuilt from them, in milliseconds.
    #[arg(long, env = "GDX_TABLE_REFRESH_MS", default_value_t = 2000)]
    pub(crate) table_refresh_ms: u64,
    /// Registered purposes (TOML, the format of deploy/exchange/purposes.toml); the
    /// built-in list when not given.
    #[arg(long, env = "GDX_PURPOSES")]
    pub(crate) purposes: Option<PathBuf>,
    /// A query of one call stops after this many seconds.
    #[arg(long, env = "GDX_QUERY_TIMEOUT_SECS", default_value_t = 30)]
    pub(crate) query_timeout_secs: u64,
    /// Largest request body, in KiB.
    #[arg(long, env = "GDX_BODY_LIMIT_KB", default_value_t = 64)]
    pub(crate) body_limit_kb: usize,
    /// Memory the citizen and enterprise profiles may take to be served from memory for
    /// lookups by ID, in MiB (0: every lookup scans; a profile larger than this is scanned).
    #[arg(long, env = "GDX_LOOKUP_MEMORY_MB", default_value_t = 1024)]
    pub(crate) lookup_memory_mb: usize,
    /// Rows one `POST /v1/sql` answers at most (JSON says `truncated`; streams stop); a
    /// pgwire statement with more rows fails and sends none.
    #[arg(long, env = "GDX_SQL_MAX_ROWS", default_value_t = 100_000)]
    pub(crate) sql_max_rows: usize,
    /// Serve the PostgreSQL wire protocol (psql, BI tools) on this address too: user = a
    /// principal id, password = its API key, purpose and case in the startup options.
    #[arg(long, env = "GDX_PG_LISTEN")]
    pub(crate) pg: Option<std::net::SocketAddr>,
    /// PEM certificate chain for pgwire TLS (needed on any address but loopback).
    #[arg(long, env = "GDX_PG_TLS_CERT", requires = "pg_tls_key")]
    pub(crate) pg_tls_cert: Option<PathBuf>,
    /// PEM (PKCS#8) private key of --pg-tls-cert.
    #[arg(long, env = "GDX_PG_TLS_KEY", requires = "pg_tls_cert")]
    pub(crate) pg_tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PrincipalCommand {
    /// Add a principal; prints its new API key alone on stdout (shown once, stored hashed).
    Add {
        /// Principal id (a-z, 0-9, '.', '_', '-').
        id: String,
        /// Its department (a catalog department, or `bdc` for the big-data centre).
        #[arg(long)]
        department: String,
        /// department_system, app, analyst, approver, auditor, cpo or admin.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// List principals (never their keys).
    List {
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Give a principal a new API key, printed alone on stdout (shown once, stored hashed).
    RotateKey {
        id: String,
        /// Minutes the previous key keeps working, so the system using it can switch
        /// (0: it stops at once).
        #[arg(long, env = "GDX_KEY_GRACE_MINUTES", default_value_t = 0)]
        grace_minutes: u32,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Revoke a principal: its key is refused from the next call on.
    Revoke {
        id: String,
        #[command(flatten)]
        lake: LakeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GrantCommand {
    /// Request a grant for principal --as (the consumer).
    Request {
        /// The requesting principal.
        #[arg(long = "as")]
        principal: String,
        /// `<dept>.<dataset>`, `profiles.citizen` or `profiles.enterprise`.
        #[arg(long)]
        resource: String,
        /// raw, masked, aggregate or verify.
        #[arg(long)]
        level: String,
        /// Fields, comma-separated (default: all the level allows).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Row scope `field=value1|value2` (repeatable; all must hold).
        #[arg(long = "rows")]
        rows: Vec<String>,
        /// A registered purpose code.
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        legal_basis: Option<String>,
        /// Expiry (RFC 3339); default 90 days for approved grants, a year for automatic ones.
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Approve a requested grant as principal --as.
    Approve {
        id: String,
        #[arg(long = "as")]
        principal: String,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Deny a requested grant as principal --as, with a reason.
    Deny {
        id: String,
        #[arg(long = "as")]
        principal: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Revoke a grant as principal --as, with a reason.
    Revoke {
        id: String,
        #[arg(long = "as")]
        principal: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// List grants (JSON lines).
    List {
        /// Only grants in this status (requested, active, denied, revoked, expired).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        lake: LakeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify every replica's audit chain in the lake and every local log in --audit-dir
    /// against it; report the first broken link of each. Exit status 1 when one is broken.
    Verify {
        /// Local audit logs to check (default: `audit/` beside a local lake).
        #[arg(long, env = "GDX_AUDIT_DIR")]
        audit_dir: Option<PathBuf>,
        /// Kafka bootstrap servers: each chain must still reach the newest head anchored on
        /// their `gdx.audit` topic (a chain truncated in the log and the lake alike shows).
        #[arg(long, env = "GDX_BROKERS")]
        brokers: Option<String>,
        #[command(flatten)]
        lake: LakeArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub(crate) enum SqlFormat {
    /// Aligned text.
    #[default]
    Table,
    Csv,
    /// One JSON object per line.
    Json,
    Parquet,
}

#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// One statement; without it, an interactive prompt reads statements ending in `;`.
    pub(crate) query: Option<String>,
    /// Read every dataset and profile as of this date (end of day, UTC+8) or RFC 3339
    /// timestamp: the state rebuilt from events, including keys deleted or changed later.
    #[arg(long, env = "GDX_AS_OF")]
    pub(crate) as_of: Option<gdx_lake::sql::AsOf>,
    /// Output format.
    #[arg(long, env = "GDX_SQL_FORMAT", value_enum, default_value_t)]
    pub(crate) format: SqlFormat,
    /// Write the result to this file instead of standard output (required for parquet).
    #[arg(long, env = "GDX_SQL_OUT")]
    pub(crate) out: Option<PathBuf>,
    /// Row cap: at most this many rows are returned (a note says when rows were cut off).
    #[arg(long, env = "GDX_MAX_ROWS", default_value_t = 10_000)]
    pub(crate) max_rows: usize,
    /// A query stops after this many seconds (0: no limit).
    #[arg(long, env = "GDX_QUERY_TIMEOUT_SECS", default_value_t = 600)]
    pub(crate) timeout_secs: u64,
    /// See the lake as the reader this TOML policy describes (tables, columns, masks, rows,
    /// aggregate-only) instead of as the operator, who sees everything.
    #[arg(long, env = "GDX_POLICY")]
    pub(crate) policy: Option<PathBuf>,
    /// File holding the secret key of keyed pseudonyms (at least 16 bytes); the key never
    /// appears in a plan, an error or a log.
    #[arg(long, env = "GDX_PSEUDONYM_KEY_FILE")]
    pub(crate) pseudonym_key_file: Option<PathBuf>,
    /// The prompt's history file, kept across sessions, readable by its owner only
    /// (default: ~/.gdx_history).
    #[arg(long, env = "GDX_HISTORY")]
    pub(crate) history: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfilesCommand {
    /// Build `profiles.citizen` and `profiles.enterprise` from the current tables (or from
    /// the state as of a date), each as a new Delta version recording its inputs' versions.
    Build {
        /// Build as of this date (end of day, UTC+8) or RFC 3339 timestamp.
        #[arg(long, env = "GDX_AS_OF")]
        as_of: Option<gdx_lake::sql::AsOf>,
        #[command(flatten)]
        lake: LakeArgs,
    },
}

#[derive(Debug, Args, Clone)]
pub(crate) struct LakeArgs {
    /// Lake location: a local directory or s3://bucket/prefix.
    #[arg(long, env = "GDX_LAKE", default_value = "gdx-data/lake")]
    pub(crate) lake: String,
    /// Memory budget of one query in MiB; sorts spill to disk beyond it.
    #[arg(long, env = "GDX_MEMORY_MB", default_value_t = 1024)]
    pub(crate) memory_mb: usize,
    #[command(flatten)]
    pub(crate) source: CatalogSource,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LakeCommand {
    /// Fold the events committed since the last fold into each dataset's `current` table
    /// (latest event per key by event time, partition, offset; deletes remove the key).
    Fold {
        /// Only this dataset (default: every dataset of the catalog).
        #[arg(long, env = "GDX_DATASET")]
        dataset: Option<String>,
        /// Rewrite `current` and `deleted` even where the change could be merged into them
        /// (which also compacts them: no deletion vectors, files sorted by key).
        #[arg(long, env = "GDX_FOLD_REWRITE")]
        rewrite: bool,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Compact small files of every table into files near --target-mb (after folding, so
    /// the next fold stays incremental) and write checkpoints.
    Optimize {
        /// Target size of compacted files in MiB.
        #[arg(long, env = "GDX_TARGET_MB", default_value_t = 128)]
        target_mb: u64,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Delete files no table version within the retention references. The retention is
    /// the time-travel window of `table_at`; state as of a date (from events) is unaffected.
    Vacuum {
        /// Keep files referenced by versions of the last this many hours.
        #[arg(long, env = "GDX_RETENTION_HOURS", default_value_t = 168)]
        retention_hours: u32,
        #[command(flatten)]
        lake: LakeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// A bare consumer vs gdx ingest over the same realistic topic; peak RSS; freshness.
    Ingest(BenchIngestArgs),
    /// Folding N keys into `current` (full, then 1 % changes) with its peak RSS, beside
    /// DuckDB computing the same latest-per-key over the same Parquet files.
    Fold(BenchFoldArgs),
    /// Building the citizen and enterprise profiles of a simulated district, beside DuckDB
    /// running the same SQL over the same Parquet files; fold throughput; peak RSS.
    Profiles(BenchProfilesArgs),
    /// What a reader's policy costs: opening a session, and the same analyst queries run
    /// by the operator (allow-all) and by a street office (row filter, pseudonyms, masks).
    Policy(BenchPolicyArgs),
    /// The exchange under concurrent load over loopback: requests/s and p50/p99 of a profile
    /// lookup, a row lookup by key and a masked page, beside `/health` on the same server
    /// (the HTTP floor); and the audit's cost (fsync on vs off).
    Exchange(BenchExchangeArgs),
    /// The SQL doors side by side: the same scans directly in a lake session, through
    /// `POST /v1/sql` and through pgwire (answers checked equal; each door's overhead); point
    /// lookups by key over pgwire beside a PostgreSQL server holding the same rows.
    Sql(BenchSqlArgs),
    /// Property-certificate verifications under concurrent load (half matches, half near
    /// misses, each answer checked once first) beside `/health` on the same server; with the
    /// audit fsync'd and not.
    Verify(BenchVerifyArgs),
    /// The elderly allowance's monthly run over a simulated district (time, peak RSS) beside
    /// DuckDB computing the same eligibility as plain SQL over the same Parquet files (the
    /// state as of the run's date rebuilt from the events, like the run); answers checked equal.
    Allowance(BenchAllowanceArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BenchAllowanceArgs {
    /// Residents of the simulated district.
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 1_000_000)]
    pub(crate) people: usize,
    /// Enterprises of the simulated district (their feeds are loaded but not read).
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 1_000)]
    pub(crate) enterprises: usize,
    /// The month run (before the simulated previous system's payments begin, so both
    /// engines pay the whole month).
    #[arg(long, env = "GDX_MONTH", default_value = "2026-04")]
    pub(crate) month: String,
    /// Memory budget of gdx's queries (and of DuckDB) in MiB.
    #[arg(long, env = "GDX_MEMORY_MB", default_value_t = 1024)]
    pub(crate) memory_mb: usize,
    /// Keep the feeds and the lake in this directory (default: a temp dir, removed after).
    #[arg(long, env = "GDX_BENCH_DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchVerifyArgs {
    /// Residents of the simulated district.
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 100_000)]
    pub(crate) people: usize,
    /// Enterprises of the simulated district.
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 10_000)]
    pub(crate) enterprises: usize,
    /// Active certificates the requests are made from (a match and a near miss each).
    #[arg(long, env = "GDX_BENCH_CERTIFICATES", default_value_t = 2000)]
    pub(crate) certificates: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, env = "GDX_BENCH_CONNECTIONS", default_value_t = 16)]
    pub(crate) connections: usize,
    /// Seconds of load per run.
    #[arg(long, env = "GDX_BENCH_SECS", default_value_t = 5)]
    pub(crate) secs: u64,
}

#[derive(Debug, Args)]
pub(crate) struct BenchSqlArgs {
    /// Residents of the simulated district (the scans read every one of them).
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 1_000_000)]
    pub(crate) people: usize,
    /// Enterprises of the simulated district.
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 100_000)]
    pub(crate) enterprises: usize,
    /// Runs of each query per door (alternating); the medians are compared.
    #[arg(long, env = "GDX_BENCH_RUNS", default_value_t = 5)]
    pub(crate) runs: usize,
    /// Concurrent connections for the point lookups.
    #[arg(long, env = "GDX_BENCH_CONNECTIONS", default_value_t = 8)]
    pub(crate) connections: usize,
    /// Seconds of point lookups per server.
    #[arg(long, env = "GDX_BENCH_SECS", default_value_t = 5)]
    pub(crate) secs: u64,
    /// Distinct keys the point lookups cycle through.
    #[arg(long, env = "GDX_BENCH_KEYS", default_value_t = 1000)]
    pub(crate) keys: usize,
    /// Skip the PostgreSQL server (it needs the distribution's `postgresql` package).
    #[arg(long, env = "GDX_BENCH_NO_POSTGRES")]
    pub(crate) no_postgres: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchExchangeArgs {
    /// Residents of the simulated district.
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 100_000)]
    pub(crate) people: usize,
    /// Enterprises of the simulated district.
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 10_000)]
    pub(crate) enterprises: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, env = "GDX_BENCH_CONNECTIONS", default_value_t = 16)]
    pub(crate) connections: usize,
    /// Seconds of load per endpoint.
    #[arg(long, env = "GDX_BENCH_SECS", default_value_t = 5)]
    pub(crate) secs: u64,
}

#[derive(Debug, Args)]
pub(crate) struct BenchPolicyArgs {
    /// Residents of the simulated district.
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 1_000_000)]
    pub(crate) people: usize,
    /// Enterprises of the simulated district.
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 100_000)]
    pub(crate) enterprises: usize,
    /// Runs of each query per reader (alternating); the medians are compared.
    #[arg(long, env = "GDX_BENCH_RUNS", default_value_t = 5)]
    pub(crate) runs: usize,
}

#[derive(Debug, Args)]
pub(crate) struct BenchFoldArgs {
    /// Distinct keys (household registrations): one table of each size, comma-separated.
    #[arg(
        long,
        env = "GDX_BENCH_KEYS",
        value_delimiter = ',',
        default_value = "1000000,10000000"
    )]
    pub(crate) keys: Vec<usize>,
    /// Memory budget of the fold (and of DuckDB) in MiB.
    #[arg(long, env = "GDX_MEMORY_MB", default_value_t = 1024)]
    pub(crate) memory_mb: usize,
    /// Seconds of a steady trickle of changes into the largest table, folded as they come
    /// (0: no trickle).
    #[arg(long, env = "GDX_BENCH_TRICKLE_SECONDS", default_value_t = 60)]
    pub(crate) trickle_seconds: u64,
    /// Changes per second of the trickle (one events commit per second).
    #[arg(long, env = "GDX_BENCH_TRICKLE_RATE", default_value_t = 1000)]
    pub(crate) trickle_rate: usize,
}

#[derive(Debug, Args)]
pub(crate) struct BenchProfilesArgs {
    /// Residents of the simulated district.
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 1_000_000)]
    pub(crate) people: usize,
    /// Enterprises of the simulated district.
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 100_000)]
    pub(crate) enterprises: usize,
    /// Memory budget of gdx's queries (and of DuckDB) in MiB.
    #[arg(long, env = "GDX_MEMORY_MB", default_value_t = 1024)]
    pub(crate) memory_mb: usize,
    /// Keep the feeds and the lake in this directory (default: a temp dir, removed after).
    #[arg(long, env = "GDX_BENCH_DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchIngestArgs {
    /// Records in the backlog.
    #[arg(long, env = "GDX_BENCH_RECORDS", default_value_t = 1_000_000)]
    pub(crate) records: usize,
    /// Partitions of the benchmark topic (the embedded broker keeps ~5 MB per partition).
    #[arg(long, env = "GDX_BENCH_PARTITIONS", default_value_t = 256)]
    pub(crate) partitions: i32,
    /// Times the generated records are produced (a backlog larger than the simulator's
    /// output without generating it: `--records 1000000 --copies 10` is a 10M backlog; give
    /// it enough `--partitions` for the embedded broker's ~5 MB per partition).
    #[arg(long, env = "GDX_BENCH_COPIES", default_value_t = 1)]
    pub(crate) copies: usize,
    /// Worker threads of the gdx ingest process (one already uses every core: it polls,
    /// decodes and commits in a pipeline).
    #[arg(long, env = "GDX_BENCH_WORKERS", default_value_t = 1)]
    pub(crate) workers: usize,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct WorkerArgs {
    /// Consumer group shared by the workers.
    #[arg(long, env = "GDX_GROUP", default_value = "gdx-ingest")]
    pub(crate) group: String,
    /// Job name recorded in the lake's offsets (app id `<job>/<cluster>/<topic>/<partition>`).
    #[arg(long, env = "GDX_JOB", default_value = "ingest")]
    pub(crate) job: String,
    /// Worker threads in this process (they share the group's partitions).
    #[arg(long, env = "GDX_WORKERS", default_value_t = 1)]
    pub(crate) workers: usize,
    /// Commit when this many messages are buffered...
    #[arg(long, env = "GDX_FLUSH_ROWS", default_value_t = gdx_ingest::worker::DEFAULT_FLUSH_ROWS)]
    pub(crate) flush_rows: usize,
    /// ...or when the oldest buffered message is this old (milliseconds).
    #[arg(long, env = "GDX_FLUSH_MS", default_value_t = 2_000)]
    pub(crate) flush_ms: u64,
    /// Consumer-group session timeout (milliseconds): how long a worker that died without
    /// leaving keeps its partitions before the group hands them to another.
    #[arg(long, env = "GDX_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) session_timeout_ms: u64,
    /// Partitions per topic of the embedded broker.
    #[arg(long, env = "GDX_PARTITIONS", default_value_t = 4)]
    pub(crate) partitions: i32,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Kafka bootstrap servers (host:port,...); none = start the embedded broker.
    #[arg(long, env = "GDX_BROKERS")]
    pub(crate) brokers: Option<String>,
    /// Lake location: a local directory or s3://bucket/prefix.
    #[arg(long, env = "GDX_LAKE", default_value = "gdx-data/lake")]
    pub(crate) lake: String,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    /// Also fold new events into `current`, rebuild the profiles and keep the tables
    /// compacted and vacuumed, in the background (one process per lake should do this).
    #[arg(long, env = "GDX_FOLD")]
    pub(crate) fold: bool,
    /// Serve Prometheus metrics (text format) at http://ADDR/metrics, e.g. 127.0.0.1:9464:
    /// messages in, rows committed, dead letters, commit latency, per-partition lag.
    #[arg(long, env = "GDX_METRICS")]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub(crate) source: CatalogSource,
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// Dataset id (its topic is the same), e.g. ps.household_registration.
    #[arg(long, env = "GDX_DATASET")]
    pub(crate) dataset: String,
    /// Feed file: one `{"key":…,"value":…|null,"event_time":…}` per line.
    #[arg(long, env = "GDX_FILE")]
    pub(crate) file: PathBuf,
    /// Kafka bootstrap servers (host:port,...).
    #[arg(long, env = "GDX_BROKERS")]
    pub(crate) brokers: String,
    #[command(flatten)]
    pub(crate) source: CatalogSource,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where the demo keeps its feeds and lake.
    #[arg(long, env = "GDX_DATA_DIR", default_value = "gdx-data")]
    pub(crate) data_dir: PathBuf,
    /// Residents of the simulated district.
    #[arg(long, env = "GDX_PEOPLE", default_value_t = 20_000)]
    pub(crate) people: usize,
    /// Enterprises of the simulated district.
    #[arg(long, env = "GDX_ENTERPRISES", default_value_t = 2_000)]
    pub(crate) enterprises: usize,
    /// Random seed of the simulated district.
    #[arg(long, env = "GDX_SEED", default_value_t = 42)]
    pub(crate) seed: u64,
    /// Keep the embedded broker and ingest running after the summary, until Ctrl-C.
    #[arg(long, env = "GDX_KEEP_RUNNING")]
    pub(crate) keep_running: bool,
    /// End after the summary instead of serving the exchange over the new lake.
    #[arg(long, env = "GDX_NO_EXCHANGE")]
    pub(crate) no_exchange: bool,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    #[command(flatten)]
    pub(crate) exchange: ExchangeOptions,
}

#[derive(Debug, Args, Clone)]
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
    #[arg(long, env = "GDX_OUT", default_value = "gdx-data/feeds")]
    pub(crate) out: PathBuf,
    /// Also publish every feed to this Kafka cluster (host:port,...).
    #[arg(long, env = "GDX_BROKERS")]
    pub(crate) brokers: Option<String>,
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
