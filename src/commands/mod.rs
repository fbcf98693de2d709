//! One module per command; each returns the process exit code.

mod anchor;
mod bench;
mod catalog;
mod demo;
mod exchange;
mod id;
mod ingest;
mod lake;
mod outcomes;
mod profiles;
mod projects;
mod prompt;
mod publish;
mod rewards;
mod scenario;
mod serve;
mod simulate;
mod sql;
mod verify;

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Cli, Command};

/// The catalog a command works with: `--catalog DIR`, or the built-in district catalog.
pub(crate) fn load_catalog(
    source: &crate::cli::CatalogSource,
) -> anyhow::Result<gdx_catalog::Catalog> {
    match &source.catalog {
        Some(dir) => catalog::load_dir(dir),
        None => Ok(gdx_catalog::district::catalog()),
    }
}

static SPILL_DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();

/// The lake at `location`; the first lake a command opens also decides where its queries
/// spill (`--spill-dir`, or `spill/` beside a local lake, or `gdx-data/spill`).
/// The pseudonym key in `path` (surrounding white space trimmed), if one is given.
pub(crate) fn pseudonym_key(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<gdx_catalog::Pseudonymizer>> {
    let Some(path) = path else { return Ok(None) };
    let key = std::fs::read(path)
        .with_context(|| format!("reading the pseudonym key {}", path.display()))?;
    gdx_catalog::Pseudonymizer::new(key.trim_ascii())
        .map(Some)
        .map_err(|e| anyhow::anyhow!("pseudonym key {}: {e}", path.display()))
}

pub(crate) fn open_lake(location: &str) -> anyhow::Result<gdx_lake::LakeLocation> {
    let lake = gdx_lake::LakeLocation::parse(location)?;
    let dir = match SPILL_DIR.get().cloned().flatten() {
        Some(d) => d,
        None => match lake
            .local_path()
            .as_deref()
            .and_then(std::path::Path::parent)
        {
            Some(parent) => parent.join("spill"),
            None => std::path::PathBuf::from("gdx-data/spill"),
        },
    };
    gdx_lake::engine::use_spill_dir(&dir)
        .map_err(|e| anyhow::anyhow!("spill directory {}: {e}", dir.display()))?;
    Ok(lake)
}

/// The policy in `path`, read and checked; the built-in one without a path.
pub(crate) fn policy_file<T, E>(
    path: Option<&std::path::Path>,
    builtin: fn() -> T,
    parse: fn(&str) -> Result<T, E>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    use anyhow::Context;
    let Some(path) = path else {
        return Ok(builtin());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{}", path.display()))
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _ = SPILL_DIR.set(cli.spill_dir);
    match cli.command {
        Command::Catalog(c) => catalog::run(c),
        Command::Id(c) => id::run(c),
        Command::Simulate(args) => simulate::run(args),
        Command::Ingest(args) => ingest::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Lake(c) => lake::run(c),
        Command::Sql(args) => sql::run(args),
        Command::Profiles(c) => profiles::run(c),
        Command::Bench(crate::cli::BenchCommand::Ingest(args)) => bench::ingest(args),
        Command::Bench(crate::cli::BenchCommand::Fold(args)) => bench::fold(args),
        Command::Bench(crate::cli::BenchCommand::Profiles(args)) => bench::profiles(args),
        Command::Bench(crate::cli::BenchCommand::Policy(args)) => bench::policy(args),
        Command::Bench(crate::cli::BenchCommand::Exchange(args)) => bench::exchange(args),
        Command::Bench(crate::cli::BenchCommand::Sql(args)) => bench::sql(args),
        Command::Bench(crate::cli::BenchCommand::Verify(args)) => bench::verify(args),
        Command::Bench(crate::cli::BenchCommand::Allowance(args)) => bench::allowance(args),
        Command::Exchange(args) => exchange::serve(args),
        Command::Serve(args) => serve::run(args),
        Command::Principal(c) => exchange::principal(c),
        Command::Grant(c) => exchange::grant(c),
        Command::Audit(c) => exchange::audit(c),
        Command::Scenario(crate::cli::ScenarioCommand::Allowance(c)) => scenario::allowance(c),
        Command::Scenario(crate::cli::ScenarioCommand::Projects(c)) => projects::projects(c),
        Command::Scenario(crate::cli::ScenarioCommand::Rewards(c)) => rewards::rewards(c),
        Command::Policy(crate::cli::PolicyCommand::Check { files }) => {
            let mut refused = 0;
            for f in &files {
                let checked = std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read: {e}"))
                    .and_then(|text| gdx_exchange::scenarios::check_policy(&text));
                match checked {
                    Ok(summary) => println!("ok {}: {summary}", f.display()),
                    Err(why) => {
                        refused += 1;
                        eprintln!("refused {}: {why}", f.display());
                    }
                }
            }
            Ok(if refused == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Verify(crate::cli::VerifyCommand::PropertyCertificate(args)) => {
            verify::property_certificate(args)
        }
    }
}
